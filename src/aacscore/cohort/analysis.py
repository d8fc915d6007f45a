"""The ``aacscore cohort`` analysis: AAC and outcomes (e.g. MACE) in a (matched) cohort.

Input is a CSV with one row per patient: follow-up time, event indicator (0/1), the AAC-24 total
(or ``--results results.csv`` joined by file stem on a key column), optionally an exposure
(e.g. dialysis yes/no), covariates and a competing event (0/1). Severity groups come from
:func:`aacscore.kauppila.parse_groups`. With ``match_on`` the exposed are matched 1:k to the
unexposed on the propensity score (:mod:`aacscore.cohort.matching`) and all survival analyses run
on the matched set, Cox models stratified by matched set (or, with ``matched_model="robust"``,
unstratified with a variance clustered on matched set); adjustment covariates that are constant
within every matched set (e.g. exact-matched ones) are left out of the stratified models. The
full-cohort Cox models are reported as well, as a sensitivity analysis. The per-SD hazard ratio
is ``exp(beta_per_point * SD)`` with the SD of AAC in the analysed cohort (same P and PH test).

Outputs (:func:`write_outputs`): ``cohort.json``, ``report.md`` (+ ``report_figures/``),
``report.html`` and, when matched, ``matched.csv`` (matched rows with ``match_id``,
``propensity_score``, ``ps_logit``, ``match_weight`` and ``source_row``, the 1-based data row of
the input table).

``cohort.json`` keys (stable; times in the input's unit, rates per 1000 person-years; numbers
that cannot be computed are ``null``):

- ``schema_version`` (1); ``input``: ``table``, ``results``, ``time``, ``event``, ``aac``,
  ``key``, ``exposure``, ``competing``, ``time_unit``; ``options``: ``matched_model``,
  ``match_on``, ``exact_on``, ``ratio``, ``caliper``, ``adjust``, ``horizons``.
- ``groups``: ``name``, ``description``, ``labels`` (lowest first; the Cox reference).
- ``n``, ``events``, ``competing_events``, ``person_years``, ``median_follow_up`` (reverse
  Kaplan-Meier): the full analysed cohort.
- ``excluded``: ``{n, rows: [{row, key, reason}]}`` — table rows without a usable result when
  joining ``--results`` (no result / failed status).
- ``matched`` (bool), ``matched_n`` (patients in the matched set, else null), ``matching``: null
  or ``{covariates, exact_on, ratio, caliper_sd, caliper_width, n_exposed, n_unexposed,
  n_exposed_matched, n_unexposed_matched, n_sets, n_incomplete_sets, propensity_model:
  {converged, coefficients}}``.
- ``balance``: mapping covariate term -> ``{kind, mean_exposed_before, mean_unexposed_before,
  smd_before, mean_exposed_after, mean_unexposed_after, smd_after}`` (after = null when not
  matched; empty without exposure); ``max_abs_smd_before``, ``max_abs_smd_after``.
- ``analysis_cohort`` (``"matched"`` or ``"full"``), ``analysis_n``, ``analysis_events``.
- ``aac``: ``{mean, sd, median, group_counts}`` in the analysis cohort (``sd`` scales the
  per-SD hazard ratio).
- ``km``: list of ``{by, level, n, events, median, at: [{horizon, survival, ci_low, ci_high}]}``
  for ``by`` = ``"aac_group"`` and the exposure column.
- ``logrank``: list of ``{by, comparison, groups, statistic, df, p}``; ``comparison`` is
  ``"overall"`` (k-sample test, df = k - 1) or ``"A vs B"`` (pairwise, df = 1).
- ``rates``: list of ``{by, level, n, events, person_years, rate, ci_low, ci_high, per}`` with
  ``by`` = ``"overall"``, ``"aac_group"`` or the exposure column; ``rate`` per ``per`` (1000)
  person-years with exact Poisson 95 % CI.
- ``cox``: list of models ``{name, cohort, coding, adjusted_for, stratified, strata, cluster, n,
  events, concordance, warnings, terms}``; ``cohort`` is ``matched`` or ``full``; matched-cohort
  models are stratified by ``match_id`` (``matched_model="stratified"``, default: conditional
  HRs) or use a robust variance clustered on it (``"robust"``: marginal HRs, ``cluster``);
  ``coding`` is ``per_point``, ``per_sd``, ``groups`` or ``exposure``; ``terms`` is a list of
  ``{term, hr, ci_low, ci_high, p, coef, se, ph_test_p}`` (Wald P; ``ph_test_p`` the
  Schoenfeld-residual test of proportional hazards, rank time transform). Group terms are
  named ``<aac>[<group>]`` against the lowest group; dummy-coded categorical covariates
  ``<column>[<level>]``.
- ``cox_skipped``: list of ``{name, reason}`` for models that could not be estimated.
- ``competing``: null or ``{column, events, method, note, cif: [{by, level, at: [{horizon,
  cumulative_incidence, ci_low, ci_high}]}]}`` (Aalen-Johansen; ``events`` and the curves are
  in the analysis cohort).
- ``warnings``: list of strings.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd
from lifelines import AalenJohansenFitter, KaplanMeierFitter

from aacscore.cohort.design import (
    check_collinearity,
    coerce_binary,
    constant_within_strata,
    encode_columns,
)
from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.matching import BalanceRow, MatchResult, propensity_match
from aacscore.cohort.survival import (
    CoxModel,
    KMSummary,
    LogRankResult,
    cif_summary,
    cumulative_incidence,
    fit_cox,
    kaplan_meier,
    km_summary,
    logrank_tests,
    median_follow_up,
    poisson_rate,
    rescale_term,
)
from aacscore.kauppila import MAX_AAC24, SeverityGroups, parse_groups
from aacscore.report import Block, Heading, Paragraph, Report, Table, fmt_ci, fmt_p

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TIME_UNITS: dict[str, float] = {
    "years": 1.0,
    "months": 1.0 / 12.0,
    "weeks": 7.0 / 365.25,
    "days": 1.0 / 365.25,
}
RESULT_OK_STATUS = ("ok", "warning")
MATCH_ID = "match_id"
SOURCE_ROW = "source_row"
GROUP_BY = "aac_group"
MATCHED_MODELS = ("stratified", "robust")


@dataclass(frozen=True)
class CohortOptions:
    """Column names and analysis choices of :func:`run_cohort` (see the command's help)."""

    time: str
    event: str
    aac: str = "aac24"
    key: str | None = None
    results: str | Path | None = None
    exposure: str | None = None
    match_on: tuple[str, ...] = ()
    exact_on: tuple[str, ...] = ()
    ratio: int = 1
    caliper: float | None = 0.2
    adjust: tuple[str, ...] = ()
    groups: str = "lewis"
    competing: str | None = None
    time_unit: str = "years"
    horizons: tuple[float, ...] = ()
    matched_model: str = "stratified"

    def __post_init__(self) -> None:
        if self.matched_model not in MATCHED_MODELS:
            raise ValueError(
                f"matched_model must be one of {', '.join(MATCHED_MODELS)}, "
                f"got {self.matched_model!r}"
            )


@dataclass(frozen=True, eq=False)
class CohortData:
    """A validated cohort: coerced columns plus ``source_row`` and the AAC group column."""

    frame: pd.DataFrame
    file: str
    groups: SeverityGroups
    group_column: str
    excluded: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class CohortResult:
    """Everything the analysis produced: ``summary`` is the content of ``cohort.json``."""

    summary: dict[str, Any]
    options: CohortOptions
    data: CohortData
    analysis_frame: pd.DataFrame
    match: MatchResult | None
    models: tuple[CoxModel, ...]
    km: dict[str, dict[str, KaplanMeierFitter]]
    km_summaries: tuple[KMSummary, ...]
    logrank: tuple[LogRankResult, ...]
    cif: dict[str, dict[str, AalenJohansenFitter]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _stem(value: object) -> str:
    text = str(value).strip()
    name = PureWindowsPath(text).name if "\\" in text else Path(text).name
    for suffix in (".nii.gz", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem if "." in name else name


def _read_csv(path: str | Path) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise CohortInputError("file not found", file=p)
    try:
        df = pd.read_csv(p)
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


def _split_csv_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(dict.fromkeys(s.strip() for s in items if s.strip()))


def load_cohort(table: str | Path, options: CohortOptions) -> CohortData:
    """Read and validate the cohort table (and join ``options.results``)."""
    file = str(table)
    df = _read_csv(table)
    groups = parse_groups(options.groups)
    if options.time_unit not in TIME_UNITS:
        raise CohortInputError(
            f"unknown time unit {options.time_unit!r}; use one of {', '.join(TIME_UNITS)}",
            file=file,
        )
    key = options.key
    if options.results is not None and key is None:
        if "file" not in df.columns:
            raise CohortInputError(
                "--results needs --key: the column of the cohort table that holds the image file "
                "name or stem",
                file=file,
            )
        key = "file"
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
    if key is not None:
        dup = out[key].astype(str).map(_stem if options.results is not None else str.strip)
        d = np.flatnonzero(dup.duplicated().to_numpy())
        if d.size:
            raise CohortInputError(
                f"duplicate key {dup.iloc[int(d[0])]!r}", file=file, row=int(d[0]) + 1, column=key
            )

    excluded: list[dict[str, Any]] = []
    notes: list[str] = []
    if options.results is not None:
        assert key is not None
        out, excluded, notes = _join_results(out, key, options.results, options.aac, file)
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


def _join_results(
    table: pd.DataFrame, key: str, results: str | Path, aac: str, file: str
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]]:
    rfile = str(results)
    res = _read_csv(results)
    if "file" not in res.columns:
        raise CohortInputError(
            f"results table needs a 'file' column; found {', '.join(res.columns)}", file=rfile
        )
    rcol = aac if aac in res.columns else "aac24"
    if rcol not in res.columns:
        raise CohortInputError(f"results table has no {aac!r} or 'aac24' column", file=rfile)
    stems = res["file"].map(_stem)
    d = np.flatnonzero(stems.duplicated().to_numpy())
    if d.size:
        raise CohortInputError(
            f"duplicate result for {stems.iloc[int(d[0])]!r}",
            file=rfile,
            row=int(d[0]) + 1,
            column="file",
        )
    status = (
        res["status"].astype(str).str.strip().str.lower()
        if "status" in res.columns
        else pd.Series("ok", index=res.index)
    )
    ok = status.isin(RESULT_OK_STATUS)
    by_stem: dict[str, tuple[int, str, object]] = {
        s: (i, st, v) for i, (s, st, v) in enumerate(zip(stems, status, res[rcol], strict=True))
    }
    notes: list[str] = []
    if aac in table.columns:
        notes.append(f"column {aac!r} of the cohort table is replaced by the AAC of {rfile}")
    values: list[float] = []
    keep: list[int] = []
    excluded: list[dict[str, Any]] = []
    for pos, k in enumerate(table[key].map(_stem)):
        row = int(table[SOURCE_ROW].iloc[pos])
        hit = by_stem.get(k)
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
            f"no cohort row matched a usable result in {rfile} (key column {key!r} compared by "
            "file stem)",
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


def _cox_specs(
    options: CohortOptions, data: CohortData, frame: pd.DataFrame
) -> tuple[pd.DataFrame, list[tuple[str, str, list[str], list[str]]]]:
    """The model design (numeric columns) and specs (name, coding, terms, adjusted_for)."""
    aac = options.aac
    labels = [lv for lv in data.groups.labels if (frame[data.group_column] == lv).any()]
    design = pd.DataFrame(index=frame.index)
    design[aac] = frame[aac].astype(np.float64)
    sd = float(frame[aac].std(ddof=1))
    per_sd = f"{aac} (per SD)"
    design[per_sd] = design[aac] / sd if sd > 0 else np.nan
    group_terms = []
    for lv in labels[1:]:
        t = f"{aac}[{lv}]"
        design[t] = (frame[data.group_column] == lv).astype(np.float64)
        group_terms.append(t)
    if options.exposure:
        design[options.exposure] = frame[options.exposure].astype(np.float64)
    adj_cols = [c for c in options.adjust if c != options.exposure]
    adj_design, _ = encode_columns(frame, adj_cols, file=data.file)
    adj_terms = list(adj_design.columns)
    if options.exposure and options.exposure in options.adjust:
        adj_terms = [options.exposure, *adj_terms]
    for c in adj_design.columns:
        design[c] = adj_design[c]
    specs: list[tuple[str, str, list[str], list[str]]] = []
    codings = [("AAC per point", "per_point", [aac]), ("AAC per SD", "per_sd", [per_sd])]
    if len(group_terms) >= 1:
        codings.append((f"AAC groups (vs {labels[0]})", "groups", group_terms))
    for label, coding, terms in codings:
        specs.append((label, coding, terms, []))
        if adj_terms:
            specs.append((f"{label}, adjusted", coding, [*terms, *adj_terms], adj_terms))
    if options.exposure:
        e = options.exposure
        others = [t for t in adj_terms if t != e]
        specs.append((f"Exposure {e}", "exposure", [e], []))
        if others:
            specs.append((f"Exposure {e}, adjusted", "exposure", [e, *others], others))
    return design, specs


def _fit_models(
    options: CohortOptions,
    data: CohortData,
    frame: pd.DataFrame,
    cohort: str,
    matched_sets: str | None,
    suffix: str,
    warnings_out: list[str],
) -> tuple[list[CoxModel], list[dict[str, str]]]:
    design, specs = _cox_specs(options, data, frame)
    design["__time"] = frame[options.time].to_numpy()
    design["__event"] = frame[options.event].to_numpy()
    strata = matched_sets if options.matched_model == "stratified" else None
    cluster = matched_sets if options.matched_model == "robust" else None
    if matched_sets:
        design[matched_sets] = frame[matched_sets].to_numpy()
    adj_all = [t for t in dict.fromkeys(t for spec in specs for t in spec[3])]
    dropped: list[str] = []
    if strata and adj_all:
        dropped = constant_within_strata(design[adj_all], design[strata])
        if dropped:
            msg = (
                f"{', '.join(dropped)}: constant within every matched set, so removed from "
                "the stratified models (already controlled by the matching)"
            )
            warnings_out.append(msg)
            log.info(msg)
    models: list[CoxModel] = []
    skipped: list[dict[str, str]] = []
    for name, coding, terms, adjusted in specs:
        terms = [t for t in terms if t not in dropped]
        adjusted = [t for t in adjusted if t not in dropped]
        if not terms or (coding == "exposure" and options.exposure not in terms):
            continue
        full_name = f"{name}{suffix}"
        if coding == "per_sd":
            # exp(beta * SD): identical to refitting on AAC / SD, without the refit.
            base = next(
                (m for m in models if m.coding == "per_point" and list(m.adjusted_for) == adjusted),
                None,
            )
            sd = float(frame[options.aac].std(ddof=1))
            if base is not None and sd > 0:
                models.append(
                    rescale_term(base, options.aac, sd, terms[0], name=full_name, coding=coding)
                )
            else:
                why = "its per-point model was not estimated" if sd > 0 else "AAC has SD 0"
                reason = f"model {full_name!r} not estimated: {why}"
                skipped.append({"name": full_name, "reason": reason})
            continue
        # Collinear covariates are an input error (raised); non-estimable fits are skipped.
        group_prefix = f"{options.aac}["
        check_collinearity(
            design[[t for t in terms if not t.startswith(group_prefix)]],
            strata=design[strata] if strata else None,
            file=data.file,
        )
        try:
            m = fit_cox(
                design,
                "__time",
                "__event",
                terms,
                name=full_name,
                strata=strata,
                cluster=cluster,
                file=data.file,
                cohort=cohort,
                coding=coding,
                adjusted_for=adjusted,
            )
        except CohortInputError as exc:
            skipped.append({"name": full_name, "reason": exc.problem})
            log.info("Cox model skipped: %s", exc.problem)
            continue
        models.append(m)
    return models, skipped


def _person_years(frame: pd.DataFrame, options: CohortOptions) -> float:
    return float(frame[options.time].sum()) * TIME_UNITS[options.time_unit]


def _rates(frame: pd.DataFrame, options: CohortOptions, data: CohortData) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    strata: list[tuple[str, str, pd.Series]] = [
        ("overall", "all", pd.Series(True, index=frame.index))
    ]
    for lv in data.groups.labels:
        strata.append((GROUP_BY, lv, frame[data.group_column] == lv))
    if options.exposure:
        for code in (0, 1):
            strata.append((options.exposure, str(code), frame[options.exposure] == code))
    for by, lv, m in strata:
        sub = frame[m]
        if sub.empty:
            continue
        py = _person_years(sub, options)
        events = int(sub[options.event].sum())
        rec: dict[str, Any] = {
            "by": by,
            "level": lv,
            "n": len(sub),
            "events": events,
            "person_years": py,
            "per": 1000.0,
        }
        if py > 0:
            r = poisson_rate(events, py, per=1000.0)
            rec.update(rate=r.rate, ci_low=r.ci_low, ci_high=r.ci_high)
        else:
            rec.update(rate=None, ci_low=None, ci_high=None)
        out.append(rec)
    return out


def analyse_cohort(data: CohortData, options: CohortOptions) -> CohortResult:
    """Run matching, Kaplan-Meier, log-rank, rates, Cox models and competing risks."""
    full = data.frame
    warns: list[str] = list(data.notes)
    n_events = int(full[options.event].sum())
    if n_events < 2:
        raise CohortInputError(
            f"only {n_events} event(s) in {len(full)} patients; survival models need at least 2",
            file=data.file,
            column=options.event,
        )
    match: MatchResult | None = None
    if options.match_on:
        assert options.exposure is not None
        bal_cols = list(dict.fromkeys([*options.match_on, *options.exact_on, *options.adjust]))
        bal_cols = [c for c in bal_cols if c != options.exposure]
        match = propensity_match(
            full,
            options.exposure,
            list(options.match_on),
            ratio=options.ratio,
            caliper=options.caliper,
            exact_on=options.exact_on,
            balance_columns=bal_cols,
            file=data.file,
        )
        if match.n_exposed_matched < match.n_exposed:
            warns.append(
                f"{match.n_exposed - match.n_exposed_matched} of {match.n_exposed} "
                "exposed patients found no match and are excluded from the matched "
                "analysis"
            )
        if not match.propensity_model.converged:
            warns.append("the propensity model did not converge (possible separation)")
        if match.n_incomplete_sets:
            warns.append(
                f"{match.n_incomplete_sets} matched sets have fewer than {options.ratio} controls"
            )
        frame = match.matched.reset_index(drop=True)
        cohort = "matched"
    else:
        frame = full
        cohort = "full"
    balance: list[BalanceRow] = []
    if match is not None:
        balance = list(match.balance)
    elif options.exposure and (options.adjust or options.match_on):
        from aacscore.cohort.matching import balance_table

        cols = [c for c in options.adjust if c != options.exposure]
        if cols:
            bd, _ = encode_columns(full, cols, file=data.file)
            balance = balance_table(bd, full[options.exposure])

    a_events = int(frame[options.event].sum())
    if a_events < 2:
        raise CohortInputError(
            f"only {a_events} event(s) in the {cohort} cohort; survival models need at least 2",
            file=data.file,
            column=options.event,
        )
    labels = list(data.groups.labels)
    km: dict[str, dict[str, KaplanMeierFitter]] = {
        GROUP_BY: kaplan_meier(frame, options.time, options.event, data.group_column, labels)
    }
    lr = logrank_tests(frame, options.time, options.event, data.group_column, labels)
    lr = [LogRankResult(GROUP_BY, r.comparison, r.groups, r.statistic, r.df, r.p) for r in lr]
    if options.exposure:
        km[options.exposure] = kaplan_meier(
            frame,
            options.time,
            options.event,
            options.exposure,
            ["0", "1"],
            label_format=f"{options.exposure} = {{}}",
        )
        lr += logrank_tests(frame, options.time, options.event, options.exposure, ["0", "1"])
    kms: list[KMSummary] = []
    for by, fitters in km.items():
        kms += km_summary(fitters, by, options.horizons)
    empty = [lv for lv in labels if not (frame[data.group_column] == lv).any()]
    if empty:
        warns.append(f"no patients in AAC group(s) {', '.join(empty)} ({data.groups.describe()})")

    models, skipped = _fit_models(
        options, data, frame, cohort, MATCH_ID if match is not None else None, "", warns
    )
    if match is not None:
        m2, s2 = _fit_models(options, data, full, "full", None, " (full cohort)", warns)
        models += m2
        skipped += s2
    if not models:
        reasons = "; ".join(f"{s['name']}: {s['reason']}" for s in skipped)
        raise CohortInputError(f"no Cox model could be estimated ({reasons})", file=data.file)
    for m in models:
        warns += [f"{m.name}: {w}" for w in m.warnings]

    cif: dict[str, dict[str, AalenJohansenFitter]] = {}
    competing: dict[str, Any] | None = None
    if options.competing:
        cif[GROUP_BY] = cumulative_incidence(
            frame, options.time, options.event, options.competing, data.group_column, labels
        )
        if options.exposure:
            cif[options.exposure] = cumulative_incidence(
                frame,
                options.time,
                options.event,
                options.competing,
                options.exposure,
                ["0", "1"],
                label_format=f"{options.exposure} = {{}}",
            )
        cif_rows = []
        for by, fitters in cif.items():
            for lv, at in cif_summary(fitters, options.horizons).items():
                cif_rows.append(
                    {
                        "by": by,
                        "level": lv,
                        "at": [
                            {
                                "horizon": a.horizon,
                                "cumulative_incidence": a.estimate,
                                "ci_low": a.ci_low,
                                "ci_high": a.ci_high,
                            }
                            for a in at
                        ],
                    }
                )
        competing = {
            "column": options.competing,
            "events": int(frame[options.competing].sum()),
            "method": "Aalen-Johansen (lifelines AalenJohansenFitter)",
            "note": (
                "Cumulative incidence accounts for the competing event; Kaplan-Meier curves "
                "and Cox models treat it as censoring (cause-specific hazards)."
            ),
            "cif": cif_rows,
        }

    summary = _summary(
        options, data, frame, cohort, match, balance, kms, lr, models, skipped, competing, warns
    )
    return CohortResult(
        summary=summary,
        options=options,
        data=data,
        analysis_frame=frame,
        match=match,
        models=tuple(models),
        km=km,
        km_summaries=tuple(kms),
        logrank=tuple(lr),
        cif=cif,
        warnings=tuple(dict.fromkeys(warns)),
    )


def _summary(
    options: CohortOptions,
    data: CohortData,
    frame: pd.DataFrame,
    cohort: str,
    match: MatchResult | None,
    balance: Sequence[BalanceRow],
    kms: Sequence[KMSummary],
    lr: Sequence[LogRankResult],
    models: Sequence[CoxModel],
    skipped: Sequence[dict[str, str]],
    competing: dict[str, Any] | None,
    warns: Sequence[str],
) -> dict[str, Any]:
    full = data.frame
    smd_b = [abs(b.smd_before) for b in balance]
    smd_a = [abs(b.smd_after) for b in balance if b.smd_after is not None]
    matching = None
    if match is not None:
        matching = {
            "covariates": list(match.covariates),
            "exact_on": list(match.exact_on),
            "ratio": match.ratio,
            "caliper_sd": match.caliper_sd,
            "caliper_width": match.caliper_width,
            "n_exposed": match.n_exposed,
            "n_unexposed": match.n_unexposed,
            "n_exposed_matched": match.n_exposed_matched,
            "n_unexposed_matched": match.n_unexposed_matched,
            "n_sets": int(match.matched[MATCH_ID].nunique()),
            "n_incomplete_sets": match.n_incomplete_sets,
            "propensity_model": {
                "converged": match.propensity_model.converged,
                "coefficients": dict(
                    zip(
                        ("intercept", *match.propensity_model.names),
                        match.propensity_model.coef,
                        strict=True,
                    )
                ),
            },
        }
    aac = frame[options.aac]
    return {
        "schema_version": SCHEMA_VERSION,
        "input": {
            "table": data.file,
            "results": None if options.results is None else str(options.results),
            "time": options.time,
            "event": options.event,
            "aac": options.aac,
            "key": options.key,
            "exposure": options.exposure,
            "competing": options.competing,
            "time_unit": options.time_unit,
        },
        "options": {
            "matched_model": options.matched_model,
            "match_on": list(options.match_on),
            "exact_on": list(options.exact_on),
            "ratio": options.ratio,
            "caliper": options.caliper,
            "adjust": list(options.adjust),
            "horizons": list(options.horizons),
        },
        "groups": {
            "name": data.groups.name,
            "description": data.groups.describe(),
            "labels": list(data.groups.labels),
        },
        "n": len(full),
        "events": int(full[options.event].sum()),
        "competing_events": int(full[options.competing].sum()) if options.competing else None,
        "person_years": _person_years(full, options),
        "median_follow_up": median_follow_up(full[options.time], full[options.event]),
        "excluded": {"n": len(data.excluded), "rows": list(data.excluded)},
        "matched": match is not None,
        "matched_n": match.n if match is not None else None,
        "matching": matching,
        "balance": {
            b.covariate: {
                "kind": b.kind,
                "mean_exposed_before": b.mean_exposed_before,
                "mean_unexposed_before": b.mean_unexposed_before,
                "smd_before": b.smd_before,
                "mean_exposed_after": b.mean_exposed_after,
                "mean_unexposed_after": b.mean_unexposed_after,
                "smd_after": b.smd_after,
            }
            for b in balance
        },
        "max_abs_smd_before": max(smd_b) if smd_b else None,
        "max_abs_smd_after": max(smd_a) if smd_a else None,
        "analysis_cohort": cohort,
        "analysis_n": len(frame),
        "analysis_events": int(frame[options.event].sum()),
        "aac": {
            "mean": float(aac.mean()),
            "sd": float(aac.std(ddof=1)),
            "median": float(aac.median()),
            "group_counts": {
                lv: int((frame[data.group_column] == lv).sum()) for lv in data.groups.labels
            },
        },
        "km": [
            {
                "by": k.by,
                "level": k.level,
                "n": k.n,
                "events": k.events,
                "median": k.median,
                "at": [
                    {
                        "horizon": a.horizon,
                        "survival": a.estimate,
                        "ci_low": a.ci_low,
                        "ci_high": a.ci_high,
                    }
                    for a in k.at
                ],
            }
            for k in kms
        ],
        "logrank": [
            {
                "by": r.by,
                "comparison": r.comparison,
                "groups": list(r.groups),
                "statistic": r.statistic,
                "df": r.df,
                "p": r.p,
            }
            for r in lr
        ],
        "rates": _rates(frame, options, data),
        "cox": [_model_dict(m) for m in models],
        "cox_skipped": list(skipped),
        "competing": competing,
        "warnings": list(dict.fromkeys(warns)),
    }


def _model_dict(m: CoxModel) -> dict[str, Any]:
    return {
        "name": m.name,
        "cohort": m.cohort,
        "coding": m.coding,
        "adjusted_for": list(m.adjusted_for),
        "stratified": m.strata is not None,
        "strata": m.strata,
        "cluster": m.cluster,
        "n": m.n,
        "events": m.events,
        "concordance": m.concordance,
        "warnings": list(m.warnings),
        "terms": [
            {
                "term": t.term,
                "hr": t.hr,
                "ci_low": t.ci_low,
                "ci_high": t.ci_high,
                "p": t.p,
                "coef": t.coef,
                "se": t.se,
                "ph_test_p": t.ph_test_p,
            }
            for t in m.terms
        ],
    }


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def is_key_term(model: CoxModel, term: str, options: CohortOptions) -> bool:
    """True for the AAC terms of AAC models and the exposure term of exposure models."""
    if model.coding == "exposure":
        return term == options.exposure
    a = options.aac
    return term in (a, f"{a} (per SD)") or term.startswith(f"{a}[")


def _f(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _methods_text(result: CohortResult) -> str:
    o = result.options
    parts = [
        f"AAC-24 severity groups: {result.data.groups.describe()}.",
        "Event-free survival was estimated with the Kaplan-Meier method and compared with the "
        "log-rank test (k-sample and pairwise). Event rates are per 1000 person-years with exact "
        "Poisson 95 % confidence intervals.",
        "Hazard ratios come from Cox proportional-hazards models (lifelines, Breslow baseline, "
        "Efron ties) with AAC as a continuous score (per point and per SD) and in groups (lowest "
        "group as reference); proportional hazards were checked with the Schoenfeld-residual "
        "test (rank time transform) and discrimination summarised by Harrell's C.",
    ]
    if result.match is not None:
        m = result.match
        cal = (
            f"a caliper of {m.caliper_sd:g} SD of the logit ({m.caliper_width:.3f})"
            if m.caliper_width is not None
            else "no caliper"
        )
        exact = f", exact matching on {', '.join(m.exact_on)}" if m.exact_on else ""
        parts.append(
            f"Exposed ({o.exposure} = 1) and unexposed patients were matched 1:{m.ratio} by "
            "greedy nearest-neighbour matching without replacement on the logit of a propensity "
            f"score (logistic regression on {', '.join(m.covariates)}) with {cal}{exact}. "
            "Balance was assessed with standardised mean differences (|SMD| < 0.1 taken as "
            "balanced). "
            + (
                "Cox models in the matched cohort are stratified by matched set (conditional "
                "hazard ratios)."
                if o.matched_model == "stratified"
                else "Cox models in the matched cohort use a robust (sandwich) variance "
                "clustered on matched set (marginal hazard ratios; Austin, Stat Med 2013;32:"
                "2837-2849)."
            )
        )
    if o.adjust:
        parts.append(f"Adjusted models include {', '.join(o.adjust)}.")
    if o.competing:
        parts.append(
            f"{o.competing} is a competing event: cumulative incidence by the Aalen-Johansen "
            "estimator; Kaplan-Meier and Cox analyses treat it as censoring (cause-specific)."
        )
    return " ".join(parts)


def build_report(result: CohortResult) -> Report:
    """The Markdown/HTML report of a cohort analysis."""
    from aacscore.cohort.plots import cif_figure, forest_figure, km_figure, love_figure

    s = result.summary
    o = result.options
    unit = o.time_unit
    b: list[Block] = []
    fu = s["median_follow_up"]
    text = (
        f"{s['n']} patients from {Path(result.data.file).name}: {s['events']} events "
        f"({o.event}) over {s['person_years']:.1f} person-years; median follow-up "
        f"{_f(fu)} {unit} (reverse Kaplan-Meier)."
    )
    if s["competing_events"] is not None:
        text += f" {s['competing_events']} competing events ({o.competing})."
    if s["excluded"]["n"]:
        text += f" {s['excluded']['n']} table rows without a usable AAC result were excluded."
    if result.match is not None:
        text += (
            f" Survival analyses use the matched cohort ({s['analysis_n']} patients, "
            f"{s['analysis_events']} events)."
        )
    b += [Heading("Cohort"), Paragraph(text), Paragraph(_methods_text(result))]

    if s["balance"]:
        m = result.match
        if m is not None:
            b.append(Heading("Propensity-score matching"))
            b.append(
                Paragraph(
                    f"{m.n_exposed_matched} of {m.n_exposed} exposed patients were matched to "
                    f"{m.n_unexposed_matched} of {m.n_unexposed} unexposed "
                    f"({m.matched[MATCH_ID].nunique()} "
                    f"matched sets). Maximum |SMD| {_f(s['max_abs_smd_before'], 3)} before and "
                    f"{_f(s['max_abs_smd_after'], 3)} after matching."
                )
            )
        else:
            b.append(Heading(f"Baseline balance by {o.exposure}"))
        rows = []
        for cov, r in s["balance"].items():
            rows.append(
                (
                    cov,
                    r["kind"],
                    _f(r["mean_exposed_before"], 3),
                    _f(r["mean_unexposed_before"], 3),
                    _f(r["smd_before"], 3),
                    _f(r["mean_exposed_after"], 3),
                    _f(r["mean_unexposed_after"], 3),
                    _f(r["smd_after"], 3),
                )
            )
        b.append(
            Table(
                (
                    "Covariate",
                    "Type",
                    "Exposed (before)",
                    "Unexposed (before)",
                    "SMD before",
                    "Exposed (after)",
                    "Unexposed (after)",
                    "SMD after",
                ),
                tuple(rows),
                caption="Means (proportions for binary terms) and "
                "standardised mean differences of exposed vs unexposed.",
            )
        )
        if m is not None:
            b.append(
                love_figure(
                    m.balance,
                    "love_plot",
                    "Love plot: |SMD| before and after matching (dashed: 0.1).",
                )
            )

    b.append(Heading("Event rates"))
    b.append(
        Table(
            ("Stratum", "Level", "N", "Events", "Person-years", "Rate per 1000 PY (95 % CI)"),
            tuple(
                (
                    r["by"],
                    r["level"],
                    str(r["n"]),
                    str(r["events"]),
                    f"{r['person_years']:.1f}",
                    fmt_ci(r["rate"], r["ci_low"], r["ci_high"], digits=1)
                    if r["rate"] is not None
                    else "n/a",
                )
                for r in s["rates"]
            ),
            caption="Exact Poisson confidence intervals (chi-square method).",
        )
    )

    b.append(Heading("Kaplan-Meier and log-rank"))
    for by, fitters in result.km.items():
        tests = [r for r in result.logrank if r.by == by]
        overall = next((r for r in tests if r.comparison == "overall"), tests[0] if tests else None)
        ann = f"log-rank {fmt_p(overall.p)}" if overall is not None else ""
        what = "AAC severity group" if by == GROUP_BY else by
        b.append(
            km_figure(
                fitters,
                f"km_{'aac_group' if by == GROUP_BY else 'exposure'}",
                f"Kaplan-Meier event-free survival by {what} with numbers at risk.",
                title=f"By {what}",
                time_label=unit.capitalize(),
                annotation=ann,
            )
        )
    if result.logrank:
        b.append(
            Table(
                ("By", "Comparison", "Chi-square", "df", "P"),
                tuple(
                    (r.by, r.comparison, f"{r.statistic:.2f}", str(r.df), fmt_p(r.p))
                    for r in result.logrank
                ),
                caption="Log-rank tests.",
            )
        )
    hz = list(o.horizons)
    b.append(
        Table(
            (
                "By",
                "Group",
                "N",
                "Events",
                f"Median ({unit})",
                *(f"Survival at {h:g} {unit} (95 % CI)" for h in hz),
            ),
            tuple(
                (
                    k.by,
                    k.level,
                    str(k.n),
                    str(k.events),
                    _f(k.median),
                    *(
                        fmt_ci(a.estimate, a.ci_low, a.ci_high, digits=3)
                        if math.isfinite(a.estimate)
                        else "n/a"
                        for a in k.at
                    ),
                )
                for k in result.km_summaries
            ),
            caption="Kaplan-Meier summaries (median n/a: not reached).",
        )
    )

    if result.cif:
        b.append(Heading("Competing risks"))
        b.append(Paragraph(s["competing"]["note"]))
        for by, fitters in result.cif.items():
            what = "AAC severity group" if by == GROUP_BY else by
            b.append(
                cif_figure(
                    fitters,
                    f"cif_{'aac_group' if by == GROUP_BY else 'exposure'}",
                    f"Aalen-Johansen cumulative incidence of {o.event} by {what}, "
                    f"{o.competing} as competing event.",
                    title=f"By {what}",
                    time_label=unit.capitalize(),
                )
            )
        if hz:
            b.append(
                Table(
                    ("By", "Group", *(f"CIF at {h:g} {unit} (95 % CI)" for h in hz)),
                    tuple(
                        (
                            c["by"],
                            c["level"],
                            *(
                                fmt_ci(
                                    a["cumulative_incidence"], a["ci_low"], a["ci_high"], digits=3
                                )
                                if a["cumulative_incidence"] is not None
                                and math.isfinite(a["cumulative_incidence"])
                                else "n/a"
                                for a in c["at"]
                            ),
                        )
                        for c in s["competing"]["cif"]
                    ),
                    caption="Cumulative incidence (Aalen-Johansen).",
                )
            )

    b.append(Heading("Cox proportional-hazards models"))
    rows = []
    for model in result.models:
        for t in model.terms:
            rows.append(
                (
                    model.name,
                    t.term,
                    fmt_ci(t.hr, t.ci_low, t.ci_high, digits=2),
                    fmt_p(t.p),
                    fmt_p(t.ph_test_p) if t.ph_test_p is not None else "n/a",
                    f"{model.concordance:.3f}",
                    f"{model.n}/{model.events}",
                    "strata" if model.strata else ("robust, clustered" if model.cluster else "-"),
                )
            )
    b.append(
        Table(
            ("Model", "Term", "HR (95 % CI)", "P", "PH test P", "C-index", "N/events", "Sets"),
            tuple(rows),
            caption="Wald P values; PH test: Schoenfeld residuals (rank time transform).",
        )
    )
    key_terms = [(m, t) for m in result.models for t in m.terms if is_key_term(m, t.term, o)]
    if key_terms:
        b.append(
            forest_figure(
                key_terms,
                "forest",
                "Hazard ratios of AAC (and exposure) with "
                "95 % CIs; blue: adjusted models, grey: univariable.",
            )
        )
    if s["cox_skipped"]:
        b.append(Paragraph("Models not estimated:"))
        b += [Paragraph(f"- {k['reason']}") for k in s["cox_skipped"]]
    if result.warnings:
        b.append(Heading("Warnings"))
        b += [Paragraph(f"- {w}") for w in result.warnings]
    return Report("AAC and outcomes: cohort analysis", tuple(b))


def write_outputs(result: CohortResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``cohort.json``, ``report.md``/``report.html`` and ``matched.csv`` (if matched)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    jpath = out / "cohort.json"
    jpath.write_text(
        json.dumps(_json_safe(result.summary), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    paths["json"] = jpath
    if result.match is not None:
        mpath = out / "matched.csv"
        m = result.match.matched
        cols = [MATCH_ID, *(c for c in m.columns if c != MATCH_ID)]
        m[cols].to_csv(mpath, index=False)
        paths["matched"] = mpath
    md, html = build_report(result).write(out, "report")
    paths["report_md"] = md
    paths["report_html"] = html
    return paths


def run_cohort(
    table: str | Path, options: CohortOptions, out_dir: str | Path | None = None
) -> CohortResult:
    """Load, analyse and (when ``out_dir`` is given) write all outputs."""
    data = load_cohort(table, options)
    result = analyse_cohort(data, options)
    if out_dir is not None:
        write_outputs(result, out_dir)
    return result


def parse_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Comma-separated column names as a tuple (order kept, duplicates dropped)."""
    return _split_csv_list(value)


def parse_horizons(value: str | None) -> tuple[float, ...]:
    """Comma-separated positive horizons (``"1,3,5"``)."""
    out = []
    for s in _split_csv_list(value):
        try:
            h = float(s)
        except ValueError:
            raise ValueError(f"horizon {s!r} is not a number") from None
        if not h > 0:
            raise ValueError(f"horizons must be positive, got {s}")
        out.append(h)
    return tuple(out)
