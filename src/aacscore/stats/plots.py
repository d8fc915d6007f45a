"""Validation plots as matplotlib figures (Agg rendering, no pyplot state).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so it works in
headless processes and threads; turn it into a report block with
:func:`aacscore.report.figure_from_matplotlib`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from aacscore.kauppila import MAX_AAC24
from aacscore.stats._common import ArrayLike, as_pair
from aacscore.stats.agreement import BlandAltman
from aacscore.stats.categorical import ConfusionMatrix

_BLUE = "#1f77b4"
_RED = "#d62728"
_GREY = "#555555"


def scatter_plot(
    ref: ArrayLike,
    pred: ArrayLike,
    title: str = "Predicted vs reference AAC-24",
    xlabel: str = "Reference AAC-24",
    ylabel: str = "Predicted AAC-24",
    limit: float = MAX_AAC24,
) -> Figure:
    """Predicted against reference with the identity line; repeated points drawn larger."""
    r, p = as_pair(ref, pred, names=("ref", "pred"))
    pairs, counts = np.unique(np.column_stack([r, p]), axis=0, return_counts=True)
    fig = Figure(figsize=(5.0, 5.0))
    ax = fig.add_subplot()
    hi = max(float(limit), float(r.max()), float(p.max()))
    ax.plot([0, hi], [0, hi], color=_GREY, lw=1, ls="--", label="identity")
    ax.scatter(
        pairs[:, 0],
        pairs[:, 1],
        s=18 * np.sqrt(counts),
        alpha=0.6,
        color=_BLUE,
        edgecolors="none",
        label=f"cases (n = {r.size})",
    )
    pad = 0.03 * hi
    ax.set_xlim(-pad, hi + pad)
    ax.set_ylim(-pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False)
    if counts.max() > 1:
        ax.text(
            0.98,
            0.02,
            "marker area ~ number of cases",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color=_GREY,
        )
    fig.tight_layout()
    return fig


def bland_altman_plot(
    pred: ArrayLike,
    ref: ArrayLike,
    result: BlandAltman,
    title: str = "Bland-Altman plot",
    unit: str = "AAC-24",
) -> Figure:
    """Difference (pred - ref) against the mean, with bias and limits of agreement and CIs."""
    p, r = as_pair(pred, ref, names=("pred", "ref"))
    m, d = (p + r) / 2.0, p - r
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.add_subplot()
    ax.scatter(m, d, s=16, alpha=0.6, color=_BLUE, edgecolors="none")
    xmin, xmax = float(m.min()), float(m.max())
    span = max(xmax - xmin, 1.0)
    x0, x1 = xmin - 0.05 * span, xmax + 0.05 * span
    lines = (
        (result.bias, f"bias {result.bias.value:.2f}", "-", _RED),
        (result.loa_low, f"lower LoA {result.loa_low.value:.2f}", "--", _GREY),
        (result.loa_high, f"upper LoA {result.loa_high.value:.2f}", "--", _GREY),
    )
    for est, label, style, colour in lines:
        ax.axhline(est.value, color=colour, ls=style, lw=1.2)
        if np.isfinite(est.ci_low) and np.isfinite(est.ci_high):
            ax.axhspan(est.ci_low, est.ci_high, color=colour, alpha=0.12, lw=0)
        ax.text(x1, est.value, f" {label}", va="center", ha="left", fontsize=8, color=colour)
    ax.axhline(0.0, color="black", lw=0.6, alpha=0.5)
    if np.isfinite(result.slope.value):
        xs = np.array([x0, x1])
        ax.plot(
            xs,
            result.intercept.value + result.slope.value * xs,
            color=_RED,
            lw=0.8,
            ls=":",
            label=f"regression of difference on mean (slope {result.slope.value:.3f})",
        )
        ax.legend(loc="lower left", frameon=False, fontsize=8)
    ax.set_xlim(x0, x1)
    ax.set_xlabel(f"Mean of predicted and reference {unit}")
    ax.set_ylabel(f"Predicted − reference {unit}")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_matrix_plot(
    cm: ConfusionMatrix, title: str = "Severity groups: confusion matrix"
) -> Figure:
    """Heat map coloured by row proportion (share of each reference group), annotated counts."""
    a = cm.array.astype(np.float64)
    rows = a.sum(axis=1, keepdims=True)
    frac = np.divide(a, rows, out=np.zeros_like(a), where=rows > 0)
    c = len(cm.labels)
    size = 1.2 + 1.0 * c
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.add_subplot()
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(c):
        for j in range(c):
            ax.text(
                j,
                i,
                f"{int(a[i, j])}\n({100 * frac[i, j]:.0f} %)",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if frac[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(c), labels=list(cm.labels))
    ax.set_yticks(range(c), labels=list(cm.labels))
    ax.set_xlabel("Predicted group")
    ax.set_ylabel("Reference group")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of reference group")
    fig.tight_layout()
    return fig


def segment_bars(
    segments: Sequence[str],
    mae: Sequence[tuple[float, float, float]],
    accuracy: Sequence[tuple[float, float, float]],
    kappa: Sequence[tuple[float, float, float]],
    title: str = "Per-segment agreement",
    kappa_label: str = "linear weighted kappa",
) -> Figure:
    """Three bar panels per segment: MAE, exact-grade accuracy and weighted kappa.

    Each metric is a sequence of ``(value, ci_low, ci_high)`` in the order of ``segments``.
    """
    names = list(segments)
    if not (len(mae) == len(accuracy) == len(kappa) == len(names)):
        raise ValueError("need one (value, ci_low, ci_high) per segment for every metric")
    x = np.arange(len(names))
    fig = Figure(figsize=(max(6.0, 0.8 * len(names) + 2.0), 7.5))
    axes = fig.subplots(3, 1, sharex=True)
    panels = (
        (axes[0], mae, "MAE (grade)", None),
        (axes[1], accuracy, "exact-grade accuracy", (0.0, 1.05)),
        (axes[2], kappa, kappa_label, None),
    )
    for ax, values, label, ylim in panels:
        v = np.array([t[0] for t in values], dtype=np.float64)
        lo = np.array([t[1] for t in values], dtype=np.float64)
        hi = np.array([t[2] for t in values], dtype=np.float64)
        ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(v)
        err = np.zeros((2, v.size))
        err[0, ok] = np.clip(v[ok] - lo[ok], 0, None)
        err[1, ok] = np.clip(hi[ok] - v[ok], 0, None)
        ax.bar(x, np.nan_to_num(v), color=_BLUE, alpha=0.8, yerr=err, capsize=3)
        for i in np.flatnonzero(~np.isfinite(v)):
            ax.text(x[i], 0.0, "n/a", ha="center", va="bottom", fontsize=8, color=_GREY)
        ax.set_ylabel(label)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.grid(axis="y", alpha=0.3)
    axes[2].set_xticks(x, labels=[n.replace("_", "\n") for n in names])
    axes[0].set_title(title)
    fig.tight_layout()
    return fig
