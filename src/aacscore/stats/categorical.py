"""Agreement of categorical readings: confusion matrix, one-vs-rest accuracy, Cohen's kappa.

Conventions and methods:

* Confusion matrices have the **reference in rows and the prediction in columns**.
* Proportions (sensitivity, specificity, PPV, NPV, accuracy) come with Wilson score intervals
  (Wilson 1927; recommended by Newcombe 1998). A proportion with a zero denominator is NaN.
* Per category (one-vs-rest): sensitivity = TP / (TP + FN), specificity = TN / (TN + FP),
  PPV = TP / (TP + FP), NPV = TN / (TN + FN), the category being "positive".
* Cohen's kappa, unweighted or weighted with linear (``1 - |i-j|/(c-1)``) or quadratic
  (``1 - ((i-j)/(c-1))^2``) agreement weights over the ordered categories. The CI is
  ``kappa +/- z SE`` with the large-sample (non-null) standard error of Fleiss, Cohen & Everitt
  (1969), the same as R's ``vcd::Kappa``, clipped to [-1, 1]. Kappa is NaN when chance agreement
  is 1 (both readers used a single category). Quadratic-weighted kappa equals Lin's CCC of the
  category indices.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.stats._common import NAN, check_confidence, z_crit

KAPPA_WEIGHTS: tuple[str, ...] = ("unweighted", "linear", "quadratic")


@dataclass(frozen=True)
class Proportion:
    """``successes / n`` with a Wilson score interval."""

    value: float
    ci_low: float
    ci_high: float
    successes: int
    n: int

    def as_dict(self) -> dict[str, float | int]:
        """``{"value", "ci_low", "ci_high", "successes", "n"}``."""
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "successes": self.successes,
            "n": self.n,
        }


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts with reference categories in rows and predicted categories in columns."""

    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        c = len(self.labels)
        if c < 2:
            raise ValueError(f"a confusion matrix needs at least 2 categories, got {c}")
        if len(self.matrix) != c or any(len(r) != c for r in self.matrix):
            raise ValueError(f"confusion matrix must be {c} x {c}")
        if any(v < 0 for r in self.matrix for v in r):
            raise ValueError("confusion matrix counts must be non-negative")

    @property
    def array(self) -> npt.NDArray[np.int64]:
        """The counts as an integer array."""
        return np.asarray(self.matrix, dtype=np.int64)

    @property
    def n(self) -> int:
        """Total count."""
        return int(self.array.sum())

    def as_dict(self) -> dict[str, Any]:
        """``{"labels", "matrix", "rows": "reference", "columns": "predicted"}``."""
        return {
            "labels": list(self.labels),
            "matrix": [list(r) for r in self.matrix],
            "rows": "reference",
            "columns": "predicted",
        }


@dataclass(frozen=True)
class Kappa:
    """Cohen's kappa (possibly weighted) with its large-sample SE and CI."""

    value: float
    ci_low: float
    ci_high: float
    se: float
    weights: str
    n: int

    def as_dict(self) -> dict[str, float | str]:
        """``{"value", "ci_low", "ci_high", "se", "weights"}``."""
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "se": self.se,
            "weights": self.weights,
        }


@dataclass(frozen=True)
class CategoryMetrics:
    """One-vs-rest diagnostic accuracy of one category."""

    label: str
    tp: int
    fp: int
    fn: int
    tn: int
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion

    def as_dict(self) -> dict[str, Any]:
        """Counts plus the four proportions (each :meth:`Proportion.as_dict`)."""
        return {
            "n_reference": self.tp + self.fn,
            "n_predicted": self.tp + self.fp,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "sensitivity": self.sensitivity.as_dict(),
            "specificity": self.specificity.as_dict(),
            "ppv": self.ppv.as_dict(),
            "npv": self.npv.as_dict(),
        }


@dataclass(frozen=True)
class CategoricalAgreement:
    """Confusion matrix, accuracy, per-category metrics and the three kappas."""

    confusion: ConfusionMatrix
    accuracy: Proportion
    categories: tuple[CategoryMetrics, ...]
    kappa_unweighted: Kappa
    kappa_linear: Kappa
    kappa_quadratic: Kappa


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> Proportion:
    """Proportion ``successes / n`` with the Wilson score interval (no continuity correction)."""
    check_confidence(confidence)
    if isinstance(successes, bool) or isinstance(n, bool):
        raise TypeError("successes and n must be integers")
    x, m = int(successes), int(n)
    if x != successes or m != n:
        raise ValueError(f"successes and n must be whole numbers, got {successes} and {n}")
    if m < 0 or x < 0 or x > m:
        raise ValueError(f"need 0 <= successes <= n, got {x} of {m}")
    if m == 0:
        return Proportion(NAN, NAN, NAN, 0, 0)
    z = z_crit(confidence)
    p = x / m
    z2 = z * z
    centre = (p + z2 / (2 * m)) / (1 + z2 / m)
    half = z / (1 + z2 / m) * math.sqrt(p * (1 - p) / m + z2 / (4 * m * m))
    lo = 0.0 if x == 0 else max(0.0, centre - half)
    hi = 1.0 if x == m else min(1.0, centre + half)
    return Proportion(p, lo, hi, x, m)


