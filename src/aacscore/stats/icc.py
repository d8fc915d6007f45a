"""Intraclass correlation coefficients: the six Shrout & Fleiss (1979) forms.

Input is an ``n targets x k raters`` array without missing values. From the two-way ANOVA
mean squares (BMS between targets, WMS within targets, JMS between raters, EMS residual):

========  ===================================================  ==========================
form      estimate                                             model (McGraw & Wong 1996)
========  ===================================================  ==========================
ICC(1,1)  (BMS - WMS) / (BMS + (k-1) WMS)                      one-way random, single
ICC(2,1)  (BMS - EMS) / (BMS + (k-1) EMS + k (JMS - EMS) / n)  two-way random, absolute
ICC(3,1)  (BMS - EMS) / (BMS + (k-1) EMS)                      two-way mixed, consistency
ICC(1,k)  (BMS - WMS) / BMS                                    mean of k raters
ICC(2,k)  (BMS - EMS) / (BMS + (JMS - EMS) / n)                mean of k raters
ICC(3,k)  (BMS - EMS) / BMS                                    mean of k raters
========  ===================================================  ==========================

F tests of ICC = 0: ``BMS / WMS`` on (n-1, n(k-1)) df for the (1,.) forms, ``BMS / EMS`` on
(n-1, (n-1)(k-1)) df for the (2,.) and (3,.) forms. Confidence intervals follow Shrout & Fleiss
(1979) and McGraw & Wong (1996): exact F-based limits for forms 1 and 3, and for form 2 the
approximate limits with Satterthwaite's degrees of freedom. ICC(2,1) stays below 1 when raters
differ by a constant, while ICC(3,1) (consistency) ignores such an offset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as _st

from aacscore.stats._common import NAN, check_confidence

ICC_FORMS: tuple[str, ...] = (
    "ICC(1,1)",
    "ICC(2,1)",
    "ICC(3,1)",
    "ICC(1,k)",
    "ICC(2,k)",
    "ICC(3,k)",
)


@dataclass(frozen=True)
class ICCForm:
    """One ICC form with its F test of ICC = 0 and confidence interval."""

    name: str
    value: float
    ci_low: float
    ci_high: float
    f: float
    df1: float
    df2: float
    p: float

    def as_dict(self) -> dict[str, float]:
        """``{"value", "ci_low", "ci_high", "f", "df1", "df2", "p"}``."""
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "f": self.f,
            "df1": self.df1,
            "df2": self.df2,
            "p": self.p,
        }


@dataclass(frozen=True)
class ICCResult:
    """All six forms plus the ANOVA mean squares; index by form name, e.g. ``r["ICC(2,1)"]``."""

    forms: tuple[ICCForm, ...]
    n: int
    k: int
    bms: float
    wms: float
    jms: float
    ems: float
    confidence: float
    raters: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> ICCForm:
        key = name.replace(" ", "").upper().replace("K)", "k)")
        for f in self.forms:
            if f.name == key:
                return f
        raise KeyError(f"unknown ICC form {name!r}; expected one of {ICC_FORMS}")

    def as_dict(self) -> dict[str, dict[str, float]]:
        """Mapping form name -> :meth:`ICCForm.as_dict`."""
        return {f.name: f.as_dict() for f in self.forms}


def _ratio(num: float, den: float) -> float:
    if den == 0:
        if num == 0:
            return NAN
        return math.inf if num > 0 else -math.inf
    return num / den


def _single(f: float, k: int) -> float:
    """(F - 1) / (F + k - 1), the CI transform of the single-rater forms."""
    if math.isinf(f):
        return 1.0 if f > 0 else NAN
    return (f - 1.0) / (f + k - 1.0)


def _average(f: float) -> float:
    """1 - 1 / F, the CI transform of the average-rater forms."""
    if f == 0:
        return -math.inf
    return 1.0 - 1.0 / f


def _spearman_brown(r: float, k: int) -> float:
    return k * r / (1.0 + (k - 1) * r)


def icc(
    ratings: npt.ArrayLike,
    confidence: float = 0.95,
    raters: Sequence[str] | None = None,
) -> ICCResult:
    """The six Shrout & Fleiss ICCs of an ``n targets x k raters`` array (n >= 2, k >= 2)."""
    check_confidence(confidence)
    y = np.asarray(ratings, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"ratings must be a 2-D array (targets x raters), got shape {y.shape}")
    n, k = y.shape
    names = tuple(raters) if raters is not None else tuple(f"rater {j + 1}" for j in range(k))
    if len(names) != k:
        raise ValueError(f"got {len(names)} rater names for {k} rater columns")
    if k < 2:
        raise ValueError(f"the ICC needs at least 2 raters (columns), got {k}")
    if n < 2:
        raise ValueError(f"the ICC needs at least 2 targets (rows), got {n}")
    bad = np.argwhere(~np.isfinite(y))
    if bad.size:
        where = ", ".join(f"target {i + 1} / {names[j]}" for i, j in bad[:10])
        raise ValueError(
            f"ratings contain {len(bad)} missing or non-finite value(s) ({where}); "
            "the ICC needs complete data"
        )

    grand = float(y.mean())
    row = y.mean(axis=1)
    col = y.mean(axis=0)
    ss_rows = k * float(np.sum((row - grand) ** 2))
    ss_cols = n * float(np.sum((col - grand) ** 2))
    ss_within = float(np.sum((y - row[:, None]) ** 2))
    ss_error = float(np.sum((y - row[:, None] - col[None, :] + grand) ** 2))
    df_b, df_w, df_j, df_e = n - 1, n * (k - 1), k - 1, (n - 1) * (k - 1)
    bms, wms, jms, ems = ss_rows / df_b, ss_within / df_w, ss_cols / df_j, ss_error / df_e

    icc1 = _ratio(bms - wms, bms + (k - 1) * wms)
    icc2 = _ratio(bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n)
    icc3 = _ratio(bms - ems, bms + (k - 1) * ems)
    icc1k = _ratio(bms - wms, bms)
    icc2k = _ratio(bms - ems, bms + (jms - ems) / n)
    icc3k = _ratio(bms - ems, bms)

    q = 1.0 - (1.0 - confidence) / 2.0
    f1 = _ratio(bms, wms)
    f3 = _ratio(bms, ems)
    p1 = float(_st.f.sf(f1, df_b, df_w)) if math.isfinite(f1) else (0.0 if f1 > 0 else NAN)
    p3 = float(_st.f.sf(f3, df_b, df_e)) if math.isfinite(f3) else (0.0 if f3 > 0 else NAN)

    def f_limits(f: float, df_den: int) -> tuple[float, float]:
        if math.isnan(f):
            return NAN, NAN
        fl = f / float(_st.f.ppf(q, df_b, df_den))
        fu = f * float(_st.f.ppf(q, df_den, df_b))
        return fl, fu

    fl1, fu1 = f_limits(f1, df_w)
    fl3, fu3 = f_limits(f3, df_e)

    # ICC(2,1): Satterthwaite df for a*JMS + b*EMS (McGraw & Wong 1996, Shrout & Fleiss 1979).
    if math.isnan(icc2):
        l2 = u2 = NAN
    elif icc2 >= 1.0:
        l2 = u2 = 1.0
    else:
        a = k * icc2 / (n * (1.0 - icc2))
        b = 1.0 + k * icc2 * (n - 1) / (n * (1.0 - icc2))
        num = (a * jms + b * ems) ** 2
        den = (a * jms) ** 2 / df_j + (b * ems) ** 2 / df_e
        v = num / den if den > 0 else NAN
        if not math.isfinite(v) or v <= 0:
            l2 = u2 = NAN
        else:
            fs = float(_st.f.ppf(q, df_b, v))
            fs2 = float(_st.f.ppf(q, v, df_b))
            c = k * jms + (k * n - k - n) * ems
            l2 = n * (bms - fs * ems) / (fs * c + n * bms)
            u2 = n * (fs2 * bms - ems) / (c + n * fs2 * bms)

    forms = (
        ICCForm("ICC(1,1)", icc1, _single(fl1, k), _single(fu1, k), f1, df_b, df_w, p1),
        ICCForm("ICC(2,1)", icc2, l2, u2, f3, df_b, df_e, p3),
        ICCForm("ICC(3,1)", icc3, _single(fl3, k), _single(fu3, k), f3, df_b, df_e, p3),
        ICCForm("ICC(1,k)", icc1k, _average(fl1), _average(fu1), f1, df_b, df_w, p1),
        ICCForm(
            "ICC(2,k)", icc2k, _spearman_brown(l2, k), _spearman_brown(u2, k), f3, df_b, df_e, p3
        ),
        ICCForm("ICC(3,k)", icc3k, _average(fl3), _average(fu3), f3, df_b, df_e, p3),
    )
    return ICCResult(forms, n, k, bms, wms, jms, ems, confidence, names)
