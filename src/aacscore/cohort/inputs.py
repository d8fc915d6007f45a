"""Reading and validating the cohort table of ``aacscore cohort`` (and joining ``--results``).

One row per patient: follow-up time, event indicator (0/1), the AAC-24 total (or ``--results
results.csv`` joined on a key column), optionally an exposure (e.g. dialysis yes/no), covariates
and a competing event (0/1). Bad input raises :class:`~aacscore.cohort.errors.CohortInputError`
naming the file, row and column.

The ``--results`` join (:class:`aacscore.keys.JoinKey`, ``--key-from``): by default the
:func:`aacscore.keys.case_key` of ``results.csv``'s ``file`` and of the table's ``--key`` column
(default ``file``); ``relpath`` the paths relative to ``--root``; ``sop_uid``, ``study_uid`` or
``accession`` that column of ``results.csv`` and the table's ``--key`` column (default: the
column of that name). Keys must be unique in the table and in ``results.csv`` (with
``study_uid``/``accession``: among its scored rows, ok/warning). Table rows with an empty key or
no usable result are excluded and listed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aacscore.cohort.design import coerce_binary, encode_columns
from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.options import TIME_UNITS, CohortOptions
from aacscore.kauppila import MAX_AAC24, SeverityGroups, parse_groups
from aacscore.keys import CaseKeyError, JoinKey, KeyFrom, find_duplicate

log = logging.getLogger(__name__)

RESULT_OK_STATUS = ("ok", "warning")
SOURCE_ROW = "source_row"
GROUP_BY = "aac_group"
"""The ``by`` label of strata by AAC severity group (KM, log-rank, rates, CIF)."""


@dataclass(frozen=True, eq=False)
class CohortData:
    """A validated cohort: coerced columns plus ``source_row`` and the AAC group column."""

    frame: pd.DataFrame
    file: str
    groups: SeverityGroups
    group_column: str
    excluded: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()


def _read_csv(
    path: str | Path, text_columns: Sequence[str | None] = (), all_text: bool = False
) -> pd.DataFrame:
    """The CSV; ``text_columns`` (or every column) are read as text (``00123`` stays)."""
    p = Path(path)
    if not p.is_file():
        raise CohortInputError("file not found", file=p)
    try:
        if all_text:
            df = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False)
        else:
            df = pd.read_csv(p, dtype={c: str for c in text_columns if c})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CohortInputError(f"cannot read CSV ({exc})", file=p) from None
    if df.empty:
        raise CohortInputError("the table has no data rows", file=p)
    df.columns = [str(c).strip() for c in df.columns]
    return df.reset_index(drop=True)


def _numeric(
    values: pd.Series,
    column: str,
    file: str,
    *,
    what: str,
    low: float | None = None,
    high: float | None = None,
) -> pd.Series:
    num = pd.to_numeric(values, errors="coerce")
    for i, (raw, v) in enumerate(zip(values.tolist(), num.tolist(), strict=True)):
        if pd.isna(raw) or (isinstance(raw, str) and raw.strip() == ""):
            raise CohortInputError(f"missing {what}", file=file, row=i + 1, column=column)
        if v is None or not math.isfinite(float(v)):
            raise CohortInputError(
                f"{what} {raw!r} is not a finite number", file=file, row=i + 1, column=column
            )
        if low is not None and v < low:
            raise CohortInputError(
                f"{what} {v:g} is below {low:g}", file=file, row=i + 1, column=column
            )
        if high is not None and v > high:
            raise CohortInputError(
                f"{what} {v:g} is above {high:g}", file=file, row=i + 1, column=column
            )
    return num.astype(np.float64)


def load_cohort(table: str | Path, options: CohortOptions) -> CohortData:
    """Read and validate the cohort table (and join ``options.results``)."""
    file = str(table)
    join = options.join
    df = _read_csv(table, (options.key, join.kind.results_column))
    groups = parse_groups(options.groups)
    if options.time_unit not in TIME_UNITS:
        raise CohortInputError(
            f"unknown time unit {options.time_unit!r}; use one of {', '.join(TIME_UNITS)}",
            file=file,
        )
    if options.results is None and join.kind is not KeyFrom.NAME:
        raise CohortInputError(
            f"--key-from {join.kind} chooses how --results is joined; give --results results.csv",
            file=file,
        )
    key = options.key
    if options.results is not None and key is None:
        key = join.kind.results_column
        if key not in df.columns:
            raise CohortInputError(
                f"--results needs --key: the column of the cohort table that holds the "
                f"{join.describe()} (there is no {key!r} column)",
                file=file,
            )
    needed = [options.time, options.event]
    if options.results is None:
        needed.append(options.aac)
    for col in (key, options.exposure, options.competing):
        if col:
            needed.append(col)
    needed += [*options.match_on, *options.exact_on, *options.adjust]
    missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if missing:
        raise CohortInputError(
            f"missing column(s) {', '.join(repr(c) for c in missing)}; available: "
            f"{', '.join(df.columns)}",
            file=file,
        )
    if (options.match_on or options.exact_on) and not options.exposure:
        raise CohortInputError("matching (--match-on/--exact-on) needs --exposure", file=file)
    if options.exact_on and not options.match_on:
        raise CohortInputError(
            "--exact-on is used with --match-on (propensity matching)", file=file
        )

    out = df.copy()
    out[SOURCE_ROW] = np.arange(1, len(df) + 1)
    out[options.time] = _numeric(
        df[options.time], options.time, file, what="follow-up time", low=0.0
    )
    out[options.event] = coerce_binary(df[options.event], options.event, file)
    if options.competing:
        out[options.competing] = coerce_binary(df[options.competing], options.competing, file)
        both = np.flatnonzero((out[options.event] == 1) & (out[options.competing] == 1))
        if both.size:
            raise CohortInputError(
                f"both the event {options.event!r} and the competing event are 1; a patient "
                "can have only the first of them",
                file=file,
                row=int(both[0]) + 1,
                column=options.competing,
            )
    if options.exposure:
        out[options.exposure] = coerce_binary(df[options.exposure], options.exposure, file)
        if out[options.exposure].nunique() < 2:
            raise CohortInputError(
                "exposure has a single value; need both 0 and 1", file=file, column=options.exposure
            )
    covariates = [
        c for c in dict.fromkeys([*options.match_on, *options.adjust]) if c != options.exposure
    ]
    encode_columns(out, covariates, file=file)  # validates: missing values name row and column
    for c in options.exact_on:
        miss = np.flatnonzero(df[c].isna().to_numpy())
        if miss.size:
            raise CohortInputError("missing value", file=file, row=int(miss[0]) + 1, column=c)
    if key is not None and options.results is None:
        dup = out[key].astype(str).map(str.strip)
        d = np.flatnonzero(dup.duplicated().to_numpy())
        if d.size:
            raise CohortInputError(
                f"duplicate key {dup.iloc[int(d[0])]!r}", file=file, row=int(d[0]) + 1, column=key
            )

    excluded: list[dict[str, Any]] = []
    notes: list[str] = []
    if options.results is not None:
        assert key is not None
        keys = _table_keys(out[key], join, file, key)
        out, excluded, notes = _join_results(
            out, keys, key, join, options.results, options.aac, file
        )
    else:
        out[options.aac] = _numeric(
            df[options.aac], options.aac, file, what="AAC total", low=0.0, high=float(MAX_AAC24)
        )
    gcol = f"{options.aac}_group"
    out[gcol] = [groups.label(v) for v in out[options.aac]]
    return CohortData(
        frame=out.reset_index(drop=True),
        file=file,
        groups=groups,
        group_column=gcol,
        excluded=tuple(excluded),
        notes=tuple(notes),
    )


def _text(values: pd.Series) -> list[str]:
    return ["" if pd.isna(v) else str(v).strip() for v in values.tolist()]


def _table_keys(values: pd.Series, join: JoinKey, file: str, column: str) -> list[str]:
    """Keys of the cohort table's key column; unique apart from empty ones."""
    raw = _text(values)
    keys: list[str] = []
    for i, v in enumerate(raw):
        try:
            keys.append(join.of_table(v))
        except CaseKeyError as exc:
            raise CohortInputError(str(exc), file=file, row=i + 1, column=column) from None
    dup = find_duplicate(keys, raw)
    if dup is not None:
        raise CohortInputError(
            join.duplicate_problem(dup), file=file, row=dup.rows[1], column=column
        )
    return keys


