"""Agreement of two continuous measurements (predicted vs reference AAC-24 totals).

Methods and conventions:

* Differences are ``x - y`` (in :func:`continuous_agreement`: predicted minus reference), so a
  positive bias means the first measurement reads higher.
* Pearson r: CI from Fisher's z, ``atanh(r) +/- z / sqrt(n - 3)``; P from scipy (t test).
* Spearman rho: P from :func:`scipy.stats.spearmanr` (t approximation); CI from Fisher's z with
  the Bonett & Wright (2000) variance ``(1 + rho^2 / 2) / (n - 3)``.
* Lin's concordance correlation coefficient (Lin 1989, variance as corrected in Lin 2000): moments
  with divisor n; CI from the z-transform ``atanh(ccc)`` with the asymptotic variance.
* Bland-Altman (Bland & Altman 1986, 1999): bias with a t-based CI; limits of agreement
  ``bias +/- 1.96 SD`` with CIs by ``"bland-altman-1999"`` (SE = SD sqrt(1/n + z^2/(2(n-1))),
  t quantile with n-1 df; default), ``"exact"`` (non-central t, exact under normality, Carkeet
  2015) or ``"bland-altman-1986"`` (SE = SD sqrt(3/n), the Lancet paper's approximation); and
  proportional bias by least-squares regression of the difference on the pair mean.
* MAE and RMSE: seeded paired bootstrap CIs (:mod:`aacscore.stats.bootstrap`, BCa by default;
  ``n_resamples=0`` switches them off, giving NaN limits).

With fewer than 4 cases the Fisher-z intervals are (-1, 1); an undefined correlation (a constant
input) is NaN and logged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from scipy import stats as _st

from aacscore.stats._common import (
    NAN,
    ArrayLike,
    Estimate,
    FloatArray,
    as_pair,
    check_confidence,
    z_crit,
)
from aacscore.stats.bootstrap import BootstrapCI, BootstrapMethod, bootstrap_ci

logger = logging.getLogger(__name__)


class LoaCIMethod(str, Enum):
    """Confidence interval method of the Bland-Altman limits of agreement."""

    BLAND_ALTMAN_1999 = "bland-altman-1999"
    EXACT = "exact"
    BLAND_ALTMAN_1986 = "bland-altman-1986"

    def __str__(self) -> str:
        return str(self.value)


LOA_CI_METHODS: tuple[str, ...] = tuple(m.value for m in LoaCIMethod)


def parse_loa_ci_method(method: str | LoaCIMethod) -> LoaCIMethod:
    """``method`` as a :class:`LoaCIMethod`; raises ValueError for unknown names."""
    try:
        return LoaCIMethod(method)
    except ValueError:
        raise ValueError(f"unknown LoA CI method {method!r}; use one of {LOA_CI_METHODS}") from None


MIN_CORRELATION_N = 3
"""Fewest pairs accepted by the correlation-type statistics."""


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient with CI and two-sided P value."""

    value: float
    ci_low: float
    ci_high: float
    p: float
    n: int
    method: str

    @property
    def estimate(self) -> Estimate:
        """Value and CI as an :class:`Estimate`."""
        return Estimate(self.value, self.ci_low, self.ci_high)


@dataclass(frozen=True)
class ConcordanceCorrelation:
    """Lin's CCC = precision (Pearson r) x accuracy (bias correction factor C_b)."""

    value: float
    ci_low: float
    ci_high: float
    precision: float
    accuracy: float
    location_shift: float
    scale_shift: float
    n: int

    @property
    def estimate(self) -> Estimate:
        """Value and CI as an :class:`Estimate`."""
        return Estimate(self.value, self.ci_low, self.ci_high)


