"""Straightened aortic band in front of L1-L4, resampled so each Kauppila level has fixed rows.

Geometry (film pixel coordinates ``x`` = column, ``y`` = row; corners per vertebra in the order
anterior-superior, posterior-superior, posterior-inferior, anterior-inferior):

* Five bounds delimit the four Kauppila levels: the mid-disc lines T12/L1 ... L4/L5 of
  :func:`aacscore.vertebrae.kauppila_bounds` (the same bounds the spine stage reports and the
  overlay draws; T12 or L5 missing or unusable: extrapolated by the same rule).
* Rows follow the anterior vertebral margin, the polyline bound's anterior anchor ->
  anterior-superior corner -> anterior-inferior corner -> next bound's anterior anchor,
  parameterised by arc length so that every level gets exactly ``rows_per_level`` rows. Each
  row is a straight line whose direction is interpolated between the two bounding mid-disc
  directions.
* Columns run posterior -> anterior whatever side the patient faces, from ``behind_mm`` behind
  the anterior margin (posterior-wall plaques overlapping the bodies stay inside) to
  ``front_mm`` in front of it, at ``mm_per_col`` millimetres per column.

When the pixel spacing is unknown the scale comes from the vertebrae: the mean anterior body
height of L1-L4 is assumed to equal :data:`REFERENCE_ANTERIOR_HEIGHT_MM`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from aacscore.codes import ErrorCode, ScoringError
from aacscore.io.types import FilmRegion, Radiograph
from aacscore.kauppila import LEVELS
from aacscore.vertebrae import (
    DISC_NAMES,
    Bound,
    Corner,
    Side,
    SpineError,
    Vertebra,
    kauppila_bounds,
    vertebrae_from_corners,
)

FloatArray = npt.NDArray[np.float64]
_Cut = Callable[[tuple[int, int, int, int]], FilmRegion]
"""The film's rectangle (row0, row1, col0, col1) in film pixels, as a :class:`FilmRegion`."""

REFERENCE_ANTERIOR_HEIGHT_MM = 26.0
"""Assumed mean anterior body height of L1-L4 (mm), used only when the pixel spacing is unknown.

Measured on the simulator (``aacscore.simulate``, whose anatomy draws posterior heights
L1 26 / L2 27.5 / L3-L4 28.5 mm x a patient factor 0.86-1.16): 25.9 +- 1.8 mm (mean +- sd,
94 balanced cases, p5-p95 22.7-28.8 mm). Radiographic normative morphometry of adults puts lumbar
anterior body heights at roughly 26-30 mm (Gallagher et al., Bone Miner 1988;4:189-196; CT:
30.3 +- 1.9 mm at L5, Int J Spine Surg). The constant follows the simulator so the unknown-
spacing path is unbiased where the model is validated; the patient-to-patient spread (~7 % sd)
becomes a scale error of the band, which the training augmentation (column zoom +-10 %) covers.
"""

_AS, _PS, _PI, _AI = (int(c) for c in Corner)


class BandError(ScoringError):
    """The vertebral geometry cannot give an aortic band (missing or degenerate vertebrae).

    ``code`` is ``band_failed`` unless the raiser says otherwise (``band_outside_film``)."""

    def __init__(
        self,
        problem: str,
        source: str | None = None,
        *,
        code: ErrorCode | str = ErrorCode.BAND_FAILED,
    ) -> None:
        super().__init__(ErrorCode(code), problem, source)


REFERENCE_ROWS_PER_LEVEL = 32
REFERENCE_MM_PER_COL = 0.5
BAND_SOURCE_SPACING_MM = 0.3
"""By default (:func:`extract_band`'s ``source_spacing_mm``) a JPEG 2000 film's band is sampled
from the coarsest resolution level of its codestream whose spacing is at most the larger of the
band's column spacing and this, however the film was read
(:meth:`~aacscore.io.Radiograph.region` with ``coarser``): a 0.14-0.15 mm film's band comes from
its 0.28-0.30 mm level (within the 0.10-0.35 mm source spacings of the films the score models
were trained on), decoding a quarter of the pixels. Other films: their own pixels."""


