"""Aortic calcification, distractor calcifications and the exact Kauppila ground truth.

Plaques are planned from a sampled *target* reading and then rendered on the wall polylines; the
ground truth is *measured* afterwards on the rendered, visibility-checked calcification mask.

Modelled:

* Target AAC-24 total: ``population`` (~45% zero, ~20% 1-5, ~22% 6-15, ~13% 16-24),
  ``balanced`` (uniform 0-24), ``mild`` (20% zero, 60% 1-4, 20% 5-8: the films around the
  low/moderate/high cut-offs, for training the hard cases) or ``negative`` (hard negatives:
  AAC-24 exactly 0, no aortic plaque at all, and the distractors of
  :func:`plan_hard_negatives` near and over the aortic band). The total is spread over the 8
  segments with more weight caudally (L4 > L3 > L2 > L1) and on the posterior wall (x1.35), and
  clustered within the patient.
* Per graded segment a target calcified fraction inside the grade's interval, away from the
  1/3 and 2/3 cut-offs, realised by 1-3 plaques on the wall inside the segment's bounds.
* Plaque kinds: ``linear`` (continuous 0.5-1.5 mm streak), ``stippled`` (chain of 0.6-1.6 mm
  dots), ``patchy`` (irregular 1-3 mm blobs with varying offset and density). All lie on the wall
  (edge-on in projection) and follow it. Density (peak line-integral excess 0.08-0.9) is set per
  patient (denser with higher burden) and varies per plaque and along it.
* Occasional plaques outside the scored segments (T12 level, below the L4/L5 bound) that must not
  be counted.
* Distractors, never labelled: pelvic phleboliths (rings), costal cartilage streaks, calcified
  mesenteric lymph nodes, surgical clips (metal, very dense), kept >= 8 mm from both walls.

Ground truth (see :func:`measure_truth`): each pixel of the calcification mask (1 anterior, 2
posterior) is projected to the nearest point of its wall polyline (exact projection onto the
polyline segments); the covered arc lengths are the union of 1-pixel bins ``[k, k+1)`` counted from
the polyline's first vertex. A segment's calcified length is the overlap of the covered bins with
the arc between its two bounds, divided by that arc length. Grades, AAC-24, AAC-8 (per wall: sum
over L1-L4 of calcified length / vertebral height, height = mean of anterior and posterior
corner distances) and the group come from :mod:`aacscore.kauppila`.

Visibility (:func:`visible_plaques`): a plaque is kept in the truth only when, in the final
displayed image, its mean contrast over a ring of surrounding background reaches 0.6 x the local
pixel noise (robust MAD estimate) and 0.008 of the display range, and its Rose signal-to-noise
ratio ``contrast / noise * sqrt(pixels / 4)`` reaches 4, and its contrast at its own scale
reaches :data:`MIN_STRUCTURED_CNR` x the anatomical background's variability there (bone edges,
trabeculae, gas: :func:`structured_cnr`); invisible plaques are dropped from the mask (they
stay, invisible, in the image).

Not modelled: intimal vs medial patterns, calcified iliac branches beyond the walls, motion blur.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.spatial import cKDTree

from aacscore.kauppila import LEVELS, SEGMENTS, WALLS, KauppilaScore, score_from_measurements
from aacscore.simulate.geometry import (
    F32,
    F64,
    Frame,
    arc_length,
    intersect_ray_polyline,
    point_at,
    project_to_polyline,
    resample_polyline,
    tangent_at,
)
from aacscore.vertebrae import DISC_NAMES, Vertebra, disc_bound, level_bound_names

HARD_NEGATIVE = "negative"
"""The distribution of hard negatives: plaque-free films full of distractors over the band."""
DISTRIBUTIONS: tuple[str, ...] = ("population", "balanced", "mild", HARD_NEGATIVE)
WALL_CODE: dict[str, int] = {"anterior": 1, "posterior": 2}
_LEVEL_W = {"L1": 0.55, "L2": 0.8, "L3": 1.1, "L4": 1.5}
_WALL_W = {"anterior": 1.0, "posterior": 1.35}
_GRADE_FRAC = {1: (0.07, 0.27), 2: (0.41, 0.59), 3: (0.75, 0.96)}


class SimulationError(RuntimeError):
    """The simulator could not build a consistent case."""


@dataclass(frozen=True)
class Plaque:
    """One plaque on a wall, in arc length (mm) along the canonical wall polyline."""

    wall: str
    kind: str
    s0: float
    s1: float
    thickness: float
    amplitude: float
    offset: float
    seed: int
    pitch: float = 0.0


@dataclass(frozen=True)
class Bound:
    """A segment bound on one wall: the point and its arc length along that wall."""

    point: F64
    s: float


# --------------------------------------------------------------------------------------------
# bounds and truth
# --------------------------------------------------------------------------------------------


def disc_line(upper: F64, lower: F64) -> tuple[F64, F64]:
    """Midpoint and anterior direction of the Kauppila bound between two vertebrae
    (:func:`aacscore.vertebrae.disc_bound`); ``upper`` and ``lower`` are 4x2 corner arrays."""
    b = disc_bound(Vertebra("upper", upper), Vertebra("lower", lower))
    return np.asarray(b.point), np.asarray(b.direction)


def compute_bounds(
    corners: Mapping[str, F64], walls: Mapping[str, F64]
) -> dict[str, tuple[Bound, Bound]]:
    """Cranial and caudal bound of every Kauppila segment (any similarity frame): where each
    mid-disc line of :func:`aacscore.vertebrae.disc_bound` crosses each wall."""
    discs: dict[str, dict[str, Bound]] = {}
    for name in DISC_NAMES:
        upper, lower = name.split("/")
        mid, d = disc_line(corners[upper], corners[lower])
        discs[name] = {}
        for w in WALLS:
            hit = intersect_ray_polyline(mid, d, walls[w])
            if hit is None:
                raise SimulationError(f"disc line {name} misses the {w} wall")
            discs[name][w] = Bound(hit[0], hit[1])
    out: dict[str, tuple[Bound, Bound]] = {}
    for lv in LEVELS:
        above, below = level_bound_names(lv)
        for w in WALLS:
            top = discs[above][w]
            bot = discs[below][w]
            if bot.s <= top.s:
                raise SimulationError(f"segment {lv}_{w} has non-positive wall length")
            out[f"{lv}_{w}"] = (top, bot)
    return out


def vertebral_height(corners: F64) -> float:
    """Mean of anterior (AS-AI) and posterior (PS-PI) heights, in the corners' units."""
    return float(
        (np.linalg.norm(corners[0] - corners[3]) + np.linalg.norm(corners[1] - corners[2])) / 2
    )


