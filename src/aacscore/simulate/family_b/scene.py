"""Family B soft tissue, aorta and plaques (canonical mm: x posterior, y caudal).

Modelled:

* Trunk: lateral path length through a super-elliptic abdominal cross-section whose anterior
  and posterior skin lines and half width follow the habitus (0 thin - 1 obese) and bulge at
  the umbilicus and buttocks; subcutaneous fat (thicker with habitus) under a skin line seen
  tangentially, the anterior abdominal wall muscles and the paraspinal muscles as bands; psoas
  (muscle over fat) along the bodies; liver under the diaphragm; both kidneys (slightly offset)
  at L1-L3.
* Bowel: colon tubes (transverse, ascending/descending flanks) with haustral narrowing and
  partial gas filling, stool mottling (gas bubbles in faeces), small-bowel gas loops, round
  bubbles and large distended loops with haustral folds; the flanks, bubbles and loops fall in
  front of, over and behind the bodies (the colon lies lateral to the spine), so gas overlaps
  the aortic band and the bodies.
* Aorta: lumen in front of the anterior vertebral line (gap 1-15 mm, diameter 15-30 mm,
  tapering caudally, diverging iliac wall below the bifurcation at L4). Walls are polylines with
  their first vertex cranial.
* Plaques (this family's primitive): curved strokes that follow a wall with an offset into the
  wall and a varying width (``stroke``), lens-shaped crescents (``crescent``) and chains of
  irregular flecks (``flecks``), planned from a target reading: AAC-24 totals from the
  ``population``/``balanced``/``mild`` distributions (same meaning as family A), spread over
  segments by patient propensities (caudal and posterior predominance), calcified fractions
  chosen inside each grade's interval away from the 1/3 and 2/3 cut-offs; extra plaques above
  T12/L1 and below L4/L5 that must not be counted.
* Distractors (bone layer, never in the mask): pelvic phleboliths, calcified mesenteric nodes.

Not modelled: aneurysms, iliac branch plaques, contrast, metal implants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.kauppila import SEGMENTS, WALLS
from aacscore.simulate.calcification import DISTRIBUTIONS  # the same vocabulary as family A
from aacscore.simulate.family_b.shapes import Skeleton

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

_LEVEL_PROPENSITY = {"L1": 0.6, "L2": 0.8, "L3": 1.05, "L4": 1.45}
_WALL_PROPENSITY = {"anterior": 1.0, "posterior": 1.3}
_FRACTION = {1: (0.08, 0.26), 2: (0.42, 0.58), 3: (0.76, 0.95)}


@dataclass(frozen=True)
class Plaque:
    """One plaque on a wall between arc lengths ``s0`` and ``s1`` (mm)."""

    wall: str
    kind: str
    s0: float
    s1: float
    width: float
    offset: float
    density: float
    seed: int


@dataclass(frozen=True)
class GasTube:
    """Bowel gas along a polyline: radius, haustral period (0 = smooth), gas fill, stool."""

    points: F64
    radius: float
    period: float
    fill: float
    stool: float


@dataclass
class Scene:
    """Soft tissue, aorta and plaque plan of one patient."""

    skeleton: Skeleton
    walls: dict[str, F64]
    lumen: F64
    lumen_radius: F64
    trunk: dict[str, float]
    organs: list[tuple[str, F64, F64, float]] = field(default_factory=list)
    psoas: list[tuple[F64, F64]] = field(default_factory=list)
    gas: list[GasTube] = field(default_factory=list)
    plaques: list[Plaque] = field(default_factory=list)
    distractors: list[tuple[F64, float, float]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def anterior_line(sk: Skeleton, names: tuple[str, ...]) -> tuple[F64, F64]:
    """Smooth anterior vertebral line through the bodies' anterior margins: (points, normals
    pointing anteriorly), sampled every 1 mm of y."""
    pts = []
    for nm in names:
        b = sk.bodies[nm]
        for v in (b.h_ant / 2, 0.0, -b.h_ant / 2):
            pts.append(b.to_mm(b.depth / 2 - (b.waist * 0.5 if v == 0 else 0.0), v))
    p = np.array(pts)
    y = np.arange(p[:, 1].min(), p[:, 1].max(), 1.0)
    coef = np.polyfit(p[:, 1], p[:, 0], 4)
    x = np.polyval(coef, y)
    line = np.stack([x, y], axis=1)
    tan = np.gradient(line, axis=0)
    tan /= np.hypot(tan[:, 0], tan[:, 1])[:, None]
    nrm = np.stack([-tan[:, 1], tan[:, 0]], axis=1)  # x grows posteriorly: (-ty, tx) is anterior
    return line, nrm


def smooth_series(rng: np.random.Generator, n: int, corr: float) -> F64:
    """Unit-variance smooth random series (moving sum of a random walk's increments)."""
    k = max(1, int(corr))
    x = np.convolve(rng.standard_normal(n + 2 * k), np.hanning(2 * k + 1), mode="same")[k:-k]
    return np.asarray((x - x.mean()) / (x.std() + 1e-9))


def sample_scene(rng: np.random.Generator, sk: Skeleton, ov: dict[str, Any]) -> Scene:
    """Soft tissue and aorta around a skeleton."""
    bd = sk.bodies
    habitus = float(np.clip(rng.beta(2.0, 2.4), 0.02, 0.98))
    line, nrm = anterior_line(sk, ("T11", "T12", "L1", "L2", "L3", "L4", "L5"))
    y = line[:, 1]
    n = len(y)
    gap0 = float(ov.get("aorta_gap_mm", rng.uniform(1.0, 15.0)))
    dia0 = float(ov.get("aorta_diameter_mm", np.clip(rng.normal(21, 3.5), 15, 30)))
    gap = np.clip(gap0 + 1.5 * smooth_series(rng, n, 40), 0.5, 18.0)
    frac = (y - y[0]) / (y[-1] - y[0])
    dia = dia0 * (1.05 - 0.12 * frac) + 0.8 * smooth_series(rng, n, 30)
    y_bif = bd["L4"].centre[1] + float(rng.uniform(-8, 10))
    spread = np.clip(y - y_bif, 0, None) * float(rng.uniform(0.2, 0.5))
    post = line + nrm * gap[:, None]
    ant = line + nrm * (gap + dia + spread)[:, None]
    walls = {"anterior": ant, "posterior": post}
    lumen = (post + line + nrm * (gap + dia)[:, None]) / 2
    sk_top = bd["T11"].centre[1]
    cl3 = bd["L3"].centre
    front = float(cl3[0] - bd["L3"].depth / 2)
    ab_depth = 90 + 150 * habitus + float(rng.normal(0, 12))
    trunk = {
        "front_x": front,
        "ab_depth": ab_depth,
        "back_x": front + bd["L3"].depth + 75 + 15 + 70 * habitus + float(rng.normal(0, 8)),
        "bulge_y": float(bd["L4"].centre[1] + rng.normal(0, 20)),
        "bulge": float(rng.uniform(0.0, 0.25) * (0.5 + habitus)),
        "half_width": 125 + 80 * habitus + float(rng.normal(0, 10)),
        "power": float(rng.uniform(2.2, 3.6)),
        "density": float(1.0 - 0.05 * habitus),
        "buttock_y": float(bd["S2"].centre[1]),
        "top_y": float(sk_top - 150),
        "fat_mm": float(np.clip(6 + 40 * habitus + rng.normal(0, 4), 3, 60)),
        "wall_muscle_mm": float(rng.uniform(6, 16)),
    }
    sc = Scene(sk, walls, lumen, dia / 2, trunk)
    # organs: (kind, centre, semi axes (AP, cranio-caudal), extra density)
    t12 = bd["T12"].centre
    sc.organs.append(
        (
            "liver",
            t12 + np.array([-rng.uniform(40, 80), -rng.uniform(10, 40)]),
            np.array([rng.uniform(70, 110), rng.uniform(60, 90)]),
            0.03,
        )
    )
    kpos = (bd["L1"].centre + bd["L2"].centre) / 2
    for k in range(2):
        c = kpos + np.array([rng.uniform(-5, 15), rng.uniform(-25, 25) + 12 * k])
        sc.organs.append(("kidney", c, np.array([rng.uniform(22, 30), rng.uniform(48, 60)]), 0.07))
    for k in range(2):
        off = np.array([rng.uniform(0, 8), 0]) * k
        path = np.array(
            [
                bd[nm].centre + off + np.array([bd[nm].depth * 0.15, 0])
                for nm in ("T12", "L1", "L2", "L3", "L4", "L5")
            ]
        )
        radius = np.linspace(8, 24, len(path)) * float(rng.uniform(0.8, 1.2))
        sc.psoas.append((path, radius))
    _bowel(rng, sc, line, habitus)
    _distractors(rng, sc)
    sc.params.update(
        habitus=habitus,
        aorta_gap_mm=gap0,
        aorta_diameter_mm=dia0,
        bifurcation_y=float(y_bif - bd["L4"].centre[1]),
    )
    return sc


def _bowel(rng: np.random.Generator, sc: Scene, line: F64, habitus: float) -> None:
    bd = sc.skeleton.bodies
    fx = float(line[:, 0].min())
    y1, y5 = float(bd["L1"].centre[1]), float(bd["L5"].centre[1])

    def walk(start: F64, heading: float, steps: int, step: float, wiggle: float) -> F64:
        pts = [start]
        a = heading
        for _ in range(steps):
            a += float(rng.normal(0, wiggle))
            pts.append(pts[-1] + step * np.array([math.cos(a), math.sin(a)]))
        return np.array(pts)

    # transverse colon across the upper abdomen, flanks running down over the spine
    tc_y = y1 + float(rng.uniform(-30, 40))
    tc = walk(
        np.array([fx - 20 - 60 * rng.random(), tc_y]), math.pi + rng.normal(0, 0.3), 14, 9.0, 0.25
    )
    sc.gas.append(
        GasTube(
            tc,
            float(rng.uniform(14, 26)),
            float(rng.uniform(12, 22)),
            float(rng.uniform(0.1, 0.6)),
            float(rng.uniform(0.0, 0.8)),
        )
    )
    depth = float(bd["L3"].depth)
    for _ in range(2):  # the flanks project anywhere from in front of the spine to behind it
        x0 = fx + float(rng.uniform(-60, depth + 25))
        fl = walk(
            np.array([x0, tc_y + rng.uniform(-10, 20)]),
            math.pi / 2 + rng.normal(0, 0.15),
            int(rng.integers(8, 16)),
            10.0,
            0.12,
        )
        sc.gas.append(
            GasTube(
                fl,
                float(rng.uniform(12, 22)),
                float(rng.uniform(12, 20)),
                float(rng.uniform(0.05, 0.5)),
                float(rng.uniform(0.2, 1.0)),
            )
        )
    # small-bowel loops (anterior, mid abdomen) and a rectal/sigmoid gas pocket
    for _ in range(int(rng.poisson(2 + 3 * (1 - habitus)))):
        c = np.array([fx - rng.uniform(5, 110), rng.uniform(y1 - 10, y5 + 60)])
        loop = walk(c, rng.uniform(0, 2 * math.pi), int(rng.integers(3, 9)), 6.0, 0.7)
        sc.gas.append(
            GasTube(loop, float(rng.uniform(4, 10)), 0.0, float(rng.uniform(0.2, 0.7)), 0.0)
        )
    # round bubbles (small bowel, colon) scattered over the abdomen, the bodies included
    for _ in range(int(rng.poisson(4 + 6 * (1 - habitus)))):
        c = np.array([fx + rng.uniform(-100, depth + 20), rng.uniform(y1 - 40, y5 + 50)])
        sc.gas.append(
            GasTube(
                np.stack([c, c + 0.01]),
                float(rng.uniform(2, 9)),
                0.0,
                float(rng.uniform(0.4, 1.0)),
                0.0,
            )
        )
    # large gas-filled loops (distended colon) with haustral folds, sometimes over the spine
    for _ in range(int(rng.poisson(0.8))):
        c = np.array([fx + rng.uniform(-90, depth), rng.uniform(y1 - 30, y5 + 20)])
        sc.gas.append(
            GasTube(
                walk(c, rng.uniform(0, 2 * math.pi), int(rng.integers(3, 7)), 12.0, 0.5),
                float(rng.uniform(20, 35)),
                float(rng.uniform(14, 24)),
                float(rng.uniform(0.6, 1.0)),
                float(rng.uniform(0.0, 0.3)),
            )
        )
    if rng.random() < 0.6:
        c = bd["S3"].centre + np.array([-rng.uniform(25, 50), rng.uniform(-10, 30)])
        sc.gas.append(
            GasTube(
                walk(c, math.pi / 2, 4, 8.0, 0.4),
                float(rng.uniform(12, 22)),
                0.0,
                float(rng.uniform(0.3, 0.9)),
                float(rng.uniform(0.3, 1.0)),
            )
        )


def _distractors(rng: np.random.Generator, sc: Scene) -> None:
    """Phleboliths (rings) in the pelvis and occasional calcified nodes: (centre, r, density)."""
    bd = sc.skeleton.bodies
    walls = np.concatenate([sc.walls[w] for w in WALLS])

    def far(c: F64) -> bool:
        return bool(np.min(np.hypot(*(walls - c).T)) > 10.0)

    for _ in range(int(rng.poisson(1.0))):
        c = bd["S3"].centre + np.array([-rng.uniform(30, 90), rng.uniform(10, 80)])
        if far(c):
            sc.distractors.append((c, float(rng.uniform(1.5, 3.0)), float(rng.uniform(0.6, 1.6))))
    if rng.random() < 0.12:
        c0 = bd["L3"].centre + np.array([-rng.uniform(60, 110), rng.uniform(-40, 40)])
        for c in c0 + rng.normal(0, 3.0, (int(rng.integers(3, 9)), 2)):
            if far(c):
                sc.distractors.append(
                    (c, float(rng.uniform(0.8, 2.0)), float(rng.uniform(0.8, 2.0)))
                )


# --------------------------------------------------------------------------------------------
# targets and plaques
# --------------------------------------------------------------------------------------------


def target_probabilities(distribution: str) -> F64:
    """Probability of each AAC-24 total 0..24 under a target distribution."""
    p = np.zeros(25)
    if distribution == "population":
        p[0], p[1:6], p[6:16], p[16:25] = 0.45, 0.20 / 5, 0.22 / 10, 0.13 / 9
    elif distribution == "balanced":
        p[:] = 1.0 / 25
    elif distribution == "mild":
        p[0], p[1:5], p[5:9] = 0.2, 0.6 / 4, 0.2 / 4
    elif distribution == "negative":
        p[0] = 1.0
    else:
        raise ValueError(f"unknown distribution {distribution!r}; expected one of {DISTRIBUTIONS}")
    return p / p.sum()


def spread_grades(rng: np.random.Generator, total: int) -> dict[str, int]:
    """Grades summing to ``total``: proportional to patient propensities, rounded, repaired."""
    w = np.array(
        [_LEVEL_PROPENSITY[s.split("_")[0]] * _WALL_PROPENSITY[s.split("_")[1]] for s in SEGMENTS]
    ) * rng.lognormal(0.0, 0.45, len(SEGMENTS))
    g = np.minimum(np.floor(total * w / w.sum()), 3).astype(int)
    order = np.argsort(-w)
    while g.sum() < total:
        k = next(int(i) for i in order if g[i] < 3)
        # prefer adding next to already calcified segments (clustering) with some randomness
        cand = [int(i) for i in order if g[i] < 3]
        k = cand[int(rng.integers(0, min(len(cand), 3)))] if rng.random() < 0.5 else k
        g[k] += 1
    return dict(zip(SEGMENTS, (int(x) for x in g), strict=True))


def plan_plaques(
    rng: np.random.Generator,
    grades: dict[str, int],
    ranges: dict[str, tuple[float, float]],
    wall_len: dict[str, float],
    total: int,
) -> tuple[list[Plaque], dict[str, Any]]:
    """Plaques realising ``grades`` inside the segment arc ranges (mm), plus unscored ones."""
    burden = total / 24.0
    density = float(np.clip(rng.lognormal(math.log(1.2 + 2.5 * burden), 0.35), 0.7, 6.0))
    mix = rng.dirichlet([2.0, 1.2, 1.5])
    out: list[Plaque] = []

    def add(wall: str, kind: str, s0: float, s1: float) -> None:
        out.append(
            Plaque(
                wall,
                kind,
                s0,
                s1,
                width=float(rng.uniform(0.5, 1.7)),
                offset=float(rng.uniform(-0.3, 0.9)),
                density=float(np.clip(density * rng.lognormal(0, 0.25), 0.6, 7.0)),
                seed=int(rng.integers(0, 2**31)),
            )
        )

    for seg in SEGMENTS:
        g = grades[seg]
        if g == 0:
            continue
        wall = seg.split("_")[1]
        lo, hi = ranges[seg]
        full = hi - lo
        lo, hi = lo + 0.7, hi - 0.7
        need = float(rng.uniform(*_FRACTION[g])) * full
        kind = str(rng.choice(["stroke", "crescent", "flecks"], p=mix))
        if kind == "flecks" and g == 3:
            kind = "stroke"
        pieces = int(rng.integers(1, 3 if g == 3 else 4))
        parts = rng.dirichlet([4.0] * pieces) * need
        span = parts / (0.62 if kind == "flecks" else 1.0)
        if span.sum() > hi - lo:
            span *= (hi - lo) / span.sum()
        gaps = rng.dirichlet([1.0] * (pieces + 1)) * max(hi - lo - span.sum(), 0.0)
        pos = lo
        for i in range(pieces):
            pos += gaps[i]
            add(wall, kind, pos, pos + span[i])
            pos += span[i]
    for wall in WALLS:
        first = ranges[f"L1_{wall}"][0]
        if rng.random() < 0.1 + 0.5 * burden and first > 15:
            a = float(rng.uniform(3, first - 8))
            add(wall, "stroke", a, min(a + float(rng.uniform(3, 10)), first - 3))
        last = ranges[f"L4_{wall}"][1]
        if rng.random() < 0.15 + 0.6 * burden and wall_len[wall] - last > 12:
            a = float(rng.uniform(last + 3, wall_len[wall] - 8))
            add(
                wall,
                str(rng.choice(["stroke", "flecks"])),
                a,
                min(a + float(rng.uniform(4, 15)), wall_len[wall] - 2),
            )
    return out, {"density": round(density, 4), "mix": [round(float(x), 3) for x in mix]}


__all__ = [
    "DISTRIBUTIONS",
    "GasTube",
    "Plaque",
    "Scene",
    "anterior_line",
    "plan_plaques",
    "sample_scene",
    "spread_grades",
    "target_probabilities",
]
