"""The crash-safe ``results.csv`` writer with resume.

``results.csv`` has one row per input, columns in :data:`aacscore.results.RESULT_COLUMNS`
order. Rows are appended and flushed to disk as each case finishes; a re-run on the same output
folder skips every input that already has a complete row (a torn last line from a crash is
dropped), so a batch can be resumed with nothing lost or duplicated.

A ``results.csv`` written by an aacscore before the ``error_code`` and ``quality`` columns
(:data:`LEGACY_COLUMNS`) is migrated on resume: rewritten atomically with the current header,
those two columns empty in the old rows. Any other header is refused (use a new output folder).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

from aacscore._files import atomic_write_text
from aacscore.results import RESULT_COLUMNS, Result, Status

log = logging.getLogger(__name__)

LEGACY_COLUMNS: tuple[str, ...] = tuple(
    c for c in RESULT_COLUMNS if c not in ("error_code", "quality")
)
"""The columns of ``results.csv`` before ``error_code`` and ``quality`` (migrated on resume)."""


class ResultsWriter:
    """Append-only ``results.csv`` writer that knows which inputs are already done."""

    def __init__(self, path: str | Path, retry_failed: bool = False) -> None:
        self.path = Path(path)
        self.done: dict[str, str] = {}
        self._recover(retry_failed)

    def _recover(self, retry_failed: bool) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            atomic_write_text(self.path, _csv_text([]))
            return
        with self.path.open(encoding="utf-8", newline="") as f:  # line ends as written
            text = f.read()
        complete = _complete_records(text)
        if complete != text:
            log.warning("%s: dropping a torn last line left by an interrupted run", self.path)
        reader = csv.DictReader(io.StringIO(complete, newline=""))
        columns = tuple(reader.fieldnames or ())
        migrate = columns == LEGACY_COLUMNS
        if columns != RESULT_COLUMNS and not migrate:
            raise ValueError(
                f"{self.path}: existing results file has columns {', '.join(columns)}, not those "
                f"of this aacscore ({', '.join(RESULT_COLUMNS)}); score into a new output folder "
                "or move this file away"
            )
        rows = [{c: r.get(c) or "" for c in RESULT_COLUMNS} for r in reader if r.get("file")]
        keep = [r for r in rows if not (retry_failed and r["status"] == Status.FAILED.value)]
        self.done = {r["file"]: r["status"] for r in keep}
        if migrate:
            log.warning(
                "%s: written by an older aacscore; adding the columns error_code and quality "
                "(empty for its %d rows)",
                self.path,
                len(rows),
            )
        if migrate or complete != text or len(keep) != len(rows):
            atomic_write_text(self.path, _csv_text(keep))

    def is_done(self, file: str) -> bool:
        """Whether ``file`` already has a row."""
        return file in self.done

    def write(self, result: Result) -> None:
        """Append one row and flush it to disk."""
        if result.file in self.done:
            raise ValueError(f"{result.file}: already has a row in {self.path}")
        with self.path.open("a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=RESULT_COLUMNS).writerow(result.csv_row())
            f.flush()
            os.fsync(f.fileno())
        self.done[result.file] = result.status.value


def _complete_records(text: str) -> str:
    """``text`` up to the end of its last complete record: a line end outside quotes.

    A torn row may end anywhere: mid-field, between CR and LF, or inside a quoted multi-line
    error message (there a line end is not a record end: an odd number of quotes precedes it)."""
    end = len(text) if text.endswith("\n") else text.rfind("\n") + 1
    while end and text.count('"', 0, end) % 2:
        end = text.rfind("\n", 0, end - 1) + 1
    return text[:end]


def _csv_text(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=RESULT_COLUMNS)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read_results(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``results.csv``."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
