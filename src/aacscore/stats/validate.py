"""``aacscore validate``: agreement of aacscore predictions with a reference reading.

Inputs
------
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
* Cases are joined on a key: by default the ``file`` column on both sides reduced to the file
  name without directory and extension (``/data/P001.dcm`` -> ``P001``; only a final
  alphabetic extension such as ``.dcm``/``.png`` is removed, after ``.gz``/``.bz2``/``.xz``/
  ``.zip``, so DICOM UIDs like ``1.2.840.1`` stay whole). ``--key`` names another column for
  both files, ``--pred-key``/``--ref-key`` one per side; the same reduction is applied.

Bad input raises :class:`ValidationInputError` naming the file, row (data row, 1-based; the CSV
line is row + 1) and column.

``metrics.json``
----------------
NaN/undefined values are written as ``null``. Intervals are two-sided at ``confidence`` (0.95).
An *estimate* object is ``{"value", "ci_low", "ci_high"}``; a *proportion* adds ``"successes"``
and ``"n"``; a *kappa* adds ``"se"`` and ``"weights"``.

=====================  ====================================================================
key                    meaning
=====================  ====================================================================
``aacscore_version``   version that wrote the file
``n``                  matched cases used in all statistics
``mae``, ``mae_ci``    mean absolute error of predicted vs reference AAC-24; ``[low, high]``
                       paired bootstrap CI (BCa, seeded; see ``settings``)
``rmse``, ``rmse_ci``  root mean squared error, bootstrap CI
``bias``, ``bias_ci``  mean of predicted - reference, t-based CI
``sd_diff``            SD of the differences
``pearson_r``,         Pearson r, Fisher-z CI, two-sided P
``pearson_ci``,
``pearson_p``
``spearman_rho``,      Spearman rho, CI by Fisher z with the Bonett-Wright variance, P (t
``spearman_ci``,       approximation, scipy)
``spearman_p``
``ccc``, ``ccc_ci``    Lin's concordance correlation coefficient, z-transform CI (Lin 1989)
``ccc_precision``,     Pearson r and bias-correction factor C_b (ccc = precision x accuracy)
``ccc_accuracy``
``bland_altman``       ``{n, bias, bias_ci_low, bias_ci_high, sd, multiplier, loa_low,
                       loa_low_ci_low, loa_low_ci_high, loa_high, loa_high_ci_low,
                       loa_high_ci_high, loa_ci_method, proportional_bias_slope (+ _ci_low,
                       _ci_high), proportional_bias_intercept (+ _ci_low, _ci_high),
                       proportional_bias_p}``; differences are predicted - reference
``icc``                ``{"ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)",
                       "ICC(3,k)"}`` -> ``{value, ci_low, ci_high, f, df1, df2, p}`` over the
                       raters in ``icc_raters`` (the reference or every reader, plus the model)
``icc_raters``         rater names of ``icc`` (``"model"`` last)
``icc_readers``        same mapping over the readers only (``null`` with fewer than 2 readers)
``readers``            reader column names (``[]`` without reader columns)
``pairwise_mae``       ``[{"a", "b", "mae"}]`` between all raters of ``icc``
``groups_definition``  ``{name, labels, ranges, description}`` of the severity groups
``kappa``              ``{"unweighted", "linear", "quadratic"}`` -> kappa object, Cohen's
                       kappa of the severity groups (Fleiss-Cohen-Everitt SE, CI clipped to
                       [-1, 1])
``accuracy``           proportion of cases in the same severity group (Wilson CI)
``groups``             group label -> ``{n_reference, n_predicted, tp, fp, fn, tn,
                       sensitivity, specificity, ppv, npv}`` (one-vs-rest, proportions with
                       Wilson CIs)
``confusion_matrix``   ``{labels, matrix, rows: "reference", columns: "predicted"}``
``segments``           ``null`` unless both files have the 8 grades; else segment name (and
                       ``"all"``: the 8 segments pooled) -> ``{n, mae, mae_ci, bias,
                       accuracy, kappa_linear, kappa_quadratic}``: MAE of the grades
                       (predicted grades as given), exact-grade accuracy and weighted kappa
                       on grades 0-3 (predicted grades rounded half up). Per segment: bootstrap
                       CI for MAE, Wilson for accuracy, Fleiss-Cohen-Everitt for kappa;
                       ``"all"``: every CI by a case-level (cluster) bootstrap
``unmatched``          ``{n_pred_only, n_ref_only, pred_only: [keys], ref_only: [keys]}``:
                       prediction rows without a reference row and vice versa
``failed``             ``{n, cases: [{key, file, status, error, row, in_reference}]}``:
                       prediction rows not ``ok``/``warning``
``n_pred_rows``,       data rows in each file; ``n_warning`` and ``n_low_confidence``: matched
``n_ref_rows``,        cases whose prediction has status ``warning`` / ``low_confidence``
``n_warning``,         true (they are used)
``n_low_confidence``
``reference_source``   ``"aac24"``, ``"segments"`` or ``"readers_mean"``
``warnings``           human-readable warnings (also logged)
``settings``           inputs, key columns, confidence, bootstrap settings, LoA CI method
=====================  ====================================================================
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aacscore import __version__
from aacscore.kauppila import (
    MAX_AAC24,
    MAX_GRADE,
    SEGMENTS,
    SeverityGroups,
    parse_groups,
    round_half_up,
)
from aacscore.report import (
    Block,
    Heading,
    Paragraph,
    Report,
    Table,
    figure_from_matplotlib,
    fmt_ci,
    fmt_p,
)
from aacscore.stats._common import NAN, FloatArray
from aacscore.stats.agreement import (
    LOA_CI_METHODS,
    MIN_CORRELATION_N,
    ContinuousAgreement,
    continuous_agreement,
)
from aacscore.stats.bootstrap import BOOTSTRAP_METHODS, BootstrapCI, bootstrap_ci
from aacscore.stats.categorical import (
    CategoricalAgreement,
    Kappa,
    Proportion,
    agreement_weights,
    categorical_agreement,
    cohens_kappa,
    confusion_matrix,
    wilson_ci,
)
from aacscore.stats.icc import ICCResult, icc

logger = logging.getLogger(__name__)

USED_STATUSES: tuple[str, ...] = ("ok", "warning")
READER_PREFIX = "aac24_reader"
MODEL_RATER = "model"
REFERENCE_RATER = "reference"
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip")
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")
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


# --------------------------------------------------------------------------------------------
# Loading


def case_key(value: str) -> str:
    """Join key of a file name: no directory, no final alphabetic extension (``.nii.gz`` too)."""
    name = re.split(r"[\\/]", str(value).strip())[-1]
    low = name.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    m = _EXTENSION.search(name)
    if m is not None and m.start() > 0:
        name = name[: m.start()]
    return name


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


def _keys(df: pd.DataFrame, path: str | Path, key_column: str) -> list[str]:
    keys: list[str] = []
    first: dict[str, int] = {}
    for i, raw in enumerate(df[key_column].tolist()):
        row = i + 1
        k = case_key(raw)
        if k == "":
            raise ValidationInputError("empty case key", path, row, key_column)
        if k in first:
            shown = f"{k!r}" if str(raw).strip() == k else f"{k!r} (from {str(raw).strip()!r})"
            raise ValidationInputError(
                f"duplicated case key {shown}, first seen in row {first[k]}",
                path,
                row,
                key_column,
            )
        first[k] = row
        keys.append(k)
    return keys


def load_predictions(path: str | Path, key_column: str = "file") -> PredictionTable:
    """Read an aacscore ``results.csv``; keep rows with status ok/warning, list the others."""
    df = _read_csv(path)
    _require_columns(df, path, [key_column, "aac24"])
    has_segments = _segment_columns(df, path)
    keys = _keys(df, path, key_column)
    status = (
        [str(s).strip().lower() for s in df["status"].tolist()]
        if "status" in df.columns
        else ["ok"] * len(df)
    )
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
        all_keys=tuple(keys),
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
    path: str | Path, key_column: str = "file", reader_columns: Sequence[str] | None = None
) -> ReferenceTable:
    """Read a reference CSV with ``aac24``, the 8 segment grades and/or reader totals."""
    df = _read_csv(path)
    _require_columns(df, path, [key_column])
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
    keys = _keys(df, path, key_column)
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


# --------------------------------------------------------------------------------------------
# Matching


@dataclass(frozen=True, eq=False)
class MatchedData:
    """Predictions and reference aligned case by case (in reference order)."""

    keys: tuple[str, ...]
    pred_total: FloatArray
    ref_total: FloatArray
    pred_segments: FloatArray | None
    ref_segments: FloatArray | None
    readers: tuple[str, ...]
    reader_values: FloatArray | None
    reference_source: str
    pred_only: tuple[str, ...]
    ref_only: tuple[str, ...]
    failed: tuple[FailedCase, ...]
    failed_in_reference: tuple[bool, ...]
    n_pred_rows: int
    n_ref_rows: int
    n_warning: int
    n_low_confidence: int

    @property
    def n(self) -> int:
        """Number of matched cases."""
        return len(self.keys)


def match_tables(pred: PredictionTable, ref: ReferenceTable) -> MatchedData:
    """Join predictions and reference on their keys; unmatched and failed rows are recorded."""
    p_index = {k: i for i, k in enumerate(pred.keys)}
    pi: list[int] = []
    ri: list[int] = []
    for j, k in enumerate(ref.keys):
        if k in p_index:
            ri.append(j)
            pi.append(p_index[k])
    ref_set = set(ref.keys)
    all_pred = set(pred.all_keys)
    if not pi:
        ex_p = ", ".join(repr(k) for k in pred.keys[:3]) or "none"
        ex_r = ", ".join(repr(k) for k in ref.keys[:3])
        raise ValidationInputError(
            f"no case in common with {ref.path} (prediction keys from column "
            f"{pred.key_column!r}, e.g. {ex_p}; reference keys from column {ref.key_column!r}, "
            f"e.g. {ex_r}); keys are file names without directory and extension. "
            "Use --key/--pred-key/--ref-key to choose the columns",
            pred.path,
            column=pred.key_column,
        )
    pidx = np.asarray(pi, dtype=np.intp)
    ridx = np.asarray(ri, dtype=np.intp)
    return MatchedData(
        keys=tuple(ref.keys[j] for j in ri),
        pred_total=pred.total[pidx],
        ref_total=ref.total[ridx],
        pred_segments=None if pred.segments is None else pred.segments[pidx],
        ref_segments=None if ref.segments is None else ref.segments[ridx],
        readers=ref.readers,
        reader_values=None if ref.reader_values is None else ref.reader_values[ridx],
        reference_source=ref.source,
        pred_only=tuple(k for k in pred.all_keys if k not in ref_set),
        ref_only=tuple(k for k in ref.keys if k not in all_pred),
        failed=pred.failed,
        failed_in_reference=tuple(f.key in ref_set for f in pred.failed),
        n_pred_rows=pred.n_rows,
        n_ref_rows=ref.n_rows,
        n_warning=sum(pred.warning[i] for i in pi),
        n_low_confidence=sum(pred.low_confidence[i] for i in pi),
    )


# --------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class ValidationSettings:
    """How the statistics are computed."""

    groups: str = "lewis"
    confidence: float = 0.95
    n_resamples: int = 2000
    ci_method: str = "bca"
    seed: int = 0
    loa_ci_method: str = "bland-altman-1999"

    def __post_init__(self) -> None:
        if not (0.0 < self.confidence < 1.0):
            raise ValidationInputError(
                f"confidence must lie between 0 and 1, got {self.confidence}"
            )
        if self.ci_method not in BOOTSTRAP_METHODS:
            raise ValidationInputError(
                f"unknown bootstrap CI method {self.ci_method!r}; use one of {BOOTSTRAP_METHODS}"
            )
        if self.loa_ci_method not in LOA_CI_METHODS:
            raise ValidationInputError(
                f"unknown LoA CI method {self.loa_ci_method!r}; use one of {LOA_CI_METHODS}"
            )
        if self.n_resamples < 0:
            raise ValidationInputError(f"n_resamples must be >= 0, got {self.n_resamples}")
        try:
            parse_groups(self.groups)
        except ValueError as e:
            raise ValidationInputError(f"severity groups: {e}") from None


@dataclass(frozen=True)
class SegmentAgreement:
    """Agreement of the grades of one segment (or ``"all"`` segments pooled)."""

    segment: str
    n: int
    mae: BootstrapCI
    bias: float
    accuracy: Proportion
    kappa_linear: Kappa
    kappa_quadratic: Kappa


@dataclass(frozen=True, eq=False)
class ValidationResult:
    """Everything ``aacscore validate`` computes."""

    data: MatchedData
    settings: ValidationSettings
    groups: SeverityGroups
    continuous: ContinuousAgreement
    icc: ICCResult
    icc_readers: ICCResult | None
    pairwise_mae: tuple[tuple[str, str, float], ...]
    categorical: CategoricalAgreement
    segments: tuple[SegmentAgreement, ...] | None
    warnings: tuple[str, ...]
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of matched cases."""
        return self.data.n


