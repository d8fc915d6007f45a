"""The one progress-bar shape used by the command line, the simulator and training (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn


def progress_bar(
    label: str | None = None,
    *,
    extra_columns: Sequence[ProgressColumn] = (),
    elapsed: bool = False,
    console: Console | None = None,
    transient: bool = False,
) -> Progress:
    """A rich progress bar: ``label`` (or each task's description), bar, done/total, [elapsed],
    time remaining, then ``extra_columns``. Not started: use it as a context manager."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    first = TextColumn(f"[bold]{label}" if label else "[progress.description]{task.description}")
    columns: list[str | ProgressColumn] = [first, BarColumn(), MofNCompleteColumn()]
    if elapsed:
        columns.append(TimeElapsedColumn())
    columns += [TimeRemainingColumn(), *extra_columns]
    return Progress(*columns, console=console, transient=transient)
