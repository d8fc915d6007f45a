"""A tiny training run of the view classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aacscore.gate.view import ViewClassifier
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
