"""Small shared pieces of :mod:`aacscore.stats`: the estimate-with-CI type and input checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as _st

FloatArray = npt.NDArray[np.float64]
ArrayLike = Sequence[float] | npt.NDArray[np.floating] | npt.NDArray[np.integer]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval (NaN where undefined)."""

    value: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float]:
        """``{"value", "ci_low", "ci_high"}``."""
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}


NAN = float("nan")


def z_crit(confidence: float) -> float:
    """Two-sided standard normal critical value for ``confidence`` (0.95 -> 1.95996...)."""
    check_confidence(confidence)
    return float(_st.norm.ppf(0.5 + confidence / 2.0))


def check_confidence(confidence: float) -> None:
    """Raise ValueError unless 0 < confidence < 1."""
    if not (0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence level must lie strictly between 0 and 1, got {confidence}")


def as_vector(x: ArrayLike, name: str) -> FloatArray:
    """A 1-D float64 copy of ``x``; raises ValueError for other shapes or non-finite values."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise ValueError(
            f"{name} contains missing or non-finite values at positions "
            f"{', '.join(str(int(i)) for i in bad[:10])}"
        )
    return a


def as_pair(
    x: ArrayLike, y: ArrayLike, min_n: int = 1, names: tuple[str, str] = ("x", "y")
) -> tuple[FloatArray, FloatArray]:
    """Two equally long finite 1-D arrays with at least ``min_n`` elements."""
    a = as_vector(x, names[0])
    b = as_vector(y, names[1])
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same length, got {a.size} and {b.size}"
        )
    if a.size < min_n:
        raise ValueError(f"need at least {min_n} paired values, got {a.size}")
    return a, b
