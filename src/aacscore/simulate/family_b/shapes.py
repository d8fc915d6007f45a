"""Family B skeleton: per-level lumbar morphometry, the lordotic chain, posterior elements, sacrum,
pelvis and ribs, all in a canonical millimetre frame (x grows posteriorly, y caudally).

Vertebral bodies follow published lumbar morphometry (Panjabi et al. 1992, Zhou et al. 2000):
end-plate depth 30-37 mm from T11 to L5, anterior/posterior heights 22-27 mm with the L5
posterior wall shorter than the anterior, discs 6-11 mm growing caudally. A patient draws a size
factor (0.85-1.2), per-level jitter (4 %), a sacral slope (22-55 deg), a lordosis factor that
scales the disc wedges, disc degeneration (height loss with age) and shape details (end-plate
concavity, anterior waist, corner rounding, cortex). Each body is an analytic shape in its own
``(u, v)`` frame (u anterior, v cranial): a wedge with concave end-plates, a waisted anterior
wall and rounded corners. Its four contract corners are the outline points nearest to the
wedge's sharp corners.

Bone appearance per body: a trabecular texture seed, its strength and anisotropy (vertical
trabeculae; osteoporosis thins the horizontal ones first, so low-BMD bodies are more
anisotropic, fainter and framed by relatively preserved end-plates and cortex), a rim whose
brightness varies around the outline (random low harmonics), end-plates denser than the walls,
an edge blur (partial volume of the curved lateral surface) and, with patient rotation or
scoliosis, a double end-plate contour (the two lateral halves projecting at different heights).

Sacrum: S1-S5 are one fused, curved, tapering bone (:attr:`Skeleton.sacrum`, an outline that
starts at S1's superior end-plate, the promontory); S1 keeps its own body for the label and
corners only. Pelvis: sacral ala, both iliac wings as overlapping ground-glass plates with
cortical rims, iliac crests, arcuate and sacroiliac joint lines, femoral heads with acetabular
rims.

Not modelled: fractures, spondylolisthesis, osteophyte bridges, transitional vertebrae.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

LUMBAR: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")
SACRAL: tuple[str, ...] = ("S1", "S2", "S3", "S4", "S5")
MORPHOMETRY: dict[str, tuple[float, float, float]] = {
    # end-plate depth, anterior height, posterior height (mm, adult means)
    "T11": (29.5, 21.5, 23.0),
    "T12": (31.5, 23.0, 25.0),
    "L1": (33.5, 24.5, 26.5),
    "L2": (35.0, 25.5, 27.0),
    "L3": (36.0, 26.0, 26.5),
    "L4": (36.5, 26.0, 25.5),
    "L5": (37.0, 26.5, 23.0),
    "S1": (36.0, 25.0, 21.0),
    "S2": (30.0, 20.0, 18.0),
    "S3": (25.0, 16.0, 15.0),
    "S4": (20.0, 13.0, 12.0),
    "S5": (15.0, 10.0, 9.0),
}
DISCS: dict[str, tuple[float, float]] = {
    # mid height (mm), lordotic wedge (deg) of the disc below each body
    "T11": (5.5, -3.0),
    "T12": (7.0, 0.0),
    "L1": (8.5, 2.0),
    "L2": (9.5, 4.0),
    "L3": (10.0, 6.0),
    "L4": (10.5, 9.0),
    "L5": (9.5, 12.0),
}


@dataclass(frozen=True)
class Body:
    """One vertebral body (analytic shape in its ``(u, v)`` frame; see module docstring)."""

    name: str
    centre: F64
    phi: float
    depth: float
    h_ant: float
    h_post: float
    concave_sup: float
    concave_inf: float
    waist: float
    radius: float
    cortex: float
    density: float
    tex_seed: int = 0
    tex_amp: float = 0.3
    tex_aniso: float = 3.0
    rim_seed: int = 0
    plate_gain: float = 1.0
    blur_mm: float = 0.5
    double_mm: float = 0.0

    @property
    def e(self) -> F64:
        """Unit vector along the mid-axis end-plate direction, pointing anteriorly."""
        return np.array([-math.cos(self.phi), math.sin(self.phi)])

    @property
    def n(self) -> F64:
        """Unit cranial vector."""
        return np.array([-math.sin(self.phi), -math.cos(self.phi)])

    @property
    def beta(self) -> float:
        """Half the wedge angle between the end-plates."""
        return math.atan((self.h_ant - self.h_post) / (2.0 * self.depth))

    def to_mm(self, u: npt.ArrayLike, v: npt.ArrayLike) -> F64:
        uu, vv = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
        return self.centre + uu[..., None] * self.e + vv[..., None] * self.n

    def corners(self) -> F64:
        """AS, PS, PI, AI (order of :class:`aacscore.vertebrae.Corner`) on the rounded outline."""
        a, k = self.depth / 2.0, self.radius * (1.0 - 1.0 / math.sqrt(2.0))
        u = np.array([a - k, -a + k, -a + k, a - k])
        v = np.array(
            [self.h_ant / 2 - k, self.h_post / 2 - k, -self.h_post / 2 + k, -self.h_ant / 2 + k]
        )
        return self.to_mm(u, v)

    def sup_mid(self) -> F64:
        return self.to_mm(0.0, (self.h_ant + self.h_post) / 4.0)

    def inf_mid(self) -> F64:
        return self.to_mm(0.0, -(self.h_ant + self.h_post) / 4.0)


@dataclass(frozen=True)
class Slab:
    """A super-elliptic bone part in a body's frame: centre ``(u, v)``, half sizes, extra tilt
    (rad), lateral path ``width`` (mm), trabecular ``density``, cortex thickness, ``taper``, the
    super-ellipse ``power`` (2 = oval, larger = boxier) and an optional facet joint line across
    it at ``facet_v`` (slab frame)."""

    u: float
    v: float
    hu: float
    hv: float
    tilt: float
    radius: float
    width: float
    density: float
    cortex: float
    taper: float = 0.0
    power: float = 2.0
    facet_v: float | None = None


@dataclass(frozen=True)
class Tube:
    """A bone bar along a polyline (ribs, crests, lines): radius and densities."""

    points: F64
    radius: float
    density: float
    cortex: float


@dataclass(frozen=True)
class Plate:
    """A thin bone plate seen en face (iliac wing, sacral mass): polygon, line integral, edge
    ramp and the extra line integral of its cortical rim (seen tangentially at the border)."""

    points: F64
    value: float
    edge_mm: float
    rim: float = 0.0


@dataclass
class Skeleton:
    """All bones of one patient (canonical mm)."""

    bodies: dict[str, Body]
    slabs: list[tuple[str, Slab, F64]] = field(default_factory=list)
    tubes: list[Tube] = field(default_factory=list)
    plates: list[Plate] = field(default_factory=list)
    sacrum: F64 | None = None
    params: dict[str, Any] = field(default_factory=dict)


def _next_up(
    lower: Body,
    name: str,
    dims: tuple[float, float, float],
    disc: tuple[float, float],
    shape: dict[str, Any],
) -> Body:
    """The body above ``lower`` across a disc of (mid height, wedge rad)."""
    depth, ha, hp = dims
    h, wedge = disc
    phi_sup = lower.phi - lower.beta
    phi_inf = phi_sup - wedge
    mid_phi = phi_sup - wedge / 2.0
    m_inf = lower.sup_mid() + h * np.array([-math.sin(mid_phi), -math.cos(mid_phi)])
    beta = math.atan((ha - hp) / (2.0 * depth))
    phi = phi_inf - beta
    n = np.array([-math.sin(phi), -math.cos(phi)])
    centre = m_inf + n * (ha + hp) / 4.0
    return Body(name, centre, phi, depth, ha, hp, **shape)


def _next_down(
    upper: Body,
    name: str,
    dims: tuple[float, float, float],
    gap: float,
    wedge: float,
    shape: dict[str, Any],
) -> Body:
    """The (fused sacral) body below ``upper``; ``wedge`` < 0 curves the sacrum forward."""
    depth, ha, hp = dims
    phi_inf = upper.phi + upper.beta
    phi_sup = phi_inf - wedge
    mid_phi = phi_inf - wedge / 2.0
    m_sup = upper.inf_mid() - gap * np.array([-math.sin(mid_phi), -math.cos(mid_phi)])
    beta = math.atan((ha - hp) / (2.0 * depth))
    phi = phi_sup + beta
    n = np.array([-math.sin(phi), -math.cos(phi)])
    centre = m_sup - n * (ha + hp) / 4.0
    return Body(name, centre, phi, depth, ha, hp, **shape)


def _chaikin(poly: F64, rounds: int) -> F64:
    """Corner-cutting smoothing of a closed polygon."""
    p = poly
    for _ in range(rounds):
        q = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q], axis=1).reshape(-1, 2)
    return np.asarray(p)


def sacrum_outline(bodies: dict[str, Body]) -> F64:
    """Closed outline (mm) of the fused sacrum: S1's superior end-plate (the promontory, with its
    concavity), down the posterior faces of S1-S5 to a rounded tip and back up the anterior,
    concave-forward faces; corner-cut so the segments merge into one tapering bone."""
    s1 = bodies["S1"]
    a = s1.depth / 2
    u = np.linspace(a, -a, 17)
    t = u / a
    h = s1.h_post + (s1.h_ant - s1.h_post) * (t + 1) / 2
    top = s1.to_mm(u, h / 2 - s1.concave_sup * (1 - t * t))
    post, ant = [], []
    for name in SACRAL:
        b = bodies[name]
        c = b.corners()
        post += [b.to_mm(-b.depth / 2, b.h_post / 2 * 0.3), c[2]]
        ant += [b.to_mm(b.depth / 2, 0.0), c[3]]
    s5 = bodies["S5"]
    tip = [s5.to_mm(-s5.depth * 0.15, -s5.h_ant * 0.75), s5.to_mm(s5.depth * 0.2, -s5.h_ant * 0.7)]
    poly = np.concatenate([top, np.array(post), np.array(tip), np.array(ant[::-1])])
    return _chaikin(poly, 2)


def sample_skeleton(rng: np.random.Generator, ov: dict[str, object]) -> Skeleton:
    """Draw one patient's skeleton (sizes, chain, posterior elements, pelvis, ribs)."""
    age = float(rng.uniform(40, 88))
    sex = str(rng.choice(["F", "M"]))
    scale = float(np.clip(rng.normal(0.96 if sex == "F" else 1.04, 0.07), 0.85, 1.2))
    scale = float(ov.get("scale", scale))  # type: ignore[arg-type]
    bmd = float(np.clip(rng.normal(1.0 - 0.006 * (age - 50), 0.15), 0.45, 1.3))
    if rng.random() < 0.15:  # frank osteoporosis
        bmd = float(rng.uniform(0.4, 0.6))
    bmd = float(ov.get("bmd", bmd))  # type: ignore[arg-type]
    if not 0.2 <= bmd <= 2.0:
        raise ValueError(f"bmd must lie in [0.2, 2.0], got {bmd}")
    poro = float(np.clip((0.85 - bmd) / 0.4, 0.0, 1.0))  # 0 normal .. 1 severe
    rotation = float(abs(rng.normal(0, 1.2)) if rng.random() < 0.35 else 0.0)
    slope = math.radians(float(np.clip(rng.normal(38, 7), 22, 55)))
    lordosis = float(np.clip(rng.normal(1.0, 0.22), 0.5, 1.5))
    degen = float(np.clip((age - 45) / 45 * rng.uniform(0.2, 1.0), 0.0, 0.8))

    def shape(density: float) -> dict[str, Any]:
        return {
            "concave_sup": float(rng.uniform(0.6, 2.2)),
            "concave_inf": float(rng.uniform(0.8, 2.6)),
            "waist": float(rng.uniform(0.4, 2.2)),
            "radius": float(rng.uniform(1.5, 3.2)),
            "cortex": float(rng.uniform(0.6, 1.3)),
            "density": density * float(rng.uniform(0.9, 1.1)),
            "tex_seed": int(rng.integers(0, 2**31)),
            "tex_amp": float(rng.uniform(0.25, 0.45) + 0.25 * poro),
            "tex_aniso": float(rng.uniform(2.0, 3.5) + 2.5 * poro),
            "rim_seed": int(rng.integers(0, 2**31)),
            "plate_gain": float(rng.uniform(1.0, 1.5) * (1.0 + 0.8 * poro)),
            "blur_mm": float(rng.uniform(0.3, 1.1)),
            "double_mm": float(rotation * rng.uniform(0.8, 1.6)) if rotation > 0.8 else 0.0,
        }

    def dims(name: str) -> tuple[float, float, float]:
        d, ha, hp = MORPHOMETRY[name]
        j = rng.normal(1.0, 0.04, 3)
        return d * scale * j[0], ha * scale * j[1], hp * scale * j[2]

    trab = 0.16 * bmd * (1.0 - 0.25 * poro)  # trabecular loss runs ahead of the cortex
    s1d = dims("S1")
    beta1 = math.atan((s1d[1] - s1d[2]) / (2 * s1d[0]))
    s1 = Body("S1", np.zeros(2), slope + beta1, *s1d, **shape(trab * 0.95))
    # translate so the S1 superior end-plate midpoint is the origin
    s1 = replace(s1, centre=s1.centre - s1.sup_mid())
    bodies: dict[str, Body] = {"S1": s1}
    lower = s1
    for name in reversed(LUMBAR):
        h, w = DISCS[name]
        loss = 1.0 - degen * float(rng.uniform(0.0, 0.6)) * (1.4 if name in ("L4", "L5") else 1)
        disc = (
            h * scale * max(loss, 0.35) * float(rng.normal(1.0, 0.08)),
            math.radians(w * lordosis + float(rng.normal(0, 1.5))),
        )
        lower = _next_up(lower, name, dims(name), disc, shape(trab))
        bodies[name] = lower
    upper = s1
    for name in SACRAL[1:]:
        fused = {**shape(trab * 0.8), "concave_sup": 0.0, "concave_inf": 0.0}
        upper = _next_down(
            upper, name, dims(name), 0.0, -math.radians(float(rng.uniform(6, 16))), fused
        )
        bodies[name] = upper
    sk = Skeleton(bodies)
    sk.sacrum = sacrum_outline(bodies)
    sk.params.update(
        age=age,
        sex=sex,
        scale=scale,
        bmd=bmd,
        sacral_slope_deg=math.degrees(slope),
        lordosis=lordosis,
        degeneration=degen,
        osteoporosis=poro,
        rotation=rotation,
    )
    _posterior_elements(rng, sk, scale, bmd)
    _sacrum_and_pelvis(rng, sk, scale, bmd)
    _ribs(rng, sk, scale, bmd)
    return sk


