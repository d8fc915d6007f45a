"""The shared loop: resume, early stopping, the time budget, one history format for both stages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aacscore.training.loop as loop_module
from aacscore.training.config import TrainConfig
from aacscore.training.errors import TrainingError
from aacscore.training.loop import (
    HISTORY_CSV,
    HISTORY_JSONL,
    Advance,
    Mode,
    checkpoints,
    read_history,
    run_loop,
)
from aacscore.training.score import ScoreTrainConfig, fit, train_score
from tests.score.score_synth import TINY_NET, tiny_bandset


class Counter:
    """A stage without networks: its 'metric' follows a given sequence."""

    mode = Mode.MIN

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.trained: list[int] = []
        self.value = 0.0
        self.planned: int | None = None

    def steps_per_epoch(self) -> int:
        return 2

    def train_epoch(self, epoch: int, advance: Advance | None) -> dict[str, Any]:
        self.trained.append(epoch)
        self.value = self.values[epoch - 1]
        return {"train_loss": self.value, "lr": 0.1}

    def validate(self) -> dict[str, Any]:
        return {"val_loss": self.value, "nested": {"a": 1.0}}

    def monitor(self, row: Mapping[str, Any]) -> float:
        return float(row["val_loss"])

    def describe(self, row: Mapping[str, Any]) -> str:
        return f"val {row['val_loss']}"

    def state_dict(self) -> dict[str, Any]:
        return {"trained": list(self.trained)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trained = list(state["trained"])

    def weights(self) -> dict[str, Any]:
        return {"value": self.value}

    def signature(self) -> dict[str, Any]:
        return {"kind": "counter"}

    def plan_epochs(self, epochs: int) -> None:
        self.planned = epochs


def test_resume_continues_after_the_checkpoint_epoch(tmp_path: Path) -> None:
    vals = [5.0, 4.0, 3.0, 2.0]
    first = run_loop(Counter(vals), TrainConfig(epochs=2, patience=5), tmp_path)
    assert first.epochs_run == 2 and [p.name for p in checkpoints(tmp_path)] == ["epoch_002.pt"]
    stage = Counter(vals)
    res = run_loop(stage, TrainConfig(epochs=4, patience=5), tmp_path, resume=True)
    assert stage.trained == [1, 2, 3, 4]  # restored 1-2, trained 3-4 only
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4]
    assert res.best_epoch == 4 and res.best_weights == {"value": 2.0}
    assert [r["epoch"] for r in read_history(tmp_path)] == [1, 2, 3, 4]


def test_resume_rejects_another_signature(tmp_path: Path) -> None:
    run_loop(Counter([1.0]), TrainConfig(epochs=1), tmp_path)
    other = Counter([1.0, 1.0])
    other.signature = lambda: {"kind": "other"}  # type: ignore[method-assign]
    with pytest.raises(TrainingError, match="different settings"):
        run_loop(other, TrainConfig(epochs=2), tmp_path, resume=True)


def test_early_stopping_stops_and_keeps_the_best_epoch(tmp_path: Path) -> None:
    stage = Counter([3.0, 1.0, 2.0, 2.0, 0.5, 0.1])
    res = run_loop(stage, TrainConfig(epochs=6, patience=2, min_delta=0.0), tmp_path)
    assert res.stopped_early and res.epochs_run == 4 and stage.trained == [1, 2, 3, 4]
    assert res.best_epoch == 2 and res.best_weights == {"value": 1.0}
    assert [r["best_epoch"] for r in res.history] == [1, 2, 2, 2]


class FakeClock:
    """``time`` for the loop module: ``perf_counter`` moves only when an epoch is trained."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


class TimedCounter(Counter):
    """A Counter whose epochs take ``seconds`` of fake time each."""

    def __init__(self, values: list[float], clock: FakeClock, seconds: float) -> None:
        super().__init__(values)
        self.clock, self.seconds = clock, seconds

    def train_epoch(self, epoch: int, advance: Advance | None) -> dict[str, Any]:
        self.clock.now += self.seconds
        return super().train_epoch(epoch, advance)


