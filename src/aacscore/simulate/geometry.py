"""Geometry and rasterisation helpers of the simulator (no randomness here).

Conventions: anatomy is built in a canonical millimetre frame (x grows posteriorly, y grows
caudally: anterior to the left, cranial up). :class:`Frame` maps millimetres to pixel
coordinates of the image before mirroring (x = column, y = row, pixel centres at integers) with a
spacing and an in-plane rotation. Structures are rasterised in small pixel crops: the crop's
pixel centres are mapped back to millimetres and shape functions are evaluated there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Frame:
    """Affine map from canonical millimetres to image pixels (before mirroring).

    ``pix = M @ (mm - centre_mm) + centre_px`` with ``M = R(rotation) / spacing``.
    """

    shape: tuple[int, int]
    spacing: float
    centre_mm: tuple[float, float]
    rotation_deg: float
    centre_px: tuple[float, float]

    @classmethod
    def make(
        cls, shape: tuple[int, int], spacing: float, centre_mm: tuple[float, float], rot: float
    ) -> Frame:
        """Frame whose image centre shows ``centre_mm``."""
        return cls(shape, spacing, centre_mm, rot, ((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0))

    def coarse(self, factor: int) -> Frame:
        """Frame of the block grid: coarse pixel ``i`` covers fine pixels ``i*f .. i*f+f-1``."""
        if factor == 1:
            return self
        shape = (-(-self.shape[0] // factor), -(-self.shape[1] // factor))
        cx = (self.centre_px[0] - (factor - 1) / 2.0) / factor
        cy = (self.centre_px[1] - (factor - 1) / 2.0) / factor
        return Frame(shape, self.spacing * factor, self.centre_mm, self.rotation_deg, (cx, cy))

    @property
    def matrix(self) -> F64:
        """2x2 matrix taking millimetre offsets to pixel offsets."""
        t = math.radians(self.rotation_deg)
        c, s = math.cos(t), math.sin(t)
        return np.array([[c, -s], [s, c]], dtype=np.float64) / self.spacing

    def to_px(self, pts_mm: npt.ArrayLike) -> F64:
        """Map Nx2 (or 2,) millimetre points to pixel (x, y)."""
        p = np.asarray(pts_mm, dtype=np.float64)
        return (p - np.asarray(self.centre_mm)) @ self.matrix.T + np.asarray(self.centre_px)

    def to_mm(self, pts_px: npt.ArrayLike) -> F64:
        """Map Nx2 (or 2,) pixel (x, y) points to millimetres."""
        p = np.asarray(pts_px, dtype=np.float64)
        return (p - np.asarray(self.centre_px)) @ np.linalg.inv(self.matrix).T + np.asarray(
            self.centre_mm
        )

    def full(self) -> Crop:
        """The whole image as a crop."""
        return Crop(self, 0, self.shape[0], 0, self.shape[1])

    def crop(self, pts_mm: npt.ArrayLike, margin_mm: float = 0.0) -> Crop | None:
        """Pixel crop covering the millimetre points plus a margin, clipped to the image."""
        p = self.to_px(np.atleast_2d(np.asarray(pts_mm, dtype=np.float64)))
        m = margin_mm / self.spacing
        x0 = max(math.floor(p[:, 0].min() - m), 0)
        x1 = min(math.ceil(p[:, 0].max() + m) + 1, self.shape[1])
        y0 = max(math.floor(p[:, 1].min() - m), 0)
        y1 = min(math.ceil(p[:, 1].max() + m) + 1, self.shape[0])
        if x1 <= x0 or y1 <= y0:
            return None
        return Crop(self, y0, y1, x0, x1)


@dataclass(frozen=True)
class Crop:
    """A rectangular window of a :class:`Frame`'s pixel grid."""

    frame: Frame
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """Numpy slices (rows, cols) of the crop."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the crop."""
        return (self.y1 - self.y0, self.x1 - self.x0)

    def mm_grid(self) -> tuple[F32, F32]:
        """Millimetre coordinates (x, y) of the crop's pixel centres."""
        inv = np.linalg.inv(self.frame.matrix)
        cx, cy = self.frame.centre_px
        cols = np.arange(self.x0, self.x1, dtype=np.float64) - cx
        rows = np.arange(self.y0, self.y1, dtype=np.float64) - cy
        mx, my = self.frame.centre_mm
        x = (inv[0, 0] * cols[None, :] + inv[0, 1] * rows[:, None] + mx).astype(np.float32)
        y = (inv[1, 0] * cols[None, :] + inv[1, 1] * rows[:, None] + my).astype(np.float32)
        return x, y

    def local_grid(self, centre: npt.ArrayLike, angle_rad: float) -> tuple[F32, F32]:
        """Coordinates (u, v) in a local frame at ``centre`` (mm) rotated by ``angle_rad``.

        ``u`` runs along (cos a, sin a) and ``v`` along (-sin a, cos a) in canonical mm.
        """
        x, y = self.mm_grid()
        c = np.asarray(centre, dtype=np.float64)
        dx = x - np.float32(c[0])
        dy = y - np.float32(c[1])
        ca, sa = np.float32(math.cos(angle_rad)), np.float32(math.sin(angle_rad))
        return ca * dx + sa * dy, -sa * dx + ca * dy


