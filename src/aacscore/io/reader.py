"""`read_radiograph`: one file (or in-memory bytes) -> :class:`Radiograph`.

The format is recognised from the content (DICOM "DICM" prefix, PNG/JPEG/TIFF signatures);
a DICOM dataset without the preamble is accepted when the name ends in .dcm/.dicom or has no
extension.

What pydicom and Pillow report while a file is read and decoded (Python warnings and their
log messages, e.g. pydicom's "Invalid value for VR UI") is not printed: each distinct message
is added to ``Radiograph.library_warnings`` and logged once at WARNING as
``"<file>: <message>"``. Unlike the reader's own corrections (``Radiograph.warnings``), they
raise no flag: they do not change the pixels or the spacing handed on.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from pathlib import Path
from typing import BinaryIO

from aacscore.io._common import (
    MIN_SIZE,
    SpacingArg,
    distinct_messages,
    library_messages,
    user_spacing,
)
from aacscore.io.dicom import read_dicom
from aacscore.io.image import read_image
from aacscore.io.types import Radiograph, RadiographError

logger = logging.getLogger(__name__)

DICOM_SUFFIXES: frozenset[str] = frozenset({".dcm", ".dicom", ".dic"})
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
HEAD_BYTES = 132
"""Bytes needed to recognise a file: the 128-byte DICOM preamble plus "DICM"."""


def sniff(head: bytes) -> str | None:
    """Format recognised from the first bytes: "dicom", "png", "jpeg", "tiff" or None."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return None


def read_radiograph(
    path: str | Path,
    spacing_mm: SpacingArg = None,
    include_patient: bool = False,
    *,
    min_size: int = MIN_SIZE,
    decode_spacing_mm: float | None = None,
) -> Radiograph:
    """Read a DICOM, PNG, JPEG or TIFF radiograph.

    Pixels come back as float32 in [0, 1] with bone bright. ``spacing_mm`` (one value or
    (row, column) in mm) overrides the header spacing, or supplies it for PNG/JPEG/TIFF.
    ``include_patient`` adds PatientName/PatientID to the metadata. Images smaller than
    ``min_size`` on either side or larger than 100 megapixels are refused.
    ``decode_spacing_mm`` lets a JPEG 2000 DICOM finer than half of it be decoded at a reduced
    resolution, with its spacing scaled (:mod:`aacscore.io.dicom`); None: full resolution.

    Raises:
        RadiographError: the file is missing, empty, truncated, not an image, or unusable
            (multi-frame, colour, unsupported transfer syntax, no pixel data, size).
        ValueError: ``spacing_mm`` is not positive.
    """
    spacing = user_spacing(spacing_mm)
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise RadiographError(name, "file not found")
    if p.is_dir():
        raise RadiographError(name, "is a directory, not a file")
    try:
        if p.stat().st_size == 0:
            raise RadiographError(name, "empty file")
        with p.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        raise RadiographError(name, f"cannot be read ({exc.strerror or exc})") from exc
    return _dispatch(
        p, head, p.suffix.lower(), name, spacing, include_patient, min_size, decode_spacing_mm
    )


def read_radiograph_bytes(
    data: bytes,
    name: str,
    spacing_mm: SpacingArg = None,
    include_patient: bool = False,
    *,
    min_size: int = MIN_SIZE,
    decode_spacing_mm: float | None = None,
) -> Radiograph:
    """Like :func:`read_radiograph` for a file's content held in memory (e.g. a zip member);
    ``name`` is used in messages and for the extension."""
    spacing = user_spacing(spacing_mm)
    if not data:
        raise RadiographError(name, "empty file")
    suffix = Path(name.rsplit(":", 1)[-1]).suffix.lower()
    return _dispatch(
        io.BytesIO(data),
        data[:HEAD_BYTES],
        suffix,
        name,
        spacing,
        include_patient,
        min_size,
        decode_spacing_mm,
    )


def _dispatch(
    source: Path | BinaryIO,
    head: bytes,
    suffix: str,
    name: str,
    spacing: tuple[float, float] | None,
    include_patient: bool,
    min_size: int,
    decode_spacing_mm: float | None,
) -> Radiograph:
    """Read with the libraries' warnings captured into the radiograph's ``library_warnings``
    (only logged at debug level when the file is refused: the error says what is wrong)."""
    try:
        with library_messages(name) as caught:
            rad = _read(
                source, head, suffix, name, spacing, include_patient, min_size, decode_spacing_mm
            )
    except RadiographError:
        for message in dict.fromkeys(caught):
            logger.debug("%s: %s", name, message)
        raise
    extra = distinct_messages(name, caught, logger, known=rad.warnings)
    if not extra:
        return rad
    return dataclasses.replace(rad, library_warnings=extra)


def _read(
    source: Path | BinaryIO,
    head: bytes,
    suffix: str,
    name: str,
    spacing: tuple[float, float] | None,
    include_patient: bool,
    min_size: int,
    decode_spacing_mm: float | None,
) -> Radiograph:
    kind = sniff(head)
    logger.debug("%s: recognised as %s", name, kind or "unknown")
    if kind == "dicom":
        return read_dicom(
            source,
            name,
            spacing=spacing,
            include_patient=include_patient,
            min_size=min_size,
            decode_spacing_mm=decode_spacing_mm,
        )
    if kind is not None:
        return read_image(source, name, spacing=spacing, min_size=min_size)
    if head.startswith(b"PK\x03\x04"):
        raise RadiographError(name, "is a zip archive, not an image (use collect_inputs)")
    if suffix in DICOM_SUFFIXES or suffix == "":
        # A DICOM dataset written without the preamble and "DICM" prefix.
        return read_dicom(
            source,
            name,
            spacing=spacing,
            include_patient=include_patient,
            min_size=min_size,
            force=True,
            decode_spacing_mm=decode_spacing_mm,
        )
    raise RadiographError(name, "not a DICOM or image file")
