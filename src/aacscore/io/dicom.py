"""DICOM radiographs: header checks, LUT pipeline, spacing and metadata.

Pixel values go through the DICOM grayscale pipeline: stored values (masked / sign-extended to
BitsStored) -> Modality LUT or rescale -> VOI LUT sequence or window centre/width (first
value) -> [0, 1] -> inverted for MONOCHROME1, so bone is bright. Without a VOI transform the
full range that BitsStored allows (through the modality transform) maps onto [0, 1].

Single-frame grey JPEG 2000 is decoded by :mod:`aacscore.io._j2k` where it can: at full
resolution on several threads (the same integers as pydicom's decode), or, only when the caller
passes ``decode_spacing_mm``, at the coarsest JPEG 2000 resolution level ``k`` whose spacing
(the film's largest spacing x 2^k) is at most ``decode_spacing_mm`` and that keeps 320 pixels
a side: the pixels are then about 2^k times smaller than Rows x Columns (pixel ``i`` at the
film's pixel ``2^k * i``), ``spacing_mm`` is the header's times 2^k, ``Radiograph.reduction``
and ``metadata["ResolutionReduction"]`` are ``k``, and ``Radiograph.region`` decodes a
rectangle at a finer level (an area decode: only the code blocks it touches), through the same
grayscale pipeline. Both need Glymur and the system OpenJPEG library; without them every film
is decoded at full resolution (:func:`aacscore.io._j2k.reduction_level`). Anything that path
cannot decode goes to pydicom, at full resolution, as before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing, get_decoder
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    JPEG2000,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
)

from aacscore.io import _j2k
from aacscore.io._common import (
    MAX_SPACING_MM,
    MIN_SPACING_MM,
    check_size,
    colourfulness,
    plausible_spacing,
    to_grey,
    unit_range,
)
from aacscore.io.types import Radiograph, RadiographError

logger = logging.getLogger(__name__)

METADATA_KEYS: tuple[str, ...] = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "Modality",
    "ViewPosition",
    "BodyPartExamined",
    "Manufacturer",
)
"""Non-identifying header values copied into ``Radiograph.metadata`` when present (plus
TransferSyntaxUID, Rows and Columns)."""

PATIENT_KEYS: tuple[str, ...] = ("PatientName", "PatientID")
"""Identifying values, copied only with ``include_patient=True``."""

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_RGB_LIKE = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
_SUBSAMPLED = ("YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420")
_DEFER_BYTES = 1 << 20
"""Elements larger than this (the pixel data) are read from a file only when used."""

_UNDEFINED_LENGTH = 0xFFFFFFFF

_FAST_J2K = (JPEG2000Lossless, JPEG2000)
"""Transfer syntaxes whose grey single-frame pixel data :mod:`aacscore.io._j2k` decodes."""

SCORING_DECODE_SPACING_MM = 0.6
"""The ``decode_spacing_mm`` for scoring: the spine network sees the whole film at about 1 mm
per pixel (288 x 192) and the view classifier at 128 pixels, so a film is decoded at the
coarsest level of at most 0.6 mm (about twice the networks' resolution, for their
antialiased resize); the aortic band (0.25 mm per column) is decoded apart, over its own
rectangle (:meth:`Radiograph.region`, :data:`aacscore.aorta.roi.BAND_SOURCE_SPACING_MM`)."""


def read_dicom(
    source: str | Path | BinaryIO,
    name: str,
    *,
    spacing: tuple[float, float] | None,
    include_patient: bool,
    min_size: int,
    force: bool = False,
    decode_spacing_mm: float | None = None,
) -> Radiograph:
    """Read one DICOM radiograph from a path or binary file object.

    ``spacing`` (already validated) overrides the header spacing. ``force`` reads a dataset
    without the 128-byte preamble and "DICM" prefix; it is then accepted only when it looks
    like an image dataset. ``decode_spacing_mm`` allows a JPEG 2000 film to be decoded at a
    reduced resolution (see the module docstring); None decodes every film at full resolution.
    """
    notes: list[str] = []
    ds = _parse(source, name, force)
    ts, ts_present = _transfer_syntax(ds, name)

    frames = _header_int(ds, "NumberOfFrames", 1, name)
    if frames > 1:
        raise RadiographError(
            name, f"multi-frame image ({frames} frames) is not supported; export a single frame"
        )
    samples = _header_int(ds, "SamplesPerPixel", 1, name)
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    colour = _check_colour(name, samples, photometric)
    if not photometric:
        photometric = "MONOCHROME2"
        _note(notes, name, "PhotometricInterpretation missing; MONOCHROME2 assumed")

    if "Rows" not in ds or "Columns" not in ds:
        raise RadiographError(name, "DICOM header has no Rows/Columns")
    rows = _header_int(ds, "Rows", 0, name)
    cols = _header_int(ds, "Columns", 0, name)
    check_size(name, rows, cols, min_size)

    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise RadiographError(name, "floating-point pixel data is not supported")
        raise RadiographError(name, "no pixel data (the DICOM file has a header only)")
    _check_decoder(name, ts)

    bits_allocated = _header_int(ds, "BitsAllocated", 0, name)
    bits_stored = _header_int(ds, "BitsStored", bits_allocated, name)
    if not 1 <= bits_stored <= max(bits_allocated, 1):
        _note(notes, name, f"BitsStored {bits_stored} invalid; BitsAllocated used")
        bits_stored = bits_allocated
    if bits_stored < 1:
        raise RadiographError(name, "DICOM header has no valid BitsAllocated/BitsStored")
    signed = _header_int(ds, "PixelRepresentation", 0, name) == 1

    _set_assumed(ds, samples, photometric, bits_stored, int(signed))
    if not ts.is_compressed:
        _check_native_length(ds, name, rows, cols, samples, bits_allocated, photometric)
    spacing_note: str | None = None
    if spacing is not None:
        spacing_source: str | None = "user"
    else:
        spacing, spacing_source, spacing_note = _spacing(ds)

    arr: npt.NDArray[Any] | None = None
    level = 0
    codestream: tuple[bytes, _j2k.Codestream] | None = None
    if ts in _FAST_J2K and not colour:
        arr, level, codestream = _decode_j2k(ds, name, signed, spacing, decode_spacing_mm, min_size)
    if arr is None:
        arr = _decode(ds, name, ts)
    if arr.ndim != (3 if colour else 2):
        raise RadiographError(name, f"unexpected decoded pixel array shape {arr.shape}")

    chroma: float | None = None
    if colour:
        chroma = round(colourfulness(arr, float(2**bits_stored - 1)), 2)
        grey = to_grey(arr)
        pixels = unit_range(grey, 0.0, float(2**bits_stored - 1), name)
        _note(notes, name, f"colour DICOM ({photometric}) converted to grey")
    else:
        pixels = _grey(ds, name, arr, bits_stored, signed, photometric, notes)
    if spacing_note:
        _note(notes, name, spacing_note)

    metadata = _metadata(ds, ts, ts_present, rows, cols, include_patient)
    finer: _J2kFiner | None = None
    header = _header(ds)
    if level and spacing is not None:  # a level is chosen only for a known spacing
        factor = 2**level
        spacing = (spacing[0] * factor, spacing[1] * factor)
        metadata["ResolutionReduction"] = level
    if chroma is not None:
        metadata["Colourfulness"] = chroma
    if codestream is not None:
        finer = _J2kFiner(name, codestream[0], codestream[1], header, bits_stored, signed)

    return Radiograph(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        spacing_mm=spacing,
        source="dicom",
        photometric=photometric,
        bits_stored=bits_stored,
        metadata=metadata,
        warnings=tuple(notes),
        spacing_source=spacing_source,
        header=header,
        reduction=level,
        finer=finer,
    )


@dataclass(frozen=True, eq=False)
class _J2kFiner:
    """Rectangles of a JPEG 2000 film at other resolution levels than its read's
    (:class:`~aacscore.io.types.FinerDecoder`), through the film's grayscale pipeline."""

    name: str
    data: bytes
    info: _j2k.Codestream
    header: Dataset
    bits_stored: int
    signed: bool

    @property
    def levels(self) -> int:
        """The codestream's decomposition levels."""
        return self.info.levels

    def __call__(
        self, level: int, area: tuple[int, int, int, int]
    ) -> npt.NDArray[np.float32] | None:
        arr = _j2k.decode_area(self.data, self.info, self.signed, level, area, self.name)
        if arr is None:
            logger.warning(
                "%s: JPEG 2000 area decode at resolution level %d failed; the pixels read are used",
                self.name,
                level,
            )
            return None
        return _grey(self.header, self.name, arr, self.bits_stored, self.signed, "", [])


