"""Faster decoding of single-frame grey JPEG 2000 pixel data.

Three paths, all on OpenJPEG, each returning ``None`` (the caller then decodes with pydicom as
before) when it is unavailable or fails on the codestream:

* full resolution on several threads with ``imagecodecs.jpeg2k_decode(numthreads=...)``
  (pylibjpeg-openjpeg, pydicom's plugin, decodes on one thread);
* a reduced resolution level ``k`` (the 2^k-times smaller image JPEG 2000 holds in its wavelet
  decomposition, so the finer levels are never decoded) with Glymur;
* a rectangle of level ``k`` with Glymur's area decode (OpenJPEG decodes only the code blocks
  that the rectangle touches): :func:`decode_area`, for the aortic band at a finer level than
  the rest of the film.

Glymur needs the system's OpenJPEG library (2.3 or later); without them
:func:`reduction_level` gives 0, so films are decoded at full resolution, and says so once
(a warning).

Resolution level ``k`` of an image at offset (0, 0) has ``ceil(side / 2^k)`` pixels a side and
its pixel ``i`` lies at full-resolution pixel ``2^k * i`` (the low-pass samples of the wavelet
sit on the even positions).

The decoded integers are converted as pydicom converts them (container size from the
codestream's precision, signedness from PixelRepresentation, sign mismatches between the two
corrected), so the full-resolution path gives pydicom's array exactly.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import sys
import tempfile
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

MAX_THREADS = 8
"""Most decoder threads used for one film."""

MIN_REDUCED_SIDE = 320
"""A reduced level is used only while both sides keep at least this many pixels (the spine
network's input is 288 x 192, the view classifier's 128)."""

_SOC = b"\xff\x4f"
_SIZ = 0xFF51
_COD = 0xFF52
_COC = 0xFF53
_SOT = 0xFF90


@dataclass(frozen=True)
class Codestream:
    """What the main header of a raw JPEG 2000 codestream says (first component)."""

    rows: int
    columns: int
    offset: tuple[int, int]
    """(row, column) of the image area's origin on the reference grid (YOsiz, XOsiz)."""
    components: int
    precision: int
    signed: bool
    levels: int
    """Wavelet decomposition levels (the smallest of COD and any COC): the most that
    ``reduce`` can discard."""


def parse_codestream(data: bytes) -> Codestream | None:
    """The main header of a raw codestream (SOC, SIZ, ... up to the first SOT), or None for a
    JP2 file, a damaged header or a header without COD."""
    if not data.startswith(_SOC):
        return None
    try:
        return _parse(data)
    except (struct.error, IndexError, ValueError):
        return None


def _parse(data: bytes) -> Codestream | None:
    pos = 2
    siz: tuple[int, ...] | None = None
    first_comp: tuple[int, int] | None = None
    levels: list[int] = []
    n_comp = 0
    while pos + 4 <= len(data):
        marker, length = struct.unpack_from(">HH", data, pos)
        body = pos + 4
        if marker == _SOT or length < 2:
            break
        if marker == _SIZ:
            siz = struct.unpack_from(">HIIIIIIIIH", data, body)
            n_comp = siz[9]
            ssiz = data[body + 36]
            first_comp = ((ssiz & 0x7F) + 1, ssiz >> 7)
        elif marker == _COD:
            levels.append(data[body + 5])
        elif marker == _COC:
            index = 2 if n_comp >= 257 else 1
            levels.append(data[body + index + 1])
        pos += 2 + length
    if siz is None or first_comp is None or not levels:
        return None
    _, xsiz, ysiz, xo, yo = siz[:5]
    return Codestream(
        rows=ysiz - yo,
        columns=xsiz - xo,
        offset=(yo, xo),
        components=n_comp,
        precision=first_comp[0],
        signed=bool(first_comp[1]),
        levels=min(levels),
    )


