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

Extended variety (``variety="extended"``, :func:`sample_variety`): drawn per film from a separate
random stream (``default_rng([seed, index, 7])``), so the standard draws, and every standard film,
stay as they are; each feature is applied to the same patient and recorded, with what its truth
became, in ``params.anatomy.variety`` of the case JSON:

* Flexion (15%) / extension (15%) views: the column above each lumbar disc is rotated about a
  point in the disc (discs wedge open posteriorly in flexion, anteriorly in extension). Flexion
  sets the L1-S1 lordosis (angle between the L1 and S1 superior end-plates, truth corners) to
  -20..0 deg (upper lumbar discs kyphotic, L5/S1 still lordotic), no lower than 65 deg below
  neutral; extension adds 8-20 deg (at most 85 deg).
* Spondylolisthesis (8%): anterior slip of L4 on L5 (mostly degenerative, 5-20% of the lower
  body's superior end-plate, between its truth corners) or of L5 on S1 (mostly isthmic, 10-30%)
  along that end-plate; the column above (and the aorta) slips with it; in the isthmic kind the
  slipped vertebra's lamina, inferior articular processes and spinous process stay behind (pars
  defect).
* Transitional vertebrae (6%): a lumbarised S1 (a free lumbar-type body with a 4-8 mm disc above
  a sacrum one segment shorter: six lumbar-type bodies) or a sacralised L5 (its disc with S1
  reduced to a 0.5-2 mm sliver, bridged anteriorly by bone, one enlarged transverse process
  fused with the ala: four free lumbar bodies).
* Implants (:mod:`aacscore.simulate.implants`): pedicle screws + rods over 2-3 levels (5%), an
  anterior disc prosthesis (2%, disc height restored), an IVC filter (2%), an aortic stent-graft
  (2%).
* DISH (4%): flowing anterior ossification bridging 4-6 bodies (3-5 discs) between T11 and L5,
  2-4 mm thick over the bodies and 4-9 mm over the discs (bone, never calcification).
* Scoliosis double contours (6%): a left/right shift of 3-8 mm (mostly vertical, with 1-5 deg
  tilt) of the end-plates on 2-4 consecutive levels around an apex in L1-L4.

Level convention (:data:`LEVEL_CONVENTION`, also in the variety record): the truth names the
bodies the way the spine stage counts them, up from the sacrum: the first free body above the
sacrum is L5, the next L4, and so on. A lumbarised S1 is therefore labelled L5 (the anatomical L5
is L4, ..., the anatomical L1 is T12, and the second sacral segment is S1); a sacralised L5 is the
top of the sacrum, labelled S1 (the anatomical L4 is L5, ..., the anatomical T12, which bears the
12th ribs, is L1). The record maps each label to its anatomical name. Other anatomy parameters
(``disc_factors``) name the anatomical levels; ``fracture`` is renamed to the label convention.

