"""Procedural images of every class of the view classifier (:mod:`aacscore.gate.view`).

We have no labelled real films, so the input gate learns from images we draw ourselves:

* ``lateral_lumbar``: the simulator's own films (:func:`aacscore.simulate.case.simulate_case`,
  rendered coarse), whole or cropped so that L1-L4 with the T12/L1 and L4/L5 discs stay on the
  film;
* ``lumbar_spot``: crops of the same films keeping only L4-S1 or only T12-L2 (from the
  simulated vertebra corners);
* ``ap_lumbar``, ``chest`` (PA and lateral), ``lateral_thoracic``, ``cervical`` (lateral and
  AP), ``pelvis_hip``, ``other_body_part`` (limbs, hands/feet, skull): radiograph-like drawings
  built from a few primitives (bones as soft-edged shapes with a bright cortex, dark lungs and
  bowel gas, soft-tissue envelopes, low-frequency texture);
* ``not_radiograph`` (:mod:`.nonradiographs`): photographs, textures, gradients, drawings,
  screenshots, label maps and aacscore-style overlays.

Every radiograph goes through :func:`style` (gamma, window, inversion, noise, blur, rotation,
partial crops, vignetting, grid lines, collimation borders, burned-in markers) so that the class
cannot be told from the rendering style. Image ``index`` of class ``c`` and seed ``seed`` draws
from ``default_rng(SeedSequence([seed, c, index]))``: deterministic whatever the number of jobs.

Not modelled: real anatomy variation beyond a few parameters, implants, contrast media,
pathology, paediatric films, CT/MR scout images.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from aacscore.simulate.case import SimulatedCase, simulate_case
from aacscore.simulate.geometry import F32
from aacscore.simulate.nonradiographs import font, not_radiograph

VIEW_CLASSES: tuple[str, ...] = (
    "lateral_lumbar",
    "ap_lumbar",
    "chest",
    "lateral_thoracic",
    "cervical",
    "pelvis_hip",
    "lumbar_spot",
    "other_body_part",
    "not_radiograph",
)
"""Class names in label order (the same order as :class:`aacscore.gate.view.ViewClass`)."""

SIM_SPACING_MM: tuple[float, float] = (0.8, 1.6)
"""Pixel spacing range of the simulated lateral films (coarse: the classifier sees ~128 px)."""

_TEXTS = ("L", "R", "LAT", "AP", "PA", "SUPINE", "ERECT", "STANDING", "PORTABLE", "LT", "RT")


def rng_for(seed: int, cls: int, index: int) -> np.random.Generator:
    """The random generator of image ``index`` of class number ``cls``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(cls), int(index)]))


# -------------------------------------------------------------------------------------------
# Primitives (pixel coordinates, values: attenuation, bone bright)


def _canvas(rng: np.random.Generator, aspect: tuple[float, float]) -> tuple[F32, F32]:
    """Coordinate grids ``(x, y)`` of a canvas with a random size and aspect (h / w)."""
    long_side = int(rng.integers(150, 281))
    a = float(np.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1]))))
    h, w = (
        (long_side, max(48, round(long_side / a)))
        if a >= 1
        else (max(48, round(long_side * a)), long_side)
    )
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return x, y


def _rot(x: F32, y: F32, cx: float, cy: float, ang: float) -> tuple[F32, F32]:
    c, s = math.cos(ang), math.sin(ang)
    dx, dy = x - cx, y - cy
    return dx * c + dy * s, -dx * s + dy * c


def _soft(d: F32, soft: float = 1.0) -> F32:
    """Inside (1) / outside (0) of a signed distance, with an edge ``soft`` px wide."""
    return np.clip(0.5 - d / max(soft, 1e-3), 0.0, 1.0).astype(np.float32)


def _ellipse_sdf(
    x: F32, y: F32, cx: float, cy: float, rx: float, ry: float, ang: float = 0.0
) -> F32:
    u, v = _rot(x, y, cx, cy, ang)
    r = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    return ((r - 1.0) * min(rx, ry)).astype(np.float32)


def _box_sdf(
    x: F32, y: F32, cx: float, cy: float, hw: float, hh: float, r: float, ang: float = 0.0
) -> F32:
    u, v = _rot(x, y, cx, cy, ang)
    r = min(r, hw, hh)
    qx, qy = np.abs(u) - hw + r, np.abs(v) - hh + r
    out = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2) + np.minimum(
        np.maximum(qx, qy), 0
    )
    return (out - r).astype(np.float32)


def _polyline_dist(x: F32, y: F32, pts: np.ndarray) -> F32:
    """Distance of every pixel to a polyline ``(n, 2)``."""
    best = np.full(x.shape, np.inf, dtype=np.float32)
    for (ax, ay), (bx, by) in itertools.pairwise(pts):
        vx, vy = bx - ax, by - ay
        ll = vx * vx + vy * vy
        t = np.clip(((x - ax) * vx + (y - ay) * vy) / max(ll, 1e-6), 0.0, 1.0)
        d = np.hypot(x - ax - t * vx, y - ay - t * vy)
        np.minimum(best, d, out=best)
    return best


