"""Source films of several kinds for the DICOM output tests, and results that score them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from aacscore.io import InputItem
from aacscore.kauppila import SEGMENTS, parse_groups
from aacscore.results import Result, StageResults

GRADES = dict(zip(SEGMENTS, (0.0, 0.4, 1.25, 2.0, 3.0, 0.75, 1.5, 2.5), strict=True))
BAD_STUDY = "1.2.03.4"
BAD_SERIES = "1.2.3.abc"
BAD_SOP = "1.2.840.0123.5"
BAD_FRAME = "1.2.x"
METHOD = "Basic Application Confidentiality Profile"


def scored(source: Path | InputItem, **over: Any) -> Result:
    """A scored result of ``source`` whose stages hold what the reader found."""
    item = source if isinstance(source, InputItem) else InputItem(source)
    values: dict[str, Any] = {
        "file": item.name,
        "status": "ok",
        "aac24": sum(GRADES.values()),
        "aac24_sd": 1.234,
        "grades": GRADES,
        "aac8": 3.5,
        "group": "moderate",
        "low_confidence": False,
        "orientation": "right",
        "stages": StageResults("9.8.7", parse_groups("lewis"), item.read().info),
    }
    values.update(over)
    return Result(**values)


def _method(ds: Dataset) -> None:
    ds.DeidentificationMethod = METHOD


def _method_code(ds: Dataset) -> None:
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = METHOD
    ds.DeidentificationMethodCodeSequence = [code]


def _identity_kept(ds: Dataset) -> None:
    del ds.PatientIdentityRemoved


def _identity_odd(ds: Dataset) -> None:
    ds.PatientIdentityRemoved = "Y"


TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _type2_missing(ds: Dataset) -> None:
    for keyword in (*TYPE2, "PatientOrientation", "BurnedInAnnotation", "SeriesNumber"):
        if keyword in ds:
            delattr(ds, keyword)


def _type2_empty(ds: Dataset) -> None:
    for keyword in TYPE2:
        setattr(ds, keyword, None)


def _bad_uids(ds: Dataset) -> None:
    ds.StudyInstanceUID = BAD_STUDY
    ds.SeriesInstanceUID = BAD_SERIES
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = BAD_SOP
    ds.FrameOfReferenceUID = BAD_FRAME


def _lateral_burned(ds: Dataset) -> None:
    ds.ImageLaterality = "L"
    ds.BurnedInAnnotation = "YES"
    ds.ReferringPhysicianName = "ward"  # one component: highdicom warns while writing


EDITS: dict[str, Callable[[Dataset], None] | None] = {
    "simulated": None,  # PatientIdentityRemoved YES without a method
    "method": _method,
    "method_code": _method_code,
    "identity_kept": _identity_kept,
    "identity_odd": _identity_odd,
    "type2_missing": _type2_missing,
    "type2_empty": _type2_empty,
    "bad_uids": _bad_uids,
    "lateral_burned": _lateral_burned,
}
"""Changes made to the simulated film, by variant name."""


def variant(film: Path, folder: Path, name: str) -> Path:
    """``folder/<name>.dcm``: ``film`` with the :data:`EDITS` ``name`` (values not validated,
    so that invalid ones can be written)."""
    path = folder / f"{name}.dcm"
    edit = EDITS[name]
    with pydicom.config.disable_value_validation():
        ds = pydicom.dcmread(film)
        if edit is not None:
            edit(ds)
        folder.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    return path
