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


def check_radiograph(rad: Radiograph) -> QCReport:
    """Run the image-level checks on a decoded radiograph."""
    px = rad.pixels
    flags: list[str] = []
    if rad.spacing_mm is None:
        flags.append("spacing_unknown")
    lo, hi = np.percentile(px, [1.0, 99.0])
    contrast = float(hi - lo)
    if contrast < 0.12:
        flags.append("low_contrast")
    h, w = px.shape
    centre = px[h // 4 : h - h // 4, w // 4 : w - w // 4]
    sat = float(np.mean((centre <= 0.002) | (centre >= 0.998)))
    if sat > 0.25:
        flags.append("saturated")
    if min(px.shape) < 512:
        flags.append("low_resolution")
    if rad.warnings:
        flags.append("reader_warning")
    return QCReport(flags=tuple(flags), contrast_range=contrast, saturated_fraction=sat)