def reduction_level(
    spacing: tuple[float, float] | None,
    coarsest_mm: float | None,
    info: Codestream,
    pixel_signed: bool,
    min_side: int,
) -> int:
    """The largest level k with max(spacing) x 2^k <= ``coarsest_mm`` that the codestream
    holds (k <= its decomposition levels, no image offset) and that keeps both sides at least
    ``max(min_side, MIN_REDUCED_SIDE)`` pixels; 0 (full resolution) when the spacing or the
    limit is unknown, when the codestream's signedness is not PixelRepresentation's (its
    samples are then reinterpreted bit by bit, which a low-pass image does not survive), or
    when Glymur cannot decode levels (:func:`glymur_available`; warned once)."""
    if spacing is None or coarsest_mm is None or info.offset != (0, 0):
        return 0
    if info.signed != pixel_signed:
        return 0
    finest = max(spacing)
    if not (math.isfinite(finest) and finest > 0 and coarsest_mm > finest):
        return 0
    floor = max(min_side, MIN_REDUCED_SIDE)
    shape = (info.rows, info.columns)
    level = 0
    while (
        level < info.levels
        and finest * 2 ** (level + 1) <= coarsest_mm * (1 + 1e-9)
        and min(reduced_shape(shape, level + 1)) >= floor
    ):
        level += 1
    if level and not glymur_available():
        _warn_full_resolution()
        return 0
    return level


def levels_usable(info: Codestream, pixel_signed: bool) -> bool:
    """Whether the codestream's reduced resolution levels can stand for the film: it has some,
    no image offset, the signedness of PixelRepresentation (see :func:`reduction_level`) and
    Glymur can decode them (:func:`glymur_available`)."""
    return (
        info.levels > 0
        and info.offset == (0, 0)
        and info.signed == pixel_signed
        and glymur_available()
    )


