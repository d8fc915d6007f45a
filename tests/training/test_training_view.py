"""A tiny training run of the view classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aacscore.gate.view import ViewClassifier, preprocess
from aacscore.training.view import build_view_dataset, load_view_dataset, train_view, view_metrics


def test_tiny_training_run_writes_checkpoints_model_and_card(tmp_path: Path) -> None:
    data = build_view_dataset(tmp_path / "d", 4, 3, classes=("ap_lumbar", "not_radiograph"))
    x, y = load_view_dataset(data)
    assert x.shape == (8, 128, 128) and x.dtype == np.uint8 and sorted(set(y)) == [1, 8]
    again = build_view_dataset(tmp_path / "d2", 4, 3, classes=("ap_lumbar", "not_radiograph"))
    np.testing.assert_array_equal(load_view_dataset(again)[0], x)
    r = train_view(
        data,
        tmp_path / "run",
        epochs=1,
        batch_size=4,
        num_threads=1,
        val_fraction=0.25,
        filters=(4, 8, 8, 8, 8),
        command="test",
    )
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    assert (tmp_path / "run" / "history.jsonl").is_file()
    for name in ("view.safetensors", "config.json", "metrics.json", "MODEL_CARD.md"):
        assert (r.model_dir / name).is_file()
    card = (r.model_dir / "MODEL_CARD.md").read_text()
    cfg = json.loads((r.model_dir / "config.json").read_text())
    assert cfg["sha256"] in card and "procedural" in card
    clf = ViewClassifier.load(r.model_dir)
    assert clf.predict(np.random.default_rng(0).random((90, 70))).label is not None


def test_view_metrics_counts_refusals_and_acceptances() -> None:
    probs = np.zeros((4, 9))
    probs[0, 0] = 1.0  # lateral, accepted
    probs[1, 6] = 1.0  # lateral predicted as spot: wrongly refused
    probs[2, 0] = 0.6  # ap film accepted (p_lateral >= 0.5)
    probs[2, 1] = 0.4
    probs[3, 1] = 1.0
    m = view_metrics(probs, np.array([0, 0, 1, 1]))
    assert m["lateral_wrongly_refused"] == 0.5
    assert m["negatives_wrongly_accepted"]["ap_lumbar"] == 0.5
    assert m["confusion"]["lateral_lumbar"]["lumbar_spot"] == 1
    assert m["per_class_accuracy"]["ap_lumbar"] == 0.5


def test_resumed_stage_stretches_its_schedule_to_more_epochs() -> None:
    from aacscore.training.config import ViewTrainConfig
    from aacscore.training.view import ViewStage

    x = np.zeros((4, 16, 16), np.uint8)
    y = np.array([0, 1, 0, 1])
    small = ViewStage(
        ViewTrainConfig(epochs=3, filters=(4, 4, 4, 4, 4), input_size=16), (x, y), (x, y)
    )
    small.plan_epochs(2)  # cut by a time budget
    state = small.state_dict()
    longer = ViewStage(
        ViewTrainConfig(epochs=9, filters=(4, 4, 4, 4, 4), input_size=16), (x, y), (x, y)
    )
    longer.load_state_dict(state)
    assert longer.total_epochs == 9
    same = ViewStage(
        ViewTrainConfig(epochs=1, filters=(4, 4, 4, 4, 4), input_size=16), (x, y), (x, y)
    )
    same.load_state_dict(state)
    assert same.total_epochs == 2


def _films(folder: Path, n: int) -> Path:
    from aacscore.simulate.dataset import simulate_dataset

    simulate_dataset(folder, n, seed=8, spacing_mm=0.6, fmt="png", progress=False)
    return folder


def test_film_shards_hold_lateral_and_spot_images_of_each_film(tmp_path: Path) -> None:
    from aacscore.io import read_radiograph
    from aacscore.training.errors import TrainingError
    from aacscore.training.view import build_film_shards

    films = _films(tmp_path / "films", 2)
    train = build_film_shards(films, tmp_path / "s", 4, copies=2)
    x, y = load_view_dataset(train)
    assert x.shape == (8, 128, 128) and np.bincount(y, minlength=9)[[0, 6]].tolist() == [4, 4]
    np.testing.assert_array_equal(
        load_view_dataset(build_film_shards(films, tmp_path / "s2", 4, copies=2))[0], x
    )
    val = build_film_shards(films, tmp_path / "v", 5, copies=1, styled=False)
    vx, vy = load_view_dataset(val)
    assert np.bincount(vy, minlength=9)[[0, 6]].tolist() == [2, 2]
    first = sorted(films.glob("case_*[0-9].png"))[0]
    whole = (preprocess(read_radiograph(first).pixels) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(vx[0], whole)  # the film as the pipeline reads it
    with pytest.raises(TrainingError, match="remove the folder"):
        build_film_shards(films, tmp_path / "v", 5, copies=2, styled=False)
    with pytest.raises(TrainingError, match="no case_"):
        build_film_shards(tmp_path / "s", tmp_path / "x", 4)


def test_accept_threshold_is_the_largest_that_keeps_lateral_refusals_under_the_target() -> None:
    from aacscore.training.view import choose_accept_threshold

    probs = np.zeros((5, 9))
    probs[:, 0] = [0.9, 0.8, 0.3, 0.2, 0.6]
    probs[:, 6] = 1.0 - probs[:, 0]  # labelled lumbar_spot when p_lateral < 0.5
    y = np.zeros(5, dtype=np.int64)
    assert choose_accept_threshold(probs, y, 0.0) == 0.2
    assert choose_accept_threshold(probs, y, 0.2) == 0.3
    assert choose_accept_threshold(probs, y, 0.5) == 0.5  # capped at the range
    with pytest.raises(Exception, match="no lateral_lumbar"):
        choose_accept_threshold(probs, np.ones(5, dtype=np.int64), 0.0)


def test_restyled_inputs_keep_the_letterbox_black_and_the_rest_untouched() -> None:
    import torch

    from aacscore.training.view import restyle_inputs

    x = torch.zeros(6, 1, 32, 32)
    x[:, :, 4:28, 8:24] = torch.rand(6, 1, 24, 16) * 0.8 + 0.1
    none = restyle_inputs(x, np.random.default_rng(0), 0.0)
    assert torch.equal(none, x)
    out = restyle_inputs(x, np.random.default_rng(0), 1.0)
    assert float(out[:, :, :4].abs().max()) == 0.0 and float(out[:, :, :, :8].abs().max()) == 0.0
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, x)
    again = restyle_inputs(x, np.random.default_rng(0), 1.0)
    assert torch.equal(out, again)


def test_exported_model_carries_the_chosen_threshold(tmp_path: Path) -> None:
    data = build_view_dataset(tmp_path / "d", 4, 3, classes=("lateral_lumbar", "not_radiograph"))
    r = train_view(
        data,
        tmp_path / "run",
        epochs=1,
        batch_size=4,
        num_threads=1,
        val_fraction=0.5,
        filters=(4, 8, 8, 8, 8),
        style_prob=0.5,
        max_lateral_refused=0.0,
    )
    cfg = json.loads((r.model_dir / "config.json").read_text())
    clf = ViewClassifier.load(r.model_dir)
    assert clf.accept_p_lateral == cfg["accept_p_lateral"]
    assert r.metrics["validation"]["accept_p_lateral"] == cfg["accept_p_lateral"]
    assert r.metrics["validation"]["lateral_wrongly_refused"] == 0.0