@dataclass(frozen=True)
class BandGeometry:
    """Size and resolution of the straightened band."""

    rows_per_level: int = REFERENCE_ROWS_PER_LEVEL
    behind_mm: float = 8.0
    front_mm: float = 56.0
    mm_per_col: float = REFERENCE_MM_PER_COL

    def __post_init__(self) -> None:
        if self.rows_per_level < 4:
            raise ValueError(f"rows_per_level must be >= 4, got {self.rows_per_level}")
        if self.behind_mm < 0 or self.front_mm <= 0 or self.mm_per_col <= 0:
            raise ValueError(f"invalid band extent/resolution: {self}")

    @property
    def n_rows(self) -> int:
        """Rows of the band (4 levels)."""
        return self.rows_per_level * len(LEVELS)

    @property
    def pixel_scale(self) -> tuple[float, float]:
        """(row, column) pixels of this band per pixel of the reference band (32 rows per level,
        0.5 mm per column); augmentation and test-time shifts given in reference pixels are
        multiplied by it so that they mean the same millimetres at any resolution."""
        return (
            self.rows_per_level / REFERENCE_ROWS_PER_LEVEL,
            REFERENCE_MM_PER_COL / self.mm_per_col,
        )

    @property
    def n_cols(self) -> int:
        """Columns of the band."""
        return round((self.behind_mm + self.front_mm) / self.mm_per_col)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return (self.n_rows, self.n_cols)

    def level_rows(self, level: str) -> tuple[int, int]:
        """Half-open row range ``[start, stop)`` of a Kauppila level (L1-L4)."""
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")
        i = LEVELS.index(level)
        return (i * self.rows_per_level, (i + 1) * self.rows_per_level)

    def col_offset_mm(self, cols: npt.ArrayLike) -> FloatArray:
        """Signed distance (mm, + anterior) from the anterior margin of column index ``cols``."""
        c = np.asarray(cols, dtype=np.float64)
        return -self.behind_mm + (c + 0.5) * self.mm_per_col

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "rows_per_level": self.rows_per_level,
            "behind_mm": self.behind_mm,
            "front_mm": self.front_mm,
            "mm_per_col": self.mm_per_col,
            "shape": list(self.shape),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BandGeometry:
        """Inverse of :meth:`as_dict` (extra keys ignored)."""
        return cls(
            rows_per_level=int(d["rows_per_level"]),
            behind_mm=float(d["behind_mm"]),
            front_mm=float(d["front_mm"]),
            mm_per_col=float(d["mm_per_col"]),
        )


DEFAULT_BAND_GEOMETRY = BandGeometry()


