"""The one training loop of both stages: epochs, checkpoints + resume, early stopping on a
validation metric, the history log, a progress bar and a wall-clock budget.

A stage (:class:`Stage`) knows its networks, optimisers, data and metrics; the loop knows only
epochs. Layout of the run folder::

    checkpoints/epoch_NNN.pt   full training state (the last ``keep_checkpoints`` epochs)
    checkpoints/best.pt        weights of the best epoch
    history.jsonl, history.csv one row per epoch (same format for every stage)
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import torch

from aacscore._files import atomic_write_bytes, atomic_write_text, json_safe
from aacscore.training.config import TrainConfig
from aacscore.training.errors import TrainingError

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT = "best.pt"
HISTORY_JSONL = "history.jsonl"
HISTORY_CSV = "history.csv"

Advance = Callable[[int], None]


class Mode(str, Enum):
    """Direction of the monitored validation metric."""

    MAX = "max"
    MIN = "min"


class Stage(Protocol):
    """What the loop needs from a stage."""

    mode: Mode

    def steps_per_epoch(self) -> int: ...

    def train_epoch(self, epoch: int, advance: Advance | None) -> dict[str, Any]:
        """Train one epoch (1-based); returns its training figures (losses, lr)."""
        ...

    def validate(self) -> dict[str, Any]:
        """Validation figures of the current weights."""
        ...

    def monitor(self, row: Mapping[str, Any]) -> float:
        """The early-stopping value of an epoch's row."""
        ...

    def describe(self, row: Mapping[str, Any]) -> str:
        """One log line for an epoch's row."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Full training state (weights, optimisers, schedules, random generators)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def weights(self) -> dict[str, Any]:
        """The weights to keep for the best epoch (CPU copies)."""
        ...

    def signature(self) -> dict[str, Any]:
        """What a checkpoint must share with this run to be resumed."""
        ...

    def plan_epochs(self, epochs: int) -> None:
        """The time budget cut the run to ``epochs`` epochs (shorten the schedule)."""
        ...


@dataclass(frozen=True)
class LoopResult:
    """Outcome of :func:`run_loop`; epochs are 1-based."""

    best_epoch: int
    best_value: float
    epochs_run: int
    stopped_early: bool
    stopped_by_time: bool
    history: tuple[dict[str, Any], ...]
    best_weights: dict[str, Any]


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress display on stderr (None when disabled)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import TextColumn

    from aacscore._progress import progress_bar as bar

    with bar(
        elapsed=True,
        extra_columns=[TextColumn("{task.fields[info]}")],
        console=Console(stderr=True),
    ) as prog:
        yield prog


def progress_task(prog: Any, description: str, total: int) -> Advance | None:
    """A task on ``prog`` and its advance callback (None without a progress display)."""
    if prog is None:
        return None
    tid = prog.add_task(description, total=total, info="")

    def advance(n: int = 1) -> None:
        prog.advance(tid, n)

    return advance


def _save(obj: Any, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def checkpoints(out_dir: Path) -> list[Path]:
    """Epoch checkpoints of a run folder, oldest first."""
    return sorted((out_dir / CHECKPOINT_DIR).glob("epoch_*.pt"))


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, Mapping):
            out.update({f"{k}_{a}": b for a, b in _flat(v).items()})
        else:
            out[k] = v
    return out


def write_history(out_dir: Path, history: Sequence[Mapping[str, Any]]) -> None:
    """``history.jsonl`` (rows as they are) and ``history.csv`` (nested values flattened)."""
    atomic_write_text(
        out_dir / HISTORY_JSONL, "".join(json.dumps(json_safe(r)) + "\n" for r in history)
    )
    flat = [_flat(r) for r in history]
    keys: list[str] = []
    for r in flat:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(flat)
    atomic_write_text(out_dir / HISTORY_CSV, buf.getvalue())


def read_history(out_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``history.jsonl``."""
    text = (Path(out_dir) / HISTORY_JSONL).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def epochs_within_budget(
    max_minutes: float,
    epochs: int,
    t_start: float,
    t_loop: float,
    epochs_done_now: int,
    epochs_done: int,
    t_first: float | None = None,
) -> int:
    """Epochs (total, at most ``epochs``) that fit ``max_minutes``, re-planned after every
    epoch; one epoch's worth is kept for the final evaluation.

    The first epoch of an invocation is the slowest (thread pools, caches, allocator), so once
    a second one has run the time per epoch is the mean of the epochs after the first (those
    that ended after ``t_first``), and the plan may grow again; a budget not yet spent after the
    first epoch always allows a second one to be measured.
    """
    now = time.perf_counter()
    if epochs_done_now > 1 and t_first is not None:
        per_epoch = (now - t_first) / (epochs_done_now - 1)
    else:
        per_epoch = (now - t_loop) / max(epochs_done_now, 1)
    per_epoch = max(per_epoch, 1e-9)
    spent = now - t_start
    left = max_minutes * 60.0 - spent - per_epoch
    fit = epochs_done + max(0, math.floor(left / per_epoch))
    if epochs_done_now == 1 and spent < max_minutes * 60.0:
        fit = max(fit, epochs_done + 1)
    return max(epochs_done, min(epochs, fit))


