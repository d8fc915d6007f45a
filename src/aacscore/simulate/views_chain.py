"""Projection phantoms of the non-lateral view classes, rendered through the simulator's chains.

Each phantom is drawn in millimetres as two path-length maps, as family B does: ``bone`` (mm of
cortical-bone equivalent along the beam: cortex counts 1, trabecular bone its density 0.15-0.4)
and ``soft`` (mm of water equivalent: the body's thickness along the beam, less the air in lungs,
airway and bowel gas). :func:`radiograph` then sends the pair through one of the two imaging
chains of the lateral films, picked at random:

* family A (:mod:`aacscore.simulate.render`): line integral ``0.02 soft + 0.035 bone`` ->
  exposure, scatter, heel effect, quantum and electronic noise, detector blur, collimation ->
  log -> multi-scale vendor processing and tone curve -> burnt-in marker and text;
* family B (:mod:`aacscore.simulate.family_b.render`): polyenergetic two-material attenuation
  -> scatter, aperture, glare, coloured noise -> log -> dynamic range compression and one of
  its look-up-table chains -> collimation, marker and text.

Anatomy (ranges per image; all classes share the same primitives and the same chains):

* ``ap_lumbar``: T11-S1 seen frontally (bodies as waisted cylinders with cortical shell and
  end-plates, tipped by the lordosis so that the lower end-plates project as bands, pedicles
  seen end-on as bright oval rings, spinous processes as midline teardrops, laminae,
  transverse and articular processes), mild scoliosis, lowest ribs, psoas, sacrum with
  foramina, iliac wings with crests, bowel gas loops and bubbly colon content; half of them
  coned to the spine, half a whole abdomen field with the hips (femoral heads, necks, pubic
  rami: the pelvis phantom's);
* ``chest``: PA/AP (lungs either side of the mediastinum and heart, posterior and anterior
  ribs, clavicles, scapulae, diaphragm domes, trachea, thoracic spine, hila and vessels, humeral
  heads, breast shadows) or lateral (superimposed lungs, heart, sternum, kyphotic spine, ribs);
* ``lateral_thoracic``: T1-L1 in lateral projection (kyphosis, smaller bodies, pedicles and
  sloping spinous processes), posterior ribs crossing the spine, aerated lungs, heart shadow,
  diaphragm, scapula and shoulder soft tissue;
* ``cervical``: lateral (C1-T1, dens, skull base, mandible, airway in front, shoulders) or AP;
* ``pelvis_hip``: AP pelvis (iliac wings, sacrum, SI joints, pubic rami, obturator foramina,
  acetabula, femoral heads, necks, trochanters, shafts) or one hip;
* ``other_body_part``: a limb joint (knee/elbow: two or three long bones with medulla and
  condyles), a hand/foot (rays of small tubes), or a skull (shell, orbits, mandible, teeth).

Not modelled: organ detail beyond soft-tissue blobs, implants, contrast media, pathology,
children.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from aacscore.simulate import render as chain_a
from aacscore.simulate.family_b import render as chain_b
from aacscore.simulate.geometry import F32, Frame

MU_SOFT_A = 0.02
"""Family A line integral per mm of water-equivalent tissue."""
MU_BONE_A = 0.035
"""Family A line integral per mm of cortical-bone equivalent (in excess of soft tissue)."""


@dataclass(frozen=True)
class Phantom:
    """Path-length maps (mm) of one projection and where the anatomy of interest is."""

    bone: F32
    soft: F32
    spacing_mm: float
    roi: tuple[int, int, int, int]
    """``(y0, y1, x0, x1)`` pixel box the chains window on."""
    habitus: float
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Pixel ``(row, col)`` of named anatomy (e.g. ``lung_left``, ``L3_pedicle_right``)."""


