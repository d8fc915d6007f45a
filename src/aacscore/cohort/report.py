"""The cohort-analysis report (Markdown and HTML) with its tables and figures."""

from __future__ import annotations

import math
from pathlib import Path

from aacscore.cohort.analysis import CohortResult
from aacscore.cohort.cox_models import is_key_term
from aacscore.cohort.inputs import GROUP_BY
from aacscore.cohort.matching import MATCH_ID
from aacscore.cohort.options import MatchedModel
from aacscore.report import Block, Heading, Paragraph, Report, Table, fmt_ci, fmt_num, fmt_p


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
                if o.matched_model == MatchedModel.STRATIFIED
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
        f"{fmt_num(fu, 2)} {unit} (reverse Kaplan-Meier)."
    )
    if s["competing_events"] is not None:
        text += f" {s['competing_events']} competing events ({o.competing})."
    if o.results is not None:
        text += (
            f" AAC-24 from {Path(o.results).name}, joined on {o.join.describe()} "
            f"(--key-from {o.join.kind})."
        )
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
                    f"({m.matched[MATCH_ID].nunique()} matched sets). Maximum |SMD| "
                    f"{fmt_num(s['max_abs_smd_before'], 3)} before and "
                    f"{fmt_num(s['max_abs_smd_after'], 3)} after matching."
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
                    fmt_num(r["mean_exposed_before"], 3),
                    fmt_num(r["mean_unexposed_before"], 3),
                    fmt_num(r["smd_before"], 3),
                    fmt_num(r["mean_exposed_after"], 3),
                    fmt_num(r["mean_unexposed_after"], 3),
                    fmt_num(r["smd_after"], 3),
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
                    fmt_num(k.median, 2),
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
