"""The aortic band: a straightened strip in front of L1-L4 where the Kauppila segments lie."""

from aacscore.aorta.roi import (
    DEFAULT_BAND_GEOMETRY,
    REFERENCE_ANTERIOR_HEIGHT_MM,
    Band,
    BandError,
    BandGeometry,
    extract_band,
)

__all__ = [
    "DEFAULT_BAND_GEOMETRY",
    "REFERENCE_ANTERIOR_HEIGHT_MM",
    "Band",
    "BandError",
    "BandGeometry",
    "extract_band",
]