def reduced_shape(shape: tuple[int, int], level: int) -> tuple[int, int]:
    """(rows, columns) of resolution level ``level`` of an image at offset (0, 0)."""
    f = 2**level
    return (-(-shape[0] // f), -(-shape[1] // f))


def decode_threads() -> int:
    """Decoder threads: torch's thread count when torch is loaded (the CPU share the scorer
    and each batch worker were given), else the CPUs this process may use; at most
    :data:`MAX_THREADS`."""
    torch = sys.modules.get("torch")
    count: int | None = None
    if torch is not None:
        try:
            count = int(torch.get_num_threads())
        except Exception:  # a half-imported or stubbed torch
            count = None
    if count is None:
        try:
            count = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            count = os.cpu_count() or 1
    return max(1, min(count, MAX_THREADS))


def decode(
    data: bytes,
    info: Codestream,
    pixel_signed: bool,
    level: int,
    name: str,
) -> npt.NDArray[Any] | None:
    """Stored values of the codestream at resolution ``level`` (0: full, on
    :func:`decode_threads` threads), as pydicom would return them; None when this path cannot
    decode it (logged at debug level with ``name``)."""
    expected = reduced_shape((info.rows, info.columns), level)
    try:
        values = _decode_full(data) if level == 0 else _decode_reduced(data, info, level)
    except Exception as exc:  # any decoder failure: pydicom decodes instead
        logger.debug("%s: fast JPEG 2000 decode failed (%s: %s)", name, type(exc).__name__, exc)
        return None
    if values is None:
        return None
    if values.shape != expected:
        logger.debug(
            "%s: fast JPEG 2000 decode gave shape %s, not %s", name, values.shape, expected
        )
        return None
    return as_stored(values, info.precision, info.signed, pixel_signed)


def _decode_full(data: bytes) -> npt.NDArray[Any] | None:
    try:
        import imagecodecs
    except ImportError:
        return None
    return np.asarray(imagecodecs.jpeg2k_decode(data, numthreads=decode_threads()))


def _decode_reduced(data: bytes, info: Codestream, level: int) -> npt.NDArray[Any] | None:
    """Glymur's reduced decode (None without Glymur)."""
    if not glymur_available():
        return None
    return _glymur_read(data, level, None)


def as_stored(
    values: npt.NDArray[Any], precision: int, j2k_signed: bool, pixel_signed: bool
) -> npt.NDArray[Any]:
    """Decoded samples in pydicom's container: 1, 2 or 4 bytes by the codestream's precision,
    signed as PixelRepresentation says; when the codestream's signedness differs, its low
    ``precision`` bits are reinterpreted (as pydicom's J2K sign correction does)."""
    size = 1 if precision <= 8 else 2 if precision <= 16 else 4
    dtype = np.dtype(f"{'i' if pixel_signed else 'u'}{size}")
    if j2k_signed == pixel_signed:
        return np.ascontiguousarray(values, dtype=dtype)
    low = values.astype(np.int64) & ((1 << precision) - 1)
    if pixel_signed:
        half = 1 << (precision - 1)
        low = (low ^ half) - half
    return low.astype(dtype)


MIN_OPENJPEG = (2, 3)
"""The oldest OpenJPEG whose area decodes touch only the code blocks they need."""


@cache
def glymur_problem() -> str | None:
    """Why Glymur cannot decode resolution levels and areas here (None: it can): not
    installed, no OpenJPEG library found, or one older than :data:`MIN_OPENJPEG`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Glymur warns on import when it finds no library
            import glymur
    except Exception as exc:  # not installed, or its library lookup failed on import
        return f"Glymur is not importable ({type(exc).__name__}: {exc})"
    version = str(getattr(glymur.version, "openjpeg_version", "") or "0")
    try:
        found = tuple(int(v) for v in version.split(".")[:2])
    except ValueError:
        found = (0, 0)
    if found == (0, 0):
        return "Glymur finds no OpenJPEG library (libopenjp2)"
    if found < MIN_OPENJPEG:
        return f"Glymur finds OpenJPEG {version}, older than 2.3"
    return None


def glymur_available() -> bool:
    """Whether Glymur is installed and has found an OpenJPEG of 2.3 or later."""
    return glymur_problem() is None


@cache
def _warn_full_resolution() -> None:
    """The one warning that JPEG 2000 films are decoded at full resolution."""
    logger.warning(
        "%s: JPEG 2000 films are decoded at full resolution (slower); install glymur and the "
        "system OpenJPEG library (Debian/Ubuntu: libopenjp2-7) for reduced decodes",
        glymur_problem(),
    )


def _glymur_read(
    data: bytes, level: int, area: tuple[int, int, int, int] | None
) -> npt.NDArray[Any]:
    """Level ``level`` of the codestream (only ``area`` = (row0, row1, col0, col1) of that
    level when given), decoded by Glymur on :func:`decode_threads` threads; Glymur reads files
    only, so the codestream goes through a temporary one (in /dev/shm where it is writable)."""
    import glymur

    try:
        glymur.set_option("lib.num_threads", decode_threads())
    except RuntimeError:  # OpenJPEG older than 2.4, or built without threads: one thread
        logger.debug("Glymur decodes on one thread (OpenJPEG %s)", glymur.version.openjpeg_version)
    step = 2**level
    shm = "/dev/shm"  # memory-backed where there is one
    where = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="aacscore-j2k-", dir=where) as tmp:
        path = os.path.join(tmp, "frame.j2k")
        with open(path, "wb") as fh:
            fh.write(data)
        jp2 = glymur.Jp2k(path)
        rows, cols = jp2.shape[:2]
        if area is None:
            values = jp2[::step, ::step]
        else:
            r0, r1, c0, c1 = area
            values = jp2[
                r0 * step : min(r1 * step, rows) : step, c0 * step : min(c1 * step, cols) : step
            ]
    return np.asarray(values)


def decode_area(
    data: bytes,
    info: Codestream,
    pixel_signed: bool,
    level: int,
    area: tuple[int, int, int, int],
    name: str,
) -> npt.NDArray[Any] | None:
    """Stored values of ``area`` = (row0, row1, col0, col1) of resolution level ``level``
    (clipped to that level's size), as :func:`decode` gives them cropped (exactly, for a
    lossless codestream): Glymur's area decode. None for an empty area, without Glymur, for a
    codestream with an image offset, or when the decode fails (logged at debug level with
    ``name``)."""
    shape = reduced_shape((info.rows, info.columns), level)
    r0, r1 = max(0, area[0]), min(shape[0], area[1])
    c0, c1 = max(0, area[2]), min(shape[1], area[3])
    if r1 <= r0 or c1 <= c0:
        return None
    if not glymur_available() or info.offset != (0, 0):
        logger.debug("%s: no JPEG 2000 area decode (%s)", name, glymur_problem() or "offset")
        return None
    try:
        values = _glymur_read(data, level, (r0, r1, c0, c1))
    except Exception as exc:  # any decoder failure: the caller falls back
        logger.debug("%s: JPEG 2000 area decode failed (%s: %s)", name, type(exc).__name__, exc)
        return None
    if values.shape != (r1 - r0, c1 - c0):
        logger.debug(
            "%s: JPEG 2000 area decode gave shape %s, not %s",
            name,
            values.shape,
            (r1 - r0, c1 - c0),
        )
        return None
    return as_stored(values, info.precision, info.signed, pixel_signed)