Not modelled: bowel wall/organ outlines (liver, kidneys, bladder), fused interbody cages, implants
other than those above and clips, beam divergence other than the left/right offsets, contrast
media.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
from aacscore.simulate.implants import (
    FilterPlan,
    Metal,
    ProsthesisPlan,
    ScrewPlan,
    StentPlan,
    build_ivc_filter,
    build_prosthesis,
    build_screws,
    build_stent_graft,
    render_metal,
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
    anatomical: str = ""  # anatomical name when the label convention names it differently
    arch_shift: float = 0.0  # isthmic slip: lamina and spinous process left behind (mm, local u)

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
    bone_tubes: tuple[Tube, ...] = ()  # DISH, bony bridges (fine grid)
    metal: tuple[Metal, ...] = ()

    def body(self, name: str) -> Body:
        """The body named ``name``."""
        for b in self.bodies:
            if b.name == name:
                return b
        raise KeyError(name)


# --------------------------------------------------------------------------------------------
# Extended variety: the plan
# --------------------------------------------------------------------------------------------

VARIETIES: tuple[str, ...] = ("standard", "extended", "implants")
"""``standard``: the simulator as it always was; ``extended``: plus :func:`sample_variety`;
``implants``: the extended features with the metal over the aortic band (IVC filter, aortic stent
graft) on half the films each (:data:`IMPLANT_PROBABILITIES`), for training and judging the
score stage on them."""
VARIETY_STREAM = 7
"""Third entropy word of the variety stream: ``default_rng([seed, index, VARIETY_STREAM])``."""
VARIETY_PROBABILITIES: dict[str, float] = {
    "flexion": 0.15,
    "extension": 0.15,
    "spondylolisthesis": 0.08,
    "transitional": 0.06,
    "pedicle_screws": 0.05,
    "disc_prosthesis": 0.02,
    "ivc_filter": 0.02,
    "stent_graft": 0.02,
    "dish": 0.04,
    "scoliosis": 0.06,
}
"""Per-film probability of each extended feature (drawn independently; flexion and extension
exclude each other)."""
IMPLANT_PROBABILITIES: dict[str, float] = {
    **VARIETY_PROBABILITIES,
    "ivc_filter": 0.5,
    "stent_graft": 0.5,
}
"""The ``implants`` variety: IVC filters and aortic stent grafts far more often than in the
population (each drawn independently, so a quarter of the films carry both)."""
LEVEL_CONVENTION = (
    "levels counted up from the sacrum: the first free body above the sacrum is L5, the next L4, "
    "...; a lumbarised S1 is labelled L5 and a sacralised L5 is the top of the sacrum (S1)"
)
_LADDER: tuple[str, ...] = (
    "S6", "S5", "S4", "S3", "S2", "S1", "L5", "L4", "L3", "L2", "L1",
    "T12", "T11", "T10", "T9", "T8", "T7",
)  # fmt: skip
_CHAIN: tuple[str, ...] = _LADDER[1:-1]  # built bodies, caudal to cranial (S5 ... T8)
_POSTURE_W = {
    "flexion": {"L1": 0.22, "L2": 0.24, "L3": 0.22, "L4": 0.18, "L5": 0.14},
    "extension": {"L1": 0.12, "L2": 0.16, "L3": 0.22, "L4": 0.26, "L5": 0.24},
}


@dataclass(frozen=True)
class Posture:
    """``flexion``: ``amount_deg`` is the target L1-S1 lordosis; ``extension``: its increase."""

    kind: str
    amount_deg: float


@dataclass(frozen=True)
class Listhesis:
    """Anterior slip of ``level`` (L4 or L5) on the body below by ``fraction`` of its depth."""

    level: str
    fraction: float
    kind: str  # degenerative | isthmic


@dataclass(frozen=True)
class Transitional:
    """``lumbarised_S1`` or ``sacralised_L5``: the new (or reduced) disc's height and wedge."""

    kind: str
    disc_mm: float
    disc_angle_deg: float
    spinous: float
    bridge_mm: float


@dataclass(frozen=True)
class Scoliosis:
    """Left/right end-plate shift of ``shift_mm`` on ``levels`` levels from ``top`` down."""

    top: str
    levels: int
    shift_mm: float
    direction_deg: float
    tilt_deg: float


@dataclass(frozen=True)
class Dish:
    """Flowing anterior ossification over ``levels`` bodies from ``top`` down."""

    top: str
    levels: int
    body_mm: float
    disc_mm: float
    width_mm: float


@dataclass(frozen=True)
class Variety:
    """The extended features of one film (None: absent). Build one to force features."""

    posture: Posture | None = None
    listhesis: Listhesis | None = None
    transitional: Transitional | None = None
    scoliosis: Scoliosis | None = None
    dish: Dish | None = None
    screws: ScrewPlan | None = None
    disc_prosthesis: ProsthesisPlan | None = None
    ivc_filter: FilterPlan | None = None
    stent_graft: StentPlan | None = None

    @property
    def features(self) -> tuple[str, ...]:
        """Names of the features present (``flexion`` / ``extension`` for the posture)."""
        out = [self.posture.kind] if self.posture else []
        names = {
            "listhesis": "spondylolisthesis",
            "transitional": "transitional",
            "scoliosis": "scoliosis",
            "dish": "dish",
            "screws": "pedicle_screws",
            "disc_prosthesis": "disc_prosthesis",
            "ivc_filter": "ivc_filter",
            "stent_graft": "stent_graft",
        }
        out += [n for k, n in names.items() if getattr(self, k) is not None]
        return tuple(out)


def sample_variety(
    rng: np.random.Generator, probabilities: Mapping[str, float] = VARIETY_PROBABILITIES
) -> Variety:
    """Draw the extended features of one film (each with its ``probabilities`` entry).

    Every parameter is drawn whether or not its feature is present, in a fixed order, so each
    feature's parameters do not depend on the others (nor on the probabilities: the same case
    under other probabilities has the same parameters, only other features switched on).
    """
    pr = probabilities
    u = rng.random()
    flex, ext = float(rng.uniform(-20.0, 0.0)), float(rng.uniform(8.0, 20.0))
    posture = None
    if u < pr["flexion"]:
        posture = Posture("flexion", flex)
    elif u < pr["flexion"] + pr["extension"]:
        posture = Posture("extension", ext)

    on = rng.random() < pr["spondylolisthesis"]
    level = "L4" if rng.random() < 0.55 else "L5"
    degenerative = rng.random() < (0.8 if level == "L4" else 0.3)
    f_deg, f_isth = float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.1, 0.3))
    listhesis = None
    if on:
        kind = "degenerative" if degenerative else "isthmic"
        listhesis = Listhesis(level, f_deg if degenerative else f_isth, kind)

    on = rng.random() < pr["transitional"]
    lumb = rng.random() < 0.5
    t_disc = float(rng.uniform(4.0, 8.0)) if lumb else float(rng.uniform(0.5, 2.0))
    t_ang = float(rng.uniform(0.0, 6.0)) if lumb else float(rng.uniform(0.0, 4.0))
    t_spin, t_bridge = float(rng.uniform(0.05, 0.35)), float(rng.uniform(1.8, 3.2))
    transitional = None
    if on:
        kind = "lumbarised_S1" if lumb else "sacralised_L5"
        transitional = Transitional(kind, t_disc, t_ang, t_spin, t_bridge)

    on = rng.random() < pr["pedicle_screws"]
    bottom = str(rng.choice(["L4", "L5", "S1"], p=[0.3, 0.3, 0.4]))
    screws = ScrewPlan(
        bottom,
        int(rng.integers(2, 4)),
        float(rng.uniform(0.15, 0.3)),
        float(rng.normal(0.0, 4.0)),
        float(rng.uniform(0.5, 2.5)),
    )
    screws_on = on

    on = rng.random() < pr["disc_prosthesis"]
    u = rng.random()
    pl = "L3" if u < 0.2 else "L4" if u < 0.6 else "L5"
    if listhesis is not None and pl == listhesis.level:  # one procedure per disc
        pl = "L5" if pl == "L4" else "L4"
    prosthesis = ProsthesisPlan(
        pl,
        float(rng.uniform(7.0, 10.0)),
        float(rng.uniform(1.5, 2.5)),
        float(rng.uniform(26.0, 34.0)),
        float(rng.uniform(4.0, 7.0)),
    )
    prosthesis_on = on

    on = rng.random() < pr["ivc_filter"]
    ivc = FilterPlan(
        str(rng.choice(["conical", "tulip"])),
        float(rng.uniform(40.0, 55.0)),
        float(rng.uniform(11.0, 15.0)),
        float(rng.uniform(0.0, 10.0)),
        float(rng.uniform(0.0, 0.6)),
        float(rng.uniform(0.0, 2.0 * math.pi)),
    )
    ivc_on = on

    on = rng.random() < pr["stent_graft"]
    stent = StentPlan(
        int(rng.integers(5, 9)),
        float(rng.uniform(5.0, 8.0)),
        float(rng.uniform(1.5, 5.0)),
        float(rng.uniform(0.35, 0.5)),
        int(rng.integers(2, 5)),
    )
    stent_on = on

    on = rng.random() < pr["dish"]
    dish = Dish(
        str(rng.choice(["T11", "T12", "L1", "L2"], p=[0.3, 0.3, 0.25, 0.15])),
        int(rng.integers(4, 7)),
        float(rng.uniform(2.0, 4.0)),
        float(rng.uniform(4.0, 9.0)),
        float(rng.uniform(15.0, 30.0)),
    )
    dish_on = on

    on = rng.random() < pr["scoliosis"]
    sign = 1.0 if rng.random() < 0.5 else -1.0
    scol = Scoliosis(
        str(rng.choice(["L1", "L2", "L3", "L4"])),
        int(rng.integers(2, 5)),
        float(rng.uniform(3.0, 8.0)),
        float(sign * rng.uniform(55.0, 125.0)),
        float(sign * rng.uniform(1.0, 5.0)),
    )
    return Variety(
        posture=posture,
        listhesis=listhesis,
        transitional=transitional,
        scoliosis=scol if on else None,
        dish=dish if dish_on else None,
        screws=screws if screws_on else None,
        disc_prosthesis=prosthesis if prosthesis_on else None,
        ivc_filter=ivc if ivc_on else None,
        stent_graft=stent if stent_on else None,
    )


