"""The one case key that joins aacscore's results with reference readings and cohort tables.

``case_key("/data/p1/P001.dcm") == "P001"``: the file name without its folder and without a
known image or archive suffix (case-insensitive, a compression suffix first: ``P001.DCM.gz``
-> ``P001``). Anything else after a dot is kept, so DICOM UIDs used as file names
(``1.2.840.113619.2.55``) stay whole. Zip members (``batch.zip:IM0001.dcm`` or
``batch.zip!IM0001.dcm``) and Windows paths give the member's / file's own name.
"""

from __future__ import annotations

import re

IMAGE_SUFFIXES: tuple[str, ...] = (
    ".nii",
    ".dcm",
    ".dicom",
    ".dic",
    ".ima",
    ".png",
    ".jpg",
    ".jpeg",
    ".jp2",
    ".j2k",
    ".tif",
    ".tiff",
    ".bmp",
)
"""Suffixes removed from a file name to give its key."""
COMPRESSION_SUFFIXES: tuple[str, ...] = (".gz", ".bz2", ".xz", ".zip")
"""Removed first, then one image suffix."""


def case_key(value: object) -> str:
    """Join key of a file name or path (see the module docstring)."""
    text = str(value).strip()
    name = re.split(r"[\\/:!]", text)[-1] if text else text
    name = name.strip() or text
    low = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            name, low = name[: -len(suffix)], low[: -len(suffix)]
            break
    for suffix in IMAGE_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name