def _round_grades(x: FloatArray) -> FloatArray:
    return np.asarray(
        [min(max(round_half_up(float(v)), 0), MAX_GRADE) for v in x.ravel()], dtype=np.float64
    ).reshape(x.shape)


def _mae_vec(x: FloatArray, y: FloatArray, axis: int = -1) -> Any:
    return np.mean(np.abs(x - y), axis=axis)


def _segment_agreement(
    pred: FloatArray, ref: FloatArray, s: ValidationSettings
) -> tuple[SegmentAgreement, ...]:
    labels = list(range(MAX_GRADE + 1))
    pred_g = _round_grades(pred).astype(int)
    ref_g = ref.astype(int)
    out = []
    for j, name in enumerate(SEGMENTS):
        p, r = pred[:, j], ref[:, j]
        if s.n_resamples > 0:
            mae_ci = bootstrap_ci(
                _mae_vec,
                p,
                r,
                n_resamples=s.n_resamples,
                method=s.ci_method,
                seed=s.seed,
                confidence_level=s.confidence,
                vectorized=True,
            )
        else:
            est = float(np.mean(np.abs(p - r)))
            mae_ci = BootstrapCI(est, NAN, NAN, "none", 0, s.confidence, s.seed)
        cm = confusion_matrix(ref_g[:, j].tolist(), pred_g[:, j].tolist(), labels)
        out.append(
            SegmentAgreement(
                segment=name,
                n=p.size,
                mae=mae_ci,
                bias=float(np.mean(p - r)),
                accuracy=wilson_ci(int(np.trace(cm.array)), cm.n, s.confidence),
                kappa_linear=cohens_kappa(cm, "linear", s.confidence),
                kappa_quadratic=cohens_kappa(cm, "quadratic", s.confidence),
            )
        )
    out.append(_pooled_segments(pred, ref, pred_g, ref_g, s))
    return tuple(out)


