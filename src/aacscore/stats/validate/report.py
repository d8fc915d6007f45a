"""The validation report (Markdown and HTML): summary, tables, figures and methods."""

from __future__ import annotations

import math
from typing import Any

from aacscore._version import __version__
from aacscore.keys import JoinKey, KeyFrom
from aacscore.report import (
    Block,
    Heading,
    Paragraph,
    Report,
    Table,
    figure_from_matplotlib,
    fmt_ci,
    fmt_num,
    fmt_p,
)
from aacscore.stats.bootstrap import BootstrapMethod
from aacscore.stats.icc import ICCResult
from aacscore.stats.validate.compute import ValidationResult, preview


def _ci_text(value: float, low: float, high: float, conf: float, digits: int = 3) -> str:
    if not math.isfinite(value):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return fmt_ci(value, low, high, digits, level=conf)


def _key_text(result: ValidationResult) -> str:
    """The case key in words (``key_from`` and ``root`` of ``result.inputs``)."""
    key_from = result.inputs.get("key_from") or KeyFrom.NAME
    root = result.inputs.get("root") if key_from == KeyFrom.RELPATH else None
    return f"{JoinKey(key_from, root).describe()} (--key-from {key_from})"


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
            f"and {result.inputs.get('ref', 'reference')} on {_key_text(result)}"
            + (f" (excluded: {'; '.join(excluded)})" if excluded else "")
            + f". Reference AAC-24 from: {d.reference_source.replace('_', ' ')}."
        )
    )
    b.append(
        Paragraph(
            "Predicted vs reference AAC-24: MAE "
            f"{ci(c.mae.estimate, c.mae.ci_low, c.mae.ci_high, 2)}"
            f", rho {fmt_num(c.spearman.value, 2)}, {fmt_p(c.spearman.p)}"
            f", ICC(2,1) {ci(icc21.value, icc21.ci_low, icc21.ci_high)}"
            f", Lin's CCC {ci(c.ccc.value, c.ccc.ci_low, c.ccc.ci_high)}"
            f", mean bias {fmt_num(ba.bias.value, 2)} ({pct} limits of agreement "
            f"{fmt_num(ba.loa_low.value, 2)} to {fmt_num(ba.loa_high.value, 2)})"
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
        ("Pearson r", ci(*_est(c.pearson)), fmt_p(c.pearson.p)),
        (
            "Spearman rho",
            ci(c.spearman.value, c.spearman.ci_low, c.spearman.ci_high),
            fmt_p(c.spearman.p),
        ),
        ("Lin's CCC", ci(c.ccc.value, c.ccc.ci_low, c.ccc.ci_high), ""),
        ("ICC(2,1)", ci(icc21.value, icc21.ci_low, icc21.ci_high), fmt_p(icc21.p)),
    ]
    b.append(Table(("Statistic", f"Estimate ({pct} CI)", "P"), tuple(rows), caption=f"n = {d.n}"))
    b.append(Heading("Bland-Altman analysis", 3))
    b.append(
        Table(
            ("Quantity", f"Estimate ({pct} CI)"),
            (
                ("Bias", ci(*_est(ba.bias))),
                ("SD of differences", fmt_num(ba.sd)),
                (f"Lower limit of agreement (bias − {ba.multiplier:g} SD)", ci(*_est(ba.loa_low))),
                (f"Upper limit of agreement (bias + {ba.multiplier:g} SD)", ci(*_est(ba.loa_high))),
                ("Proportional bias: slope of difference on mean", ci(*_est(ba.slope))),
                ("Proportional bias: P (slope = 0)", fmt_p(ba.slope_p)),
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
                tuple((a, bb, fmt_num(m)) for a, bb, m in result.pairwise_mae),
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
                        fmt_num(sa.bias),
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
                + (preview(d.pred_only, 50) or "none")
                + "; reference without prediction: "
                + (preview(d.ref_only, 50) or "none")
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
                f"{fmt_num(f.f, 2)} ({f.df1:g}, {f.df2:g})",
                fmt_p(f.p),
            )
            for f in r.forms
        ),
        caption=f"n = {r.n} targets, k = {r.k} raters",
    )


def _methods_text(result: ValidationResult) -> str:
    s = result.settings
    pct = f"{100 * s.confidence:g} %"
    boot = (
        f"{'BCa' if s.ci_method == BootstrapMethod.BCA else s.ci_method} bootstrap "
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