def _improved(value: float, best: float, mode: Mode, min_delta: float) -> bool:
    if not math.isfinite(value):
        return False
    if mode == Mode.MAX:
        return value > best + min_delta
    return value < best - min_delta


def run_loop(
    stage: Stage,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: Any = None,
    t_start: float | None = None,
) -> LoopResult:
    """Train ``stage`` for ``config.epochs`` epochs (or until early stopping / the time budget),
    checkpointing every epoch; with ``resume`` continue after the last checkpoint.

    Raises:
        TrainingError: the checkpoint was made with other settings, or no epoch was trained.
    """
    out = Path(out_dir)
    ck_dir = out / CHECKPOINT_DIR
    ck_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter() if t_start is None else t_start
    signature = json_safe(stage.signature())
    worst = -math.inf if stage.mode == Mode.MAX else math.inf
    history: list[dict[str, Any]] = []
    best_value, best_epoch, stale, start = worst, 0, 0, 1
    if resume:
        found = checkpoints(out)
        if found:
            state = torch.load(found[-1], map_location="cpu", weights_only=True)
            if state["signature"] != signature:
                raise TrainingError(
                    f"{found[-1]}: checkpoint was made with different settings; use a new run "
                    "folder or the same settings"
                )
            stage.load_state_dict(state["stage"])
            history = list(state["history"])
            best_value, best_epoch = float(state["best_value"]), int(state["best_epoch"])
            stale, start = int(state["stale"]), int(state["epoch"]) + 1
            logger.info("resuming %s after epoch %d", out, start - 1)
        else:
            logger.warning("%s: nothing to resume, starting a new run", out)
    planned = config.epochs
    stopped_early = stopped_by_time = False
    steps = stage.steps_per_epoch()
    epoch_task = progress_task(progress, "epochs", config.epochs)
    if epoch_task is not None and start > 1:
        epoch_task(min(start - 1, config.epochs))
    t_loop = time.perf_counter()
    t_first: float | None = None
    for epoch in range(start, config.epochs + 1):
        if stale >= config.patience:
            stopped_early = True
            break
        if epoch > planned:
            break
        t0 = time.perf_counter()
        train = stage.train_epoch(
            epoch, progress_task(progress, f"epoch {epoch}/{config.epochs}", steps)
        )
        val = stage.validate()
        row: dict[str, Any] = {"epoch": epoch, **train, **val}
        if config.max_minutes is not None:
            before = planned
            planned = epochs_within_budget(
                config.max_minutes,
                config.epochs,
                t_start,
                t_loop,
                epoch + 1 - start,
                epoch,
                t_first,
            )
            stopped_by_time = planned < config.epochs
            if planned != before:
                stage.plan_epochs(planned)
            row["epochs_planned"] = planned
        if t_first is None:
            t_first = time.perf_counter()
        value = stage.monitor(row)
        if _improved(value, best_value, stage.mode, config.min_delta):
            best_value, best_epoch, stale = value, epoch, 0
            _save(
                {"weights": stage.weights(), "epoch": epoch, "value": value},
                ck_dir / BEST_CHECKPOINT,
            )
        else:
            stale += 1
        row["best_epoch"] = best_epoch
        row["seconds"] = round(time.perf_counter() - t0, 2)
        history.append(row)
        _save(
            {
                "epoch": epoch,
                "stage": stage.state_dict(),
                "history": json_safe(history),
                "best_value": best_value,
                "best_epoch": best_epoch,
                "stale": stale,
                "signature": signature,
            },
            ck_dir / f"epoch_{epoch:03d}.pt",
        )
        for old in checkpoints(out)[: -max(1, config.keep_checkpoints)]:
            old.unlink()
        write_history(out, history)
        msg = f"epoch {epoch}: {stage.describe(row)}"
        logger.info(msg)
        if progress is not None:
            progress.console.print(msg)
        if epoch_task is not None:
            epoch_task(1)
    if best_epoch < 1 or not (ck_dir / BEST_CHECKPOINT).is_file():
        raise TrainingError(f"{out}: no epoch was trained (epochs={config.epochs})")
    if stopped_early:
        logger.info("early stop: no improvement for %d epochs", config.patience)
    best = torch.load(ck_dir / BEST_CHECKPOINT, map_location="cpu", weights_only=True)
    return LoopResult(
        best_epoch=best_epoch,
        best_value=best_value,
        epochs_run=len(history),
        stopped_early=stopped_early,
        stopped_by_time=stopped_by_time,
        history=tuple(history),
        best_weights=best["weights"],
    )