def project_near(pts: F64, poly: F64, window: int = 4) -> F64:
    """Arc length of the exact nearest point on ``poly``.

    Searched on the segments near the nearest vertex; points for which a vertex outside that
    window could hold a nearer segment (a wall that curves back, e.g. the diverging anterior
    wall below the bifurcation) are projected exactly over the whole polyline.
    """
    if len(pts) == 0:
        return np.zeros(0)
    tree = cKDTree(poly)
    _, j = tree.query(pts)
    nseg = len(poly) - 1
    cand = np.clip(j[:, None] + np.arange(-window, window)[None, :], 0, nseg - 1)
    s = arc_length(poly)
    a = poly[cand]
    d = poly[cand + 1] - a
    dd = np.maximum((d * d).sum(axis=2), 1e-12)
    rel = pts[:, None, :] - a
    t = np.clip((rel * d).sum(axis=2) / dd, 0.0, 1.0)
    diff = rel - t[..., None] * d
    dist2 = (diff * diff).sum(axis=2)
    k = np.argmin(dist2, axis=1)
    rows = np.arange(len(pts))
    seg = cand[rows, k]
    out: F64 = s[seg] + t[rows, k] * np.sqrt(dd[rows, k])
    # a segment nearer than the windowed one has a vertex within d + L_max / 2 of the point
    seg_len = np.sqrt((np.diff(poly, axis=0) ** 2).sum(axis=1))
    radius = np.sqrt(dist2[rows, k]) + 0.5 * float(seg_len.max()) + 1e-6
    kq = min(16, len(poly))
    dv, jv = tree.query(pts, k=kq)
    dv, jv = dv.reshape(len(pts), kq), jv.reshape(len(pts), kq)
    near = dv <= radius[:, None]
    far_idx = near & (np.abs(jv - j[:, None]) > window - 1)
    sus = far_idx.any(axis=1) | near.all(axis=1)
    if sus.any():
        out[sus] = project_to_polyline(pts[sus], poly)[0]
    return out


@dataclass(frozen=True)
class Truth:
    """Measured ground truth of one case."""

    score: KauppilaScore
    fractions: dict[str, float]
    calcified_px: dict[str, float]
    wall_length_px: dict[str, float]
    heights_px: dict[str, float]


def measure_truth(
    calc_mask: npt.NDArray[np.uint8],
    walls: Mapping[str, F64],
    bounds: Mapping[str, tuple[Bound, Bound]],
    corners: Mapping[str, F64],
) -> Truth:
    """Measure calcified fractions, grades, AAC-24 and AAC-8 from the rendered mask (pixels)."""
    fractions: dict[str, float] = {}
    covered: dict[str, float] = {}
    lengths: dict[str, float] = {}
    heights = {lv: vertebral_height(np.asarray(corners[lv])) for lv in LEVELS}
    for w in WALLS:
        rows, cols = np.nonzero(calc_mask == WALL_CODE[w])
        pts = np.stack([cols, rows], axis=1).astype(np.float64)
        s = project_near(pts, np.asarray(walls[w]))
        bins = np.unique(np.floor(s)).astype(np.float64)
        for lv in LEVELS:
            seg = f"{lv}_{w}"
            top, bot = bounds[seg]
            lo, hi = top.s, bot.s
            ov = np.clip(np.minimum(bins + 1.0, hi) - np.maximum(bins, lo), 0.0, None).sum()
            lengths[seg] = hi - lo
            covered[seg] = float(ov)
            fractions[seg] = float(min(ov / (hi - lo), 1.0))
    per_wall = {w: sum(covered[f"{lv}_{w}"] / heights[lv] for lv in LEVELS) for w in WALLS}
    score = score_from_measurements(fractions, per_wall)
    return Truth(score, fractions, covered, lengths, heights)


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------


