"""Figures of the cohort analysis: Kaplan-Meier with at-risk tables, CIF, forest and Love plots.

Each function returns a :class:`aacscore.report.Figure` (PNG bytes) ready for a report. They use
pyplot (lifelines' at-risk table needs it); choose a non-interactive backend (Agg) in batch use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from lifelines import AalenJohansenFitter, KaplanMeierFitter

from aacscore.cohort.matching import BalanceRow
from aacscore.cohort.survival import CoxModel, CoxTerm
from aacscore.report import Figure, figure_from_matplotlib, fmt_ci


def km_figure(
    fitters: Mapping[str, KaplanMeierFitter],
    name: str,
    caption: str,
    title: str = "",
    time_label: str = "Years",
    annotation: str = "",
) -> Figure:
    """Kaplan-Meier curves (event-free survival) with 95 % bands and an at-risk table below."""
    import matplotlib.pyplot as plt
    from lifelines.plotting import add_at_risk_counts

    fig, ax = plt.subplots(figsize=(7.0, 5.2))
    for kmf in fitters.values():
        kmf.plot_survival_function(
            ax=ax, ci_show=True, show_censors=True, censor_styles={"ms": 4, "marker": "|"}
        )
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(time_label)
    ax.set_ylabel("Event-free survival")
    if title:
        ax.set_title(title)
    if annotation:
        ax.text(
            0.02,
            0.04,
            annotation,
            transform=ax.transAxes,
            fontsize=9,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#999"},
        )
    ax.grid(alpha=0.3)
    add_at_risk_counts(*fitters.values(), ax=ax, rows_to_show=["At risk"])
    fig.tight_layout()
    return figure_from_matplotlib(fig, name, caption)


def cif_figure(
    fitters: Mapping[str, AalenJohansenFitter],
    name: str,
    caption: str,
    title: str = "",
    time_label: str = "Years",
) -> Figure:
    """Aalen-Johansen cumulative incidence curves with 95 % bands."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    for f in fitters.values():
        f.plot_cumulative_density(ax=ax, ci_show=True)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(time_label)
    ax.set_ylabel("Cumulative incidence")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_from_matplotlib(fig, name, caption)


def forest_figure(
    rows: Sequence[tuple[CoxModel, CoxTerm]], name: str, caption: str, title: str = ""
) -> Figure:
    """Forest plot of hazard ratios (log scale) with 95 % CIs, one row per (model, term)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    n = max(1, len(rows))
    fig, ax = plt.subplots(figsize=(9.0, 0.42 * n + 1.4))
    y = np.arange(n)[::-1]
    for yi, (model, term) in zip(y, rows, strict=False):
        color = "#1f4e9c" if model.adjusted_for else "#555555"
        ax.plot([term.ci_low, term.ci_high], [yi, yi], color=color, lw=1.6)
        ax.plot([term.hr], [yi], "s", color=color, ms=6)
    ax.axvline(1.0, color="#888", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{m.name}: {t.term}" for m, t in rows], fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("Hazard ratio (95 % CI, log scale)")
    lows = [t.ci_low for _, t in rows if np.isfinite(t.ci_low) and t.ci_low > 0] or [0.5]
    highs = [t.ci_high for _, t in rows if np.isfinite(t.ci_high)] or [2.0]
    lo, hi = min(min(lows), 0.9), max(max(highs), 1.1)
    x0, x1 = lo / 1.3, hi * 1.3
    ax.set_xlim(x0, x1)
    decades = range(int(np.floor(np.log10(x0))), int(np.ceil(np.log10(x1))) + 1)
    nice = [m * 10.0**k for k in decades for m in (1, 2, 5)]
    ticks = [v for v in nice if x0 <= v <= x1]
    if len(ticks) > 9:
        ticks = [10.0**k for k in decades if x0 <= 10.0**k <= x1]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax2 = ax.twinx()
    ax2.set_ylim(ax.get_ylim())
    ax2.set_yticks(y)
    ax2.set_yticklabels([fmt_ci(t.hr, t.ci_low, t.ci_high, digits=2) for _, t in rows], fontsize=8)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return figure_from_matplotlib(fig, name, caption)


def love_figure(balance: Sequence[BalanceRow], name: str, caption: str) -> Figure:
    """Love plot: absolute standardised mean differences before and after matching."""
    import matplotlib.pyplot as plt

    n = max(1, len(balance))
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * n + 1.4))
    y = np.arange(n)[::-1]
    before = [abs(b.smd_before) for b in balance]
    after = [abs(b.smd_after) if b.smd_after is not None else np.nan for b in balance]
    ax.plot(before, y, "o", mfc="none", color="#b22222", label="before matching")
    ax.plot(after, y, "o", color="#1f4e9c", label="after matching")
    ax.axvline(0.1, color="#888", ls="--", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels([b.covariate for b in balance], fontsize=8)
    ax.set_xlabel("|Standardised mean difference|")
    ax.set_xlim(left=0.0)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return figure_from_matplotlib(fig, name, caption)