@dataclass(frozen=True, eq=False)
class Band:
    """A straightened aortic band and the mapping back to the film.

    ``pixels`` is float32 ``(n_rows, n_cols)`` sampled from the film (same intensity scale):
    rows cranial -> caudal (L1 first), columns posterior -> anterior. Band pixel ``(r, c)``
    (array indices, pixel centres) maps to film ``(grid_x[r, c], grid_y[r, c])``.
    """

    pixels: npt.NDArray[np.float32]
    geometry: BandGeometry
    grid_x: FloatArray
    grid_y: FloatArray
    spacing_mm: tuple[float, float]
    scale_estimated: bool
    anterior_side: Side
    level_length_mm: tuple[float, ...]
    """Length along the anterior margin of each level's segment (bound to bound), L1-L4."""
    body_height_mm: tuple[float, ...]
    """Anterior body height (anterior-superior to anterior-inferior corner) of L1-L4."""
    vertebral_height_mm: tuple[float, ...] = ()
    """Mean of anterior and posterior body heights of L1-L4 (the AAC-8 length unit)."""
    extrapolated_bounds: tuple[str, ...] = ()
    """Bounds extrapolated because T12 or L5 was missing, e.g. ``("T12/L1",)``."""
    inside_fraction: float = 1.0
    """Fraction of band pixels that fall inside the film (the rest repeat the edge)."""
    _knot_u: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False)
    _knot_p: FloatArray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    _bound_dir: FloatArray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)

    @property
    def level_rows(self) -> dict[str, tuple[int, int]]:
        """Half-open row range of each level, L1-L4."""
        return {lv: self.geometry.level_rows(lv) for lv in LEVELS}

    @property
    def mm_per_col(self) -> float:
        """Millimetres per band column."""
        return self.geometry.mm_per_col

    @property
    def mm_per_row(self) -> tuple[float, ...]:
        """Millimetres per band row (along the anterior margin) of each level, L1-L4."""
        return tuple(length / self.geometry.rows_per_level for length in self.level_length_mm)

    @property
    def mean_body_height_mm(self) -> float:
        """Mean anterior body height of L1-L4 in mm."""
        return float(np.mean(self.body_height_mm))

    def to_film(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Film ``(x, y)`` of band positions (float array indices; pixel centres are integers)."""
        r = np.asarray(rows, dtype=np.float64)
        c = np.asarray(cols, dtype=np.float64)
        r, c = np.broadcast_arrays(r, c)
        anchor, direction = self._frame(r + 0.5)
        s = self.geometry.col_offset_mm(c)
        xm = anchor[..., 0] + s * direction[..., 0]
        ym = anchor[..., 1] + s * direction[..., 1]
        return xm / self.spacing_mm[1], ym / self.spacing_mm[0]

    def to_band(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Band ``(row, col)`` float indices of film points; NaN outside the band's row span."""
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        xa, ya = np.broadcast_arrays(xa, ya)
        shape = xa.shape
        p = np.stack([xa.ravel() * self.spacing_mm[1], ya.ravel() * self.spacing_mm[0]], axis=1)
        n_rows = self.geometry.n_rows
        u_grid = np.linspace(0.0, float(n_rows), 8 * n_rows + 1)
        a_g, d_g = self._frame(u_grid)

        def cross(u_anchor: FloatArray, u_dir: FloatArray, pts: FloatArray) -> FloatArray:
            return u_dir[..., 0] * (pts[..., 1] - u_anchor[..., 1]) - u_dir[..., 1] * (
                pts[..., 0] - u_anchor[..., 0]
            )

        # Bracket the root of each point: of several (row lines may cross far behind the spine)
        # keep the one nearest the anterior margin.
        lo = np.full(len(p), np.nan)
        step = u_grid[1] - u_grid[0]
        for start in range(0, len(p), 2048):
            pc = p[start : start + 2048, None, :]
            f = cross(a_g[None, :, :], d_g[None, :, :], pc)  # (points, grid)
            change = (np.signbit(f[:, :-1]) != np.signbit(f[:, 1:])) | (f[:, :-1] == 0)
            s = np.abs(np.sum((pc - a_g[None, :, :]) * d_g[None, :, :], axis=-1))[:, :-1]
            s = np.where(change, s, np.inf)
            j = np.argmin(s, axis=1)
            found = np.isfinite(s[np.arange(len(j)), j])
            lo[start : start + len(j)] = np.where(found, u_grid[j], np.nan)
        ok = np.isfinite(lo)
        u_lo = np.where(ok, lo, 0.0)
        u_hi = np.minimum(u_lo + step, float(n_rows))
        f_lo = cross(*self._frame(u_lo), p)
        for _ in range(48):
            mid = 0.5 * (u_lo + u_hi)
            f_mid = cross(*self._frame(mid), p)
            same = np.signbit(f_mid) == np.signbit(f_lo)
            u_lo = np.where(same, mid, u_lo)
            f_lo = np.where(same, f_mid, f_lo)
            u_hi = np.where(same, u_hi, mid)
        u = 0.5 * (u_lo + u_hi)
        anchor, direction = self._frame(u)
        s = np.sum((p - anchor) * direction, axis=1)
        cols = (s + self.geometry.behind_mm) / self.geometry.mm_per_col - 0.5
        rows = u - 0.5
        rows[~ok] = np.nan
        cols[~ok] = np.nan
        return rows.reshape(shape), cols.reshape(shape)

    def segment_rows(self, segment: str) -> tuple[int, int]:
        """Row range of a Kauppila segment name such as ``"L3_posterior"``."""
        return self.geometry.level_rows(segment.split("_", 1)[0])

    def _frame(self, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Anchor (mm) and unit anterior direction at continuous band row coordinate ``u``."""
        u = np.asarray(u, dtype=np.float64)
        ax = np.interp(u, self._knot_u, self._knot_p[:, 0])
        ay = np.interp(u, self._knot_u, self._knot_p[:, 1])
        bound_u = np.arange(len(self._bound_dir), dtype=np.float64) * self.geometry.rows_per_level
        dx = np.interp(u, bound_u, self._bound_dir[:, 0])
        dy = np.interp(u, bound_u, self._bound_dir[:, 1])
        norm = np.hypot(dx, dy)
        return np.stack([ax, ay], axis=-1), np.stack([dx / norm, dy / norm], axis=-1)


def _as_corners(corners: Mapping[str, npt.ArrayLike | Vertebra]) -> dict[str, FloatArray]:
    out: dict[str, FloatArray] = {}
    for name, value in corners.items():
        arr = np.asarray(value.corners if isinstance(value, Vertebra) else value, dtype=np.float64)
        if arr.shape != (4, 2):
            raise BandError(f"corners of {name} must be a 4x2 array (x, y), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise BandError(f"corners of {name} contain non-finite values")
        out[name] = arr
    missing = [lv for lv in LEVELS if lv not in out]
    if missing:
        raise BandError(f"vertebrae {', '.join(missing)} are missing; the band needs L1-L4")
    return out


def band_bounds(
    corners: Mapping[str, npt.ArrayLike | Vertebra],
) -> dict[str, Bound]:
    """The five Kauppila bounds the band is cut along, from film-pixel corners
    (:func:`aacscore.vertebrae.kauppila_bounds`)."""
    try:
        bounds, _, _ = kauppila_bounds(vertebrae_from_corners(_as_corners(corners)))
    except SpineError as e:
        raise BandError(f"degenerate geometry: {e.problem}") from None
    return bounds


def extract_band(
    image: npt.ArrayLike | Radiograph,
    corners: Mapping[str, npt.ArrayLike | Vertebra],
    anterior_side: str | Side,
    spacing_mm: tuple[float, float] | None,
    *,
    bounds: Mapping[str, Bound] | None = None,
    geometry: BandGeometry = DEFAULT_BAND_GEOMETRY,
    reference_height_mm: float = REFERENCE_ANTERIOR_HEIGHT_MM,
    source_spacing_mm: float | None = BAND_SOURCE_SPACING_MM,
) -> Band:
    """Straightened aortic band in front of L1-L4 (see the module docstring for the geometry).

    ``corners`` maps level names ("T12", "L1".."L5", "S1") to 4x2 arrays of film pixel
    coordinates (x, y) in the order of :class:`aacscore.vertebrae.Corner` (or to
    :class:`~aacscore.vertebrae.Vertebra` objects); L1-L4 are required. ``bounds`` are the
    Kauppila bounds in film pixels (e.g. a spine result's); by default they are computed from the
    corners by the same rule. ``spacing_mm`` is (row, col) in mm, or None: then the scale assumes
    the mean anterior body height of L1-L4 is ``reference_height_mm``. ``anterior_side`` must
    agree with the corners. The film is low-pass filtered before resampling (bilinear).
    ``image`` is the film's pixels, or its :class:`~aacscore.io.Radiograph`: then coordinates
    and ``spacing_mm`` are the film's own (:attr:`~aacscore.io.Radiograph.film_shape`, also for
    a JPEG 2000 film decoded at a reduced level) and the band's rectangle of a JPEG 2000 film is
    read at the coarsest resolution level of at most the band's column spacing or
    ``source_spacing_mm`` (:data:`BAND_SOURCE_SPACING_MM`; None: the column spacing alone),
    whichever is larger (:meth:`~aacscore.io.Radiograph.region`), whatever level the film was
    read at.
    """
    cut: _Cut
    if isinstance(image, Radiograph):
        film = image
        shape = film.film_shape
        finest = max(geometry.mm_per_col, source_spacing_mm or 0.0)

        def cut(box: tuple[int, int, int, int]) -> FilmRegion:
            return film.region(box, finest, coarser=True)

    else:
        img = np.asarray(image)
        if img.ndim != 2 or img.size == 0:
            raise BandError(f"image must be a non-empty 2-D array, got shape {img.shape}")
        shape = (int(img.shape[0]), int(img.shape[1]))

        def cut(box: tuple[int, int, int, int]) -> FilmRegion:
            return FilmRegion(img[box[0] : box[1], box[2] : box[3]], (box[0], box[2]), 1, None)

    try:
        side = Side.parse(anterior_side)
    except ValueError as e:
        raise BandError(str(e)) from None
    px = _as_corners(corners)
    if bounds is None:
        bounds = band_bounds(px)
    missing = [n for n in DISC_NAMES if n not in bounds]
    if missing:
        raise BandError(f"Kauppila bounds {', '.join(missing)} are missing")

    # Spacing (row, col) in mm per pixel.
    scale_estimated = spacing_mm is None
    if spacing_mm is None:
        heights_px = [float(np.hypot(*(px[lv][_AI] - px[lv][_AS]))) for lv in LEVELS]
        mean_h = float(np.mean(heights_px))
        if mean_h < 2.0:
            raise BandError(f"vertebrae too small to estimate the scale ({mean_h:.2f} px)")
        s = reference_height_mm / mean_h
        sp = (s, s)
    else:
        sp = (float(spacing_mm[0]), float(spacing_mm[1]))
        if not all(math.isfinite(v) and v > 0 for v in sp):
            raise BandError(f"pixel spacing must be positive, got {spacing_mm}")
    to_mm = np.array([sp[1], sp[0]])
    mm = {name: c * to_mm for name, c in px.items()}

    # Orientation check: anterior corners must lie on the stated side of the posterior ones.
    side_votes = [
        float(np.mean(mm[lv][[_AS, _AI], 0]) - np.mean(mm[lv][[_PS, _PI], 0])) for lv in LEVELS
    ]
    stated = 1.0 if side == Side.RIGHT else -1.0
    if sum(1 for v in side_votes if v * stated < 0) > len(LEVELS) // 2:
        raise BandError(
            f"corners put the anterior margin on the {'left' if stated > 0 else 'right'} "
            f"but anterior_side={side.value!r}"
        )

    # The five bounds T12/L1 ... L4/L5 in mm.
    bounds_mm = [bounds[n].scaled(to_mm) for n in DISC_NAMES]
    extrapolated = [b.name for b in bounds_mm if b.extrapolated]
    bound_dir = np.stack([b.direction for b in bounds_mm], axis=0)

    # Knots of the anterior margin polyline, each level's arc mapped to rows_per_level rows.
    rpl = geometry.rows_per_level
    knot_u: list[float] = []
    knot_p: list[FloatArray] = []
    level_len: list[float] = []
    body_h: list[float] = []
    vert_h: list[float] = []
    for i, lv in enumerate(LEVELS):
        pts = [bounds_mm[i].anterior, mm[lv][_AS], mm[lv][_AI], bounds_mm[i + 1].anterior]
        seg = [float(np.hypot(*(b - a))) for a, b in itertools.pairwise(pts)]
        total = sum(seg)
        if total < 1e-3:
            raise BandError(f"degenerate geometry: level {lv} has zero length")
        level_len.append(total)
        body_h.append(seg[1])
        vert_h.append((seg[1] + float(np.hypot(*(mm[lv][_PI] - mm[lv][_PS])))) / 2.0)
        cum = np.cumsum([0.0, *seg]) / total
        for k in range(3 if i < len(LEVELS) - 1 else 4):
            knot_u.append(i * rpl + cum[k] * rpl)
            knot_p.append(pts[k])
    ku = np.asarray(knot_u)
    if np.any(np.diff(ku) <= 0):
        # Coincident knots (e.g. zero-height half disc): drop duplicates, keep order.
        keep = np.concatenate([[True], np.diff(ku) > 1e-9])
        ku = ku[keep]
        kp = np.asarray(knot_p)[keep]
    else:
        kp = np.asarray(knot_p)

    band = Band(
        pixels=np.zeros(geometry.shape, dtype=np.float32),
        geometry=geometry,
        grid_x=np.zeros(geometry.shape),
        grid_y=np.zeros(geometry.shape),
        spacing_mm=sp,
        scale_estimated=scale_estimated,
        anterior_side=side,
        level_length_mm=tuple(level_len),
        body_height_mm=tuple(body_h),
        vertebral_height_mm=tuple(vert_h),
        extrapolated_bounds=tuple(extrapolated),
        _knot_u=ku,
        _knot_p=kp,
        _bound_dir=bound_dir,
    )
    rr, cc = np.meshgrid(
        np.arange(geometry.n_rows, dtype=np.float64),
        np.arange(geometry.n_cols, dtype=np.float64),
        indexing="ij",
    )
    gx, gy = band.to_film(rr, cc)
    pixels = _sample(shape, cut, gx, gy, sp, geometry, band)
    h, w = shape
    inside = (gx >= -0.5) & (gx <= w - 0.5) & (gy >= -0.5) & (gy <= h - 0.5)
    object.__setattr__(band, "inside_fraction", float(np.mean(inside)))
    object.__setattr__(band, "grid_x", gx)
    object.__setattr__(band, "grid_y", gy)
    object.__setattr__(band, "pixels", pixels)
    return band


def _sample(
    shape: tuple[int, int],
    cut: _Cut,
    gx: FloatArray,
    gy: FloatArray,
    spacing: tuple[float, float],
    geometry: BandGeometry,
    band: Band,
) -> npt.NDArray[np.float32]:
    """Bilinear samples of the (anti-alias filtered) film of ``shape``, rows super-sampled and
    averaged; ``cut`` gives the film's rectangle around them."""
    mean_row_mm = float(np.mean(band.mm_per_row))
    n_sub = max(1, min(4, round(mean_row_mm / geometry.mm_per_col)))
    if n_sub > 1:
        rr, cc = np.meshgrid(
            np.arange(geometry.n_rows, dtype=np.float64),
            np.arange(geometry.n_cols, dtype=np.float64),
            indexing="ij",
        )
        offsets = (np.arange(n_sub) + 0.5) / n_sub - 0.5
        xs, ys = [], []
        for off in offsets:
            x, y = band.to_film(rr + off, cc)
            xs.append(x)
            ys.append(y)
        sx = np.stack(xs)
        sy = np.stack(ys)
    else:
        sx, sy = gx[None], gy[None]

    h, w = shape
    pad = 4.0
    x0 = max(0, math.floor(float(np.min(sx)) - pad))
    x1 = min(w, math.ceil(float(np.max(sx)) + pad) + 1)
    y0 = max(0, math.floor(float(np.min(sy)) - pad))
    y1 = min(h, math.ceil(float(np.max(sy)) + pad) + 1)
    if x1 <= x0 or y1 <= y0:
        raise BandError(
            "the aortic band lies entirely outside the image", code=ErrorCode.BAND_OUTSIDE_FILM
        )
    region = cut((y0, y1, x0, x1))
    crop = np.asarray(region.pixels, dtype=np.float32)
    # Low-pass to the band's column resolution (sigma in region pixels per axis).
    step = region.step
    factor = (
        geometry.mm_per_col / (spacing[0] * step),
        geometry.mm_per_col / (spacing[1] * step),
    )
    sigma = tuple(0.4 * f if f > 1.0 else 0.0 for f in factor)
    if any(s > 0 for s in sigma):
        crop = ndimage.gaussian_filter(crop, sigma=sigma, mode="nearest")
    ry, rx = region.to_region(sy.ravel(), sx.ravel())
    coords = np.stack([ry, rx])
    vals = ndimage.map_coordinates(crop, coords, order=1, mode="nearest")
    out = vals.reshape(sx.shape).mean(axis=0)
    return np.ascontiguousarray(out, dtype=np.float32)
