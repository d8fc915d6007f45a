from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aacscore.kauppila import SEGMENTS
from aacscore.score import ScoreModel
from aacscore.score.network import ScoreNet
from aacscore.training.errors import TrainingError
from aacscore.training.loop import HISTORY_CSV, HISTORY_JSONL
from aacscore.training.score import ScoreTrainConfig, evaluate, fit, train_score
from aacscore.training.score_data import (
    BandSet,
    FilmGeometry,
    ScoreDataError,
    build_film_bands,
    build_simulated_bands,
    read_labels_csv,
    split_by_case,
)
from tests.score.score_synth import (
    TINY_GEOMETRY,
    TINY_NET,
    approx_equal_history,
    tiny_bandset,
    write_fake_simulator_folder,
)


def _cfg(**kw: object) -> ScoreTrainConfig:
    base = {
        "network": TINY_NET,
        "geometry": TINY_GEOMETRY,
        "batch_size": 8,
        "lr": 3e-3,
        "warmup_epochs": 0.0,
        "augment": False,
        "num_threads": 1,
    }
    base.update(kw)
    return ScoreTrainConfig(**base)  # type: ignore[arg-type]


def test_tiny_training_lowers_the_loss(tmp_path: Path) -> None:
    data = tiny_bandset(48)
    idx = np.arange(48)
    cfg = _cfg(epochs=4, steps_per_epoch=12)
    torch.manual_seed(cfg.seed)
    before = evaluate(ScoreNet(cfg.network), data, idx, cfg)["loss"]
    res = fit(data, idx, idx[:16], cfg, tmp_path)
    net = ScoreNet(cfg.network)
    net.load_state_dict(res.best_state)
    after = evaluate(net, data, idx, cfg)["loss"]
    assert after < 0.7 * before
    assert res.epochs_run == 4
    assert (tmp_path / HISTORY_JSONL).read_text().count("\n") == 4
    assert (tmp_path / HISTORY_CSV).read_text().splitlines()[0].startswith("epoch,")


def test_augmented_training_learns_on_a_fixed_batch(tmp_path: Path) -> None:
    # 16 fixed bands, 18 augmented steps: every weight moves, the loss falls, and the
    # augmentation really is applied (the same run without it ends with other weights)
    data = tiny_bandset(16)
    idx = np.arange(16)
    cfg = _cfg(epochs=3, steps_per_epoch=6, augment=True)
    torch.manual_seed(cfg.seed)  # the weights fit() starts from
    init = ScoreNet(cfg.network)
    before = evaluate(init, data, idx, cfg)["loss"]
    res = fit(data, idx, idx, cfg, tmp_path / "aug")
    unchanged = [
        k for k, p in init.named_parameters() if torch.equal(p.detach(), res.best_state[k])
    ]
    assert unchanged == []
    net = ScoreNet(cfg.network)
    net.load_state_dict(res.best_state)
    after = evaluate(net, data, idx, cfg)["loss"]
    assert after < 0.9 * before, (before, after)
    losses = [r["train_loss"] for r in res.history]
    assert losses[-1] < 0.85 * losses[0], losses
    plain = fit(data, idx, idx, dataclasses.replace(cfg, augment=False), tmp_path / "plain")
    assert any(not torch.equal(v, plain.best_state[k]) for k, v in res.best_state.items())


def test_checkpoint_and_resume_reproduce_an_uninterrupted_run(tmp_path: Path) -> None:
    data = tiny_bandset(24)
    tr, va = split_by_case(data.case_ids, 0.25, 0)
    cfg = _cfg(epochs=3, head="ordinal", keep_checkpoints=5)
    full = fit(data, tr, va, cfg, tmp_path / "a")
    cks = sorted((tmp_path / "a" / "checkpoints").glob("epoch_*.pt"))
    assert [p.name for p in cks] == ["epoch_001.pt", "epoch_002.pt", "epoch_003.pt"]
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "checkpoints" / "epoch_003.pt").unlink()
    resumed = fit(data, tr, va, cfg, tmp_path / "b", resume=True)
    assert len(resumed.history) == 3
    assert approx_equal_history(list(full.history), list(resumed.history))
    for k, v in full.best_state.items():
        torch.testing.assert_close(v, resumed.best_state[k])
    # Resuming a finished run trains nothing more; other settings are refused.
    again = fit(data, tr, va, cfg, tmp_path / "a", resume=True)
    assert again.history == full.history
    with pytest.raises(TrainingError, match="different settings"):
        fit(data, tr, va, _cfg(epochs=3, head="ordinal", seed=5), tmp_path / "a", resume=True)