def sample_target(rng: np.random.Generator, distribution: str) -> int:
    """Target AAC-24 total drawn from ``population``, ``balanced``, ``mild`` or ``negative``
    (always 0)."""
    u = rng.random()
    r = int(rng.integers(0, 1000))
    if distribution == HARD_NEGATIVE:
        return 0
    if distribution == "balanced":
        return r % 25
    if distribution == "mild":  # the hard range around the low/moderate/high cut-offs
        if u < 0.2:
            return 0
        if u < 0.8:
            return 1 + r % 4
        return 5 + r % 4
    if distribution != "population":
        raise ValueError(f"unknown distribution {distribution!r}; expected one of {DISTRIBUTIONS}")
    if u < 0.45:
        return 0
    if u < 0.65:
        return 1 + r % 5
    if u < 0.87:
        return 6 + r % 10
    return 16 + r % 9


def allocate_grades(rng: np.random.Generator, total: int) -> dict[str, int]:
    """Spread a target AAC-24 total over the 8 segments (caudal and posterior predominance)."""
    grades = dict.fromkeys(SEGMENTS, 0)
    base = np.array([_LEVEL_W[s.split("_")[0]] * _WALL_W[s.split("_")[1]] for s in SEGMENTS])
    for _ in range(min(total, 24)):
        g = np.array([grades[s] for s in SEGMENTS], dtype=float)
        w = base * (1.0 + 0.7 * g) * (g < 3)
        k = int(rng.choice(len(SEGMENTS), p=w / w.sum()))
        grades[SEGMENTS[k]] += 1
    return grades


