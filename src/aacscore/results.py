"""The per-case ``Result`` and the crash-safe ``results.csv`` writer with resume.

``results.csv`` has one row per input, columns in :data:`RESULT_COLUMNS` order. Rows are
appended and flushed to disk as each case finishes; a re-run on the same output folder skips
every input that already has a complete row (a torn last line from a crash is dropped), so a
batch can be resumed with nothing lost or duplicated.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aacscore.kauppila import SEGMENTS

log = logging.getLogger(__name__)

RESULT_COLUMNS: tuple[str, ...] = (
    "file",
    "status",
    "error",
    "aac24",
    "aac24_sd",
    *SEGMENTS,
    "aac8",
    "group",
    "low_confidence",
    "orientation",
    "spacing_mm",
    "qc_flags",
)
STATUSES = ("ok", "warning", "failed")


@dataclass(frozen=True)
class Result:
    """Everything aacscore measured on one film.

    ``grades`` are the predicted continuous segment grades in [0, 3] (None for a total-only
    model); ``aac24`` the continuous total in [0, 24] and ``aac24_sd`` its standard deviation
    from test-time augmentation. ``orientation`` is the side the patient's anterior faces on the
    film (``left``/``right``). ``details`` holds landmarks, bounds, band geometry, versions and
    timings for the per-case JSON.
    """

    file: str
    status: str
    error: str = ""
    aac24: float | None = None
    aac24_sd: float | None = None
    grades: Mapping[str, float] | None = None
    aac8: float | None = None
    group: str | None = None
    low_confidence: bool | None = None
    orientation: str | None = None
    spacing_mm: float | None = None
    qc_flags: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        """True unless the case failed."""
        return self.status != "failed"

    def csv_row(self) -> dict[str, str]:
        """The row of ``results.csv`` (strings; empty where not available)."""
        row = {c: "" for c in RESULT_COLUMNS}
        row["file"] = self.file
        row["status"] = self.status
        row["error"] = self.error
        row["aac24"] = _fmt(self.aac24)
        row["aac24_sd"] = _fmt(self.aac24_sd)
        if self.grades is not None:
            for s in SEGMENTS:
                row[s] = _fmt(self.grades.get(s))
        row["aac8"] = _fmt(self.aac8)
        row["group"] = self.group or ""
        row["low_confidence"] = "" if self.low_confidence is None else str(self.low_confidence)
        row["orientation"] = self.orientation or ""
        row["spacing_mm"] = _fmt(self.spacing_mm, 4)
        row["qc_flags"] = ";".join(self.qc_flags)
        return row

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable dict of the whole result."""
        return {
            "file": self.file,
            "status": self.status,
            "error": self.error,
            "aac24": self.aac24,
            "aac24_sd": self.aac24_sd,
            "grades": dict(self.grades) if self.grades is not None else None,
            "aac8": self.aac8,
            "group": self.group,
            "low_confidence": self.low_confidence,
            "orientation": self.orientation,
            "spacing_mm": self.spacing_mm,
            "qc_flags": list(self.qc_flags),
            **dict(self.details),
        }


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return f"{float(x):.{digits}f}"


def failed(file: str, error: str, details: Mapping[str, Any] | None = None) -> Result:
    """A failed result carrying its reason."""
    return Result(file=file, status="failed", error=error, details=dict(details or {}))


class ResultsWriter:
    """Append-only ``results.csv`` writer that knows which inputs are already done."""

    def __init__(self, path: str | Path, retry_failed: bool = False) -> None:
        self.path = Path(path)
        self.done: dict[str, str] = {}
        self._recover(retry_failed)

    def _recover(self, retry_failed: bool) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            with self.path.open("w", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, fieldnames=RESULT_COLUMNS).writeheader()
            return
        text = self.path.read_text(encoding="utf-8")
        complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
        if complete != text:
            log.warning("%s: dropping a torn last line left by an interrupted run", self.path)
        reader = csv.DictReader(io.StringIO(complete))
        if tuple(reader.fieldnames or ()) != RESULT_COLUMNS:
            raise ValueError(
                f"{self.path}: existing results file has different columns; use a new output folder"
            )
        rows = [r for r in reader if r.get("file")]
        keep = [r for r in rows if not (retry_failed and r["status"] == "failed")]
        self.done = {r["file"]: r["status"] for r in keep}
        if complete != text or len(keep) != len(rows):
            tmp = self.path.with_suffix(".csv.tmp")
            with tmp.open("w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=RESULT_COLUMNS)
                w.writeheader()
                w.writerows(keep)
            os.replace(tmp, self.path)

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
        self.done[result.file] = result.status


def read_results(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``results.csv``."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def counts(statuses: Iterable[str]) -> dict[str, int]:
    """Number of cases per status."""
    out = dict.fromkeys(STATUSES, 0)
    for s in statuses:
        out[s] = out.get(s, 0) + 1
    return out