_FIRST_PIXEL_TAG = 0x7FE00008
"""FloatPixelData; it, DoubleFloatPixelData, PixelData and all later elements are left out of
the header (as ``pydicom.dcmread(stop_before_pixels=True)`` does)."""


def _header(ds: Dataset) -> Dataset:
    """The dataset's elements before the pixel data, with its file meta, so that outputs can
    be built after the source is gone.

    Values are converted now, nested sequences included, so that pydicom's complaints about
    them (e.g. an invalid UID) are made while the file is read, not when an output uses them;
    an element that cannot be converted is kept as read.
    """
    header = Dataset()
    for tag in sorted(ds.keys()):
        if tag >= _FIRST_PIXEL_TAG:
            break
        elem = _converted(ds, tag)
        if elem is not None:
            header[tag] = elem
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        header.file_meta = FileMetaDataset(meta)
    return header


def _converted(ds: Dataset, tag: BaseTag) -> DataElement | RawDataElement | None:
    try:
        elem = ds[tag]
    except Exception as exc:  # an unconvertible value is kept as read
        logger.debug("element %s kept unconverted (%s)", tag, exc)
        return ds.get_item(tag)
    if elem.VR == "SQ":
        for item in elem.value:
            for inner in list(item.keys()):
                _converted(item, inner)
    return elem


