"""Limits and small helpers shared by the DICOM and Pillow readers."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from aacscore.io.types import RadiographError

MIN_SIZE = 256
"""Default smallest accepted image side in pixels."""

MAX_PIXELS = 100_000_000
"""Largest accepted image area (rows x columns); checked before any pixel is decoded."""

MIN_SPACING_MM = 0.01
MAX_SPACING_MM = 2.0
"""Plausible pixel spacing range in millimetres; values outside it are treated as unknown."""

SpacingArg: TypeAlias = float | Sequence[float] | None
"""A user spacing: one value (square pixels) or (row, column) in mm, or None."""

LIBRARY_LOGGERS: tuple[str, ...] = ("pydicom", "highdicom", "PIL")
"""Loggers whose warnings :func:`library_messages` captures while it is active."""

_CODE_WARNINGS: tuple[type[Warning], ...] = (
    DeprecationWarning,
    PendingDeprecationWarning,
    FutureWarning,
    ImportWarning,
    ResourceWarning,
)
"""Warning categories about the calling code, not the file: passed on, never captured."""

_log = logging.getLogger(__name__)

# ITU-R BT.601 luma weights, as used by Pillow's RGB -> L conversion.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def check_size(name: str, rows: int, cols: int, min_size: int) -> None:
    """Refuse images that are too small (< ``min_size`` either side) or too large."""
    if rows <= 0 or cols <= 0:
        raise RadiographError(name, f"invalid image size {rows} x {cols} pixels")
    if rows * cols > MAX_PIXELS:
        raise RadiographError(
            name,
            f"image too large: {rows} x {cols} = {rows * cols / 1e6:.1f} megapixels "
            f"(limit {MAX_PIXELS / 1e6:.0f})",
        )
    if rows < min_size or cols < min_size:
        raise RadiographError(
            name, f"image too small: {rows} x {cols} pixels (minimum {min_size} on each side)"
        )


def user_spacing(spacing_mm: SpacingArg) -> tuple[float, float] | None:
    """Validate a spacing given by the caller; one value means square pixels."""
    if spacing_mm is None:
        return None
    if isinstance(spacing_mm, (int, float, np.number)):
        values = [float(spacing_mm)] * 2
    else:
        values = [float(v) for v in spacing_mm]
        if len(values) == 1:
            values *= 2
    if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing_mm must be one or two positive numbers, got {spacing_mm!r}")
    return (values[0], values[1])


def plausible_spacing(values: Sequence[float]) -> bool:
    """True when every value is a finite spacing in [MIN_SPACING_MM, MAX_SPACING_MM]."""
    return all(math.isfinite(v) and MIN_SPACING_MM <= v <= MAX_SPACING_MM for v in values)


def to_grey(rgb: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    """Luma (BT.601) of an (..., 3) RGB array, in the input's value units."""
    return np.asarray(rgb[..., :3], dtype=np.float64) @ _LUMA


def colourfulness(rgb: npt.NDArray[np.generic], full_scale: float = 255.0) -> float:
    """How much colour an (..., 3) RGB array holds that its brightness does not explain, on a
    0-255 scale (``full_scale``: the input's white): the SD of the opponent chroma
    ``(R - G, (R + G) / 2 - B)`` (Hasler and Suesstrunk 2003) left after fitting each as a
    quadratic function of the luma, on every 4th row and column. A grey film, or one
    photographed under a colour cast, a tinted glare or per-channel tone curves, is near 0-5
    (its chroma follows its brightness); colour photographs 18-50."""
    a = np.asarray(rgb[::4, ::4, :3], dtype=np.float64).reshape(-1, 3) * (255.0 / full_scale)
    if len(a) < 4:
        return 0.0
    luma = a @ _LUMA
    basis = np.stack([np.ones_like(luma), luma, luma * luma], axis=1)
    left = []
    for chroma in (a[:, 0] - a[:, 1], 0.5 * (a[:, 0] + a[:, 1]) - a[:, 2]):
        coef = np.linalg.lstsq(basis, chroma, rcond=None)[0]
        left.append(float((chroma - basis @ coef).std()))
    return math.hypot(*left)


def channels_equal(rgb: npt.NDArray[np.generic]) -> bool:
    """True when the first three channels are identical (grey stored as RGB)."""
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    )


def unit_range(
    values: npt.NDArray[np.generic], lo: float, hi: float, name: str
) -> npt.NDArray[np.float32]:
    """Map ``[lo, hi]`` linearly onto [0, 1] (clipped) as a new float32 array."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise RadiographError(name, f"cannot normalise pixel values: invalid range [{lo}, {hi}]")
    out = np.array(values, dtype=np.float32)  # always a copy
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    np.clip(out, 0.0, 1.0, out=out)
    return out


class _Capture(logging.Handler):
    """Collects the text of library log records at WARNING and above; lower records and the
    per-plugin decode failures of ``pydicom.pixels`` (summarised in a RadiographError when
    decoding fails) go to the debug log with the file name."""

    def __init__(self, name: str, messages: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.file = name
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        library = record.name.split(".", 1)[0]
        plugin_failure = record.levelno >= logging.ERROR and record.name.startswith(
            "pydicom.pixels"
        )
        if record.levelno < logging.WARNING or plugin_failure:
            _log.debug("%s: %s: %s", self.file, library, text)
        else:
            self.messages.append(text)


@contextmanager
def library_messages(name: str) -> Iterator[list[str]]:
    """Capture what pydicom, highdicom and Pillow report about file ``name`` while active.

    Yields a list that receives the text of every Python warning (except those about code,
    such as DeprecationWarning, which are passed on unchanged) and every log record at WARNING
    or above from :data:`LIBRARY_LOGGERS`, in order and possibly repeated. Nothing reaches the
    console meanwhile; pass the list to :func:`distinct_messages`. Not thread-safe (Python's
    warning filters and the loggers are process-wide).
    """
    messages: list[str] = []
    handler = _Capture(name, messages)
    loggers = [logging.getLogger(n) for n in LIBRARY_LOGGERS]
    propagate = [lg.propagate for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    passed_on: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always")
            try:
                yield messages
            finally:
                for w in recorded:
                    if issubclass(w.category, _CODE_WARNINGS):
                        passed_on.append(w)
                    else:
                        messages.append(str(w.message))
    finally:
        for lg, prop in zip(loggers, propagate, strict=True):
            lg.removeHandler(handler)
            lg.propagate = prop
        for w in passed_on:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def distinct_messages(
    name: str, messages: Iterable[str], logger: logging.Logger, known: Iterable[str] = ()
) -> tuple[str, ...]:
    """The distinct, non-empty ``messages`` not in ``known``, in order; each is logged once at
    WARNING as ``"<name>: <message>"``."""
    seen = set(known)
    out: list[str] = []
    for message in messages:
        text = message.strip()
        if text and text not in seen:
            seen.add(text)
            out.append(text)
            logger.warning("%s: %s", name, text)
    return tuple(out)