def resolve_variety(variety: str | Variety, seed: int, index: int) -> Variety | None:
    """The plan of case ``index`` of ``seed``: None for ``standard``, drawn for ``extended``.

    Raises:
        ValueError: an unknown variety name.
    """
    if isinstance(variety, Variety):
        return variety
    if variety not in VARIETIES:
        raise ValueError(f"unknown variety {variety!r}; expected one of {VARIETIES}")
    if variety == "standard":
        return None
    probabilities = IMPLANT_PROBABILITIES if variety == "implants" else VARIETY_PROBABILITIES
    rng = np.random.default_rng([int(seed), int(index), VARIETY_STREAM])
    return sample_variety(rng, probabilities)


def _axis(alpha: float) -> F64:
    """Cranial unit axis for end-plate angle ``alpha``."""
    return np.array([math.sin(alpha), -math.cos(alpha)])


def _e(alpha: float) -> F64:
    """Posterior unit end-plate direction for angle ``alpha``."""
    return np.array([math.cos(alpha), math.sin(alpha)])


def sample_anatomy(
    rng: np.random.Generator, ov: dict[str, Any], variety: Variety | None = None
) -> Anatomy:
    """Sample one patient's anatomy (every draw happens whatever the overrides).

    With a ``variety`` plan (:func:`sample_variety`) the same patient is drawn from ``rng`` and
    the plan's features are applied to it; the bodies are then named by :data:`LEVEL_CONVENTION`
    and ``params["variety"]`` records what was applied.
    """
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
    vac_up: list[str] = []  # the body above each vacuum disc

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
            vac_up.append(lv)
        q = q_disc
        alpha = alpha + disc_ll
        body_ll = _LORD_BODY.get(lv, 0.0) * ll
        if lv.startswith("T"):
            body_ll = -kyph * 0.65
        body_ll += math.radians(rng.normal(0, 1.2))
        b, q, alpha = make_body(lv, q, alpha, body_ll, _BODY_REF[lv][0] * scale, True)
        bodies.append(b)

    rename: dict[str, str] = {}
    col_rec: dict[str, Any] = {}
    if variety is not None:
        bodies, vac, rename, col_rec = _vary_column(bodies, vac, vac_up, variety)
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
    # the aorta runs along the bodies as the label convention names them (T10 ... S1)
    by_aorta = {rename[b.name]: b for b in bodies} if rename else by
    walls, bif_y = _sample_aorta(rng, bodies, by_aorta, pick)

    p["fracture"] = None if frac_level is None else {"level": frac_level, "kind": frac_kind}
    p["osteophytes"] = sum(len(b.osteophytes) for b in bodies)
    p["vacuum_discs"] = len(vac)
    bone_tubes: list[Tube] = []
    metal: list[Metal] = []
    if variety is not None:
        rib_levels = sum(1 for tb in tubes if tb.wall > 0) // 2
        bodies, bone_tubes, metal, p["variety"] = _finish_variety(
            bodies, variety, rename, walls, bif_y, rib_levels, col_rec
        )
        if frac_level is not None and rename[frac_level] != frac_level:
            p["fracture"] = {
                "level": rename[frac_level],
                "kind": frac_kind,
                "anatomical": frac_level,
            }
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
        bone_tubes=tuple(bone_tubes),
        metal=tuple(metal),
    )


