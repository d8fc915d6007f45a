"""Anatomy phantom of a lateral lumbar radiograph: spine, pelvis, ribs, soft tissue and aorta.

Geometry is sampled in millimetres in a canonical frame (x grows posteriorly, y caudally; the
origin is the posterior-superior corner of S1) and rasterised as *beam path lengths*: for a
lateral projection every structure contributes ``(mu - mu_soft) * path`` to the line integral.

Modelled (ranges are per patient unless stated):

* Vertebral bodies T8-L5, S1 and the fused sacral segments S2-S5. Posterior height grows
  caudally (T12 ~24 mm, L3-L4 ~28.5 mm, scaled by a patient factor 0.86-1.16 and +-4% per level),
  depth 27-40 mm (x the same factor), lateral width 32-52 mm. Each body is a rounded box with
  concave end-plates (0-2.5 mm, more in osteoporosis / biconcave fractures), anterior waist,
  wedging that follows the curve, corner radius 1.5-4 mm. Its lateral path profile is a
  superellipse (elliptic anteriorly, flatter posteriorly), so the cortical shell (0.4-1.3 mm)
  shows as a bright rim where the beam is tangent (end-plates, anterior and posterior walls).
  Trabecular bone is a band-pass, anisotropic (vertical trabeculae dominant) random texture whose
  density follows bone mineral density (BMD factor 0.45-1.25; low BMD = sparser, coarser
  texture and relatively stronger cortex).
* Left and right halves of each vertebra are projected with small relative shifts (0-2.5 mm) and
  tilts (+-2 deg), giving the double end-plate contours and doubled posterior margins of slight
  axial rotation / lateral tilt.
* Curve: sacral slope 20-50 deg and lumbar lordosis (L1-S1) 10-75 deg distributed mainly over the
  discs (L5/S1 and L4/L5 most), mild thoracic kyphosis above T12; bodies are rotated to follow.
* Discs: posterior heights 4-9 mm at reference, each narrowed by degeneration (factor 0.3-1.1,
  more caudally and with age); optional vacuum phenomenon (gas streak) in degenerated discs.
* Optional compression fracture of one of T12-L4 (~8%): wedge, biconcave or crush (height 55-85%).
* Anterior osteophytes (beaks / spurs 2-9 mm) at end-plate corners, more frequent with age and
  disc degeneration. They sit next to the posterior aortic wall and are bone, never calcification.
* Posterior elements per vertebra (pedicles, transverse processes, laminae, superior and inferior
  articular processes, spinous process) as overlapping ellipsoids with a cortical shell.
* Lower ribs (T10-T12, both sides), iliac wings (crest and arcuate line, both sides offset), sacral
  alae, femoral heads (when the field reaches them).
* Soft tissue: habitus index 0-1 (thin to obese) sets body depth 190-360 mm and lateral width
  270-480 mm (the lateral path through tissue), subcutaneous fat behind the spine 10-90 mm
  (posterior skin line often inside the field), fat fraction; psoas shadows; lung bases above a
  diaphragm dome; bowel gas (large blobs, 0-~25% area) and stool mottling (fine bubbles).
* Aorta: posterior wall 0-6 mm in front of the anterior vertebral line (varying along the
  length), diameter 15-30 mm tapering caudally (aneurysm up to 45 mm in ~4%), gentle tortuosity,
  bifurcation near L4 below which the anterior wall diverges. The aorta itself is not rendered
  (soft tissue); only the wall polylines are returned for the calcification module.

Not modelled: bowel wall/organ outlines (liver, kidneys, bladder), scoliosis, spondylolisthesis,
transitional vertebrae, implants other than clips, beam divergence other than the left/right
offsets, contrast media.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.interpolate import CubicSpline
from scipy.spatial import cKDTree

from aacscore.simulate.geometry import (
    F32,
    F64,
    Frame,
    arc_length,
    ellipse_radius,
    resample_polyline,
    rounded_box_sdf,
    shell_paths,
    smooth_noise,
    soft_inside,
    upsample_bilinear,
)
from aacscore.vertebrae import LABEL_VALUES

# Linear attenuation coefficients (1/mm) at an effective energy of ~50-60 keV.
MU_SOFT = 0.0200
MU_FAT_EXCESS = -0.0025  # fat relative to average soft tissue
MU_CORTEX_EXCESS = 0.030
MU_TRAB_EXCESS = 0.0105  # at BMD factor 1
MU_GAS_EXCESS = -MU_SOFT

BODY_LEVELS: tuple[str, ...] = ("T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")
LABELS: dict[str, int] = LABEL_VALUES
# name: (posterior height, depth, lateral width) in mm at patient scale 1.
_BODY_REF: dict[str, tuple[float, float, float]] = {
    "T8": (19.0, 27.0, 32.0),
    "T9": (20.0, 28.0, 33.0),
    "T10": (21.0, 29.0, 35.0),
    "T11": (22.5, 30.5, 37.0),
    "T12": (24.0, 32.0, 40.0),
    "L1": (26.0, 34.0, 43.0),
    "L2": (27.5, 36.0, 46.0),
    "L3": (28.5, 38.0, 48.0),
    "L4": (28.5, 39.0, 50.0),
    "L5": (26.5, 39.0, 52.0),
    "S1": (27.0, 38.0, 50.0),
}
# Disc below each level: posterior height (mm) at scale 1.
_DISC_REF: dict[str, float] = {
    "T8": 4.0,
    "T9": 4.0,
    "T10": 4.5,
    "T11": 5.0,
    "T12": 6.0,
    "L1": 6.5,
    "L2": 7.0,
    "L3": 7.5,
    "L4": 8.0,
    "L5": 7.0,
}
# Share of the lumbar lordosis taken by each disc (below level) and body.
_LORD_DISC = {"T12": 0.03, "L1": 0.06, "L2": 0.09, "L3": 0.14, "L4": 0.22, "L5": 0.27}
_LORD_BODY = {"L1": 0.01, "L2": 0.02, "L3": 0.03, "L4": 0.05, "L5": 0.08}


@dataclass(frozen=True)
class Osteophyte:
    """Anterior corner spur: corner ``"sup"``/``"inf"``, length and lateral width in mm."""

    corner: str
    length: float
    width: float
    angle: float


@dataclass(frozen=True)
class Body:
    """One vertebral body (plus its posterior elements) in the canonical mm frame."""

    name: str
    centre: tuple[float, float]
    angle: float  # radians; local u = (cos, sin) points posteriorly, v = (-sin, cos) caudally
    depth: float
    h_ant: float
    h_post: float
    width: float
    conc_top: float
    conc_bot: float
    radius: float
    waist: float
    cortex: float
    bmd: float
    post_exp: float
    split: tuple[float, float, float]  # du, dv (mm), dtheta (rad) between left and right halves
    posterior: bool
    spinous_angle: float
    osteophytes: tuple[Osteophyte, ...] = ()
    sacral: bool = False

    def local_to_mm(self, pts: npt.ArrayLike) -> F64:
        """Local (u, v) points to canonical mm."""
        p = np.atleast_2d(np.asarray(pts, dtype=np.float64))
        c, s = math.cos(self.angle), math.sin(self.angle)
        x = self.centre[0] + c * p[:, 0] - s * p[:, 1]
        y = self.centre[1] + s * p[:, 0] + c * p[:, 1]
        return np.stack([x, y], axis=1)

    def corners_local(self) -> F64:
        """Corner points (AS, PS, PI, AI) of the end-plate rims in local coordinates."""
        inset = self.radius * (1.0 - 1.0 / math.sqrt(2.0))
        d = self.depth / 2.0 - inset
        return np.array(
            [
                [-d, -self.h_ant / 2.0 + inset],
                [d, -self.h_post / 2.0 + inset],
                [d, self.h_post / 2.0 - inset],
                [-d, self.h_ant / 2.0 - inset],
            ]
        )

    def corners_mm(self) -> F64:
        """Corner points (AS, PS, PI, AI) in canonical mm."""
        return self.local_to_mm(self.corners_local())

    @property
    def height(self) -> float:
        """Mean of anterior and posterior heights (mm)."""
        return (self.h_ant + self.h_post) / 2.0


@dataclass(frozen=True)
class Tube:
    """A curved tubular bone (rib) or muscle (psoas): centreline (mm) and radii along it."""

    points: F64
    radius: F64
    wall: float  # relative cortical thickness (0 = solid soft tissue)
    mu_excess: float
    squash: float = 1.0  # path length factor (oblique ribs)


@dataclass(frozen=True)
class Anatomy:
    """All sampled geometry of one patient (canonical mm frame)."""

    bodies: tuple[Body, ...]
    vacuum_discs: tuple[tuple[tuple[float, float], float, float, float], ...]
    tubes: tuple[Tube, ...]
    ilium: tuple[dict[str, float], ...]
    femoral_heads: tuple[tuple[float, float, float], ...]
    ala: tuple[float, float, float, float, float]
    soft: dict[str, float]
    walls: dict[str, F64]
    bifurcation_y: float
    params: dict[str, Any] = field(default_factory=dict)

    def body(self, name: str) -> Body:
        """The body named ``name``."""
        for b in self.bodies:
            if b.name == name:
                return b
        raise KeyError(name)


def _axis(alpha: float) -> F64:
    """Cranial unit axis for end-plate angle ``alpha``."""
    return np.array([math.sin(alpha), -math.cos(alpha)])


def _e(alpha: float) -> F64:
    """Posterior unit end-plate direction for angle ``alpha``."""
    return np.array([math.cos(alpha), math.sin(alpha)])


def sample_anatomy(rng: np.random.Generator, ov: dict[str, Any]) -> Anatomy:
    """Sample one patient's anatomy (every draw happens whatever the overrides)."""
    p: dict[str, Any] = {}

    def pick(name: str, value: Any) -> Any:
        v = ov.get(name, value)
        p[name] = v.item() if isinstance(v, np.generic) else v
        return v

    age = pick("age", float(rng.uniform(45, 90)))
    aging = (age - 45.0) / 45.0
    sex = pick("sex", str(rng.choice(["F", "M"])))
    scale = pick("scale", float(np.clip(rng.normal(1.0 if sex == "M" else 0.94, 0.05), 0.86, 1.16)))
    bmd = pick(
        "bmd",
        float(
            np.clip(rng.normal(1.0 - 0.35 * aging * (1.3 if sex == "F" else 0.8), 0.15), 0.45, 1.25)
        ),
    )
    habitus = pick("habitus", float(rng.beta(2.0, 2.2)))
    ss = math.radians(pick("sacral_slope_deg", float(rng.uniform(20, 50))))
    ll_deg = pick(
        "lordosis_deg", float(np.clip(math.degrees(ss) + rng.normal(8.0, 10.0), 10.0, 75.0))
    )
    ll = math.radians(ll_deg)
    kyph = math.radians(pick("kyphosis_deg_per_level", float(rng.uniform(1.5, 5.0))))
    cortex = pick("cortex_mm", float(np.clip(rng.normal(0.85, 0.2), 0.4, 1.3)))
    split_mag = pick("rotation_split_mm", float(rng.gamma(2.0, 0.45)))
    split_dir = float(rng.uniform(0, 2 * math.pi))
    split_tilt = float(rng.normal(0, 0.012))

    frac_level = None
    frac_kind = None
    if rng.random() < pick("fracture_prob", 0.08):
        frac_level = str(rng.choice(["T12", "L1", "L1", "L2", "L3", "L4"]))
        frac_kind = str(rng.choice(["wedge", "biconcave", "crush"]))
    frac_level = pick("fracture_level", frac_level)
    frac_kind = pick("fracture_kind", frac_kind)
    frac_sev = float(rng.uniform(0.55, 0.85))

    degen = {
        lv: float(
            np.clip(
                1.0
                - rng.beta(1.2, 3.0) * (0.4 + 0.8 * aging) * (1.4 if lv in ("L4", "L5") else 1.0),
                0.3,
                1.1,
            )
        )
        for lv in BODY_LEVELS
    }
    p["disc_factors"] = {k: round(v, 3) for k, v in degen.items()}

    # --- build the column upwards from the S1 superior end-plate ---------------------------
    s1_ref = _BODY_REF["S1"]
    bodies: list[Body] = []
    alpha = -ss
    q = np.array([0.0, 0.0])  # posterior-superior corner of S1
    vac: list[tuple[tuple[float, float], float, float, float]] = []

    def make_body(
        name: str, q0: F64, a0: float, wedge: float, hp: float, upward: bool
    ) -> tuple[Body, F64, float]:
        _h_ref, d_ref, w_ref = _BODY_REF.get(name, s1_ref)
        jit = rng.normal(1.0, 0.04, size=3)
        depth = d_ref * scale * jit[1]
        width = w_ref * scale * jit[2]
        a_mid = a0 + wedge / 2.0 if upward else a0 - wedge / 2.0
        ah = _axis(a_mid)
        hp_ = hp * jit[0]
        ha = hp_ + 2.0 * depth * math.tan(wedge / 2.0)
        sign = 1.0 if upward else -1.0
        centre = q0 + sign * (hp_ / 2.0) * ah - (depth / 2.0) * _e(a_mid)
        q1 = q0 + sign * hp_ * ah
        a1 = a0 + wedge if upward else a0 - wedge
        conc = rng.uniform(0.3, 1.6) * (1.6 - 0.6 * bmd)
        conc_t, conc_b = conc * rng.uniform(0.7, 1.2), conc * rng.uniform(0.7, 1.2)
        if name == frac_level:
            if frac_kind == "wedge":
                ha *= frac_sev
            elif frac_kind == "biconcave":
                conc_t += (1 - frac_sev) * hp_ * 0.6
                conc_b += (1 - frac_sev) * hp_ * 0.6
            else:
                ha *= frac_sev
                hp_ *= frac_sev + 0.05
        osteo: list[Osteophyte] = []
        lv_i = BODY_LEVELS.index(name) if name in BODY_LEVELS else len(BODY_LEVELS)
        for corner in ("sup", "inf"):
            below = name if corner == "inf" else (BODY_LEVELS[lv_i - 1] if lv_i > 0 else None)
            dg = 1.0 - degen.get(below or "", 1.0)
            pr = 0.05 + 0.35 * aging + 0.6 * max(dg, 0.0)
            if name.startswith("L") or name == "T12":
                if rng.random() < pr:
                    osteo.append(
                        Osteophyte(
                            corner,
                            float(rng.uniform(2.0, 9.0)),
                            float(rng.uniform(12.0, 30.0)),
                            float(rng.uniform(0.2, 0.7)),
                        )
                    )
        body = Body(
            name=name,
            centre=(float(centre[0]), float(centre[1])),
            angle=float(a_mid),
            depth=float(depth),
            h_ant=float(ha),
            h_post=float(hp_),
            width=float(width),
            conc_top=float(conc_t),
            conc_bot=float(conc_b),
            radius=float(rng.uniform(1.5, 4.0)),
            waist=float(rng.uniform(0.3, 2.0)),
            cortex=float(cortex * rng.uniform(0.85, 1.15)),
            bmd=float(bmd * rng.uniform(0.92, 1.08)),
            post_exp=float(rng.uniform(2.5, 4.5)),
            split=(
                float(split_mag * math.cos(split_dir) + rng.normal(0, 0.2)),
                float(split_mag * math.sin(split_dir) + rng.normal(0, 0.2)),
                float(split_tilt + rng.normal(0, 0.006)),
            ),
            posterior=True,
            spinous_angle=float(
                rng.uniform(0.05, 0.35) if name.startswith("L") else rng.uniform(0.5, 0.9)
            ),
            osteophytes=tuple(osteo),
        )
        return body, q1, a1

    # S1 (downwards from its superior end-plate), then S2-S5 fused, curving posteriorly.
    s1, q_low, a_low = make_body(
        "S1", q, alpha, math.radians(rng.uniform(-4, 4)), 27 * scale, False
    )
    bodies.append(s1)
    for k, (hh, dd) in enumerate(((21.0, 33.0), (17.0, 27.0), (13.0, 21.0), (10.0, 15.0))):
        q_low = q_low + 1.0 * _axis(a_low)
        wedge = math.radians(rng.uniform(6, 14))
        a_mid = a_low - wedge / 2
        depth = dd * scale
        hp = hh * scale
        centre = q_low - (hp / 2.0) * _axis(a_mid) - (depth / 2.0) * _e(a_mid)
        bodies.append(
            Body(
                name=f"S{k + 2}",
                centre=(float(centre[0]), float(centre[1])),
                angle=float(a_mid),
                depth=float(depth),
                h_ant=float(hp),
                h_post=float(hp),
                width=float((44.0 - 7.0 * k) * scale),
                conc_top=0.0,
                conc_bot=0.0,
                radius=3.0,
                waist=float(rng.uniform(0.5, 2.0)),
                cortex=float(cortex * 0.7),
                bmd=float(bmd * 0.9),
                post_exp=2.5,
                split=s1.split,
                posterior=False,
                spinous_angle=0.0,
                sacral=True,
            )
        )
        q_low = q_low - hp * _axis(a_mid)
        a_low = a_low - wedge

    # Lumbar and lower thoracic levels upwards.
    for lv in reversed(BODY_LEVELS):
        disc_ll = _LORD_DISC.get(lv, 0.0) * ll
        if lv.startswith("T") and lv != "T12":
            disc_ll = -kyph * 0.35
        disc_ll += math.radians(rng.normal(0, 1.0))
        dh = _DISC_REF[lv] * scale * degen[lv]
        disc_ll *= 0.6 + 0.4 * degen[lv]
        q_disc = q + dh * _axis(alpha + disc_ll / 2.0)
        if degen[lv] < 0.6 and rng.random() < 0.35 and lv.startswith("L"):
            mid = q + 0.5 * dh * _axis(alpha) - 0.45 * _BODY_REF[lv][1] * scale * _e(alpha)
            vac.append(
                ((float(mid[0]), float(mid[1])), float(alpha), float(rng.uniform(6, 16)), dh)
            )
        q = q_disc
        alpha = alpha + disc_ll
        body_ll = _LORD_BODY.get(lv, 0.0) * ll
        if lv.startswith("T"):
            body_ll = -kyph * 0.65
        body_ll += math.radians(rng.normal(0, 1.2))
        b, q, alpha = make_body(lv, q, alpha, body_ll, _BODY_REF[lv][0] * scale, True)
        bodies.append(b)

    by = {b.name: b for b in bodies}

    # --- ribs (T10-T12, both sides), psoas ---------------------------------------------------
    tubes: list[Tube] = []
    for lv in ("T10", "T11", "T12"):
        b = by[lv]
        if rng.random() < 0.15 and lv == "T12":
            continue
        joint = b.local_to_mm([[b.depth / 2 + 4.0, -b.h_post * 0.3]])[0]
        length = {"T10": 1.0, "T11": 0.75, "T12": 0.45}[lv] * rng.uniform(0.8, 1.2)
        for side in (-1.0, 1.0):
            off = np.array([side * rng.uniform(2, 9), side * rng.uniform(2, 12)])
            t = np.linspace(0.0, 1.0, 24)
            p0 = joint + off
            p1 = p0 + np.array([45.0, 45.0]) * length
            p2 = p0 + np.array([-150.0 * length, 170.0 * length]) * rng.uniform(0.8, 1.1)
            pts = (
                ((1 - t) ** 2)[:, None] * p0
                + (2 * (1 - t) * t)[:, None] * p1
                + (t**2)[:, None] * p2
            )
            rad = 4.5 * scale * (1.0 - 0.3 * t) * rng.uniform(0.85, 1.15)
            tubes.append(
                Tube(pts, rad, 0.3, MU_CORTEX_EXCESS * 0.6, squash=float(rng.uniform(0.5, 1.0)))
            )
    for side in (-1.0, 1.0):
        top = by["T12"].local_to_mm([[side * 3.0, 0.0]])[0]
        bot = by["L5"].local_to_mm([[-by["L5"].depth * 0.6 + side * 4.0, by["L5"].h_ant * 0.8]])[0]
        t = np.linspace(0.0, 1.0, 16)
        pts = (1 - t)[:, None] * top + t[:, None] * bot
        rad = (6.0 + 20.0 * t**0.8) * scale * rng.uniform(0.8, 1.2)
        tubes.append(Tube(pts, rad, 0.0, -MU_FAT_EXCESS * rng.uniform(0.3, 1.2)))

    # --- pelvis ---------------------------------------------------------------------------
    ilium: list[dict[str, float]] = []
    crest_y = by["L4"].centre[1] + rng.uniform(-12, 22)
    cx_il = by["L5"].centre[0] - rng.uniform(0, 25)
    for side in (-1.0, 1.0):
        ilium.append(
            {
                "cx": float(cx_il + side * rng.uniform(2, 10) + rng.normal(0, 3)),
                "top": float(crest_y + side * rng.uniform(0, 8)),
                "ax": float(rng.uniform(62, 85) * scale),
                "ay": float(rng.uniform(85, 115) * scale),
                "plate": float(rng.uniform(4, 9)),
                "rim": float(rng.uniform(10, 22)),
                "rim_w": float(rng.uniform(2.5, 5.0)),
                "tilt": float(rng.normal(0.15, 0.12)),
            }
        )
    fh_y = 105.0 * scale + rng.uniform(-15, 20)
    fh_x = -rng.uniform(20, 55)
    femoral = tuple(
        (
            float(fh_x + side * rng.uniform(3, 12)),
            float(fh_y + side * rng.uniform(0, 10)),
            24.0 * scale,
        )
        for side in (-1.0, 1.0)
    )
    ala_c = by["S2"].centre
    ala = (
        float(ala_c[0] + 5.0),
        float(ala_c[1] - 8.0),
        float(30.0 * scale),
        float(38.0 * scale),
        float(rng.uniform(30, 60)),
    )

    # --- soft tissue ----------------------------------------------------------------------
    spin_x = max(b.local_to_mm([[b.depth * 1.9, 0.0]])[0, 0] for b in bodies if b.posterior)
    soft = {
        "habitus": habitus,
        "depth": float(190 + 170 * habitus + rng.normal(0, 10)),
        "width": float(270 + 210 * habitus + rng.normal(0, 12)),
        "fat": float(np.clip(0.15 + 0.5 * habitus + rng.normal(0, 0.07), 0.05, 0.75)),
        "post_skin": float(spin_x + 10 + 80 * habitus * rng.uniform(0.6, 1.2)),
        "buttock": float(rng.uniform(10, 45) * (0.5 + habitus)),
        "diaphragm_y": float(by["T11"].centre[1] + rng.uniform(-40, 25)),
        "lung_depth": float(rng.uniform(80, 180)),
        "gas": float(rng.beta(1.3, 3.5)),
        "gas_sigma": float(rng.uniform(4.0, 10.0)),
        "stool": float(rng.beta(1.5, 3.0)),
        "exponent": float(rng.uniform(2.5, 5.0)),
    }
    p["soft"] = {k: round(v, 3) for k, v in soft.items()}

    # --- aorta walls -----------------------------------------------------------------------
    walls, bif_y = _sample_aorta(rng, bodies, by, pick)

    p["fracture"] = None if frac_level is None else {"level": frac_level, "kind": frac_kind}
    p["osteophytes"] = sum(len(b.osteophytes) for b in bodies)
    p["vacuum_discs"] = len(vac)
    return Anatomy(
        bodies=tuple(bodies),
        vacuum_discs=tuple(vac),
        tubes=tuple(tubes),
        ilium=tuple(ilium),
        femoral_heads=femoral,
        ala=ala,
        soft=soft,
        walls=walls,
        bifurcation_y=bif_y,
        params=p,
    )