def confusion_matrix(
    reference: Sequence[Hashable], predicted: Sequence[Hashable], labels: Sequence[Hashable]
) -> ConfusionMatrix:
    """Count ``(reference, predicted)`` pairs over the ordered category ``labels``."""
    ref, pred = list(reference), list(predicted)
    if len(ref) != len(pred):
        raise ValueError(f"reference and predicted differ in length: {len(ref)} vs {len(pred)}")
    lab = list(labels)
    if len(set(lab)) != len(lab):
        raise ValueError(f"category labels must be unique, got {lab}")
    index = {v: i for i, v in enumerate(lab)}
    m = np.zeros((len(lab), len(lab)), dtype=np.int64)
    for pos, (r, p) in enumerate(zip(ref, pred, strict=True)):
        if r not in index:
            raise ValueError(f"reference value {r!r} at position {pos} is not one of {lab}")
        if p not in index:
            raise ValueError(f"predicted value {p!r} at position {pos} is not one of {lab}")
        m[index[r], index[p]] += 1
    return ConfusionMatrix(tuple(str(v) for v in lab), tuple(tuple(int(v) for v in r) for r in m))


def _table(table: ConfusionMatrix | npt.ArrayLike) -> npt.NDArray[np.float64]:
    raw = table.array if isinstance(table, ConfusionMatrix) else table
    t: npt.NDArray[np.float64] = np.asarray(raw, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 2:
        raise ValueError(f"need a square table of at least 2 x 2 counts, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("table counts must be finite and non-negative")
    return t


def agreement_weights(n_categories: int, weights: str) -> npt.NDArray[np.float64]:
    """Agreement weight matrix (1 on the diagonal) for ``unweighted``/``linear``/``quadratic``."""
    if weights not in KAPPA_WEIGHTS:
        raise ValueError(f"unknown kappa weights {weights!r}; use one of {KAPPA_WEIGHTS}")
    i = np.arange(n_categories, dtype=np.float64)
    dist = np.abs(i[:, None] - i[None, :]) / (n_categories - 1)
    if weights == "unweighted":
        return np.eye(n_categories)
    if weights == "linear":
        return 1.0 - dist
    return 1.0 - dist**2


def cohens_kappa(
    table: ConfusionMatrix | npt.ArrayLike, weights: str = "unweighted", confidence: float = 0.95
) -> Kappa:
    """Cohen's kappa of a square count table, with Fleiss-Cohen-Everitt (1969) SE and CI."""
    t = _table(table)
    n = float(t.sum())
    if n <= 0:
        raise ValueError("the table is empty")
    w = agreement_weights(t.shape[0], weights)
    p = t / n
    rows = p.sum(axis=1)
    cols = p.sum(axis=0)
    po = float(np.sum(w * p))
    pe = float(np.sum(w * np.outer(rows, cols)))
    if pe >= 1.0 - 1e-12:
        return Kappa(NAN, NAN, NAN, NAN, weights, int(n))
    k = (po - pe) / (1.0 - pe)
    w_row = w @ cols  # weighted mean over columns for each row category
    w_col = w.T @ rows  # weighted mean over rows for each column category
    inner = w - (w_row[:, None] + w_col[None, :]) * (1.0 - k)
    var = (float(np.sum(p * inner**2)) - (k - pe * (1.0 - k)) ** 2) / (n * (1.0 - pe) ** 2)
    se = math.sqrt(max(var, 0.0))
    z = z_crit(confidence)
    lo, hi = max(-1.0, k - z * se), min(1.0, k + z * se)
    return Kappa(k, lo, hi, se, weights, int(n))


def one_vs_rest(cm: ConfusionMatrix, confidence: float = 0.95) -> tuple[CategoryMetrics, ...]:
    """Sensitivity, specificity, PPV and NPV of every category against all others."""
    a = cm.array
    total = int(a.sum())
    out = []
    for i, label in enumerate(cm.labels):
        tp = int(a[i, i])
        fn = int(a[i, :].sum()) - tp
        fp = int(a[:, i].sum()) - tp
        tn = total - tp - fn - fp
        out.append(
            CategoryMetrics(
                label=label,
                tp=tp,
                fp=fp,
                fn=fn,
                tn=tn,
                sensitivity=wilson_ci(tp, tp + fn, confidence),
                specificity=wilson_ci(tn, tn + fp, confidence),
                ppv=wilson_ci(tp, tp + fp, confidence),
                npv=wilson_ci(tn, tn + fn, confidence),
            )
        )
    return tuple(out)


def categorical_agreement(
    reference: Sequence[Hashable],
    predicted: Sequence[Hashable],
    labels: Sequence[Hashable],
    confidence: float = 0.95,
) -> CategoricalAgreement:
    """Confusion matrix, accuracy, one-vs-rest metrics and kappas over ordered ``labels``."""
    cm = confusion_matrix(reference, predicted, labels)
    if cm.n == 0:
        raise ValueError("no cases to compare")
    a = cm.array
    return CategoricalAgreement(
        confusion=cm,
        accuracy=wilson_ci(int(np.trace(a)), cm.n, confidence),
        categories=one_vs_rest(cm, confidence),
        kappa_unweighted=cohens_kappa(cm, "unweighted", confidence),
        kappa_linear=cohens_kappa(cm, "linear", confidence),
        kappa_quadratic=cohens_kappa(cm, "quadratic", confidence),
    )