@dataclass(frozen=True)
class BlandAltman:
    """Bland-Altman analysis of ``d = x - y`` against ``m = (x + y) / 2``."""

    n: int
    bias: Estimate
    sd: float
    multiplier: float
    loa_low: Estimate
    loa_high: Estimate
    loa_ci_method: str
    slope: Estimate
    intercept: Estimate
    slope_p: float

    def as_dict(self) -> dict[str, Any]:
        """Flat mapping used in ``metrics.json`` (see :mod:`aacscore.stats.validate`)."""
        return {
            "n": self.n,
            "bias": self.bias.value,
            "bias_ci_low": self.bias.ci_low,
            "bias_ci_high": self.bias.ci_high,
            "sd": self.sd,
            "multiplier": self.multiplier,
            "loa_low": self.loa_low.value,
            "loa_low_ci_low": self.loa_low.ci_low,
            "loa_low_ci_high": self.loa_low.ci_high,
            "loa_high": self.loa_high.value,
            "loa_high_ci_low": self.loa_high.ci_low,
            "loa_high_ci_high": self.loa_high.ci_high,
            "loa_ci_method": self.loa_ci_method,
            "proportional_bias_slope": self.slope.value,
            "proportional_bias_slope_ci_low": self.slope.ci_low,
            "proportional_bias_slope_ci_high": self.slope.ci_high,
            "proportional_bias_intercept": self.intercept.value,
            "proportional_bias_intercept_ci_low": self.intercept.ci_low,
            "proportional_bias_intercept_ci_high": self.intercept.ci_high,
            "proportional_bias_p": self.slope_p,
        }


@dataclass(frozen=True)
class ContinuousAgreement:
    """All continuous agreement statistics of ``pred`` against ``ref``."""

    n: int
    mae: BootstrapCI
    rmse: BootstrapCI
    bias: Estimate
    sd_diff: float
    pearson: Correlation
    spearman: Correlation
    ccc: ConcordanceCorrelation
    bland_altman: BlandAltman


def mae(x: ArrayLike, y: ArrayLike) -> float:
    """Mean absolute error ``mean(|x - y|)``."""
    a, b = as_pair(x, y)
    return float(np.mean(np.abs(a - b)))


def rmse(x: ArrayLike, y: ArrayLike) -> float:
    """Root mean squared error ``sqrt(mean((x - y)^2))``."""
    a, b = as_pair(x, y)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _mae_vec(x: FloatArray, y: FloatArray, axis: int = -1) -> Any:
    return np.mean(np.abs(x - y), axis=axis)


def _rmse_vec(x: FloatArray, y: FloatArray, axis: int = -1) -> Any:
    return np.sqrt(np.mean((x - y) ** 2, axis=axis))


def _is_constant(a: FloatArray) -> bool:
    return bool(np.ptp(a) == 0)


def _fisher_ci(r: float, se: float, z: float) -> tuple[float, float]:
    if not math.isfinite(r):
        return NAN, NAN
    if abs(r) >= 1.0:
        return r, r
    if not math.isfinite(se):
        return -1.0, 1.0
    zr = math.atanh(r)
    return math.tanh(zr - z * se), math.tanh(zr + z * se)


def pearson(x: ArrayLike, y: ArrayLike, confidence: float = 0.95) -> Correlation:
    """Pearson r with Fisher-z CI and two-sided P."""
    a, b = as_pair(x, y, MIN_CORRELATION_N)
    n = a.size
    if _is_constant(a) or _is_constant(b):
        logger.warning("Pearson r is undefined: one of the inputs is constant")
        return Correlation(NAN, NAN, NAN, NAN, n, "pearson")
    res = _st.pearsonr(a, b)
    r = float(np.clip(res.statistic, -1.0, 1.0))
    se = 1.0 / math.sqrt(n - 3) if n > 3 else math.inf
    lo, hi = _fisher_ci(r, se, z_crit(confidence))
    return Correlation(r, lo, hi, float(res.pvalue), n, "pearson")


