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
    """Decodes a rectangle of a film at a finer resolution level than its radiograph's."""

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
    """A rectangle of a radiograph's film, possibly finer than the radiograph's pixels.

    Region pixel ``(i, j)`` lies at radiograph pixel ``((row0 + i) / scale, (col0 + j) /
    scale)``: ``scale`` region pixels per radiograph pixel (1: a crop of ``pixels``), ``origin``
    = (row0, col0) in region-level pixels. ``spacing_mm`` is the region's (row, column) spacing,
    or None when the radiograph's is unknown.
    """

    pixels: npt.NDArray[np.float32]
    origin: tuple[int, int]
    scale: int
    spacing_mm: tuple[float, float] | None

    def to_region(
        self, rows: npt.NDArray[np.float64], cols: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Region (row, column) coordinates of radiograph coordinates."""
        return rows * self.scale - self.origin[0], cols * self.scale - self.origin[1]


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
    (:meth:`region`).
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

    def region(self, area: tuple[int, int, int, int], finest_mm: float) -> FilmRegion:
        """The rectangle ``area`` = (row0, row1, col0, col1) of :attr:`pixels` (clipped to
        it) at the coarsest resolution level whose spacing is at most ``finest_mm`` (the
        film's full resolution when none is): finer than :attr:`pixels` only for a reduced
        JPEG 2000 film; otherwise, or when the finer decode fails (the decoder logs it), a crop
        of :attr:`pixels`. Pixels from either path went through the same grayscale pipeline."""
        r0, r1 = max(0, area[0]), min(self.shape[0], area[1])
        c0, c1 = max(0, area[2]), min(self.shape[1], area[3])
        if r1 <= r0 or c1 <= c0:
            raise ValueError(f"region {area} lies outside the image of shape {self.shape}")
        level = self._region_level(finest_mm)
        if level < self.reduction and self.finer is not None:
            scale = 2 ** (self.reduction - level)
            pixels = self.finer(level, (r0 * scale, r1 * scale, c0 * scale, c1 * scale))
            if pixels is not None:
                spacing = self.spacing_mm
                assert spacing is not None  # a reduction is made only for a known spacing
                return FilmRegion(
                    pixels=pixels,
                    origin=(r0 * scale, c0 * scale),
                    scale=scale,
                    spacing_mm=(spacing[0] / scale, spacing[1] / scale),
                )
            logger.debug("finer decode failed: a crop of the level-%d pixels", self.reduction)
        return FilmRegion(
            pixels=self.pixels[r0:r1, c0:c1],
            origin=(r0, c0),
            scale=1,
            spacing_mm=self.spacing_mm,
        )

    def _region_level(self, finest_mm: float) -> int:
        """The coarsest level <= :attr:`reduction` whose spacing is <= ``finest_mm`` (0 when
        none is)."""
        if not self.reduction or self.spacing_mm is None or not math.isfinite(finest_mm):
            return self.reduction
        full = max(self.spacing_mm) / 2**self.reduction
        level = self.reduction
        while level > 0 and full * 2**level > finest_mm * (1 + 1e-9):
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
        """Everything but the pixels."""
        return RadiographInfo(
            source=self.source,
            photometric=self.photometric,
            bits_stored=self.bits_stored,
            shape=self.shape,
            spacing_mm=self.spacing_mm,
            spacing_source=self.spacing_source,
            metadata=dict(self.metadata),
            warnings=self.warnings,
            header=self.header,
            library_warnings=self.library_warnings,
        )


@dataclass(frozen=True, eq=False)
class RadiographInfo:
    """What the reader found besides the pixels (fields as in :class:`Radiograph`)."""

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