def test_time_budget_cuts_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(loop_module, "time", clock)
    # 10 s epochs, a 1-minute budget, one epoch's worth kept back for the final evaluation:
    # after epoch 1, 60 - 10 - 10 = 40 s are left, 4 more epochs: 5 in all
    stage = TimedCounter([float(10 - k) for k in range(10)], clock, 10.0)
    res = run_loop(stage, TrainConfig(epochs=10, max_minutes=1.0), tmp_path / "a")
    assert res.epochs_run == 5 and res.stopped_by_time and not res.stopped_early
    assert stage.trained == [1, 2, 3, 4, 5] and stage.planned == 5
    assert [r["epochs_planned"] for r in res.history] == [5] * 5
    assert [r["seconds"] for r in res.history] == [10.0] * 5
    # a budget below one epoch: the run stops after its first epoch
    short = TimedCounter([3.0, 2.0, 1.0], clock, 10.0)
    res = run_loop(short, TrainConfig(epochs=3, max_minutes=0.1), tmp_path / "b")
    assert res.epochs_run == 1 and res.stopped_by_time and short.planned == 1
    assert res.history[0]["epochs_planned"] == 1
    # a budget that fits every epoch changes nothing
    roomy = TimedCounter([3.0, 2.0, 1.0], clock, 10.0)
    res = run_loop(roomy, TrainConfig(epochs=3, max_minutes=1.0), tmp_path / "c")
    assert res.epochs_run == 3 and not res.stopped_by_time and roomy.planned is None


class SlowStartCounter(Counter):
    """A Counter whose epoch ``k`` takes ``seconds[k - 1]`` of fake time."""

    def __init__(self, values: list[float], clock: FakeClock, seconds: list[float]) -> None:
        super().__init__(values)
        self.clock, self.seconds = clock, seconds

    def train_epoch(self, epoch: int, advance: Advance | None) -> dict[str, Any]:
        self.clock.now += self.seconds[epoch - 1]
        return super().train_epoch(epoch, advance)


def test_time_budget_plans_from_the_steady_epochs_not_the_slow_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(loop_module, "time", clock)
    # a 30 s first epoch, then 5 s ones, 1 minute: the first epoch alone would plan 1 epoch;
    # from the steady ones, after epoch 2 (35 s spent) 60 - 35 - 5 = 20 s fit 4 more
    stage = SlowStartCounter([float(20 - k) for k in range(20)], clock, [30.0] + [5.0] * 19)
    res = run_loop(stage, TrainConfig(epochs=20, max_minutes=1.0), tmp_path)
    assert res.epochs_run == 6 and res.stopped_by_time
    assert [r["epochs_planned"] for r in res.history] == [2, 6, 6, 6, 6, 6]
    assert stage.planned == 6
    assert sum(r["seconds"] for r in res.history) <= 60.0


def test_history_csv_flattens_nested_values(tmp_path: Path) -> None:
    run_loop(Counter([1.0, 0.5]), TrainConfig(epochs=2), tmp_path)
    header = (tmp_path / HISTORY_CSV).read_text().splitlines()[0].split(",")
    assert header[:3] == ["epoch", "train_loss", "lr"] and "nested_a" in header
    rows = [json.loads(x) for x in (tmp_path / HISTORY_JSONL).read_text().splitlines()]
    assert rows[1]["nested"] == {"a": 1.0}


def test_score_stage_runs_on_the_shared_loop(tmp_path: Path) -> None:
    data = tiny_bandset(16, seed=1)
    cfg = ScoreTrainConfig(epochs=2, batch_size=8, network=TINY_NET, augment=False)
    fit(data, np.arange(16), np.arange(8), cfg, tmp_path)
    rows = read_history(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"epoch", "train_loss", "val_loss", "lr", "best_epoch", "seconds"} <= set(rows[0])
    assert [p.name for p in checkpoints(tmp_path)] == ["epoch_001.pt", "epoch_002.pt"]


def test_score_config_and_settings_together_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not both"):
        train_score(tmp_path, tmp_path / "run", ScoreTrainConfig(epochs=10), epochs=40)
    cfg = ScoreTrainConfig(epochs=10)
    assert cfg.epochs == 10 and cfg.head == "segments"
