"""Family B ground truth: segment bounds on the aortic walls and calcified fractions measured on
the rendered calcification mask.

Bounds: each Kauppila mid-disc line (:func:`aacscore.vertebrae.disc_bound` on the true corners)
is followed anteriorly from the disc midpoint to its first crossing with each wall polyline.
Fractions: every mask pixel of a wall (1 anterior, 2 posterior) is projected onto its wall
polyline (exact nearest point over all polyline segments); the arc lengths covered are the union
of one-pixel bins ``[k, k + 1)`` counted from the wall's first (cranial) vertex, and a segment's
fraction is the covered length between its two bounds over the arc length between them. Grades,
AAC-24, AAC-8 and the group come from :func:`aacscore.kauppila.score_from_measurements`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aacscore.kauppila import LEVELS, WALLS, KauppilaScore, score_from_measurements
from aacscore.vertebrae import DISC_NAMES, Vertebra, disc_bound, level_bound_names

F64 = npt.NDArray[np.float64]
WALL_CODE: dict[str, int] = {"anterior": 1, "posterior": 2}


class GeometryError(RuntimeError):
    """The sampled anatomy gives no consistent segment bounds."""


@dataclass(frozen=True)
class WallPoint:
    """Where a bound meets a wall: the point and its arc length from the wall's first vertex."""

    point: F64
    s: float


def cumulative(poly: F64) -> F64:
    """Arc length at each vertex of a polyline."""
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(poly, axis=0).T))])


def ray_hit(origin: F64, direction: F64, poly: F64) -> WallPoint | None:
    """First crossing (smallest positive ray parameter) of a ray with a polyline."""
    a, b = poly[:-1], poly[1:]
    seg = b - a
    den = direction[0] * seg[:, 1] - direction[1] * seg[:, 0]
    ok = np.abs(den) > 1e-12
    rel = a - origin
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rel[:, 0] * seg[:, 1] - rel[:, 1] * seg[:, 0]) / den
        w = (rel[:, 0] * direction[1] - rel[:, 1] * direction[0]) / den
    hit = ok & (t > 0) & (w >= 0) & (w <= 1)
    if not hit.any():
        return None
    k = int(np.flatnonzero(hit)[np.argmin(t[hit])])
    s = cumulative(poly)
    return WallPoint(origin + t[k] * direction, float(s[k] + w[k] * np.hypot(*seg[k])))


def segment_bounds(
    corners: Mapping[str, F64], walls: Mapping[str, F64]
) -> dict[str, tuple[WallPoint, WallPoint]]:
    """(cranial, caudal) wall point of every segment ``L1_anterior`` ... ``L4_posterior``."""
    hits: dict[tuple[str, str], WallPoint] = {}
    for disc in DISC_NAMES:
        up, lo = disc.split("/")
        b = disc_bound(Vertebra(up, corners[up]), Vertebra(lo, corners[lo]))
        for w in WALLS:
            h = ray_hit(np.asarray(b.point), np.asarray(b.direction), np.asarray(walls[w]))
            if h is None:
                raise GeometryError(f"bound {disc} does not reach the {w} wall")
            hits[disc, w] = h
    out: dict[str, tuple[WallPoint, WallPoint]] = {}
    for lv in LEVELS:
        top, bot = level_bound_names(lv)
        for w in WALLS:
            a, b2 = hits[top, w], hits[bot, w]
            if b2.s <= a.s:
                raise GeometryError(f"segment {lv}_{w} has no wall length")
            out[f"{lv}_{w}"] = (a, b2)
    return out


def project(points: F64, poly: F64, chunk: int = 2048) -> F64:
    """Arc length of the exact nearest point of ``poly`` for each point (brute force, chunked)."""
    a = poly[:-1]
    seg = np.diff(poly, axis=0)
    ll = np.maximum((seg * seg).sum(axis=1), 1e-12)
    s0 = cumulative(poly)[:-1]
    out = np.empty(len(points))
    for i in range(0, len(points), chunk):
        p = points[i : i + chunk]
        rel = p[:, None, :] - a[None]
        t = np.clip((rel * seg[None]).sum(axis=2) / ll, 0.0, 1.0)
        d = rel - t[..., None] * seg[None]
        k = np.argmin((d * d).sum(axis=2), axis=1)
        rows = np.arange(len(p))
        out[i : i + chunk] = s0[k] + t[rows, k] * np.sqrt(ll[k])
    return out


@dataclass(frozen=True)
class Measured:
    """Measured truth of one film (pixel units)."""

    score: KauppilaScore
    fractions: dict[str, float]
    calcified_px: dict[str, float]
    length_px: dict[str, float]


def measure(
    calc: npt.NDArray[np.uint8],
    walls: Mapping[str, F64],
    bounds: Mapping[str, tuple[WallPoint, WallPoint]],
    corners: Mapping[str, F64],
) -> Measured:
    """Fractions, grades, AAC-24 and AAC-8 of a calcification mask (see module docstring)."""
    fractions: dict[str, float] = {}
    covered: dict[str, float] = {}
    length: dict[str, float] = {}
    for w in WALLS:
        ys, xs = np.nonzero(calc == WALL_CODE[w])
        s = project(np.stack([xs, ys], axis=1).astype(np.float64), np.asarray(walls[w]))
        bins = np.unique(np.floor(s))
        for lv in LEVELS:
            seg = f"{lv}_{w}"
            lo, hi = bounds[seg][0].s, bounds[seg][1].s
            cov = float(np.clip(np.minimum(bins + 1, hi) - np.maximum(bins, lo), 0, None).sum())
            covered[seg], length[seg] = cov, hi - lo
            fractions[seg] = min(cov / (hi - lo), 1.0)
    heights = {lv: Vertebra(lv, corners[lv]).vertebral_height for lv in LEVELS}
    per_wall = {w: sum(covered[f"{lv}_{w}"] / heights[lv] for lv in LEVELS) for w in WALLS}
    return Measured(score_from_measurements(fractions, per_wall), fractions, covered, length)


__all__ = [
    "WALL_CODE",
    "GeometryError",
    "Measured",
    "WallPoint",
    "measure",
    "project",
    "ray_hit",
    "segment_bounds",
]