def _posterior_elements(rng: np.random.Generator, sk: Skeleton, sc: float, bmd: float) -> None:
    """Pedicles (dense ovals whose base overlaps the posterior third of the body), articular
    pillars crossed by the facet joint line, faint transverse-process bands, laminae and tapering
    spinous processes; the bilateral parts drawn twice with a small offset (patient rotation,
    divergent beam)."""
    split = rng.normal(0, 0.8, 2) * sc + np.array([1.0, 0.5]) * float(sk.params["rotation"]) * sc
    sk.params["bilateral_split_mm"] = float(np.hypot(*split))
    for name in LUMBAR:
        b = sk.bodies[name]
        a, hm = b.depth / 2, (b.h_ant + b.h_post) / 2
        lp = float(rng.uniform(8, 12)) * sc  # pedicle length
        ph = float(rng.uniform(0.45, 0.6)) * hm
        into = float(rng.uniform(0.12, 0.3)) * b.depth  # projection over the body
        dens = 0.12 * bmd
        ped = Slab(
            -a - lp / 2 + into / 2,
            hm / 2 - ph / 2 - 1.5,
            (lp + into) / 2,
            ph / 2,
            float(rng.normal(0.0, 0.08)),
            min(3.0, ph / 3),
            8.0 * sc,
            dens * 1.2,
            1.6,
            power=float(rng.uniform(2.0, 2.6)),
        )
        pil_u = -a - lp - 5.0 * sc
        pil_hv = hm / 2 + 5.0 * sc
        pillar = Slab(
            pil_u,
            0.5,
            5.5 * sc,
            pil_hv,
            -float(rng.normal(0.15, 0.05)),
            3.0,
            10.0 * sc,
            dens * 1.1,
            1.2,
            power=float(rng.uniform(2.4, 3.4)),
            facet_v=-pil_hv * float(rng.uniform(0.55, 0.8)),
        )
        tp = Slab(
            -a - lp * 0.5,
            hm * float(rng.uniform(0.0, 0.2)),
            float(rng.uniform(6.0, 9.0)) * sc,
            float(rng.uniform(2.5, 4.0)) * sc,
            float(rng.normal(0.0, 0.15)),
            2.5,
            16.0 * sc,
            dens * float(rng.uniform(0.15, 0.35)),
            0.3,
            power=2.2,
        )
        for off in (split / 2, -split / 2):
            for part in (ped, pillar, tp):
                sk.slabs.append((name, part, np.asarray(off)))
        # lamina and spinous process: midline, once
        spl = float(rng.uniform(22, 30) if name.startswith("L") else rng.uniform(28, 36)) * sc
        sh = float(rng.uniform(13, 19)) * sc
        tilt = -float(rng.normal(0.25 if name.startswith("L") else 0.55, 0.08))
        lam = Slab(
            pil_u - 6.0 * sc,
            -1.0,
            6.0 * sc,
            hm / 2 * 0.8,
            0.1,
            3.0,
            12.0 * sc,
            dens * 0.8,
            1.0,
            power=2.5,
        )
        spin = Slab(
            pil_u - 8.0 * sc - spl / 2,
            -2.0 + spl / 2 * math.sin(tilt) * 0.6,
            spl / 2,
            sh / 2,
            tilt,
            5.0,
            7.0 * sc,
            dens * 0.55,
            0.9,
            taper=0.3,
            power=float(rng.uniform(2.2, 3.0)),
        )
        sk.slabs.append((name, lam, np.zeros(2)))
        sk.slabs.append((name, spin, np.zeros(2)))