def spearman(x: ArrayLike, y: ArrayLike, confidence: float = 0.95) -> Correlation:
    """Spearman rho, P from scipy, CI by Fisher z with the Bonett-Wright (2000) variance."""
    a, b = as_pair(x, y, MIN_CORRELATION_N)
    n = a.size
    if _is_constant(a) or _is_constant(b):
        logger.warning("Spearman rho is undefined: one of the inputs is constant")
        return Correlation(NAN, NAN, NAN, NAN, n, "spearman")
    res = _st.spearmanr(a, b)
    rho = float(np.clip(res.statistic, -1.0, 1.0))
    se = math.sqrt((1.0 + rho**2 / 2.0) / (n - 3)) if n > 3 else math.inf
    lo, hi = _fisher_ci(rho, se, z_crit(confidence))
    p = float(res.pvalue)
    if abs(rho) >= 1.0:
        p = 0.0
    return Correlation(rho, lo, hi, p, n, "spearman")


def lins_ccc(x: ArrayLike, y: ArrayLike, confidence: float = 0.95) -> ConcordanceCorrelation:
    """Lin's concordance correlation coefficient with the z-transform CI (Lin 1989/2000)."""
    a, b = as_pair(x, y, MIN_CORRELATION_N)
    n = a.size
    mx, my = float(a.mean()), float(b.mean())
    sx2, sy2 = float(a.var()), float(b.var())  # divisor n, as in Lin (1989)
    sxy = float(np.mean((a - mx) * (b - my)))
    denom = sx2 + sy2 + (mx - my) ** 2
    if denom == 0:
        # Both constant and equal: identical measurements, but no spread to judge by.
        logger.warning("Lin's CCC is undefined: both inputs are the same constant")
        return ConcordanceCorrelation(NAN, NAN, NAN, NAN, NAN, NAN, NAN, n)
    ccc = 2.0 * sxy / denom
    if sx2 == 0 or sy2 == 0:
        return ConcordanceCorrelation(ccc, NAN, NAN, NAN, NAN, NAN, NAN, n)
    r = sxy / math.sqrt(sx2 * sy2)
    u = (mx - my) / (sx2 * sy2) ** 0.25
    v = math.sqrt(sx2 / sy2)
    accuracy = ccc / r if r != 0 else NAN
    if abs(ccc) >= 1.0 - 1e-15:
        return ConcordanceCorrelation(ccc, ccc, ccc, r, accuracy, u, v, n)
    var = (
        (1 - r**2) * ccc**2 * (1 - ccc**2) / r**2
        + 2 * ccc**3 * (1 - ccc) * u**2 / r
        - ccc**4 * u**4 / (2 * r**2)
    ) / (n - 2)
    se_z = math.sqrt(max(var, 0.0)) / (1 - ccc**2)
    zc = z_crit(confidence)
    zt = math.atanh(ccc)
    return ConcordanceCorrelation(
        ccc, math.tanh(zt - zc * se_z), math.tanh(zt + zc * se_z), r, accuracy, u, v, n
    )


def _loa_ci(
    limit: float,
    sd: float,
    n: int,
    multiplier: float,
    sign: int,
    method: LoaCIMethod,
    confidence: float,
) -> tuple[float, float]:
    alpha = 1.0 - confidence
    if sd == 0:
        return limit, limit
    if method is LoaCIMethod.EXACT:
        nc = multiplier * math.sqrt(n)
        q_lo = float(_st.nct.ppf(alpha / 2, n - 1, nc))
        q_hi = float(_st.nct.ppf(1 - alpha / 2, n - 1, nc))
        bias = limit - sign * multiplier * sd
        if sign > 0:
            return bias + sd * q_lo / math.sqrt(n), bias + sd * q_hi / math.sqrt(n)
        return bias - sd * q_hi / math.sqrt(n), bias - sd * q_lo / math.sqrt(n)
    t = float(_st.t.ppf(1 - alpha / 2, n - 1))
    if method is LoaCIMethod.BLAND_ALTMAN_1986:
        se = sd * math.sqrt(3.0 / n)
    else:
        se = sd * math.sqrt(1.0 / n + multiplier**2 / (2.0 * (n - 1)))
    return limit - t * se, limit + t * se