def _sample_aorta(
    rng: np.random.Generator, bodies: list[Body], by: dict[str, Body], pick: Any
) -> tuple[dict[str, F64], float]:
    """Anterior and posterior wall polylines (mm, cranial to caudal, ~0.5 mm steps)."""
    pts: list[F64] = []
    for name in ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"):
        b = by[name]
        d = b.depth / 2
        pts.extend(b.local_to_mm([[-d, -b.h_ant * 0.45], [-d, 0.0], [-d, b.h_ant * 0.45]]))
    ref = np.asarray(pts)
    s = arc_length(ref)
    ok = np.concatenate([[True], np.diff(s) > 1e-6])
    ref, s = ref[ok], s[ok]
    spl_x, spl_y = CubicSpline(s, ref[:, 0]), CubicSpline(s, ref[:, 1])
    # smooth the anterior line a little (bodies are concave, discs bulge)
    t = np.arange(0.0, s[-1], 0.5)
    line = np.stack([spl_x(t), spl_y(t)], axis=1)
    line[:, 0] = ndimage.gaussian_filter1d(line[:, 0], 6.0, mode="nearest")
    tan = np.gradient(line, axis=0)
    tan /= np.hypot(tan[:, 0], tan[:, 1])[:, None]
    n_ant = np.stack([-tan[:, 1], tan[:, 0]], axis=1)  # points anteriorly for a caudal curve
    # convex envelope: wall lies in front of the most anterior bone nearby (corners, discs)
    y_l1 = by["L1"].centre[1]
    y_l4 = by["L4"].centre[1]
    tau = np.clip((line[:, 1] - y_l1) / max(y_l4 - y_l1, 1.0), -1.0, 1.6)
    gap0 = pick("aorta_gap_mm", float(rng.uniform(0.0, 6.0)))
    tort_a = float(rng.uniform(0.0, 4.0))
    tort_l = float(rng.uniform(70.0, 200.0))
    tort_ph = float(rng.uniform(0, 2 * math.pi))
    gap = gap0 + tort_a * np.sin(2 * math.pi * t / tort_l + tort_ph) + rng.uniform(0, 4) * tau
    gap = np.clip(gap, 0.0, 12.0)
    diam0 = pick("aorta_diameter_mm", float(np.clip(rng.normal(21.0, 3.5), 15.0, 30.0)))
    diam = diam0 * (1.0 - 0.12 * np.clip(tau, 0, 1))
    if rng.random() < pick("aneurysm_prob", 0.04):
        amp = float(rng.uniform(8.0, max(10.0, 45.0 - diam0)))
        centre = float(rng.uniform(0.3, 1.0))
        diam = diam + amp * np.exp(-(((tau - centre) / 0.35) ** 2))
        pick("aneurysm_mm", round(amp + diam0, 1))
    bif_tau = float(rng.uniform(0.35, 1.15))
    bif_y = float(y_l1 + bif_tau * (y_l4 - y_l1))
    below = np.clip(tau - bif_tau, 0.0, None)
    diverge = float(rng.uniform(10.0, 45.0)) * below**1.5
    post = line + gap[:, None] * n_ant
    ant = post + (diam + diverge)[:, None] * n_ant
    # keep only from T11 middle to S1 middle
    y_top = by["T11"].centre[1]
    y_bot = by["S1"].centre[1]
    keep = (line[:, 1] >= y_top) & (line[:, 1] <= y_bot)
    walls = {
        "anterior": resample_polyline(ant[keep], 1.0),
        "posterior": resample_polyline(post[keep], 1.0),
    }
    return walls, bif_y