# --------------------------------------------------------------------------------------------
# Extended variety: applying the plan to the built column and the finished anatomy
# --------------------------------------------------------------------------------------------

_Vacuum = tuple[tuple[float, float], float, float, float]
_CONV_LEVELS: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")


def _rot(theta: float) -> F64:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _unit(v: F64) -> F64:
    out: F64 = v / max(float(np.hypot(v[0], v[1])), 1e-9)
    return out


def _cranial(corners: F64) -> F64:
    """Cranial unit normal of a body's superior end-plate (from its AS and PS corners)."""
    e = _unit(corners[1] - corners[0])
    return np.array([e[1], -e[0]])


def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def _plate_angle(a: F64, b: F64) -> float:
    return math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))


def lordosis_deg(upper: F64, lower: F64) -> float:
    """Angle (deg) between the superior end-plates of two bodies' corners (AS, PS, PI, AI).

    Positive when the curve between them is lordotic in the canonical frame (anterior left,
    cranial up); mirror the sign for a film whose anterior faces right.
    """
    return math.degrees(_wrap(_plate_angle(upper[0], upper[1]) - _plate_angle(lower[0], lower[1])))


class _Column:
    """Rigid edits of the built column (anatomical names; :data:`_CHAIN` order)."""

    def __init__(self, bodies: list[Body], vac: list[_Vacuum], vac_up: list[str]) -> None:
        self.order = [b.name for b in bodies]
        self.b = {b.name: b for b in bodies}
        self.vac = list(vac)
        self.vac_up = list(vac_up)

    def below(self, name: str) -> str:
        return _CHAIN[_CHAIN.index(name) - 1]

    def move_above(self, upper: str, theta: float, pivot: F64, shift: F64 | None = None) -> None:
        """Rotate by ``theta`` about ``pivot`` and shift ``upper`` and every body above it.

        A vacuum streak in the disc below ``upper`` moves half-way.
        """
        sh = np.zeros(2) if shift is None else shift
        k = _CHAIN.index(upper)

        def tf(pt: F64, frac: float) -> F64:
            out: F64 = pivot + _rot(theta * frac) @ (pt - pivot) + sh * frac
            return out

        for name in _CHAIN[k:]:
            b = self.b[name]
            c = tf(np.asarray(b.centre), 1.0)
            self.b[name] = replace(b, centre=(float(c[0]), float(c[1])), angle=b.angle + theta)
        for i, up in enumerate(self.vac_up):
            j = _CHAIN.index(up)
            if j >= k:
                frac = 0.5 if j == k else 1.0
                centre, ang, ln, h = self.vac[i]
                c = tf(np.asarray(centre), frac)
                self.vac[i] = ((float(c[0]), float(c[1])), ang + theta * frac, ln, h)

    def set_disc_height(self, upper: str, height: float) -> None:
        """Translate ``upper`` and above so the posterior height of its disc is ``height``."""
        cl = self.b[self.below(upper)].corners_mm()
        cu = self.b[upper].corners_mm()
        cran = _cranial(cl)
        gap = float((cu[2] - cl[1]) @ cran)
        self.move_above(upper, 0.0, np.zeros(2), (height - gap) * cran)

    def drop_vacuum(self, upper: str) -> None:
        keep = [i for i, up in enumerate(self.vac_up) if up != upper]
        self.vac = [self.vac[i] for i in keep]
        self.vac_up = [self.vac_up[i] for i in keep]

    def bodies(self) -> list[Body]:
        return [self.b[n] for n in self.order]