def bland_altman(
    x: ArrayLike,
    y: ArrayLike,
    confidence: float = 0.95,
    multiplier: float = 1.96,
    loa_ci_method: str | LoaCIMethod = LoaCIMethod.BLAND_ALTMAN_1999,
) -> BlandAltman:
    """Bland-Altman bias, limits of agreement (with CIs) and proportional-bias regression.

    ``multiplier`` is the number of SDs of the limits (1.96; the 1986 Lancet paper used 2).
    """
    a, b = as_pair(x, y, MIN_CORRELATION_N)
    check_confidence(confidence)
    method = parse_loa_ci_method(loa_ci_method)
    if not (multiplier > 0):
        raise ValueError(f"LoA multiplier must be positive, got {multiplier}")
    n = a.size
    d = a - b
    m = (a + b) / 2.0
    bias = float(d.mean())
    sd = float(d.std(ddof=1))
    t = float(_st.t.ppf(0.5 + confidence / 2, n - 1))
    half = t * sd / math.sqrt(n)
    lo_lim, hi_lim = bias - multiplier * sd, bias + multiplier * sd
    lo_ci = _loa_ci(lo_lim, sd, n, multiplier, -1, method, confidence)
    hi_ci = _loa_ci(hi_lim, sd, n, multiplier, +1, method, confidence)
    if _is_constant(m):
        slope = intercept = Estimate(NAN, NAN, NAN)
        slope_p = NAN
    elif _is_constant(d):
        slope = Estimate(0.0, 0.0, 0.0)
        intercept = Estimate(bias, bias, bias)
        slope_p = 1.0
    else:
        reg = _st.linregress(m, d)
        t2 = float(_st.t.ppf(0.5 + confidence / 2, n - 2))
        s, i = float(reg.slope), float(reg.intercept)
        s_se, i_se = float(reg.stderr), float(reg.intercept_stderr)
        slope = Estimate(s, s - t2 * s_se, s + t2 * s_se)
        intercept = Estimate(i, i - t2 * i_se, i + t2 * i_se)
        slope_p = float(reg.pvalue)
    return BlandAltman(
        n=n,
        bias=Estimate(bias, bias - half, bias + half),
        sd=sd,
        multiplier=float(multiplier),
        loa_low=Estimate(lo_lim, *lo_ci),
        loa_high=Estimate(hi_lim, *hi_ci),
        loa_ci_method=method.value,
        slope=slope,
        intercept=intercept,
        slope_p=slope_p,
    )


def continuous_agreement(
    pred: ArrayLike,
    ref: ArrayLike,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    ci_method: str | BootstrapMethod = BootstrapMethod.BCA,
    seed: int | None = 0,
    loa_ci_method: str | LoaCIMethod = LoaCIMethod.BLAND_ALTMAN_1999,
) -> ContinuousAgreement:
    """MAE, RMSE, bias, Pearson, Spearman, Lin's CCC and Bland-Altman of ``pred`` vs ``ref``."""
    p, r = as_pair(pred, ref, MIN_CORRELATION_N, names=("pred", "ref"))

    def boot(fn: Any) -> BootstrapCI:
        if n_resamples == 0:  # intervals switched off
            est = float(fn(p, r))
            return BootstrapCI(est, NAN, NAN, "none", 0, confidence, seed)
        return bootstrap_ci(
            fn,
            p,
            r,
            n_resamples=n_resamples,
            method=ci_method,
            seed=seed,
            confidence_level=confidence,
            vectorized=True,
        )

    ba = bland_altman(p, r, confidence, loa_ci_method=loa_ci_method)
    return ContinuousAgreement(
        n=p.size,
        mae=boot(_mae_vec),
        rmse=boot(_rmse_vec),
        bias=ba.bias,
        sd_diff=ba.sd,
        pearson=pearson(p, r, confidence),
        spearman=spearman(p, r, confidence),
        ccc=lins_ccc(p, r, confidence),
        bland_altman=ba,
    )
