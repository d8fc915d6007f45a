"""Intraclass correlations against published values and basic properties."""

from __future__ import annotations

import numpy as np
import pytest

from aacscore.stats.icc import ICC_FORMS, icc

# Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater reliability.
# Psychol Bull 1979;86:420-428, Table 2 (6 targets x 4 judges) and the ICCs of Table 4.
SF = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
SF_ICC = {
    "ICC(1,1)": 0.17,
    "ICC(2,1)": 0.29,
    "ICC(3,1)": 0.71,
    "ICC(1,k)": 0.44,
    "ICC(2,k)": 0.62,
    "ICC(3,k)": 0.91,
}
# The same data through R psych::ICC (documented output, e.g. the psych manual / RExRepos
# "interRaterICC"): F, df, P and 95 % limits of each form.
PSYCH = {
    "ICC(1,1)": (1.79, 5, 18, 0.16477, -0.133, 0.72),
    "ICC(2,1)": (11.03, 5, 15, 0.00013, 0.019, 0.76),
    "ICC(3,1)": (11.03, 5, 15, 0.00013, 0.342, 0.95),
    "ICC(1,k)": (1.79, 5, 18, 0.16477, -0.884, 0.91),
    "ICC(2,k)": (11.03, 5, 15, 0.00013, 0.071, 0.93),
    "ICC(3,k)": (11.03, 5, 15, 0.00013, 0.676, 0.99),
}


def test_shrout_fleiss_table_values() -> None:
    r = icc(SF)
    assert (r.n, r.k) == (6, 4)
    assert tuple(f.name for f in r.forms) == ICC_FORMS
    for name, expected in SF_ICC.items():
        assert round(r[name].value, 2) == expected, name


def test_shrout_fleiss_f_tests_and_intervals_match_psych() -> None:
    r = icc(SF)
    for name, (f, df1, df2, p, lo, hi) in PSYCH.items():
        form = r[name]
        assert form.f == pytest.approx(f, abs=0.005), name
        assert (form.df1, form.df2) == (df1, df2), name
        assert form.p == pytest.approx(p, abs=5e-6), name
        assert form.ci_low == pytest.approx(lo, abs=5e-4), name
        assert form.ci_high == pytest.approx(hi, abs=5e-3), name


def test_mcgraw_wong_two_rater_example_matches_desctools() -> None:
    """McGraw & Wong (1996) Table 6 data, k = 2 (the model-vs-reference case).

    Reference: R DescTools::ICC(x, conf.level = 0.95) output reproduced in the f_ICC MATLAB
    function header (github.com/robertpetermatthew/f_ICC).
    """
    data = [
        [103, 119],
        [82, 65],
        [116, 106],
        [102, 102],
        [99, 105],
        [98, 100],
        [104, 107],
        [62, 85],
        [97, 101],
        [107, 110],
    ]
    expected = {
        "ICC(1,1)": (0.722, 0.241, 0.922, 6.18, 0.00437),
        "ICC(2,1)": (0.720, 0.228, 0.922, 6.00, 0.00677),
        "ICC(3,1)": (0.714, 0.197, 0.920, 6.00, 0.00677),
        "ICC(1,k)": (0.838, 0.389, 0.959, 6.18, 0.00437),
        "ICC(2,k)": (0.837, 0.371, 0.959, 6.00, 0.00677),
        "ICC(3,k)": (0.833, 0.329, 0.959, 6.00, 0.00677),
    }
    r = icc(data)
    for name, (v, lo, hi, f, p) in expected.items():
        form = r[name]
        assert form.value == pytest.approx(v, abs=5e-4), name
        assert form.ci_low == pytest.approx(lo, abs=5e-4), name
        assert form.ci_high == pytest.approx(hi, abs=5e-4), name
        assert form.f == pytest.approx(f, abs=5e-3), name
        assert form.p == pytest.approx(p, abs=5e-6), name


def test_perfect_agreement_gives_one_everywhere() -> None:
    x = np.array([0, 3, 5, 8, 13, 24], dtype=float)
    r = icc(np.column_stack([x, x, x]))
    for f in r.forms:
        assert f.value == pytest.approx(1.0), f.name
        assert f.ci_low == pytest.approx(1.0), f.name
        assert f.p == 0.0


def test_constant_offset_keeps_consistency_but_not_absolute_agreement() -> None:
    x = np.array([0, 3, 5, 8, 13, 20], dtype=float)
    r = icc(np.column_stack([x, x + 2.0]))
    assert r["ICC(3,1)"].value == pytest.approx(1.0)
    assert r["ICC(3,k)"].value == pytest.approx(1.0)
    assert r["ICC(2,1)"].value < 0.99
    assert r["ICC(1,1)"].value < 0.99
    lo, hi = r["ICC(2,1)"].ci_low, r["ICC(2,1)"].ci_high
    assert lo < r["ICC(2,1)"].value <= hi <= 1.0


def test_many_raters_and_form_lookup() -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(10, 4, 40)
    ratings = truth[:, None] + rng.normal(0, 1, (40, 5))
    r = icc(ratings, raters=list("abcde"))
    assert r.k == 5 and r.raters == tuple("abcde")
    assert r["icc(2,K)"] is r["ICC(2,k)"]
    for f in r.forms:
        assert f.ci_low < f.value < f.ci_high, f.name
    assert set(r.as_dict()) == set(ICC_FORMS)
    assert set(r.as_dict()["ICC(2,1)"]) == {"value", "ci_low", "ci_high", "f", "df1", "df2", "p"}
    with pytest.raises(KeyError, match="unknown ICC form"):
        r["ICC(4,1)"]


def test_missing_values_are_a_clear_error() -> None:
    data = np.array(SF, dtype=float)
    data[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"missing or non-finite.*target 3 / judge B"):
        icc(data, raters=["judge A", "judge B", "judge C", "judge D"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([[1], [2], [3]], "at least 2 raters"),
        ([[1, 2]], "at least 2 targets"),
        ([1, 2, 3], "2-D array"),
    ],
)
def test_shape_errors(data: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        icc(data)