def plan_plaques(
    rng: np.random.Generator,
    grades: Mapping[str, int],
    seg_ranges: Mapping[str, tuple[float, float]],
    wall_lengths: Mapping[str, float],
    total: int,
) -> tuple[list[Plaque], dict[str, Any]]:
    """Plaques (mm arc lengths on the canonical walls) realising the target grades."""
    burden = total / 24.0
    density = float(np.clip(rng.lognormal(math.log(0.25 + 0.3 * burden), 0.35), 0.1, 0.9))
    style = rng.dirichlet([2.0, 1.5, 1.2])  # linear, patchy, stippled
    plaques: list[Plaque] = []

    def make(wall: str, s0: float, s1: float, kind: str) -> Plaque:
        amp = float(np.clip(density * rng.lognormal(0, 0.3), 0.08, 1.0))
        if kind == "linear":
            th = float(rng.uniform(0.5, 1.5))
        elif kind == "patchy":
            th = float(rng.uniform(1.0, 3.0))
        else:
            th = float(rng.uniform(0.6, 1.6))
        return Plaque(
            wall=wall,
            kind=kind,
            s0=float(s0),
            s1=float(s1),
            thickness=th,
            amplitude=amp,
            offset=float(np.clip(rng.normal(0, 0.25), -0.5, 0.5)),
            seed=int(rng.integers(0, 2**31)),
            pitch=float(th * rng.uniform(1.3, 2.2)),
        )

    for seg in SEGMENTS:
        g = grades[seg]
        if g == 0:
            continue
        wall = seg.split("_")[1]
        lo, hi = seg_ranges[seg]
        lo, hi = lo + 0.6, hi - 0.6
        length = hi - lo
        frac = rng.uniform(*_GRADE_FRAC[g])
        kind = str(rng.choice(["linear", "patchy", "stippled"], p=style))
        if kind == "stippled" and g == 3:
            kind = "linear"
        need = frac * (seg_ranges[seg][1] - seg_ranges[seg][0])
        if kind == "stippled":
            need = min(need / 0.62, length * 0.98)
        k = int(rng.integers(1, {1: 3, 2: 4, 3: 3}[g]))
        parts = rng.dirichlet([3.0] * k) * need
        free = max(length - need, 0.0)
        gaps = rng.dirichlet([1.0] * (k + 1)) * free
        pos = lo
        for i in range(k):
            pos += gaps[i]
            plaques.append(make(wall, pos, min(pos + parts[i], hi), kind))
            pos += parts[i]
    # plaques outside the scored segments (T12 level and below the L4/L5 bound)
    for wall in WALLS:
        if rng.random() < 0.1 + 0.5 * burden:
            lo_all = seg_ranges[f"L1_{wall}"][0]
            if lo_all > 12:
                a = float(rng.uniform(2.0, lo_all - 6.0))
                plaques.append(make(wall, a, min(a + rng.uniform(3, 12), lo_all - 2.0), "linear"))
        if rng.random() < 0.15 + 0.6 * burden:
            hi_all = seg_ranges[f"L4_{wall}"][1]
            end = wall_lengths[wall] - 2.0
            if end - hi_all > 10:
                a = float(rng.uniform(hi_all + 2.0, end - 6.0))
                kind = str(rng.choice(["linear", "patchy", "stippled"], p=style))
                plaques.append(make(wall, a, min(a + rng.uniform(4, 20), end), kind))
    info = {"density": round(density, 4), "style": [round(float(x), 3) for x in style]}
    return plaques, info


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def render_plaques(
    plaques: list[Plaque], walls_mm: Mapping[str, F64], frame: Frame, out: F32
) -> list[tuple[npt.NDArray[np.intp], int]]:
    """Add plaques to the line-integral map; returns (flat pixel indices, wall code) per plaque."""
    px = frame.spacing
    result: list[tuple[npt.NDArray[np.intp], int]] = []
    for pl in plaques:
        wall = walls_mm[pl.wall]
        prng = np.random.default_rng(pl.seed)
        smax = arc_length(wall)[-1]
        a, b = max(pl.s0 - 3.0, 0.0), min(pl.s1 + 3.0, smax)
        sub_s = np.arange(a, b + 0.25 * px, 0.25 * px)
        sub = point_at(wall, sub_s)
        tan = tangent_at(wall, sub_s)
        nrm = np.stack([-tan[:, 1], tan[:, 0]], axis=1)
        half_max = max(pl.thickness, 1.8 * px) * 1.6 + 1.5
        crop = frame.crop(sub, margin_mm=half_max + 1.0)
        if crop is None:
            result.append((np.zeros(0, dtype=np.intp), WALL_CODE[pl.wall]))
            continue
        gx, gy = crop.mm_grid()
        pts = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
        dist, j = cKDTree(sub).query(pts, distance_upper_bound=half_max)
        ok = np.isfinite(dist)
        idx = np.flatnonzero(ok)
        jj = j[ok]
        s = sub_s[jj]
        n = ((pts[idx] - sub[jj]) * nrm[jj]).sum(axis=1)
        # smooth random modulation along the plaque
        grid = np.arange(a, b + 0.5, 0.5)
        mod1 = np.interp(s, grid, _smooth1d(prng, len(grid), 3.0))
        mod2 = np.interp(s, grid, _smooth1d(prng, len(grid), 1.5))
        t_eff_min = 1.8 * px
        inside_s = (s >= pl.s0) & (s <= pl.s1)
        if pl.kind == "stippled":
            centres = np.arange(pl.s0 + pl.pitch / 2, pl.s1, pl.pitch)
            centres = centres + prng.normal(0, pl.pitch * 0.12, len(centres))
            radii = np.maximum(
                pl.thickness / 2 * prng.uniform(0.7, 1.2, len(centres)), t_eff_min / 2
            )
            amps = pl.amplitude * prng.uniform(0.6, 1.3, len(centres))
            offs = np.clip(pl.offset + prng.normal(0, 0.25, len(centres)), -0.6, 0.6)
            if len(centres) == 0:
                centres, radii, amps, offs = (
                    np.array([0.5 * (pl.s0 + pl.s1)]),
                    np.array([max(pl.thickness / 2, t_eff_min / 2)]),
                    np.array([pl.amplitude]),
                    np.array([pl.offset]),
                )
            k = np.clip(np.searchsorted(centres, s), 1, len(centres)) - 1
            k2 = np.minimum(k + 1, len(centres) - 1)
            best = np.where(np.abs(s - centres[k]) <= np.abs(s - centres[k2]), k, k2)
            r = np.hypot(s - centres[best], n - offs[best]) / radii[best]
            val = amps[best] * np.sqrt(np.clip(1 - r * r, 0, None))
            mask = r <= 0.9
        else:
            if pl.kind == "linear":
                th = np.clip(pl.thickness * (1.0 + 0.2 * mod1), 0.4, 2.0)
                amp = pl.amplitude * (0.8 + 0.2 * mod2)
                off = np.clip(pl.offset + 0.15 * mod2, -0.6, 0.6)
            else:
                th = np.clip(pl.thickness * (0.9 + 0.45 * mod1), 0.5, 3.0)
                amp = pl.amplitude * np.clip(0.85 + 0.4 * mod2, 0.35, 1.6)
                off = np.clip(pl.offset + 0.3 * mod1, -0.6, 0.6)
            t_eff = np.maximum(th, t_eff_min)
            amp = amp * np.minimum(th / t_eff, 1.0) ** 0.5
            taper = np.clip(np.minimum(s - pl.s0, pl.s1 - s) / 0.5 + 0.5, 0.0, 1.0)
            x = (n - off) / (t_eff / 2)
            val = amp * np.sqrt(np.clip(1 - x * x, 0, None)) * taper
            mask = (np.abs(x) <= 0.9) & inside_s
        val = np.where(inside_s | (pl.kind == "stippled"), val, 0.0)
        h, w = crop.shape
        img = np.zeros(h * w, dtype=np.float32)
        img[idx] = val
        out[crop.slices] += img.reshape(h, w)
        sel = idx[mask & inside_s]
        rr, cc = np.divmod(sel, w)
        flat = (rr + crop.y0) * frame.shape[1] + (cc + crop.x0)
        result.append((flat.astype(np.intp), WALL_CODE[pl.wall]))
    return result


def _smooth1d(rng: np.random.Generator, n: int, sigma: float) -> F64:
    x = ndimage.gaussian_filter1d(rng.standard_normal(n), sigma, mode="nearest")
    sd = float(x.std()) or 1.0
    out: F64 = x / sd
    return out


MIN_STRUCTURED_CNR = 1.0
"""Minimum plaque contrast against the local anatomical background at the plaque's scale (see
:func:`structured_cnr`). Pixel noise alone understates what hides a small plaque: on the
vertebral cortex, bowel gas or trabecular texture a plaque can clear the pixel-noise test and
still be indistinguishable. With this rule the truth of 405 of 4,500 simulated films (training
and test sets of 2026-11-27) dropped by 1.6 AAC-24 on average; ``benchmarks/plaque_visibility.py``
reports how often the score model misses graded segments by this CNR."""


