"""numpy/scipy versions of the torch resampling the pre- and post-processing use, so that both
backends feed the networks the same input (to float32 rounding):

* :func:`resize_bilinear`: ``F.interpolate(mode="bilinear", align_corners=False,
  antialias=...)`` (the antialiased one is PyTorch's separable triangle filter, widened by the
  downscale factor);
* :func:`affine_rows_cols`: ``F.affine_grid`` + ``F.grid_sample(mode="bilinear",
  padding_mode="border", align_corners=False)`` for an axis-aligned affine map (a zoom and a
  shift per axis).

Each 1-D pass is a sparse (output x input) weight matrix applied along one axis (the matrices
are cached by size and never modified).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]


@lru_cache(maxsize=256)
def _bilinear_weights(n_in: int, n_out: int) -> sparse.csr_matrix:
    """Plain bilinear (half-pixel centres, edge clamp) as an (n_out, n_in) matrix; source
    positions in float32, as PyTorch computes them for float32 tensors."""
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.maximum(scale * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - 0.5, 0.0)
    src = src.astype(np.float64)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = i0 + (i0 < n_in - 1)
    l1 = np.clip(src - i0, 0.0, 1.0)
    rows = np.repeat(np.arange(n_out), 2)
    cols = np.stack([i0, i1], axis=1).ravel()
    vals = np.stack([1.0 - l1, l1], axis=1).ravel()
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n_out, n_in))


@lru_cache(maxsize=256)
def _antialias_weights(n_in: int, n_out: int) -> sparse.csr_matrix:
    """PyTorch's antialiased bilinear (triangle filter of half-width max(1, n_in / n_out))."""
    scale = n_in / n_out
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    centre = scale * (np.arange(n_out) + 0.5)
    # int() of torch truncates toward zero; the lower bound is clamped at 0 anyway
    lo = np.maximum(np.trunc(centre - support + 0.5).astype(np.int64), 0)
    hi = np.minimum(np.trunc(centre + support + 0.5).astype(np.int64), n_in)
    width = int((hi - lo).max())
    j = lo[:, None] + np.arange(width)[None, :]
    w = np.maximum(0.0, 1.0 - np.abs((j - centre[:, None] + 0.5) * inv))
    w[j >= hi[:, None]] = 0.0
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total != 0)
    rows = np.repeat(np.arange(n_out), width)
    keep = (j < n_in).ravel()
    m = sparse.csr_matrix((w.ravel()[keep], (rows[keep], j.ravel()[keep])), shape=(n_out, n_in))
    m.eliminate_zeros()
    return m


def _along(arr: FloatArray, m: sparse.csr_matrix | FloatArray, axis: int) -> FloatArray:
    """``m`` applied along ``axis`` of ``arr``."""
    moved = np.moveaxis(arr, axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    out = np.asarray(m @ flat)
    return np.moveaxis(out.reshape((m.shape[0], *moved.shape[1:])), 0, axis)


def resize_bilinear(
    arr: npt.ArrayLike, size: tuple[int, int], antialias: bool = False
) -> npt.NDArray[np.float32]:
    """Bilinear resize of the last two axes of ``arr`` to ``size`` (half-pixel centres), as
    ``torch.nn.functional.interpolate(..., mode="bilinear", align_corners=False)``."""
    a = np.asarray(arr, dtype=np.float32)
    h, w = int(a.shape[-2]), int(a.shape[-1])
    oh, ow = int(size[0]), int(size[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"invalid output size {size}")
    weights = _antialias_weights if antialias else _bilinear_weights
    out: Any = a.astype(np.float64)
    # the axis that shrinks most first: fewer values for the second pass
    order = (-2, -1) if oh / h <= ow / w else (-1, -2)
    for axis in order:
        n_in, n_out = (h, oh) if axis == -2 else (w, ow)
        if n_in != n_out:
            out = _along(out, weights(n_in, n_out), out.ndim + axis)
    return np.ascontiguousarray(out, dtype=np.float32)


def _border_sample_matrix(n: int, zoom: float, shift_norm: float, centre_norm: float) -> FloatArray:
    """(n, n) bilinear sampling of ``u = centre + (x - centre) * zoom + shift`` in normalised
    coordinates (align_corners=False), border padding."""
    x = (2.0 * np.arange(n) + 1.0) / n - 1.0
    u = zoom * x + centre_norm * (1.0 - zoom) + shift_norm
    ix = np.clip(((u + 1.0) * n - 1.0) / 2.0, 0.0, n - 1.0)
    i0 = np.floor(ix).astype(np.int64)
    frac = ix - i0
    i1 = np.minimum(i0 + 1, n - 1)
    m = np.zeros((n, n))
    r = np.arange(n)
    np.add.at(m, (r, i0), 1.0 - frac)
    np.add.at(m, (r, i1), frac)
    return m


def affine_matrices(
    shape: tuple[int, int],
    row_zoom: float,
    row_shift_px: float,
    col_zoom: float,
    col_shift_px: float,
    col_centre_px: float,
) -> tuple[FloatArray, FloatArray]:
    """``(ry, rx)`` such that ``ry @ img @ rx.T`` is :func:`affine_rows_cols` of ``img``."""
    h, w = shape
    u0 = (2.0 * col_centre_px + 1.0) / w - 1.0
    ry = _border_sample_matrix(h, row_zoom, 2.0 * row_shift_px / h, 0.0)
    rx = _border_sample_matrix(w, col_zoom, 2.0 * col_shift_px / w, u0)
    return ry, rx


def affine_rows_cols(
    img: npt.ArrayLike,
    row_zoom: float,
    row_shift_px: float,
    col_zoom: float,
    col_shift_px: float,
    col_centre_px: float,
) -> FloatArray:
    """Resample a 2-D image: output pixel (r, c) takes the input at row
    ``r_c + (r - r_c) * row_zoom + row_shift_px`` (``r_c`` the centre row) and column
    ``c0 + (c - c0) * col_zoom + col_shift_px`` (``c0 = col_centre_px``), bilinear, border
    values repeated (``F.affine_grid`` + ``F.grid_sample``, align_corners=False)."""
    a = np.asarray(img, dtype=np.float64)
    ry, rx = affine_matrices(
        (a.shape[0], a.shape[1]), row_zoom, row_shift_px, col_zoom, col_shift_px, col_centre_px
    )
    out: FloatArray = ry @ a @ rx.T
    return out