def _kappa_stack(tables: FloatArray, weights: FloatArray) -> FloatArray:
    """Kappa of a stack of square count tables (..., c, c) with agreement ``weights``."""
    total = tables.sum(axis=(-2, -1))
    p = tables / total[..., None, None]
    rows = p.sum(axis=-1)
    cols = p.sum(axis=-2)
    po = np.sum(weights * p, axis=(-2, -1))
    pe = np.sum(weights * rows[..., :, None] * cols[..., None, :], axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(pe < 1.0 - 1e-12, (po - pe) / (1.0 - pe), np.nan)
    return out


def _pooled_segments(
    pred: FloatArray, ref: FloatArray, pred_g: Any, ref_g: Any, s: ValidationSettings
) -> SegmentAgreement:
    """All 8 segments pooled; CIs by resampling cases (the segments of a case stay together)."""
    n, n_seg = pred.shape
    c = MAX_GRADE + 1
    per_case_ae = np.mean(np.abs(pred - ref), axis=1)
    case_tables = np.zeros((n, c, c))
    np.add.at(case_tables, (np.repeat(np.arange(n), n_seg), ref_g.ravel(), pred_g.ravel()), 1)
    flat_tables = case_tables.reshape(n, c * c)

    def tables(idx: Any, axis: int = -1) -> FloatArray:
        """Summed tables of resampled cases; ``idx`` holds case indices along ``axis``."""
        a = np.moveaxis(np.asarray(idx), axis, -1).astype(np.intp)
        lead, m = a.shape[:-1], a.shape[-1]
        flat = a.reshape(-1, m)
        rows = flat.shape[0]
        offsets = (np.arange(rows) * n)[:, None]
        counts = np.bincount((flat + offsets).ravel(), minlength=rows * n).reshape(rows, n)
        out: FloatArray = (counts @ flat_tables).reshape(*lead, c, c)
        return out

    def stat_acc(idx: Any, axis: int = -1) -> Any:
        t = tables(idx, axis)
        return np.trace(t, axis1=-2, axis2=-1) / t.sum(axis=(-2, -1))

    def stat_kappa(weights: str) -> Any:
        w = agreement_weights(c, weights)
        return lambda idx, axis=-1: _kappa_stack(tables(idx, axis), w)

    def stat_mean(v: Any, axis: int = -1) -> Any:
        return np.mean(v, axis=axis)

    cm = confusion_matrix(ref_g.ravel().tolist(), pred_g.ravel().tolist(), list(range(c)))
    idx = np.arange(n, dtype=np.float64)
    kl = cohens_kappa(cm, "linear", s.confidence)
    kq = cohens_kappa(cm, "quadratic", s.confidence)
    acc_p = wilson_ci(int(np.trace(cm.array)), cm.n, s.confidence)
    mae_est = float(per_case_ae.mean())

    def boot(fn: Any, data: FloatArray, est: float) -> tuple[float, float]:
        if s.n_resamples == 0 or not math.isfinite(est):
            return NAN, NAN
        try:
            b = bootstrap_ci(
                fn,
                data,
                n_resamples=s.n_resamples,
                method=s.ci_method,
                seed=s.seed,
                confidence_level=s.confidence,
                vectorized=True,
            )
        except ValueError:
            return NAN, NAN
        return b.ci_low, b.ci_high

    mae_lo, mae_hi = boot(stat_mean, per_case_ae, mae_est)
    acc_lo, acc_hi = boot(stat_acc, idx, acc_p.value)
    kl_lo, kl_hi = boot(stat_kappa("linear"), idx, kl.value)
    kq_lo, kq_hi = boot(stat_kappa("quadratic"), idx, kq.value)
    method = s.ci_method if s.n_resamples else "none"
    return SegmentAgreement(
        segment="all",
        n=int(pred.size),
        mae=BootstrapCI(mae_est, mae_lo, mae_hi, method, s.n_resamples, s.confidence, s.seed),
        bias=float(np.mean(pred - ref)),
        accuracy=Proportion(acc_p.value, acc_lo, acc_hi, acc_p.successes, acc_p.n),
        kappa_linear=Kappa(kl.value, kl_lo, kl_hi, NAN, "linear", kl.n),
        kappa_quadratic=Kappa(kq.value, kq_lo, kq_hi, NAN, "quadratic", kq.n),
    )


def compute_metrics(data: MatchedData, settings: ValidationSettings) -> ValidationResult:
    """All agreement statistics of matched data."""
    groups = parse_groups(settings.groups)
    warnings: list[str] = []
    if data.pred_only:
        warnings.append(
            f"{len(data.pred_only)} prediction row(s) have no reference row: "
            + _preview(data.pred_only)
        )
    if data.ref_only:
        warnings.append(
            f"{len(data.ref_only)} reference row(s) have no prediction row: "
            + _preview(data.ref_only)
        )
    if data.failed:
        warnings.append(
            f"{len(data.failed)} prediction row(s) failed and were excluded: "
            + _preview([f.key for f in data.failed])
        )
    if data.n < MIN_CORRELATION_N:
        raise ValidationInputError(
            f"only {data.n} matched case(s): at least {MIN_CORRELATION_N} are needed for the "
            "correlation-type statistics (Pearson, Spearman, Lin's CCC, ICC, Bland-Altman)"
        )
    if data.n < 30:
        warnings.append(f"only {data.n} matched cases: confidence intervals are wide")
    pred, ref = data.pred_total, data.ref_total
    if np.ptp(ref) == 0 or np.ptp(pred) == 0:
        warnings.append("predicted or reference totals are constant: correlations are undefined")

    cont = continuous_agreement(
        pred,
        ref,
        confidence=settings.confidence,
        n_resamples=settings.n_resamples,
        ci_method=settings.ci_method,
        seed=settings.seed,
        loa_ci_method=settings.loa_ci_method,
    )
    if data.readers and data.reader_values is not None:
        names = (*data.readers, MODEL_RATER)
        ratings = np.column_stack([data.reader_values, pred])
    else:
        names = (REFERENCE_RATER, MODEL_RATER)
        ratings = np.column_stack([ref, pred])
    icc_all = icc(ratings, settings.confidence, names)
    icc_r = (
        icc(data.reader_values, settings.confidence, data.readers)
        if data.reader_values is not None and len(data.readers) >= 2
        else None
    )
    pairwise = tuple(
        (names[a], names[b], float(np.mean(np.abs(ratings[:, a] - ratings[:, b]))))
        for a in range(len(names))
        for b in range(a + 1, len(names))
    )
    cat = categorical_agreement(
        [groups.label(t) for t in ref],
        [groups.label(t) for t in pred],
        groups.labels,
        settings.confidence,
    )
    segs = None
    if data.pred_segments is not None and data.ref_segments is not None:
        segs = _segment_agreement(data.pred_segments, data.ref_segments, settings)
        undefined = [s.segment for s in segs if not math.isfinite(s.kappa_linear.value)]
        if undefined:
            warnings.append(
                "weighted kappa undefined (a single grade used by both) for: "
                + ", ".join(undefined)
            )
    elif data.pred_segments is None and data.ref_segments is not None:
        warnings.append("the prediction file has no segment grades: no per-segment agreement")
    for w in warnings:
        logger.warning("%s", w)
    return ValidationResult(
        data=data,
        settings=settings,
        groups=groups,
        continuous=cont,
        icc=icc_all,
        icc_readers=icc_r,
        pairwise_mae=pairwise,
        categorical=cat,
        segments=segs,
        warnings=tuple(warnings),
    )


def _preview(keys: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


# --------------------------------------------------------------------------------------------
# metrics.json


def _clean(x: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else None
    return x


def _boot_dict(b: BootstrapCI) -> list[float]:
    return [b.ci_low, b.ci_high]


def metrics_dict(result: ValidationResult) -> dict[str, Any]:
    """The ``metrics.json`` content (keys documented in this module's docstring)."""
    c = result.continuous
    d = result.data
    cat = result.categorical
    s = result.settings
    out: dict[str, Any] = {
        "aacscore_version": __version__,
        "n": d.n,
        "mae": c.mae.estimate,
        "mae_ci": _boot_dict(c.mae),
        "rmse": c.rmse.estimate,
        "rmse_ci": _boot_dict(c.rmse),
        "bias": c.bias.value,
        "bias_ci": [c.bias.ci_low, c.bias.ci_high],
        "sd_diff": c.sd_diff,
        "pearson_r": c.pearson.value,
        "pearson_ci": [c.pearson.ci_low, c.pearson.ci_high],
        "pearson_p": c.pearson.p,
        "spearman_rho": c.spearman.value,
        "spearman_ci": [c.spearman.ci_low, c.spearman.ci_high],
        "spearman_p": c.spearman.p,
        "ccc": c.ccc.value,
        "ccc_ci": [c.ccc.ci_low, c.ccc.ci_high],
        "ccc_precision": c.ccc.precision,
        "ccc_accuracy": c.ccc.accuracy,
        "bland_altman": c.bland_altman.as_dict(),
        "icc": result.icc.as_dict(),
        "icc_raters": list(result.icc.raters),
        "icc_readers": None if result.icc_readers is None else result.icc_readers.as_dict(),
        "readers": list(d.readers),
        "pairwise_mae": [{"a": a, "b": b, "mae": m} for a, b, m in result.pairwise_mae],
        "groups_definition": {
            "name": result.groups.name,
            "labels": list(result.groups.labels),
            "ranges": [list(r) for r in result.groups.ranges],
            "description": result.groups.describe(),
        },
        "kappa": {
            "unweighted": cat.kappa_unweighted.as_dict(),
            "linear": cat.kappa_linear.as_dict(),
            "quadratic": cat.kappa_quadratic.as_dict(),
        },
        "accuracy": cat.accuracy.as_dict(),
        "groups": {g.label: g.as_dict() for g in cat.categories},
        "confusion_matrix": cat.confusion.as_dict(),
        "segments": None
        if result.segments is None
        else {
            sa.segment: {
                "n": sa.n,
                "mae": sa.mae.estimate,
                "mae_ci": _boot_dict(sa.mae),
                "bias": sa.bias,
                "accuracy": sa.accuracy.as_dict(),
                "kappa_linear": sa.kappa_linear.as_dict(),
                "kappa_quadratic": sa.kappa_quadratic.as_dict(),
            }
            for sa in result.segments
        },
        "unmatched": {
            "n_pred_only": len(d.pred_only),
            "n_ref_only": len(d.ref_only),
            "pred_only": list(d.pred_only),
            "ref_only": list(d.ref_only),
        },
        "failed": {
            "n": len(d.failed),
            "cases": [
                {
                    "key": f.key,
                    "file": f.file,
                    "status": f.status,
                    "error": f.error,
                    "row": f.row,
                    "in_reference": inref,
                }
                for f, inref in zip(d.failed, d.failed_in_reference, strict=True)
            ],
        },
        "n_pred_rows": d.n_pred_rows,
        "n_ref_rows": d.n_ref_rows,
        "n_warning": d.n_warning,
        "n_low_confidence": d.n_low_confidence,
        "reference_source": d.reference_source,
        "warnings": list(result.warnings),
        "settings": {
            **result.inputs,
            "groups": result.groups.name,
            "confidence": s.confidence,
            "bootstrap_resamples": s.n_resamples,
            "bootstrap_method": s.ci_method,
            "bootstrap_seed": s.seed,
            "loa_ci_method": s.loa_ci_method,
            "loa_multiplier": c.bland_altman.multiplier,
        },
    }
    cleaned: dict[str, Any] = _clean(out)
    return cleaned


# --------------------------------------------------------------------------------------------
# Report


def _ci_text(value: float, low: float, high: float, conf: float, digits: int = 3) -> str:
    if not math.isfinite(value):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return fmt_ci(value, low, high, digits, level=conf)


def _p_text(p: float) -> str:
    return fmt_p(p) if math.isfinite(p) else "P = n/a"


def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else "n/a"


def build_report(result: ValidationResult) -> Report:
    """Markdown/HTML report with tables, a methods paragraph and the four plots."""
    from aacscore.stats import plots  # matplotlib only when a report is built

    c = result.continuous
    d = result.data
    cat = result.categorical
    conf = result.settings.confidence
    ba = c.bland_altman
    icc21 = result.icc["ICC(2,1)"]
    pct = f"{100 * conf:g} %"

    def ci(v: float, lo: float, hi: float, digits: int = 3) -> str:
        return _ci_text(v, lo, hi, conf, digits)

    b: list[Block] = []
    b.append(Heading("Summary"))
    excluded = []
    if d.pred_only:
        excluded.append(f"{len(d.pred_only)} prediction(s) without reference")
    if d.ref_only:
        excluded.append(f"{len(d.ref_only)} reference case(s) without prediction")
    if d.failed:
        excluded.append(f"{len(d.failed)} failed prediction(s)")
    b.append(
        Paragraph(
            f"{d.n} radiographs were matched between {result.inputs.get('pred', 'predictions')} "
            f"and {result.inputs.get('ref', 'reference')}"
            + (f" (excluded: {'; '.join(excluded)})" if excluded else "")
            + f". Reference AAC-24 from: {d.reference_source.replace('_', ' ')}."
        )
    )
    b.append(
        Paragraph(
            "Predicted vs reference AAC-24: MAE "
            f"{ci(c.mae.estimate, c.mae.ci_low, c.mae.ci_high, 2)}"
            f", rho {_num(c.spearman.value, 2)}, {_p_text(c.spearman.p)}"
            f", ICC(2,1) {ci(icc21.value, icc21.ci_low, icc21.ci_high)}"
            f", Lin's CCC {ci(c.ccc.value, c.ccc.ci_low, c.ccc.ci_high)}"
            f", mean bias {_num(ba.bias.value, 2)} ({pct} limits of agreement "
            f"{_num(ba.loa_low.value, 2)} to {_num(ba.loa_high.value, 2)})"
            f"; severity groups ({result.groups.describe()}): accuracy "
            f"{ci(cat.accuracy.value, cat.accuracy.ci_low, cat.accuracy.ci_high)}, "
            f"linear weighted kappa "
            f"{ci(cat.kappa_linear.value, cat.kappa_linear.ci_low, cat.kappa_linear.ci_high)}."
        )
    )
    if result.warnings:
        b.append(Paragraph("Warnings: " + " | ".join(result.warnings)))

    b.append(Heading("AAC-24 totals: continuous agreement"))
    rows = [
        ("MAE", ci(c.mae.estimate, c.mae.ci_low, c.mae.ci_high), ""),
        ("RMSE", ci(c.rmse.estimate, c.rmse.ci_low, c.rmse.ci_high), ""),
        ("Mean bias (predicted − reference)", ci(*_est(c.bias)), ""),
        ("Pearson r", ci(*_est(c.pearson)), _p_text(c.pearson.p)),
        (
            "Spearman rho",
            ci(c.spearman.value, c.spearman.ci_low, c.spearman.ci_high),
            _p_text(c.spearman.p),
        ),
        ("Lin's CCC", ci(c.ccc.value, c.ccc.ci_low, c.ccc.ci_high), ""),
        ("ICC(2,1)", ci(icc21.value, icc21.ci_low, icc21.ci_high), _p_text(icc21.p)),
    ]
    b.append(Table(("Statistic", f"Estimate ({pct} CI)", "P"), tuple(rows), caption=f"n = {d.n}"))
    b.append(Heading("Bland-Altman analysis", 3))
    b.append(
        Table(
            ("Quantity", f"Estimate ({pct} CI)"),
            (
                ("Bias", ci(*_est(ba.bias))),
                ("SD of differences", _num(ba.sd)),
                (f"Lower limit of agreement (bias − {ba.multiplier:g} SD)", ci(*_est(ba.loa_low))),
                (f"Upper limit of agreement (bias + {ba.multiplier:g} SD)", ci(*_est(ba.loa_high))),
                ("Proportional bias: slope of difference on mean", ci(*_est(ba.slope))),
                ("Proportional bias: P (slope = 0)", _p_text(ba.slope_p)),
            ),
            caption=f"Limit CIs: {ba.loa_ci_method}",
        )
    )
    b.append(
        figure_from_matplotlib(
            plots.scatter_plot(d.ref_total, d.pred_total),
            "scatter",
            "Predicted against reference AAC-24 with the line of identity.",
        )
    )
    b.append(
        figure_from_matplotlib(
            plots.bland_altman_plot(d.pred_total, d.ref_total, ba),
            "bland_altman",
            f"Bland-Altman plot: bias and {pct} limits of agreement with their {pct} CIs (bands), "
            "dotted: regression of the difference on the mean.",
        )
    )

    b.append(Heading("Intraclass correlation"))
    b.append(_icc_table(result.icc, conf))
    b.append(
        Paragraph(
            f"Raters: {', '.join(result.icc.raters)}. ICC(2,·) measures absolute agreement "
            "(two-way random), ICC(3,·) consistency (two-way mixed; ignores a constant offset); "
            "(·,1) is a single rating, (·,k) the mean of the k raters."
        )
    )
    if result.icc_readers is not None:
        b.append(Heading("Inter-reader agreement (readers only)", 3))
        b.append(_icc_table(result.icc_readers, conf))
    if len(result.pairwise_mae) > 1:
        b.append(
            Table(
                ("Rater A", "Rater B", "MAE"),
                tuple((a, bb, _num(m)) for a, bb, m in result.pairwise_mae),
                caption="Mean absolute difference between every pair of raters",
            )
        )

    b.append(Heading("Severity groups"))
    b.append(Paragraph(f"Groups ({result.groups.name}): {result.groups.describe()}."))
    labels = cat.confusion.labels
    b.append(
        Table(
            ("Reference \\ predicted", *labels, "total"),
            tuple(
                (lab, *(str(v) for v in row), str(sum(row)))
                for lab, row in zip(labels, cat.confusion.matrix, strict=True)
            ),
            caption="Confusion matrix (rows: reference, columns: predicted)",
        )
    )
    b.append(
        Table(
            ("Group", "n (ref)", "Sensitivity", "Specificity", "PPV", "NPV"),
            tuple(
                (
                    g.label,
                    str(g.tp + g.fn),
                    *(ci(*_est(x)) for x in (g.sensitivity, g.specificity, g.ppv, g.npv)),
                )
                for g in cat.categories
            ),
            caption=f"One-vs-rest, Wilson {pct} CIs",
        )
    )
    b.append(
        Table(
            ("Statistic", f"Estimate ({pct} CI)"),
            (
                ("Accuracy (same group)", ci(*_est(cat.accuracy))),
                ("Cohen's kappa", ci(*_est(cat.kappa_unweighted))),
                ("Linear weighted kappa", ci(*_est(cat.kappa_linear))),
                ("Quadratic weighted kappa", ci(*_est(cat.kappa_quadratic))),
            ),
        )
    )
    b.append(
        figure_from_matplotlib(
            plots.confusion_matrix_plot(cat.confusion),
            "confusion_matrix",
            "Severity-group confusion matrix (colour: share of each reference group).",
        )
    )

    if result.segments is not None:
        b.append(Heading("Per-segment agreement"))
        b.append(
            Table(
                ("Segment", "MAE", "Bias", "Exact grade", "Linear kappa", "Quadratic kappa"),
                tuple(
                    (
                        sa.segment,
                        ci(sa.mae.estimate, sa.mae.ci_low, sa.mae.ci_high),
                        _num(sa.bias),
                        ci(*_est(sa.accuracy)),
                        ci(*_est(sa.kappa_linear)),
                        ci(*_est(sa.kappa_quadratic)),
                    )
                    for sa in result.segments
                ),
                caption="Grades 0-3; predicted grades rounded half up for accuracy and kappa. "
                "'all': the 8 segments pooled, CIs by resampling patients.",
            )
        )
        per = [sa for sa in result.segments if sa.segment != "all"]
        b.append(
            figure_from_matplotlib(
                plots.segment_bars(
                    [sa.segment for sa in per],
                    [(sa.mae.estimate, sa.mae.ci_low, sa.mae.ci_high) for sa in per],
                    [_est(sa.accuracy) for sa in per],
                    [_est(sa.kappa_linear) for sa in per],
                ),
                "segments",
                f"Per-segment MAE, exact-grade accuracy and linear weighted kappa ({pct} CIs).",
            )
        )

    b.append(Heading("Data"))
    b.append(
        Table(
            ("Item", "Count"),
            (
                ("Prediction rows", str(d.n_pred_rows)),
                ("Reference rows", str(d.n_ref_rows)),
                ("Matched cases", str(d.n)),
                ("Predictions with status 'warning' (used)", str(d.n_warning)),
                ("Predictions flagged low confidence (used)", str(d.n_low_confidence)),
                ("Failed predictions (excluded)", str(len(d.failed))),
                ("Predictions without reference", str(len(d.pred_only))),
                ("Reference cases without prediction", str(len(d.ref_only))),
            ),
        )
    )
    if d.failed:
        shown = d.failed[:50]
        more = len(d.failed) > 50
        b.append(
            Table(
                ("Case", "Status", "Error"),
                tuple((f.key, f.status, f.error) for f in shown),
                caption="Failed predictions"
                + (f" (first 50 of {len(d.failed)}; all in metrics.json)" if more else ""),
            )
        )
    if d.pred_only or d.ref_only:
        b.append(
            Paragraph(
                "Unmatched: predictions without reference: "
                + (_preview(d.pred_only, 50) or "none")
                + "; reference without prediction: "
                + (_preview(d.ref_only, 50) or "none")
                + "."
            )
        )

    b.append(Heading("Methods"))
    b.append(Paragraph(_methods_text(result)))
    return Report("aacscore validation report", tuple(b))


def _est(x: Any) -> tuple[float, float, float]:
    return (float(x.value), float(x.ci_low), float(x.ci_high))


def _icc_table(r: ICCResult, conf: float) -> Table:
    return Table(
        ("Form", f"ICC ({100 * conf:g} % CI)", "F (df1, df2)", "P"),
        tuple(
            (
                f.name,
                _ci_text(f.value, f.ci_low, f.ci_high, conf),
                f"{_num(f.f, 2)} ({f.df1:g}, {f.df2:g})",
                _p_text(f.p),
            )
            for f in r.forms
        ),
        caption=f"n = {r.n} targets, k = {r.k} raters",
    )


def _methods_text(result: ValidationResult) -> str:
    s = result.settings
    pct = f"{100 * s.confidence:g} %"
    boot = (
        f"{'BCa' if s.ci_method == 'bca' else s.ci_method} bootstrap "
        f"({s.n_resamples} resamples of cases, seed {s.seed})"
        if s.n_resamples
        else "no bootstrap (intervals switched off)"
    )
    return (
        f"Predicted AAC-24 totals were compared with the reference by mean absolute error and "
        f"RMSE ({pct} CIs: {boot}), mean bias (t-based CI), Pearson's r (Fisher z CI), "
        f"Spearman's rho (Fisher z CI with the Bonett-Wright variance; P from the t "
        f"approximation), Lin's concordance correlation coefficient (z-transform CI, Lin 1989) "
        f"and Bland-Altman analysis (limits bias ± {result.continuous.bland_altman.multiplier:g}"
        f" SD, CIs: {s.loa_ci_method}; proportional bias by regression of the difference on the "
        f"mean). Intraclass correlations are the six Shrout & Fleiss (1979) forms with F tests "
        f"and CIs per Shrout & Fleiss / McGraw & Wong (1996). Continuous totals were rounded half "
        f"up before assignment to severity groups; group agreement is given as accuracy and "
        f"one-vs-rest sensitivity, specificity, PPV and NPV with Wilson score CIs, and Cohen's "
        f"kappa (unweighted, linear and quadratic weights) with the Fleiss-Cohen-Everitt (1969) "
        f"standard error. Computed with aacscore {__version__}."
    )


# --------------------------------------------------------------------------------------------
# Entry point


def write_outputs(result: ValidationResult, out_dir: str | Path) -> tuple[Path, Path, Path]:
    """Write ``metrics.json``, ``report.md`` (+ ``report_figures/``) and ``report.html``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    metrics_path.write_text(
        json.dumps(metrics_dict(result), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    md, html = build_report(result).write(out, "report")
    return metrics_path, md, html


def run_validation(
    pred_path: str | Path,
    ref_path: str | Path,
    settings: ValidationSettings | None = None,
    key: str = "file",
    pred_key: str | None = None,
    ref_key: str | None = None,
    reader_columns: Sequence[str] | None = None,
) -> ValidationResult:
    """Load, join and compute; no files written."""
    s = settings or ValidationSettings()
    pk = pred_key or key
    rk = ref_key or key
    pred = load_predictions(pred_path, pk)
    ref = load_reference(ref_path, rk, reader_columns)
    data = match_tables(pred, ref)
    result = compute_metrics(data, s)
    inputs = {"pred": str(pred_path), "ref": str(ref_path), "pred_key": pk, "ref_key": rk}
    return replace(result, inputs=inputs)


def validate(
    pred_path: str | Path,
    ref_path: str | Path,
    out_dir: str | Path,
    settings: ValidationSettings | None = None,
    key: str = "file",
    pred_key: str | None = None,
    ref_key: str | None = None,
    reader_columns: Sequence[str] | None = None,
) -> ValidationResult:
    """Run the whole validation and write ``metrics.json`` and the report into ``out_dir``."""
    result = run_validation(pred_path, ref_path, settings, key, pred_key, ref_key, reader_columns)
    write_outputs(result, out_dir)
    return result
