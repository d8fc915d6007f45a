"""Tiny training runs: the loss goes down, checkpoints resume, the export is complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from spine_synth import write_dataset
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.spine.data import (
    NO_AUGMENTATION,
    augment_batch,
    batch_tensors,
    discover_cases,
    load_or_build_cache,
)
from aacscore.spine.network import sha256_file
from aacscore.spine.plans import CaseShape, compute_fingerprint, plan_from_fingerprint
from aacscore.spine.predict import SpineModel
from aacscore.spine.train import (
    CHECKPOINT_LAST,
    SegmentationTrainer,
    TrainConfig,
    TrainingError,
    train_spine,
)

PATCH = (64, 48)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("spine_data"), 8, shape=(96, 64))


def _config(data: Path, tmp: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "data_dir": data,
        "out_dir": tmp / "run",
        "model_dir": tmp / "model",
        "epochs": 1,
        "steps_per_epoch": 2,
        "batch_size": 4,
        "patch_size": PATCH,
        "val_fraction": 0.25,
        "progress": False,
        "jobs": 1,
        "num_threads": 2,
    }
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


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
    first = train_spine(_config(dataset, tmp_path, epochs=1))
    assert first.epochs_run == 1
    run = tmp_path / "run"
    for name in (
        CHECKPOINT_LAST,
        "checkpoint_best.pt",
        "log.jsonl",
        "log.csv",
        "plans.json",
        "cache.npz",
    ):
        assert (run / name).is_file(), name
    resumed = train_spine(_config(dataset, tmp_path, epochs=2, resume=True))
    assert resumed.epochs_run == 2
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[0] == first.history[0]  # epoch 0 kept, not retrained
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert (run / "log.csv").read_text().count("\n") == 3
    model = tmp_path / "model"
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
    train_spine(_config(dataset, tmp_path))
    plans_path = tmp_path / "run" / "plans.json"
    d = json.loads(plans_path.read_text())
    d["filters"] = [f * 2 for f in d["filters"]]
    plans_path.write_text(json.dumps(d))
    with pytest.raises(TrainingError, match="does not match"):
        train_spine(_config(dataset, tmp_path, epochs=2, resume=True))


def test_cli_train_spine(dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["train", "spine", "--data", str(dataset), "--out", str(tmp_path / "r")]
    args += ["--model-dir", str(tmp_path / "m"), "--epochs", "1", "--steps-per-epoch", "1"]
    args += ["--batch-size", "2", "--jobs", "1", "--no-progress", "--seed", "3"]
    # the CLI uses the plans' automatic size: keep it small via a tiny film set (96 x 64 px)
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "model written to" in res.output
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text()
    assert "aacscore train spine --data" in card and "Seed: 3" in card
    bad = runner.invoke(app, ["train", "spine", "--data", str(tmp_path / "none"), "--no-progress"])
    assert bad.exit_code == 1
    assert "training data folder not found" in " ".join(bad.output.split())


def test_several_data_folders_are_pooled(tmp_path: Path) -> None:
    a = write_dataset(tmp_path / "sim_a", 4, shape=(96, 64))
    b = write_dataset(tmp_path / "sim_b", 3, shape=(96, 64))
    res = train_spine(_config(a, tmp_path, data_dir=(a, b)))
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    ids = split["train"] + split["val"]
    assert len(ids) == 7 and len(set(ids)) == 7
    assert {i.split("/")[0] for i in ids} == {"sim_a", "sim_b"}
    assert "sim_a" in (res.model_dir / "MODEL_CARD.md").read_text()
    same = tmp_path / "x" / "sim_a"
    same.mkdir(parents=True)
    with pytest.raises(TrainingError, match="distinct names"):
        train_spine(_config(a, tmp_path / "y", data_dir=(a, same)))


def test_time_budget_cuts_the_epochs(dataset: Path, tmp_path: Path) -> None:
    # A budget far below one epoch's time: the run stops after its first epoch, exports the
    # model and records why, instead of running the 5 epochs asked for.
    res = train_spine(_config(dataset, tmp_path, epochs=5, max_minutes=1e-4))
    assert res.epochs_run == 1 and not res.stopped_early
    assert res.history[0]["epochs_planned"] == 1
    assert res.metrics["stopped_by_time_budget_minutes"] == 1e-4
    assert (res.model_dir / "unet.safetensors").is_file()
    # a generous budget changes nothing
    full = train_spine(_config(dataset, tmp_path / "g", epochs=2, max_minutes=600.0))
    assert full.epochs_run == 2 and "stopped_by_time_budget_minutes" not in full.metrics
    assert full.metrics["device"] == "cpu"


def test_cli_rejects_an_unusable_device(dataset: Path, tmp_path: Path) -> None:
    args = ["train", "spine", "--data", str(dataset), "--out", str(tmp_path / "r")]
    res = CliRunner().invoke(app, [*args, "--device", "nonsense:7", "--no-progress"])
    assert res.exit_code == 2
    assert "--device nonsense:7 is not usable" in " ".join(res.output.split())
