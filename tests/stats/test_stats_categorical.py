"""Categorical agreement: published kappa and Wilson examples, hand computations, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aacscore.stats.agreement import lins_ccc
from aacscore.stats.categorical import (
    categorical_agreement,
    cohens_kappa,
    confusion_matrix,
    one_vs_rest,
    wilson_ci,
)

# Hout, Duncan & Sobel (1987) via Agresti (1990): "sex is fun" ratings of 91 married couples
# (husband in rows, wife in columns; never/fairly often/very often/almost always). R's
# vcd::Kappa(SexualFun) documents: unweighted 0.1293, ASE 0.06860, 95 % CI -0.00512 to 0.2638;
# weighted (equal spacing = linear weights) 0.2374, ASE 0.07832, CI 0.08388 to 0.3909.
SEXUAL_FUN = [[7, 7, 2, 3], [2, 8, 3, 7], [1, 5, 4, 9], [2, 8, 9, 14]]


def test_cohen_kappa_wikipedia_example() -> None:
    """Wikipedia "Cohen's kappa", worked example: 50 proposals, yes/yes 20, yes/no 5,
    no/yes 10, no/no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4."""
    k = cohens_kappa([[20, 5], [10, 15]])
    assert k.value == pytest.approx(0.40)
    assert k.n == 50


def test_kappa_matches_vcd_documented_output() -> None:
    u = cohens_kappa(SEXUAL_FUN, "unweighted")
    assert u.value == pytest.approx(0.1293, abs=5e-5)
    assert u.se == pytest.approx(0.06860, abs=5e-6)
    assert (u.ci_low, u.ci_high) == pytest.approx((-0.00512, 0.2638), abs=5e-5)
    w = cohens_kappa(SEXUAL_FUN, "linear")
    assert w.value == pytest.approx(0.2374, abs=5e-5)
    assert w.se == pytest.approx(0.07832, abs=5e-6)
    assert (w.ci_low, w.ci_high) == pytest.approx((0.08388, 0.3909), abs=5e-5)


def test_quadratic_kappa_by_hand() -> None:
    """Quadratic weights w_ij = 1 - ((i - j)/(c - 1))^2 (Fleiss & Cohen 1973), computed here
    with explicit loops: kappa_w = (sum w p_ij - sum w p_i. p_.j) / (1 - sum w p_i. p_.j)."""
    t = np.array(SEXUAL_FUN, dtype=float)
    n, c = t.sum(), t.shape[0]
    po = pe = 0.0
    for i in range(c):
        for j in range(c):
            w = 1 - ((i - j) / (c - 1)) ** 2
            po += w * t[i, j] / n
            pe += w * t[i, :].sum() / n * t[:, j].sum() / n
    expected = (po - pe) / (1 - pe)
    assert cohens_kappa(SEXUAL_FUN, "quadratic").value == pytest.approx(expected)


def test_quadratic_kappa_equals_lins_ccc_of_category_indices() -> None:
    """Identity: quadratic-weighted kappa = 2 s_xy / (s_x^2 + s_y^2 + (mx - my)^2) (n divisor)."""
    t = np.array(SEXUAL_FUN)
    ref = np.repeat(np.arange(4), t.sum(axis=1))
    pred = np.concatenate([np.repeat(np.arange(4), row) for row in t])
    assert cohens_kappa(t, "quadratic").value == pytest.approx(lins_ccc(ref, pred).value)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_newcombe_1998(x: int, n: int, low: float, high: float) -> None:
    """Newcombe RG. Two-sided confidence intervals for the single proportion: comparison of
    seven methods. Stat Med 1998;17:857-872, Table II, method 3 (score, no correction)."""
    p = wilson_ci(x, n)
    assert p.value == pytest.approx(x / n)
    assert p.ci_low == pytest.approx(low, abs=5e-5)
    assert p.ci_high == pytest.approx(high, abs=5e-5)


def test_wilson_edge_cases() -> None:
    assert wilson_ci(5, 5).ci_high == 1.0
    empty = wilson_ci(0, 0)
    assert math.isnan(empty.value) and empty.n == 0
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        wilson_ci(6, 5)


def test_one_vs_rest_counts_by_hand() -> None:
    ref = ["a", "a", "a", "b", "b", "c", "c", "c", "c", "a"]
    pred = ["a", "b", "a", "b", "c", "c", "c", "a", "c", "a"]
    cm = confusion_matrix(ref, pred, ["a", "b", "c"])
    assert cm.matrix == ((3, 1, 0), (0, 1, 1), (1, 0, 3))
    a, b, c = one_vs_rest(cm)
    # a: TP 3, FN 1, FP 1, TN 5
    assert (a.tp, a.fn, a.fp, a.tn) == (3, 1, 1, 5)
    assert a.sensitivity.value == pytest.approx(3 / 4)
    assert a.specificity.value == pytest.approx(5 / 6)
    assert a.ppv.value == pytest.approx(3 / 4)
    assert a.npv.value == pytest.approx(5 / 6)
    assert (b.tp, b.fn, b.fp, b.tn) == (1, 1, 1, 7)
    assert (c.tp, c.fn, c.fp, c.tn) == (3, 1, 1, 5)
    assert c.sensitivity.ci_low == pytest.approx(wilson_ci(3, 4).ci_low)


def test_perfect_agreement_kappa_is_one() -> None:
    labels = ["low", "moderate", "high"]
    ref = ["low", "moderate", "high", "high", "low", "moderate"]
    r = categorical_agreement(ref, ref, labels)
    assert r.accuracy.value == 1.0
    for k in (r.kappa_unweighted, r.kappa_linear, r.kappa_quadratic):
        assert k.value == pytest.approx(1.0)
        assert k.ci_high == 1.0
    for g in r.categories:
        assert g.sensitivity.value == 1.0 and g.specificity.value == 1.0


def test_weighting_rewards_near_misses() -> None:
    # Every disagreement is a one-step miss: weighted kappas exceed the unweighted one.
    t = [[10, 3, 0], [2, 10, 3], [0, 2, 10]]
    u, lin, quad = (cohens_kappa(t, w).value for w in ("unweighted", "linear", "quadratic"))
    assert u < lin < quad


def test_single_category_kappa_is_undefined() -> None:
    k = cohens_kappa([[10, 0], [0, 0]])
    assert math.isnan(k.value)


def test_confusion_matrix_errors() -> None:
    with pytest.raises(ValueError, match="not one of"):
        confusion_matrix(["a", "x"], ["a", "a"], ["a", "b"])
    with pytest.raises(ValueError, match="differ in length"):
        confusion_matrix(["a"], ["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match="unknown kappa weights"):
        cohens_kappa([[1, 0], [0, 1]], "cubic")
    with pytest.raises(ValueError, match="square table"):
        cohens_kappa([[1, 2, 3]])