def _bezier(p0: F64, p1: F64, p2: F64, n: int = 40) -> F64:
    t = np.linspace(0, 1, n)[:, None]
    return np.asarray((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2)


def _sacrum_and_pelvis(rng: np.random.Generator, sk: Skeleton, sc: float, bmd: float) -> None:
    """Posterior sacral mass, both iliac wings with crests (offset), arcuate lines, femoral
    heads."""
    bd = sk.bodies
    s1, s5 = bd["S1"], bd["S5"]
    c = s1.corners()
    ps, tip = c[1], s5.to_mm(0.0, -s5.h_ant / 2)
    back = -s1.e  # posterior
    mass = np.array(
        [
            ps + 2 * s1.n,
            ps + back * 24 * sc + s1.n * 3,
            ps + back * 30 * sc - s1.n * 25 * sc,
            bd["S3"].to_mm(-bd["S3"].depth / 2 - 18 * sc, 0.0),
            tip + back * 6,
            tip,
            bd["S3"].to_mm(-bd["S3"].depth / 2, 0.0),
            s1.to_mm(-s1.depth / 2, 0.0),
        ]
    )
    sk.plates.append(Plate(mass, 2.0 * bmd, 4.0, rim=1.0 * bmd))
    # sacral ala / lateral mass over S1-S2
    ala = np.array(
        [
            c[0] + s1.n * 4,
            ps + s1.n * 6 + back * 6,
            ps + back * 18 - s1.n * 30,
            bd["S2"].to_mm(bd["S2"].depth / 2, -5),
        ]
    )
    sk.plates.append(Plate(ala, 1.2 * bmd, 6.0, rim=0.8 * bmd))
    # sacroiliac joints: ear-shaped (auricular) double lines over S1-S2, one per side
    for k in range(2):
        o = (k - 0.5) * float(rng.uniform(2, 8)) * sc * (back + 0.3 * s1.n)
        top = ps + back * 10 * sc + s1.n * 2 + o
        low = bd["S2"].to_mm(-bd["S2"].depth / 2 - 8 * sc, -bd["S2"].h_post / 2) + o
        bulge = (top + low) / 2 + s1.e * 14 * sc
        for gap in (0.0, float(rng.uniform(1.5, 3.0))):
            line = _bezier(top + back * gap, bulge + back * gap, low + back * gap, 24)
            sk.tubes.append(Tube(line, 0.7, 0.0, 0.7 * bmd))
    l5 = bd["L5"].centre
    apex0 = l5 + np.array([rng.uniform(5, 25), rng.uniform(-30, 0)]) * sc
    offset = np.array([rng.uniform(-12, 12), rng.uniform(-4, 14)]) * sc
    sk.params["iliac_offset_mm"] = float(np.hypot(*offset))
    for k in range(2):
        apex = apex0 + k * offset
        mag = 1.0 + 0.05 * k
        asis = apex + np.array([-rng.uniform(60, 85), rng.uniform(30, 50)]) * sc * mag
        psis = apex + np.array([rng.uniform(45, 65), rng.uniform(35, 55)]) * sc * mag
        crest = _bezier(asis, apex + np.array([-10, -18]) * sc, psis)
        notch = psis + np.array([-15, 55]) * sc * mag
        acet = apex + np.array([-25, 120]) * sc * mag
        aiis = asis + np.array([8, 30]) * sc * mag
        wing = np.concatenate([crest, [notch, acet, aiis]])
        sk.plates.append(Plate(wing, 1.2 * bmd * float(rng.uniform(0.8, 1.2)), 8.0, rim=0.6 * bmd))
        sk.tubes.append(Tube(crest, 2.0 * sc, 0.06 * bmd, 0.6))
        arc = _bezier(
            psis + np.array([-30, 25]) * sc,
            apex + np.array([-20, 70]) * sc,
            acet + np.array([5, 10]) * sc,
            30,
        )
        sk.tubes.append(Tube(arc, 1.4 * sc, 0.2 * bmd, 0.8))
        head = apex + np.array([-35, 150]) * sc * mag
        ball = np.stack([head, head + np.array([0.01, 0.0])])
        rh = 23 * sc * mag
        sk.tubes.append(Tube(ball, rh, 0.045 * bmd, 2.0))
        ang = np.linspace(-0.6, 2.6, 30) + math.pi  # acetabular roof and posterior rim
        rim = head + (rh + 2.5) * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        sk.tubes.append(Tube(rim, 2.2 * sc, 0.15 * bmd, 1.2))


def _ribs(rng: np.random.Generator, sk: Skeleton, sc: float, bmd: float) -> None:
    """T11 and T12 rib pairs: from the costovertebral joint back, then down and forward."""
    split = np.array([rng.uniform(4, 16), rng.uniform(-6, 6)]) * sc
    for name, length in (("T11", rng.uniform(150, 210)), ("T12", rng.uniform(90, 140))):
        b = sk.bodies[name]
        head = b.to_mm(-b.depth / 2 - 4.0, b.h_post / 4)
        back = -b.e
        for k in range(2):
            base = head + k * split
            p1 = base + back * 35 * sc - b.n * 25 * sc
            p2 = base + back * 5 * sc - b.n * length * 0.55 * sc
            end = base - back * length * 0.4 * sc - b.n * length * 0.9 * sc
            pts = np.concatenate(
                [_bezier(base, p1, p2, 20), _bezier(p2, p2 + (p2 - p1) * 0.5, end, 20)[1:]]
            )
            sk.tubes.append(Tube(pts, float(rng.uniform(3.5, 5.0)) * sc, 0.07 * bmd, 0.6))


__all__ = [
    "DISCS",
    "LUMBAR",
    "MORPHOMETRY",
    "SACRAL",
    "Body",
    "Plate",
    "Skeleton",
    "Slab",
    "Tube",
    "sample_skeleton",
]
