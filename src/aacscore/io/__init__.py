"""Reading radiographs: DICOM, PNG/JPEG/TIFF, folders, lists and zip archives."""

from aacscore.io.types import Radiograph, RadiographError

__all__ = ["Radiograph", "RadiographError"]