def test_early_stopping(tmp_path: Path) -> None:
    data = tiny_bandset(16)
    cfg = _cfg(epochs=30, patience=1, min_delta=100.0, lr=1e-6)
    res = fit(data, np.arange(16), np.arange(8), cfg, tmp_path)
    assert res.stopped_early and res.epochs_run == 2
    assert res.best_epoch == 1  # the first epoch sets the best; none improves it by 100


def test_split_by_case_keeps_copies_together() -> None:
    ids = [f"c{i // 2}" for i in range(40)]
    tr, va = split_by_case(ids, 0.2, 1)
    assert {ids[i] for i in tr}.isdisjoint({ids[i] for i in va})
    assert len({ids[i] for i in va}) == 4
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(40))
    with pytest.raises(ValueError):
        split_by_case(["a"], 0.2, 0)


def test_train_score_end_to_end_writes_model_card_and_weights(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    write_fake_simulator_folder(sim, 10)
    cfg = _cfg(n_jitter=2, jitter_mm=1.0, val_fraction=0.3, steps_per_epoch=3)
    res = train_score(
        sim,
        tmp_path / "run",
        dataclasses.replace(cfg, head="segments", epochs=2, seed=3),
        install=True,
        install_dir=tmp_path / "installed",
    )
    model_dir = tmp_path / "run" / "model"
    weights = model_dir / "model.safetensors"
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert res.weights_sha256 == sha
    conf = json.loads((model_dir / "config.json").read_text())
    assert conf["sha256"] == sha and conf["head"] == "segments"
    assert conf["band"]["shape"] == list(TINY_GEOMETRY.shape)
    assert conf["training"]["seed"] == 3
    assert "--head segments --epochs 2 --seed 3" in conf["training"]["command"]
    card = (model_dir / "MODEL_CARD.md").read_text()
    assert sha in card and "aacscore train score --data" in card and "Head comparison" in card
    assert "MAE (AAC-24)" in card
    assert len((tmp_path / "run" / HISTORY_JSONL).read_text().splitlines()) == 2
    assert list((tmp_path / "run" / "cache").glob("bands_*.npz"))
    for name in ("model.safetensors", "config.json", "MODEL_CARD.md"):
        assert (tmp_path / "installed" / name).read_bytes() == (model_dir / name).read_bytes()
    model = ScoreModel.load(tmp_path / "installed")
    assert model.head == "segments" and model.band_geometry == TINY_GEOMETRY
    # The cached bands are reused by a second run (no re-extraction) and resume works.
    res2 = train_score(
        sim,
        tmp_path / "run",
        dataclasses.replace(cfg, head="segments", epochs=2, seed=3),
        resume=True,
    )
    assert res2.epochs_run == 2


def test_simulated_bands_have_truth_and_jittered_copies(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    grades = write_fake_simulator_folder(sim, 4)
    bs = build_simulated_bands(sim, geometry=TINY_GEOMETRY, n_jitter=2, jitter_mm=1.5)
    assert len(bs) == 8 and bs.bands.shape[1:] == TINY_GEOMETRY.shape
    assert bs.copy_index.tolist() == [0, 1] * 4
    np.testing.assert_array_equal(bs.grades[::2], np.asarray(grades, dtype=np.float32))
    assert not np.array_equal(bs.bands[0], bs.bands[1])  # jitter changes the band
    assert bs.has_grades and bs.has_fractions
    bs.save(tmp_path / "c.npz")
    back = BandSet.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(back.bands, bs.bands)
    assert back.case_ids == bs.case_ids and back.geometry == bs.geometry
    with pytest.raises(ScoreDataError, match="case_"):
        build_simulated_bands(tmp_path)


def _films_csv(tmp_path: Path, totals_only: bool) -> Path:
    sim = tmp_path / "films"
    grades = write_fake_simulator_folder(sim, 6)
    lines = ["file,aac24" if totals_only else "file," + ",".join(SEGMENTS)]
    for i, g in enumerate(grades):
        lines.append(f"case_{i:06d}.png," + (str(sum(g)) if totals_only else ",".join(map(str, g))))
    csv = sim / "labels.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def _provider(path: Path) -> FilmGeometry:
    from aacscore.io import read_radiograph

    d = json.loads(path.with_suffix(".json").read_text())
    return FilmGeometry(
        image=read_radiograph(path).pixels,
        corners={k: np.asarray(v["corners"]) for k, v in d["vertebrae"].items()},
        anterior_side=d["anterior_side"],
        spacing_mm=None,  # like a PNG: scale from the vertebrae
    )


def test_user_films_with_totals_only_train_the_total_head(tmp_path: Path) -> None:
    csv = _films_csv(tmp_path, totals_only=True)
    films, grades, totals = read_labels_csv(csv)
    assert len(films) == 6 and np.all(np.isnan(grades)) and np.all(np.isfinite(totals))
    bs = build_film_bands(csv, _provider, geometry=TINY_GEOMETRY)
    assert len(bs) == 6 and not bs.has_grades
    cfg = _cfg(val_fraction=0.34)
    res = train_score(
        csv,
        tmp_path / "t",
        dataclasses.replace(cfg, head="total", epochs=1, seed=0),
        provider=_provider,
    )
    assert ScoreModel.load(res.model_dir).head == "total"
    with pytest.raises(ScoreDataError, match="total"):
        train_score(
            csv,
            tmp_path / "s",
            dataclasses.replace(cfg, head="segments", epochs=1, seed=0),
            provider=_provider,
        )
    with pytest.raises(ScoreDataError, match="geometry provider"):
        train_score(
            csv,
            tmp_path / "u",
            dataclasses.replace(cfg, head="total", epochs=1, seed=0),
        )


def test_labels_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,aac24\nx.png,3\n")
    with pytest.raises(ScoreDataError, match="'file' column"):
        read_labels_csv(bad)
    bad.write_text("file,score\nx.png,3\n")
    with pytest.raises(ScoreDataError, match="aac24"):
        read_labels_csv(bad)
    bad.write_text("file," + ",".join(SEGMENTS) + "\nx.png,0,1,2,3,4,0,0,0\n")
    with pytest.raises(ScoreDataError, match="row 2"):
        read_labels_csv(bad)
    ok = _films_csv(tmp_path, totals_only=False)
    _, grades, totals = read_labels_csv(ok)
    np.testing.assert_array_equal(grades.sum(1), totals)


def test_training_on_two_folders_combines_them(tmp_path: Path) -> None:
    write_fake_simulator_folder(tmp_path / "a", 4, seed=1)
    write_fake_simulator_folder(tmp_path / "b", 4, seed=2)
    cfg = _cfg(n_jitter=1, val_fraction=0.25)
    res = train_score(
        [tmp_path / "a", tmp_path / "b"],
        tmp_path / "run",
        dataclasses.replace(cfg, head="total", epochs=1, seed=0),
    )
    conf = json.loads((res.model_dir / "config.json").read_text())
    assert conf["training"]["data"]["n_cases"] == 8
    assert conf["training"]["command"].count("--data") == 2
    from aacscore.training.score_data import concat_bandsets

    a = build_simulated_bands(tmp_path / "a", geometry=TINY_GEOMETRY, n_jitter=1)
    both = concat_bandsets([a, a])
    assert len(both) == 8 and len(set(both.case_ids)) == 8
    with pytest.raises(ValueError, match="geometr"):
        other = build_simulated_bands(tmp_path / "a", n_jitter=1, max_cases=1)
        concat_bandsets([a, other])


def test_training_fits_and_ships_an_output_calibration(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    write_fake_simulator_folder(sim, 30)
    cfg = _cfg(n_jitter=1, val_fraction=0.7, steps_per_epoch=2)
    train_score(
        sim,
        tmp_path / "run",
        dataclasses.replace(cfg, head="segments", epochs=1, seed=0),
    )
    model_dir = tmp_path / "run" / "model"
    conf = json.loads((model_dir / "config.json").read_text())
    assert conf["calibration"]["target"] == "grades"
    assert len(conf["calibration"]["x"]) == len(conf["calibration"]["y"]) == 61
    assert "Output calibration (grades)" in (model_dir / "MODEL_CARD.md").read_text()
    assert ScoreModel.load(model_dir).config.calibration is not None
    off = train_score(
        sim,
        tmp_path / "run2",
        dataclasses.replace(
            dataclasses.replace(cfg, calibrate=False), head="segments", epochs=1, seed=0
        ),
    )
    assert json.loads((off.model_dir / "config.json").read_text())["calibration"] is None


def test_group_balanced_sampling(tmp_path: Path) -> None:
    from aacscore.training.score import group_balance_weights

    totals = np.array([0.0] * 6 + [2.0] * 2 + [10.0] * 12)
    w = group_balance_weights(totals)
    # every lewis group carries the same total weight
    assert w[:6].sum() == pytest.approx(w[6:8].sum()) == pytest.approx(w[8:].sum())
    bs = tiny_bandset(24, seed=1)
    cfg = _cfg(balance_groups=True, epochs=1, steps_per_epoch=2)
    idx = np.arange(len(bs))
    res = fit(bs, idx[:18], idx[18:], cfg, tmp_path / "run")
    assert res.epochs_run == 1 and np.isfinite(res.history[0]["val_mae"])


def _shifted_provider(path: Path) -> FilmGeometry:
    """Like the spine stage: the true corners moved 3 px down; case 1 fails."""
    if path.stem == "case_000001":
        raise ValueError("L2: implausible body size")
    g = _provider(path)
    return dataclasses.replace(
        g, corners={k: v + np.array([0.0, 3.0]) for k, v in g.corners.items()}
    )


def test_spine_copies_add_one_band_per_film_cut_from_the_spine_corners(tmp_path: Path) -> None:
    from aacscore.training.score_data import build_simulated_spine_bands

    sim = tmp_path / "sim"
    grades = write_fake_simulator_folder(sim, 6)
    bs = build_simulated_spine_bands(sim, _shifted_provider, geometry=TINY_GEOMETRY, copy_index=2)
    assert len(bs) == 5 and bs.copy_index.tolist() == [2] * 5
    assert "case_000001" not in bs.case_ids and bs.meta["skipped"] == ["case_000001.json"]
    keep = [0, 2, 3, 4, 5]
    np.testing.assert_array_equal(bs.grades, np.asarray(grades, dtype=np.float32)[keep])
    true = build_simulated_bands(sim, geometry=TINY_GEOMETRY, jitter_mm=0.0)
    assert not np.array_equal(bs.bands[0], true.bands[0])  # the shifted corners move the band

    cfg = _cfg(n_jitter=1, val_fraction=0.34, spine_copies=True)
    res = train_score(
        sim,
        tmp_path / "run",
        dataclasses.replace(cfg, head="segments", epochs=1, seed=0),
        provider=_shifted_provider,
    )
    conf = json.loads((res.model_dir / "config.json").read_text())
    assert conf["training"]["data"]["n_cases"] == 6  # copies of a film count once
    assert conf["training"]["config"]["spine_copies"] is True
    assert len(list((tmp_path / "run" / "cache").glob("bands_*.npz"))) == 2
    with pytest.raises(ScoreDataError, match="no usable band"):

        def failing(path: Path) -> FilmGeometry:
            raise ValueError("no vertebrae")

        build_simulated_spine_bands(sim, failing, geometry=TINY_GEOMETRY)


def test_concat_of_copies_of_the_same_films_keeps_their_ids(tmp_path: Path) -> None:
    from aacscore.training.score_data import concat_bandsets

    a = tiny_bandset(4)
    both = concat_bandsets([a, a], same_films=True)
    assert both.case_ids == a.case_ids * 2
    assert both.meta["n_cases"] == len(set(a.case_ids))
    tr, va = split_by_case(both.case_ids, 0.5, 0)
    assert {both.case_ids[i] for i in tr}.isdisjoint({both.case_ids[i] for i in va})


def test_fine_tuning_starts_from_the_given_models_weights(tmp_path: Path) -> None:
    from aacscore.aorta import BandGeometry
    from aacscore.training.score import init_weights

    sim = tmp_path / "sim"
    write_fake_simulator_folder(sim, 8)
    cfg = _cfg(n_jitter=1, val_fraction=0.25)
    first = train_score(
        sim,
        tmp_path / "a",
        dataclasses.replace(cfg, head="segments", epochs=1, seed=0),
    )
    tuned_cfg = dataclasses.replace(cfg, init_from=str(first.model_dir), seed=5)
    net = ScoreNet(tuned_cfg.network)
    init_weights(net, tuned_cfg)
    ref = ScoreModel.load(first.model_dir).net.state_dict()
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, ref[k])
    tuned = train_score(
        sim,
        tmp_path / "b",
        dataclasses.replace(tuned_cfg, head="segments", epochs=1, seed=5),
    )
    conf = json.loads((tuned.model_dir / "config.json").read_text())
    assert conf["training"]["config"]["init_from"] == str(first.model_dir)
    ck = torch.load(next((tmp_path / "b" / "checkpoints").glob("epoch_*.pt")), weights_only=True)
    assert ck["signature"]["init_from"] == str(first.model_dir)
    with pytest.raises(ValueError, match="band geometry"):
        other = BandGeometry(rows_per_level=8, mm_per_col=2.0)
        init_weights(net, dataclasses.replace(tuned_cfg, geometry=other))
    with pytest.raises(ValueError, match="network differs"):
        init_weights(
            ScoreNet(dataclasses.replace(cfg, head="total").network),
            dataclasses.replace(tuned_cfg, head="total"),
        )
    with pytest.raises(FileNotFoundError):
        init_weights(net, dataclasses.replace(tuned_cfg, init_from=str(tmp_path / "none")))


def test_backbone_only_init_starts_another_head_from_the_same_features(tmp_path: Path) -> None:
    from aacscore.training.score import init_weights

    sim = tmp_path / "sim"
    write_fake_simulator_folder(sim, 8)
    cfg = _cfg(n_jitter=1, val_fraction=0.25)
    first = train_score(sim, tmp_path / "a", dataclasses.replace(cfg, head="segments", epochs=1))
    total_cfg = dataclasses.replace(
        cfg, head="total", init_from=str(first.model_dir), init_backbone_only=True, seed=5
    )
    net = ScoreNet(total_cfg.network)
    fresh_fc = net.fc.weight.detach().clone()
    init_weights(net, total_cfg)
    ref = ScoreModel.load(first.model_dir).net.state_dict()
    for k, v in net.backbone.state_dict().items():
        torch.testing.assert_close(v, ref[f"backbone.{k}"])
    assert net.fc.weight.shape != ref["fc.weight"].shape
    torch.testing.assert_close(net.fc.weight, fresh_fc)
    tuned = train_score(sim, tmp_path / "b", dataclasses.replace(total_cfg, epochs=1))
    conf = json.loads((tuned.model_dir / "config.json").read_text())
    assert conf["training"]["config"]["init_backbone_only"] is True
    with pytest.raises(ValueError, match="set init_from"):
        dataclasses.replace(cfg, init_backbone_only=True)
    with pytest.raises(ValueError, match="init_backbone_only"):
        dataclasses.replace(total_cfg, wise_alpha=0.5)


def test_wise_alpha_exports_the_average_with_the_starting_weights(tmp_path: Path) -> None:
    from aacscore.training.score import wise_average

    sim = tmp_path / "sim"
    write_fake_simulator_folder(sim, 8)
    cfg = _cfg(n_jitter=1, val_fraction=0.25, head="segments", epochs=1)
    first = train_score(sim, tmp_path / "a", dataclasses.replace(cfg, seed=0))
    tuned_cfg = dataclasses.replace(cfg, init_from=str(first.model_dir), seed=5)
    tuned = train_score(sim, tmp_path / "b", tuned_cfg)
    # the same fine-tune resumed after its last epoch, exported as the average
    shutil.copytree(tmp_path / "b", tmp_path / "c")
    half = train_score(
        sim, tmp_path / "c", dataclasses.replace(tuned_cfg, wise_alpha=0.5), resume=True
    )
    start = ScoreModel.load(first.model_dir).net.state_dict()
    end = ScoreModel.load(tuned.model_dir).net.state_dict()
    mid = ScoreModel.load(half.model_dir).net.state_dict()
    moved = 0
    for k, v in mid.items():
        if v.is_floating_point():
            # float16 weights on disk: each stored value rounds the average
            torch.testing.assert_close(v, 0.5 * (start[k] + end[k]), atol=2e-3, rtol=2e-3)
            moved += int(not torch.equal(start[k], end[k]))
        else:
            assert torch.equal(v, end[k])
    assert moved > 0
    conf = json.loads((half.model_dir / "config.json").read_text())
    assert conf["training"]["config"]["wise_alpha"] == 0.5
    avg = wise_average(
        {"w": torch.zeros(2), "n": torch.tensor(3)},
        {"w": torch.ones(2), "n": torch.tensor(7)},
        0.25,
    )
    torch.testing.assert_close(avg["w"], torch.full((2,), 0.25))
    assert int(avg["n"]) == 7
    with pytest.raises(ValueError, match="different tensors"):
        wise_average({"w": torch.zeros(2)}, {"v": torch.zeros(2)}, 0.5)
    with pytest.raises(ValueError, match="set init_from"):
        dataclasses.replace(cfg, wise_alpha=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dataclasses.replace(tuned_cfg, wise_alpha=1.5)


def _tag_cases(folder: Path, family: str | None = None, negative: tuple[int, ...] = ()) -> None:
    """Mark a fake simulator folder's cases as family ``family`` and some as hard negatives."""
    for k, jp in enumerate(sorted(folder.glob("case_*.json"))):
        d = json.loads(jp.read_text())
        if family is not None:
            d["family"] = family
        if k in negative:
            d["distribution"] = "negative"
            for s in SEGMENTS:
                d["segments"][s] = {"fraction": 0.0, "grade": 0}
        jp.write_text(json.dumps(d))


def test_hard_negatives_are_in_training_batches_with_their_weight(tmp_path: Path) -> None:
    from aacscore.score.network import score_loss
    from aacscore.training.score import ScoreStage, _targets, weighted_score_loss

    sim = tmp_path / "sim"
    write_fake_simulator_folder(sim, 12)
    _tag_cases(sim, negative=(1, 4, 7, 10))
    bs = build_simulated_bands(sim, geometry=TINY_GEOMETRY, n_jitter=2)
    neg_ids = {c for c, n in zip(bs.case_ids, bs.hard_negative, strict=True) if n}
    assert neg_ids == {"case_000001", "case_000004", "case_000007", "case_000010"}
    assert np.all(bs.totals[bs.hard_negative] == 0)
    # the flags survive the band cache
    again = BandSet.load(bs.save(tmp_path / "bands.npz"))
    assert np.array_equal(again.hard_negative, bs.hard_negative) and again.family == bs.family

    cfg = _cfg(negative_weight=4.0, epochs=1)
    strata = [str(int(n)) for n in bs.hard_negative]
    train_idx, val_idx = split_by_case(bs.case_ids, 0.25, 0, strata)
    assert bs.hard_negative[val_idx].any() and bs.hard_negative[train_idx].any()
    stage = ScoreStage(bs, train_idx, val_idx, cfg)
    seen = np.concatenate([idx for idx, _ in stage.batches()])
    assert set(seen.tolist()) == set(train_idx.tolist())
    assert bs.hard_negative[seen].sum() == bs.hard_negative[train_idx].sum() > 0
    for idx, w in stage.batches():
        assert np.array_equal(w, np.where(bs.hard_negative[idx], 4.0, 1.0))

    # the weighted loss is the weighted mean of the per-row losses
    idx, w = next((i, w) for i, w in stage.batches() if len(set(w.tolist())) == 2)
    x = torch.from_numpy(bs.bands[idx].astype(np.float32))[:, None]
    stage.net.eval()
    with torch.no_grad():
        out = stage.net(x)
        loss, _ = weighted_score_loss(out, _targets(bs, idx, 0.5), "segments", w)
        per_row = [
            float(
                score_loss(
                    {k: v[r : r + 1] for k, v in out.items()},
                    _targets(bs, idx[r : r + 1], 0.5),
                    "segments",
                )[0]
            )
            for r in range(len(idx))
        ]
    assert float(loss) == pytest.approx(float(np.sum(w * per_row) / np.sum(w)), rel=1e-5)
    plain, _ = score_loss(out, _targets(bs, idx, 0.5), "segments")
    assert float(loss) != pytest.approx(float(plain), rel=1e-4)


def test_split_by_case_holds_out_films_of_every_stratum() -> None:
    ids = [f"a{i}" for i in range(40)] + [f"b{i}" for i in range(6)] + ["n0", "n0", "n1"]
    strata = ["a"] * 40 + ["b"] * 6 + ["neg"] * 3
    train, val = split_by_case(ids, 0.15, 3, strata)
    val_strata = {strata[i] for i in val}
    assert val_strata == {"a", "b", "neg"}
    assert {ids[i] for i in train}.isdisjoint({ids[i] for i in val})
    assert sum(strata[i] == "a" for i in val) == 6  # 15 % of each stratum
    with pytest.raises(ValueError, match="strata"):
        split_by_case(ids, 0.15, 3, strata[:-1])


def test_bandsets_without_the_new_columns_default_to_plain_films() -> None:
    bs = tiny_bandset(5)
    assert not bs.hard_negative.any() and bs.family == ("",) * 5
    with pytest.raises(ValueError, match="hard_negative"):
        dataclasses.replace(bs, hard_negative=np.zeros(3, dtype=bool))