def _bone(sdf: F32, interior: float | F32, cortex: float, thick: float, soft: float = 1.0) -> F32:
    """A bone: soft-edged interior plus a bright cortical rim ``thick`` px wide."""
    inside = _soft(sdf, soft)
    rim = inside * np.exp(-(((sdf + thick * 0.5) / max(thick, 0.5)) ** 2))
    return (interior * inside + cortex * rim).astype(np.float32)


def _tube(x: F32, y: F32, pts: np.ndarray, radius: float, interior: float, cortex: float) -> F32:
    """A tubular bone (rib, clavicle, long bone): bright cortices, darker medulla."""
    out = np.zeros(x.shape, np.float32)
    pad = radius + 3.0
    h, w = x.shape
    c0, c1 = max(0, int(pts[:, 0].min() - pad)), min(w, int(pts[:, 0].max() + pad) + 1)
    r0, r1 = max(0, int(pts[:, 1].min() - pad)), min(h, int(pts[:, 1].max() + pad) + 1)
    if c1 <= c0 or r1 <= r0:
        return out
    xs, ys = x[r0:r1, c0:c1], y[r0:r1, c0:c1]
    sdf = _polyline_dist(xs, ys, pts) - radius
    out[r0:r1, c0:c1] = _bone(sdf, interior, cortex, max(1.0, radius * 0.3))
    return out


def _arc(
    c: tuple[float, float], rx: float, ry: float, a0: float, a1: float, n: int = 16
) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.stack([c[0] + rx * np.cos(t), c[1] + ry * np.sin(t)], axis=1)


