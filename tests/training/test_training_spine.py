"""Tiny training runs: the loss goes down, checkpoints resume, the export is complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from aacscore._files import sha256_file
from aacscore.cli import app
from aacscore.spine.predict import SpineModel
from aacscore.training.errors import TrainingError
from aacscore.training.loop import BEST_CHECKPOINT, CHECKPOINT_DIR, HISTORY_CSV, HISTORY_JSONL
from aacscore.training.plans import CaseShape, compute_fingerprint, plan_from_fingerprint
from aacscore.training.spine import SpineTrainConfig, TrainResult, train_spine
from aacscore.training.spine_data import (
    NO_AUGMENTATION,
    augment_batch,
    batch_tensors,
    discover_cases,
    load_or_build_cache,
)
from aacscore.training.spine_trainer import SegmentationTrainer
from tests.spine.spine_synth import write_dataset

PATCH = (64, 48)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("spine_data"), 8, shape=(96, 64))


def _config(**kw: object) -> SpineTrainConfig:
    base: dict[str, object] = {
        "epochs": 1,
        "steps_per_epoch": 2,
        "batch_size": 4,
        "patch_size": PATCH,
        "val_fraction": 0.25,
        "jobs": 1,
        "num_threads": 2,
    }
    base.update(kw)
    return SpineTrainConfig(**base)  # type: ignore[arg-type]


def _train(
    data: Path | tuple[Path, ...], tmp: Path, resume: bool = False, **kw: object
) -> TrainResult:
    return train_spine(data, tmp / "run", _config(**kw), resume=resume)


def test_a_few_steps_lower_the_loss(dataset: Path, tmp_path: Path) -> None:
    cases = discover_cases(dataset)
    plans = plan_from_fingerprint(
        compute_fingerprint([CaseShape((96, 64), (1.5, 1.5))]), patch_size=PATCH
    )
    data, _ = load_or_build_cache(cases, plans, tmp_path / "cache.npz")
    trainer = SegmentationTrainer(plans, lr=1e-2, total_steps=100, seed=0)
    img, lab, val = batch_tensors(data, list(range(6)))
    gen = torch.Generator().manual_seed(0)
    img, lab, val, flip = augment_batch(img, lab, val, gen, NO_AUGMENTATION)
    losses = [trainer.train_step(img, lab, val, flip)[0] for _ in range(12)]
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3])
    assert trainer.step == 12


def test_train_checkpoint_resume_and_export(dataset: Path, tmp_path: Path) -> None:
    first = _train(dataset, tmp_path, epochs=1)
    assert first.epochs_run == 1
    run = tmp_path / "run"
    for name in (
        f"{CHECKPOINT_DIR}/epoch_001.pt",
        f"{CHECKPOINT_DIR}/{BEST_CHECKPOINT}",
        HISTORY_JSONL,
        HISTORY_CSV,
        "plans.json",
        "cache.npz",
    ):
        assert (run / name).is_file(), name
    resumed = _train(dataset, tmp_path, resume=True, epochs=2)
    assert resumed.epochs_run == 2
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[0] == first.history[0]  # epoch 1 kept, not retrained
    log = [json.loads(x) for x in (run / HISTORY_JSONL).read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    # the loop's row format, shared with the score stage
    assert {"epoch", "train_loss", "val_loss", "lr", "best_epoch", "seconds"} <= set(log[0])
    assert (run / HISTORY_CSV).read_text().count("\n") == 3
    assert resumed.installed_to is None
    model = run / "model"
    card = (model / "MODEL_CARD.md").read_text()
    for name in ("unet.safetensors", "orientation.safetensors", "plans.json"):
        assert sha256_file(model / name) in card
    assert "Seed: 0" in card and "Dice" in card
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["weights_dtype"] in ("float16", "float32")
    assert {"dice_l1_l5", "level_identification", "orientation_accuracy"} <= set(metrics)
    loaded = SpineModel.load(model)
    assert loaded.plans.patch_size == PATCH and loaded.orientation_net is not None


def test_resume_rejects_other_plans(dataset: Path, tmp_path: Path) -> None:
    _train(dataset, tmp_path)
    plans_path = tmp_path / "run" / "plans.json"
    d = json.loads(plans_path.read_text())
    d["filters"] = [f * 2 for f in d["filters"]]
    plans_path.write_text(json.dumps(d))
    with pytest.raises(TrainingError, match="different settings"):
        _train(dataset, tmp_path, resume=True, epochs=2)


def test_cli_train_spine(dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["train", "spine", "--data", str(dataset), "--out", str(tmp_path / "r")]
    args += ["--model-dir", str(tmp_path / "m"), "--epochs", "1", "--steps-per-epoch", "1"]
    args += ["--batch-size", "2", "--jobs", "1", "--no-progress", "--seed", "3"]
    installed = _package_files()
    # the CLI uses the plans' automatic size: keep it small via a tiny film set (96 x 64 px)
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "model written to" in res.output
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text()
    assert "aacscore train spine --data" in card and "Seed: 3" in card
    assert "installed to" in res.output
    assert _package_files() == installed  # --model-dir: the package is untouched
    bad = runner.invoke(app, ["train", "spine", "--data", str(tmp_path / "none"), "--no-progress"])
    assert bad.exit_code == 1
    assert "training data folder not found" in " ".join(bad.output.split())


def test_several_data_folders_are_pooled(tmp_path: Path) -> None:
    a = write_dataset(tmp_path / "sim_a", 4, shape=(96, 64))
    b = write_dataset(tmp_path / "sim_b", 3, shape=(96, 64))
    res = _train((a, b), tmp_path)
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    ids = split["train"] + split["val"]
    assert len(ids) == 7 and len(set(ids)) == 7
    assert {i.split("/")[0] for i in ids} == {"sim_a", "sim_b"}
    assert "sim_a" in (res.model_dir / "MODEL_CARD.md").read_text()
    same = tmp_path / "x" / "sim_a"
    same.mkdir(parents=True)
    with pytest.raises(TrainingError, match="distinct names"):
        _train((a, same), tmp_path / "y")


def test_time_budget_cuts_the_epochs(dataset: Path, tmp_path: Path) -> None:
    # A budget far below one epoch's time: the run stops after its first epoch, exports the
    # model and records why, instead of running the 5 epochs asked for.
    res = _train(dataset, tmp_path, epochs=5, max_minutes=1e-4)
    assert res.epochs_run == 1 and not res.stopped_early
    assert res.history[0]["epochs_planned"] == 1
    assert res.metrics["stopped_by_time_budget_minutes"] == 1e-4
    assert (res.model_dir / "unet.safetensors").is_file()
    # a generous budget changes nothing
    full = _train(dataset, tmp_path / "g", epochs=2, max_minutes=600.0)
    assert full.epochs_run == 2 and "stopped_by_time_budget_minutes" not in full.metrics
    assert full.metrics["device"] == "cpu"


def test_cli_rejects_an_unusable_device(dataset: Path, tmp_path: Path) -> None:
    args = ["train", "spine", "--data", str(dataset), "--out", str(tmp_path / "r")]
    res = CliRunner().invoke(app, [*args, "--device", "nonsense:7", "--no-progress"])
    assert res.exit_code == 2
    assert "--device nonsense:7 is not usable" in " ".join(res.output.split())


def _package_files() -> dict[str, tuple[int, int]]:
    from aacscore.spine.network import default_model_dir

    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in default_model_dir().iterdir()}


def test_cli_no_install_writes_only_the_run_folder(dataset: Path, tmp_path: Path) -> None:
    before = _package_files()
    args = ["train", "spine", "--data", str(dataset), "--out", str(tmp_path / "r")]
    args += ["--model-dir", str(tmp_path / "m"), "--no-install", "--epochs", "1"]
    args += ["--steps-per-epoch", "1", "--batch-size", "2", "--jobs", "1", "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "model" / "unet.safetensors").is_file()
    assert not (tmp_path / "m").exists()
    assert "installed to" not in res.output
    assert _package_files() == before


def test_config_and_settings_together_are_rejected(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not both"):
        train_spine(dataset, tmp_path / "run", _config(), epochs=3)
    with pytest.raises(TypeError, match="no setting"):
        train_spine(dataset, tmp_path / "run", no_such_option=1)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v.float() for k, v in load_file(str(path)).items()}


def test_init_from_starts_from_the_given_weights(dataset: Path, tmp_path: Path) -> None:
    first = _train(dataset, tmp_path / "a", epochs=1)
    src = first.model_dir
    # a learning rate of ~0: the fine-tuned run must export the weights it started from
    tuned = _train(
        dataset, tmp_path / "b", epochs=1, init_from=src, lr=1e-12, orientation_lr=1e-12, seed=5
    )
    for name in ("unet.safetensors", "orientation.safetensors"):
        a, b = _weights(src / name), _weights(tuned.model_dir / name)
        assert a.keys() == b.keys()
        learned = [k for k in a if "running" not in k and "num_batches" not in k]  # batch norm
        assert all(torch.allclose(a[k], b[k], atol=2e-3) for k in learned), name
    init = json.loads((tmp_path / "b" / "run" / "init_from.json").read_text())
    assert init["folder"] == str(src.resolve())
    assert init["unet.safetensors"] == sha256_file(src / "unet.safetensors")
    card = (tuned.model_dir / "MODEL_CARD.md").read_text()
    assert "initial weights (warm start)" in card and init["unet.safetensors"] in card
    assert '"p_style": 0.7' in card  # style randomisation is on by default
    # without init_from the same seed starts elsewhere
    fresh = _train(dataset, tmp_path / "c", epochs=1, lr=1e-12, orientation_lr=1e-12, seed=5)
    a, c = _weights(src / "unet.safetensors"), _weights(fresh.model_dir / "unet.safetensors")
    assert not all(torch.allclose(a[k], c[k], atol=2e-3) for k in a)


def test_init_from_rejects_other_plans_naming_the_folder(dataset: Path, tmp_path: Path) -> None:
    src = _train(dataset, tmp_path / "a").model_dir
    other = tmp_path / "other_model"
    other.mkdir()
    for name in ("unet.safetensors", "orientation.safetensors"):
        (other / name).write_bytes((src / name).read_bytes())
    d = json.loads((src / "plans.json").read_text())
    d["filters"] = [f * 2 for f in d["filters"]]
    (other / "plans.json").write_text(json.dumps(d))
    with pytest.raises(TrainingError, match=r"other_model: plans.json does not match .*filters"):
        _train(dataset, tmp_path / "b", init_from=other)
    with pytest.raises(TrainingError, match=r"other_model: .*does not match"):
        _train(dataset, tmp_path / "b", init_from=other, patch_size=(96, 64))
    with pytest.raises(TrainingError, match="nowhere: --init-from model folder not found"):
        _train(dataset, tmp_path / "b", init_from=tmp_path / "nowhere")
    args = ["train", "spine", "--data", str(dataset), "--out", str(tmp_path / "r")]
    args += ["--no-install", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2"]
    args += ["--jobs", "1", "--no-progress", "--init-from", str(other), "--lr", "1e-3"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1
    assert "other_model:plans.jsondoesnotmatch" in "".join(res.output.split())  # rich wraps
    # the matching folder: the run takes its input size from it and records it
    ok = [*args[:-4], "--init-from", str(src), "--style-prob", "0", "--out", str(tmp_path / "s")]
    res = CliRunner().invoke(app, ok)
    assert res.exit_code == 0, res.output
    card = (tmp_path / "s" / "model" / "MODEL_CARD.md").read_text()
    assert f"--init-from {src}" in card and "initial weights (warm start)" in card
    assert '"p_style": 0.0' in card