def soft_inside(d: F32, px: float) -> F32:
    """Anti-aliased indicator of ``d < 0`` for a signed distance ``d`` in mm."""
    out: F32 = np.clip(np.float32(0.5) - d / np.float32(px), 0.0, 1.0)
    return out


def rounded_box_sdf(du: F32, dv: F32, r: float) -> F32:
    """Signed distance of a rounded box from per-axis signed distances and corner radius."""
    qu = du + np.float32(r)
    qv = dv + np.float32(r)
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    inside = np.minimum(np.maximum(qu, qv), 0)
    return (outside + inside - np.float32(r)).astype(np.float32)


def ellipse_radius(u: F32, v: F32, au: float, av: float) -> F32:
    """Normalised elliptic radius ``sqrt((u/au)^2 + (v/av)^2)``."""
    return np.sqrt((u / np.float32(au)) ** 2 + (v / np.float32(av)) ** 2).astype(np.float32)


def shell_paths(r: F32, width: float, shell: float) -> tuple[F32, F32]:
    """Beam path lengths (cortex, inner) through an ellipsoidal bone of lateral ``width`` mm.

    ``r`` is the normalised in-plane radius; ``shell`` the relative cortical thickness. The
    cortex path peaks near the rim where the beam runs tangent to the shell.
    """
    outer = np.sqrt(np.clip(1.0 - r * r, 0.0, None))
    ri = r / np.float32(1.0 - shell)
    inner = np.sqrt(np.clip(1.0 - ri * ri, 0.0, None)) * np.float32(1.0 - shell)
    w = np.float32(width)
    return ((outer - inner) * w).astype(np.float32), (inner * w).astype(np.float32)


def upsample_bilinear(a: F32, factor: int, shape: tuple[int, int]) -> F32:
    """Bilinear upsampling of a block-grid array to ``shape`` (block ``factor`` pixels).

    Coarse sample ``i`` sits at the centre of the fine pixels ``i*factor .. i*factor+factor-1``;
    positions beyond the first/last sample take the edge value. Computed phase by phase with
    strided slices (no fancy indexing).
    """
    a = np.asarray(a, dtype=np.float32)
    if factor == 1:
        return np.ascontiguousarray(a[: shape[0], : shape[1]])
    rows = _upsample_axis(a, factor, shape[0], 0)
    return _upsample_axis(rows, factor, shape[1], 1)


def _upsample_axis(a: F32, f: int, n: int, axis: int) -> F32:
    m = a.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (1, 1)
    ap = np.pad(a, pad, mode="edge")
    out_shape = list(a.shape)
    out_shape[axis] = n
    out = np.empty(out_shape, dtype=np.float32)
    for r in range(f):
        cnt = len(range(r, n, f))
        if cnt == 0:
            continue
        delta = (r - (f - 1) / 2.0) / f
        if delta >= 0:
            s0, s1, w = 0, 1, delta
        else:
            s0, s1, w = -1, 0, 1.0 + delta
        lo0 = 1 + s0
        lo1 = 1 + s1
        if axis == 0:
            v0 = ap[lo0 : lo0 + cnt]
            v1 = ap[lo1 : lo1 + cnt]
            if v0.shape[0] < cnt or v1.shape[0] < cnt:  # more outputs than samples: clamp
                v0 = _take_clamped(ap, lo0, cnt, 0, m)
                v1 = _take_clamped(ap, lo1, cnt, 0, m)
            out[r::f] = v0 * np.float32(1 - w) + v1 * np.float32(w)
        else:
            v0 = ap[:, lo0 : lo0 + cnt]
            v1 = ap[:, lo1 : lo1 + cnt]
            if v0.shape[1] < cnt or v1.shape[1] < cnt:
                v0 = _take_clamped(ap, lo0, cnt, 1, m)
                v1 = _take_clamped(ap, lo1, cnt, 1, m)
            out[:, r::f] = v0 * np.float32(1 - w) + v1 * np.float32(w)
    return out


def _take_clamped(ap: F32, start: int, cnt: int, axis: int, m: int) -> F32:
    idx = np.clip(np.arange(start, start + cnt), 0, m + 1)
    return np.take(ap, idx, axis=axis)