def _posture_pivot(upper: Body, lower: Body, theta: float) -> F64:
    """Centre of rotation in the disc that keeps both disc heights positive."""
    cl, cu = lower.corners_mm(), upper.corners_mm()
    a_mid, p_mid = (cl[0] + cu[3]) / 2.0, (cl[1] + cu[2]) / 2.0
    depth = float(np.hypot(*(p_mid - a_mid)))
    h_a = float(np.hypot(*(cu[3] - cl[0])))
    h_p = float(np.hypot(*(cu[2] - cl[1])))
    f = 0.5
    if theta < 0:  # flexion: the anterior disc closes
        f = float(np.clip((h_a - 1.5) / (depth * -theta), 0.0, 0.4))
    elif theta > 0:  # extension: the posterior disc closes
        f = float(np.clip(1.0 - (h_p - 1.0) / (depth * theta), 0.6, 1.0))
    out: F64 = a_mid + f * (p_mid - a_mid)
    return out


def _vary_column(
    bodies: list[Body], vac: list[_Vacuum], vac_up: list[str], v: Variety
) -> tuple[list[Body], list[_Vacuum], dict[str, str], dict[str, Any]]:
    """Transitional vertebra, disc prosthesis height, posture, slip and scoliosis shifts.

    Returns the edited bodies and vacuum streaks (anatomical names), the renaming to the label
    convention (anatomical -> label) and the record of what was applied.
    """
    col = _Column(bodies, vac, vac_up)
    rename = {n: n for n in _CHAIN}
    rec: dict[str, Any] = {}
    t = v.transitional
    if t is not None and t.kind == "lumbarised_S1":
        col.set_disc_height("S1", t.disc_mm)
        col.move_above("S1", math.radians(t.disc_angle_deg), col.b["S1"].corners_mm()[2])
        col.b["S1"] = replace(col.b["S1"], spinous_angle=t.spinous)
        rename = {n: _LADDER[_LADDER.index(n) + 1] for n in _CHAIN}
    elif t is not None:
        cl, cu = col.b["S1"].corners_mm(), col.b["L5"].corners_mm()
        phi = _wrap(_plate_angle(cu[3], cu[2]) - _plate_angle(cl[0], cl[1]))
        col.move_above("L5", math.radians(t.disc_angle_deg) - phi, (cl[1] + cu[2]) / 2.0)
        col.set_disc_height("L5", t.disc_mm)
        col.drop_vacuum("L5")
        rename = {n: _LADDER[_LADDER.index(n) - 1] for n in _CHAIN}
    anat = {c: a for a, c in rename.items()}
    if t is not None:
        rec["transitional"] = {
            "kind": t.kind,
            "free_lumbar_bodies": 6 if t.kind == "lumbarised_S1" else 4,
            "disc_mm": round(t.disc_mm, 3),
            "anatomical": {c: anat[c] for c in _CONV_LEVELS},
        }
    dp = v.disc_prosthesis
    if dp is not None:
        col.set_disc_height(anat[dp.level], dp.height_mm)
        col.drop_vacuum(anat[dp.level])
    po = v.posture
    if po is not None:
        l1, s1 = anat["L1"], anat["S1"]
        neutral = lordosis_deg(col.b[l1].corners_mm(), col.b[s1].corners_mm())
        if po.kind == "flexion":
            target = max(po.amount_deg, neutral - 65.0)
        else:
            target = max(min(neutral + po.amount_deg, 85.0), neutral)
        for conv_up, w in sorted(_POSTURE_W[po.kind].items(), reverse=True):
            up = anat[conv_up]
            theta = math.radians(w * (target - neutral))
            col.move_above(up, theta, _posture_pivot(col.b[up], col.b[col.below(up)], theta))
        rec["posture"] = {
            "kind": po.kind,
            "lordosis_neutral_deg": round(neutral, 3),
            "lordosis_deg": round(lordosis_deg(col.b[l1].corners_mm(), col.b[s1].corners_mm()), 3),
        }
    li = v.listhesis
    if li is not None:
        up = anat[li.level]
        cl = col.b[col.below(up)].corners_mm()
        slip = li.fraction * float(np.hypot(*(cl[1] - cl[0])))  # of the end-plate (corners)
        shift = slip * _unit(cl[0] - cl[1])
        col.move_above(up, 0.0, np.zeros(2), shift)
        if li.kind == "isthmic":
            col.b[up] = replace(col.b[up], arch_shift=float(slip))
        rec["spondylolisthesis"] = {
            "level": f"{li.level}/{_LADDER[_LADDER.index(li.level) - 1]}",
            "kind": li.kind,
            "fraction": round(li.fraction, 4),
            "slip_mm": round(float(slip), 3),
            "shift_mm": [round(float(shift[0]), 4), round(float(shift[1]), 4)],
        }
    sc = v.scoliosis
    if sc is not None:
        conv = ("T12", "L1", "L2", "L3", "L4", "L5")
        names = conv[conv.index(sc.top) : conv.index(sc.top) + sc.levels]
        shifts = {}
        for k, name in enumerate(names):
            prof = 0.75 + 0.25 * math.sin(math.pi * (k + 0.5) / len(names))
            m, ph = sc.shift_mm * prof, math.radians(sc.direction_deg)
            split = (m * math.cos(ph), m * math.sin(ph), math.radians(sc.tilt_deg) * prof)
            col.b[anat[name]] = replace(col.b[anat[name]], split=split)
            shifts[name] = round(m, 3)
        rec["scoliosis"] = {"shift_mm": shifts, "tilt_deg": round(sc.tilt_deg, 3)}
    return col.bodies(), col.vac, rename, rec