def structured_cnr(
    sub: npt.NDArray[np.float64],
    plaque: npt.NDArray[np.bool_],
    ring: npt.NDArray[np.bool_],
    px_mm: float,
) -> float:
    """Plaque contrast over the background's robust SD, both in a band-pass image (0.3 mm
    smoothing minus a 3 mm background): the anatomical texture at the plaque's scale counts as
    noise, the slow gradients do not."""
    bp = ndimage.gaussian_filter(sub, 0.3 / px_mm) - ndimage.gaussian_filter(sub, 3.0 / px_mm)
    bg = bp[ring]
    sd = 1.4826 * float(np.median(np.abs(bg - np.median(bg))))
    return float((bp[plaque].mean() - np.median(bg)) / max(sd, 1e-9))


def visible_plaques(
    img: F32,
    plaques: list[tuple[npt.NDArray[np.intp], int]],
    ring_px: int = 4,
    px_mm: float | None = None,
) -> list[bool]:
    """Whether each plaque's mean contrast exceeds the local noise in the displayed image and,
    with ``px_mm``, the anatomical background at its scale (:data:`MIN_STRUCTURED_CNR`)."""
    h, w = img.shape
    allmask = np.zeros(h * w, dtype=bool)
    for flat, _ in plaques:
        allmask[flat] = True
    allmask2 = allmask.reshape(h, w)
    keep: list[bool] = []
    for flat, _ in plaques:
        if len(flat) == 0:
            keep.append(False)
            continue
        rr, cc = np.divmod(flat, w)
        # Background ring around the plaque, away from every plaque. A plaque packed among
        # others (a long calcified run) may leave no ring at the default width: widen it, and
        # if even then nothing is left, it is part of a calcified run and is kept.
        ring = np.zeros(0, dtype=bool)
        for width in (ring_px, 2 * ring_px, 4 * ring_px):
            sub, pm, ring = _plaque_ring(img, allmask2, rr, cc, width + 3, width)
            if ring.sum() >= 8:
                break
        if ring.sum() < 8:
            keep.append(True)
            continue
        hp = sub - ndimage.uniform_filter(sub, 3, mode="nearest")
        mad = np.median(np.abs(hp[ring] - np.median(hp[ring])))
        sigma = 1.4826 * mad / math.sqrt(8.0 / 9.0)
        contrast = float(sub[pm].mean() - np.median(sub[ring]))
        snr = contrast / max(sigma, 1e-6) * math.sqrt(len(flat) / 4.0)
        ok = snr >= 4.0 and contrast >= max(0.6 * sigma, 0.008)
        if ok and px_mm is not None:
            ok = _structured_ok(img, allmask2, rr, cc, px_mm)
        keep.append(ok)
    return keep


