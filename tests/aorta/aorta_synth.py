"""Hand-made lateral spine geometry and films for the aortic band tests."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from skimage.draw import disk, polygon

NAMES = ("T12", "L1", "L2", "L3", "L4", "L5")


class SyntheticSpine:
    """A lordotic, rotated stack of rectangular bodies in millimetres, rendered on a film.

    Canonical frame: x grows anteriorly, y caudally. ``to_px`` applies rotation, pixel spacing
    (row, col) and, for ``anterior_side == "left"``, a horizontal mirror.
    """

    def __init__(
        self,
        anterior_side: str = "right",
        spacing: tuple[float, float] = (0.2, 0.2),
        rotation_deg: float = 8.0,
        body_height: float = 28.0,
        disc: float = 9.0,
        depth: float = 35.0,
        shape: tuple[int, int] = (1400, 1100),
        names: tuple[str, ...] = NAMES,
        lordosis_deg: float = 4.0,
        curvature_mm: float = 1.2,
    ) -> None:
        self.anterior_side = anterior_side
        self.spacing = spacing
        self.rotation = math.radians(rotation_deg)
        self.shape = shape
        self.names = names
        self.corners_mm: dict[str, npt.NDArray[np.float64]] = {}
        y = 0.0
        for k, name in enumerate(NAMES):
            tilt = math.radians(lordosis_deg * (k - 2.5))  # lordosis: end plates fan out anteriorly
            shift = curvature_mm * (k - 2.5) ** 2  # curved column
            local = np.array(
                [[0.0, 0.0], [-depth, 0.0], [-depth, body_height], [0.0, body_height]]
            ) - [0.0, body_height / 2]
            c, s = math.cos(tilt), math.sin(tilt)
            rot = local @ np.array([[c, s], [-s, c]])
            centre = np.array([shift, y + body_height / 2])
            if name in names:
                self.corners_mm[name] = rot + centre
            y += body_height + disc

    def to_px(self, pts_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Film pixel (x, y) of canonical millimetre points."""
        p = np.atleast_2d(np.asarray(pts_mm, dtype=np.float64))
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        q = p @ np.array([[c, s], [-s, c]])
        q = q - [0.0, 2.5 * 37.0]  # centre the lumbar spine
        x = q[:, 0] / self.spacing[1] + self.shape[1] * 0.45
        y = q[:, 1] / self.spacing[0] + self.shape[0] * 0.5
        if self.anterior_side == "left":
            x = (self.shape[1] - 1) - x
        return np.stack([x, y], axis=1)

    def corners_px(self) -> dict[str, npt.NDArray[np.float64]]:
        """Corners per level in film pixels (AS, PS, PI, AI)."""
        return {k: self.to_px(v) for k, v in self.corners_mm.items()}

    def disc_anterior_mm(self, upper: str, lower: str) -> npt.NDArray[np.float64]:
        """Anterior midpoint of a disc (canonical mm)."""
        return (self.corners_mm[upper][3] + self.corners_mm[lower][0]) / 2

    def render(
        self, markers_mm: list[tuple[float, float]] | None = None
    ) -> npt.NDArray[np.float32]:
        """Film: grey background, brighter bodies, small bright discs at ``markers_mm``."""
        img = np.full(self.shape, 0.2, dtype=np.float32)
        for pts in self.corners_px().values():
            rr, cc = polygon(pts[:, 1], pts[:, 0], shape=self.shape)
            img[rr, cc] = 0.6
        for m in markers_mm or []:
            x, y = self.to_px(m)[0]
            rr, cc = disk((y, x), 1.5 / min(self.spacing), shape=self.shape)
            img[rr, cc] = 1.0
        return img