class Grid:
    """Pixel grid of a film with its millimetre coordinates (anatomy frame, rotated)."""

    def __init__(
        self,
        rng: np.random.Generator,
        fov_mm: tuple[float, float],
        centre_mm: tuple[float, float],
        rot_deg: float,
        long_px: tuple[int, int] = (180, 300),
    ) -> None:
        w_mm, h_mm = fov_mm
        n = int(rng.integers(long_px[0], long_px[1] + 1))
        self.spacing = float(np.clip(max(w_mm, h_mm) / n, 0.6, 2.0))
        self.shape = (max(48, round(h_mm / self.spacing)), max(48, round(w_mm / self.spacing)))
        h, w = self.shape
        r, c = np.mgrid[0:h, 0:w].astype(np.float32)
        u = (c - (w - 1) / 2) * self.spacing
        v = (r - (h - 1) / 2) * self.spacing
        t = math.radians(rot_deg)
        ct, st = np.float32(math.cos(t)), np.float32(math.sin(t))
        self._map = (float(ct), float(st), float(centre_mm[0]), float(centre_mm[1]))
        self.x = (u * ct - v * st + np.float32(centre_mm[0])).astype(np.float32)
        self.y = (u * st + v * ct + np.float32(centre_mm[1])).astype(np.float32)
        self.bone = np.zeros(self.shape, np.float32)
        self.soft = np.zeros(self.shape, np.float32)

    def window(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice] | None:
        """Pixel slices covering the millimetre box (None when it misses the image)."""
        ct, st, cx, cy = self._map
        h, w = self.shape
        cols, rows = [], []
        for x, y in ((x0, y0), (x0, y1), (x1, y0), (x1, y1)):
            u = (x - cx) * ct + (y - cy) * st
            v = -(x - cx) * st + (y - cy) * ct
            cols.append(u / self.spacing + (w - 1) / 2)
            rows.append(v / self.spacing + (h - 1) / 2)
        r0, r1 = max(0, math.floor(min(rows)) - 1), min(h, math.ceil(max(rows)) + 2)
        c0, c1 = max(0, math.floor(min(cols)) - 1), min(w, math.ceil(max(cols)) + 2)
        if r1 <= r0 or c1 <= c0:
            return None
        return slice(r0, r1), slice(c0, c1)

    def to_px(self, x_mm: float, y_mm: float) -> tuple[float, float]:
        """Pixel ``(row, col)`` of a millimetre point (may lie outside the image)."""
        ct, st, cx, cy = self._map
        h, w = self.shape
        u = (x_mm - cx) * ct + (y_mm - cy) * st
        v = -(x_mm - cx) * st + (y_mm - cy) * ct
        return float(v / self.spacing + (h - 1) / 2), float(u / self.spacing + (w - 1) / 2)

    def roi_box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)`` pixel box of the pixels inside a millimetre box (clipped; the
        whole image when the box misses it)."""
        m = (self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1)
        h, w = self.shape
        if m.sum() < 64:
            return 0, h, 0, w
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


# -------------------------------------------------------------------------------------------
# Primitives: path lengths (mm) of simple solids, evaluated on the grid


class _Sub:
    """The part of a grid around one primitive: coordinates there and a full-size output."""

    def __init__(self, g: Grid, box: tuple[float, float, float, float]) -> None:
        self.sl = g.window(*box)
        self.x = g.x[self.sl] if self.sl is not None else np.zeros((0, 0), np.float32)
        self.y = g.y[self.sl] if self.sl is not None else np.zeros((0, 0), np.float32)
        self.shape = g.shape
        self.spacing = g.spacing

    def full(self, part: F32) -> F32:
        out = np.zeros(self.shape, np.float32)
        if self.sl is not None:
            out[self.sl] = part
        return out


def _sub(g: Grid, cx: float, cy: float, r: float) -> _Sub:
    return _Sub(g, (cx - r, cy - r, cx + r, cy + r))


def _local(g: Grid | _Sub, cx: float, cy: float, ang: float) -> tuple[F32, F32]:
    c, s = math.cos(ang), math.sin(ang)
    dx, dy = g.x - cx, g.y - cy
    return (dx * c + dy * s).astype(np.float32), (-dx * s + dy * c).astype(np.float32)


def ellipsoid(
    g: Grid, cx: float, cy: float, a: float, b: float, depth: float, ang: float = 0.0
) -> F32:
    """Path through an ellipsoid with in-plane semi-axes ``a``, ``b`` and ``depth`` along the
    beam (full thickness at its centre)."""
    sub = _sub(g, cx, cy, max(a, b))
    u, v = _local(sub, cx, cy, ang)
    r2 = (u / max(a, 1e-3)) ** 2 + (v / max(b, 1e-3)) ** 2
    return sub.full((depth * np.sqrt(np.clip(1.0 - r2, 0.0, None))).astype(np.float32))


def shelled(
    g: Grid,
    cx: float,
    cy: float,
    a: float,
    b: float,
    depth: float,
    t: float,
    trab: float,
    ang: float = 0.0,
) -> F32:
    """Bone of an ellipsoid with a cortical shell ``t`` mm and trabecular density ``trab``."""
    outer = ellipsoid(g, cx, cy, a, b, depth, ang)
    inner = ellipsoid(g, cx, cy, max(a - t, 0.5), max(b - t, 0.5), max(depth - 2 * t, 0.5), ang)
    return (outer - inner + trab * inner).astype(np.float32)


def ring(
    g: Grid,
    cx: float,
    cy: float,
    a: float,
    b: float,
    length: float,
    t: float,
    trab: float,
    ang: float = 0.0,
) -> F32:
    """A bony cylinder along the beam seen end-on (pedicle): bright cortical ring, its inside
    ``trab``; path ``length`` mm."""
    sub = _sub(g, cx, cy, max(a, b) + 2 * g.spacing)
    u, v = _local(sub, cx, cy, ang)
    r = np.sqrt((u / max(a, 1e-3)) ** 2 + (v / max(b, 1e-3)) ** 2)
    rin = 1.0 - t / max(min(a, b), 1e-3)
    edge = np.clip((1.0 - r) * min(a, b) / max(g.spacing * 0.7, 1e-3) + 0.5, 0.0, 1.0)
    inside = np.clip((rin - r) * min(a, b) / max(g.spacing * 0.7, 1e-3) + 0.5, 0.0, 1.0)
    return sub.full((length * ((edge - inside) + trab * inside)).astype(np.float32))


def _seg_dist(g: Grid, pts: np.ndarray, r: float) -> tuple[F32, _Sub]:
    """Distance (mm) to a polyline, on the part of the grid within ``r`` of it."""
    lo, hi = pts.min(axis=0) - r, pts.max(axis=0) + r
    sub = _Sub(g, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])))
    best = np.full(sub.x.shape, np.inf, dtype=np.float32)
    for (ax, ay), (bx, by) in itertools.pairwise(pts):
        vx, vy = bx - ax, by - ay
        ll = vx * vx + vy * vy
        t = np.clip(((sub.x - ax) * vx + (sub.y - ay) * vy) / max(ll, 1e-6), 0.0, 1.0)
        np.minimum(best, np.hypot(sub.x - ax - t * vx, sub.y - ay - t * vy), out=best)
    return best, sub


def tube(g: Grid, pts: np.ndarray, r: float, t: float, trab: float) -> F32:
    """Bone of a tubular bone lying in the image plane along the polyline ``pts`` (mm): a
    cylinder of radius ``r`` with a cortex ``t`` mm and medulla density ``trab``."""
    d, sub = _seg_dist(g, np.asarray(pts, dtype=np.float64), r)
    outer = 2 * np.sqrt(np.clip(r * r - d * d, 0.0, None))
    ri = max(r - t, 0.3)
    inner = 2 * np.sqrt(np.clip(ri * ri - d * d, 0.0, None))
    return sub.full((outer - inner + trab * inner).astype(np.float32))


def soft_tube(g: Grid, pts: np.ndarray, r: float) -> F32:
    """Path (mm) through a soft cylinder (gas loop, airway, psoas) along ``pts``."""
    d, sub = _seg_dist(g, np.asarray(pts, dtype=np.float64), r)
    return sub.full((2 * np.sqrt(np.clip(r * r - d * d, 0.0, None))).astype(np.float32))


def column(
    g: Grid,
    cx: float,
    cy: float,
    hw: float,
    hh: float,
    depth: float,
    t: float,
    trab: float,
    ang: float,
    plate: float,
    waist: float = 0.0,
    tilt: float = 0.0,
) -> F32:
    """A vertebral body seen frontally: vertical cylinder (elliptic section ``2 hw`` wide,
    ``depth`` deep) ``2 hh`` tall with rounded corners, cortical shell and end-plates; its
    sides concave by ``waist`` (share of ``hw`` lost at mid-height); ``tilt`` (radians) tips it
    about the transverse axis (lordosis), so the end-plates project as bands and the disc
    spaces narrow."""
    shift = 0.5 * depth * math.tan(abs(tilt))
    sub = _sub(g, cx, cy, math.hypot(hw, hh + shift))
    u, v0 = _local(sub, cx, cy, ang)
    k = 1 if shift < 0.25 * g.spacing else 7
    acc = np.zeros(u.shape, np.float32)
    for dv in np.linspace(-shift, shift, k):  # slabs along the beam, each shifted
        v = v0 - dv
        hw_v = hw * (1.0 - waist * np.clip(1.0 - (v / hh) ** 2, 0.0, 1.0))
        su = np.clip(1.0 - (u / hw_v) ** 2, 0.0, None)
        corner = np.clip(1.0 - (np.abs(v) / hh) ** 8, 0.0, None)
        prof = np.sqrt(su) * np.sqrt(corner)
        si = np.clip(1.0 - (u / np.maximum(hw_v - t, 0.5)) ** 2, 0.0, None)
        inner_v = np.clip(1.0 - (np.abs(v) / max(hh - t, 0.5)) ** 8, 0.0, None)
        pin = np.sqrt(si) * np.sqrt(inner_v) * (depth - 2 * t) / depth
        plates = np.exp(-(((np.abs(v) - hh + t) / max(t, 0.4)) ** 2)) * np.sqrt(su) * plate
        acc += depth * ((prof - pin) + trab * pin + plates * 0.25)
    return sub.full((acc / k).astype(np.float32))


def box_lateral(
    g: Grid,
    cx: float,
    cy: float,
    hw: float,
    hh: float,
    width: float,
    t: float,
    trab: float,
    ang: float,
) -> F32:
    """A vertebral body seen laterally: rounded box ``2 hw`` deep (in plane) and ``2 hh`` tall,
    ``width`` mm across the beam, with cortex where the beam runs tangentially."""
    sub = _sub(g, cx, cy, math.hypot(hw, hh))
    u, v = _local(sub, cx, cy, ang)
    p = 6.0
    r = (np.abs(u / hw) ** p + np.abs(v / hh) ** p) ** (1 / p)
    ri = (np.abs(u / max(hw - t, 0.5)) ** p + np.abs(v / max(hh - t, 0.5)) ** p) ** (1 / p)
    prof = np.sqrt(np.clip(1.0 - r**2, 0, None)) ** 0.3 * (r < 1)
    pin = np.sqrt(np.clip(1.0 - ri**2, 0, None)) ** 0.3 * (ri < 1)
    return sub.full(
        (width * (0.6 * (prof - pin) * 0.5 + trab * pin) + 4 * t * (prof - pin)).astype(np.float32)
    )


def texture(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> F32:
    """Unit-variance low-pass noise."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return (n / (float(n.std()) + 1e-6)).astype(np.float32)


def trunk(g: Grid, cx: float, half_w: float, depth: float, power: float = 2.2) -> F32:
    """Water path through a trunk of elliptic-ish section (``2 half_w`` wide, ``depth`` deep)."""
    t = np.clip(np.abs(g.x - cx) / half_w, 0, 1)
    return (depth * (1 - t**power) ** (1 / power)).astype(np.float32)