def _texture(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> F32:
    n = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return (n / (float(n.std()) + 1e-6)).astype(np.float32)


def _trunk(rng: np.random.Generator, x: F32, y: F32, width_frac: tuple[float, float]) -> F32:
    """Soft-tissue envelope of the trunk: a wide vertical slab with rounded flanks."""
    w = x.shape[1]
    half = w * rng.uniform(*width_frac) / 2
    cx = w / 2 + rng.normal(0, 0.04) * w
    d = np.abs(x - cx) - half
    body = _soft(d, w * 0.03)
    thick = np.sqrt(np.clip(1 - ((x - cx) / (half + 1e-3)) ** 2, 0, 1))
    return (body * (0.25 + 0.2 * thick) * rng.uniform(0.8, 1.2)).astype(np.float32)


def _gas(
    rng: np.random.Generator, x: F32, y: F32, box: tuple[float, float, float, float], n: int
) -> F32:
    """Bowel gas: dark irregular blobs (negative attenuation) inside ``box``."""
    out = np.zeros(x.shape, np.float32)
    x0, y0, x1, y1 = box
    for _ in range(n):
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        r = rng.uniform(0.02, 0.06) * x.shape[1]
        out += _soft(
            _ellipse_sdf(x, y, cx, cy, r, r * rng.uniform(0.5, 1.2), rng.uniform(0, 3.14)), 2.0
        )
    return -np.clip(out, 0, 1) * rng.uniform(0.08, 0.2)


def _vertebra_column(
    rng: np.random.Generator,
    x: F32,
    y: F32,
    centres: np.ndarray,
    widths: np.ndarray,
    heights: np.ndarray,
    angles: np.ndarray,
    lateral: bool,
    posterior_dir: float = 1.0,
) -> F32:
    """Stacked vertebral bodies (lateral: with pedicles/spinous processes behind them)."""
    out = np.zeros(x.shape, np.float32)
    interior = rng.uniform(0.25, 0.45)
    cortex = rng.uniform(0.2, 0.45)
    for (cx, cy), bw, bh, a in zip(centres, widths, heights, angles, strict=True):
        out += _bone(
            _box_sdf(x, y, cx, cy, bw / 2, bh / 2, bh * rng.uniform(0.1, 0.3), a),
            interior,
            cortex,
            max(1.0, bw * 0.06),
        )
        if lateral:
            px = cx + posterior_dir * bw * rng.uniform(0.75, 0.95)
            out += 0.6 * _bone(
                _ellipse_sdf(x, y, px, cy - bh * 0.1, bw * 0.3, bh * 0.35, a), interior, cortex, 1.0
            )
            sx = cx + posterior_dir * bw * rng.uniform(1.3, 1.6)
            out += 0.5 * _bone(
                _box_sdf(
                    x, y, sx, cy + bh * 0.15, bw * 0.35, bh * 0.18, 2.0, a + posterior_dir * 0.3
                ),
                interior,
                cortex,
                1.0,
            )
    return out


def _ribs(
    rng: np.random.Generator,
    x: F32,
    y: F32,
    origin_x: float,
    ys: np.ndarray,
    span: float,
    side: float,
    radius: float,
    droop: float,
) -> F32:
    """Posterior ribs: arcs leaving the spine at ``origin_x`` towards ``side`` (+1 / -1)."""
    out = np.zeros(x.shape, np.float32)
    val = rng.uniform(0.08, 0.2)
    for y0 in ys:
        t = np.linspace(0, 1, 12)
        px = origin_x + side * span * np.sin(t * math.pi * 0.55) / math.sin(math.pi * 0.55)
        py = y0 - span * 0.15 * np.sin(t * math.pi * 0.6) + droop * t**2
        out += _tube(x, y, np.stack([px, py], 1), radius, val * 0.6, val)
    return out


# -------------------------------------------------------------------------------------------
# Radiograph classes (each returns attenuation-like values, roughly in [0, 1.5])


def ap_lumbar(rng: np.random.Generator) -> F32:
    """Frontal lumbar spine: wide bodies, oval pedicles, spinous and transverse processes,
    psoas shadows, lowest ribs, iliac wings and sacrum, bowel gas."""
    x, y = _canvas(rng, (1.0, 1.5))
    h, w = x.shape
    img = _trunk(rng, x, y, (0.85, 1.4))
    cx0 = w / 2 + rng.normal(0, 0.05) * w
    bend = rng.normal(0, 0.04) * w
    n = 5
    top = h * rng.uniform(-0.05, 0.15)
    bh = (h * rng.uniform(0.6, 0.85) - top) / n * 0.75
    ys = top + np.arange(n) * bh / 0.75 + bh / 2
    xs = cx0 + bend * np.sin(np.linspace(0, math.pi, n))
    bw = np.linspace(1.4, 1.75, n) * bh * rng.uniform(1.0, 1.3)
    ang = rng.normal(0, 0.05, n)
    interior, cortex = rng.uniform(0.25, 0.4), rng.uniform(0.2, 0.4)
    # psoas shadows
    for s in (-1, 1):
        pts = np.array([[xs[0] + s * bw[0] * 0.5, ys[0]], [xs[-1] + s * bw[-1] * 1.3, ys[-1] + bh]])
        img += 0.06 * _soft(_polyline_dist(x, y, pts) - bw[0] * 0.35, 4.0)
    for i in range(n):
        cx, cy, a = float(xs[i]), float(ys[i]), float(ang[i])
        img += _bone(
            _box_sdf(x, y, cx, cy, bw[i] / 2, bh / 2, bh * 0.25, a),
            interior,
            cortex,
            max(1.0, bh * 0.08),
        )
        for s in (-1, 1):  # pedicles: bright oval rings
            sdf = _ellipse_sdf(x, y, cx + s * bw[i] * 0.3, cy - bh * 0.15, bw[i] * 0.08, bh * 0.2)
            img += _bone(sdf, 0.05, cortex * 1.2, 1.5)
            tl = bw[i] * (0.45 if i != 2 else 0.6) * rng.uniform(0.8, 1.2)  # transverse processes
            img += _tube(
                x,
                y,
                np.array(
                    [[cx + s * bw[i] * 0.45, cy], [cx + s * (bw[i] * 0.45 + tl), cy - bh * 0.1]]
                ),
                bh * 0.1,
                interior * 0.6,
                cortex * 0.6,
            )
        img += _bone(
            _ellipse_sdf(x, y, cx, cy + bh * 0.25, bw[i] * 0.06, bh * 0.3), 0.1, cortex, 1.2
        )
    if rng.random() < 0.8:  # lowest ribs
        for s in (-1, 1):
            pts = _arc(
                (float(xs[0]) + s * bw[0] * 0.3, float(ys[0]) - bh * 1.3),
                w * 0.3,
                h * 0.15,
                0.0,
                1.2,
                10,
            )
            pts[:, 0] = 2 * pts[0, 0] - pts[:, 0] if s < 0 else pts[:, 0]
            img += _tube(x, y, pts, bh * 0.12, 0.1, 0.18)
    yb = float(ys[-1] + bh * 0.9)
    # sacrum (inverted triangle) and iliac wings
    sac = np.array(
        [[xs[-1] - bw[-1] * 0.6, yb], [xs[-1] + bw[-1] * 0.6, yb], [xs[-1], yb + bh * 3.0]]
    )
    img += 0.7 * _bone(_poly_sdf(x, y, sac), interior, cortex, 2.0)
    for s in (-1, 1):
        icx = float(xs[-1]) + s * bw[-1] * rng.uniform(1.3, 1.7)
        sdf = _ellipse_sdf(
            x,
            y,
            icx,
            yb + bh * 1.3,
            bw[-1] * rng.uniform(0.9, 1.3),
            bh * 1.5,
            s * rng.uniform(0.3, 0.6),
        )
        img += _bone(sdf, interior * 0.7, cortex * 1.3, 2.5)
    img += _gas(rng, x, y, (w * 0.15, h * 0.3, w * 0.85, h), int(rng.integers(0, 8)))
    return img


def _poly_sdf(x: F32, y: F32, poly: np.ndarray) -> F32:
    """Signed distance (approximate outside the corners) to a convex polygon."""
    c = poly.mean(axis=0)
    out = np.full(x.shape, -np.inf, dtype=np.float32)
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        nx, ny = b[1] - a[1], a[0] - b[0]
        norm = math.hypot(nx, ny) or 1.0
        nx, ny = nx / norm, ny / norm
        if (c[0] - a[0]) * nx + (c[1] - a[1]) * ny > 0:
            nx, ny = -nx, -ny
        np.maximum(out, (x - a[0]) * nx + (y - a[1]) * ny, out=out)
    return out


def chest(rng: np.random.Generator) -> F32:
    """PA/AP chest (lungs, ribs, heart, mediastinum, clavicles, diaphragm, shoulders) or a
    lateral chest."""
    if rng.random() < 0.3:
        return _lateral_chest(rng)
    x, y = _canvas(rng, (0.8, 1.3))
    h, w = x.shape
    img = _trunk(rng, x, y, (0.85, 1.3))
    cx = w / 2 + rng.normal(0, 0.03) * w
    top, bot = h * rng.uniform(0.05, 0.2), h * rng.uniform(0.7, 0.95)
    lung = np.zeros(x.shape, np.float32)
    for s in (-1, 1):
        lx = cx + s * w * rng.uniform(0.17, 0.24)
        lung = np.maximum(
            lung,
            _soft(
                _ellipse_sdf(
                    x,
                    y,
                    lx,
                    (top + bot) / 2,
                    w * rng.uniform(0.13, 0.19),
                    (bot - top) / 2,
                    s * 0.08,
                ),
                w * 0.02,
            ),
        )
    heart = _soft(
        _ellipse_sdf(
            x,
            y,
            cx + w * rng.uniform(0.0, 0.08),
            bot - h * 0.15,
            w * rng.uniform(0.12, 0.18),
            h * rng.uniform(0.1, 0.15),
            0.4,
        ),
        3.0,
    )
    media = _soft(np.abs(x - cx) - w * rng.uniform(0.04, 0.07), 3.0) * (y > top - h * 0.1)
    lung = lung * (1 - np.maximum(heart, media))
    img = img - lung * rng.uniform(0.15, 0.25)
    img += 0.1 * heart + 0.08 * media
    ys = np.linspace(top, bot - h * 0.1, int(rng.integers(8, 11)))
    for s in (-1, 1):
        img += _ribs(
            rng, x, y, cx + s * w * 0.03, ys, w * rng.uniform(0.25, 0.33), s, h * 0.012, h * 0.08
        )
    img += (
        _vertebra_column(
            rng,
            x,
            y,
            np.stack([np.full(12, cx), np.linspace(top - h * 0.1, bot, 12)], 1),
            np.full(12, w * 0.07),
            np.full(12, (bot - top) / 14),
            np.zeros(12),
            False,
        )
        * 0.3
    )
    for s in (-1, 1):  # clavicles and shoulders
        img += _tube(
            x,
            y,
            np.array(
                [
                    [cx + s * w * 0.04, top + h * 0.02],
                    [cx + s * w * 0.2, top - h * 0.01],
                    [cx + s * w * 0.34, top - h * 0.04],
                ]
            ),
            h * 0.014,
            0.15,
            0.3,
        )
        img += _bone(
            _ellipse_sdf(
                x, y, cx + s * w * rng.uniform(0.4, 0.46), top + h * 0.02, w * 0.06, w * 0.065
            ),
            0.3,
            0.3,
            2.0,
        )
    return img


def _lateral_chest(rng: np.random.Generator) -> F32:
    x, y = _canvas(rng, (0.9, 1.3))
    h, w = x.shape
    img = _trunk(rng, x, y, (0.8, 1.2))
    cx = w / 2
    d = 1.0 if rng.random() < 0.5 else -1.0
    lung = _soft(
        _ellipse_sdf(x, y, cx, h * 0.5, w * rng.uniform(0.28, 0.36), h * rng.uniform(0.3, 0.38)),
        w * 0.03,
    )
    heart = _soft(_ellipse_sdf(x, y, cx - d * w * 0.12, h * 0.62, w * 0.15, h * 0.14), 4.0)
    img -= lung * (1 - heart) * rng.uniform(0.15, 0.25)
    n = 10
    ys = np.linspace(h * 0.15, h * 0.85, n)
    xs = cx + d * w * 0.28 + np.sin(np.linspace(0, math.pi, n)) * d * w * 0.04
    img += _vertebra_column(
        rng,
        x,
        y,
        np.stack([xs, ys], 1),
        np.full(n, w * 0.1),
        np.full(n, h * 0.055),
        np.zeros(n),
        True,
        d,
    )
    for y0 in np.linspace(h * 0.12, h * 0.8, 10):
        img += _tube(
            x, y, _arc((cx, y0 + h * 0.2), w * 0.35, h * 0.2, -2.6, -0.5, 12), h * 0.01, 0.05, 0.12
        )
    return img


def lateral_thoracic(rng: np.random.Generator) -> F32:
    """Lateral thoracic spine: smaller stacked bodies on a kyphotic curve, overlapping ribs, dark
    lungs, the diaphragm; sometimes the thoraco-lumbar junction at the bottom."""
    x, y = _canvas(rng, (1.1, 1.8))
    h, w = x.shape
    img = _trunk(rng, x, y, (0.9, 1.4))
    d = 1.0 if rng.random() < 0.5 else -1.0  # posterior direction
    n = int(rng.integers(8, 12))
    bh = h / (n + 1) * rng.uniform(0.65, 0.8)
    ys = np.linspace(bh, h - bh * rng.uniform(0.5, 2.0), n)
    kyph = rng.uniform(0.05, 0.12) * w
    xs = w / 2 + d * w * rng.uniform(0.0, 0.15) + d * kyph * np.sin(np.linspace(0, math.pi, n))
    ang = d * np.linspace(0.25, -0.25, n) * rng.uniform(0.5, 1.2)
    bw = np.full(n, bh * rng.uniform(1.1, 1.4))
    dia = h * rng.uniform(0.6, 1.05)
    lung_c = w / 2 - d * w * 0.05
    lung = _soft(_ellipse_sdf(x, y, lung_c, dia - h * 0.45, w * 0.45, h * 0.5), w * 0.05)
    img -= lung * rng.uniform(0.1, 0.22)
    img += _vertebra_column(rng, x, y, np.stack([xs, ys], 1), bw, np.full(n, bh), ang, True, d)
    for y0 in np.linspace(-h * 0.05, dia - h * 0.1, int(rng.integers(8, 13))):
        for side in (0.0, rng.uniform(0.02, 0.06)):  # left and right ribs do not superimpose
            img += _tube(
                x,
                y,
                _arc(
                    (w / 2 - d * w * 0.1, y0 + h * 0.2 + side * h),
                    w * 0.6,
                    h * 0.22,
                    -2.7,
                    -0.4,
                    12,
                ),
                h * 0.008,
                0.04,
                0.1,
            )
    return img


def cervical(rng: np.random.Generator) -> F32:
    """Cervical spine, lateral (small bodies, skull base, mandible, airway) or AP."""
    x, y = _canvas(rng, (1.0, 1.5))
    h, w = x.shape
    d = 1.0 if rng.random() < 0.5 else -1.0
    lateral = rng.random() < 0.7
    neck_c = w / 2 + rng.normal(0, 0.04) * w
    neck = _soft(np.abs(x - neck_c) - w * rng.uniform(0.22, 0.34), 5.0) * (
        0.3 + 0.05 * _texture(rng, x.shape, 6)
    )
    shoulders = _soft(_ellipse_sdf(x, y, neck_c, h * 1.15, w * 0.9, h * 0.3), 8.0) * 0.25
    img = np.maximum(neck, shoulders)
    n = 6
    bh = h * rng.uniform(0.07, 0.09)
    ys = h * 0.32 + np.arange(n) * bh * 1.35
    xs = (
        neck_c + d * w * 0.05 - d * w * rng.uniform(0.02, 0.07) * np.sin(np.linspace(0, math.pi, n))
    )
    if lateral:
        img += _vertebra_column(
            rng,
            x,
            y,
            np.stack([xs, ys], 1),
            np.full(n, bh * 1.2),
            np.full(n, bh),
            np.zeros(n),
            True,
            d,
        )
        img -= (
            0.15 * _soft(np.abs(x - (neck_c - d * w * 0.15)) - w * 0.03, 3.0) * (y > h * 0.3)
        )  # airway
        img += _bone(
            _ellipse_sdf(x, y, neck_c + d * w * 0.1, h * 0.05, w * 0.45, h * 0.22), 0.3, 0.4, 4.0
        )  # skull base
        img += _tube(
            x,
            y,
            np.array(
                [
                    [neck_c + d * w * 0.02, h * 0.08],
                    [neck_c - d * w * 0.05, h * 0.3],
                    [neck_c - d * w * 0.35, h * 0.33],
                ]
            ),
            h * 0.025,
            0.2,
            0.4,
        )
    else:
        img += _vertebra_column(
            rng,
            x,
            y,
            np.stack([np.full(n, neck_c), ys], 1),
            np.full(n, bh * 1.8),
            np.full(n, bh),
            np.zeros(n),
            False,
        )
        img -= 0.12 * _soft(np.abs(x - neck_c) - w * 0.035, 3.0) * (y > h * 0.3)  # trachea
        img += _tube(
            x,
            y,
            _arc((neck_c, h * 0.05), w * 0.3, h * 0.2, 0.2, math.pi - 0.2),
            h * 0.03,
            0.25,
            0.4,
        )
        for s in (-1, 1):
            img += _tube(
                x,
                y,
                np.array([[neck_c + s * w * 0.05, h * 0.9], [neck_c + s * w * 0.45, h * 0.85]]),
                h * 0.02,
                0.15,
                0.3,
            )
    return img


def pelvis_hip(rng: np.random.Generator) -> F32:
    """AP pelvis (iliac wings, pelvic ring, sacrum, obturator foramina, femoral heads, necks and
    shafts) or a single hip."""
    single = rng.random() < 0.3
    x, y = _canvas(rng, (0.6, 1.0) if not single else (0.9, 1.4))
    h, w = x.shape
    img = _trunk(rng, x, y, (1.0, 1.4))
    scale = w * (rng.uniform(0.9, 1.2) if not single else rng.uniform(1.6, 2.2))
    cx = w / 2 + (rng.normal(0, 0.03) * w if not single else rng.choice([-1, 1]) * scale * 0.3)
    cy = h * rng.uniform(0.35, 0.55)
    interior, cortex = rng.uniform(0.2, 0.35), rng.uniform(0.25, 0.45)
    sac = np.array(
        [
            [cx - scale * 0.1, cy - scale * 0.25],
            [cx + scale * 0.1, cy - scale * 0.25],
            [cx, cy + scale * 0.05],
        ]
    )
    img += 0.8 * _bone(_poly_sdf(x, y, sac), interior, cortex, 2.0)
    for s in (-1, 1):
        img += _bone(
            _ellipse_sdf(
                x, y, cx + s * scale * 0.25, cy - scale * 0.2, scale * 0.17, scale * 0.14, s * 0.5
            ),
            interior * 0.8,
            cortex,
            2.5,
        )
        img += _tube(
            x,
            y,
            _arc((cx, cy + scale * 0.02), scale * 0.22, scale * 0.2, 0.1, math.pi - 0.1, 20),
            scale * 0.015,
            0.1,
            cortex,
        )
        obt = _ellipse_sdf(
            x, y, cx + s * scale * 0.11, cy + scale * 0.2, scale * 0.06, scale * 0.045, s * 0.4
        )
        img += _bone(obt + scale * 0.02, interior, cortex, 2.0) - _soft(obt, 1.5) * interior
        hx, hy = cx + s * scale * 0.27, cy + scale * 0.08
        img += _bone(
            _ellipse_sdf(x, y, hx, hy, scale * 0.065, scale * 0.065), interior, cortex, 2.0
        )
        img += _tube(
            x,
            y,
            np.array(
                [
                    [hx, hy],
                    [hx + s * scale * 0.08, hy + scale * 0.1],
                    [hx + s * scale * 0.06, hy + scale * 0.6],
                ]
            ),
            scale * 0.045,
            interior,
            cortex,
        )
        img += _bone(
            _ellipse_sdf(
                x, y, hx + s * scale * 0.1, hy + scale * 0.08, scale * 0.035, scale * 0.05
            ),
            interior,
            cortex,
            1.5,
        )
    img += _gas(rng, x, y, (cx - scale * 0.3, 0, cx + scale * 0.3, cy), int(rng.integers(0, 5)))
    return img


def other_body_part(rng: np.random.Generator) -> F32:
    """Limbs (long bones with a joint), hands or feet (many small bones), or a skull."""
    kind = rng.choice(["limb", "hand", "skull"], p=[0.45, 0.35, 0.2])
    if kind == "limb":
        x, y = _canvas(rng, (0.5, 2.0))
        h, w = x.shape
        ang = rng.uniform(-0.5, 0.5)
        ln = max(h, w)
        r = ln * rng.uniform(0.035, 0.07)
        cx, cy = w / 2, h / 2
        soft = _soft(_box_sdf(x, y, cx, cy, r * rng.uniform(2.5, 4.0), ln, r, ang), 6.0) * 0.3
        img = soft.copy()
        jy = rng.uniform(-0.2, 0.2) * ln
        dv = np.array([math.sin(ang), math.cos(ang)]) * (-1)
        j = np.array([cx, cy]) + dv * jy
        bend = rng.uniform(-0.6, 0.6)
        dv2 = np.array([math.sin(ang + bend), math.cos(ang + bend)])
        img += _tube(x, y, np.stack([j - dv * (r * 1.2), j - dv * ln]), r, 0.15, 0.45)
        jc = j - dv * r * 1.2
        img += _bone(
            _ellipse_sdf(x, y, float(jc[0]), float(jc[1]), r * 1.6, r * 1.1, -ang), 0.3, 0.3, 2.0
        )
        nb = int(rng.integers(1, 3))
        for k in range(nb):
            off = np.array([dv2[1], -dv2[0]]) * r * 1.1 * (k - (nb - 1) / 2)
            img += _tube(
                x,
                y,
                np.stack([j + dv2 * r * 1.2 + off, j + dv2 * ln + off]),
                r * (0.9 if nb == 1 else 0.55),
                0.15,
                0.45,
            )
        return img
    if kind == "hand":
        x, y = _canvas(rng, (0.8, 1.4))
        h, w = x.shape
        img = np.zeros(x.shape, np.float32)
        base = np.array([w * 0.5, h * 0.85])
        r = min(h, w) * 0.022
        for k in range(5):
            a = (k - 2) * rng.uniform(0.2, 0.3) + rng.normal(0, 0.05)
            dv = np.array([math.sin(a), -math.cos(a)])
            p = base + np.array([(k - 2) * r * 3, 0])
            segs = [0.28, 0.18, 0.12, 0.09] if k > 0 else [0.2, 0.15, 0.1]
            tissue = (
                _soft(_polyline_dist(x, y, np.stack([p, p + dv * h * sum(segs)])) - r * 2.2, 3.0)
                * 0.25
            )
            img = np.maximum(img, tissue)
            for sl in segs:
                q = p + dv * h * sl
                img += _tube(x, y, np.stack([p + dv * r, q - dv * r]), r, 0.2, 0.4)
                p = q
        for _ in range(8):  # carpals
            img += _bone(
                _ellipse_sdf(
                    x,
                    y,
                    base[0] + rng.normal(0, r * 3),
                    base[1] + rng.normal(r * 2, r * 2),
                    r * 1.5,
                    r * 1.2,
                    rng.uniform(0, 3),
                ),
                0.25,
                0.3,
                1.5,
            )
        img += np.maximum(
            0, _soft(_ellipse_sdf(x, y, base[0], base[1], r * 9, r * 7), 4.0) * 0.25 - img * 0
        )
        return img
    x, y = _canvas(rng, (0.8, 1.25))
    h, w = x.shape
    cx, cy = w / 2, h * 0.45
    rx, ry = w * rng.uniform(0.35, 0.45), h * rng.uniform(0.35, 0.45)
    sdf = _ellipse_sdf(x, y, cx, cy, rx, ry)
    img = _bone(sdf, 0.25 + 0.03 * _texture(rng, x.shape, 3), 0.5, max(2.0, rx * 0.07))
    lateral = rng.random() < 0.5
    if lateral:
        img += _bone(
            _ellipse_sdf(x, y, cx - rx * 0.1, cy + ry * 0.3, rx * 0.35, ry * 0.15), 0.3, 0.3, 2.0
        )
    else:
        for s in (-1, 1):
            img -= 0.12 * _soft(
                _ellipse_sdf(x, y, cx + s * rx * 0.35, cy + ry * 0.2, rx * 0.18, ry * 0.15), 2.0
            )
    img += _tube(
        x,
        y,
        _arc((cx, cy + ry * 0.7), rx * 0.6, ry * 0.4, 0.3, math.pi - 0.3, 12),
        ry * 0.05,
        0.2,
        0.45,
    )
    for t in np.linspace(0.6, math.pi - 0.6, 12):  # teeth
        img += _bone(
            _ellipse_sdf(
                x,
                y,
                cx + rx * 0.5 * math.cos(t),
                cy + ry * 0.75 + ry * 0.3 * math.sin(t) * 0.3,
                rx * 0.03,
                ry * 0.05,
            ),
            0.5,
            0.3,
            1.0,
        )
    return img


# -------------------------------------------------------------------------------------------
# Style randomisation (every radiograph class)


def burn_text(img: F32, rng: np.random.Generator, n: int) -> F32:
    """Burn ``n`` markers/labels ("L", "R", dates, view names) into an image in [0, 1]."""
    h, w = img.shape
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(n):
        if rng.random() < 0.3:
            text = f"20{rng.integers(10, 27)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        else:
            text = str(rng.choice(_TEXTS))
        size = int(min(h, w) * rng.uniform(0.04, 0.1))
        fx, fy = (
            rng.choice([0.03, 0.75]) + rng.uniform(0, 0.15),
            rng.choice([0.03, 0.85]) + rng.uniform(0, 0.08),
        )
        draw.text((fx * w, fy * h), text, fill=int(rng.choice([255, 230, 0])), font=font(size))
    return (np.asarray(pil, dtype=np.float32) / 255.0).astype(np.float32)


def style(img: F32, rng: np.random.Generator, rotate: bool = True, strength: float = 1.0) -> F32:
    """Random rendering style: exposure/log, window, gamma, blur, noise, grid, vignetting,
    rotation, partial crop, collimation, burned-in text, inversion; output in [0, 1]."""
    a = np.asarray(img, dtype=np.float32)
    h, w = a.shape
    p = strength
    if rotate and rng.random() < 0.6:
        a = ndimage.rotate(a, rng.uniform(-15, 15), reshape=False, order=1, mode="nearest")
    if rng.random() < 0.5 * p:  # partial crop
        fh, fw = rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)
        ch, cw = max(32, int(h * fh)), max(32, int(w * fw))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        a = a[y0 : y0 + ch, x0 : x0 + cw]
        h, w = a.shape
    if rng.random() < 0.6:
        a = a + 0.15 * rng.uniform(0, 1) * _texture(
            rng, a.shape, max(h, w) * rng.uniform(0.05, 0.2)
        )
    if rng.random() < 0.7:
        a = ndimage.gaussian_filter(a, rng.uniform(0.3, 1.5))
    lo, hi = np.percentile(a, [rng.uniform(0, 5), rng.uniform(95, 100)])
    a = (a - lo) / max(float(hi - lo), 1e-6)
    a = np.clip(a, 0, 1)
    if rng.random() < 0.4:  # unsharp masking, vendor style
        a = a + rng.uniform(0.3, 1.5) * (a - ndimage.gaussian_filter(a, max(h, w) * 0.03))
    a = np.clip(a, 0, 1) ** float(np.exp(rng.uniform(-0.7, 0.7)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.3 * p:  # vignetting / heel effect
        r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
        a = a * (1 - rng.uniform(0.1, 0.6) * r2 * 2) + rng.uniform(-0.1, 0.1) * (yy / h - 0.5)
    if rng.random() < 0.15 * p:  # grid lines
        period = rng.uniform(2.2, 5.0)
        a = a + rng.uniform(0.01, 0.05) * np.sin(
            2 * math.pi * (xx if rng.random() < 0.7 else yy) / period
        )
    a = a + rng.uniform(0, 0.05) * rng.standard_normal(a.shape).astype(np.float32)
    if rng.random() < 0.4 * p:  # collimation borders
        val = float(rng.choice([0.0, 0.05, 0.9, 1.0]))
        m = np.ones((h, w), bool)
        for side in range(4):
            if rng.random() < 0.5:
                k = rng.uniform(0.02, 0.15)
                if side == 0:
                    m &= yy >= k * h
                elif side == 1:
                    m &= yy < (1 - k) * h
                elif side == 2:
                    m &= xx >= k * w
                else:
                    m &= xx < (1 - k) * w
        a = np.where(m, a, val)
    a = np.clip(a, 0, 1).astype(np.float32)
    if rng.random() < 0.6 * p:
        a = burn_text(a, rng, int(rng.integers(1, 4)))
    if rng.random() < 0.08:
        a = 1.0 - a
    return a.astype(np.float32)


# -------------------------------------------------------------------------------------------
# Simulated lateral films: whole, cropped keeping L1-L4, and spot crops


def sim_film(seed: int, index: int, rng: np.random.Generator) -> SimulatedCase:
    """A coarse simulated lateral film (case ``index`` of ``seed``)."""
    return simulate_case(seed, index, spacing_mm=float(rng.uniform(*SIM_SPACING_MM)))


def _bbox(case: SimulatedCase, names: tuple[str, ...]) -> tuple[float, float, float, float]:
    pts = np.concatenate([case.vertebrae[n] for n in names if n in case.vertebrae], axis=0)
    return (
        float(pts[:, 0].min()),
        float(pts[:, 1].min()),
        float(pts[:, 0].max()),
        float(pts[:, 1].max()),
    )


def _crop(img: F32, x0: float, y0: float, x1: float, y1: float) -> F32:
    h, w = img.shape
    a, b = max(0, math.floor(x0)), min(w, math.ceil(x1))
    c, d = max(0, math.floor(y0)), min(h, math.ceil(y1))
    return img[c:d, a:b]


def lateral_box(case: SimulatedCase, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """The ``(x0, y0, x1, y1)`` window of a lateral training image: the whole film, or a random
    crop that keeps L1-L4, the T12/L1 and L4/L5 discs and the aorta in front of the spine."""
    h, w = case.image.shape
    if rng.random() < 0.35:
        return 0.0, 0.0, float(w), float(h)
    x0, y0, x1, y1 = _bbox(case, ("L1", "L2", "L3", "L4"))
    bh = (y1 - y0) / 4
    bx0, bx1 = x0 - 0.8 * (x1 - x0), x1 + 0.5 * (x1 - x0)
    by0, by1 = y0 - 0.35 * bh, y1 + 0.35 * bh
    cx0 = rng.uniform(0, max(0.0, bx0))
    cx1 = rng.uniform(min(w, bx1), w)
    cy0 = rng.uniform(0, max(0.0, by0))
    cy1 = rng.uniform(min(h, by1), h)
    return cx0, cy0, cx1, cy1


def lateral_crop(case: SimulatedCase, rng: np.random.Generator) -> F32:
    """A lateral training image of a simulated film (see :func:`lateral_box`)."""
    return _crop(case.image, *lateral_box(case, rng))


def spot_box(case: SimulatedCase, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """The ``(x0, y0, x1, y1)`` window of a spot view: only L4-S1 (L1-L2 cut off) or only
    T12-L2 (L3-L5 cut off)."""
    h, w = case.image.shape
    x0, _, x1, _ = _bbox(case, ("L1", "L2", "L3", "L4"))
    dx = x1 - x0
    cx0 = rng.uniform(max(0.0, x0 - 1.5 * dx), max(0.0, x0 - 0.3 * dx))
    cx1 = rng.uniform(min(w, x1 + 0.3 * dx), min(w, x1 + 1.5 * dx))
    if rng.random() < 0.65 or "T12" not in case.vertebrae:
        _, l3y0, _, l3y1 = _bbox(case, ("L3",))
        _, _, _, sy1 = _bbox(case, ("L5", "S1"))
        top = rng.uniform(l3y0, (l3y0 + l3y1) / 2 + 0.4 * (l3y1 - l3y0))
        bot = rng.uniform(min(h, sy1), h)
    else:
        _, ty0, _, _ = _bbox(case, ("T12",))
        _, l3y0, _, l3y1 = _bbox(case, ("L3",))
        top = rng.uniform(0, max(0.0, ty0))
        bot = rng.uniform(l3y0 - 0.2 * (l3y1 - l3y0), (l3y0 + l3y1) / 2)
    return cx0, top, cx1, bot


def spot_crop(case: SimulatedCase, rng: np.random.Generator) -> F32:
    """A spot view of a simulated film (see :func:`spot_box`)."""
    return _crop(case.image, *spot_box(case, rng))


# -------------------------------------------------------------------------------------------
# Generation


DRAWN: dict[str, Callable[[np.random.Generator], F32]] = {
    "ap_lumbar": ap_lumbar,
    "chest": chest,
    "lateral_thoracic": lateral_thoracic,
    "cervical": cervical,
    "pelvis_hip": pelvis_hip,
    "other_body_part": other_body_part,
}


def generate(cls: str, seed: int, index: int) -> F32:
    """Image ``index`` of class ``cls`` for ``seed``: 2-D float32 in [0, 1], any size."""
    if cls not in VIEW_CLASSES:
        raise ValueError(f"unknown view class {cls!r}; expected one of {VIEW_CLASSES}")
    c = VIEW_CLASSES.index(cls)
    rng = rng_for(seed, c, index)
    if cls in ("lateral_lumbar", "lumbar_spot"):
        # film seeds: class number in the upper digits, so the two classes use other films
        case = sim_film(seed * 1000 + c, index, rng)
        img = lateral_crop(case, rng) if cls == "lateral_lumbar" else spot_crop(case, rng)
        return style(img, rng, rotate=False, strength=0.6)
    if cls == "not_radiograph":
        return not_radiograph(rng, seed, index)
    img = DRAWN[cls](rng)
    if rng.random() < 0.8:  # trabecular / soft-tissue texture, so drawings are not too clean
        fine = _texture(rng, img.shape, rng.uniform(0.7, 2.0))
        img = img * (1 + rng.uniform(0.05, 0.25) * fine) + 0.05 * _texture(rng, img.shape, 8.0)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return style(img, rng)