# --------------------------------------------------------------------------------------------
# Rasterisation
# --------------------------------------------------------------------------------------------


def _texture(
    rng: np.random.Generator, shape: tuple[int, int], spacing: float, ang: float, bmd: float
) -> F32:
    """Trabecular texture (mean 1) with dominant structures along the body axis ``ang``.

    Generated on a grid of at least 0.3 mm and upsampled (the pattern scale is 1-3 mm).
    """
    f = max(1, round(0.3 / spacing))
    h, w = -(-shape[0] // f), -(-shape[1] // f)
    sp = spacing * f
    fy = np.fft.fftfreq(h, d=sp)[:, None].astype(np.float32)
    fx = np.fft.rfftfreq(w, d=sp)[None, :].astype(np.float32)
    fr = np.sqrt(fx * fx + fy * fy) + np.float32(1e-6)
    f0 = np.float32(rng.uniform(0.3, 0.6) * (0.8 + 0.2 * bmd))
    band = np.exp(-0.5 * (np.log(fr / f0) / 0.5) ** 2)
    cu, su = math.cos(ang), math.sin(ang)
    fu = (fx * cu + fy * su) / fr
    aniso = np.float32(0.3) + np.float32(1.5 * (1.4 - bmd)) * fu * fu
    spec = np.fft.rfft2(rng.standard_normal((h, w)).astype(np.float32)) * band * aniso
    n = np.fft.irfft2(spec, s=(h, w)).astype(np.float32)
    n /= np.float32(n.std() + 1e-6)
    contrast = np.float32(np.clip(0.16 + 0.3 * (1.2 - bmd), 0.1, 0.4))
    tex = (np.float32(1.0) + contrast * np.tanh(np.float32(1.2) * n)).astype(np.float32)
    if f > 1:
        tex = upsample_bilinear(tex, f, shape)
    return tex


def _ellipsoid(
    frame: Frame,
    out: F32,
    centre: npt.ArrayLike,
    angle: float,
    au: float,
    av: float,
    width: float,
    shell: float,
    mu_c: float,
    mu_t: float,
) -> None:
    """Add an ellipsoidal bone with a cortical shell (path through ``width`` mm) to ``out``."""
    c = np.asarray(centre, dtype=np.float64)
    r = max(au, av)
    crop = frame.crop(np.array([c - r, c + r]), margin_mm=1.0)
    if crop is None:
        return
    u, v = crop.local_grid(c, angle)
    rr = ellipse_radius(u, v, au, av)
    cort, inner = shell_paths(rr, width, shell)
    out[crop.slices] += np.float32(mu_c) * cort + np.float32(mu_t) * inner


def _plate(
    frame: Frame,
    out: F32,
    centre: npt.ArrayLike,
    angle: float,
    half_u: float,
    half_v: float,
    width: float,
    mu_c: float,
    mu_t: float,
) -> None:
    """Add a flat bony plate (rounded rectangle seen face-on) with bright cortical margins."""
    c = np.asarray(centre, dtype=np.float64)
    r = math.hypot(half_u, half_v)
    crop = frame.crop(np.array([c - r, c + r]), margin_mm=1.0)
    if crop is None:
        return
    u, v = crop.local_grid(c, angle)
    taper = np.float32(1.0) - np.float32(0.2) * np.clip(u / np.float32(half_u), -1, 1)
    du = np.abs(u) - np.float32(half_u)
    dv = np.abs(v) - np.float32(half_v) * taper
    d = rounded_box_sdf(du.astype(np.float32), dv.astype(np.float32), min(half_u, half_v) * 0.6)
    inside = soft_inside(d, frame.spacing)
    rim = np.clip(1.0 + d / np.float32(2.0), 0, 1) * inside
    out[crop.slices] += np.float32(width) * (np.float32(mu_t) * inside + np.float32(mu_c) * rim)


def render_bones(
    anat: Anatomy, frame: Frame, out: F32, labels: npt.NDArray[np.uint8], rng: np.random.Generator
) -> None:
    """Add vertebral bodies, posterior elements, osteophytes and sacrum to ``out`` (in place)."""
    px = frame.spacing
    mu_c_body = MU_CORTEX_EXCESS * 0.75
    for b in anat.bodies:
        ext = np.array(
            [
                [-b.depth / 2 - 8, -b.h_ant / 2 - 6],
                [b.depth / 2 + 3, -b.h_post / 2 - 6],
                [b.depth / 2 + 3, b.h_post / 2 + 6],
                [-b.depth / 2 - 8, b.h_ant / 2 + 6],
            ]
        )
        tex_seed = int(rng.integers(0, 2**31))
        if b.posterior:
            _render_posterior(b, frame, out)
        crop = frame.crop(b.local_to_mm(ext), margin_mm=abs(b.split[0]) + abs(b.split[1]) + 1.0)
        if crop is None:
            continue
        tex_ang = b.angle + math.radians(frame.rotation_deg)
        u0, v0 = crop.local_grid(b.centre, b.angle)
        tex = _texture(np.random.default_rng(tex_seed), crop.shape, px, tex_ang, b.bmd)
        mu_t = np.float32(MU_TRAB_EXCESS * b.bmd)
        mu_c = np.float32(mu_c_body)
        acc = np.zeros(crop.shape, dtype=np.float32)
        for side in (-0.5, 0.5):
            du, dv, dth = (side * x for x in b.split)
            c, s = math.cos(dth), math.sin(dth)
            u = c * (u0 - np.float32(du)) + s * (v0 - np.float32(dv))
            v = -s * (u0 - np.float32(du)) + c * (v0 - np.float32(dv))
            d = _body_sdf(b, u, v)
            inside = soft_inside(d, px)
            inner = soft_inside(d + np.float32(b.cortex), px)
            w_out, w_in = _body_widths(b, u)
            cort = w_out * inside - w_in * inner
            acc += np.float32(0.5) * (mu_c * cort + mu_t * w_in * inner * tex)
            for o in b.osteophytes:
                acc += np.float32(0.5) * _osteophyte(b, o, u, v, np.float32(MU_CORTEX_EXCESS))
        out[crop.slices] += acc
        if b.name in LABELS:
            d = _body_sdf(b, u0, v0)
            sl = labels[crop.slices]
            sl[d < 0] = LABELS[b.name]
    for centre, ang, length, h in anat.vacuum_discs:
        crop = frame.crop(np.array([centre]), margin_mm=length)
        if crop is None:
            continue
        u, v = crop.local_grid(centre, ang)
        r = ellipse_radius(u, v, length / 2, max(h * 0.18, 0.6))
        out[crop.slices] += np.float32(MU_GAS_EXCESS * 10.0) * np.sqrt(np.clip(1 - r * r, 0, None))


def _render_posterior(b: Body, frame: Frame, out: F32) -> None:
    """Pedicles, transverse processes, articular pillars (both sides) and spinous process."""
    d, h = b.depth, b.h_post
    mc, mt = MU_CORTEX_EXCESS, MU_TRAB_EXCESS * b.bmd
    # (cu, cv, au, av, angle, lateral width per side, shell, mu_c scale)
    paired = [
        (d / 2 + 0.17 * d, -0.2 * h, 0.21 * d, 0.19 * h, 0.0, 8.0, 0.35, 1.0),  # pedicle
        (d / 2 + 0.30 * d, -0.16 * h, 0.11 * d, 0.13 * h, 0.0, 22.0, 0.2, 0.6),  # transverse
        (d / 2 + 0.45 * d, 0.0 * h, 0.13 * d, 0.60 * h, -0.15, 13.0, 0.3, 1.0),  # pillar
        (d / 2 + 0.38 * d, -0.60 * h, 0.08 * d, 0.2 * h, -0.3, 9.0, 0.35, 1.0),  # sup. artic.
        (d / 2 + 0.56 * d, 0.62 * h, 0.08 * d, 0.22 * h, -0.2, 9.0, 0.35, 1.0),  # inf. artic.
    ]
    for side in (-0.5, 0.5):
        du, dv, dth = (side * x for x in b.split)
        for cu, cv, au, av, ang, width, shell, ms in paired:
            centre = b.local_to_mm([[cu + du, cv + dv]])[0]
            _ellipsoid(frame, out, centre, b.angle + ang + dth, au, av, width, shell, mc * ms, mt)
    ls = 0.5 * d * (1.0 if b.name.startswith("L") else 1.3)
    sa = b.spinous_angle
    cu = d / 2 + 0.55 * d + ls * math.cos(sa)
    cv = 0.1 * h + ls * math.sin(sa)
    centre = b.local_to_mm([[cu, cv]])[0]
    _plate(frame, out, centre, b.angle + sa, ls, 0.27 * h, 5.0, mc * 0.7, mt)
    centre = b.local_to_mm([[d / 2 + 0.6 * d, 0.05 * h]])[0]
    _ellipsoid(frame, out, centre, b.angle, 0.14 * d, 0.3 * h, 10.0, 0.3, mc, mt)


def _body_sdf(b: Body, u: F32, v: F32) -> F32:
    """Approximate signed distance (mm) to the body outline in local coordinates."""
    d2 = np.float32(b.depth / 2.0)
    hh = np.float32(b.h_post) + np.float32(b.h_ant - b.h_post) * (np.float32(0.5) - u / (2 * d2))
    vn = np.clip(2.0 * v / hh, -1.0, 1.0)
    waist = np.float32(b.waist) * (1.0 - vn * vn)
    du = np.maximum(-u - (d2 - waist), u - d2)
    un = np.clip(u / d2, -1.0, 1.0)
    bowl = 1.0 - un * un
    top = -hh / 2 + np.float32(b.conc_top) * bowl
    bot = hh / 2 - np.float32(b.conc_bot) * bowl
    dv = np.maximum(top - v, v - bot)
    return rounded_box_sdf(du.astype(np.float32), dv.astype(np.float32), b.radius)


def _body_widths(b: Body, u: F32) -> tuple[F32, F32]:
    """Lateral path widths (outer, inside the cortex) of the body at local ``u`` (table lookup)."""
    d2 = b.depth / 2.0
    t = b.cortex
    uu = np.linspace(-d2 - 1, d2 + 1, 513)
    p = np.where(uu > 0, b.post_exp, 2.0)
    a = np.clip(np.abs(uu) / d2, 0, 1)
    w_out = b.width * (1.0 - a**p) ** (1.0 / p)
    ai = np.clip(np.abs(uu) / (d2 - t), 0, 1)
    w_in = (b.width - 2 * t) * (1.0 - ai**p) ** (1.0 / p)
    flat = u.ravel()
    wo = np.interp(flat, uu, w_out).astype(np.float32).reshape(u.shape)
    wi = np.interp(flat, uu, w_in).astype(np.float32).reshape(u.shape)
    return wo, wi


def _osteophyte(b: Body, o: Osteophyte, u: F32, v: F32, mu_c: np.float32) -> F32:
    sgn = -1.0 if o.corner == "sup" else 1.0
    h = b.h_ant / 2.0
    cu = -b.depth / 2.0 - o.length * 0.25
    cv = sgn * (h - o.length * 0.1)
    ang = -sgn * o.angle
    c, s = math.cos(ang), math.sin(ang)
    uu = c * (u - np.float32(cu)) + s * (v - np.float32(cv))
    vv = -s * (u - np.float32(cu)) + c * (v - np.float32(cv))
    r = ellipse_radius(uu, vv, o.length * 0.6, max(o.length * 0.22, 1.0))
    cort, inner = shell_paths(r, o.width, 0.45)
    return (mu_c * cort + mu_c * 0.3 * inner).astype(np.float32)


def render_medium(anat: Anatomy, frame: Frame, rng: np.random.Generator) -> tuple[F32, F32]:
    """Soft tissue, lungs, gas, psoas, ribs, pelvis on the medium grid.

    Returns (line integral, soft tissue lateral thickness in mm).
    """
    x, y = frame.full().mm_grid()
    soft = anat.soft
    # body envelope: lateral path through tissue as a superellipse of the AP position
    post = np.float32(soft["post_skin"]) + np.float32(soft["buttock"]) * np.exp(
        -(((y - np.float32(anat.body("S2").centre[1])) / np.float32(70.0)) ** 2)
    )
    ant = post - np.float32(soft["depth"])
    half = (post - ant) / 2
    xc = (post + ant) / 2
    a = np.clip(np.abs(x - xc) / half, 0, 1)
    ex = np.float32(soft["exponent"])
    width = np.float32(soft["width"]) * (1.0 + np.float32(0.12) * np.tanh((y - 40.0) / 60.0))
    thick = (width * (1.0 - a**ex) ** (1.0 / ex)).astype(np.float32)
    edge = soft_inside((np.abs(x - xc) - half).astype(np.float32), 1.5)
    thick *= edge
    lint = np.float32(MU_SOFT) * thick
    lint += np.float32(MU_FAT_EXCESS * soft["fat"]) * thick
    # lungs above the diaphragm dome (posterior recess deeper)
    dia = np.float32(soft["diaphragm_y"]) + np.float32(0.25) * (x - np.float32(20.0))
    lung = np.clip((dia - y) / np.float32(25.0), 0, 1) * np.clip((post - x - 15.0) / 40.0, 0, 1)
    lint += np.float32(MU_GAS_EXCESS * soft["lung_depth"]) * lung * edge
    # bowel gas: smooth blobs of varying depth in the abdomen, plus fine stool mottling
    l1 = anat.body("L1")
    abd = np.clip((x - ant - 10) / 30.0, 0, 1) * np.clip(
        (np.float32(l1.centre[0] + 30) - x) / 30.0, 0, 1
    )
    abd *= np.clip((y - dia) / 30.0, 0, 1)
    g = _coarse_noise(rng, frame, soft["gas_sigma"])
    thr = np.float32(2.3 - 1.8 * soft["gas"])
    gas = np.clip(g - thr, 0, None) ** np.float32(0.6) * np.float32(rng.uniform(10, 28))
    fine = _coarse_noise(rng, frame, 0.9)
    patch = _coarse_noise(rng, frame, 14.0)
    stool = np.clip((fine - 0.6) * 1.5, 0, 1) * np.clip(patch - (1.3 - 1.6 * soft["stool"]), 0, 1)
    gas += stool * np.float32(rng.uniform(6, 16))
    lint += np.float32(MU_GAS_EXCESS) * gas * abd
    cf = max(1, round(2.0 / frame.spacing))
    muscle = np.zeros(frame.coarse(cf).shape, dtype=np.float32)
    for tube in anat.tubes:
        if tube.wall > 0:
            _tube(frame, tube, lint)
        else:
            _tube(frame.coarse(cf), tube, muscle)
    lint += upsample_bilinear(muscle, cf, frame.shape)
    for il in anat.ilium:
        lint += _ilium(x, y, il)
    for fx, fy, r in anat.femoral_heads:
        rr = np.sqrt((x - np.float32(fx)) ** 2 + (y - np.float32(fy)) ** 2) / np.float32(r)
        cort, inner = shell_paths(rr.astype(np.float32), 2 * r, 0.06)
        lint += np.float32(MU_CORTEX_EXCESS * 0.4) * cort + np.float32(MU_TRAB_EXCESS * 0.6) * inner
        rr2 = rr / np.float32(1.3)
        ring = np.exp(-(((rr2 - 1.0) / 0.04) ** 2)) * (y < np.float32(fy + 0.2 * r))
        lint += np.float32(MU_CORTEX_EXCESS * 4) * ring.astype(np.float32)
    ax, ay, rx, ry, wid = anat.ala
    r_ala = ellipse_radius(x - np.float32(ax), y - np.float32(ay), rx, ry)
    cort, inner = shell_paths(r_ala, wid, 0.03)
    lint += np.float32(MU_CORTEX_EXCESS * 0.3) * cort + np.float32(MU_TRAB_EXCESS) * inner
    return lint.astype(np.float32), thick


def _coarse_noise(rng: np.random.Generator, frame: Frame, sigma_mm: float) -> F32:
    """Unit-variance smooth noise on ``frame``'s grid, generated coarsely for large sigma."""
    f = max(1, int(sigma_mm / frame.spacing / 3))
    shape = (-(-frame.shape[0] // f), -(-frame.shape[1] // f))
    n = smooth_noise(rng, shape, sigma_mm / (frame.spacing * f))
    return upsample_bilinear(n, f, frame.shape)


def _tube(frame: Frame, tube: Tube, out: F32) -> None:
    """Add a rib (cortical tube) or muscle (solid) along a centreline to ``out``."""
    rmax = float(tube.radius.max())
    crop = frame.crop(tube.points, margin_mm=rmax + 2)
    if crop is None:
        return
    cx, cy = crop.mm_grid()
    dense = resample_polyline(tube.points, max(frame.spacing * 0.5, 0.2))
    sd = arc_length(dense)
    pts = np.stack([cx.ravel(), cy.ravel()], axis=1).astype(np.float64)
    dist, j = cKDTree(dense).query(pts, distance_upper_bound=rmax + 1.0)
    ok = np.isfinite(dist)
    if not ok.any():
        return
    idx = np.flatnonzero(ok)
    s = sd[j[ok]]
    rad = np.interp(s, arc_length(tube.points), tube.radius)
    r = (dist[ok] / rad).astype(np.float32)
    end = np.clip(np.minimum(s, sd[-1] - s) / 4.0, 0, 1).astype(np.float32)
    if tube.wall > 0:
        cort, inner = shell_paths(r, 1.0, tube.wall)
        val = (cort * np.float32(tube.mu_excess) + inner * np.float32(MU_TRAB_EXCESS)) * 2 * rad
    else:
        val = np.sqrt(np.clip(1 - r * r, 0, None)) * 2 * rad * np.float32(tube.mu_excess)
    flat = np.zeros(crop.shape[0] * crop.shape[1], dtype=np.float32)
    flat[idx] = val * end * np.float32(tube.squash)
    out[crop.slices] += flat.reshape(crop.shape)


def _ilium(x: F32, y: F32, il: dict[str, float]) -> F32:
    """Iliac wing: plate fading caudally and anteriorly, bright crest, arcuate line."""
    cx, top, ax, ay = il["cx"], il["top"], il["ax"], il["ay"]
    cy = top + ay
    c, s = math.cos(il["tilt"]), math.sin(il["tilt"])
    dx, dy = x - np.float32(cx), y - np.float32(cy)
    u = (c * dx + s * dy).astype(np.float32)
    v = (-s * dx + c * dy).astype(np.float32)
    r = ellipse_radius(u, v, ax, ay)
    d = (r - 1.0) * np.float32(min(ax, ay))
    inside = soft_inside(d.astype(np.float32), 3.0)
    fade = np.clip((np.float32(0.5 * ay) - v) / np.float32(0.8 * ay), 0, 1)
    fade *= np.clip((u + np.float32(0.9 * ax)) / np.float32(0.5 * ax), 0, 1)
    val = np.float32(il["plate"]) * inside * fade
    crest = np.clip(1.0 + d / np.float32(il["rim_w"]), 0, 1) * soft_inside(
        d.astype(np.float32), 1.5
    )
    crest *= np.clip(-v / np.float32(0.4 * ay), 0, 1)
    val += np.float32(il["rim"]) * crest
    ar = ellipse_radius(u + np.float32(0.2 * ax), v - np.float32(0.5 * ay), 0.7 * ax, 0.75 * ay)
    arc = np.exp(-(((ar - 1.0) / 0.02) ** 2)) * (v > np.float32(0.1 * ay)) * (u > -0.5 * ax)
    arc *= np.clip((np.float32(0.9 * ay) - v) / np.float32(0.3 * ay), 0, 1)
    val += np.float32(il["rim"] * 0.3) * arc.astype(np.float32)
    return (np.float32(MU_CORTEX_EXCESS) * val).astype(np.float32)
