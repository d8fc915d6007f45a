"""Typed results of the reader."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)


class FinerDecoder(Protocol):
    """Decodes a rectangle of a JPEG 2000 film at another resolution level than its
    radiograph's."""

    @property
    def levels(self) -> int:
        """The coarsest resolution level the codestream holds (its decomposition levels)."""
        ...

    def __call__(
        self, level: int, area: tuple[int, int, int, int]
    ) -> npt.NDArray[np.float32] | None:
        """Pixels (as :attr:`Radiograph.pixels`: float32 [0, 1], bone bright) of ``area`` =
        (row0, row1, col0, col1) of resolution level ``level`` (pixel ``i`` of level ``k`` at
        full-resolution pixel ``2^k * i``), clipped to that level's size; None (the failure
        logged with the file's name) when it cannot."""
        ...


@dataclass(frozen=True, eq=False)
class FilmRegion:
    """A rectangle of a film at one JPEG 2000 resolution level (level 0 for other films).

    Region pixel ``(i, j)`` lies at film pixel ``(step * (row0 + i), step * (col0 + j))``, the
    film's own (native) pixels: ``step`` = 2^level film pixels per region pixel, ``origin`` =
    (row0, col0) in that level's pixels. ``spacing_mm`` is the region's (row, column) spacing,
    or None when the film's is unknown.
    """

    pixels: npt.NDArray[np.float32]
    origin: tuple[int, int]
    step: int
    spacing_mm: tuple[float, float] | None

    def to_region(
        self, rows: npt.NDArray[np.float64], cols: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Region (row, column) coordinates of film coordinates."""
        return rows / self.step - self.origin[0], cols / self.step - self.origin[1]


def level_box(
    area: tuple[int, int, int, int], level: int, shape: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """The film rectangle ``area`` = (row0, row1, col0, col1) in the pixels of resolution
    level ``level`` (pixel ``i`` at film pixel ``2^level * i``; the level ``shape``), grown to
    whole pixels and clipped; None when nothing of it is on the film."""
    step = 2**level
    r0, r1 = max(0, area[0] // step), min(shape[0], -(-area[1] // step))
    c0, c1 = max(0, area[2] // step), min(shape[1], -(-area[3] // step))
    if r1 <= r0 or c1 <= c0:
        return None
    return (r0, r1, c0, c1)


class RadiographError(ValueError):
    """An input file that cannot be used as a radiograph; the message names file and problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True, eq=False)