def block_mean(a: F32, factor: int) -> F32:
    """Mean over ``factor`` x ``factor`` blocks (edge-padded to a multiple of ``factor``)."""
    if factor == 1:
        return a.astype(np.float32, copy=True)
    h, w = a.shape
    ph, pw = (-h) % factor, (-w) % factor
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)), mode="edge")
    hh, ww = a.shape
    out: F32 = (
        a.reshape(hh // factor, factor, ww // factor, factor).mean(axis=(1, 3), dtype=np.float32)
    ).astype(np.float32)
    return out


def lowpass(a: F32, sigma_px: float, shape: tuple[int, int] | None = None) -> F32:
    """Gaussian low-pass of ``a`` with sigma in pixels, computed on a reduced grid when large."""
    shape = shape or (a.shape[0], a.shape[1])
    factor = max(1, int(sigma_px // 3))
    small = block_mean(a, factor)
    small = ndimage.gaussian_filter(small, sigma_px / factor, mode="nearest", truncate=3.0)
    return upsample_bilinear(small, factor, shape)


# --- polylines --------------------------------------------------------------------------------


def arc_length(poly: F64) -> F64:
    """Cumulative arc length at each vertex of an Nx2 polyline."""
    seg = np.hypot(*np.diff(poly, axis=0).T)
    return np.concatenate([[0.0], np.cumsum(seg)])


def resample_polyline(poly: F64, step: float) -> F64:
    """Polyline resampled at (nearly) uniform arc-length ``step``."""
    s = arc_length(poly)
    n = max(math.ceil(s[-1] / step), 1)
    t = np.linspace(0.0, s[-1], n + 1)
    return np.stack([np.interp(t, s, poly[:, 0]), np.interp(t, s, poly[:, 1])], axis=1)


def point_at(poly: F64, s_query: npt.ArrayLike) -> F64:
    """Points at arc lengths ``s_query`` along the polyline."""
    s = arc_length(poly)
    q = np.asarray(s_query, dtype=np.float64)
    return np.stack([np.interp(q, s, poly[:, 0]), np.interp(q, s, poly[:, 1])], axis=-1)


def tangent_at(poly: F64, s_query: npt.ArrayLike) -> F64:
    """Unit tangents at arc lengths ``s_query``."""
    s = arc_length(poly)
    q = np.atleast_1d(np.asarray(s_query, dtype=np.float64))
    i = np.clip(np.searchsorted(s, q, side="right") - 1, 0, len(poly) - 2)
    d = poly[i + 1] - poly[i]
    out: F64 = d / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-12)[:, None]
    return out


def project_to_polyline(pts: F64, poly: F64, chunk: int = 4096) -> tuple[F64, F64]:
    """Exact nearest point on a polyline: (arc length, distance) of every point of ``pts``."""
    s = arc_length(poly)
    a = poly[:-1]
    d = poly[1:] - a
    dd = np.maximum((d * d).sum(axis=1), 1e-12)
    out_s = np.empty(len(pts))
    out_d = np.empty(len(pts))
    for k in range(0, len(pts), chunk):
        p = pts[k : k + chunk]
        rel = p[:, None, :] - a[None, :, :]
        t = np.clip((rel * d[None]).sum(axis=2) / dd[None], 0.0, 1.0)
        diff = rel - t[..., None] * d[None]
        dist2 = (diff * diff).sum(axis=2)
        j = np.argmin(dist2, axis=1)
        rows = np.arange(len(p))
        out_s[k : k + chunk] = s[j] + t[rows, j] * np.sqrt(dd[j])
        out_d[k : k + chunk] = np.sqrt(dist2[rows, j])
    return out_s, out_d


def intersect_ray_polyline(origin: F64, direction: F64, poly: F64) -> tuple[F64, float] | None:
    """First intersection (point, arc length) of the ray ``origin + t*direction, t >= 0``."""
    a = poly[:-1]
    d = poly[1:] - a
    s = arc_length(poly)
    r = direction / np.linalg.norm(direction)
    den = r[0] * d[:, 1] - r[1] * d[:, 0]
    ok = np.abs(den) > 1e-12
    w = a - origin
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (w[:, 0] * d[:, 1] - w[:, 1] * d[:, 0]) / den
        u = (w[:, 0] * r[1] - w[:, 1] * r[0]) / den
    hit = ok & (t >= 0) & (u >= 0) & (u <= 1)
    if not hit.any():
        return None
    idx = np.flatnonzero(hit)
    k = idx[np.argmin(t[idx])]
    point = origin + t[k] * r
    return point, float(s[k] + u[k] * math.sqrt(float((d[k] ** 2).sum())))


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float, dtype: type = np.float32
) -> F32:
    """Unit-variance Gaussian-filtered white noise (sigma in pixels)."""
    n = rng.standard_normal(shape, dtype=np.float32)
    if sigma > 0:
        n = ndimage.gaussian_filter(n, sigma, mode="wrap")
    sd = float(n.std()) or 1.0
    return (n / np.float32(sd)).astype(dtype)