def _plaque_ring(
    img: F32,
    allmask: npt.NDArray[np.bool_],
    rr: npt.NDArray[np.intp],
    cc: npt.NDArray[np.intp],
    margin: int,
    ring_w: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Window of ``img`` around one plaque (``margin`` px), the plaque's mask in it and a ring
    ``ring_w`` px wide around it that stays 2 px away from every plaque of ``allmask``."""
    h, w = img.shape
    y0, y1 = max(rr.min() - margin, 0), min(rr.max() + margin + 1, h)
    x0, x1 = max(cc.min() - margin, 0), min(cc.max() + margin + 1, w)
    sub = img[y0:y1, x0:x1].astype(np.float64)
    pm = np.zeros(sub.shape, dtype=bool)
    pm[rr - y0, cc - x0] = True
    ring = ndimage.binary_dilation(pm, iterations=ring_w) & ~ndimage.binary_dilation(
        allmask[y0:y1, x0:x1], iterations=2
    )
    return sub, pm, ring


def _structured_ok(
    img: F32,
    allmask: npt.NDArray[np.bool_],
    rr: npt.NDArray[np.intp],
    cc: npt.NDArray[np.intp],
    px_mm: float,
) -> bool:
    ring_w = max(2, round(2.0 / px_mm))
    # margin: room for the 3 mm background filter
    sub, pm, ring = _plaque_ring(img, allmask, rr, cc, ring_w + round(9.0 / px_mm), ring_w)
    if ring.sum() < 8:  # inside a calcified run
        return True
    return structured_cnr(sub, pm, ring, px_mm) >= MIN_STRUCTURED_CNR


# --------------------------------------------------------------------------------------------
# distractors
# --------------------------------------------------------------------------------------------


def sample_distractors(
    rng: np.random.Generator,
    walls_mm: Mapping[str, F64],
    region: Mapping[str, float],
    mu_scale: float,
) -> tuple[list[tuple[str, F64, float, float]], dict[str, int]]:
    """Distractor shapes: (kind, points mm, radius mm, amplitude), kept away from both walls."""
    wall_pts = np.concatenate([resample_polyline(walls_mm[w], 1.0) for w in WALLS])
    tree = cKDTree(wall_pts)
    shapes: list[tuple[str, F64, float, float]] = []
    counts = {"phlebolith": 0, "cartilage": 0, "node": 0, "clip": 0}

    def far(points: F64) -> bool:
        d, _ = tree.query(points)
        return bool(np.min(d) > 8.0)

    def place(x0: float, x1: float, y0: float, y1: float) -> F64 | None:
        for _ in range(12):
            c = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            if far(c[None, :]):
                return c
        return None

    ant = region["anterior_x"]
    for _ in range(int(rng.poisson(0.9))):  # phleboliths in the pelvis
        c = place(ant - 90, ant - 5, region["pelvis_y"] + 20, region["pelvis_y"] + 150)
        if c is not None:
            shapes.append(
                ("ring", c[None, :], float(rng.uniform(1.5, 3.2)), float(rng.uniform(0.15, 0.5)))
            )
            counts["phlebolith"] += 1
    if rng.random() < 0.25:  # costal cartilage
        for _ in range(int(rng.integers(1, 5))):
            c = place(ant - 120, ant - 25, region["top_y"], region["l1_y"] + 10)
            if c is None:
                continue
            ang = rng.uniform(0.3, 1.2)
            ln = rng.uniform(5, 20)
            p1 = c + ln * np.array([-math.cos(ang), math.sin(ang)])
            if far(p1[None, :]):
                shapes.append(
                    (
                        "capsule",
                        np.stack([c, p1]),
                        float(rng.uniform(0.6, 1.6)),
                        float(rng.uniform(0.08, 0.3)),
                    )
                )
                counts["cartilage"] += 1
    if rng.random() < 0.12:  # mesenteric lymph nodes (popcorn)
        c = place(ant - 120, ant - 25, region["l1_y"], region["l5_y"])
        if c is not None:
            pts = c + rng.normal(0, rng.uniform(1.5, 4.0), (int(rng.integers(4, 12)), 2))
            for p in pts:
                shapes.append(
                    (
                        "dot",
                        p[None, :],
                        float(rng.uniform(0.7, 2.0)),
                        float(rng.uniform(0.15, 0.45)),
                    )
                )
            counts["node"] += 1
    if rng.random() < 0.08:  # surgical clips
        for _ in range(int(rng.integers(1, 7))):
            c = place(ant - 140, ant - 15, region["l1_y"] - 30, region["l5_y"] + 60)
            if c is None:
                continue
            ang = rng.uniform(0, math.pi)
            ln = rng.uniform(5, 10)
            d = np.array([math.cos(ang), math.sin(ang)])
            nrm = np.array([-d[1], d[0]])
            spread = rng.uniform(0.5, 2.0)
            a_ = c + nrm * spread
            b_ = c - nrm * spread
            tip = c + d * ln
            amp = float(rng.uniform(1.5, 3.5) * mu_scale)
            shapes.append(("capsule", np.stack([a_, tip]), 0.35, amp))
            shapes.append(("capsule", np.stack([b_, tip]), 0.35, amp))
            counts["clip"] += 1
    return shapes, counts


def render_distractors(shapes: list[tuple[str, F64, float, float]], frame: Frame, out: F32) -> None:
    """Add distractor shapes to the line-integral map."""
    for kind, pts, radius, amp in shapes:
        crop = frame.crop(pts, margin_mm=radius + 1.5)
        if crop is None:
            continue
        x, y = crop.mm_grid()
        if kind == "capsule":
            p0, p1 = pts[0], pts[1]
            d = p1 - p0
            ll = float(d @ d) or 1.0
            t = np.clip(((x - p0[0]) * d[0] + (y - p0[1]) * d[1]) / ll, 0, 1)
            dist = np.hypot(x - (p0[0] + t * d[0]), y - (p0[1] + t * d[1]))
            r = dist / radius
            val = amp * np.sqrt(np.clip(1 - r * r, 0, None))
        else:
            r = np.hypot(x - pts[0, 0], y - pts[0, 1]) / radius
            if kind == "ring":
                val = amp * (
                    np.sqrt(np.clip(1 - r * r, 0, None))
                    - 0.75 * np.sqrt(np.clip(1 - (r / 0.6) ** 2, 0, None))
                )
            else:
                val = amp * np.sqrt(np.clip(1 - r * r, 0, None))
        out[crop.slices] += val.astype(np.float32)


# --------------------------------------------------------------------------------------------
# hard negatives
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HardNegativePlan:
    """Distractors of a hard-negative film, in the canonical mm frame of either family (x
    posterior, y caudal): never calcification of the aortic walls, so the truth stays 0.

    ``gas``: bowel loops over the band as (centreline, radius mm, haustral period mm (0: smooth),
    gas fill 0-1, stool 0-1); ``rings``: phleboliths and ``dots``: calcified lymph nodes as
    (centre, radius mm, relative density); ``clips``: metal clips as V pairs of (tip, end)
    strokes; ``lines``: faint vessel-like linear structures as (polyline, radius mm, relative
    density). ``age``: an older patient (more osteophytes) where the family models them;
    ``crop_band``: a narrow field that leaves the front of the band outside the film.
    """

    gas: tuple[tuple[F64, float, float, float, float], ...]
    rings: tuple[tuple[F64, float, float], ...]
    dots: tuple[tuple[F64, float, float], ...]
    clips: tuple[tuple[F64, F64], ...]
    lines: tuple[tuple[F64, float, float], ...]
    age: float
    crop_band: bool

    def counts(self) -> dict[str, int]:
        """Number of each kind of distractor."""
        return {
            "gas_loops": len(self.gas),
            "phleboliths": len(self.rings),
            "node_calcifications": len(self.dots),
            "clips": len(self.clips),
            "vessel_lines": len(self.lines),
            "band_cropped": int(self.crop_band),
        }

    def centres(self) -> F64:
        """One representative point (mm) per distractor (gas: every centreline vertex)."""
        pts = [g[0] for g in self.gas]
        pts += [c[None, :] for c, _, _ in (*self.rings, *self.dots)]
        pts += [np.concatenate(c).mean(axis=0)[None, :] for c in self.clips]
        pts += [ln[0] for ln in self.lines]
        return np.concatenate(pts) if pts else np.zeros((0, 2))


NEGATIVE_MIN_WALL_MM = 4.0
"""Calcific distractors (nodes, phleboliths, vessel lines) stay this far from both walls, so no
hard negative holds a plaque-like density on the wall itself (that would be a label error)."""


def plan_hard_negatives(
    rng: np.random.Generator, walls_mm: Mapping[str, F64], span_y: tuple[float, float]
) -> HardNegativePlan:
    """Distractors near and over the aortic band between ``span_y`` (mm, L1 top to L4 bottom):
    haustral colon and gas bubbles across the band, stool, phleboliths and calcified nodes
    beside the walls, metal clips anywhere over it, faint vessel-like lines along it."""
    wall_pts = np.concatenate([resample_polyline(walls_mm[w], 0.5) for w in WALLS])
    tree = cKDTree(wall_pts)
    ant = resample_polyline(walls_mm["anterior"], 1.0)
    post = resample_polyline(walls_mm["posterior"], 1.0)
    y0, y1 = span_y
    ant = ant[(ant[:, 1] >= y0 - 10) & (ant[:, 1] <= y1 + 10)]
    post = post[(post[:, 1] >= y0 - 10) & (post[:, 1] <= y1 + 10)]
    if len(ant) < 2 or len(post) < 2:
        raise SimulationError("the aortic walls do not span L1-L4")

    def near_wall(lo: float, hi: float) -> F64 | None:
        """A point lo-hi mm from the nearest wall, in front of, between or behind the walls."""
        for _ in range(20):
            wall = ant if rng.random() < 0.6 else post
            base = wall[int(rng.integers(0, len(wall)))]
            side = -1.0 if rng.random() < 0.7 else 1.0  # -x is anterior
            c = base + np.array([side * rng.uniform(lo, hi), rng.normal(0, 3)])
            d, _ = tree.query(c)
            if lo <= d <= hi + 5:
                return np.asarray(c, dtype=np.float64)
        return None

    def walk(start: F64, heading: float, steps: int, step: float, wiggle: float) -> F64:
        pts = [start]
        a = heading
        for _ in range(steps):
            a += float(rng.normal(0, wiggle))
            pts.append(pts[-1] + step * np.array([math.cos(a), math.sin(a)]))
        return np.asarray(pts)

    gas: list[tuple[F64, float, float, float, float]] = []
    # a colon segment running down (or obliquely across) the band, haustral, with stool
    for _ in range(int(rng.integers(1, 3))):
        start = ant[int(rng.integers(0, max(1, len(ant) // 3)))] + np.array(
            [rng.uniform(-30, 15), rng.uniform(-25, 5)]
        )
        length = (y1 - start[1]) + rng.uniform(0, 20)
        steps = max(3, int(length / 8.0))
        gas.append(
            (
                walk(start, math.pi / 2 + rng.normal(0, 0.35), steps, 8.0, 0.15),
                float(rng.uniform(8, 22)),
                float(rng.uniform(10, 22)) if rng.random() < 0.8 else 0.0,
                float(rng.uniform(0.3, 1.0)),
                float(rng.uniform(0.0, 0.9)),
            )
        )
    # small-bowel loops and bubbles over the walls
    for _ in range(int(rng.integers(1, 5))):
        c = ant[int(rng.integers(0, len(ant)))] + np.array([rng.uniform(-25, 20), 0.0])
        n = int(rng.integers(1, 6))
        if n > 1:
            loop = walk(c, rng.uniform(0, 2 * math.pi), n, 5.0, 0.8)
        else:
            loop = np.stack([c, c + 0.01])
        gas.append((loop, float(rng.uniform(3, 10)), 0.0, float(rng.uniform(0.4, 1.0)), 0.0))

    rings: list[tuple[F64, float, float]] = []
    dots: list[tuple[F64, float, float]] = []
    for _ in range(int(rng.integers(0, 3))):
        c = near_wall(NEGATIVE_MIN_WALL_MM + 1.5, 20.0)
        if c is not None:
            rings.append((c, float(rng.uniform(1.5, 3.0)), float(rng.uniform(0.5, 1.0))))
    for _ in range(int(rng.integers(1, 3))):  # calcified para-aortic / mesenteric nodes
        c0 = near_wall(NEGATIVE_MIN_WALL_MM + 4.0, 25.0)
        if c0 is None:
            continue
        for c in c0 + rng.normal(0, rng.uniform(1.0, 3.0), (int(rng.integers(3, 10)), 2)):
            r = float(rng.uniform(0.6, 1.8))
            if tree.query(c)[0] >= NEGATIVE_MIN_WALL_MM + r:
                dots.append((np.asarray(c), r, float(rng.uniform(0.4, 1.0))))
    clips: list[tuple[F64, F64]] = []
    if rng.random() < 0.6:
        for _ in range(int(rng.integers(1, 6))):
            c = ant[int(rng.integers(0, len(ant)))] + np.array(
                [rng.uniform(-25, 15), rng.normal(0, 6)]
            )
            ang = rng.uniform(0, math.pi)
            d = np.array([math.cos(ang), math.sin(ang)])
            nrm = np.array([-d[1], d[0]])
            spread = rng.uniform(0.5, 2.0)
            tip = c + d * rng.uniform(5, 10)
            clips.append((np.stack([c + nrm * spread, tip]), np.stack([c - nrm * spread, tip])))
    lines: list[tuple[F64, float, float]] = []
    for _ in range(int(rng.integers(0, 3))):
        side = ant if rng.random() < 0.6 else post
        off = rng.uniform(NEGATIVE_MIN_WALL_MM + 2.0, 18.0) * (-1.0 if side is ant else 1.0)
        a = int(rng.integers(0, max(1, len(side) - 30)))
        seg = side[a : a + int(rng.integers(25, 80))] + np.array([off, 0.0])
        seg = seg + np.cumsum(rng.normal(0, 0.15, seg.shape), axis=0) * np.array([1.0, 0.0])
        r = float(rng.uniform(0.4, 1.0))
        keep = tree.query(seg)[0] >= NEGATIVE_MIN_WALL_MM + r
        if keep.sum() >= 10:
            lines.append((seg[keep], r, float(rng.uniform(0.15, 0.5))))
    return HardNegativePlan(
        gas=tuple(gas),
        rings=tuple(rings),
        dots=tuple(dots),
        clips=tuple(clips),
        lines=tuple(lines),
        age=float(rng.uniform(65, 90)),
        crop_band=bool(rng.random() < 0.3),
    )


def hard_negative_shapes(
    plan: HardNegativePlan, mu_scale: float
) -> list[tuple[str, F64, float, float]]:
    """The calcific and metal distractors of ``plan`` as family A shapes for
    :func:`render_distractors` (the gas goes through :func:`render_gas`)."""
    shapes: list[tuple[str, F64, float, float]] = []
    for c, r, dens in plan.rings:
        shapes.append(("ring", c[None, :], r, 0.15 + 0.35 * dens))
    for c, r, dens in plan.dots:
        shapes.append(("dot", c[None, :], r, 0.15 + 0.3 * dens))
    for a, b in plan.clips:
        amp = float(2.5 * mu_scale)
        shapes += [("capsule", a, 0.35, amp), ("capsule", b, 0.35, amp)]
    for pts, r, dens in plan.lines:
        for p0, p1 in zip(pts[:-1:3], pts[3::3], strict=False):
            shapes.append(("capsule", np.stack([p0, p1]), r, 0.03 + 0.1 * dens))
    return shapes


def render_gas(
    gas: tuple[tuple[F64, float, float, float, float], ...],
    frame: Frame,
    out: F32,
    rng: np.random.Generator,
) -> None:
    """Subtract bowel-gas loops (haustral narrowing, stool bubbles) from the line-integral map
    (gas attenuates ~``MU_GAS`` less than the soft tissue it displaces)."""
    mu_gas = 0.02
    for pts, radius, period, fill, stool in gas:
        line = resample_polyline(pts, 0.25) if len(pts) > 1 and np.ptp(pts) > 0 else pts[:1]
        crop = frame.crop(line, margin_mm=radius + 1.0)
        if crop is None:
            continue
        x, y = crop.mm_grid()
        grid = np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float64)
        d, j = cKDTree(line).query(grid, distance_upper_bound=radius + 0.5)
        ok = np.isfinite(d)
        s = j[ok] * 0.25
        r = np.full(len(s), radius)
        if period > 0:
            r = radius * (1 - 0.3 * (0.5 + 0.5 * np.cos(2 * math.pi * s / period)) ** 4)
        chord = 2 * np.sqrt(np.clip(r * r - d[ok] ** 2, 0, None))
        val = np.zeros(len(grid))
        val[ok] = chord * fill * (1 - 0.7 * stool)
        if stool > 0:  # gas bubbles trapped in faeces: fine mottling
            noise = ndimage.gaussian_filter(rng.standard_normal(x.shape), 1.0 / frame.spacing)
            bubbles = np.clip((noise.ravel() / max(float(noise.std()), 1e-9) - 0.8) * 2, 0, 1)
            val[ok] += chord * stool * 0.5 * bubbles[ok]
        out[crop.slices] -= np.float32(mu_gas) * val.reshape(x.shape).astype(np.float32)


__all__ = [
    "DISTRIBUTIONS",
    "HARD_NEGATIVE",
    "WALL_CODE",
    "Bound",
    "HardNegativePlan",
    "Plaque",
    "SimulationError",
    "Truth",
    "allocate_grades",
    "compute_bounds",
    "hard_negative_shapes",
    "measure_truth",
    "plan_hard_negatives",
    "plan_plaques",
    "project_to_polyline",
    "render_distractors",
    "render_gas",
    "render_plaques",
    "sample_distractors",
    "sample_target",
    "visible_plaques",
]
