"""Seeded bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from aacscore.stats.bootstrap import bootstrap_ci


def _mae(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(x - y)))


def _mae_vec(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(np.abs(x - y), axis=axis)


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    ref = rng.integers(0, 25, 40).astype(float)
    return np.clip(ref + rng.normal(0, 2, 40), 0, 24), ref


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_seeded_determinism_and_ci_contains_estimate(
    pair: tuple[np.ndarray, np.ndarray], method: str
) -> None:
    pred, ref = pair
    a = bootstrap_ci(_mae, pred, ref, n_resamples=400, method=method, seed=3)
    b = bootstrap_ci(_mae, pred, ref, n_resamples=400, method=method, seed=3)
    c = bootstrap_ci(_mae, pred, ref, n_resamples=400, method=method, seed=4)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.estimate == pytest.approx(_mae(pred, ref))
    assert a.ci_low < a.estimate < a.ci_high
    assert a.method == method and a.n_resamples == 400 and a.seed == 3


def test_vectorized_statistic_gives_the_same_interval(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = pair
    loop = bootstrap_ci(_mae, pred, ref, n_resamples=300, seed=0)
    vec = bootstrap_ci(_mae_vec, pred, ref, n_resamples=300, seed=0, vectorized=True)
    assert (vec.ci_low, vec.ci_high) == pytest.approx((loop.ci_low, loop.ci_high))


def test_percentile_interval_of_a_mean_is_close_to_the_normal_theory_one() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, 400)
    r = bootstrap_ci(lambda v: float(np.mean(v)), x, n_resamples=2000, method="percentile")
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert r.ci_low == pytest.approx(x.mean() - half, abs=0.03)
    assert r.ci_high == pytest.approx(x.mean() + half, abs=0.03)


def test_degenerate_distribution_returns_the_estimate() -> None:
    x = np.arange(10.0)
    r = bootstrap_ci(_mae, x, x, n_resamples=100)
    assert (r.estimate, r.ci_low, r.ci_high, r.method) == (0.0, 0.0, 0.0, "degenerate")


@pytest.mark.parametrize(
    ("kwargs", "arrays", "message"),
    [
        ({"method": "basic"}, ([1.0, 2.0, 3.0],), "unknown bootstrap method"),
        ({"n_resamples": 0}, ([1.0, 2.0, 3.0],), "n_resamples"),
        ({}, ([1.0, 2.0, 3.0], [1.0, 2.0]), "same length"),
        ({}, ([1.0],), "at least 2 cases"),
        ({}, (), "at least one data array"),
    ],
)
def test_bad_arguments(kwargs: dict, arrays: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(lambda *a: 0.0, *arrays, **kwargs)
