"""Input quality checks that run before the models and flag films needing a human look.

Flags are short stable strings that end up in ``results.csv``'s ``qc_flags`` column (joined by
``;``). A flagged case still gets a score, with status ``warning``. What each flag means is in
:data:`aacscore.codes.FLAGS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aacscore.io.types import Radiograph

QC_FLAGS: tuple[str, ...] = (
    "spacing_unknown",
    "low_contrast",
    "saturated",
    "low_resolution",
    "reader_warning",
)
"""The flags these checks raise; what each means is in :data:`aacscore.codes.FLAGS`."""


@dataclass(frozen=True)
class QCReport:
    """Flags raised for one film, with the measured values behind them."""

    flags: tuple[str, ...]
    contrast_range: float
    saturated_fraction: float
    grey_levels: int | None = None
    """How many of 4096 grey levels hold 99 % of the pixels (see :func:`grey_levels`)."""
    colourfulness: float | None = None
    """Colourfulness of a colour file (:func:`aacscore.io._common.colourfulness`), None for a
    grey one."""


MAX_COLOURFULNESS = 10.0
"""A colour image with at least this much colour that its brightness does not explain
(:func:`aacscore.io._common.colourfulness`) is a photograph, not a radiograph: the pipeline
refuses it (``not_radiograph``). Films photographed under a colour cast or tinted glare stay near
0-5; scikit-image's colour photographs are 18-50."""

MIN_GREY_LEVELS = 16
"""A film whose pixels (99 % of them) take fewer grey levels than this is a label map, mask,
drawing or screenshot, not a radiograph: the pipeline refuses it (``not_radiograph``)."""


def grey_levels(pixels: np.ndarray, coverage: float = 0.99) -> int:
    """How many of 4096 equal grey-level bins hold ``coverage`` of the pixels (on every 4th
    row and column: fast on any film)."""
    sub = np.asarray(pixels, dtype=np.float32)[::4, ::4]
    q = np.clip(np.rint(sub * 4095.0), 0, 4095).astype(np.int64).ravel()
    if q.size == 0:
        return 0
    counts = np.sort(np.bincount(q, minlength=4096))[::-1]
    need = coverage * q.size
    return int(np.searchsorted(np.cumsum(counts), need) + 1)


SUBSAMPLE_ABOVE_PX = 1_000_000
"""Films with more pixels than this have their contrast measured on every other row and column."""


def check_radiograph(rad: Radiograph) -> QCReport:
    """Run the image-level checks on a decoded radiograph."""
    px = rad.pixels
    flags: list[str] = []
    if rad.spacing_mm is None:
        flags.append("spacing_unknown")
    # every other pixel of a large film: the same percentiles to a few 1e-3 (white noise; ~6e-4
    # on films), a quarter of the work (the low_contrast threshold is 0.12)
    lo, hi = np.percentile(px[::2, ::2] if px.size > SUBSAMPLE_ABOVE_PX else px, [1.0, 99.0])
    contrast = float(hi - lo)
    if contrast < 0.12:
        flags.append("low_contrast")
    h, w = px.shape
    centre = px[h // 4 : h - h // 4, w // 4 : w - w // 4]
    sat = float(np.mean((centre <= 0.002) | (centre >= 0.998)))
    if sat > 0.25:
        flags.append("saturated")
    if min(rad.film_shape) < 512:
        flags.append("low_resolution")
    if rad.warnings:
        flags.append("reader_warning")
    return QCReport(
        flags=tuple(flags),
        contrast_range=contrast,
        saturated_fraction=sat,
        grey_levels=grey_levels(px),
        colourfulness=_colourfulness(rad),
    )


def _colourfulness(rad: Radiograph) -> float | None:
    v = rad.metadata.get("Colourfulness")
    return float(v) if isinstance(v, int | float) else None
