"""Survival statistics: event rates, Kaplan-Meier, log-rank, Aalen-Johansen and Cox models.

Rates are events per ``per`` units of person-time with exact Poisson confidence limits from the
chi-square distribution (Garwood, Biometrika 1936;28:437-442; Ulm, Am J Epidemiol
1990;131:373-375): ``lower = chi2.ppf(a/2, 2d) / 2``, ``upper = chi2.ppf(1 - a/2, 2d + 2) / 2``
events, divided by the person-time. With 0 events the 95 % upper limit is 3.689 events.

Kaplan-Meier, log-rank, Aalen-Johansen and Cox models come from lifelines; this module adds input
checks that turn non-estimable models into a :class:`CohortInputError` with a clear message.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from lifelines import AalenJohansenFitter, CoxPHFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import (
    logrank_test,
    multivariate_logrank_test,
    proportional_hazard_test,
)
from scipy import stats

from aacscore.cohort.design import check_collinearity, is_binary
from aacscore.cohort.errors import CohortInputError

log = logging.getLogger(__name__)

MIN_EVENTS_PER_TERM = 10


@dataclass(frozen=True)
class Rate:
    """An event rate per ``per`` units of person-time with its exact Poisson CI."""

    events: int
    person_time: float
    rate: float
    ci_low: float
    ci_high: float
    per: float = 1000.0


def poisson_rate(events: int, person_time: float, per: float = 1000.0, alpha: float = 0.05) -> Rate:
    """Events per ``per`` person-time units with the exact two-sided (1 - alpha) Poisson CI."""
    if events < 0 or int(events) != events:
        raise ValueError(f"events must be a non-negative integer, got {events}")
    if not person_time > 0:
        raise ValueError(f"person-time must be positive, got {person_time}")
    d = int(events)
    low = 0.0 if d == 0 else float(stats.chi2.ppf(alpha / 2, 2 * d)) / 2.0
    high = float(stats.chi2.ppf(1 - alpha / 2, 2 * d + 2)) / 2.0
    f = per / person_time
    return Rate(
        events=d,
        person_time=float(person_time),
        rate=d * f,
        ci_low=low * f,
        ci_high=high * f,
        per=per,
    )


@dataclass(frozen=True)
class SurvivalAt:
    """Survival (or cumulative incidence) at a horizon with pointwise 95 % CI."""

    horizon: float
    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class KMSummary:
    """Kaplan-Meier summary of one group."""

    by: str
    level: str
    n: int
    events: int
    median: float | None
    at: tuple[SurvivalAt, ...] = ()


def _levels(values: pd.Series, levels: Sequence[str] | None) -> list[str]:
    if levels is not None:
        present = set(values.astype(str))
        return [lv for lv in levels if lv in present]
    return sorted(values.astype(str).unique())


def kaplan_meier(
    df: pd.DataFrame,
    time: str,
    event: str,
    by: str | None = None,
    levels: Sequence[str] | None = None,
    label_format: str = "{}",
) -> dict[str, KaplanMeierFitter]:
    """One fitted Kaplan-Meier estimator per level of ``by`` (or ``"all"`` when None).

    Keys are the levels; ``label_format`` formats the curve label (legend, at-risk table).
    """
    out: dict[str, KaplanMeierFitter] = {}
    if by is None:
        out["all"] = KaplanMeierFitter().fit(df[time], df[event], label="all")
        return out
    g = df[by].astype(str)
    for lv in _levels(g, levels):
        m = g == lv
        out[lv] = KaplanMeierFitter().fit(
            df.loc[m, time], df.loc[m, event], label=label_format.format(lv)
        )
    return out


def _value_at(frame: pd.DataFrame, t: float) -> float:
    idx = frame.index.to_numpy(dtype=np.float64)
    pos = int(np.searchsorted(idx, t, side="right")) - 1
    return float("nan") if pos < 0 else float(frame.to_numpy(dtype=np.float64)[pos, 0])


def _ci_at(ci: pd.DataFrame, t: float) -> tuple[float, float]:
    a, b = _value_at(ci.iloc[:, [0]], t), _value_at(ci.iloc[:, [1]], t)
    return (min(a, b), max(a, b)) if math.isfinite(a) and math.isfinite(b) else (a, b)


def km_summary(
    fitters: Mapping[str, KaplanMeierFitter], by: str, horizons: Sequence[float] = ()
) -> list[KMSummary]:
    """Median survival (None when not reached) and survival at the horizons, per group."""
    out = []
    for lv, kmf in fitters.items():
        med = float(kmf.median_survival_time_)
        ci = kmf.confidence_interval_survival_function_
        at = []
        for h in horizons:
            if h > float(kmf.timeline.max()):
                at.append(SurvivalAt(float(h), math.nan, math.nan, math.nan))
                continue
            lo, hi = _ci_at(ci, h)
            at.append(SurvivalAt(float(h), _value_at(kmf.survival_function_, h), lo, hi))
        out.append(
            KMSummary(
                by=by,
                level=str(lv),
                n=int(kmf.event_observed.size),
                events=int(np.sum(kmf.event_observed)),
                median=med if math.isfinite(med) else None,
                at=tuple(at),
            )
        )
    return out


def median_follow_up(durations: pd.Series, events: pd.Series) -> float | None:
    """Median follow-up by the reverse Kaplan-Meier method (censoring treated as the event)."""
    kmf = KaplanMeierFitter().fit(durations, 1 - events.astype(int))
    m = float(kmf.median_survival_time_)
    return m if math.isfinite(m) else None


@dataclass(frozen=True)
class LogRankResult:
    """A log-rank test: ``comparison`` is ``"overall"`` or ``"A vs B"``."""

    by: str
    comparison: str
    groups: tuple[str, ...]
    statistic: float
    df: int
    p: float


def logrank_tests(
    df: pd.DataFrame,
    time: str,
    event: str,
    by: str,
    levels: Sequence[str] | None = None,
) -> list[LogRankResult]:
    """Overall (k-sample) log-rank test across the levels of ``by`` plus all pairwise tests.

    With two levels the single two-sample test is returned once, as ``"A vs B"``.
    """
    g = df[by].astype(str)
    lv = _levels(g, levels)
    if len(lv) < 2:
        return []
    out: list[LogRankResult] = []
    if len(lv) > 2:
        m = g.isin(lv)
        r = multivariate_logrank_test(df.loc[m, time], g[m], df.loc[m, event])
        out.append(
            LogRankResult(
                by, "overall", tuple(lv), float(r.test_statistic), len(lv) - 1, float(r.p_value)
            )
        )
    for a, b in itertools.combinations(lv, 2):
        ma, mb = g == a, g == b
        r = logrank_test(df.loc[ma, time], df.loc[mb, time], df.loc[ma, event], df.loc[mb, event])
        out.append(
            LogRankResult(by, f"{a} vs {b}", (a, b), float(r.test_statistic), 1, float(r.p_value))
        )
    return out


def cumulative_incidence(
    df: pd.DataFrame,
    time: str,
    event: str,
    competing: str,
    by: str | None = None,
    levels: Sequence[str] | None = None,
    seed: int = 0,
    label_format: str = "{}",
) -> dict[str, AalenJohansenFitter]:
    """Aalen-Johansen cumulative incidence of ``event`` with ``competing`` as competing risk."""
    code = df[event].astype(int) + 2 * df[competing].astype(int)
    groups = (
        {"all": pd.Series(True, index=df.index)}
        if by is None
        else {lv: df[by].astype(str) == lv for lv in _levels(df[by].astype(str), levels)}
    )
    out: dict[str, AalenJohansenFitter] = {}
    for lv, m in groups.items():
        ajf = AalenJohansenFitter(seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lifelines warns when it jitters tied times
            ajf.fit(df.loc[m, time], code[m], event_of_interest=1, label=label_format.format(lv))
        out[str(lv)] = ajf
    return out


def cif_summary(
    fitters: Mapping[str, AalenJohansenFitter], horizons: Sequence[float]
) -> dict[str, tuple[SurvivalAt, ...]]:
    """Cumulative incidence at the horizons (with CI), per group."""
    out: dict[str, tuple[SurvivalAt, ...]] = {}
    for lv, f in fitters.items():
        ci = f.confidence_interval_
        tmax = float(f.cumulative_density_.index.max())
        at = []
        for h in horizons:
            if h > tmax:
                at.append(SurvivalAt(float(h), math.nan, math.nan, math.nan))
                continue
            lo, hi = _ci_at(ci, h)
            at.append(SurvivalAt(float(h), _value_at(f.cumulative_density_, h), lo, hi))
        out[lv] = tuple(at)
    return out


@dataclass(frozen=True)
class CoxTerm:
    """One Cox model term: hazard ratio with 95 % CI, Wald P and Schoenfeld PH-test P."""

    term: str
    coef: float
    se: float
    hr: float
    ci_low: float
    ci_high: float
    p: float
    ph_test_p: float | None = None


@dataclass(frozen=True)
class CoxModel:
    """A fitted Cox proportional-hazards model summarised for reporting."""

    name: str
    terms: tuple[CoxTerm, ...]
    n: int
    events: int
    concordance: float
    strata: str | None = None
    cluster: str | None = None
    log_likelihood: float | None = None
    cohort: str = "full"
    coding: str = ""
    adjusted_for: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def term(self, name: str) -> CoxTerm:
        """The term called ``name``."""
        for t in self.terms:
            if t.term == name:
                return t
        raise KeyError(name)


def fit_cox(
    data: pd.DataFrame,
    time: str,
    event: str,
    terms: Sequence[str],
    *,
    name: str = "cox",
    strata: str | None = None,
    cluster: str | None = None,
    file: str | Path | None = None,
    ph_test: bool = True,
    cohort: str = "full",
    coding: str = "",
    adjusted_for: Sequence[str] = (),
) -> CoxModel:
    """Fit a Cox model of ``time``/``event`` on the numeric columns ``terms``.

    ``strata`` names a column whose levels get separate baseline hazards (e.g. ``match_id``);
    ``cluster`` one whose levels are correlated clusters (robust sandwich variance instead).
    Raises :class:`CohortInputError` for fewer than 2 events, collinear or non-varying terms,
    binary terms whose one level has no events (hazard ratio not estimable) or when lifelines
    does not converge. Fewer than 10 events per term gives a warning in ``warnings``.
    """
    terms = list(terms)
    cols = [time, event, *terms, *(c for c in (strata, cluster) if c)]
    d = data[cols].copy()
    n_events = int(d[event].sum())
    if n_events < 2:
        raise CohortInputError(
            f"model {name!r}: only {n_events} event(s) among {len(d)} patients; a Cox model "
            "needs at least 2 events",
            file=file,
            column=event,
        )
    check_collinearity(d[terms], strata=d[strata] if strata else None, file=file)
    notes: list[str] = []
    for t in terms:
        x = d[t].to_numpy(dtype=np.float64)
        if is_binary(x):
            ev = d[event].to_numpy(dtype=np.int64)
            for level in (0, 1):
                if ev[x == level].sum() == 0:
                    raise CohortInputError(
                        f"model {name!r}: no events among the {int((x == level).sum())} "
                        f"patients with {t} = {level}, so its hazard ratio cannot be estimated "
                        "(monotone likelihood); merge groups (e.g. other --groups) or drop it",
                        file=file,
                        column=t,
                    )
    epv = n_events / max(1, len(terms))
    if epv < MIN_EVENTS_PER_TERM:
        notes.append(
            f"only {epv:.1f} events per model term (< {MIN_EVENTS_PER_TERM}); estimates may be "
            "unstable and CIs too narrow"
        )
    cph = CoxPHFitter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cph.fit(
                d,
                duration_col=time,
                event_col=event,
                strata=[strata] if strata else None,
                cluster_col=cluster,
            )
        except (ConvergenceError, np.linalg.LinAlgError) as exc:
            raise CohortInputError(
                f"model {name!r} did not converge ({str(exc).splitlines()[0]}); too few events "
                "for the number of terms or (near-)collinear covariates — simplify the model",
                file=file,
            ) from None
    for w in caught:
        msg = str(w.message).strip().splitlines()[0]
        if "converge" in msg.lower() or "overflow" in msg.lower():
            notes.append(msg)
    s = cph.summary
    sd = d[terms].std(ddof=0).to_numpy(dtype=np.float64)
    # Monotone likelihood: the per-SD coefficient runs off (|beta * SD| >= 8, an HR per SD
    # of ~3000) or its standard error explodes (SE * SD >= 5).
    coef_sd = np.abs(s.loc[terms, "coef"].to_numpy(dtype=np.float64)) * sd
    se_sd = s.loc[terms, "se(coef)"].to_numpy(dtype=np.float64) * sd
    diverging = [
        t for t, c, e in zip(terms, coef_sd, se_sd, strict=True) if not (c < 8.0 and e < 5.0)
    ]
    if not np.all(np.isfinite(s["se(coef)"].to_numpy())) or diverging:
        where = " within the strata" if strata else ""
        raise CohortInputError(
            f"model {name!r} did not converge: the coefficient of "
            f"{', '.join(repr(t) for t in diverging) or 'a term'} diverges or has no usable "
            f"precision ((near-)monotone likelihood{where}: too few informative events); "
            "simplify the model"
            + (" or use the cluster-robust model (--matched-model robust)" if strata else ""),
            file=file,
        )
    ph: dict[str, float] = {}
    if ph_test:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = proportional_hazard_test(cph, d, time_transform="rank")
            for idx, p in zip(r.summary.index, r.summary["p"], strict=True):
                key = idx if isinstance(idx, str) else idx[0]
                ph[str(key)] = float(p)
        except Exception as exc:  # the PH test is auxiliary; never fail the model for it
            notes.append(f"proportional-hazards test failed: {exc}")
    out_terms = []
    for t in terms:
        row = s.loc[t]
        out_terms.append(
            CoxTerm(
                term=t,
                coef=float(row["coef"]),
                se=float(row["se(coef)"]),
                hr=float(row["exp(coef)"]),
                ci_low=float(row["exp(coef) lower 95%"]),
                ci_high=float(row["exp(coef) upper 95%"]),
                p=float(row["p"]),
                ph_test_p=ph.get(t),
            )
        )
    for msg in notes:
        log.info("%s: %s", name, msg)
    return CoxModel(
        name=name,
        terms=tuple(out_terms),
        n=len(d),
        events=n_events,
        concordance=float(cph.concordance_index_),
        strata=strata,
        cluster=cluster,
        log_likelihood=float(cph.log_likelihood_),
        cohort=cohort,
        coding=coding,
        adjusted_for=tuple(adjusted_for),
        warnings=tuple(dict.fromkeys(notes)),
    )


def rescale_term(
    model: CoxModel, term: str, factor: float, new_term: str, *, name: str, coding: str
) -> CoxModel:
    """``model`` with ``term`` expressed per ``factor`` units (e.g. per SD): ``coef * factor``.

    Exactly what refitting with the column divided by ``factor`` gives: the same P values,
    PH test and concordance, hazard ratio ``exp(coef * factor)`` and its Wald CI.
    """
    if not factor > 0:
        raise ValueError(f"factor must be positive, got {factor}")
    z = float(stats.norm.ppf(0.975))
    terms = []
    for t in model.terms:
        if t.term != term:
            terms.append(t)
            continue
        coef, se = t.coef * factor, t.se * factor
        terms.append(
            CoxTerm(
                term=new_term,
                coef=coef,
                se=se,
                hr=math.exp(coef),
                ci_low=math.exp(coef - z * se),
                ci_high=math.exp(coef + z * se),
                p=t.p,
                ph_test_p=t.ph_test_p,
            )
        )
    return replace(model, name=name, coding=coding, terms=tuple(terms))
