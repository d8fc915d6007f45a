"""The ``cohort.json`` content of an analysis (keys in :mod:`aacscore.cohort.analysis`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from aacscore.cohort.inputs import CohortData
from aacscore.cohort.matching import MATCH_ID, BalanceRow, MatchResult
from aacscore.cohort.options import CohortOptions
from aacscore.cohort.rates import event_rates, person_years
from aacscore.cohort.survival import CoxModel, KMSummary, LogRankResult, median_follow_up

SCHEMA_VERSION = 1


def cohort_summary(
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
    """The ``cohort.json`` mapping (numbers not yet made JSON-safe)."""
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
            **options.join.settings(),
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
        "person_years": person_years(full, options),
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
        "rates": event_rates(frame, options, data),
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
