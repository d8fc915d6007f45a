"""The ``aacscore cohort`` analysis: AAC and outcomes (e.g. MACE) in a (matched) cohort.

The cohort table is read by :mod:`aacscore.cohort.inputs`; severity groups come from
:func:`aacscore.kauppila.parse_groups`. With ``match_on`` the exposed are matched 1:k to the
unexposed on the propensity score (:mod:`aacscore.cohort.matching`) and all survival analyses run
on the matched set, Cox models stratified by matched set (or, with ``matched_model="robust"``,
unstratified with a variance clustered on matched set); adjustment covariates that are constant
within every matched set (e.g. exact-matched ones) are left out of the stratified models. The
full-cohort Cox models are reported as well, as a sensitivity analysis. The per-SD hazard ratio
is ``exp(beta_per_point * SD)`` with the SD of AAC in the analysed cohort (same P and PH test).

Outputs (:func:`aacscore.cohort.run.write_outputs`): ``cohort.json``, ``report.md`` (+
``report_figures/``), ``report.html`` and, when matched, ``matched.csv`` (matched rows with
``match_id``, ``propensity_score``, ``ps_logit``, ``match_weight`` and ``source_row``, the
1-based data row of the input table).

``cohort.json`` keys (stable; times in the input's unit, rates per 1000 person-years; numbers
that cannot be computed are ``null``):

- ``schema_version`` (1); ``input``: ``table``, ``results``, ``time``, ``event``, ``aac``,
  ``key``, ``key_from`` (how ``results`` is joined: name, relpath, sop_uid, study_uid or
  accession), ``root`` (absolute ``--root`` of relpath, else null), ``exposure``, ``competing``,
  ``time_unit``; ``options``: ``matched_model``,
  ``match_on``, ``exact_on``, ``ratio``, ``caliper``, ``adjust``, ``horizons``.
- ``groups``: ``name``, ``description``, ``labels`` (lowest first; the Cox reference).
- ``n``, ``events``, ``competing_events``, ``person_years``, ``median_follow_up`` (reverse
  Kaplan-Meier): the full analysed cohort.
- ``excluded``: ``{n, rows: [{row, key, reason}]}`` — table rows without a usable result when
  joining ``--results`` (no result / failed status / empty key column).
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

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from lifelines import AalenJohansenFitter, KaplanMeierFitter

from aacscore.cohort.cox_models import fit_models
from aacscore.cohort.design import encode_columns
from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.inputs import GROUP_BY, CohortData
from aacscore.cohort.matching import (
    MATCH_ID,
    BalanceRow,
    MatchResult,
    balance_table,
    propensity_match,
)
from aacscore.cohort.options import CohortOptions
from aacscore.cohort.summary import cohort_summary
from aacscore.cohort.survival import (
    CoxModel,
    KMSummary,
    LogRankResult,
    cif_summary,
    cumulative_incidence,
    kaplan_meier,
    km_summary,
    logrank_tests,
)

log = logging.getLogger(__name__)


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

    models, skipped = fit_models(
        options, data, frame, cohort, MATCH_ID if match is not None else None, "", warns
    )
    if match is not None:
        m2, s2 = fit_models(options, data, full, "full", None, " (full cohort)", warns)
        models += m2
        skipped += s2
    if not models:
        reasons = "; ".join(f"{s['name']}: {s['reason']}" for s in skipped)
        raise CohortInputError(f"no Cox model could be estimated ({reasons})", file=data.file)
    for m in models:
        warns += [f"{m.name}: {w}" for w in m.warnings]

    cif, competing = _competing_risks(frame, options, data)

    summary = cohort_summary(
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


def _competing_risks(
    frame: pd.DataFrame, options: CohortOptions, data: CohortData
) -> tuple[dict[str, dict[str, AalenJohansenFitter]], dict[str, Any] | None]:
    """Aalen-Johansen curves by AAC group (and exposure) and the ``competing`` summary."""
    cif: dict[str, dict[str, AalenJohansenFitter]] = {}
    if not options.competing:
        return cif, None
    cif[GROUP_BY] = cumulative_incidence(
        frame,
        options.time,
        options.event,
        options.competing,
        data.group_column,
        list(data.groups.labels),
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
    return cif, competing
