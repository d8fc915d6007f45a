"""The crash-safe ``results.csv`` writer.

``results.csv`` has one row per film, columns in :data:`aacscore.results.RESULT_COLUMNS` order.
A new row is appended, flushed and fsynced as its case finishes; a row that replaces others (the
film was scored again: its file changed, or the settings did) is written by rewriting the whole
file atomically (temporary file, fsync, rename), so a crash leaves either the old or the new
file, never a mix. A torn last line left by a crash mid-append is dropped on the next open.
:meth:`ResultsWriter.reorder` rewrites the rows in a given order (the batch's input order) the
same way. Which rows a batch keeps, replaces or adds is decided in :mod:`aacscore.batch`; the
writer only refuses two rows for the same ``file``.

Files written by an older aacscore are migrated when opened (rewritten atomically with the
current header, the missing columns empty; the integer grades computed from the continuous
ones): :data:`NO_INT_COLUMNS` (before the integer columns ``aac24_int`` and ``<segment>_int``),
:data:`PREVIOUS_COLUMNS` (also before the identifier columns ``study_uid`` ... ``settings``) and
:data:`LEGACY_COLUMNS` (also before ``error_code`` and ``quality``). Any other header is
refused (use a new output folder).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from aacscore._files import atomic_write_text
from aacscore.kauppila import MAX_GRADE, SEGMENTS, integer_grade, round_half_up
from aacscore.results import ID_COLUMNS, INT_COLUMNS, RESULT_COLUMNS, Result

log = logging.getLogger(__name__)

NO_INT_COLUMNS: tuple[str, ...] = tuple(c for c in RESULT_COLUMNS if c not in INT_COLUMNS)
"""The columns of ``results.csv`` before the integer grades (migrated when opened: the integer
columns are computed from the continuous ones)."""
PREVIOUS_COLUMNS: tuple[str, ...] = tuple(c for c in NO_INT_COLUMNS if c not in ID_COLUMNS)
"""The columns of ``results.csv`` before the identifier columns (migrated when opened)."""
LEGACY_COLUMNS: tuple[str, ...] = tuple(
    c for c in PREVIOUS_COLUMNS if c not in ("error_code", "quality")
)
"""The columns of ``results.csv`` before ``error_code`` and ``quality`` (migrated when opened)."""

Row = dict[str, str]


class ResultsWriter:
    """``results.csv`` with its rows in memory, each under a row id that stays fixed while the
    writer lives (a replacing row takes the id and place of the first row it replaces)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rows: dict[int, Row] = {}
        self._lines: dict[int, str] = {}  # each row as written (a rewrite only joins them)
        self._by_file: dict[str, int] = {}
        self._next_id = 0
        self.migrated = False
        """True when the file was written by an older aacscore (its rows have no ids)."""
        self._recover()

    @property
    def rows(self) -> Mapping[int, Mapping[str, str]]:
        """The rows by row id, in file order (a read-only view)."""
        return MappingProxyType(self._rows)

    def _recover(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            self._rewrite()
            return
        with self.path.open(encoding="utf-8", newline="") as f:  # line ends as written
            text = f.read()
        complete = _complete_records(text)
        if complete != text:
            log.warning("%s: dropping a torn last line left by an interrupted run", self.path)
        reader = csv.DictReader(io.StringIO(complete, newline=""))
        columns = tuple(reader.fieldnames or ())
        self.migrated = columns in (NO_INT_COLUMNS, PREVIOUS_COLUMNS, LEGACY_COLUMNS)
        if columns != RESULT_COLUMNS and not self.migrated:
            raise ValueError(
                f"{self.path}: existing results file has columns {', '.join(columns)}, not those "
                f"of this aacscore ({', '.join(RESULT_COLUMNS)}); score into a new output folder "
                "or move this file away"
            )
        for r in reader:
            if r.get("file"):
                row = {c: r.get(c) or "" for c in RESULT_COLUMNS}
                if "aac24_int" not in columns:
                    row.update(_integer_columns(row))
                self._add(row)
        if self.migrated:
            added = [c for c in RESULT_COLUMNS if c not in columns]
            log.warning(
                "%s: written by an older aacscore; adding the columns %s (empty for its %d rows; "
                "without sha256 and settings its films are scored again when given)",
                self.path,
                ", ".join(added),
                len(self._rows),
            )
        if self.migrated or complete != text:
            self._rewrite()

    def _add(self, row: Row) -> int:
        rid = self._next_id
        self._next_id += 1
        self._rows[rid] = row
        self._lines[rid] = _line(row)
        self._by_file.setdefault(row["file"], rid)
        return rid

    def write(self, result: Result, replaces: Iterable[int] = ()) -> int:
        """Write the row of ``result``; returns its row id.

        Without ``replaces`` the row is appended and flushed to disk. Otherwise it takes the
        place of the first of those rows and the others are removed, in one atomic rewrite.

        Raises:
            ValueError: another row (not replaced) has the same ``file``, or a row id is
                unknown.
        """
        row: Row = result.csv_row()
        gone = list(dict.fromkeys(replaces))
        unknown = [i for i in gone if i not in self._rows]
        if unknown:
            raise ValueError(f"{self.path}: no rows {unknown} to replace")
        holder = self._by_file.get(row["file"])
        if holder is not None and holder not in gone:
            raise ValueError(f"{result.file}: already has a row in {self.path}")
        if not gone:
            rid = self._add(row)
            with self.path.open("a", newline="", encoding="utf-8") as f:
                f.write(self._lines[rid])
                f.flush()
                os.fsync(f.fileno())
            return rid
        keep = gone[0]
        for i in gone:
            if self._by_file.get(self._rows[i]["file"]) == i:
                del self._by_file[self._rows[i]["file"]]
            if i != keep:
                del self._rows[i], self._lines[i]
        self._rows[keep] = row
        self._lines[keep] = _line(row)
        self._by_file[row["file"]] = keep
        self._rewrite()
        return keep

    def update(self, changes: Mapping[int, Mapping[str, str]]) -> None:
        """Set some columns of some rows (``{row id: {column: value}}``), in one atomic rewrite
        (none when nothing changes)."""
        for values in changes.values():
            unknown = [c for c in values if c not in RESULT_COLUMNS or c == "file"]
            if unknown:
                raise ValueError(f"cannot set the column(s) {unknown} of a results row")
        changed = False
        for rid, values in changes.items():
            row = self._rows[rid]
            if any(row[c] != v for c, v in values.items()):
                row.update(values)
                self._lines[rid] = _line(row)
                changed = True
        if changed:
            self._rewrite()

    def reorder(self, last: Sequence[int]) -> None:
        """Put the rows ``last`` at the end of the file in that order, the others before them in
        their current order (one atomic rewrite; nothing when the order does not change)."""
        tail = [i for i in dict.fromkeys(last) if i in self._rows]
        tail_set = set(tail)
        order = [i for i in self._rows if i not in tail_set] + tail
        if order == list(self._rows):
            return
        self._rows = {i: self._rows[i] for i in order}
        self._rewrite()

    def _rewrite(self) -> None:
        text = _HEADER + "".join(self._lines[i] for i in self._rows)
        atomic_write_text(self.path, text, fsync=True)


def _integer_columns(row: Mapping[str, str]) -> dict[str, str]:
    """The integer columns of a row from its continuous ones (as :class:`Result` computes them:
    an older file's rows gain them when migrated)."""
    out = {c: "" for c in INT_COLUMNS}
    try:
        grades = [float(row[s]) for s in SEGMENTS]
    except (KeyError, ValueError):
        grades = []
    if grades and all(0.0 <= g <= MAX_GRADE for g in grades):
        ints = [integer_grade(g) for g in grades]
        out.update({f"{s}_int": str(v) for s, v in zip(SEGMENTS, ints, strict=True)})
        out["aac24_int"] = str(sum(ints))
    elif row.get("aac24"):
        try:
            out["aac24_int"] = str(round_half_up(float(row["aac24"])))
        except ValueError:
            pass
    return out


def _complete_records(text: str) -> str:
    """``text`` up to the end of its last complete record: a line end outside quotes.

    A torn row may end anywhere: mid-field, between CR and LF, or inside a quoted multi-line
    error message (there a line end is not a record end: an odd number of quotes precedes it)."""
    end = len(text) if text.endswith("\n") else text.rfind("\n") + 1
    while end and text.count('"', 0, end) % 2:
        end = text.rfind("\n", 0, end - 1) + 1
    return text[:end]


def _line(row: Mapping[str, str]) -> str:
    """One CSV record, CRLF-terminated, of the columns of ``row`` (as ``csv.DictWriter``)."""
    buf = io.StringIO(newline="")
    csv.writer(buf).writerow([row[c] for c in RESULT_COLUMNS])
    return buf.getvalue()


_HEADER = _line({c: c for c in RESULT_COLUMNS})


def read_results(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``results.csv``."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