def _result_keys(res: pd.DataFrame, join: JoinKey, rfile: str, used: Sequence[bool]) -> list[str]:
    """Keys of ``results.csv``: every scored row has one, and they are unique."""
    col = join.kind.results_column
    if col not in res.columns:
        problem = (
            join.missing_column_problem(col)
            if col != "file"
            else f"results table needs a 'file' column; found {', '.join(res.columns)}"
        )
        raise CohortInputError(problem, file=rfile)
    raw = _text(res[col])
    labels = _text(res["file"]) if "file" in res.columns else raw
    keys: list[str] = []
    for i, v in enumerate(raw):
        try:
            keys.append(join.of_result(v))
        except CaseKeyError as exc:
            raise CohortInputError(str(exc), file=rfile, row=i + 1, column=col) from None
    empty = [i for i, k in enumerate(keys) if not k and used[i]]
    if empty and col != "file":
        raise CohortInputError(
            join.missing_values_problem([i + 1 for i in empty], [labels[i] for i in empty]),
            file=rfile,
            row=empty[0] + 1,
            column=col,
        )
    dup = find_duplicate(keys, labels, None if join.kind.per_film else used)
    if dup is not None:
        raise CohortInputError(join.duplicate_problem(dup), file=rfile, row=dup.rows[1], column=col)
    return keys


