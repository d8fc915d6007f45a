import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.survival import (
    fit_cox,
    kaplan_meier,
    km_summary,
    logrank_tests,
    median_follow_up,
    poisson_rate,
    rescale_term,
)


def test_poisson_rate_zero_events_upper_limit():
    # Two-sided 95 % exact limit for 0 events is chi2(0.975, 2)/2 = -ln(0.025) = 3.689
    # (Garwood 1936; Ulm 1990). 0 events in 500 person-years -> 0 to 7.378 per 1000 PY.
    r = poisson_rate(0, 500.0)
    assert r.rate == 0.0
    assert r.ci_low == 0.0
    assert r.ci_high == pytest.approx(3.689 / 500 * 1000, abs=1e-3)
    assert r.ci_high == pytest.approx(-math.log(0.025) / 500 * 1000, rel=1e-9)


def test_poisson_rate_ten_events_matches_tables():
    # Exact 95 % limits for an observed count of 10: 4.795 and 18.390 (standard tables,
    # e.g. Ulm, Am J Epidemiol 1990;131:373).
    r = poisson_rate(10, 1000.0, per=1000.0)
    assert r.rate == pytest.approx(10.0)
    assert r.ci_low == pytest.approx(4.795, abs=5e-4)
    assert r.ci_high == pytest.approx(18.390, abs=5e-4)


@pytest.mark.parametrize("events,pt", [(-1, 10.0), (1, 0.0)])
def test_poisson_rate_rejects_bad_input(events, pt):
    with pytest.raises(ValueError):
        poisson_rate(events, pt)


def _tiny() -> pd.DataFrame:
    # Group A: events at 1 and 3, censored at 5; group B: events at 2, 4 and 6.
    return pd.DataFrame(
        {
            "t": [1, 3, 5, 2, 4, 6],
            "e": [1, 1, 0, 1, 1, 1],
            "g": ["A", "A", "A", "B", "B", "B"],
        }
    )


def test_kaplan_meier_hand_computed():
    df = _tiny()
    km_all = kaplan_meier(df, "t", "e")["all"]
    # S(t) = 5/6, 4/6, 3/6, 2/6 after the events at 1..4, 2/6 at the censoring at 5, 0 at 6.
    s = km_all.survival_function_.iloc[:, 0]
    assert s.loc[1.0] == pytest.approx(5 / 6)
    assert s.loc[3.0] == pytest.approx(3 / 6)
    assert s.loc[5.0] == pytest.approx(2 / 6)
    assert s.loc[6.0] == pytest.approx(0.0)
    summ = km_summary({"all": km_all}, "all", horizons=(3.5,))
    assert summ[0].at[0].estimate == pytest.approx(0.5)
    assert summ[0].at[0].ci_low < 0.5 < summ[0].at[0].ci_high
    by_group = kaplan_meier(df, "t", "e", by="g")
    sa = by_group["A"].survival_function_.iloc[:, 0]
    assert sa.loc[1.0] == pytest.approx(2 / 3)
    assert sa.loc[3.0] == pytest.approx(1 / 3)
    # Group B: S = 2/3, 1/3, 0 at 2, 4, 6 -> median 4; group A: S = 2/3, 1/3 -> median 3.
    summ_g = {k.level: k for k in km_summary(by_group, "g")}
    assert summ_g["B"].median == pytest.approx(4.0)
    assert summ_g["A"].median == pytest.approx(3.0)
    assert (summ_g["A"].n, summ_g["A"].events) == (3, 2)


def test_logrank_hand_computed():
    # O_A = 2, E_A = 1/2 + 2/5 + 1/2 + 1/3 = 26/15; V = 1/4 + 6/25 + 1/4 + 2/9 = 866/900.
    o_minus_e = Fraction(2) - Fraction(26, 15)
    var = Fraction(1, 4) + Fraction(6, 25) + Fraction(1, 4) + Fraction(2, 9)
    expected = float(o_minus_e**2 / var)
    (r,) = logrank_tests(_tiny(), "t", "e", "g")
    assert r.comparison == "A vs B"
    assert r.statistic == pytest.approx(expected, rel=1e-9)
    assert r.p == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-9)


