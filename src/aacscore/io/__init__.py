"""Reading radiographs: DICOM, PNG/JPEG/TIFF, folders, lists and zip archives.

>>> from aacscore.io import collect_inputs, read_radiograph
>>> rad = read_radiograph("spine.dcm")  # doctest: +SKIP
>>> rad.pixels.shape, rad.spacing_mm, rad.warnings  # doctest: +SKIP
>>> for item in collect_inputs(["scans/", "more.zip"]):  # doctest: +SKIP
...     rad = item.read(spacing_mm=0.15)
"""

from aacscore.io._common import MAX_PIXELS, MAX_SPACING_MM, MIN_SIZE, MIN_SPACING_MM
from aacscore.io.inputs import (
    CollectedInputs,
    InputItem,
    SkippedInput,
    collect_inputs,
    find_inputs,
)
from aacscore.io.reader import read_radiograph, read_radiograph_bytes
from aacscore.io.types import Radiograph, RadiographError, RadiographInfo

__all__ = [
    "MAX_PIXELS",
    "MAX_SPACING_MM",
    "MIN_SIZE",
    "MIN_SPACING_MM",
    "CollectedInputs",
    "InputItem",
    "Radiograph",
    "RadiographError",
    "RadiographInfo",
    "SkippedInput",
    "collect_inputs",
    "find_inputs",
    "read_radiograph",
    "read_radiograph_bytes",
]
