"""Reading the prediction and reference CSVs of ``aacscore validate``.

* ``--pred``: the product's ``results.csv`` (columns ``file, status, error, aac24, aac24_sd,
  L1_anterior ... L4_posterior, aac8, group, low_confidence, orientation, spacing_mm,
  qc_flags``). Required: the key column and ``aac24``. Only rows whose ``status`` is ``ok`` or
  ``warning`` are used; other rows are counted and listed as failed (without a ``status`` column
  every row is used). The predicted severity group is recomputed from ``aac24`` with the chosen
  ``--groups`` (the file's ``group`` column is ignored). Segment columns, when present, must all
  be there; predicted grades may be continuous (0-3) and are rounded half up for grade accuracy
  and kappa.
* ``--ref``: the reference reading, one row per case. The reference total is, in this order of
  preference: the ``aac24`` column; the sum of the 8 segment grades (integers 0-3, columns
  ``L1_anterior ... L4_posterior``); the mean of the reader columns. Reader columns (totals of
  individual readers, 0-24) are ``--reader-columns`` or, by default, every column whose name
  starts with ``aac24_reader``; they feed the inter-reader ICC. When both ``aac24`` and the 8
  grades are given they must agree.
* Case keys (:class:`aacscore.keys.JoinKey`, ``--key-from``): by default
  :func:`aacscore.keys.case_key` of the ``file`` column (``/data/P001.dcm`` -> ``P001``; DICOM
  UIDs such as ``1.2.840.1`` stay whole); ``relpath`` the path relative to ``--root``
  (``p1/IM0001``); ``sop_uid``, ``study_uid``, ``accession`` that column of both files. ``--key``
  names another column for both files, ``--pred-key``/``--ref-key`` one per side; the same
  reduction is applied. Keys must be unique in each file; with ``study_uid``/``accession`` only
  among the scored (ok/warning) prediction rows, so a study may hold failed films besides its
  one usable film. Failed rows without a UID are listed with an empty key.

Bad input raises :class:`ValidationInputError` naming the file, row (data row, 1-based; the CSV
line is row + 1) and column.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aacscore.kauppila import MAX_AAC24, MAX_GRADE, SEGMENTS
from aacscore.keys import CaseKeyError, JoinKey, find_duplicate
from aacscore.stats._common import FloatArray

logger = logging.getLogger(__name__)

USED_STATUSES: tuple[str, ...] = ("ok", "warning")
READER_PREFIX = "aac24_reader"
_TRUE = {"1", "true", "yes", "y", "t"}


class ValidationInputError(ValueError):
    """Unusable validation input; the message names the file, row and column."""

    def __init__(
        self,
        problem: str,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.row = row
        self.column = column
        self.problem = problem
        where = []
        if self.path is not None:
            where.append(self.path)
        if row is not None:
            where.append(f"row {row} (line {row + 1})")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)


@dataclass(frozen=True)
class FailedCase:
    """A prediction row that was not used (status other than ok/warning)."""

    key: str
    file: str
    status: str
    error: str
    row: int


@dataclass(frozen=True, eq=False)
class PredictionTable:
    """Usable rows of a prediction CSV (arrays are aligned with ``keys``)."""

    path: str
    key_column: str
    keys: tuple[str, ...]
    rows: tuple[int, ...]
    total: FloatArray
    segments: FloatArray | None
    failed: tuple[FailedCase, ...]
    all_keys: tuple[str, ...]
    n_rows: int
    warning: tuple[bool, ...]
    low_confidence: tuple[bool, ...]


@dataclass(frozen=True, eq=False)
class ReferenceTable:
    """Rows of a reference CSV (arrays are aligned with ``keys``)."""

    path: str
    key_column: str
    keys: tuple[str, ...]
    rows: tuple[int, ...]
    total: FloatArray
    source: str
    segments: FloatArray | None
    readers: tuple[str, ...]
    reader_values: FloatArray | None
    n_rows: int


def _read_csv(path: str | Path) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise ValidationInputError("file not found", p)
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ValidationInputError("the file is empty (no header, no rows)", p) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValidationInputError(f"not a readable CSV file ({msg})", p) from None
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise ValidationInputError("the file has a header but no data rows", p)
    return df


def _cell(df: pd.DataFrame, column: str, i: int) -> str:
    return str(df[column].iat[i])


def _require_columns(df: pd.DataFrame, path: str | Path, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(repr(c) for c in df.columns)
        raise ValidationInputError(
            f"missing column(s) {', '.join(repr(c) for c in missing)} (columns present: {have})",
            path,
            column=missing[0],
        )


def _segment_columns(df: pd.DataFrame, path: str | Path) -> bool:
    present = [s for s in SEGMENTS if s in df.columns]
    if not present:
        return False
    if len(present) < len(SEGMENTS):
        missing = [s for s in SEGMENTS if s not in df.columns]
        raise ValidationInputError(
            f"has segment column(s) {', '.join(present)} but lacks "
            f"{', '.join(missing)}: give all 8 Kauppila segment grades or none",
            path,
            column=missing[0],
        )
    return True


def _number(
    text: str,
    path: str | Path,
    row: int,
    column: str,
    high: float,
    what: str,
    integer: bool = False,
) -> float:
    s = str(text).strip()
    if s == "":
        raise ValidationInputError(f"missing {what}", path, row, column)
    try:
        x = float(s)
    except ValueError:
        raise ValidationInputError(f"non-numeric {what} {s!r}", path, row, column) from None
    if not math.isfinite(x):
        raise ValidationInputError(f"non-numeric {what} {s!r}", path, row, column)
    if x < 0 or x > high:
        raise ValidationInputError(
            f"{what} {s} outside the valid range 0-{high:g}", path, row, column
        )
    if integer and x != int(x):
        raise ValidationInputError(
            f"{what} {s} is not a whole number (grades are 0, 1, 2 or 3)", path, row, column
        )
    return x


def _labels(df: pd.DataFrame, key_column: str) -> list[str]:
    col = "file" if "file" in df.columns else key_column
    return [str(v).strip() for v in df[col].tolist()]


def _key_column(
    df: pd.DataFrame, path: str | Path, key_column: str, join: JoinKey, flag: str
) -> None:
    """Require the key column; a missing UID column says how to get or choose one."""
    uid_column = join.kind.results_column != "file" and key_column == join.kind.results_column
    if key_column in df.columns or not uid_column:
        _require_columns(df, path, [key_column])
        return
    have = ", ".join(repr(c) for c in df.columns)
    problem = (
        join.missing_column_problem(key_column)
        if flag == "--pred-key"
        else f"no {key_column!r} column for --key-from {join.kind}: add the key of each case, "
        f"or name the column that holds it with {flag} COLUMN"
    )
    raise ValidationInputError(f"{problem} (columns present: {have})", path, column=key_column)


def _keys(
    df: pd.DataFrame,
    path: str | Path,
    key_column: str,
    join: JoinKey,
    used: Sequence[bool] | None = None,
) -> list[str]:
    """Case keys of every row; ``used`` (predictions) marks the scored rows."""
    keys: list[str] = []
    for i, raw in enumerate(df[key_column].tolist()):
        try:
            k = join.of_result(raw) if used is not None else join.of_table(raw)
        except CaseKeyError as e:
            raise ValidationInputError(str(e), path, i + 1, key_column) from None
        keys.append(k)
    labels = _labels(df, key_column)
    empty = [i for i, k in enumerate(keys) if k == ""]
    if used is not None and join.kind.results_column != "file":
        empty = [i for i in empty if used[i]]
        if empty:
            raise ValidationInputError(
                join.missing_values_problem([i + 1 for i in empty], [labels[i] for i in empty]),
                path,
                empty[0] + 1,
                key_column,
            )
    if empty:
        raise ValidationInputError("empty case key", path, empty[0] + 1, key_column)
    counted = used if used is not None and not join.kind.per_film else None
    dup = find_duplicate(keys, labels, counted)
    if dup is not None:
        raise ValidationInputError(join.duplicate_problem(dup), path, dup.rows[1], key_column)
    return keys


def load_predictions(
    path: str | Path, key_column: str | None = None, join: JoinKey | None = None
) -> PredictionTable:
    """Read an aacscore ``results.csv``; keep rows with status ok/warning, list the others.

    ``key_column`` defaults to the column of ``join`` (``file``, or the UID column).
    """
    jk = join or JoinKey()
    key_column = key_column or jk.kind.results_column
    df = _read_csv(path)
    _key_column(df, path, key_column, jk, "--pred-key")
    _require_columns(df, path, ["aac24"])
    has_segments = _segment_columns(df, path)
    status = (
        [str(s).strip().lower() for s in df["status"].tolist()]
        if "status" in df.columns
        else ["ok"] * len(df)
    )
    keys = _keys(df, path, key_column, jk, [s in USED_STATUSES for s in status])
    if "status" not in df.columns:
        logger.info("%s has no 'status' column: every row is used", path)
    errors = df["error"].tolist() if "error" in df.columns else [""] * len(df)
    files = df["file"].tolist() if "file" in df.columns else df[key_column].tolist()
    low_conf = (
        [str(v).strip().lower() in _TRUE for v in df["low_confidence"].tolist()]
        if "low_confidence" in df.columns
        else [False] * len(df)
    )
    used_keys: list[str] = []
    rows: list[int] = []
    totals: list[float] = []
    segs: list[list[float]] = []
    failed: list[FailedCase] = []
    warn_flags: list[bool] = []
    low_flags: list[bool] = []
    for i, k in enumerate(keys):
        row = i + 1
        if status[i] not in USED_STATUSES:
            failed.append(
                FailedCase(k, str(files[i]), status[i] or "(empty)", str(errors[i]).strip(), row)
            )
            continue
        warn_flags.append(status[i] == "warning")
        low_flags.append(low_conf[i])
        totals.append(
            _number(_cell(df, "aac24", i), path, row, "aac24", MAX_AAC24, "predicted AAC-24 total")
        )
        if has_segments:
            segs.append(
                [
                    _number(_cell(df, s, i), path, row, s, MAX_GRADE, "predicted segment grade")
                    for s in SEGMENTS
                ]
            )
        used_keys.append(k)
        rows.append(row)
    return PredictionTable(
        path=str(path),
        key_column=key_column,
        keys=tuple(used_keys),
        rows=tuple(rows),
        total=np.asarray(totals, dtype=np.float64),
        segments=np.asarray(segs, dtype=np.float64).reshape(-1, len(SEGMENTS))
        if has_segments
        else None,
        failed=tuple(failed),
        all_keys=tuple(dict.fromkeys(k for k in keys if k)),
        n_rows=len(df),
        warning=tuple(warn_flags),
        low_confidence=tuple(low_flags),
    )


def _reader_columns(
    df: pd.DataFrame, path: str | Path, reader_columns: Sequence[str] | None
) -> list[str]:
    if reader_columns:
        cols = [c.strip() for c in reader_columns if c.strip()]
        if len(set(cols)) != len(cols):
            raise ValidationInputError(f"reader columns listed twice: {cols}", path)
        _require_columns(df, path, cols)
        return cols
    return [c for c in df.columns if c.startswith(READER_PREFIX)]


def load_reference(
    path: str | Path,
    key_column: str | None = None,
    reader_columns: Sequence[str] | None = None,
    join: JoinKey | None = None,
) -> ReferenceTable:
    """Read a reference CSV with ``aac24``, the 8 segment grades and/or reader totals.

    ``key_column`` defaults to the column of ``join`` (``file``, or the UID column).
    """
    jk = join or JoinKey()
    key_column = key_column or jk.kind.results_column
    df = _read_csv(path)
    _key_column(df, path, key_column, jk, "--ref-key")
    has_segments = _segment_columns(df, path)
    readers = _reader_columns(df, path, reader_columns)
    has_total = "aac24" in df.columns and "aac24" not in readers
    if not (has_total or has_segments or readers):
        have = ", ".join(repr(c) for c in df.columns)
        raise ValidationInputError(
            "missing reference score column: give 'aac24', all 8 segment grades "
            f"({SEGMENTS[0]} ... {SEGMENTS[-1]}), or reader columns such as "
            f"'{READER_PREFIX}1', '{READER_PREFIX}2' (columns present: {have})",
            path,
            column="aac24",
        )
    keys = _keys(df, path, key_column, jk)
    n = len(df)
    seg = np.zeros((n, len(SEGMENTS)))
    rv = np.zeros((n, len(readers)))
    total = np.zeros(n)
    for i in range(n):
        row = i + 1
        if has_segments:
            for j, s in enumerate(SEGMENTS):
                seg[i, j] = _number(
                    _cell(df, s, i), path, row, s, MAX_GRADE, "reference segment grade", True
                )
        for j, c in enumerate(readers):
            rv[i, j] = _number(_cell(df, c, i), path, row, c, MAX_AAC24, "reader AAC-24 total")
        if has_total:
            total[i] = _number(
                _cell(df, "aac24", i), path, row, "aac24", MAX_AAC24, "reference AAC-24 total"
            )
            if has_segments and abs(total[i] - seg[i].sum()) > 1e-9:
                raise ValidationInputError(
                    f"reference AAC-24 total {_cell(df, 'aac24', i).strip()} differs from the sum "
                    f"of its segment grades ({seg[i].sum():g})",
                    path,
                    row,
                    "aac24",
                )
        elif has_segments:
            total[i] = seg[i].sum()
        else:
            total[i] = rv[i].mean()
    source = "aac24" if has_total else ("segments" if has_segments else "readers_mean")
    return ReferenceTable(
        path=str(path),
        key_column=key_column,
        keys=tuple(keys),
        rows=tuple(range(1, n + 1)),
        total=total,
        source=source,
        segments=seg if has_segments else None,
        readers=tuple(readers),
        reader_values=rv if readers else None,
        n_rows=n,
    )
