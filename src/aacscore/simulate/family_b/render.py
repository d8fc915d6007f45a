"""Family B rasterisation and imaging chain.

Rasterisation: an affine :class:`Canvas` maps canonical millimetres straight to the pixels of the
film as written (spacing, in-plane rotation, field-of-view offset and mirroring in one matrix),
so nothing is flipped afterwards. Bones and plaques are evaluated on the full grid in crops
(bodies and the fused sacrum as analytic profiles of path length through textured trabecular
bone and cortex; posterior elements, ribs, crests and plates on a ~0.35 mm grid), soft tissue
and gas on a ~1 mm grid; the coarse layers are upsampled bilinearly.

Imaging chain (ranges per film):

* Two-material polyenergetic attenuation: four energy bins (40-85 keV) weighted by a tube
  spectrum of 75-105 kVp with filtration; bone in mm of cortical-bone equivalent, soft tissue in
  mm of water; beam hardening follows.
* Scatter: scatter-to-primary 0.3-1.8 behind the spine (habitus, grid), a 30-80 mm low-pass of
  the primary weighted by the tissue path (no scatter from air).
* Detector: box aperture (0.2-0.5 mm) plus a veiling-glare tail (0.2-1 %, 2-6 mm).
* Quantum noise with a non-flat noise power spectrum: white plus 2x and 4x correlated
  components (mixing drawn per film), 100-2500 quanta per 0.2 mm pixel behind the spine,
  electronic noise.
* Processing: dynamic range compression (30-75 % of a 30-80 mm low-pass above its median at the
  spine removed: thick parts such as the pelvis), then one of
  three look-up-table chains: ``film`` (unsharp mask 3-12 mm then an
  S-shaped film curve), ``equalise`` (partial histogram equalisation, gamma) or ``clahe``
  (contrast-limited adaptive equalisation at half resolution, its gain upsampled); percentile
  window around the spine (with foot- and headroom); collimation (lead or electronic shutter,
  blades tilted up to a few degrees with a 0.5-3 mm penumbra), burnt-in lead marker and text;
  10-16-bit quantisation, MONOCHROME1 or 2.
* Heel effect: fluence falls by 5-30 % towards the anode side, along the film's long axis
  (3 films in 4) or across it.

Not modelled: grid lines, lag, stitching, compression artefacts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from aacscore.simulate.family_b.scene import GasTube, Plaque, Scene
from aacscore.simulate.family_b.shapes import Body, Plate, Slab, Tube

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

ENERGIES_KEV = np.array([40.0, 55.0, 70.0, 85.0])
MU_WATER = np.array([0.0268, 0.0218, 0.0196, 0.0183])  # 1/mm
MU_BONE = np.array([0.128, 0.072, 0.050, 0.041])  # 1/mm, cortical bone


@dataclass(frozen=True)
class Canvas:
    """Pixel grid with an affine map ``px = M @ mm + t`` (x = column, y = row)."""

    shape: tuple[int, int]
    m: F64
    t: F64

    @property
    def spacing(self) -> float:
        return float(1.0 / math.sqrt(abs(np.linalg.det(self.m))))

    def to_px(self, pts: npt.ArrayLike) -> F64:
        p = np.asarray(pts, dtype=np.float64)
        return np.asarray(p @ self.m.T + self.t)

    def to_mm(self, px: npt.ArrayLike) -> F64:
        p = np.asarray(px, dtype=np.float64)
        return np.asarray((p - self.t) @ np.linalg.inv(self.m).T)

    def scaled(self, factor: int) -> Canvas:
        """The grid whose pixel ``j`` covers pixels ``j*f .. j*f+f-1`` of this one."""
        if factor == 1:
            return self
        shape = (-(-self.shape[0] // factor), -(-self.shape[1] // factor))
        return Canvas(shape, self.m / factor, (self.t + 0.5) / factor - 0.5)

    def window(self, pts_mm: npt.ArrayLike, margin_mm: float) -> tuple[int, int, int, int] | None:
        """Pixel box (y0, y1, x0, x1) holding the points plus a margin, or None if outside."""
        q = self.to_px(np.asarray(pts_mm).reshape(-1, 2))
        mg = margin_mm / self.spacing
        x0, y0 = np.floor(q.min(axis=0) - mg).astype(int)
        x1, y1 = np.ceil(q.max(axis=0) + mg).astype(int) + 1
        h, w = self.shape
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return None
        return int(y0), int(y1), int(x0), int(x1)

    def grid_mm(self, box: tuple[int, int, int, int]) -> tuple[F64, F64]:
        y0, y1, x0, x1 = box
        xs, ys = np.meshgrid(
            np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64)
        )
        mm = self.to_mm(np.stack([xs, ys], axis=-1))
        return mm[..., 0], mm[..., 1]


def upsample(a: F32, shape: tuple[int, int], factor: int) -> F32:
    """Bilinear upsampling of a :meth:`Canvas.scaled` layer back to ``shape``."""
    if factor == 1:
        return a.astype(np.float32)
    h, w = shape
    img = Image.fromarray(a.astype(np.float32))
    box = (0.0, 0.0, w / factor, h / factor)
    return np.asarray(img.resize((w, h), Image.Resampling.BILINEAR, box=box), dtype=np.float32)


def downsample(a: F32, factor: int) -> F32:
    h, w = a.shape
    img = Image.fromarray(a.astype(np.float32))
    return np.asarray(
        img.resize((-(-w // factor), -(-h // factor)), Image.Resampling.BOX), dtype=np.float32
    )


# --------------------------------------------------------------------------------------------
# bone profiles
# --------------------------------------------------------------------------------------------


def _chord(x: F64, r: float | F64) -> F64:
    """Chord of a circle of radius ``r`` at depth ``x`` inside its edge."""
    xx = np.clip(x, 0.0, r)
    return np.asarray(2.0 * np.sqrt(np.maximum(2 * r * xx - xx * xx, 0.0)))


def _shell(x: F64, r: float | F64, t: float) -> F64:
    """Path through a cortical shell of thickness ``t`` at depth ``x``."""
    return np.asarray(_chord(x, r) - _chord(x - t, np.maximum(r - t, 1e-3)) * (x > t))


def _aa(d: F64, px: float) -> F64:
    """Anti-aliased inside weight from an inside distance (mm)."""
    return np.asarray(np.clip(0.5 + d / px, 0.0, 1.0))


def body_local(b: Body, x: F64, y: F64) -> tuple[F64, F64]:
    dx, dy = x - b.centre[0], y - b.centre[1]
    e, n = b.e, b.n
    return dx * e[0] + dy * e[1], dx * n[0] + dy * n[1]


def _plates(b: Body, u: F64) -> tuple[F64, F64]:
    """Superior and inferior end-plate heights ``v`` (concave) at ``u``."""
    a = b.depth / 2
    t = np.clip(u / a, -1.0, 1.0)
    h = b.h_post + (b.h_ant - b.h_post) * (t + 1) / 2
    return h / 2 - b.concave_sup * (1 - t * t), -h / 2 + b.concave_inf * (1 - t * t)


def body_distance(b: Body, u: F64, v: F64) -> tuple[F64, F64, F64]:
    """(inside distance, distance to the end-plates, distance to the AP walls), mm."""
    a = b.depth / 2
    top, bot = _plates(b, u)
    hm = (b.h_ant + b.h_post) / 2
    s = np.clip(2 * v / hm, -1.0, 1.0)
    ant = a - b.waist * (1 - s * s)
    post = -a + 0.4 * b.waist * (1 - s * s)
    dv = np.minimum(top - v, v - bot)
    du = np.minimum(ant - u, u - post)
    r = b.radius
    corner = (dv < r) & (du < r)
    qd = r - np.hypot(np.clip(r - dv, 0, None), np.clip(r - du, 0, None))
    d = np.where(corner, np.where((dv > 0) & (du > 0), qd, np.minimum(dv, du)), np.minimum(dv, du))
    return d, dv, du


def trabecular_texture(seed: int, aniso: float, u: F64, v: F64, extent: tuple[float, float]) -> F32:
    """Unit-variance trabecular texture at body coordinates ``(u, v)`` (mm): band-passed noise
    on a 0.25 mm grid of the body's frame, elongated ``aniso`` times along v (vertical
    trabeculae), a weaker horizontal component (1 / aniso) and coarse marrow mottling."""
    cell = 0.25
    hu, hv = extent
    nu, nv = int(2 * hu / cell) + 3, int(2 * hv / cell) + 3
    g = np.random.default_rng(seed)
    white = g.standard_normal((nv, nu)).astype(np.float32)
    vert = ndimage.gaussian_filter(white, (0.4 * aniso / cell, 0.3 / cell))
    horiz = ndimage.gaussian_filter(g.standard_normal((nv, nu)).astype(np.float32), (1.2, 3.0))
    coarse = ndimage.gaussian_filter(g.standard_normal((nv, nu)).astype(np.float32), 2.5 / cell)
    parts = [x / max(float(x.std()), 1e-6) for x in (vert, horiz, coarse)]
    tex = parts[0] + parts[1] / aniso + 0.5 * parts[2]
    tex /= max(float(tex.std()), 1e-6)
    coords = np.stack([(v + hv) / cell + 1, (u + hu) / cell + 1])
    return ndimage.map_coordinates(tex, coords, order=1, mode="nearest").astype(np.float32)


def _rim_factor(seed: int, u: F64, v: F64, b: Body) -> F64:
    """Brightness of the cortical rim around the outline: 1 + random low harmonics of the angle."""
    g = np.random.default_rng(seed)
    th = np.arctan2(v / max(b.h_ant + b.h_post, 1.0) * 2 * 2, u / max(b.depth, 1.0) * 2)
    f = np.ones_like(th)
    for k, amp in ((1, 0.25), (2, 0.2), (3, 0.15), (5, 0.1)):
        f += amp * g.uniform(0.3, 1.0) * np.cos(k * th + g.uniform(0, 2 * math.pi))
    return np.asarray(np.clip(f, 0.35, 1.7))


def render_body(
    cv: Canvas,
    b: Body,
    trab: F32,
    cort: F32,
    labels: npt.NDArray[np.uint8] | None,
    label: int,
    bone: bool = True,
) -> None:
    """One body: trabecular path with its texture, a rim of varying brightness, dense concave
    end-plates (a second, fainter contour when ``double_mm``), edge blur; label ``d > 0``.
    ``bone=False`` writes the label only (S1, whose bone is the fused sacrum's)."""
    box = cv.window(b.corners(), 6.0)
    if box is None:
        return
    x, y = cv.grid_mm(box)
    u, v = body_local(b, x, y)
    d, dv, du = body_distance(b, u, v)
    sl = np.s_[box[0] : box[1], box[2] : box[3]]
    if labels is not None and label:
        lab = labels[sl]
        lab[d > 0] = label
    if not bone:
        return
    inside = _aa(d, max(cv.spacing, b.blur_mm))
    width = 1.45 * b.depth
    rl = 0.22 * width
    t = b.cortex
    hm = max(b.h_ant, b.h_post) / 2 + 1.0
    tex = trabecular_texture(b.tex_seed, b.tex_aniso, u, v, (b.depth / 2 + 1.0, hm))
    path = b.density * _chord(du - t, rl).clip(max=width)
    top, bot = _plates(b, u)
    dt, db = top - v, v - bot
    if b.double_mm > 0:  # the far lateral half of each end-plate projects inside the outline
        half = (dt < b.double_mm) | (db < b.double_mm)
        path = np.where(half, path * 0.6, path)
    trab[sl] += (path * (1 + b.tex_amp * tex).clip(min=0.0) * inside).astype(np.float32)
    rim = _rim_factor(b.rim_seed, u, v, b)
    ring = 0.45 * _shell(np.maximum(du, 0), width / 2, t) * rim  # walls: thinner than plates
    ramp = 0.7 * t + 0.4
    plate = width * 0.22 * b.plate_gain * np.exp(-np.maximum(dv, 0) / ramp)
    if b.double_mm > 0:
        ghost = np.exp(-np.minimum(np.abs(dt - b.double_mm), np.abs(db - b.double_mm)) / ramp)
        plate = plate + width * 0.12 * b.plate_gain * ghost
    plate = plate * (0.75 + 0.25 * rim)
    cort[sl] += (0.4 * (ring + plate * (d > -0.5)) * inside).astype(np.float32)


def render_sacrum(cv: Canvas, outline: F64, bodies: dict[str, Body], trab: F32, cort: F32) -> None:
    """The fused sacrum as one bone: lateral path tapering from S1 (the promontory's width) to
    the tip, textured, a cortical shell along the whole outline, S1's dense superior end-plate
    and faint ridges (with a little lucency at S1/S2) where the sacral discs fused."""
    box = cv.window(outline, 3.0)
    if box is None:
        return
    y0, y1, x0, x1 = box
    q = cv.to_px(outline) - np.array([x0, y0])
    img = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(img).polygon([(float(a), float(b)) for a, b in q], fill=1)
    m = np.asarray(img, dtype=bool)
    if not m.any():
        return
    sp = cv.spacing
    d = ndimage.distance_transform_edt(m) * sp - ndimage.distance_transform_edt(~m) * sp
    x, y = cv.grid_mm(box)
    s1, s5 = bodies["S1"], bodies["S5"]
    top, tip = s1.sup_mid(), s5.inf_mid()
    axis = (tip - top) / max(float(np.hypot(*(tip - top))), 1e-6)
    frac = np.clip(((x - top[0]) * axis[0] + (y - top[1]) * axis[1]) / np.hypot(*(tip - top)), 0, 1)
    width = 1.45 * s1.depth * (1.0 - 0.6 * frac)
    rl = 0.22 * width
    u, v = body_local(s1, x, y)
    tex = trabecular_texture(s1.tex_seed, s1.tex_aniso * 0.7, u, v, (90.0, 130.0))
    path = s1.density * _chord(d - s1.cortex, rl)
    for name in ("S1", "S2", "S3", "S4"):
        bk = bodies[name]
        _, vk = body_local(bk, x, y)
        dl = np.abs(vk + (bk.h_ant + bk.h_post) / 4)
        if name == "S1":
            path = path * (1 - 0.3 * np.exp(-((dl / 1.5) ** 2)))
        cort[y0:y1, x0:x1] += (0.05 * width * np.exp(-((dl / 1.0) ** 2)) * (d > 0)).astype(
            np.float32
        )
    inside = _aa(d, max(sp, s1.blur_mm))
    trab[y0:y1, x0:x1] += (path * (1 + s1.tex_amp * tex).clip(min=0) * inside).astype(np.float32)
    shell = _shell(np.maximum(d, 0), width / 2, s1.cortex)
    dt = _plates(s1, u)[0] - v
    plate = width * 0.2 * s1.plate_gain * np.exp(-np.abs(dt) / (0.7 * s1.cortex + 0.4))
    plate = plate * (np.abs(u) < s1.depth / 2 + 1.0)
    cort[y0:y1, x0:x1] += (0.4 * (shell + plate) * inside).astype(np.float32)


def render_slab(cv: Canvas, b: Body, s: Slab, off: F64, trab: F32, cort: F32) -> None:
    """A posterior-element part: super-elliptic outline with soft margins, chord profile,
    cortical shell and, for articular pillars, the facet joint (lucent line between two
    subchondral lines)."""
    c = b.to_mm(s.u, s.v) + off
    ext = max(s.hu, s.hv) * 1.5 + 2
    box = cv.window(np.array([c - ext, c + ext]), 1.0)
    if box is None:
        return
    x, y = cv.grid_mm(box)
    u, v = body_local(b, x - off[0], y - off[1])
    u, v = u - s.u, v - s.v
    ct, st = math.cos(s.tilt), math.sin(s.tilt)
    uu, vv = ct * u - st * v, st * u + ct * v
    hv = s.hv * (1 + s.taper * np.clip(-uu / s.hu, -1, 1))
    f = (np.abs(uu) / s.hu) ** s.power + (np.abs(vv) / hv) ** s.power
    d = (1.0 - f ** (1.0 / s.power)) * np.minimum(s.hu, hv)
    inside = _aa(d, max(cv.spacing, 1.2))  # processes: soft, irregular margins
    rr = max(min(s.hu, s.hv), 1.0)
    sl = np.s_[box[0] : box[1], box[2] : box[3]]
    tr = s.density * s.width * _chord(d, rr) / (2 * rr) * inside
    co = 0.45 * _shell(np.maximum(d, 0), s.width / 2, s.cortex) * inside
    if s.facet_v is not None:
        dist = np.abs(vv - s.facet_v - 0.35 * uu)
        tr = tr * (1 - 0.8 * np.exp(-((dist / 0.7) ** 2)))
        co = co + 0.12 * s.width * np.exp(-(((dist - 1.3) / 0.5) ** 2)) * inside
    trab[sl] += tr.astype(np.float32)
    cort[sl] += co.astype(np.float32)


def line_field(cv: Canvas, box: tuple[int, int, int, int], poly: F64) -> tuple[F64, F64]:
    """Distance (mm) of each pixel of ``box`` to a polyline, and the arc length (mm) of its
    nearest point: the line is rasterised with its arc length, then a Euclidean distance
    transform finds each pixel's nearest line pixel (error under half a pixel)."""
    y0, y1, x0, x1 = box
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(poly, axis=0).T))])
    step = max(cv.spacing, 1e-3)
    s = np.arange(0.0, cum[-1] + step, step)
    dense = np.stack([np.interp(s, cum, poly[:, 0]), np.interp(s, cum, poly[:, 1])], axis=1)
    q = cv.to_px(dense) - np.array([x0, y0])
    img = Image.new("I", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(img)
    for i in range(len(q) - 1):
        draw.line([tuple(q[i]), tuple(q[i + 1])], fill=i + 1, width=1)
    arr = np.asarray(img, dtype=np.int64)
    on = arr > 0
    if not on.any():
        return np.full(arr.shape, np.inf), np.zeros(arr.shape)
    dist, (iy, ix) = ndimage.distance_transform_edt(~on, return_indices=True)
    return dist * cv.spacing, s[arr[iy, ix] - 1]


def render_tube(cv: Canvas, tb: Tube, trab: F32, cort: F32) -> None:
    box = cv.window(tb.points, tb.radius + 2)
    if box is None:
        return
    d, _ = line_field(cv, box, tb.points)
    r = tb.radius
    ch = 2 * np.sqrt(np.clip(r * r - d * d, 0, None))
    inner = 2 * np.sqrt(np.clip((r - tb.cortex) ** 2 - d * d, 0, None))
    sl = np.s_[box[0] : box[1], box[2] : box[3]]
    trab[sl] += (tb.density * ch).astype(np.float32)
    cort[sl] += (0.5 * (ch - inner)).astype(np.float32)


def render_plate(cv: Canvas, pl: Plate, out: F32) -> None:
    box = cv.window(pl.points, 2.0)
    if box is None:
        return
    y0, y1, x0, x1 = box
    q = cv.to_px(pl.points) - np.array([x0, y0])
    img = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(img).polygon([(float(a), float(b)) for a, b in q], fill=1)
    m = np.asarray(img, dtype=bool)
    if not m.any():
        return
    din = ndimage.distance_transform_edt(m) * cv.spacing
    val = pl.value * np.sqrt(np.clip(din / pl.edge_mm, 0, 1))
    if pl.rim > 0:  # cortical border seen tangentially
        val = val + pl.rim * np.exp(-(((din - 0.8) / 0.8) ** 2)) * m
    out[y0:y1, x0:x1] += val.astype(np.float32)


# --------------------------------------------------------------------------------------------
# soft tissue
# --------------------------------------------------------------------------------------------


def soft_tissue(cv: Canvas, sc: Scene, rng: np.random.Generator) -> tuple[F32, F32]:
    """(soft-tissue water-equivalent path, gas path) in mm on the canvas grid."""
    x, y = cv.grid_mm((0, cv.shape[0], 0, cv.shape[1]))
    tr = sc.trunk
    bump = tr["bulge"] * np.exp(-(((y - tr["bulge_y"]) / 110.0) ** 2))
    front = tr["front_x"] - tr["ab_depth"] * (1 + bump)
    back = tr["back_x"] + 25 * np.exp(-(((y - tr["buttock_y"]) / 70.0) ** 2))
    mid, half = (front + back) / 2, (back - front) / 2
    tt = np.clip(np.abs(x - mid) / half, 0, 1)
    hw = tr["half_width"] * (1 + 0.15 * np.clip((y - tr["buttock_y"] + 60) / 120, 0, 1))
    chord = 2 * hw * (1 - tt ** tr["power"]) ** (1 / tr["power"])
    soft = tr["density"] * chord
    # abdominal wall seen tangentially: fat under the skin, then the wall muscles; the skin itself
    # (denser than fat) as a shell; paraspinal muscles behind
    from_front, from_back = x - front, back - x
    fat, musc = tr["fat_mm"], tr["wall_muscle_mm"]
    soft *= 1.0 - 0.1 * (from_front < fat) - 0.06 * (from_back < 0.6 * fat)
    soft *= 1.0 + 0.05 * ((from_front >= fat) & (from_front < fat + musc))
    soft *= 1.0 + 0.04 * np.exp(-(((from_back - 0.6 * fat - 40) / 30) ** 2))
    for dist in (from_front, from_back):
        soft += 0.2 * _shell(np.clip(dist, 0, None), 100.0, 1.5) * (dist > 0)
    for kind, c, ax, extra in sc.organs:
        r2 = ((x - c[0]) / ax[0]) ** 2 + ((y - c[1]) / ax[1]) ** 2
        depth = 2 * (ax[0] if kind == "liver" else 25.0)
        soft += extra * depth * np.sqrt(np.clip(1 - r2, 0, None))
    full = (0, cv.shape[0], 0, cv.shape[1])
    for path, radius in sc.psoas:
        d, s = line_field(cv, full, path)
        seglen = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
        r = np.interp(s, seglen, radius)
        soft += 0.09 * 2 * np.sqrt(np.clip(r * r - d * d, 0, None))
    d, _ = line_field(cv, full, sc.lumen)
    rl = float(np.mean(sc.lumen_radius))
    soft += 0.07 * 2 * np.sqrt(np.clip(rl * rl - d * d, 0, None))
    gas = np.zeros_like(soft)
    bubbles = ndimage.gaussian_filter(rng.standard_normal(soft.shape), 2.5 / cv.spacing)
    bubbles = np.clip((bubbles / (bubbles.std() + 1e-9) - 0.6) * 3.0, 0, 1)
    for g in sc.gas:
        gas += _gas_tube(cv, full, g, bubbles)
    gas = np.minimum(gas, 0.8 * soft)
    return soft.astype(np.float32), gas.astype(np.float32)


def _gas_tube(cv: Canvas, box: tuple[int, int, int, int], g: GasTube, bubbles: F64) -> F64:
    d, s = line_field(cv, box, g.points)
    r = g.radius * np.ones_like(s)
    if g.period > 0:
        r = g.radius * (1 - 0.28 * (0.5 + 0.5 * np.cos(2 * math.pi * s / g.period)) ** 4)
    inside = np.sqrt(np.clip(r * r - d * d, 0, None))
    gas: F64 = 2 * inside * g.fill * (1 - g.stool)
    if g.stool > 0:
        gas += 2 * inside * g.stool * 0.5 * bubbles
    return gas


# --------------------------------------------------------------------------------------------
# plaques
# --------------------------------------------------------------------------------------------


def _wall_frame(wall: F64, s: F64) -> tuple[F64, F64]:
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(wall, axis=0).T))])
    pts = np.stack([np.interp(s, cum, wall[:, 0]), np.interp(s, cum, wall[:, 1])], axis=1)
    eps = 0.5
    nxt = np.stack([np.interp(s + eps, cum, wall[:, 0]), np.interp(s + eps, cum, wall[:, 1])], 1)
    prv = np.stack([np.interp(s - eps, cum, wall[:, 0]), np.interp(s - eps, cum, wall[:, 1])], 1)
    tan = nxt - prv
    tan /= np.maximum(np.hypot(tan[:, 0], tan[:, 1]), 1e-9)[:, None]
    return pts, np.stack([-tan[:, 1], tan[:, 0]], axis=1)