def _smooth_tube(pts: F64, rad: F64, wall: float, mu: float, width: float) -> Tube:
    """A bony bar through ``pts`` (cubic in arc length, 1 mm steps) of lateral ``width`` mm."""
    s = arc_length(pts)
    t = np.arange(0.0, s[-1] + 1e-9, 1.0)
    if len(pts) >= 3:
        dense = np.stack([CubicSpline(s, pts[:, 0])(t), CubicSpline(s, pts[:, 1])(t)], axis=1)
    else:
        dense = np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], axis=1)
    r = np.interp(t, s, rad)
    return Tube(dense, r, wall, mu, squash=float(width / (2.0 * r.mean())))


def _finish_variety(
    bodies: list[Body],
    v: Variety,
    rename: dict[str, str],
    walls: dict[str, F64],
    bif_y: float,
    rib_levels: int,
    rec: dict[str, Any],
) -> tuple[list[Body], list[Tube], list[Metal], dict[str, Any]]:
    """Rename to the label convention; DISH, bony bridges and implants on the named bodies."""
    named = [
        replace(b, name=rename[b.name], anatomical=b.name if rename[b.name] != b.name else "")
        for b in bodies
    ]
    by = {b.name: b for b in named}
    out: dict[str, Any] = {
        "mode": "extended",
        "level_convention": LEVEL_CONVENTION,
        "features": list(v.features),
        **rec,
    }
    tubes: list[Tube] = []
    metal: list[Metal] = []
    t = v.transitional
    if t is not None:
        out["transitional"]["lowest_rib"] = rename["T12" if rib_levels == 3 else "T11"]
    if t is not None and t.kind == "sacralised_L5":
        l5, s1 = by["S1"], by["S2"]  # the fused L5 and the anatomical S1
        cu, cl = l5.corners_mm(), s1.corners_mm()
        fwd = _unit(-(_e(l5.angle) + _e(s1.angle)))
        a = cu[3] + 3.0 * _unit(cu[0] - cu[3]) + 0.4 * fwd
        m = (cu[3] + cl[0]) / 2.0 + 0.6 * t.bridge_mm * fwd
        b = cl[0] + 3.0 * _unit(cl[3] - cl[0]) + 0.4 * fwd
        rb = t.bridge_mm
        tubes.append(
            _smooth_tube(np.stack([a, m, b]), np.array([0.6, 1.0, 0.6]) * rb, 0.35,
                         MU_CORTEX_EXCESS * 0.7, 20.0)
        )  # fmt: skip
        d, h = l5.depth, l5.h_post
        p0 = l5.local_to_mm([[d / 2 + 0.3 * d, -0.1 * h]])[0]
        p2 = s1.local_to_mm([[d / 2 + 0.2 * d, 0.3 * s1.h_post]])[0]
        p1 = (p0 + p2) / 2.0 + 2.0 * _unit(p0 - p2) @ _rot(math.pi / 2).T
        tubes.append(
            _smooth_tube(np.stack([p0, p1, p2]), np.array([6.5, 7.5, 5.5]), 0.2,
                         MU_CORTEX_EXCESS * 0.6, 14.0)
        )  # fmt: skip
        out["transitional"]["fusion_points_mm"] = _pts_mm([m, p1])
    dh = v.dish
    if dh is not None:
        levels = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")
        names = levels[levels.index(dh.top) : levels.index(dh.top) + dh.levels]
        pts: list[F64] = []
        rad: list[float] = []
        for j, nm in enumerate(names):
            b = by[nm]
            r = dh.body_mm / 2.0
            for vv in (-0.3, 0.0, 0.3):
                pts.append(b.local_to_mm([[-b.depth / 2 - r + 0.8, vv * b.h_ant]])[0])
                rad.append(r)
            if j < len(names) - 1:
                lo = by[names[j + 1]]
                mid = (b.corners_mm()[3] + lo.corners_mm()[0]) / 2.0
                fwd = _unit(-(_e(b.angle) + _e(lo.angle)))
                pts.append(mid + (dh.disc_mm / 2.0 - 0.8) * fwd)
                rad.append(dh.disc_mm / 2.0)
        tube = _smooth_tube(np.stack(pts), np.asarray(rad), 0.3, MU_CORTEX_EXCESS * 0.7,
                            dh.width_mm)  # fmt: skip
        tubes.append(tube)
        out["dish"] = {
            "levels": list(names),
            "discs_bridged": len(names) - 1,
            "points_mm": _pts_mm(tube.points[:: max(1, len(tube.points) // 24)]),
        }
    implants: list[dict[str, Any]] = []
    if v.screws is not None:
        parts, irec = build_screws(v.screws, by)
        metal += parts
        implants.append(irec)
    if v.disc_prosthesis is not None:
        up = v.disc_prosthesis.level
        low = _LADDER[_LADDER.index(up) - 1]
        parts, irec = build_prosthesis(v.disc_prosthesis, by[up], by[low], f"{up}/{low}")
        metal += parts
        implants.append(irec)
    if v.ivc_filter is not None:
        parts, irec = build_ivc_filter(v.ivc_filter, by, walls)
        metal += parts
        implants.append(irec)
    if v.stent_graft is not None:
        parts, irec = build_stent_graft(v.stent_graft, by, walls, bif_y)
        metal += parts
        implants.append(irec)
    if implants:
        out["implants"] = implants
    return named, tubes, metal, out


def _pts_mm(a: npt.ArrayLike) -> list[list[float]]:
    return [[round(float(x), 3), round(float(y), 3)] for x, y in np.atleast_2d(np.asarray(a))]


def variety_record_to_image(rec: Any, to_img: Callable[[F64], F64]) -> Any:
    """The variety record with every ``*points_mm`` list mapped to image pixels (``*points``)."""
    if isinstance(rec, dict):
        out: dict[str, Any] = {}
        for k, val in rec.items():
            if k.endswith("points_mm"):
                arr = np.asarray(val, dtype=np.float64)
                px = to_img(arr.reshape(-1, 2)).reshape(arr.shape)
                out[k[: -len("_mm")]] = np.round(px, 3).tolist()
            else:
                out[k] = variety_record_to_image(val, to_img)
        return out
    if isinstance(rec, list):
        return [variety_record_to_image(x, to_img) for x in rec]
    return rec


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
    """Add vertebral bodies, posterior elements, osteophytes and sacrum to ``out`` (in place),
    then the variety's bony bars (DISH, fusion) and metal implants."""
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
    for tube in anat.bone_tubes:
        _tube(frame, tube, out)
    render_metal(anat.metal, frame, out)


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
    arch = b.arch_shift  # isthmic slip: the arch behind the pars defect stays behind
    for side in (-0.5, 0.5):
        du, dv, dth = (side * x for x in b.split)
        for k, (cu, cv, au, av, ang, width, shell, ms) in enumerate(paired):
            if arch and k == 4:
                cu = cu + arch
            centre = b.local_to_mm([[cu + du, cv + dv]])[0]
            _ellipsoid(frame, out, centre, b.angle + ang + dth, au, av, width, shell, mc * ms, mt)
    lumbar = b.name.startswith("L") or b.anatomical.startswith("L")
    ls = 0.5 * d * (1.0 if lumbar else 1.3)
    sa = b.spinous_angle
    cu = d / 2 + 0.55 * d + ls * math.cos(sa)
    cv = 0.1 * h + ls * math.sin(sa)
    if arch:
        cu += arch
    centre = b.local_to_mm([[cu, cv]])[0]
    _plate(frame, out, centre, b.angle + sa, ls, 0.27 * h, 5.0, mc * 0.7, mt)
    centre = b.local_to_mm([[d / 2 + 0.6 * d + arch, 0.05 * h]])[0]
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
