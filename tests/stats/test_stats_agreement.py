"""Continuous agreement: published Bland-Altman example, scipy cross-checks, Lin's CCC."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from aacscore.stats.agreement import (
    bland_altman,
    continuous_agreement,
    lins_ccc,
    mae,
    pearson,
    rmse,
    spearman,
)

# Bland JM, Altman DG. Statistical methods for assessing agreement between two methods of
# clinical measurement. Lancet 1986;327(8476):307-310, Table 1: peak expiratory flow rate (l/min)
# of 17 subjects, first reading with the Wright and with the mini Wright meter. The paper reports
# a mean difference (Wright - mini) of -2.1, SD 38.8, limits -2.1 +/- 2 SD = -79.7 to 75.5, a
# 95 % CI of the bias of -22.0 to 17.8 (t = 2.12, SE 9.4) and, with SE(limit) ~ sqrt(3 s^2 / n)
# = 16.3, CIs of -114.3 to -45.1 (lower limit) and 40.9 to 110.1 (upper limit).
WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]


def test_bland_altman_reproduces_lancet_1986_worked_example() -> None:
    r = bland_altman(WRIGHT, MINI, multiplier=2.0, loa_ci_method="bland-altman-1986")
    assert r.n == 17
    assert r.bias.value == pytest.approx(-2.1, abs=0.05)
    assert r.sd == pytest.approx(38.8, abs=0.05)
    assert r.loa_low.value == pytest.approx(-79.7, abs=0.1)
    assert r.loa_high.value == pytest.approx(75.5, abs=0.1)
    assert (r.bias.ci_low, r.bias.ci_high) == pytest.approx((-22.0, 17.8), abs=0.1)
    # The paper works from the rounded SD (38.8) and t = 2.12, hence a tolerance of 0.3.
    assert (r.loa_low.ci_low, r.loa_low.ci_high) == pytest.approx((-114.3, -45.1), abs=0.3)
    assert (r.loa_high.ci_low, r.loa_high.ci_high) == pytest.approx((40.9, 110.1), abs=0.3)
    assert r.multiplier == 2.0
    # No proportional bias in these data.
    assert r.slope_p > 0.05


def test_bland_altman_1999_limits_formula_and_default_multiplier() -> None:
    r = bland_altman(WRIGHT, MINI)
    d = np.subtract(WRIGHT, MINI, dtype=float)
    n, s, b = d.size, d.std(ddof=1), d.mean()
    assert r.multiplier == 1.96
    assert r.loa_low.value == pytest.approx(b - 1.96 * s)
    assert r.loa_high.value == pytest.approx(b + 1.96 * s)
    # Bland & Altman (1999), Stat Methods Med Res 8:135: SE = s sqrt(1/n + 1.96^2 / (2(n-1))).
    se = s * math.sqrt(1 / n + 1.96**2 / (2 * (n - 1)))
    t = st.t.ppf(0.975, n - 1)
    assert r.loa_high.ci_low == pytest.approx(b + 1.96 * s - t * se)
    assert r.loa_high.ci_high == pytest.approx(b + 1.96 * s + t * se)
    assert r.loa_ci_method == "bland-altman-1999"
    assert r.as_dict()["loa_low"] == r.loa_low.value


def test_exact_loa_interval_has_nominal_coverage() -> None:
    """Non-central t limits (Carkeet 2015) cover mu + 1.96 sigma about 95 % of the time."""
    rng = np.random.default_rng(7)
    true_upper = 1.0 + 1.96 * 2.0
    reps, hits = 1500, 0
    for _ in range(reps):
        x = rng.normal(1.0, 2.0, 12)
        r = bland_altman(x, np.zeros(12), loa_ci_method="exact")
        assert r.loa_high.ci_low < r.loa_high.value < r.loa_high.ci_high
        assert r.loa_low.ci_low < r.loa_low.value < r.loa_low.ci_high
        hits += r.loa_high.ci_low <= true_upper <= r.loa_high.ci_high
    assert hits / reps == pytest.approx(0.95, abs=0.02)


def test_proportional_bias_is_detected() -> None:
    rng = np.random.default_rng(3)
    ref = rng.uniform(0, 24, 200)
    pred = ref * 1.2 + rng.normal(0, 0.3, 200)  # difference grows with the magnitude
    r = bland_altman(pred, ref)
    assert r.slope_p < 1e-6
    # d = 0.2 ref, m = 1.1 ref -> slope 0.2 / 1.1
    assert r.slope.value == pytest.approx(0.2 / 1.1, abs=0.02)
    assert r.slope.ci_low < r.slope.value < r.slope.ci_high


def test_pearson_matches_scipy_fisher_interval() -> None:
    r = pearson(WRIGHT, MINI)
    ref = st.pearsonr(WRIGHT, MINI)
    ci = ref.confidence_interval(0.95)
    assert r.value == pytest.approx(ref.statistic)
    assert r.p == pytest.approx(ref.pvalue)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high))


def test_spearman_p_from_scipy_and_bonett_wright_interval() -> None:
    r = spearman(WRIGHT, MINI)
    ref = st.spearmanr(WRIGHT, MINI)
    assert r.value == pytest.approx(ref.statistic)
    assert r.p == pytest.approx(ref.pvalue)
    n, rho = 17, ref.statistic
    # Bonett DG, Wright TA (2000) Psychometrika 65:23-28: var(atanh rho) = (1 + rho^2/2)/(n - 3)
    se = math.sqrt((1 + rho**2 / 2) / (n - 3))
    z = st.norm.ppf(0.975)
    assert r.ci_low == pytest.approx(math.tanh(math.atanh(rho) - z * se))
    assert r.ci_high == pytest.approx(math.tanh(math.atanh(rho) + z * se))


def test_lins_ccc_against_definition_and_lin_1989_variance() -> None:
    x = np.array(WRIGHT, dtype=float)
    y = np.array(MINI, dtype=float)
    r = lins_ccc(x, y)
    # Definition (Lin 1989): 1 - E[(x - y)^2] / (sx^2 + sy^2 + (mx - my)^2), moments over n.
    n = x.size
    msd = np.mean((x - y) ** 2)
    expected = 1 - msd / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert r.value == pytest.approx(expected)
    assert r.value == pytest.approx(r.precision * r.accuracy)
    assert r.precision == pytest.approx(st.pearsonr(x, y).statistic)
    # Variance of the z-transform, written as in Lin (1989) eq. (with the 2000 correction).
    rho, c = r.precision, r.value
    u = (x.mean() - y.mean()) / (x.var() * y.var()) ** 0.25
    var_z = (
        (1 - rho**2) * c**2 / ((1 - c**2) * rho**2)
        + 2 * c**3 * (1 - c) * u**2 / (rho * (1 - c**2) ** 2)
        - c**4 * u**4 / (2 * rho**2 * (1 - c**2) ** 2)
    ) / (n - 2)
    z = st.norm.ppf(0.975)
    assert r.ci_low == pytest.approx(math.tanh(math.atanh(c) - z * math.sqrt(var_z)))
    assert r.ci_high == pytest.approx(math.tanh(math.atanh(c) + z * math.sqrt(var_z)))
    assert r.ci_low < r.value < r.ci_high <= r.precision + 0.05


def test_ccc_penalises_location_and_scale_shift() -> None:
    x = np.linspace(0, 20, 30)
    assert lins_ccc(x, x).value == pytest.approx(1.0)
    shifted = lins_ccc(x, x + 2)
    assert shifted.precision == pytest.approx(1.0)
    assert shifted.value < 1.0
    assert lins_ccc(x, 1.5 * x).value < 1.0


def test_perfect_agreement() -> None:
    x = np.array([0, 1, 2, 4, 7, 9, 12, 15, 20, 24], dtype=float)
    c = continuous_agreement(x, x, n_resamples=200)
    assert c.mae.estimate == 0.0
    assert (c.mae.ci_low, c.mae.ci_high) == (0.0, 0.0)
    assert c.rmse.estimate == 0.0
    assert c.bias.value == 0.0
    assert c.pearson.value == pytest.approx(1.0)
    assert c.spearman.value == pytest.approx(1.0)
    assert c.ccc.value == pytest.approx(1.0)
    assert c.bland_altman.loa_low.value == c.bland_altman.loa_high.value == 0.0


def test_constant_offset_gives_bias_equal_to_offset() -> None:
    x = np.array([0, 1, 2, 4, 7, 9, 12, 15, 20, 21], dtype=float)
    c = continuous_agreement(x + 1.5, x, n_resamples=200)
    assert c.bias.value == pytest.approx(1.5)
    assert c.mae.estimate == pytest.approx(1.5)
    assert c.rmse.estimate == pytest.approx(1.5)
    assert c.sd_diff == pytest.approx(0.0, abs=1e-12)
    assert c.bland_altman.loa_high.value == pytest.approx(1.5)
    assert c.pearson.value == pytest.approx(1.0)
    assert c.ccc.value < 1.0


def test_continuous_agreement_bootstrap_and_switch_off() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 25, 60).astype(float)
    pred = np.clip(ref + rng.normal(0, 1.5, 60), 0, 24)
    c = continuous_agreement(pred, ref, n_resamples=500, seed=1)
    assert c.mae.estimate == pytest.approx(mae(pred, ref))
    assert c.rmse.estimate == pytest.approx(rmse(pred, ref))
    assert c.mae.ci_low < c.mae.estimate < c.mae.ci_high
    assert c.mae.method == "bca"
    off = continuous_agreement(pred, ref, n_resamples=0)
    assert off.mae.estimate == c.mae.estimate
    assert math.isnan(off.mae.ci_low) and off.mae.method == "none"


def test_constant_input_gives_nan_correlation() -> None:
    r = pearson([1, 1, 1, 1], [1, 2, 3, 4])
    assert math.isnan(r.value) and math.isnan(r.p)
    assert math.isnan(spearman([1, 2, 3, 4], [5, 5, 5, 5]).value)


def test_three_cases_give_full_fisher_interval() -> None:
    r = pearson([1, 2, 3], [1, 3, 2])
    assert (r.ci_low, r.ci_high) == (-1.0, 1.0)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([1, 2, 3], [1, 2], "same length"),
        ([1, 2], [1, 2], "at least 3"),
        ([1, float("nan"), 3], [1, 2, 3], "missing or non-finite"),
        ([[1, 2], [3, 4]], [1, 2], "one-dimensional"),
    ],
)
def test_bad_input(x: list[float], y: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pearson(x, y)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="LoA CI method"):
        bland_altman(WRIGHT, MINI, loa_ci_method="nope")
    with pytest.raises(ValueError, match="confidence"):
        bland_altman(WRIGHT, MINI, confidence=1.5)
