"""Agreement figures of predicted vs true Kauppila scores (validation and benchmark)."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.kauppila import (
    INTEGER_THRESHOLDS,
    SEGMENTS,
    SeverityGroups,
    parse_groups,
    round_half_up,
)

logger = logging.getLogger(__name__)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def icc21(pred: npt.ArrayLike, true: npt.ArrayLike) -> dict[str, float | None]:
    """ICC(2,1) (two-way random, absolute agreement, single rater) with its 95 % CI."""
    from aacscore.stats.icc import icc

    y = np.column_stack([np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)])
    try:
        f = icc(y)["ICC(2,1)"]
    except ValueError as exc:
        logger.debug("ICC undefined: %s", exc)
        return {"value": None, "ci_low": None, "ci_high": None}
    return {"value": _finite(f.value), "ci_low": _finite(f.ci_low), "ci_high": _finite(f.ci_high)}


def spearman_rho(pred: npt.ArrayLike, true: npt.ArrayLike) -> float | None:
    """Spearman's rho (None when undefined, e.g. constant input)."""
    from scipy import stats

    a = np.asarray(pred, dtype=np.float64)
    b = np.asarray(true, dtype=np.float64)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return _finite(float(stats.spearmanr(a, b).statistic))


def group_metrics(
    pred_total: npt.ArrayLike, true_total: npt.ArrayLike, groups: SeverityGroups
) -> dict[str, Any]:
    """Accuracy of the severity group and one-vs-rest sensitivity/specificity per group (with
    Wilson 95 % intervals, :func:`aacscore.stats.categorical.one_vs_rest`)."""
    from aacscore.stats.categorical import ConfusionMatrix, one_vs_rest

    p = np.asarray([groups.index(float(v)) for v in np.asarray(pred_total, dtype=np.float64)])
    t = np.asarray([groups.index(float(v)) for v in np.asarray(true_total, dtype=np.float64)])
    k = len(groups.labels)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (t, p), 1)
    per: dict[str, dict[str, Any]] = {}
    for m in one_vs_rest(ConfusionMatrix(tuple(groups.labels), tuple(map(tuple, cm.tolist())))):
        per[m.label] = {
            "n": m.tp + m.fn,
            "sensitivity": _finite(m.sensitivity.value),
            "specificity": _finite(m.specificity.value),
            "sensitivity_ci": [_finite(m.sensitivity.ci_low), _finite(m.sensitivity.ci_high)],
            "specificity_ci": [_finite(m.specificity.ci_low), _finite(m.specificity.ci_high)],
        }
    return {
        "groups": groups.name,
        "accuracy": float(np.mean(p == t)) if len(p) else None,
        "per_group": per,
        "confusion": cm.tolist(),
    }


def score_metrics(
    pred_total: npt.ArrayLike,
    true_total: npt.ArrayLike,
    pred_grades: npt.ArrayLike | None = None,
    true_grades: npt.ArrayLike | None = None,
    groups: str | SeverityGroups = "lewis",
) -> dict[str, Any]:
    """MAE/RMSE/bias of the total, Spearman, ICC(2,1), group figures and, with grades,
    per-segment exact accuracy of the integer grades (:func:`aacscore.kauppila.integer_grade`);
    the integer AAC-24's figures (:func:`integer_metrics`) of the sum of the integer grades, or
    without grades of the rounded total."""
    p = np.asarray(pred_total, dtype=np.float64)
    t = np.asarray(true_total, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError(f"pred and true totals must be 1-D of equal length: {p.shape}, {t.shape}")
    err = p - t
    g = parse_groups(groups)
    out: dict[str, Any] = {
        "n": int(p.size),
        "mae": float(np.mean(np.abs(err))) if p.size else None,
        "rmse": float(np.sqrt(np.mean(err**2))) if p.size else None,
        "bias": float(np.mean(err)) if p.size else None,
        "spearman": spearman_rho(p, t),
        "icc21": icc21(p, t),
        "total_exact": float(np.mean([round_half_up(v) for v in p] == t)) if p.size else None,
        "group": group_metrics(p, t, g),
    }
    if pred_grades is not None and true_grades is not None:
        pg = np.asarray(pred_grades, dtype=np.float64)
        tg = np.asarray(true_grades, dtype=np.float64)
        rounded = (np.clip(pg, 0, 3)[..., None] >= np.asarray(INTEGER_THRESHOLDS)).sum(-1)
        exact = rounded == tg
        out["segment_exact"] = {
            "overall": float(np.mean(exact)),
            **{s: float(np.mean(exact[:, j])) for j, s in enumerate(SEGMENTS)},
        }
        out["segment_mae"] = float(np.mean(np.abs(pg - tg)))
        out["integer"] = integer_metrics(rounded.sum(axis=1), tg.sum(axis=1))
    else:  # a total-only model: its integer AAC-24 is the total rounded (``Result.aac24_int``)
        out["integer"] = integer_metrics([round_half_up(v) for v in p], t)
    return out


FALSE_POSITIVE_TOTAL = 2
"""An AAC-0 film whose integer AAC-24 reaches this counts as a false positive."""


def integer_metrics(pred_int: npt.ArrayLike, true_total: npt.ArrayLike) -> dict[str, Any]:
    """Agreement of the integer AAC-24 (sum of the integer grades) with the truth, and the
    false-positive rate: the share of AAC-0 films whose integer AAC-24 is at least
    :data:`FALSE_POSITIVE_TOTAL`."""
    p = np.asarray(pred_int, dtype=np.float64)
    t = np.asarray(true_total, dtype=np.float64)
    zero = t == 0
    return {
        "mae": float(np.mean(np.abs(p - t))) if p.size else None,
        "exact": float(np.mean(p == t)) if p.size else None,
        "within_1": float(np.mean(np.abs(p - t) <= 1)) if p.size else None,
        "aac0_films": int(zero.sum()),
        "false_positive_rate": float(np.mean(p[zero] >= FALSE_POSITIVE_TOTAL))
        if zero.any()
        else None,
    }


def headline(m: dict[str, Any]) -> str:
    """One-line summary: MAE, Spearman, ICC and group accuracy."""

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    return (
        f"MAE {f(m['mae'])}, Spearman {f(m['spearman'])}, ICC(2,1) {f(m['icc21']['value'])}, "
        f"group accuracy {f(m['group']['accuracy'])}"
    )
