import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.matching import fit_logistic, propensity_match, standardized_difference
from aacscore.cohort.simulate import simulate_cohort


def test_logistic_binary_covariate_reproduces_group_log_odds():
    # With one binary covariate the MLE equals the observed log-odds in each group.
    x = np.array([0] * 40 + [1] * 60, dtype=float)
    y = np.array([1] * 10 + [0] * 30 + [1] * 45 + [0] * 15, dtype=float)
    fit = fit_logistic(x[:, None], y, names=["x"])
    assert fit.converged
    assert fit.coef[0] == pytest.approx(math.log(10 / 30), abs=1e-6)
    assert fit.coef[1] == pytest.approx(math.log(45 / 15) - math.log(10 / 30), abs=1e-6)


def test_logistic_matches_generic_optimiser():
    rng = np.random.default_rng(2)
    x = np.column_stack([rng.normal(60, 10, 400), rng.binomial(1, 0.4, 400)])
    eta = -6 + 0.09 * x[:, 0] + 0.8 * x[:, 1]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    fit = fit_logistic(x, y)

    def nll(b: np.ndarray) -> float:
        e = b[0] + x @ b[1:]
        return float(np.sum(np.logaddexp(0, e) - y * e))

    ref = optimize.minimize(nll, np.zeros(3), method="BFGS", options={"gtol": 1e-8}).x
    assert np.allclose(fit.coef, ref, atol=2e-3)


def test_smd_formulas():
    e = np.array([True] * 4 + [False] * 4)
    x = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=float)  # p1 = .75, p0 = .25
    m1, m0, smd = standardized_difference(x, e)
    assert (m1, m0) == (0.75, 0.25)
    assert smd == pytest.approx(0.5 / math.sqrt((0.75 * 0.25 + 0.25 * 0.75) / 2))
    xc = np.array([1.0, 2, 3, 4, 2, 3, 4, 5])
    m1, m0, smd = standardized_difference(xc, e, binary=False)
    s = np.var([1, 2, 3, 4], ddof=1)
    assert smd == pytest.approx((2.5 - 3.5) / math.sqrt(s))


def test_matching_improves_balance():
    df, _ = simulate_cohort(600, seed=11)
    res = propensity_match(df, "dialysis", ["age", "sex", "diabetes", "hypertension"])
    before = [abs(b.smd_before) for b in res.balance]
    after = [abs(b.smd_after) for b in res.balance]
    assert max(after) < max(before)
    assert max(before) > 0.3  # the simulated cohort is confounded
    assert sum(a < 0.1 for a in after) >= len(after) - 1
    m = res.matched
    # 1:1 sets of one exposed and one unexposed, controls used once.
    sizes = m.groupby("match_id")["dialysis"].agg(["size", "sum"])
    assert (sizes["size"] == 2).all() and (sizes["sum"] == 1).all()
    assert not m.index.duplicated().any()
    assert res.n_exposed_matched == res.n_unexposed_matched == len(sizes)


def test_caliper_respected_and_ratio_two():
    df, _ = simulate_cohort(500, seed=5)
    res = propensity_match(df, "dialysis", ["age", "diabetes"], ratio=2, caliper=0.1)
    m = res.matched
    assert res.caliper_width is not None
    for _, s in m.groupby("match_id"):
        t = s.loc[s["dialysis"] == 1, "ps_logit"].iloc[0]
        c = s.loc[s["dialysis"] == 0, "ps_logit"]
        assert (np.abs(c - t) <= res.caliper_width + 1e-12).all()
        assert 1 <= len(c) <= 2
    w = m.loc[m["dialysis"] == 0].groupby("match_id")["match_weight"].sum()
    assert np.allclose(w, 1.0)
    assert res.n_unexposed_matched > res.n_exposed_matched


def test_exact_matching():
    df, _ = simulate_cohort(400, seed=8)
    res = propensity_match(df, "dialysis", ["age", "diabetes"], exact_on=["sex"])
    per_set = res.matched.groupby("match_id")["sex"].nunique()
    assert (per_set == 1).all()


def test_matching_input_errors():
    df = pd.DataFrame({"e": [0, 0, 0], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(CohortInputError, match="both exposure groups"):
        propensity_match(df, "e", ["x"])
    df2 = pd.DataFrame({"e": [1, 0, 0, 1], "x": [1.0, 2.0, 3.0, 4.0], "x2": [2.0, 4, 6, 8]})
    with pytest.raises(CohortInputError, match="collinear"):
        propensity_match(df2, "e", ["x", "x2"], file="t.csv")
