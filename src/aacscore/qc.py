"""Input quality checks that run before the models and flag films needing a human look.

Flags are short stable strings that end up in ``results.csv``'s ``qc_flags`` column (joined by
``;``). A flagged case still gets a score, with status ``warning``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aacscore.io.types import Radiograph

#: Documented flags and what they mean.
QC_FLAGS: dict[str, str] = {
    "spacing_unknown": "no usable pixel spacing; the scale was estimated from vertebral size",
    "low_contrast": "the central 98 % of grey values spans less than 0.12 of the full range",
    "saturated": "more than 25 % of the central half of the film is at the darkest or brightest "
    "grey level (collimation borders outside it are normal and ignored)",
    "low_resolution": "the film has fewer than 512 pixels along one side",
    "reader_warning": "the reader corrected or ignored a header value (see the case JSON)",
    "spine_warning": "the spine stage reported an implausibility (see the case JSON)",
}


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
