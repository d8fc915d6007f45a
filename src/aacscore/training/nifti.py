"""2-D NIfTI images and label maps (``.nii`` / ``.nii.gz``, the format of nnU-Net and most
research segmentation data) for the spine training data.

Array order: nibabel returns voxel data as (x, y) = (columns, rows); it is transposed to
(rows, columns) as stored, without reorienting by the affine. This is how SimpleITK (and so
nnU-Net's conversion scripts) writes a 2-D image, so a PNG converted to NIfTI reads back as the
same array. A 3-D file is accepted when it holds a single slice, shape (X, Y, 1).

Spacing rule (``header.get_zooms()`` of x and y, returned as (row = y, column = x)):

* spatial unit ``mm``, ``micron`` or ``meter`` (``header.get_xyzt_units()``): the zooms are
  converted to mm and used;
* unit unknown (unset): zooms of 0 or exactly (1, 1) are taken as "no spacing recorded" (the
  defaults of tools that write pixels), other zooms are taken as mm (the NIfTI convention);
* the result must lie in the plausible range [:data:`aacscore.io.MIN_SPACING_MM`,
  :data:`aacscore.io.MAX_SPACING_MM`], otherwise the spacing is unknown (``None``).

A ``spacing_mm`` in the case's JSON file overrides the header spacing.

Image intensities are mapped to [0, 1] like 16-bit PNGs (bone assumed bright): uint8 / 255,
other integers within 0..65535 / 65535, floats already within [0, 1] unchanged, anything else
min-max normalised (with a warning).
"""

from __future__ import annotations

import logging
import math
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
from nibabel.filebasedimages import ImageFileError

from aacscore.io import MAX_SPACING_MM, MIN_SPACING_MM
from aacscore.training.errors import MAX_LABEL, SpineDataError
from aacscore.vertebrae import CLASS_NAMES

logger = logging.getLogger(__name__)

_UNIT_TO_MM = {"mm": 1.0, "micron": 1e-3, "meter": 1e3}
MIN_SIDE = 8
"""Smallest accepted image side in pixels (as for other training films)."""


def _header_spacing(header: Any, path: Path) -> tuple[float, float] | None:
    zooms = [float(z) for z in header.get_zooms()[:2]]
    unit = str(header.get_xyzt_units()[0])
    if len(zooms) < 2 or not all(math.isfinite(z) and z > 0 for z in zooms):
        return None
    if unit in _UNIT_TO_MM:
        mm = [z * _UNIT_TO_MM[unit] for z in zooms]
    elif zooms == [1.0, 1.0]:
        return None  # tools writing bare pixels leave the default zooms and no unit
    else:
        mm = zooms
    if not all(MIN_SPACING_MM <= v <= MAX_SPACING_MM for v in mm):
        logger.warning("%s: implausible header spacing %s mm ignored", path, mm)
        return None
    return (mm[1], mm[0])


def read_nifti_2d(
    path: str | Path,
) -> tuple[npt.NDArray[Any], tuple[float, float] | None]:
    """The (rows, cols) array of a 2-D NIfTI file (stored values, scaling slope applied) and its
    (row, col) spacing in mm, ``None`` when unknown (see the module docstring).

    Raises:
        SpineDataError: the file cannot be read, is not 2-D (a volume of several slices), or
            holds NaN / infinite values.
    """
    p = Path(path)
    try:
        img = nib.load(p)
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise SpineDataError(p, f"cannot read NIfTI file ({exc})") from exc
    if not isinstance(img, nib.Nifti1Image):  # Nifti2Image is a subclass
        raise SpineDataError(p, f"not a NIfTI image ({type(img).__name__})")
    shape = tuple(int(s) for s in img.shape)
    if len(shape) < 2 or any(s != 1 for s in shape[2:]):
        if len(shape) >= 3:
            n = int(np.prod(shape[2:]))
            problem = f"3-D volume of shape {shape} ({n} slices); a single 2-D slice is needed"
        else:
            problem = f"NIfTI image of shape {shape}; a 2-D image is needed"
        raise SpineDataError(p, problem)
    try:
        data = np.asanyarray(img.dataobj)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise SpineDataError(p, f"cannot read NIfTI data ({exc})") from exc
    arr = np.ascontiguousarray(data.reshape(shape[:2]).T)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise SpineDataError(p, "NIfTI data contain NaN or infinite values")
    if arr.dtype.kind not in "biuf":
        raise SpineDataError(p, f"unsupported NIfTI data type {arr.dtype}")
    return arr, _header_spacing(img.header, p)


def nifti_image(
    path: str | Path,
) -> tuple[npt.NDArray[np.float32], tuple[float, float] | None]:
    """A NIfTI training film: float32 [0, 1] pixels (bone bright) and header spacing."""
    p = Path(path)
    arr, spacing = read_nifti_2d(p)
    rows, cols = arr.shape
    if rows < MIN_SIDE or cols < MIN_SIDE:
        raise SpineDataError(
            p, f"image too small: {rows} x {cols} pixels (minimum {MIN_SIDE} on each side)"
        )
    lo, hi = 0.0, 1.0
    if arr.dtype == np.uint8:
        hi = 255.0
    elif arr.dtype.kind in "iu" and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        hi = 65535.0
    elif arr.dtype.kind != "b" and arr.size and not (arr.min() >= 0 and arr.max() <= 1):
        lo, hi = float(arr.min()), float(arr.max())
        logger.warning("%s: pixel values span [%g, %g]; min-max normalised", p, lo, hi)
        if hi <= lo:
            hi = lo + 1.0
    out = (np.asarray(arr, dtype=np.float64) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32), spacing


def nifti_labels(path: str | Path) -> npt.NDArray[np.uint8]:
    """A NIfTI label map as uint8 (values 0..MAX_LABEL; float storage of whole numbers is fine).

    Raises:
        SpineDataError: unreadable or not 2-D, non-integer values or values outside 0..7.
    """
    p = Path(path)
    arr, _ = read_nifti_2d(p)
    if arr.dtype.kind == "f":
        frac = arr != np.round(arr)
        if frac.any():
            bad = float(arr[frac].flat[0])
            raise SpineDataError(p, f"label values must be whole numbers, found {bad:g}")
    if arr.size and (arr.min() < 0 or arr.max() > MAX_LABEL):
        bad_v = float(arr.min() if arr.min() < 0 else arr.max())
        raise SpineDataError(
            p,
            f"label values must be 0..{MAX_LABEL} ({', '.join(CLASS_NAMES)}), found {bad_v:g}",
        )
    return arr.astype(np.uint8)