def _join_results(
    table: pd.DataFrame,
    table_keys: list[str],
    key: str,
    join: JoinKey,
    results: str | Path,
    aac: str,
    file: str,
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]]:
    rfile = str(results)
    res = _read_csv(results, all_text=True)
    rcol = aac if aac in res.columns else "aac24"
    if rcol not in res.columns:
        raise CohortInputError(f"results table has no {aac!r} or 'aac24' column", file=rfile)
    status = (
        res["status"].astype(str).str.strip().str.lower()
        if "status" in res.columns
        else pd.Series("ok", index=res.index)
    )
    ok = status.isin(RESULT_OK_STATUS)
    keys = _result_keys(res, join, rfile, ok.tolist())
    by_key: dict[str, tuple[int, str, object]] = {}
    for i, (k, st, v) in enumerate(zip(keys, status, res[rcol], strict=True)):
        if k and (k not in by_key or ok.iloc[i]):  # a study's usable film wins over failed ones
            by_key[k] = (i, st, v)
    notes: list[str] = []
    if aac in table.columns:
        notes.append(f"column {aac!r} of the cohort table is replaced by the AAC of {rfile}")
    values: list[float] = []
    keep: list[int] = []
    excluded: list[dict[str, Any]] = []
    for pos, k in enumerate(table_keys):
        row = int(table[SOURCE_ROW].iloc[pos])
        if not k:
            excluded.append({"row": row, "key": k, "reason": f"empty key column {key!r}"})
            continue
        hit = by_key.get(k)
        if hit is None:
            excluded.append({"row": row, "key": k, "reason": "no result"})
            continue
        i, st, v = hit
        if not ok.iloc[i]:
            excluded.append({"row": row, "key": k, "reason": f"result status {st!r}"})
            continue
        num = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
        if pd.isna(num) or not (0.0 <= float(num) <= MAX_AAC24):
            raise CohortInputError(
                f"AAC total {v!r} is not a number in 0-{MAX_AAC24}",
                file=rfile,
                row=i + 1,
                column=rcol,
            )
        values.append(float(num))
        keep.append(pos)
    if not keep:
        raise CohortInputError(
            f"no cohort row matched a usable result in {rfile} (key column {key!r}; keys are "
            f"{join.describe()}, --key-from {join.kind})",
            file=file,
            column=key,
        )
    out = table.iloc[keep].copy()
    out[aac] = values
    if excluded:
        notes.append(f"{len(excluded)} cohort rows have no usable result and are excluded")
    for n in notes:
        log.info(n)
    return out, excluded, notes