def test_logrank_three_groups_overall_and_pairwise():
    rng = np.random.default_rng(0)
    n = 90
    g = np.repeat(["low", "mid", "high"], n // 3)
    rate = np.select([g == "low", g == "mid"], [0.1, 0.2], 0.6)
    df = pd.DataFrame({"t": rng.exponential(1 / rate), "e": 1, "g": g})
    res = logrank_tests(df, "t", "e", "g", levels=["low", "mid", "high"])
    assert [r.comparison for r in res] == [
        "overall",
        "low vs mid",
        "low vs high",
        "mid vs high",
    ]
    assert res[0].df == 2
    assert res[0].p < 1e-4


def test_median_follow_up_reverse_km():
    # Reverse KM on the tiny example: only the censoring at 5 is an "event".
    assert median_follow_up(pd.Series([1, 2, 3, 4, 5, 6]), pd.Series([1, 1, 1, 1, 0, 1])) == 5


def _cox_data(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 3.0, n)
    z = rng.binomial(1, 0.5, n)
    t = rng.exponential(1 / (0.1 * np.exp(0.2 * x + 0.5 * z)))
    c = rng.exponential(10.0, n)
    return pd.DataFrame({"t": np.minimum(t, c), "e": (t <= c).astype(int), "x": x, "z": z})


def test_fit_cox_terms_and_per_sd_rescaling_equals_refit():
    d = _cox_data()
    m = fit_cox(d, "t", "e", ["x", "z"], name="m")
    assert 0.5 < m.concordance < 1.0
    x = m.term("x")
    assert x.ci_low < x.hr < x.ci_high
    assert x.ph_test_p is not None and 0 <= x.ph_test_p <= 1
    sd = float(d["x"].std(ddof=1))
    per_sd = rescale_term(m, "x", sd, "x (per SD)", name="m sd", coding="per_sd")
    refit = fit_cox(d.assign(xs=d["x"] / sd), "t", "e", ["xs", "z"], name="refit")
    a, b = per_sd.term("x (per SD)"), refit.term("xs")
    assert a.hr == pytest.approx(b.hr, rel=1e-5)
    assert a.ci_low == pytest.approx(b.ci_low, rel=1e-5)
    assert a.ci_high == pytest.approx(b.ci_high, rel=1e-5)
    assert a.p == pytest.approx(b.p, rel=1e-4)


def test_fit_cox_too_few_events():
    d = _cox_data(50)
    d["e"] = 0
    d.loc[3, "e"] = 1
    with pytest.raises(CohortInputError, match="at least 2 events"):
        fit_cox(d, "t", "e", ["x"], name="m", file="c.csv")


def test_fit_cox_low_events_per_term_warns():
    d = _cox_data(60)
    d["e"] = 0
    d.loc[:7, "e"] = 1
    m = fit_cox(d, "t", "e", ["x", "z"], name="m")
    assert any("events per model term" in w for w in m.warnings)


def test_fit_cox_collinear_columns_named():
    d = _cox_data()
    d["x2"] = 2 * d["x"] + d["z"]
    with pytest.raises(CohortInputError) as exc:
        fit_cox(d, "t", "e", ["x", "z", "x2"], name="m", file="c.csv")
    msg = str(exc.value)
    assert "collinear" in msg and "'x2'" in msg and "'x'" in msg and "'z'" in msg
    assert msg.startswith("c.csv")


def test_fit_cox_constant_within_strata_named():
    d = _cox_data(200)
    d["s"] = np.arange(len(d)) // 2
    d["w"] = d["s"] % 2  # constant inside every stratum
    with pytest.raises(CohortInputError, match="'w' does not vary within strata"):
        fit_cox(d, "t", "e", ["x", "w"], strata="s", name="m")


def test_fit_cox_binary_term_without_events_is_clear_error():
    d = _cox_data()
    d.loc[d["z"] == 1, "e"] = 0
    with pytest.raises(CohortInputError, match="no events among"):
        fit_cox(d, "t", "e", ["x", "z"], name="m")


def test_fit_cox_stratified():
    d = _cox_data(200, seed=4)
    d["s"] = np.arange(len(d)) // 4
    m = fit_cox(d, "t", "e", ["x"], strata="s", name="m")
    assert m.strata == "s"
    assert m.term("x").hr > 1


def test_fit_cox_convergence_error_becomes_clear_error(monkeypatch):
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    def boom(self, *args, **kwargs):
        raise ConvergenceError("Convergence halted due to matrix inversion problems.")

    monkeypatch.setattr(CoxPHFitter, "fit", boom)
    with pytest.raises(CohortInputError, match=r"did not converge .*simplify the model"):
        fit_cox(_cox_data(), "t", "e", ["x"], name="m", file="c.csv")