def _bmd(rng: np.random.Generator) -> tuple[float, float]:
    """(trabecular density, cortex thickness mm) of one patient."""
    return float(rng.uniform(0.15, 0.4)), float(rng.uniform(0.8, 2.0))


def _fov(
    rng: np.random.Generator, w: tuple[float, float], h: tuple[float, float]
) -> tuple[float, float]:
    return float(rng.uniform(*w)), float(rng.uniform(*h))


def _rot(rng: np.random.Generator, sd: float = 3.5) -> float:
    return float(np.clip(rng.normal(0, sd), -12, 12))


def _gas(rng: np.random.Generator, g: Grid, box: tuple[float, float, float, float], n: int) -> F32:
    """Bowel gas (mm of air along the beam): loops and blobs inside the mm ``box``."""
    out = np.zeros(g.shape, np.float32)
    x0, y0, x1, y1 = box
    for _ in range(n):
        p0 = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        ang = rng.uniform(0, 2 * math.pi)
        ln = rng.uniform(10, 70)
        mid = p0 + ln / 2 * np.array([math.cos(ang), math.sin(ang)]) + rng.normal(0, 10, 2)
        p1 = p0 + ln * np.array([math.cos(ang), math.sin(ang)])
        out += soft_tube(g, np.stack([p0, mid, p1]), float(rng.uniform(5, 15)))
    if n and rng.random() < 0.5:  # bubbly colon content: many small gas pockets
        for _ in range(int(rng.integers(10, 60))):
            r = float(rng.uniform(2.5, 7.0))
            bx, by = rng.uniform(x0, x1), rng.uniform(y0, y1)
            out += ellipsoid(g, bx, by, r, r * rng.uniform(0.6, 1.4), 2 * r, rng.uniform(0, 3))
    if rng.random() < 0.6:  # stool mottling
        m = texture(rng, g.shape, 1.5 / g.spacing)
        inside = (g.x > x0) & (g.x < x1) & (g.y > y0) & (g.y < y1)
        out += 8.0 * np.clip(m - 1.0, 0, None) * inside
    return out


# -------------------------------------------------------------------------------------------
# Frontal spine (AP lumbar, chest, AP cervical)


def frontal_vertebra(
    g: Grid,
    rng: np.random.Generator,
    cx: float,
    cy: float,
    hw: float,
    hh: float,
    ang: float,
    trab: float,
    cort: float,
    tp_len: float,
    spinous: bool = True,
    tilt: float = 0.0,
) -> dict[str, tuple[float, float]]:
    """A vertebra seen from the front: body, pedicle rings, lamina, spinous, transverse and
    articular processes; returns the mm centres of its pedicles (``pedicle_left``/``_right``:
    towards -x / +x)."""
    depth = hw * float(rng.uniform(1.25, 1.6))
    waist = float(rng.uniform(0.0, 0.14))
    plate = float(rng.uniform(0.5, 1.2))
    g.bone += column(g, cx, cy, hw, hh, depth, cort, trab, ang, plate, waist, tilt)
    c, s = math.cos(ang), math.sin(ang)

    def at(du: float, dv: float) -> tuple[float, float]:
        return cx + du * c - dv * s, cy + du * s + dv * c

    pa, pb = hw * rng.uniform(0.14, 0.2), hh * rng.uniform(0.28, 0.38)
    centres: dict[str, tuple[float, float]] = {}
    for side in (-1, 1):
        px, py = at(side * hw * rng.uniform(0.55, 0.68), -hh * rng.uniform(0.2, 0.35))
        centres["pedicle_left" if side < 0 else "pedicle_right"] = (px, py)
        g.bone += ring(g, px, py, pa, pb, hw * 0.55, cort * 1.2, trab, ang)
        tx, ty = at(side * hw * 0.75, -hh * 0.15)
        ex, ey = at(side * (hw * 0.75 + tp_len), -hh * rng.uniform(0.1, 0.4))
        if tp_len > 1:
            g.bone += tube(
                g, np.array([[tx, ty], [ex, ey]]), hh * rng.uniform(0.12, 0.3), cort, trab
            )
        for dv in (-1.0, 1.0):  # articular processes above and below the pedicles
            ax, ay = at(side * hw * rng.uniform(0.38, 0.5), dv * hh * 0.95)
            fa, fb = hw * rng.uniform(0.1, 0.18), hh * rng.uniform(0.25, 0.4)
            g.bone += shelled(g, ax, ay, fa, fb, 16, cort, trab, ang + side * 0.3)
    lx, ly = at(0.0, hh * 0.25)  # laminae: a bony plate behind the body, down to the disc
    g.bone += float(rng.uniform(0.5, 1.2)) * ellipsoid(g, lx, ly, hw * 0.6, hh * 0.65, 14.0, ang)
    if spinous:  # teardrop in the midline, pointing down over the disc below
        sx, sy = at(rng.normal(0, hw * 0.05), hh * rng.uniform(0.45, 0.85))
        sa, sb = hw * rng.uniform(0.09, 0.17), hh * rng.uniform(0.35, 0.6)
        g.bone += ring(g, sx, sy, sa, sb, float(rng.uniform(22, 40)), cort * 1.4, trab, ang)
    return centres


def _stacked_centres(top: float, heights: np.ndarray, discs: np.ndarray) -> np.ndarray:
    """Row (mm) of the centre of each of ``len(heights)`` vertebrae stacked from ``top`` down,
    ``discs[i]`` below body ``i``."""
    ys = np.empty(len(heights))
    y = top
    for i in range(len(heights)):
        ys[i] = y + heights[i] / 2
        y += heights[i] + discs[i]
    return ys