class Radiograph:
    """A decoded radiograph.

    ``pixels`` is a 2-D float32 array in [0, 1] with bone bright (MONOCHROME1 already inverted,
    LUTs applied). ``spacing_mm`` is the (row, column) pixel spacing in millimetres, or None when
    unknown. ``metadata`` holds a small set of non-identifying header values (UIDs, modality,
    view position, body part, manufacturer); patient name/ID only when asked for.
    ``source`` is the file format ("dicom", "png", "jpeg", "tiff"), ``photometric`` the stored
    photometric interpretation ("MONOCHROME1", "MONOCHROME2", "RGB", ...), ``bits_stored`` the
    stored bit depth. ``warnings`` lists the header values the reader corrected or ignored
    (each also logged; they raise the ``reader_warning`` flag), ``library_warnings`` what
    pydicom or Pillow reported about the file (each logged once with the file name; no flag:
    they do not change the pixels or the spacing the reader hands on), and
    ``spacing_source`` says where ``spacing_mm`` came from ("PixelSpacing",
    "ImagerPixelSpacing", "user") or is None when the spacing is unknown. ``header`` is the
    parsed DICOM dataset without its pixel data (None for other formats).

    ``reduction`` is the JPEG 2000 resolution level ``k`` the pixels were decoded at (0: full
    resolution; else the film's pixel ``2^k * i`` is pixel ``i`` here and ``spacing_mm`` is the
    film's times 2^k); ``finer`` then decodes rectangles at the finer levels
    (:meth:`region`). Geometry handed on (:attr:`info`, the pipeline's results) is in the
    film's own pixels, :attr:`film_shape` and :attr:`film_spacing_mm`, whatever ``k``.
    """

    pixels: npt.NDArray[np.float32]
    spacing_mm: tuple[float, float] | None
    source: str
    photometric: str
    bits_stored: int
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    spacing_source: str | None = None
    header: Dataset | None = field(default=None, compare=False, repr=False)
    library_warnings: tuple[str, ...] = ()
    reduction: int = 0
    finer: FinerDecoder | None = field(default=None, compare=False, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    @property
    def film_shape(self) -> tuple[int, int]:
        """(rows, columns) of the film at full resolution (:attr:`shape` unless reduced)."""
        if not self.reduction:
            return self.shape
        rows, cols = self.metadata.get("Rows"), self.metadata.get("Columns")
        if isinstance(rows, int) and isinstance(cols, int):
            return (rows, cols)
        return (self.shape[0] * 2**self.reduction, self.shape[1] * 2**self.reduction)

    @property
    def film_spacing_mm(self) -> tuple[float, float] | None:
        """(row, column) spacing of the film at full resolution (:attr:`spacing_mm` unless
        reduced)."""
        if self.spacing_mm is None or not self.reduction:
            return self.spacing_mm
        f = 2**self.reduction
        return (self.spacing_mm[0] / f, self.spacing_mm[1] / f)

    def region(
        self, area: tuple[int, int, int, int], finest_mm: float, coarser: bool = False
    ) -> FilmRegion:
        """The film rectangle ``area`` = (row0, row1, col0, col1), in film pixels
        (:attr:`film_shape`; clipped to the film), at the coarsest resolution level whose
        spacing is at most ``finest_mm`` (level 0 when none is), no coarser than
        :attr:`pixels` unless ``coarser``. A level other than :attr:`pixels`' is decoded by
        ``finer`` (an area decode of a JPEG 2000 film; with ``coarser`` also for a film read at
        full resolution, so that a rectangle comes from the same level however the film was
        read); otherwise, or when that decode fails (the decoder logs it), it is a crop of
        :attr:`pixels`. Pixels from either path went through the same grayscale pipeline.

        Raises:
            ValueError: nothing of ``area`` is on the film."""
        level = self._region_level(finest_mm, coarser)
        film = self.film_shape
        if level != self.reduction and self.finer is not None:
            box = level_box(area, level, (-(-film[0] // 2**level), -(-film[1] // 2**level)))
            if box is None:
                raise ValueError(f"region {area} lies outside the film of shape {film}")
            pixels = self.finer(level, box)
            if pixels is not None:
                return FilmRegion(pixels, (box[0], box[2]), 2**level, self._spacing_at(level))
            logger.debug(
                "level-%d decode failed: a crop of the level-%d pixels", level, self.reduction
            )
        box = level_box(area, self.reduction, self.shape)
        if box is None:
            raise ValueError(f"region {area} lies outside the film of shape {film}")
        r0, r1, c0, c1 = box
        return FilmRegion(
            pixels=self.pixels[r0:r1, c0:c1],
            origin=(r0, c0),
            step=2**self.reduction,
            spacing_mm=self.spacing_mm,
        )

    def _spacing_at(self, level: int) -> tuple[float, float] | None:
        film = self.film_spacing_mm
        return None if film is None else (film[0] * 2**level, film[1] * 2**level)

    def _region_level(self, finest_mm: float, coarser: bool) -> int:
        """The coarsest level <= :attr:`reduction` (with ``coarser``: <= the codestream's
        levels) whose spacing is <= ``finest_mm`` (0 when none is)."""
        film = self.film_spacing_mm
        top = self.reduction
        if coarser and self.finer is not None:
            top = max(top, self.finer.levels)
        if not top or film is None or not math.isfinite(finest_mm):
            return self.reduction
        level = top
        while level > 0 and max(film) * 2**level > finest_mm * (1 + 1e-9):
            level -= 1
        return level

    @property
    def mean_spacing_mm(self) -> float | None:
        """Mean of row and column spacing, or None when unknown."""
        if self.spacing_mm is None:
            return None
        return float(sum(self.spacing_mm) / 2.0)

    @property
    def info(self) -> RadiographInfo:
        """Everything but the pixels; shape and spacing are the film's (:attr:`film_shape`,
        :attr:`film_spacing_mm`), those of its full resolution."""
        return RadiographInfo(
            source=self.source,
            photometric=self.photometric,
            bits_stored=self.bits_stored,
            shape=self.film_shape,
            spacing_mm=self.film_spacing_mm,
            spacing_source=self.spacing_source,
            metadata=dict(self.metadata),
            warnings=self.warnings,
            header=self.header,
            library_warnings=self.library_warnings,
        )


@dataclass(frozen=True, eq=False)
class RadiographInfo:
    """What the reader found besides the pixels (fields as in :class:`Radiograph`; ``shape``
    and ``spacing_mm`` those of the film at full resolution)."""

    source: str
    photometric: str
    bits_stored: int
    shape: tuple[int, int]
    spacing_mm: tuple[float, float] | None
    spacing_source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    header: Dataset | None = field(default=None, repr=False)
    library_warnings: tuple[str, ...] = ()