def _smooth(rng: np.random.Generator, n: int, k: int) -> F64:
    x = ndimage.gaussian_filter1d(rng.standard_normal(n + 1), max(k, 1), mode="nearest")
    return np.asarray(x[:n] / (x.std() + 1e-9))


def render_plaque(cv: Canvas, pl: Plaque, wall: F64, bone: F32) -> npt.NDArray[np.intp]:
    """Draw one plaque into ``bone`` (mm bone equivalent); returns its flat pixel indices."""
    prng = np.random.default_rng(pl.seed)
    sp = cv.spacing
    lumen_side = 1.0 if pl.wall == "posterior" else -1.0  # anterior normal points forward
    polys: list[tuple[F64, float]] = []
    if pl.kind == "flecks":
        pos = pl.s0
        while pos < pl.s1 - 0.3:
            ln = min(float(prng.uniform(0.6, 2.0)), pl.s1 - pos)
            c, nrm = _wall_frame(wall, np.array([pos + ln / 2]))
            tan = np.array([nrm[0, 1], -nrm[0, 0]])
            fw = max(float(prng.uniform(0.5, 1.6)), 1.6 * sp)
            k = int(prng.integers(5, 9))
            ang = np.sort(prng.uniform(0, 2 * math.pi, k))
            rad = prng.uniform(0.7, 1.0, k)
            ctr = c[0] + nrm[0] * lumen_side * pl.offset * 0.5
            pts = (
                ctr
                + (np.cos(ang) * rad * ln / 2)[:, None] * tan
                + (np.sin(ang) * rad * fw / 2)[:, None] * nrm[0]
            )
            polys.append((pts, pl.density * float(prng.uniform(0.6, 1.3))))
            pos += ln + float(prng.uniform(0.35, 0.65)) * ln / 0.62 * 0.62 + 0.2
    else:
        step = max(0.5, 2 * sp)
        s = np.arange(pl.s0, pl.s1 + 1e-9, step)
        if len(s) < 2:
            s = np.array([pl.s0, pl.s1])
        c, nrm = _wall_frame(wall, s)
        t = (s - pl.s0) / max(pl.s1 - pl.s0, 1e-6)
        if pl.kind == "crescent":
            wd = pl.width * 1.5 * np.sin(math.pi * np.clip(t, 0.04, 0.96)) ** 0.6
        else:
            wd = pl.width * np.clip(1 + 0.3 * _smooth(prng, len(s), 4), 0.5, 1.6)
        wd = np.maximum(wd, 1.6 * sp)
        off = lumen_side * np.clip(pl.offset + 0.25 * _smooth(prng, len(s), 6), -0.5, 1.2)
        dens = pl.density * np.clip(1 + 0.3 * _smooth(prng, len(s), 3), 0.4, 1.6)
        mid = c + nrm * off[:, None]
        left, right = mid + nrm * (wd / 2)[:, None], mid - nrm * (wd / 2)[:, None]
        for i in range(len(s) - 1):
            quad = np.array([left[i], left[i + 1], right[i + 1], right[i]])
            polys.append((quad, float(dens[i])))
    if not polys:  # a dotted plaque too short for its first dot draws nothing
        return np.zeros(0, dtype=np.intp)
    allpts = np.concatenate([p for p, _ in polys])
    box = cv.window(allpts, 1.0)
    if box is None:
        return np.zeros(0, dtype=np.intp)
    y0, y1, x0, x1 = box
    img = Image.new("I", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(img)
    for pts, val in polys:  # densities in 1/1000 mm
        q = cv.to_px(pts) - np.array([x0, y0])
        draw.polygon([(float(a), float(b)) for a, b in q], fill=max(1, round(val * 1000)))
    arr = np.asarray(img, dtype=np.float32) / np.float32(1000.0)
    sub = bone[y0:y1, x0:x1]
    np.maximum(sub, sub + arr, out=sub)
    rr, cc = np.nonzero(arr > 0)
    return np.asarray((rr + y0) * cv.shape[1] + (cc + x0), dtype=np.intp)


def render_rings(cv: Canvas, items: list[tuple[F64, float, float]], bone: F32) -> None:
    """Distractor calcifications (phleboliths and nodes) as dense rings/discs."""
    for c, r, dens in items:
        box = cv.window(c[None, :], r + 1)
        if box is None:
            continue
        x, y = cv.grid_mm(box)
        d = np.hypot(x - c[0], y - c[1])
        val = dens * (
            2 * np.sqrt(np.clip(r * r - d * d, 0, None))
            - 1.4 * np.sqrt(np.clip((0.6 * r) ** 2 - d * d, 0, None))
        )
        bone[box[0] : box[1], box[2] : box[3]] += val.astype(np.float32)


def render_strokes(cv: Canvas, items: list[tuple[F64, F64, float, float]], bone: F32) -> None:
    """Straight dense strokes (metal clips, vessel-like lines): (p0, p1, radius, density)."""
    for p0, p1, r, dens in items:
        box = cv.window(np.stack([p0, p1]), r + 1)
        if box is None:
            continue
        x, y = cv.grid_mm(box)
        d = p1 - p0
        ll = float(d @ d) or 1.0
        t = np.clip(((x - p0[0]) * d[0] + (y - p0[1]) * d[1]) / ll, 0, 1)
        dist = np.hypot(x - (p0[0] + t * d[0]), y - (p0[1] + t * d[1]))
        val = dens * 2 * np.sqrt(np.clip(r * r - dist * dist, 0, None))
        bone[box[0] : box[1], box[2] : box[3]] += val.astype(np.float32)


# --------------------------------------------------------------------------------------------
# exposure, detector, processing
# --------------------------------------------------------------------------------------------


def sample_chain(rng: np.random.Generator, habitus: float, ov: dict[str, Any]) -> dict[str, Any]:
    """Imaging-chain parameters of one film."""
    grid = bool(rng.random() < 0.75)
    p: dict[str, Any] = {
        "kvp": float(rng.uniform(75, 105)),
        "filtration": float(rng.uniform(0.5, 2.0)),
        "quanta_per_0p2mm": float(math.exp(rng.uniform(math.log(250), math.log(4000)))),
        "electronic": float(rng.uniform(0.5, 3.0)),
        "grid": grid,
        "spr": float(
            np.clip(
                (0.4 + 1.4 * habitus) * (0.5 if grid else 1.0) * rng.uniform(0.8, 1.25), 0.3, 1.8
            )
        ),
        "scatter_mm": float(rng.uniform(30, 80)),
        "aperture_mm": float(rng.uniform(0.2, 0.5)),
        "glare": float(rng.uniform(0.002, 0.01)),
        "glare_mm": float(rng.uniform(2, 6)),
        "noise_mix": [float(x) for x in rng.dirichlet([3.0, 1.5, 1.0])],
        "chain": str(rng.choice(["film", "equalise", "clahe"], p=[0.4, 0.3, 0.3])),
        "drc": float(rng.uniform(0.3, 0.75)),
        "drc_mm": float(rng.uniform(30, 80)),
        "unsharp_mm": float(rng.uniform(3, 12)),
        "unsharp_gain": float(rng.uniform(0.3, 1.2)),
        "film_gain": float(rng.uniform(2.5, 6)),
        "film_centre": float(rng.uniform(0.35, 0.55)),
        "equalise_alpha": float(rng.uniform(0.3, 0.7)),
        "gamma": float(rng.uniform(0.7, 1.4)),
        "clahe_clip": float(rng.uniform(0.005, 0.02)),
        "clahe_kernel_mm": float(rng.uniform(25, 60)),
        "window_lo_pct": float(rng.uniform(0.3, 4.0)),
        "window_hi_pct": float(rng.uniform(98.0, 99.9)),
        "headroom": float(rng.uniform(0.3, 1.2)),
        "footroom": float(rng.uniform(0.3, 1.5)),
        "heel": float(rng.uniform(0.05, 0.3)) * float(rng.choice([-1.0, 1.0])),
        "heel_axis": str(rng.choice(["rows", "columns"], p=[0.75, 0.25])),
        "collimation_tilt_deg": float(rng.normal(0, 1.5)),
        "penumbra_mm": float(rng.uniform(0.5, 3.0)),
        "collimation": [bool(rng.random() < 0.3) for _ in range(4)],
        "collimation_depth": [float(rng.uniform(0.2, 1.0)) for _ in range(4)],
        "shutter": str(rng.choice(["lead", "black", "white"], p=[0.6, 0.2, 0.2])),
        "marker": bool(rng.random() < 0.8),
        "marker_letter": str(rng.choice(["L", "R"])),
        "text": bool(rng.random() < 0.5),
        "bits_stored": int(rng.choice([10, 12, 12, 14, 16])),
        "photometric": str(rng.choice(["MONOCHROME2", "MONOCHROME1"], p=[0.6, 0.4])),
        "modality": str(rng.choice(["CR", "DX"], p=[0.5, 0.5])),
    }
    for key in ("photometric", "modality", "bits_stored"):
        if key in ov:
            p[key] = ov[key]
    if p["photometric"] not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, got {p['photometric']}")
    if p["modality"] not in ("CR", "DX"):
        raise ValueError(f"modality must be CR or DX, got {p['modality']!r}")
    if not 8 <= int(p["bits_stored"]) <= 16:
        raise ValueError(f"bits_stored must lie in 8..16, got {p['bits_stored']}")
    return p


def spectrum(kvp: float, filtration: float) -> F64:
    e = ENERGIES_KEV
    w = np.clip(kvp - e, 0, None) * np.sqrt(e) * np.exp(-filtration * (40.0 / e) ** 3)
    return np.asarray(w / w.sum())


def _lowpass(a: F32, sigma_mm: float, sp: float) -> F32:
    f = max(1, int(sigma_mm / sp / 4))
    small = downsample(a, f)
    small = ndimage.gaussian_filter(small, sigma_mm / (sp * f), mode="nearest")
    return upsample(small, a.shape, f)


def _coloured_noise(rng: np.random.Generator, shape: tuple[int, int], mix: list[float]) -> F32:
    out = np.zeros(shape, dtype=np.float32)
    for w, f in zip(mix, (1, 2, 4), strict=True):
        small = rng.standard_normal((-(-shape[0] // f), -(-shape[1] // f)), dtype=np.float32)
        comp = upsample(small, shape, f)
        out += np.float32(math.sqrt(w) / max(float(comp[::7, ::7].std()), 1e-6)) * comp
    return out


def expose(
    bone: F32,
    soft: F32,
    p: dict[str, Any],
    sp: float,
    spine_px: tuple[int, int],
    coll: F32,
    rng: np.random.Generator,
) -> F32:
    """Log signal (bone bright) of the film: attenuation, scatter, blur, noise."""
    w = spectrum(p["kvp"], p["filtration"])
    prim = np.zeros(bone.shape, dtype=np.float32)
    for k in range(len(w)):
        prim += np.float32(w[k]) * np.exp(
            -np.float32(MU_BONE[k]) * bone - np.float32(MU_WATER[k]) * soft
        )
    h, w = bone.shape
    if p["heel_axis"] == "rows":
        ramp = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    else:
        ramp = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    # heel effect: the anode side of the field gets less fluence (steeper towards it)
    prim = prim * (1 + np.float32(p["heel"] / 2) * (ramp - 0.3 * ramp**2))
    prim = prim * (coll + np.float32(1e-5) * (1 - coll))
    y, x = spine_px
    near = np.s_[max(y - 20, 0) : y + 20, max(x - 20, 0) : x + 20]
    # scatter arises in the patient: source = primary x path through tissue (none in air)
    field = _lowpass(prim * np.clip(soft / np.float32(250.0), 0, 1.5), p["scatter_mm"], sp)
    k = p["spr"] * float(np.median(prim[near])) / max(float(np.median(field[near])), 1e-12)
    scatter = np.float32(k) * field
    k = max(1, round(p["aperture_mm"] / sp))
    sig = ndimage.uniform_filter(prim, k) if k > 1 else prim
    sig = np.float32(1 - p["glare"]) * sig + np.float32(p["glare"]) * _lowpass(
        prim, p["glare_mm"], sp
    )
    sig = sig + scatter
    i_spine = float(np.median(sig[near]))
    n0 = p["quanta_per_0p2mm"] * (sp / 0.2) ** 2 / max(i_spine, 1e-6)
    noise = _coloured_noise(rng, (bone.shape[0], bone.shape[1]), p["noise_mix"])
    e_noise = rng.standard_normal(sig.shape, dtype=np.float32)
    counts = (
        np.float32(n0) * sig
        + np.sqrt(np.float32(n0) * sig) * noise
        + np.float32(p["electronic"]) * e_noise
    )
    return np.asarray(
        -np.log(np.maximum(counts / np.float32(n0), np.float32(1e-6))), dtype=np.float32
    )


def process(logs: F32, p: dict[str, Any], sp: float, roi: tuple[int, int, int, int]) -> F32:
    """Window and look-up-table chain of the log signal to a [0, 1] display image."""
    y0, y1, x0, x1 = roi
    big = _lowpass(logs, p["drc_mm"], sp)
    ref_big = np.float32(np.median(big[y0:y1:4, x0:x1:4]))
    logs = logs - np.float32(p["drc"]) * np.maximum(big - ref_big, 0)  # compress thick parts
    ref = logs[y0:y1:3, x0:x1:3].ravel()
    lo, med, hi = np.percentile(ref, [p["window_lo_pct"], 50.0, p["window_hi_pct"]])
    hi = hi + p["headroom"] * (hi - med)
    lo = lo - p["footroom"] * (med - lo)
    x = np.clip((logs - np.float32(lo)) / np.float32(max(hi - lo, 1e-6)), -0.2, 1.3)
    chain = p["chain"]
    if chain == "film":
        x = x + np.float32(p["unsharp_gain"]) * (x - _lowpass(x, p["unsharp_mm"], sp))
        g, c = p["film_gain"], p["film_centre"]
        lut_lo, lut_hi = 1 / (1 + math.exp(g * c)), 1 / (1 + math.exp(-g * (1 - c)))
        y = (1 / (1 + np.exp(-np.float32(g) * (x - np.float32(c)))) - lut_lo) / (lut_hi - lut_lo)
    elif chain == "equalise":
        xs = np.sort(np.clip(x[y0:y1:3, x0:x1:3].ravel(), 0, 1))
        q = np.linspace(0, 1, 257)
        cdf_x = np.quantile(xs, q)
        eq = np.interp(np.clip(x, 0, 1), cdf_x, q).astype(np.float32)
        a = np.float32(p["equalise_alpha"])
        y = a * eq + (1 - a) * np.clip(x, 0, 1)
        y = y + np.float32(0.4 * p["unsharp_gain"]) * (y - _lowpass(y, p["unsharp_mm"], sp))
        y = np.clip(y, 0, 1) ** np.float32(p["gamma"])
    else:
        from skimage.exposure import equalize_adapthist

        f = 2
        small = np.clip(downsample(x, f), 0, 1)
        ker = max(8, int(p["clahe_kernel_mm"] / (sp * f)))
        eq = equalize_adapthist(small, kernel_size=ker, clip_limit=p["clahe_clip"])
        gain = upsample((eq - small).astype(np.float32), x.shape, f)
        y = np.clip(x + gain, 0, 1) ** np.float32(p["gamma"])
    return np.clip(y, 0, 1).astype(np.float32)


def collimation(
    shape: tuple[int, int], p: dict[str, Any], roi: tuple[int, int, int, int], sp: float = 0.2
) -> F32:
    """Exposed fraction (0-1): up to four blade edges between the film edge and the ROI box,
    tilted by a small angle (kept clear of the ROI) with a penumbra of ``penumbra_mm``."""
    h, w = shape
    y0, y1, x0, x1 = roi
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    tilt = math.tan(math.radians(float(p.get("collimation_tilt_deg", 0.0))))
    pen = max(float(p.get("penumbra_mm", 0.0)) / sp, 0.5)
    m = np.ones(shape, dtype=np.float32)
    # (top, bottom, left, right): blade position between the film edge and the ROI
    edges = [
        (int(y0 * p["collimation_depth"][0] * 0.8), y0, True, 1.0),
        (h - int((h - y1) * p["collimation_depth"][1] * 0.8), y1, True, -1.0),
        (int(x0 * p["collimation_depth"][2] * 0.8), x0, False, 1.0),
        (w - int((w - x1) * p["collimation_depth"][3] * 0.8), x1, False, -1.0),
    ]
    for on, (pos, limit, horizontal, sign) in zip(p["collimation"], edges, strict=True):
        if not on:
            continue
        span = w if horizontal else h
        t = tilt if abs(tilt) * span / 2 < abs(limit - pos) - 2 * pen else 0.0
        if horizontal:
            coord = ys - np.float32(t) * (xs - w / 2)
        else:
            coord = xs + np.float32(t) * (ys - h / 2)
        m = m * np.clip(0.5 + sign * (coord - pos) / pen, 0.0, 1.0).astype(np.float32)
    return m


def burn_in(
    img: F32, p: dict[str, Any], roi: tuple[int, int, int, int], sp: float, rng: np.random.Generator
) -> list[str]:
    """Lead side marker (boxed letter) and a text line, in corners clear of the ROI."""
    h, w = img.shape
    y0, y1, x0, x1 = roi
    size = max(10, int(rng.uniform(6, 12) / sp))
    spots = [
        (int(0.03 * w), int(0.03 * h)),
        (int(0.72 * w), int(0.03 * h)),
        (int(0.03 * w), int(0.9 * h)),
        (int(0.72 * w), int(0.9 * h)),
    ]
    free = [
        s for s in spots if s[0] + 5 * size < x0 or s[0] > x1 or s[1] + 2 * size < y0 or s[1] > y1
    ]
    rng.shuffle(free)
    drawn: list[str] = []
    items: list[tuple[str, bool]] = []
    if p["marker"]:
        items.append((p["marker_letter"], True))
    if p["text"]:
        items.append((str(rng.choice(["LAT", "LATERAL", "L-SPINE", "ERECT", "SUPINE"])), False))
    for (text, boxed), (bx, by) in zip(items, free, strict=False):
        font = ImageFont.load_default(size=size)
        canvas = Image.new("L", (size * (len(text) + 1) + 8, int(size * 1.7)), 0)
        dr = ImageDraw.Draw(canvas)
        dr.text((4, 2), text, fill=255, font=font)
        if boxed:
            dr.rectangle(
                (0, 0, canvas.width - 1, canvas.height - 1), outline=255, width=max(2, size // 10)
            )
        a = np.asarray(canvas, dtype=np.float32) / 255.0
        hh, ww = min(a.shape[0], h - by), min(a.shape[1], w - bx)
        if hh <= 0 or ww <= 0:
            continue
        reg = img[by : by + hh, bx : bx + ww]
        val = np.float32(0.95 if boxed else rng.uniform(0.7, 1.0))
        reg[...] = reg * (1 - a[:hh, :ww]) + val * a[:hh, :ww]
        drawn.append(text)
    return drawn


def quantise(img: F32, bits: int, photometric: str) -> tuple[npt.NDArray[np.uint16], F32]:
    """Stored values and the bone-bright [0, 1] image they decode to."""
    top = (1 << bits) - 1
    q = np.rint(np.clip(img, 0, 1) * top).astype(np.uint16)
    shown = (q.astype(np.float32) / np.float32(top)).astype(np.float32)
    stored = (top - q).astype(np.uint16) if photometric == "MONOCHROME1" else q
    return stored, shown


def visible(img: F32, plaques: list[npt.NDArray[np.intp]], sp: float) -> list[bool]:
    """A plaque counts when it stands out of its surroundings in the displayed image: mean
    contrast over a 0.6-2 mm ring at least 0.01 and Rose SNR (contrast / ring noise x sqrt of
    its size in 0.3 mm cells) at least 5."""
    h, w = img.shape
    allm = np.zeros(h * w, dtype=bool)
    for f in plaques:
        allm[f] = True
    allm2 = allm.reshape(h, w)
    out: list[bool] = []
    r_in, r_out = max(1, round(0.6 / sp)), max(3, round(2.0 / sp))
    for flat in plaques:
        if len(flat) == 0:
            out.append(False)
            continue
        rr, cc = np.divmod(flat, w)
        ya, yb = max(rr.min() - r_out - 2, 0), min(rr.max() + r_out + 3, h)
        xa, xb = max(cc.min() - r_out - 2, 0), min(cc.max() + r_out + 3, w)
        sub = img[ya:yb, xa:xb].astype(np.float64)
        pm = np.zeros(sub.shape, dtype=bool)
        pm[rr - ya, cc - xa] = True
        near = ndimage.binary_dilation(allm2[ya:yb, xa:xb], iterations=r_in)
        ring = ndimage.binary_dilation(pm, iterations=r_out) & ~near
        if ring.sum() < 10:
            out.append(True)
            continue
        hp = sub - ndimage.uniform_filter(sub, 3)
        noise = 1.4826 * float(np.median(np.abs(hp[ring] - np.median(hp[ring])))) * 1.15
        contrast = float(sub[pm].mean() - np.median(sub[ring]))
        cells = len(flat) * (sp / 0.3) ** 2
        out.append(contrast >= 0.01 and contrast / max(noise, 1e-6) * math.sqrt(cells) >= 5.0)
    return out


__all__ = [
    "Canvas",
    "burn_in",
    "collimation",
    "expose",
    "process",
    "quantise",
    "render_body",
    "render_plaque",
    "render_plate",
    "render_rings",
    "render_slab",
    "render_tube",
    "sample_chain",
    "soft_tissue",
    "upsample",
    "visible",
]