def _spine_path(
    rng: np.random.Generator,
    n: int,
    top: float,
    heights: np.ndarray,
    discs: np.ndarray,
    cx: float,
    bend: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (x, y) and tilts of ``n`` stacked vertebrae from ``top`` down."""
    ys = _stacked_centres(top, heights, discs)
    t = (ys - ys[0]) / max(ys[-1] - ys[0], 1.0)
    phase = rng.uniform(0, math.pi)
    xs = cx + bend * np.sin(math.pi * t + phase)
    ang = np.gradient(xs, ys) * -1.0
    return xs, ys, np.arctan(ang) * 0.8


WIDE_AP_SHARE = 0.5
"""Share of AP lumbar films with the whole abdomen on them (a 35 x 43 cm field: lowest ribs to
the hips, femoral heads and pubic rami included); the others are coned to the lumbar spine."""


def ap_lumbar(rng: np.random.Generator) -> Phantom:
    """AP/PA lumbar spine (see the module docstring)."""
    trab, cort = _bmd(rng)
    size = float(rng.uniform(0.88, 1.15))
    n = 7  # T11 .. L5
    heights = size * np.array([22, 23, 24, 26, 27, 27, 26]) * rng.uniform(0.95, 1.05, n)
    discs = size * rng.uniform(5, 11, n)
    widths = size * np.linspace(38, 52, n) * rng.uniform(0.95, 1.05, n)
    xs, ys, ang = _spine_path(rng, n, -150 * size, heights, discs, 0.0, rng.normal(0, 6))
    l3 = 4
    # end-plate tilt to the beam: lordosis tips the lower lumbar bodies most
    lordosis = np.array([0.0, 0.0, 2.0, 5.0, 8.0, 12.0, 18.0]) * rng.uniform(0.3, 1.4)
    tilts = np.radians(lordosis + rng.normal(0, 3, n))
    yb = float(ys[-1] + heights[-1] / 2 + discs[-1])  # top of the sacrum
    wide = rng.random() < WIDE_AP_SHARE
    if wide:  # the whole abdomen: lowest ribs to the hips
        fov = _fov(rng, (300, 430), (350, 480))
        centre = (float(rng.normal(0, 15)), float((ys[1] + yb + 150) / 2 + rng.normal(0, 25)))
    else:
        fov = _fov(rng, (180, 360), (250, 430))
        centre = (float(rng.normal(0, 20)), float(ys[l3] + rng.normal(0, 40)))
    g = Grid(rng, fov, centre, _rot(rng))
    half_w = size * (rng.uniform(150, 210) if wide else rng.uniform(140, 200))
    depth = size * rng.uniform(170, 300)
    g.soft += trunk(g, 0.0, half_w, depth)
    marks: dict[str, tuple[float, float]] = {}
    for i in range(n):
        tp = widths[i] * (0.25 if i < 2 else (0.55 if i == 4 else 0.4)) * rng.uniform(0.8, 1.2)
        ped = frontal_vertebra(
            g,
            rng,
            xs[i],
            ys[i],
            widths[i] / 2,
            heights[i] / 2,
            ang[i],
            trab,
            cort,
            tp,
            tilt=tilts[i],
        )
        if i == l3:
            marks["L3"] = g.to_px(xs[i], ys[i])
            marks.update({f"L3_{k}": g.to_px(*v) for k, v in ped.items()})
    for s in (-1, 1):  # psoas: muscle is denser than the fat around it
        pts = np.array(
            [[xs[2] + s * widths[2] * 0.45, ys[2]], [xs[-1] + s * widths[-1] * 1.3, yb + 40]]
        )
        g.soft += 0.12 * soft_tube(g, pts, float(rng.uniform(22, 35) * size))
        for k, yy in enumerate((ys[0], ys[1])):  # lowest ribs
            if rng.random() < 0.85:
                x0 = xs[k] + s * widths[k] * 0.5
                pts = np.array(
                    [
                        [x0, yy - heights[k] * 0.3],
                        [x0 + s * rng.uniform(35, 60), yy + rng.uniform(10, 30)],
                        [x0 + s * rng.uniform(70, 120), yy + rng.uniform(40, 90)],
                    ]
                )
                g.bone += tube(g, pts, float(rng.uniform(4, 6)), cort, trab)
    # sacrum: a tapering plate with foramina, then the iliac wings
    sw = widths[-1] * rng.uniform(1.0, 1.3)
    u = np.abs(g.x - xs[-1])
    v = g.y - yb
    shape = np.clip(1 - u / (sw * (1 - 0.6 * np.clip(v / 110, 0, 1))), 0, 1) * ((v > 0) & (v < 110))
    g.bone += (18 * trab + 4 * cort) * np.sqrt(shape).astype(np.float32)
    for k in range(4):
        for s in (-1, 1):
            fx = xs[-1] + s * sw * (0.45 - 0.06 * k)
            g.bone -= 0.8 * ellipsoid(g, fx, yb + 18 + 22 * k, 5, 4.5, 18 * trab + 3)
    for s in (-1, 1):
        icx = xs[-1] + s * sw * rng.uniform(1.7, 2.2)
        icy = yb + rng.uniform(5, 35)
        a, b = sw * rng.uniform(1.0, 1.3), rng.uniform(55, 80) * size
        tilt = s * rng.uniform(0.2, 0.5)
        g.bone += shelled(g, icx, icy, a, b, 10, cort, trab, tilt)
        tt = np.linspace(0.3, math.pi - 0.3, 12)
        crest = np.stack([icx + a * np.cos(tt) * math.cos(tilt), icy - 0.95 * b * np.sin(tt)], 1)
        g.bone += tube(g, crest, float(rng.uniform(4, 7)), cort * 1.5, trab)
        g.soft += 0.06 * ellipsoid(g, xs[1] + s * 70 * size, ys[1] + 20, 35, 60, 50)  # kidneys
        if wide:
            _hip(g, rng, s, size, trab, cort, marks, float(xs[-1]), yb + 75 * size)
    gas_box = (-half_w * 0.7, ys[1], half_w * 0.7, yb + (160 if wide else 100))
    g.soft -= np.minimum(
        _gas(rng, g, gas_box, int(rng.integers(0, 28 if wide else 12))), 0.3 * g.soft
    )
    roi = g.roi_box(xs[l3] - 80, ys[1], xs[l3] + 80, ys[-1])
    return Phantom(g.bone, g.soft, g.spacing, roi, float(rng.uniform(0, 1)), marks)


# -------------------------------------------------------------------------------------------
# Chest and thoracic spine


def _rib_arc(
    rng: np.random.Generator, x0: float, y0: float, side: float, span: float, drop: float
) -> np.ndarray:
    """A posterior rib seen frontally: out and up from the spine, then down the lateral wall."""
    t = np.linspace(0, 1, 14)
    x = x0 + side * span * np.sin(t * math.pi * 0.5) ** 0.8
    y = y0 - 0.12 * span * np.sin(t * math.pi * 0.9) + drop * t**2.2
    return np.stack([x, y], 1)


def _lung_markings(rng: np.random.Generator, g: Grid) -> F32:
    """Share of the lung path taken by vessels and interstitium (smooth, 0-0.25)."""
    fine = np.abs(texture(rng, g.shape, 3.0 / g.spacing))
    coarse = texture(rng, g.shape, 12.0 / g.spacing)
    return np.clip(0.06 * fine + 0.05 * coarse + 0.05, 0, 0.25).astype(np.float32)


def chest(rng: np.random.Generator) -> Phantom:
    """PA/AP chest (70 %) or lateral chest (see the module docstring)."""
    if rng.random() < 0.3:
        return lateral_chest(rng)
    return chest_pa(rng)


def chest_pa(rng: np.random.Generator) -> Phantom:
    """PA/AP chest; landmarks ``lung_left``, ``lung_right`` (mid-lung) and ``mediastinum``."""
    trab, cort = _bmd(rng)
    size = float(rng.uniform(0.85, 1.15))
    half_w = size * rng.uniform(135, 175)
    depth = size * rng.uniform(170, 260)
    apex, dome = -size * rng.uniform(130, 150), size * rng.uniform(95, 130)
    fov = _fov(rng, (300, 430), (330, 430))
    centre = (float(rng.normal(0, 15)), float((apex + dome) / 2 + rng.normal(0, 25)))
    g = Grid(rng, fov, centre, _rot(rng, 2.5))
    shoulders = 1 + 0.35 * np.clip((apex + 20 - g.y) / 60, 0, 1)
    g.soft += trunk(g, 0.0, half_w, depth) * np.where(g.y < apex - 40, 0.55, 1.0).astype(np.float32)
    g.soft += trunk(g, 0.0, half_w * 0.35, depth * 0.5) * (g.y < apex - 20) * 0.6 * (shoulders > 0)
    # lungs: each a tall rounded shape, its medial edge against the mediastinum
    lung = np.zeros(g.shape, np.float32)
    marks: dict[str, tuple[float, float]] = {}
    for s in (-1, 1):
        d_s = dome + (0 if s > 0 else size * rng.uniform(8, 25))  # right dome higher
        lx = s * half_w * rng.uniform(0.45, 0.55)
        marks["lung_left" if s < 0 else "lung_right"] = g.to_px(lx, apex + 0.4 * (d_s - apex))
        lw = half_w * rng.uniform(0.4, 0.5)
        cy = (apex + d_s) / 2
        hh = (d_s - apex) / 2
        u = (g.x - lx) / lw
        v = (g.y - cy) / hh
        r2 = np.abs(u) ** 2.4 + np.where(v < 0, np.abs(v) ** 2, np.abs(v) ** 6)
        dome_cut = g.y < d_s - 25 * (1 - np.clip(((g.x - lx) / lw) ** 2, 0, 1)) + 25
        lung += (np.sqrt(np.clip(1 - r2, 0, None)) * dome_cut).astype(np.float32)
    heart_x = size * rng.uniform(5, 30)
    heart = ellipsoid(
        g,
        -heart_x,
        dome - size * rng.uniform(45, 60),
        size * rng.uniform(65, 90),
        size * rng.uniform(50, 65),
        1.0,
        -0.5,
    )
    media = np.clip(1 - np.abs(g.x - rng.normal(0, 3)) / (size * rng.uniform(22, 32)), 0, 1) ** 0.5
    lung = np.clip(lung - 0.6 * heart**0.5 - 1.2 * media, 0, 1)
    vessels = _lung_markings(rng, g)
    lung_depth = depth * rng.uniform(0.55, 0.75)
    g.soft -= lung_depth * lung * (1.0 - vessels)
    for s in (-1, 1):  # hila
        g.soft += 0.25 * ellipsoid(g, s * size * 40, apex + (dome - apex) * 0.45, 18, 30, 60)
    # trachea
    g.soft -= (
        soft_tube(g, np.array([[0, apex - 80], [0, apex + 60]]), size * rng.uniform(7, 10)) * 1.0
    )
    # thoracic spine (faint through the mediastinum)
    n = 12
    heights = size * np.linspace(15, 22, n)
    discs = size * rng.uniform(4, 6, n)
    xs, ys, ang = _spine_path(rng, n, apex - 60 * size, heights, discs, 0.0, rng.normal(0, 4))
    for i in range(n):
        frontal_vertebra(
            g,
            rng,
            xs[i],
            ys[i],
            size * (14 + i * 0.9),
            heights[i] / 2,
            ang[i],
            trab,
            cort,
            size * rng.uniform(8, 14),
        )
    # ribs: posterior from each vertebra, anterior ones fainter and sloping down-medially
    for i in range(n - 1):
        for s in (-1, 1):
            span = (
                half_w
                * rng.uniform(0.8, 0.95)
                * (0.55 + 0.45 * math.sin(math.pi * min(1.0, (i + 1) / 7)))
            )
            drop = size * rng.uniform(40, 70)
            pts = _rib_arc(rng, xs[i] + s * size * 14, ys[i], s, span, drop)
            g.bone += tube(g, pts, size * rng.uniform(4.0, 5.5), cort, trab * 0.8)
            end = pts[-1]
            ant = np.array(
                [
                    end,
                    [end[0] - s * span * 0.35, end[1] + size * 30],
                    [s * size * 30, end[1] + size * rng.uniform(45, 70)],
                ]
            )
            g.bone += 0.45 * tube(g, ant, size * rng.uniform(4, 5.5), cort, trab * 0.5)
    for s in (-1, 1):  # clavicles, scapulae, humeral heads, breasts
        cl = np.array(
            [
                [s * size * 18, apex - size * 8],
                [s * half_w * 0.4, apex - size * rng.uniform(15, 30)],
                [s * half_w * 0.75, apex - size * rng.uniform(25, 40)],
                [s * half_w * 0.95, apex - size * rng.uniform(35, 50)],
            ]
        )
        g.bone += tube(g, cl, size * rng.uniform(5, 7), cort * 1.2, trab)
        sx = s * half_w * rng.uniform(0.7, 0.85)
        g.bone += shelled(g, sx, apex + size * 55, size * 35, size * 70, 6, cort, trab, s * 0.35)
        if rng.random() < 0.6:
            g.bone += shelled(
                g,
                s * half_w * rng.uniform(1.0, 1.15),
                apex - size * 35,
                size * 25,
                size * 25,
                50,
                cort,
                trab,
            )
        if rng.random() < 0.4:
            g.soft += 0.5 * ellipsoid(
                g, s * half_w * 0.55, dome - size * 20, size * 60, size * 45, 80
            )
    g.soft = np.maximum(g.soft, 0.0)
    marks["mediastinum"] = g.to_px(0.0, apex + 0.4 * (dome - apex))
    roi = g.roi_box(-half_w, apex, half_w, dome)
    return Phantom(g.bone, g.soft, g.spacing, roi, float(rng.uniform(0, 1)), marks)


def lateral_spine(
    g: Grid,
    rng: np.random.Generator,
    xs: np.ndarray,
    ys: np.ndarray,
    ang: np.ndarray,
    depths: np.ndarray,
    heights: np.ndarray,
    widths: np.ndarray,
    trab: float,
    cort: float,
    post: float,
    spinous_slope: float,
) -> None:
    """Vertebrae in lateral projection (anterior to ``-post``): bodies, pedicles, spinous and
    articular processes."""
    for i in range(len(xs)):
        cx, cy, a, d, h = float(xs[i]), float(ys[i]), float(ang[i]), depths[i] / 2, heights[i] / 2
        g.bone += box_lateral(g, cx, cy, d, h, float(widths[i]), cort, trab, a)
        c, s = math.cos(a), math.sin(a)

        def at(
            du: float, dv: float, cx: float = cx, cy: float = cy, c: float = c, s: float = s
        ) -> tuple[float, float]:
            return cx + post * du * c - dv * s, cy + post * du * s + dv * c

        px, py = at(d + h * 0.5, -h * 0.3)
        g.bone += shelled(g, px, py, h * 0.55, h * 0.35, 16, cort, trab, a)
        fx, fy = at(d + h * 1.1, 0.0)
        g.bone += shelled(g, fx, fy, h * 0.4, h * 0.8, 20, cort, trab, a)
        sp0 = np.array(at(d + h * 1.3, h * 0.1))
        sp1 = sp0 + np.array([post * h * 1.6, h * 1.6 * spinous_slope])
        g.bone += tube(g, np.stack([sp0, sp1]), h * rng.uniform(0.22, 0.32), cort, trab)


def lateral_thoracic(rng: np.random.Generator) -> Phantom:
    """Lateral thoracic spine (see the module docstring); landmarks ``T7`` (body centre) and
    ``lung`` (in front of the spine)."""
    return _lateral_thorax(rng, chest_view=False)


def lateral_chest(rng: np.random.Generator) -> Phantom:
    """Lateral chest (landmarks as :func:`lateral_thoracic`)."""
    return _lateral_thorax(rng, chest_view=True)


def _lateral_thorax(rng: np.random.Generator, chest_view: bool) -> Phantom:
    trab, cort = _bmd(rng)
    size = float(rng.uniform(0.85, 1.15))
    post = float(rng.choice([-1.0, 1.0]))  # posterior towards +x or -x
    n = 13  # T1 .. L1
    heights = size * np.linspace(14, 24, n) * rng.uniform(0.95, 1.05, n)
    discs = size * rng.uniform(3.5, 6, n)
    depths = size * np.linspace(16, 30, n)
    widths = size * np.linspace(25, 42, n)
    ys = _stacked_centres(-size * 170, heights, discs)
    kyph = rng.uniform(25, 55) * size
    t = (ys - ys[0]) / (ys[-1] - ys[0])
    xs = post * kyph * np.sin(math.pi * t)  # apex backwards
    ang = np.arctan(np.gradient(xs, ys)) * -1.0
    ap_depth = size * rng.uniform(180, 280)  # chest front-back
    ant_x = -post * (ap_depth * 0.72)
    if chest_view:
        fov = _fov(rng, (300, 430), (330, 430))
        centre = (float(-post * ap_depth * 0.3 + rng.normal(0, 20)), float(rng.normal(0, 20)))
    else:
        fov = _fov(rng, (170, 300), (280, 430))
        centre = (float(xs.mean() - post * rng.uniform(0, 40)), float(ys[6] + rng.normal(0, 40)))
    g = Grid(rng, fov, centre, _rot(rng))
    width = size * rng.uniform(260, 340)  # lateral path through the chest
    mid_x = (ant_x + xs.mean() + post * 60) / 2
    g.soft += trunk(g, mid_x, abs(xs.mean() + post * 60 - ant_x) / 2 + 10, width)
    # lungs (both, superimposed) in front of and around the spine, above the diaphragm
    dome = ys[-2] + rng.uniform(-20, 20)
    lung_x0, lung_x1 = sorted((ant_x + post * 15, xs.mean() + post * 40))
    u = (g.x - (lung_x0 + lung_x1) / 2) / ((lung_x1 - lung_x0) / 2)
    v = (g.y - (ys[0] + dome) / 2) / ((dome - ys[0] + 20) / 2)
    dia = dome + 25 * u * post  # the diaphragm slopes down towards the back
    lung = np.sqrt(np.clip(1 - np.abs(u) ** 3 - np.abs(v) ** 2.5, 0, None)) * (g.y < dia)
    heart = ellipsoid(
        g,
        ant_x + post * size * rng.uniform(55, 80),
        dome - size * 55,
        size * 60,
        size * 55,
        1.0,
        0.5,
    )
    lung = np.clip(lung - 0.6 * heart**0.5, 0, 1)
    vessels = _lung_markings(rng, g)
    g.soft -= width * rng.uniform(0.5, 0.7) * lung * (1.0 - vessels)
    lateral_spine(
        g, rng, xs, ys, ang, depths, heights, widths, trab, cort, post, float(rng.uniform(0.6, 1.1))
    )
    # ribs: posterior arcs leaving the posterior elements, both sides slightly offset
    for i in range(1, n - 1):
        for off in (rng.uniform(-6, 0), rng.uniform(0, 8)):
            x0 = xs[i] + post * (depths[i] / 2 + heights[i])
            pts = np.array(
                [
                    [x0, ys[i] - heights[i] * 0.3],
                    [x0 + post * size * rng.uniform(10, 25), ys[i] + size * 20 + off],
                    [xs[i] - post * size * 10, ys[i] + size * rng.uniform(50, 75) + off],
                    [ant_x * 0.6 + xs[i] * 0.4, ys[i] + size * rng.uniform(70, 100) + off],
                ]
            )
            g.bone += 0.8 * tube(g, pts, size * rng.uniform(4, 5.5), cort, trab * 0.8)
    if chest_view or rng.random() < 0.5:  # sternum
        st = np.array([[ant_x + post * 12, ys[1]], [ant_x + post * 5, ys[8]]])
        g.bone += tube(g, st, size * 7, cort, trab)
    if rng.random() < 0.7:  # scapula and shoulders over the upper spine
        sx = xs[3] + post * size * rng.uniform(20, 60)
        g.bone += shelled(g, sx, ys[4], size * 25, size * 70, 8, cort, trab, post * 0.2)
        g.soft += 0.4 * ellipsoid(g, xs[1], ys[0] - size * 20, size * 90, size * 60, 150)
        if rng.random() < 0.4:
            g.bone += shelled(g, xs[1] - post * 30, ys[0] - 10, 25, 25, 50, cort, trab)
    g.soft = np.maximum(g.soft, 0.0)
    marks = {
        "T7": g.to_px(float(xs[6]), float(ys[6])),
        "lung": g.to_px(float(xs[4] - post * (depths[4] / 2 + 45 * size)), float(ys[4])),
    }
    roi = g.roi_box(min(ant_x, xs.min()), ys[2], max(ant_x, xs.max() + post * 40), ys[-2])
    return Phantom(g.bone, g.soft, g.spacing, roi, float(rng.uniform(0, 1)), marks)


# -------------------------------------------------------------------------------------------
# Cervical spine


def cervical(rng: np.random.Generator) -> Phantom:
    """Lateral (65 %) or AP cervical spine."""
    trab, cort = _bmd(rng)
    size = float(rng.uniform(0.85, 1.15))
    n = 7
    heights = size * np.array([9, 14, 13, 13, 13, 14, 15]) * rng.uniform(0.93, 1.07, n)
    discs = size * rng.uniform(3.5, 6, n)
    ys = _stacked_centres(-size * 60, heights, discs)
    fov = _fov(rng, (150, 260), (200, 300))
    if rng.random() < 0.65:
        post = float(rng.choice([-1.0, 1.0]))
        lord = rng.uniform(-5, 25) * size
        t = (ys - ys[0]) / (ys[-1] - ys[0])
        xs = -post * lord * np.sin(math.pi * t)
        ang = np.arctan(np.gradient(xs, ys)) * -1.0
        g = Grid(
            rng,
            fov,
            (float(xs.mean() + rng.normal(0, 15)), float(ys[3] + rng.normal(0, 20))),
            _rot(rng, 4),
        )
        neck_w = size * rng.uniform(100, 140)
        ant = xs.mean() - post * size * rng.uniform(45, 60)
        g.soft += trunk(g, xs.mean() - post * 10, size * 65, neck_w)
        g.soft += trunk(g, 0, size * 220, size * 350) * np.clip(
            (g.y - ys[-1] - 10) / 30, 0, 1
        )  # shoulders
        air = np.array(
            [[ant + post * 8, ys[0] - 30], [ant + post * 14, ys[3]], [ant + post * 10, ys[-1] + 40]]
        )
        g.soft -= soft_tube(g, air, size * rng.uniform(6, 10)) * 2.0
        depths = size * np.array([8, 15, 15, 16, 16, 17, 17])
        lateral_spine(
            g, rng, xs, ys, ang, depths, heights, size * np.full(n, 20), trab, cort, post, 0.3
        )
        g.bone += tube(
            g,
            np.array([[xs[1] - post * 2, ys[1] - 8], [xs[1] - post * 4, ys[0] - 14]]),
            5 * size,
            cort,
            trab,
        )  # dens
        skull_y = ys[0] - size * rng.uniform(25, 40)
        g.bone += shelled(g, xs[0] + post * 40, skull_y - 70, 110 * size, 80 * size, 150, 4, 0.1)
        mand = np.array(
            [
                [xs[0] - post * 5, ys[0] - 30],
                [ant - post * 40, ys[1] + 10],
                [ant - post * 80, ys[1] + 5],
            ]
        )
        g.bone += tube(g, mand, size * 7, cort * 1.5, trab)
        if rng.random() < 0.7:
            g.bone += shelled(
                g, xs[-1] + post * 20, ys[-1] + 35, 60 * size, 25 * size, 50, cort, trab
            )
        roi = g.roi_box(ant, ys[0], xs.max() + 30, ys[-1])
    else:
        xs, _, ang = _spine_path(
            rng, n, ys[0] - heights[0] / 2, heights, discs, 0.0, rng.normal(0, 3)
        )
        g = Grid(
            rng, fov, (float(rng.normal(0, 12)), float(ys[3] + rng.normal(0, 20))), _rot(rng, 3)
        )
        g.soft += trunk(g, 0.0, size * 60, size * 110)
        g.soft += trunk(g, 0, size * 200, size * 200) * np.clip((g.y - ys[-1] - 10) / 30, 0, 1)
        g.soft -= (
            soft_tube(
                g,
                np.array([[0, ys[1]], [rng.normal(0, 3), ys[-1] + 60]]),
                size * rng.uniform(7, 10),
            )
            * 1.2
        )
        for i in range(1, n):
            frontal_vertebra(
                g,
                rng,
                xs[i],
                ys[i],
                size * (9 + i * 0.6),
                heights[i] / 2,
                ang[i],
                trab,
                cort,
                size * 5,
            )
        mand = _rib_arc(rng, 0, ys[0] - 15, 1, 50 * size, -20)
        g.bone += tube(
            g, np.concatenate([mand[::-1] * np.array([-1, 1]), mand]), size * 6, cort, trab
        )
        for s in (-1, 1):
            cl = np.array(
                [[s * 15, ys[-1] + 30], [s * 70 * size, ys[-1] + 15], [s * 130 * size, ys[-1] + 5]]
            )
            g.bone += tube(g, cl, size * 6, cort, trab)
        roi = g.roi_box(-40, ys[1], 40, ys[-1])
    return Phantom(g.bone, np.maximum(g.soft, 0.0), g.spacing, roi, float(rng.uniform(0, 0.7)))


# -------------------------------------------------------------------------------------------
# Pelvis and hip


def _hip(
    g: Grid,
    rng: np.random.Generator,
    s: float,
    size: float,
    trab: float,
    cort: float,
    marks: dict[str, tuple[float, float]],
    x0: float = 0.0,
    y0: float = 0.0,
) -> None:
    """One side (``s`` -1/+1) of the lower pelvis seen frontally, about the origin ``(x0, y0)``
    (the midline, 75 size-mm below the top of the sacrum): acetabulum, femoral head, neck,
    trochanters, shaft, pubic rami around the obturator foramen and the thigh's soft tissue."""
    # acetabulum, femoral head, neck, trochanters, shaft
    hx, hy = x0 + s * size * rng.uniform(85, 100), y0 + size * rng.uniform(35, 50)
    hr = size * rng.uniform(22, 27)
    marks["femoral_head_left" if s < 0 else "femoral_head_right"] = g.to_px(hx, hy)
    g.bone += 0.6 * tube(
        g,
        np.array(
            [
                [hx + s * hr * math.cos(t), hy - hr * math.sin(t) * 1.05]
                for t in np.linspace(-0.3, math.pi * 0.8, 10)
            ]
        ),
        4 * size,
        cort * 1.5,
        trab,
    )
    g.bone += shelled(g, hx, hy, hr, hr, 2 * hr, cort, trab)
    neck_end = np.array([hx + s * size * 45, hy + size * 35])
    g.bone += tube(g, np.array([[hx, hy], neck_end]), size * rng.uniform(14, 17), cort, trab)
    g.bone += shelled(g, hx + s * size * 55, hy + size * 25, size * 18, size * 25, 40, cort, trab)
    g.bone += shelled(g, hx + s * size * 30, hy + size * 70, size * 10, size * 10, 20, cort, trab)
    shaft = np.array([neck_end, [hx + s * size * 50, hy + size * 300]])
    g.bone += tube(g, shaft, size * rng.uniform(14, 17), size * rng.uniform(4, 7), 0.05)
    # pubic rami around the obturator foramen
    ox, oy = x0 + s * size * 45, y0 + size * 65
    ram = np.array(
        [
            [ox + s * size * 20 * math.cos(t), oy + size * 22 * math.sin(t)]
            for t in np.linspace(0, 2 * math.pi, 20)
        ]
    )
    g.bone += tube(g, ram, size * 7, cort, trab)
    g.soft += 0.15 * soft_tube(
        g, np.array([[hx + s * 40, hy + 40], [hx + s * 60, hy + 250]]), size * 60
    )


def pelvis_hip(rng: np.random.Generator) -> Phantom:
    """AP pelvis (70 %) or a single hip."""
    trab, cort = _bmd(rng)
    size = float(rng.uniform(0.88, 1.15))
    single = rng.random() < 0.3
    if single:
        side0 = float(rng.choice([-1.0, 1.0]))
        fov = _fov(rng, (180, 260), (200, 300))
        centre = (side0 * size * rng.uniform(70, 110), size * rng.uniform(40, 80))
    else:
        fov = _fov(rng, (330, 430), (250, 360))
        centre = (float(rng.normal(0, 12)), float(size * rng.uniform(0, 40)))
    g = Grid(rng, fov, centre, _rot(rng, 2.5))
    g.soft += trunk(g, 0.0, size * rng.uniform(170, 220), size * rng.uniform(190, 290))
    marks: dict[str, tuple[float, float]] = {"sacrum": g.to_px(0.0, -size * 40)}
    # L5 and sacrum
    frontal_vertebra(
        g, rng, 0.0, -size * 95, size * 26, size * 13, rng.normal(0, 0.04), trab, cort, size * 18
    )
    u, v = np.abs(g.x), g.y + size * 75
    shape = np.clip(1 - u / (size * 55 * (1 - 0.65 * np.clip(v / (110 * size), 0, 1))), 0, 1) * (
        (v > 0) & (v < 110 * size)
    )
    g.bone += (18 * trab + 4 * cort) * np.sqrt(shape).astype(np.float32)
    for k in range(4):
        for s in (-1, 1):
            g.bone -= 0.8 * ellipsoid(
                g, s * size * (25 - 3 * k), -size * 60 + 22 * k * size, 5, 4.5, 18 * trab + 3
            )
    for s in (-1, 1):
        # iliac wing: thin plate with a thick crest and the arcuate line
        icx, icy = s * size * rng.uniform(85, 105), -size * rng.uniform(45, 65)
        a, b = size * rng.uniform(60, 75), size * rng.uniform(55, 70)
        tilt = s * rng.uniform(0.3, 0.6)
        g.bone += shelled(g, icx, icy, a, b, 8, cort, trab, tilt)
        tt = np.linspace(0.2, math.pi - 0.2, 12)
        crest = np.stack([icx + a * np.cos(tt), icy - b * np.abs(np.sin(tt))], 1)
        g.bone += tube(g, crest, size * rng.uniform(5, 8), cort * 1.5, trab)
        brim = np.array(
            [[s * size * 35, -size * 40], [s * size * 70, -size * 5], [s * size * 75, size * 25]]
        )
        g.bone += tube(g, brim, size * 4, cort * 1.3, trab)
        _hip(g, rng, s, size, trab, cort, marks)
    g.soft -= np.minimum(
        _gas(rng, g, (-150 * size, -140 * size, 150 * size, 20 * size), int(rng.integers(0, 6))),
        0.3 * g.soft,
    )
    roi = g.roi_box(-150 * size, -100 * size, 150 * size, 120 * size)
    if single:
        roi = g.roi_box(centre[0] - 80, centre[1] - 80, centre[0] + 80, centre[1] + 80)
    return Phantom(g.bone, np.maximum(g.soft, 0.0), g.spacing, roi, float(rng.uniform(0, 1)), marks)


# -------------------------------------------------------------------------------------------
# Other body parts


def other_body_part(rng: np.random.Generator) -> Phantom:
    """A limb joint, a hand or foot, or a skull."""
    trab, cort = _bmd(rng)
    kind = str(rng.choice(["limb", "hand", "skull"], p=[0.45, 0.3, 0.25]))
    if kind == "limb":
        big = rng.random() < 0.5  # knee vs elbow / ankle scale
        r = rng.uniform(13, 18) if big else rng.uniform(7, 11)
        fov = _fov(rng, (r * 8, r * 16), (r * 14, r * 26))
        g = Grid(
            rng,
            fov,
            (float(rng.normal(0, r)), float(rng.normal(0, r * 2))),
            float(rng.uniform(-25, 25)),
        )
        g.soft += trunk(g, 0.0, r * rng.uniform(3.5, 5.0), r * rng.uniform(6, 9))
        gap = r * rng.uniform(0.3, 0.6)
        g.bone += tube(
            g, np.array([[0, -gap - r * 1.2], [rng.normal(0, 2), -r * 30]]), r, r * 0.3, 0.05
        )
        g.bone += shelled(g, 0, -gap - r * 0.9, r * 2.0, r * 1.0, r * 2.2, cort, trab)
        nb = int(rng.integers(1, 3))
        bend = rng.uniform(-0.5, 0.5)
        for k in range(nb):
            off = (k - (nb - 1) / 2) * r * 1.6
            p0 = np.array([off, gap + r])
            p1 = p0 + r * 30 * np.array([math.sin(bend), math.cos(bend)])
            rr = r * (0.95 if nb == 1 else 0.6)
            g.bone += tube(g, np.stack([p0, p1]), rr, rr * 0.3, 0.05)
            g.bone += shelled(g, off, gap + r * 0.8, rr * 1.7, rr * 0.9, rr * 2.0, cort, trab)
        if big and rng.random() < 0.6:  # patella
            g.bone += shelled(g, r * 2.2, 0, r * 0.6, r * 1.0, r * 1.5, cort, trab)
        roi = g.roi_box(-r * 3, -r * 4, r * 3, r * 4)
    elif kind == "hand":
        fov = _fov(rng, (120, 220), (160, 260))
        g = Grid(
            rng,
            fov,
            (float(rng.normal(0, 10)), float(rng.normal(0, 15))),
            float(rng.uniform(-20, 20)),
        )
        base = np.array([0.0, 60.0])
        for k in range(5):
            a = (k - 2) * rng.uniform(0.15, 0.28) + rng.normal(0, 0.04)
            dv = np.array([math.sin(a), -math.cos(a)])
            p = base + np.array([(k - 2) * 14.0, 0.0])
            segs = [48, 30, 20, 15] if k > 0 else [38, 28, 20]
            g.soft += soft_tube(g, np.stack([p, p + dv * sum(segs)]), 9.0)
            for sl in segs:
                q = p + dv * sl
                g.bone += tube(
                    g,
                    np.stack([p + dv * 2.5, q - dv * 2.5]),
                    float(rng.uniform(3.5, 5.0)),
                    1.5,
                    trab,
                )
                p = q
        for _ in range(8):
            cx, cy = base[0] + rng.normal(0, 12), base[1] + rng.normal(8, 7)
            g.bone += shelled(g, cx, cy, 6, 5, 12, cort, trab, float(rng.uniform(0, 3)))
        g.soft += ellipsoid(g, base[0], base[1] - 5, 45, 35, 30)
        roi = g.roi_box(-60, -120, 60, 80)
    else:
        fov = _fov(rng, (200, 280), (220, 300))
        g = Grid(rng, fov, (float(rng.normal(0, 10)), float(rng.normal(0, 10))), _rot(rng, 6))
        a, b = rng.uniform(80, 98), rng.uniform(95, 115)
        g.soft += ellipsoid(g, 0, 0, a + 6, b + 6, 2 * (a + 6))
        g.bone += shelled(g, 0, 0, a, b, 2 * a, float(rng.uniform(5, 8)), 0.0)
        face = rng.random() < 0.5
        if face:  # frontal: orbits, nasal cavity, mandible, teeth
            for s in (-1, 1):
                g.bone += 0.6 * (ring(g, s * 32, 25, 18, 16, 20, 3, 0.0))
                g.soft -= 40 * (ellipsoid(g, s * 32, 25, 16, 14, 1.0) > 0)
            g.soft -= 25 * (ellipsoid(g, 0, 55, 12, 20, 1.0) > 0)
        else:  # lateral: sella, facial bones, sinuses
            g.bone += shelled(g, -a * 0.55, b * 0.35, 30, 35, 60, 3, 0.2)
            g.soft -= 30 * (ellipsoid(g, -a * 0.6, b * 0.25, 18, 15, 1.0) > 0)
        mand = np.array(
            [
                [-a * 0.8 * math.cos(t), b * 0.85 + 30 * math.sin(t)]
                for t in np.linspace(0.2, math.pi - 0.2, 12)
            ]
        )
        g.bone += tube(g, mand, 8, 3, trab)
        for t in np.linspace(0.5, math.pi - 0.5, 12):
            g.bone += shelled(
                g, -a * 0.55 * math.cos(t), b * 0.8 + 10 * math.sin(t), 3, 6, 8, 1.0, 0.8
            )
        roi = g.roi_box(-a, -b, a, b)
    return Phantom(g.bone, np.maximum(g.soft, 0.0), g.spacing, roi, float(rng.uniform(0, 0.5)))


PHANTOMS = {
    "ap_lumbar": ap_lumbar,
    "chest": chest,
    "lateral_thoracic": lateral_thoracic,
    "cervical": cervical,
    "pelvis_hip": pelvis_hip,
    "other_body_part": other_body_part,
}
"""Phantom of each non-lateral radiograph class."""


# -------------------------------------------------------------------------------------------
# Imaging chains


def _trab_texture(rng: np.random.Generator, ph: Phantom) -> F32:
    """Bone map with trabecular texture (band-pass noise where the bone is)."""
    tex = texture(rng, ph.bone.shape, float(rng.uniform(0.6, 1.5)))
    return np.maximum(ph.bone * (1 + np.float32(rng.uniform(0.08, 0.2)) * tex), 0).astype(
        np.float32
    )


def chain_family_a(ph: Phantom, rng: np.random.Generator) -> F32:
    """Family A's chain (:mod:`aacscore.simulate.render`) of a phantom: display image in [0, 1]."""
    ip = chain_a.sample_imaging(rng, {}, ph.habitus)
    h, w = ph.bone.shape
    frame = Frame.make((h, w), ph.spacing_mm, (0.0, 0.0), 0.0)
    y0, y1, x0, x1 = ph.roi
    box = (float(x0), float(y0), float(x1 - 1), float(y1 - 1))
    lint = (
        np.float32(MU_SOFT_A) * ph.soft + np.float32(MU_BONE_A) * _trab_texture(rng, ph)
    ).astype(np.float32)
    sig, coll = chain_a.expose(lint, np.zeros_like(lint), 1, frame, ip, box, rng)
    img = chain_a.process(sig, coll, ip, ph.spacing_mm, box)
    chain_a.overlays(img, ip, box, rng, bool(rng.random() < 0.5))
    return chain_a.quantise(img, int(ip["bits_stored"]), str(ip["photometric"]))[1]


def chain_family_b(ph: Phantom, rng: np.random.Generator) -> F32:
    """Family B's chain (:mod:`aacscore.simulate.family_b.render`) of a phantom: display image in
    [0, 1]."""
    p = chain_b.sample_chain(rng, ph.habitus, {})
    y0, y1, x0, x1 = ph.roi
    sp = ph.spacing_mm
    coll = chain_b.collimation(ph.bone.shape, p, ph.roi, sp)
    spine = ((y0 + y1) // 2, (x0 + x1) // 2)
    logs = chain_b.expose(_trab_texture(rng, ph), ph.soft, p, sp, spine, coll, rng)
    img = chain_b.process(logs, p, sp, ph.roi)
    if p["shutter"] == "black":
        img = img * coll
    elif p["shutter"] == "white":
        img = img * coll + (1 - coll)
    chain_b.burn_in(img, p, ph.roi, sp, rng)
    return chain_b.quantise(img, int(p["bits_stored"]), str(p["photometric"]))[1]


def radiograph(ph: Phantom, rng: np.random.Generator, family: str | None = None) -> F32:
    """The displayed film (bone bright, float32 in [0, 1]) of a phantom through family ``"a"``
    or ``"b"``'s imaging chain (None: either, at random)."""
    fam = family if family is not None else str(rng.choice(["a", "b"]))
    if fam not in ("a", "b"):
        raise ValueError(f"unknown simulator family {fam!r}; expected 'a' or 'b'")
    out = chain_family_a(ph, rng) if fam == "a" else chain_family_b(ph, rng)
    return np.clip(out, 0, 1).astype(np.float32)


def render_class(cls: str, rng: np.random.Generator, family: str | None = None) -> F32:
    """A film of non-lateral class ``cls`` (see :data:`PHANTOMS`)."""
    if cls not in PHANTOMS:
        raise ValueError(f"no phantom for class {cls!r}; expected one of {sorted(PHANTOMS)}")
    return radiograph(PHANTOMS[cls](rng), rng, family)


__all__: list[str] = [
    "PHANTOMS",
    "Grid",
    "Phantom",
    "ap_lumbar",
    "cervical",
    "chest",
    "chest_pa",
    "lateral_chest",
    "lateral_thoracic",
    "other_body_part",
    "pelvis_hip",
    "radiograph",
    "render_class",
]
