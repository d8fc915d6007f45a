"""Metal implants of the extended simulator variety: geometry, placement and rasterisation.

Metal is drawn as beam path lengths like bone (:mod:`aacscore.simulate.anatomy`), but much denser
and with sharp edges: a wire or cylinder contributes ``mu * chord`` where the chord is the exact
path through a cylinder of the given radius (no cortical falloff, no blur beyond the detector's).
Excess attenuation over soft tissue at ~50-60 keV: titanium (screws, rods) 0.10/mm; stainless
steel, cobalt-chrome and nitinol (disc prosthesis plates, IVC filter and stent wires) 0.9/mm.

Implants (placement from the final, named vertebral bodies and aortic walls, canonical mm):

* Pedicle screws + rods over 2-3 consecutive levels ending at L4, L5 or S1: per level and side a
  threaded shaft (6.5 mm, through the pedicle into the anterior third of the body), a tulip head
  behind the pedicle, and per side a 5.5 mm rod through the heads. Left and right sides are offset
  by the body's left/right split plus a magnification offset.
* Anterior disc prosthesis (L3/L4, L4/L5 or L5/S1): two metal end-plates on the adjacent
  end-plates with a keel into each body (the polyethylene core is radiolucent); the disc height is
  restored by the anatomy.
* IVC filter: a cone of 6 (conical) or 4 + 8 (tulip) wires with hooks, apex cranial at L2, base at
  L3, its axis inside the aortic band (the cava lies right of the aorta, so on a lateral film the
  filter overlaps the band).
* Aortic stent-graft: zig-zag wire rings (Z-stents) between the walls over L2-L4 (narrower below
  the bifurcation) with radiopaque markers at the top; the fabric is radiolucent.

None of these is calcification: they never enter the calcification mask or the label map.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from aacscore.simulate.geometry import (
    F32,
    F64,
    Frame,
    arc_length,
    intersect_ray_polyline,
    point_at,
    project_to_polyline,
    resample_polyline,
    rounded_box_sdf,
    soft_inside,
    tangent_at,
)

MU_TITANIUM_EXCESS = 0.10
MU_STEEL_EXCESS = 0.9
SPINE_ORDER: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
"""Levels an implant can attach to, cranial to caudal."""


class BodyLike(Protocol):
    """What the builders need of a vertebral body (:class:`aacscore.simulate.anatomy.Body`)."""

    @property
    def depth(self) -> float: ...

    @property
    def h_post(self) -> float: ...

    @property
    def angle(self) -> float: ...

    @property
    def split(self) -> tuple[float, float, float]: ...

    def local_to_mm(self, pts: npt.ArrayLike) -> F64: ...

    def corners_mm(self) -> F64: ...


# --- plans (drawn by aacscore.simulate.anatomy.sample_variety) -------------------------------


@dataclass(frozen=True)
class ScrewPlan:
    """Pedicle screws and rods on ``levels`` (2-3) consecutive bodies ending at ``bottom``."""

    bottom: str
    levels: int
    tip_frac: float  # screw tip depth into the body (fraction of the depth from the front)
    angle_deg: float  # sagittal angulation relative to the superior end-plate
    side_mm: float  # extra left/right offset in projection (magnification)


@dataclass(frozen=True)
class ProsthesisPlan:
    """Anterior disc prosthesis in the disc below ``level``."""

    level: str
    height_mm: float  # restored posterior disc height
    plate_mm: float
    width_mm: float
    keel_mm: float


@dataclass(frozen=True)
class FilterPlan:
    """IVC filter: ``conical`` (6 legs) or ``tulip`` (4 legs + 8 arms)."""

    kind: str
    length_mm: float
    radius_mm: float
    offset_mm: float  # axis in front of the posterior aortic wall
    top_frac: float  # apex height within L2 (0 = superior end-plate)
    phase: float


@dataclass(frozen=True)
class StentPlan:
    """Aortic stent-graft: zig-zag rings of ``peaks`` peaks and ``amplitude_mm`` half-height."""

    peaks: int
    amplitude_mm: float
    gap_mm: float
    wire_mm: float
    markers: int


# --- primitives ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """A metal cylinder along a polyline (mm) with per-vertex radii; optional screw thread."""

    points: F64
    radius: F64
    mu: float
    squash: float = 1.0  # path factor (hollow or oblique parts)
    thread_mm: float = 0.0
    pitch_mm: float = 0.0


@dataclass(frozen=True)
class Plate:
    """A flat metal plate seen edge-on (rounded rectangle in the film plane).

    The lateral path is ``width * (1 - |u / half_u| ** exponent) ** (1 / exponent)`` (an oval
    footprint) or ``width`` everywhere when ``exponent`` is 0.
    """

    centre: tuple[float, float]
    angle: float
    half_u: float
    half_v: float
    width: float
    mu: float
    exponent: float = 0.0


Metal = Wire | Plate


def render_metal(parts: Sequence[Metal], frame: Frame, out: F32) -> None:
    """Add the path-length contribution of every metal part to ``out`` (in place)."""
    for part in parts:
        if isinstance(part, Wire):
            _render_wire(part, frame, out)
        else:
            _render_plate(part, frame, out)


def _render_wire(w: Wire, frame: Frame, out: F32) -> None:
    px = frame.spacing
    # a wire thinner than the pixel grid keeps its cross-section area (no aliasing gaps)
    r = np.maximum(w.radius, 0.6 * px)
    gain = (w.radius / r) ** 2
    rmax = float(r.max()) + w.thread_mm
    crop = frame.crop(w.points, margin_mm=rmax + px)
    if crop is None:
        return
    x, y = crop.mm_grid()
    pts = np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float64)
    near = np.arange(len(pts))
    if len(w.points) > 8:  # many segments: project only the pixels near the wire
        step = max(0.5 * px, 0.2)
        dist, _ = cKDTree(resample_polyline(w.points, step)).query(
            pts, distance_upper_bound=rmax + step
        )
        near = np.flatnonzero(np.isfinite(dist))
    s, d = project_to_polyline(pts[near], w.points)
    sv = arc_length(w.points)
    rad = np.interp(s, sv, r)
    if w.thread_mm > 0 and w.pitch_mm > 0:
        saw = np.abs((s / w.pitch_mm) % 1.0 - 0.5) * 2.0  # 0..1 triangle wave
        rad = rad + w.thread_mm * (saw - 0.5)
    chord = 2.0 * np.sqrt(np.clip(rad * rad - d * d, 0.0, None)) * np.interp(s, sv, gain)
    flat = np.zeros(len(pts), dtype=np.float32)
    flat[near] = chord * (w.mu * w.squash)
    out[crop.slices] += flat.reshape(crop.shape)


def _render_plate(p: Plate, frame: Frame, out: F32) -> None:
    c = np.asarray(p.centre, dtype=np.float64)
    crop = frame.crop(np.array([c]), margin_mm=math.hypot(p.half_u, p.half_v) + 1.0)
    if crop is None:
        return
    u, v = crop.local_grid(c, p.angle)
    du = (np.abs(u) - np.float32(p.half_u)).astype(np.float32)
    dv = (np.abs(v) - np.float32(p.half_v)).astype(np.float32)
    d = rounded_box_sdf(du, dv, min(p.half_u, p.half_v) * 0.3)
    inside = soft_inside(d, frame.spacing)
    if p.exponent > 0:
        a = np.clip(np.abs(u) / np.float32(p.half_u), 0, 1)
        prof = (1.0 - a ** np.float32(p.exponent)) ** np.float32(1.0 / p.exponent)
        inside = inside * prof.astype(np.float32)
    out[crop.slices] += (np.float32(p.width * p.mu) * inside).astype(np.float32)


# --- builders ------------------------------------------------------------------------------


def _unit(v: F64) -> F64:
    out: F64 = v / max(float(np.hypot(v[0], v[1])), 1e-9)
    return out


def _pts(a: npt.ArrayLike) -> list[list[float]]:
    return [[round(float(x), 3), round(float(y), 3)] for x, y in np.atleast_2d(np.asarray(a))]


def screw_levels(plan: ScrewPlan) -> tuple[str, ...]:
    """The instrumented levels, cranial to caudal."""
    k = SPINE_ORDER.index(plan.bottom)
    return SPINE_ORDER[k - plan.levels + 1 : k + 1]


def build_screws(plan: ScrewPlan, by: Mapping[str, BodyLike]) -> tuple[list[Metal], dict[str, Any]]:
    """Screws (shaft + tulip head) per level and side, and one rod per side."""
    parts: list[Metal] = []
    screws: list[list[list[float]]] = []
    heads: dict[float, list[F64]] = {-0.5: [], 0.5: []}
    levels = screw_levels(plan)
    for name in levels:
        b = by[name]
        d, h = b.depth, b.h_post
        t = math.tan(math.radians(plan.angle_deg))
        for side in (-0.5, 0.5):
            du, dv, _ = (side * x for x in b.split)
            du += side * plan.side_mm
            u_in, u_tip = d / 2 + 0.5 * d, -d / 2 + plan.tip_frac * d
            v_in = -0.18 * h + dv
            entry, tip = b.local_to_mm([[u_in + du, v_in], [u_tip + du, v_in - t * (u_in - u_tip)]])
            axis = _unit(entry - tip)  # posterior along the screw
            parts.append(
                Wire(np.stack([entry, tip]), np.array([3.25, 2.9]), MU_TITANIUM_EXCESS,
                     thread_mm=0.7, pitch_mm=2.8)
            )  # fmt: skip
            head0, head1 = entry + 1.0 * axis, entry + 12.0 * axis
            parts.append(Wire(np.stack([head0, head1]), np.array([5.2, 5.2]),
                              MU_TITANIUM_EXCESS, squash=0.75))  # fmt: skip
            heads[side].append(entry + 6.5 * axis)
            screws.append(_pts([entry, tip]))
    rods: list[list[list[float]]] = []
    for side in (-0.5, 0.5):
        hp = np.stack(heads[side])
        ext0 = hp[0] + 5.0 * _unit(hp[0] - hp[1])
        ext1 = hp[-1] + 5.0 * _unit(hp[-1] - hp[-2])
        rod = np.concatenate([ext0[None], hp, ext1[None]])
        parts.append(Wire(rod, np.full(len(rod), 2.75), MU_TITANIUM_EXCESS))
        rods.append(_pts(rod))
    record = {
        "kind": "pedicle_screws",
        "levels": list(levels),
        "screws_points_mm": screws,
        "rods_points_mm": rods,
    }
    return parts, record


def build_prosthesis(
    plan: ProsthesisPlan, upper: BodyLike, lower: BodyLike, disc: str
) -> tuple[list[Metal], dict[str, Any]]:
    """Two metal end-plates (with keels) on the end-plates facing the disc."""
    parts: list[Metal] = []
    centres = []
    for body, top in ((lower, True), (upper, False)):
        c = body.corners_mm()
        a, p = (c[0], c[1]) if top else (c[3], c[2])
        e = _unit(p - a)  # posterior along the end-plate
        cranial = np.array([e[1], -e[0]])
        into = -cranial if top else cranial  # from the disc into the body
        ang = math.atan2(e[1], e[0])
        mid = (a + p) / 2.0 - 0.04 * body.depth * e
        centre = mid - into * (plan.plate_mm / 2.0 - 0.3)
        half_u = 0.42 * body.depth
        parts.append(Plate((float(centre[0]), float(centre[1])), ang, half_u,
                           plan.plate_mm / 2.0, plan.width_mm, MU_STEEL_EXCESS, 2.5))  # fmt: skip
        keel = mid + into * (plan.keel_mm / 2.0)
        parts.append(Plate((float(keel[0]), float(keel[1])), ang, 0.22 * body.depth,
                           plan.keel_mm / 2.0, 2.0, MU_STEEL_EXCESS))  # fmt: skip
        centres.append(centre)
    record = {"kind": "disc_prosthesis", "disc": disc, "plates_points_mm": _pts(centres)}
    return parts, record


def _wall_frame(wall: F64, s: float) -> tuple[F64, F64, F64]:
    """Point, caudal tangent and anterior normal of a wall polyline at arc length ``s``."""
    p = point_at(wall, np.array([s]))[0]
    t = tangent_at(wall, np.array([s]))[0]
    return p, t, np.array([-t[1], t[0]])


def _arc_near(wall: F64, point: F64) -> float:
    s, _ = project_to_polyline(np.atleast_2d(point), wall)
    return float(s[0])


def build_ivc_filter(
    plan: FilterPlan, by: Mapping[str, BodyLike], walls: Mapping[str, F64]
) -> tuple[list[Metal], dict[str, Any]]:
    """A cone of wires, apex cranial at L2, its axis inside the aortic band."""
    post = walls["posterior"]
    l2 = by["L2"].corners_mm()
    top = l2[0] + plan.top_frac * (l2[3] - l2[0])
    p, tau, nrm = _wall_frame(post, _arc_near(post, top))
    apex = p + plan.offset_mm * nrm
    parts: list[Metal] = [
        Wire(np.stack([apex - 2.5 * tau, apex + 2.0 * tau]), np.array([0.9, 0.9]), MU_STEEL_EXCESS)
    ]
    hook = apex - 2.5 * tau
    parts.append(
        Wire(np.stack([hook, hook - 2.5 * tau + 1.2 * nrm, hook - 3.0 * tau + 2.4 * nrm]),
             np.full(3, 0.3), MU_STEEL_EXCESS)
    )  # fmt: skip
    arms = [(1.0, 1.0)] * 6 if plan.kind == "conical" else [(1.0, 1.0)] * 4 + [(0.45, 0.8)] * 8
    n = len(arms)
    base = []
    for k, (lf, rf) in enumerate(arms):
        phi = plan.phase + 2.0 * math.pi * k / n + (0.3 if lf < 1 else 0.0)
        off = plan.radius_mm * rf * math.cos(phi)
        ln = plan.length_mm * lf
        mid = apex + 0.5 * ln * tau + 0.62 * off * nrm
        end = apex + ln * tau + off * nrm
        out = _unit(end - apex)
        side = math.copysign(1.0, off) if abs(off) > 0.5 else 1.0
        tip = end + 1.5 * out - 1.5 * side * nrm
        poly = np.stack([apex, mid, end, tip]) if lf == 1.0 else np.stack([apex, mid, end])
        parts.append(Wire(poly, np.full(len(poly), 0.25), MU_STEEL_EXCESS))
        if lf == 1.0:
            base.append(end)
    record = {
        "kind": "ivc_filter",
        "design": plan.kind,
        "wires": n,
        "apex_base_points_mm": _pts([apex, np.mean(base, axis=0)]),
    }
    return parts, record


def build_stent_graft(
    plan: StentPlan, by: Mapping[str, BodyLike], walls: Mapping[str, F64], bifurcation_y: float
) -> tuple[list[Metal], dict[str, Any]]:
    """Zig-zag rings between the aortic walls from the L1/L2 to the L4/L5 level."""
    post, ant = walls["posterior"], walls["anterior"]
    s0 = _arc_near(post, by["L2"].corners_mm()[0])
    s1 = _arc_near(post, by["L4"].corners_mm()[3])
    step = 2.0 * plan.amplitude_mm + plan.gap_mm
    parts: list[Metal] = []
    centres = []
    diameters = []
    s = s0 + plan.amplitude_mm
    r_wire = plan.wire_mm / 2.0
    phi = np.linspace(0.0, 2.0 * math.pi, 16 * plan.peaks + 1)
    tri = 2.0 * np.abs((phi * plan.peaks / (2.0 * math.pi)) % 1.0 - 0.5) * 2.0 - 1.0
    while s <= s1 - plan.amplitude_mm + 1e-6:
        p, tau, nrm = _wall_frame(post, s)
        hit = intersect_ray_polyline(p, nrm, ant)
        lumen = float(np.hypot(*(hit[0] - p))) if hit is not None else 20.0
        if p[1] > bifurcation_y:
            lumen = min(lumen, 14.0)
        rad = float(np.clip((lumen - 1.0) / 2.0, 5.0, 15.0))
        c = p + (rad + 0.5) * nrm
        ring = (
            c[None]
            + (plan.amplitude_mm * tri)[:, None] * tau[None]
            + (rad * np.cos(phi))[:, None] * nrm[None]
        )
        parts.append(Wire(ring, np.full(len(ring), r_wire), MU_STEEL_EXCESS))
        centres.append(c)
        diameters.append(2.0 * rad)
        s += step
    if centres:
        p, tau, nrm = _wall_frame(post, s0)
        for k in range(plan.markers):
            m = (
                centres[0]
                - plan.amplitude_mm * tau
                + (diameters[0] / 2.0 * math.cos(math.pi * (k + 0.5) / plan.markers)) * nrm
            )
            parts.append(Wire(np.stack([m, m + 1.2 * tau]), np.array([0.5, 0.5]), 2.0))
    record = {
        "kind": "stent_graft",
        "rings": len(centres),
        "diameter_mm": round(float(np.mean(diameters)), 2) if diameters else 0.0,
        "axis_points_mm": _pts([centres[0], centres[-1]]) if centres else [],
    }
    return parts, record


__all__ = [
    "MU_STEEL_EXCESS",
    "MU_TITANIUM_EXCESS",
    "FilterPlan",
    "Metal",
    "Plate",
    "ProsthesisPlan",
    "ScrewPlan",
    "StentPlan",
    "Wire",
    "build_ivc_filter",
    "build_prosthesis",
    "build_screws",
    "build_stent_graft",
    "render_metal",
    "screw_levels",
]