def _note(notes: list[str], name: str, message: str) -> None:
    """Record a worked-around problem and log it."""
    logger.warning("%s: %s", name, message)
    notes.append(message)


def _parse(source: str | Path | BinaryIO, name: str, force: bool) -> Dataset:
    defer = _DEFER_BYTES if isinstance(source, (str, Path)) else None
    try:
        ds = pydicom.dcmread(source, force=force, defer_size=defer)
    except InvalidDicomError as exc:
        raise RadiographError(name, "not a DICOM or image file") from exc
    except Exception as exc:
        if force:
            raise RadiographError(name, "not a DICOM or image file") from exc
        raise RadiographError(name, f"truncated or corrupt DICOM file ({exc})") from exc
    if force and not any(k in ds for k in ("Rows", "Columns", "PixelData", "SOPClassUID")):
        raise RadiographError(name, "not a DICOM or image file")
    _check_truncated_header(ds, name)
    return ds


def _check_truncated_header(ds: Dataset, name: str) -> None:
    """Detect a file that ends inside a header element (pydicom reads it silently)."""
    tags = list(ds.keys())
    if not tags:
        raise RadiographError(name, "truncated DICOM file: no data elements after the preamble")
    last = ds.get_item(tags[-1])
    if (
        isinstance(last, RawDataElement)
        and last.value is not None
        and last.length != _UNDEFINED_LENGTH
        and len(last.value) < last.length
    ):
        raise RadiographError(
            name,
            f"truncated DICOM file: element {last.tag} has {len(last.value)} of "
            f"{last.length} bytes",
        )


