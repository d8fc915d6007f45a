"""Seeded bootstrap confidence intervals (percentile and BCa) for paired data.

A thin wrapper around :func:`scipy.stats.bootstrap` with ``paired=True``: every resample draws
cases (rows) with replacement and keeps the pairing of the arrays. BCa (bias-corrected and
accelerated, Efron 1987) is the default. Two degenerate situations are handled explicitly:

* every resample gives the same value (e.g. MAE 0 under perfect agreement): the interval is the
  point estimate itself;
* BCa cannot be computed (scipy returns NaN, e.g. when the jackknife values are all equal but
  the bootstrap distribution is not): the percentile interval of the same resamples is returned
  and ``method`` says ``"percentile"``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from scipy import stats as _st

from aacscore.stats._common import ArrayLike, FloatArray, as_vector, check_confidence

logger = logging.getLogger(__name__)


class BootstrapMethod(str, Enum):
    """Bootstrap interval method."""

    BCA = "bca"
    PERCENTILE = "percentile"

    def __str__(self) -> str:
        return str(self.value)


BOOTSTRAP_METHODS: tuple[str, ...] = tuple(m.value for m in BootstrapMethod)


@dataclass(frozen=True)
class BootstrapCI:
    """Bootstrap estimate and interval.

    ``estimate`` is the statistic on the original data; ``method`` is the method actually used
    (``"bca"``, ``"percentile"`` or ``"degenerate"`` when all resamples were equal).
    """

    estimate: float
    ci_low: float
    ci_high: float
    method: str
    n_resamples: int
    confidence_level: float
    seed: int | None


def bootstrap_ci(
    stat_fn: Callable[..., Any],
    *arrays: ArrayLike,
    n_resamples: int = 2000,
    method: str | BootstrapMethod = BootstrapMethod.BCA,
    seed: int | None = 0,
    confidence_level: float = 0.95,
    vectorized: bool = False,
) -> BootstrapCI:
    """Paired bootstrap CI of ``stat_fn(*arrays)``.

    ``stat_fn`` takes the (resampled) arrays and returns a scalar. With ``vectorized=True`` it
    must also accept an ``axis`` keyword and reduce along it (much faster). The same ``seed``
    always gives the same interval.
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one data array")
    try:
        m = BootstrapMethod(str(method).lower())
    except ValueError:
        raise ValueError(
            f"unknown bootstrap method {method!r}; use one of {BOOTSTRAP_METHODS}"
        ) from None
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples}")
    check_confidence(confidence_level)
    data: list[FloatArray] = [as_vector(a, f"array {i + 1}") for i, a in enumerate(arrays)]
    n = data[0].size
    if any(d.size != n for d in data):
        raise ValueError(f"all arrays must have the same length, got {[d.size for d in data]}")
    if n < 2:
        raise ValueError(f"the bootstrap needs at least 2 cases, got {n}")

    estimate = float(stat_fn(*data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _st.bootstrap(
            tuple(data),
            stat_fn,
            n_resamples=int(n_resamples),
            vectorized=vectorized,
            paired=True,
            confidence_level=confidence_level,
            method="BCa" if m is BootstrapMethod.BCA else "percentile",
            rng=np.random.default_rng(seed),
        )
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    finite = dist[np.isfinite(dist)]
    if finite.size == 0:
        raise ValueError("the statistic is not finite on any bootstrap resample")
    if np.ptp(finite) == 0:
        return BootstrapCI(
            estimate, estimate, estimate, "degenerate", int(n_resamples), confidence_level, seed
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    used = m.value
    if not (np.isfinite(low) and np.isfinite(high)):
        alpha = 1.0 - confidence_level
        low, high = (float(v) for v in np.quantile(finite, [alpha / 2, 1 - alpha / 2]))
        used = "percentile"
        logger.info("BCa interval undefined for this statistic; using the percentile interval")
    return BootstrapCI(estimate, low, high, used, int(n_resamples), confidence_level, seed)
