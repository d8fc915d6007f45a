"""Network input: the letterbox (resize + pad + coordinate maps) and the per-image z-score
(numpy for inference; :func:`zscore` on torch tensors for training)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aacscore.backend.resample import _antialias_weights, resize_bilinear

BLOCK = 256
"""Columns (or rows) of a film converted to float64 at a time by :func:`resize_film`."""

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Letterbox:
    """Resize a film to fit ``out_shape`` (aspect kept), centred with zero padding.

    Point mapping (pixel centres at integers, align-corners=False convention):
    ``x_model = (x + 0.5) * sx - 0.5 + ox`` with ``sx = resized_w / W``.
    """

    in_shape: tuple[int, int]
    out_shape: tuple[int, int]
    resized: tuple[int, int]
    offset: tuple[int, int]

    @classmethod
    def fit(cls, in_shape: tuple[int, int], out_shape: tuple[int, int]) -> Letterbox:
        h, w = in_shape
        oh, ow = out_shape
        if h <= 0 or w <= 0:
            raise ValueError(f"invalid image shape {in_shape}")
        s = min(oh / h, ow / w)
        rh = min(oh, max(1, round(h * s)))
        rw = min(ow, max(1, round(w * s)))
        return cls((h, w), (oh, ow), (rh, rw), ((oh - rh) // 2, (ow - rw) // 2))

    @property
    def scale(self) -> tuple[float, float]:
        """(row, column) scale factors model/original."""
        return (self.resized[0] / self.in_shape[0], self.resized[1] / self.in_shape[1])

    def model_spacing(self, spacing_mm: tuple[float, float] | None) -> tuple[float, float] | None:
        """(row, column) mm per model pixel."""
        if spacing_mm is None:
            return None
        sy, sx = self.scale
        return (spacing_mm[0] / sy, spacing_mm[1] / sx)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of the film inside the model input."""
        oy, ox = self.offset
        return (oy, oy + self.resized[0], ox, ox + self.resized[1])

    def to_model(self, pts: npt.ArrayLike) -> npt.NDArray[np.float64]:
        p = np.array(pts, dtype=np.float64)
        sy, sx = self.scale
        p[..., 0] = (p[..., 0] + 0.5) * sx - 0.5 + self.offset[1]
        p[..., 1] = (p[..., 1] + 0.5) * sy - 0.5 + self.offset[0]
        return p

    def to_image(self, pts: npt.ArrayLike) -> npt.NDArray[np.float64]:
        p = np.array(pts, dtype=np.float64)
        sy, sx = self.scale
        p[..., 0] = (p[..., 0] - self.offset[1] + 0.5) / sx - 0.5
        p[..., 1] = (p[..., 1] - self.offset[0] + 0.5) / sy - 0.5
        return p

    def resize_image(self, img: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
        """Antialiased bilinear resize to the ``resized`` shape (no padding), as
        ``F.interpolate(mode="bilinear", antialias=True, align_corners=False)``."""
        a = np.asarray(img, dtype=np.float32)
        if tuple(a.shape) == self.resized:
            return a.copy()
        if a.ndim == 2:
            return resize_film(a, self.resized)
        return resize_bilinear(a, self.resized, antialias=True)

    def resize_labels(self, labels: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.uint8]:
        """Area-weighted majority label per output pixel (one-hot antialiased resize + argmax)."""
        lab = np.asarray(labels)
        best = np.zeros(self.resized, dtype=np.float32)
        out = np.zeros(self.resized, dtype=np.uint8)
        for v in np.unique(lab):
            frac = self.resize_image((lab == v).astype(np.float32))
            upd = frac > best
            best[upd] = frac[upd]
            out[upd] = v
        return out

    def pad(self, arr: npt.NDArray[Any], value: float = 0) -> npt.NDArray[Any]:
        """Place a ``resized`` array into the centre of a zero (``value``) array of out_shape."""
        out = np.full(self.out_shape, value, dtype=arr.dtype)
        y0, y1, x0, x1 = self.box
        out[y0:y1, x0:x1] = arr
        return out

    def valid_mask(self) -> npt.NDArray[np.bool_]:
        out = np.zeros(self.out_shape, dtype=bool)
        y0, y1, x0, x1 = self.box
        out[y0:y1, x0:x1] = True
        return out

    def labels_to_image(
        self, labels: npt.NDArray[Any], factor: int = 1, mirrored: bool = False
    ) -> npt.NDArray[Any]:
        """Nearest-neighbour map of a model-grid array (upsampled ``factor`` times) to the film
        (``mirrored``: the film mirrored left-right, i.e. ``[:, ::-1]`` of it, in one pass)."""
        h, w = self.in_shape
        sy, sx = self.scale
        ys = (np.arange(h) + 0.5) * sy + self.offset[0]  # continuous model coordinate (edges)
        xs = (np.arange(w) + 0.5) * sx + self.offset[1]
        ri = np.clip(np.floor(ys * factor).astype(np.int64), 0, labels.shape[0] - 1)
        ci = np.clip(np.floor(xs * factor).astype(np.int64), 0, labels.shape[1] - 1)
        if mirrored:
            ci = ci[::-1]
        # columns of the few source rows first, then the rows: two contiguous takes
        return np.take(np.take(labels, ci, axis=1), ri, axis=0)


def resize_film(a: npt.NDArray[np.float32], size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """``resize_bilinear(a, size, antialias=True)`` of a 2-D float32 array, the same values
    bit for bit (float64 sums in the same order), with the axis that shrinks most done
    :data:`BLOCK` columns (rows) at a time: no float64 copy of the whole film, and no
    transposed pass over it."""
    (h, w), (oh, ow) = a.shape, size
    if oh < 1 or ow < 1:
        raise ValueError(f"invalid output size {size}")
    rows = _antialias_weights(h, oh) if oh != h else None
    cols = _antialias_weights(w, ow) if ow != w else None
    if oh / h <= ow / w:  # rows first
        if rows is None:
            mid = a.astype(np.float64)
        else:
            mid = np.empty((oh, w))
            for j in range(0, w, BLOCK):
                mid[:, j : j + BLOCK] = rows @ a[:, j : j + BLOCK].astype(np.float64)
        out = mid if cols is None else (cols @ mid.T).T
    else:  # columns first
        if cols is None:
            mid = a.astype(np.float64)
        else:
            mid = np.empty((h, ow))
            for i in range(0, h, BLOCK):
                mid[i : i + BLOCK] = (cols @ a[i : i + BLOCK].astype(np.float64).T).T
        out = mid if rows is None else rows @ mid
    return np.ascontiguousarray(out, dtype=np.float32)


def canonical_model_input(
    pixels: npt.NDArray[np.floating[Any]], box: Letterbox, mirrored: bool
) -> npt.NDArray[np.float32]:
    """Resized, optionally mirrored and padded film (raw [0, 1] intensities)."""
    r = box.resize_image(pixels)
    if mirrored:
        r = r[:, ::-1]
    return box.pad(np.ascontiguousarray(r), 0.0)


def zscore_array(image: npt.ArrayLike, valid: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Per-image z-score over the film area (``valid`` > 0.5); padding set to 0. Shapes
    (..., h, w); the statistics are taken over the last two axes (float64)."""
    x = np.asarray(image, dtype=np.float64)
    v = (np.asarray(valid) > 0.5).astype(np.float64)
    v = np.broadcast_to(v, x.shape)
    axes = (-2, -1)
    n = np.maximum(v.sum(axis=axes, keepdims=True), 1.0)
    mean = (x * v).sum(axis=axes, keepdims=True) / n
    var = (((x - mean) * v) ** 2).sum(axis=axes, keepdims=True) / n
    return ((x - mean) / np.maximum(np.sqrt(var), 1e-6) * v).astype(np.float32)


def zscore(image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-image z-score over the film area (``valid`` > 0); padding set to 0. Shapes (B,1,h,w)
    (torch tensors: training; inference uses :func:`zscore_array`)."""
    v = (valid > 0.5).to(image.dtype)
    n = v.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)
    mean = (image * v).sum(dim=(1, 2, 3), keepdim=True) / n
    var = (((image - mean) * v) ** 2).sum(dim=(1, 2, 3), keepdim=True) / n
    return (image - mean) / var.sqrt().clamp_min(1e-6) * v