def _transfer_syntax(ds: Dataset, name: str) -> tuple[UID, bool]:
    """The transfer syntax and whether the file meta states it (else the one pydicom used)."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return UID(str(uid)), True
    implicit, little = ds.original_encoding
    ts = ImplicitVRLittleEndian
    if implicit is False:
        ts = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    logger.debug("%s: no TransferSyntaxUID; %s assumed from the encoding", name, ts.name)
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = ts  # pydicom needs it to decode the pixel data
    return ts, False


def _set_assumed(
    ds: Dataset, samples: int, photometric: str, bits_stored: int, representation: int
) -> None:
    """Write the values the reader assumed (missing or invalid elements, each noted in the
    warnings) into the dataset, so that pydicom decodes the pixels with them too."""
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsStored = bits_stored
    ds.PixelRepresentation = representation


def _header_int(ds: Dataset, keyword: str, default: int, name: str) -> int:
    if keyword not in ds:
        return default
    try:
        value = ds[keyword].value
        if value is None or value == "":
            return default
        return int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise RadiographError(name, f"invalid {keyword} in DICOM header ({exc})") from exc


def _check_colour(name: str, samples: int, photometric: str) -> bool:
    """True for a 3-sample RGB/YBR screenshot; raise for other colour images."""
    if samples == 1:
        if photometric in (*_MONOCHROME, ""):
            return False
        if photometric == "PALETTE COLOR":
            raise RadiographError(name, "colour image (PALETTE COLOR) is not supported")
        raise RadiographError(name, f"unsupported photometric interpretation {photometric!r}")
    if samples == 3 and photometric in _RGB_LIKE:
        return True
    raise RadiographError(
        name,
        f"colour image ({samples} samples per pixel, {photometric or 'no photometric'}) "
        "is not supported",
    )


def _check_decoder(name: str, ts: UID) -> None:
    label = f"{ts.name} ({ts})" if ts.name != str(ts) else str(ts)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise RadiographError(name, f"unsupported transfer syntax {label}") from exc
    if not decoder.is_available:
        raise RadiographError(
            name, f"unsupported transfer syntax {label}: no decoder plugin is installed"
        )


def _check_native_length(
    ds: Dataset, name: str, rows: int, cols: int, samples: int, bits: int, photometric: str
) -> None:
    if photometric in _SUBSAMPLED or bits not in (1, 8, 16, 32, 64):
        return
    count = rows * cols * samples
    expected = (count + 7) // 8 if bits == 1 else count * bits // 8
    try:
        found = len(ds.PixelData)
    except Exception as exc:
        raise RadiographError(name, f"truncated or unreadable pixel data ({exc})") from exc
    if found < expected:
        raise RadiographError(
            name, f"truncated pixel data: {found} of {expected} expected bytes are present"
        )


def _decode_j2k(
    ds: Dataset,
    name: str,
    signed: bool,
    spacing: tuple[float, float] | None,
    decode_spacing_mm: float | None,
    min_size: int,
) -> tuple[npt.NDArray[Any] | None, int, tuple[bytes, _j2k.Codestream] | None]:
    """Stored values by the fast JPEG 2000 path, the resolution level they are at and the
    codestream with its header (None when its other levels cannot be decoded:
    :func:`aacscore.io._j2k.levels_usable`), or (None, 0, None) when pydicom should decode the
    film (the reason is logged at debug level)."""
    try:
        data = get_frame(ds.PixelData, 0, number_of_frames=1)
    except Exception as exc:  # pydicom reports the problem when it decodes
        logger.debug("%s: JPEG 2000 frame not extracted (%s)", name, exc)
        return None, 0, None
    info = _j2k.parse_codestream(data)
    rows, cols = int(ds.Rows), int(ds.Columns)
    if info is None or info.components != 1 or (info.rows, info.columns) != (rows, cols):
        logger.debug("%s: JPEG 2000 header not for the fast path (%s)", name, info)
        return None, 0, None
    level = _j2k.reduction_level(spacing, decode_spacing_mm, info, signed, min_size)
    if level:
        arr = _j2k.decode(data, info, signed, level, name)
        if arr is not None:
            logger.debug(
                "%s: JPEG 2000 decoded at resolution level %d (%d x %d pixels)",
                name,
                level,
                arr.shape[0],
                arr.shape[1],
            )
            return arr, level, (data, info)
    arr = _j2k.decode(data, info, signed, 0, name)
    usable = arr is not None and _j2k.levels_usable(info, signed)
    return arr, 0, (data, info) if usable else None


def _grey(
    ds: Dataset,
    name: str,
    arr: npt.NDArray[Any],
    bits_stored: int,
    signed: bool,
    photometric: str,
    notes: list[str],
) -> npt.NDArray[np.float32]:
    """Stored grey values -> [0, 1], bone bright (BitsStored, modality, VOI, inversion);
    ``photometric`` empty: read from ``ds`` (as ``read_dicom`` wrote it there)."""
    stored = _fix_bits(arr, bits_stored, signed)
    values, lo, hi = _grey_pipeline(ds, name, stored, bits_stored, signed, notes)
    pixels = unit_range(values, lo, hi, name)
    photometric = photometric or str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if _inverted(ds, photometric):
        np.subtract(np.float32(1.0), pixels, out=pixels)
    return pixels


def _decode(ds: Dataset, name: str, ts: UID) -> npt.NDArray[Any]:
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise RadiographError(
            name,
            f"cannot decode pixel data ({ts.name}); the file may be truncated or corrupt: {exc}",
        ) from exc
    return np.asarray(arr)


def _fix_bits(arr: npt.NDArray[Any], bits_stored: int, signed: bool) -> npt.NDArray[Any]:
    """Keep only the BitsStored low bits (sign-extended for signed data)."""
    if not np.issubdtype(arr.dtype, np.integer) or bits_stored >= arr.dtype.itemsize * 8:
        return arr
    mask = (1 << bits_stored) - 1
    if not signed:
        return arr & np.asarray(mask, dtype=arr.dtype)
    half = 1 << (bits_stored - 1)
    low = arr.astype(np.int64) & mask
    return ((low ^ half) - half).astype(np.int32)


def _lut_range(values: npt.NDArray[Any]) -> tuple[float, float]:
    """Output range of a LUT: 0 to the all-ones value of the bits its largest entry needs."""
    top = int(np.max(values)) if values.size else 0
    return 0.0, float(2 ** max(top.bit_length(), 1) - 1)


def _lut_entries(item: Dataset) -> npt.NDArray[np.int64]:
    descriptor = [int(v) for v in item.LUTDescriptor]
    count = descriptor[0] or 2**16
    return np.arange(descriptor[1], descriptor[1] + count, dtype=np.int64)


def _stored_range(bits: int, signed: bool) -> tuple[float, float]:
    if signed:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def _grey_pipeline(
    ds: Dataset,
    name: str,
    arr: npt.NDArray[Any],
    bits: int,
    signed: bool,
    notes: list[str],
) -> tuple[npt.NDArray[Any], float, float]:
    """Modality then VOI transform; returns values and the range that maps onto [0, 1]."""
    lo, hi = _stored_range(bits, signed)
    values: npt.NDArray[Any] = arr

    try:
        if ds.get("ModalityLUTSequence"):
            item = ds.ModalityLUTSequence[0]
            values = apply_modality_lut(arr, ds)
            lo, hi = _lut_range(apply_modality_lut(_lut_entries(item), ds))
        elif "RescaleSlope" in ds and "RescaleIntercept" in ds:
            slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
            if not (math.isfinite(slope) and math.isfinite(intercept)) or slope == 0:
                raise ValueError(f"slope {slope}, intercept {intercept}")
            if (slope, intercept) != (1.0, 0.0):  # the identity would cost a float copy
                values = apply_modality_lut(arr, ds)
                lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
    except Exception as exc:
        _note(notes, name, f"modality LUT/rescale unusable ({exc}); stored values used")
        values = arr
        lo, hi = _stored_range(bits, signed)

    try:
        if ds.get("VOILUTSequence"):
            item = ds.VOILUTSequence[0]
            if item.get("LUTDescriptor") is not None and item.get("LUTData") is not None:
                if not np.issubdtype(values.dtype, np.integer):
                    values = np.rint(values).astype(np.int64)
                voi = apply_voi(values, ds, 0)
                vlo, vhi = _lut_range(apply_voi(_lut_entries(item), ds, 0))
                logger.debug("%s: VOI LUT sequence applied", name)
                return voi, vlo, vhi
        if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
            linear = _linear_window(ds, values)
            if linear is not None:
                logger.debug("%s: window centre/width applied", name)
                return linear, 0.0, 1.0
            windowed = apply_windowing(values, ds, 0)
            with np.errstate(over="ignore", invalid="ignore"):
                ends = apply_windowing(np.array([-np.inf, np.inf]), ds, 0)
            logger.debug("%s: window centre/width applied", name)
            return windowed, float(np.min(ends)), float(np.max(ends))
    except Exception as exc:
        _note(notes, name, f"VOI LUT/window unusable ({exc}); full stored range used")
    return values, lo, hi


def _linear_window(ds: Dataset, values: npt.NDArray[Any]) -> npt.NDArray[np.float64] | None:
    """The first LINEAR or LINEAR_EXACT window (PS3.3 C.11.2.1.2) mapped straight onto [0, 1]:
    what ``apply_windowing`` gives, rescaled, in a third of its time. None for a SIGMOID window
    or values it cannot use (``apply_windowing`` then decides, as before)."""
    try:
        raw = ds.get("VOILUTFunction", "LINEAR")  # as apply_windowing reads it
        function = "" if raw is None else str(raw).upper()
        center = _first_float(ds, "WindowCenter")
        width = _first_float(ds, "WindowWidth")
    except (TypeError, ValueError, OverflowError, AttributeError, IndexError):
        return None
    if function == "LINEAR":
        center, width = center - 0.5, width - 1.0
    elif function != "LINEAR_EXACT":
        return None
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        return None
    out = np.array(values, dtype=np.float64)  # always a copy
    out -= center
    out *= 1.0 / width
    out += 0.5
    return np.clip(out, 0.0, 1.0, out=out)


def _first_float(ds: Dataset, keyword: str) -> float:
    """The first value of a (possibly multi-valued) numeric element, as pydicom's windowing
    reads it."""
    elem = ds[keyword]
    value = elem.value[0] if elem.VM > 1 else elem.value
    return float(value)


def _inverted(ds: Dataset, photometric: str) -> bool:
    """MONOCHROME1 (or MONOCHROME2 with an INVERSE presentation LUT) shows bone dark."""
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    return photometric == "MONOCHROME1" or (photometric == "MONOCHROME2" and shape == "INVERSE")


def _raw_text(ds: Dataset, keyword: str) -> str:
    elem = ds.get_item(Tag(keyword))
    if isinstance(elem, RawDataElement):
        raw = elem.value or b""
        return raw.decode("ascii", errors="replace").strip(" \x00")
    return str(elem.value) if elem is not None else ""


def _floats(ds: Dataset, keyword: str) -> list[float] | None:
    """Numeric values of a DS/FD element, or None when they cannot be parsed."""
    try:
        value = ds[keyword].value
        items = (
            value
            if isinstance(value, Iterable) and not isinstance(value, (str, bytes))
            else [value]
        )
        return [float(v) for v in items]
    except (TypeError, ValueError, OverflowError, AttributeError):
        return None


def _spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str | None, str | None]:
    """(row, column) spacing in mm from PixelSpacing, else ImagerPixelSpacing / magnification,
    the element it came from, and the warning to note, if any.

    Unparsable or implausible values are skipped with one warning; None when nothing usable.
    """
    problems: list[str] = []
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if keyword not in ds:
            continue
        text = _raw_text(ds, keyword)
        values = _floats(ds, keyword)
        if values is None or len(values) != 2:
            problems.append(f"{keyword} '{text}' cannot be parsed as two numbers")
            continue
        if keyword == "ImagerPixelSpacing" and "EstimatedRadiographicMagnificationFactor" in ds:
            factor = _floats(ds, "EstimatedRadiographicMagnificationFactor")
            if factor and len(factor) == 1 and math.isfinite(factor[0]) and factor[0] > 0:
                values = [v / factor[0] for v in values]
            else:
                ftext = _raw_text(ds, "EstimatedRadiographicMagnificationFactor")
                problems.append(
                    f"EstimatedRadiographicMagnificationFactor '{ftext}' is unusable, "
                    "ImagerPixelSpacing taken without it"
                )
        if not plausible_spacing(values):
            problems.append(
                f"{keyword} '{text}' is not a plausible pixel spacing "
                f"({MIN_SPACING_MM}-{MAX_SPACING_MM} mm)"
            )
            continue
        note = "; ".join(problems) + f"; spacing from {keyword}" if problems else None
        return (values[0], values[1]), keyword, note
    return None, None, "; ".join(problems) + "; pixel spacing unknown" if problems else None


def _metadata(
    ds: Dataset, ts: UID, ts_present: bool, rows: int, cols: int, include_patient: bool
) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    keys = METADATA_KEYS + (PATIENT_KEYS if include_patient else ())
    for keyword in keys:
        try:
            value = ds.get(keyword)
        except Exception:  # an unparsable value is left out
            continue
        if value is not None and str(value).strip():
            meta[keyword] = str(value).strip()
    if ts_present:
        meta["TransferSyntaxUID"] = str(ts)
    meta["Rows"] = rows
    meta["Columns"] = cols
    return meta
