"""Typed results of the reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


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

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

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
