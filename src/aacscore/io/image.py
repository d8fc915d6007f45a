"""PNG, JPEG and TIFF radiographs via Pillow (8/16-bit, grey or RGB/RGBA)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from aacscore.io._common import channels_equal, check_size, colourfulness, to_grey, unit_range
from aacscore.io.types import Radiograph, RadiographError

logger = logging.getLogger(__name__)

PILLOW_FORMATS: dict[str, str] = {"PNG": "png", "JPEG": "jpeg", "TIFF": "tiff"}
"""Pillow format name -> ``Radiograph.source``; other formats are refused."""

_TIFF_PHOTOMETRIC = 262
_WHITE_IS_ZERO = 0
_RGB_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr")
_PILLOW_INVERTS = ("1", "L")
"""Modes for which Pillow already inverts WhiteIsZero TIFFs on decoding."""


def read_image(
    source: str | Path | BinaryIO,
    name: str,
    *,
    spacing: tuple[float, float] | None,
    min_size: int,
) -> Radiograph:
    """Read one PNG/JPEG/TIFF radiograph; the size is checked before pixels are decoded."""
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(source, formats=list(PILLOW_FORMATS))
        except Image.DecompressionBombError as exc:
            raise RadiographError(name, f"image too large: {exc}") from exc
        except UnidentifiedImageError as exc:
            raise RadiographError(name, "not a DICOM or image file") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise RadiographError(name, f"truncated or corrupt image file ({exc})") from exc
        with img:
            return _convert(img, name, spacing, min_size, notes)


def _convert(
    img: Image.Image,
    name: str,
    spacing: tuple[float, float] | None,
    min_size: int,
    notes: list[str],
) -> Radiograph:
    fmt = str(img.format)
    cols, rows = img.size
    check_size(name, rows, cols, min_size)
    frames = int(getattr(img, "n_frames", 1) or 1)
    if frames > 1:
        raise RadiographError(
            name, f"multi-frame image ({frames} frames) is not supported; export a single frame"
        )
    white_is_zero = False
    if fmt == "TIFF":
        tags = getattr(img, "tag_v2", {})
        white_is_zero = tags.get(_TIFF_PHOTOMETRIC) == _WHITE_IS_ZERO
    try:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise RadiographError(name, f"truncated or corrupt image data ({exc})") from exc

    mode = img.mode
    photometric = "MONOCHROME1" if white_is_zero else "MONOCHROME2"
    chroma: float | None = None
    if mode == "1":
        arr: npt.NDArray[Any] = np.asarray(img.convert("L"))
        bits, lo, hi = 1, 0.0, 255.0
    elif mode in ("L", "LA"):
        arr = np.asarray(img.getchannel(0))
        bits, lo, hi = 8, 0.0, 255.0
    elif mode.startswith("I;16"):
        arr = np.asarray(img).astype(np.uint16)
        bits, lo, hi = 16, 0.0, 65535.0
    elif mode in ("I", "F"):
        arr, bits, lo, hi = _wide(np.asarray(img), mode, name, notes)
    elif mode in _RGB_MODES:
        photometric = "PALETTE COLOR" if mode in ("P", "PA") else "RGB"
        rgb = np.asarray(img.convert("RGB"))
        if channels_equal(rgb):
            arr = rgb[..., 0]
        else:
            chroma = round(colourfulness(rgb), 2)
            arr = to_grey(rgb)
            msg = f"colour {fmt} image ({mode}) converted to grey"
            logger.warning("%s: %s", name, msg)
            notes.append(msg)
        bits, lo, hi = 8, 0.0, 255.0
    else:
        raise RadiographError(name, f"unsupported image mode {mode!r}")

    pixels = unit_range(arr, lo, hi, name)
    if white_is_zero and mode not in _PILLOW_INVERTS:
        np.subtract(np.float32(1.0), pixels, out=pixels)
    return Radiograph(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        spacing_mm=spacing,
        source=PILLOW_FORMATS[fmt],
        photometric=photometric,
        bits_stored=bits,
        metadata={
            "Format": fmt,
            "Mode": mode,
            "Rows": rows,
            "Columns": cols,
            **({} if chroma is None else {"Colourfulness": chroma}),
        },
        warnings=tuple(notes),
        spacing_source="user" if spacing is not None else None,
    )


def _wide(
    arr: npt.NDArray[Any], mode: str, name: str, notes: list[str]
) -> tuple[npt.NDArray[Any], int, float, float]:
    """32-bit integer or float images: 16-bit / unit range when they fit, else min-max."""
    if mode == "F":
        if not np.all(np.isfinite(arr)):
            raise RadiographError(name, "floating-point image contains NaN or infinite values")
        if arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
            return arr, 32, 0.0, 1.0
    elif arr.size and arr.min() >= 0 and arr.max() <= 65535:
        return arr, 16, 0.0, 65535.0
    lo, hi = float(arr.min()), float(arr.max())
    msg = f"{mode}-mode pixel values span [{lo:g}, {hi:g}]; min-max normalised"
    logger.warning("%s: %s", name, msg)
    notes.append(msg)
    return arr, 32, lo, hi if hi > lo else lo + 1.0
