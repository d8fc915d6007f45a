"""One family B film: skeleton -> soft tissue and aorta -> plaques -> imaging chain -> truth.

Case ``index`` of seed ``seed`` draws every random number from
``numpy.random.default_rng(numpy.random.SeedSequence([seed, index, FAMILY_B_TAG]))``, so a case
is identical whatever the number of jobs and differs from family A's case of the same seed and
index. The result is a :class:`~aacscore.simulate.case.SimulatedCase` (same files, same JSON
keys, plus ``"family": "b"``). All coordinates are pixel ``(x, y)`` of the film as written.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from aacscore._files import json_safe
from aacscore.kauppila import LEVELS, SEGMENTS, WALLS
from aacscore.simulate.calcification import HARD_NEGATIVE, HardNegativePlan, plan_hard_negatives
from aacscore.simulate.case import HARD_NEGATIVE_TAG, SimulatedCase, check_case_arguments
from aacscore.simulate.family_b import render as rd
from aacscore.simulate.family_b.scene import (
    DISTRIBUTIONS,
    F64,
    GasTube,
    Scene,
    plan_plaques,
    sample_scene,
    spread_grades,
    target_probabilities,
)
from aacscore.simulate.family_b.shapes import SACRAL, sample_skeleton
from aacscore.simulate.family_b.truth import (
    WALL_CODE,
    WallPoint,
    cumulative,
    measure,
    segment_bounds,
)
from aacscore.vertebrae import LABEL_VALUES

log = logging.getLogger(__name__)

FAMILY = "b"
FAMILY_B_TAG = 0xB0B
VERTEBRA_NAMES: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
SPACINGS_MM: tuple[float, ...] = (0.1, 0.12, 0.139, 0.143, 0.15, 0.16, 0.175, 0.2, 0.25, 0.3)
_SPACING_P = (0.05, 0.08, 0.12, 0.1, 0.15, 0.15, 0.12, 0.12, 0.06, 0.05)
OVERRIDES: dict[str, str] = {
    "mirror": "bool: anterior to the right (True) or left (False)",
    "rotation_deg": "float: in-plane rotation",
    "fov_width_mm": "float: field of view width (enlarged if the ROI does not fit)",
    "fov_height_mm": "float: field of view height",
    "photometric": "MONOCHROME1 | MONOCHROME2",
    "modality": "CR | DX",
    "bits_stored": "int 8-16",
    "target_aac24": "int 0-24: target total before measurement",
    "scale": "float patient size factor",
    "bmd": "float 0.2-2 bone mineral density factor (below ~0.7: osteoporotic bodies)",
    "aorta_gap_mm": "float",
    "aorta_diameter_mm": "float",
}


@dataclass(frozen=True, eq=False)
class FamilyBCase(SimulatedCase):
    """A family B film; its annotations carry ``"family": "b"``."""

    family: str = FAMILY

    def annotations(self, files: dict[str, str] | None = None) -> dict[str, Any]:
        out = super().annotations(files)
        out["family"] = self.family
        return out


def _canvas(
    rng: np.random.Generator,
    ov: dict[str, Any],
    roi: npt.NDArray[np.float64],
    centre: npt.NDArray[np.float64],
    spacing: float | None,
    gp: dict[str, Any],
) -> tuple[rd.Canvas, bool]:
    sp = float(rng.choice(SPACINGS_MM, p=np.array(_SPACING_P) / sum(_SPACING_P)))
    sp = float(spacing) if spacing is not None else sp
    if not 0.02 <= sp <= 2.0:
        raise ValueError(f"pixel spacing must lie in [0.02, 2] mm, got {sp}")
    rot = float(ov.get("rotation_deg", np.clip(rng.normal(0, 4.0), -12, 12)))
    mirror = bool(ov.get("mirror", rng.random() < 0.5))
    w_mm = float(ov.get("fov_width_mm", rng.uniform(160, 320)))
    h_mm = float(ov.get("fov_height_mm", rng.uniform(260, 440)))
    shift = np.array([rng.uniform(-35, 60), rng.uniform(-70, 60)])
    t = math.radians(rot)
    r = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    q = roi @ r.T
    lo, hi = q.min(axis=0) - 10.0, q.max(axis=0) + 10.0
    w_mm, h_mm = max(w_mm, float(hi[0] - lo[0]) + 2), max(h_mm, float(hi[1] - lo[1]) + 2)
    want = r @ centre + shift
    cx = float(np.clip(want[0], hi[0] - w_mm / 2, lo[0] + w_mm / 2))
    cy = float(np.clip(want[1], hi[1] - h_mm / 2, lo[1] + h_mm / 2))
    shape = (round(h_mm / sp), round(w_mm / sp))
    m = r / sp
    tt = np.array([(shape[1] - 1) / 2, (shape[0] - 1) / 2]) - np.array([cx, cy]) / sp
    if mirror:
        m = m * np.array([[-1.0], [1.0]])
        tt = np.array([shape[1] - 1 - tt[0], tt[1]])
    gp.update(
        spacing_mm=sp, rotation_deg=rot, fov_mm=[w_mm, h_mm], mirror=mirror, shape=list(shape)
    )
    return rd.Canvas(shape, m, tt), mirror


def _add_hard_negatives(sc: Scene, plan: HardNegativePlan) -> list[tuple[F64, F64, float, float]]:
    """Put ``plan``'s gas and calcific distractors into the scene; returns the metal clips and
    vessel-like lines as strokes (p0, p1, radius mm, density) for :func:`rd.render_strokes`."""
    for pts, radius, period, fill, stool in plan.gas:
        sc.gas.append(GasTube(pts, radius, period, fill, stool))
    for c, r, dens in (*plan.rings, *plan.dots):
        sc.distractors.append((c, r, 0.6 + 0.9 * dens))
    strokes: list[tuple[F64, F64, float, float]] = []
    for a, b in plan.clips:
        strokes += [(a[0], a[1], 0.35, 12.0), (b[0], b[1], 0.35, 12.0)]
    for pts, r, dens in plan.lines:
        for p0, p1 in zip(pts[:-1:3], pts[3::3], strict=False):
            strokes.append((p0, p1, r, 0.2 + 0.5 * dens))
    return strokes


def simulate_case_b(
    seed: int,
    index: int,
    distribution: str = "population",
    spacing_mm: float | None = None,
    **overrides: Any,
) -> FamilyBCase:
    """Render family B case ``index`` of ``seed`` (see module docstring and :data:`OVERRIDES`)."""
    check_case_arguments(seed, index, distribution, DISTRIBUTIONS, overrides, OVERRIDES)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), FAMILY_B_TAG]))
    ov = dict(overrides)
    sk = sample_skeleton(rng, ov)
    sc = sample_scene(rng, sk, ov)
    corners_mm = {n: sk.bodies[n].corners() for n in VERTEBRA_NAMES}
    neg_plan: HardNegativePlan | None = None
    strokes: list[tuple[F64, F64, float, float]] = []
    if distribution == HARD_NEGATIVE:
        neg_rng = np.random.default_rng(
            np.random.SeedSequence([int(seed), int(index), FAMILY_B_TAG, HARD_NEGATIVE_TAG])
        )
        span = (float(corners_mm["L1"][:, 1].min()), float(corners_mm["L4"][:, 1].max()))
        neg_plan = plan_hard_negatives(neg_rng, sc.walls, span)
        strokes = _add_hard_negatives(sc, neg_plan)
        if neg_plan.crop_band:
            ov.setdefault("fov_width_mm", 60.0)  # enlarged to the ROI: the band's front is cut
    bounds_mm = segment_bounds(corners_mm, sc.walls)
    ranges = {s: (b[0].s, b[1].s) for s, b in bounds_mm.items()}
    wall_len = {wall: float(cumulative(sc.walls[wall])[-1]) for wall in WALLS}
    total = int(ov.get("target_aac24", rng.choice(25, p=target_probabilities(distribution))))
    if not 0 <= total <= 24:
        raise ValueError(f"target_aac24 must lie in 0..24, got {total}")
    grades = spread_grades(rng, total)
    plaques, pinfo = plan_plaques(rng, grades, ranges, wall_len, total)
    if neg_plan is not None:  # no aortic plaque at all (also none outside the scored segments)
        if total != 0:
            raise ValueError(f"hard negatives have AAC-24 0, got target_aac24={total}")
        plaques = []
    chain = rd.sample_chain(rng, float(sc.params["habitus"]), ov)

    roi = [corners_mm[n] for n in LEVELS]
    roi += [corners_mm["T12"][2:4], corners_mm["L5"][0:2]]
    for wall in WALLS:
        arc = cumulative(sc.walls[wall])
        sel = (arc >= ranges[f"L1_{wall}"][0] - 3) & (arc <= ranges[f"L4_{wall}"][1] + 3)
        roi.append(sc.walls[wall][sel])
    roi_mm = np.concatenate(roi)
    gp: dict[str, Any] = {}
    cv, mirror = _canvas(rng, ov, roi_mm, sk.bodies["L3"].centre, spacing_mm, gp)
    sp = cv.spacing
    shape = cv.shape
    fm = max(1, round(0.35 / sp))
    fc = max(1, round(1.0 / sp))
    mid, coarse = cv.scaled(fm), cv.scaled(fc)

    trab = np.zeros(shape, dtype=np.float32)
    cort = np.zeros(shape, dtype=np.float32)
    bodies = np.zeros(shape, dtype=np.float32)  # textured per body, not by the global texture
    labels = np.zeros(shape, dtype=np.uint8)
    for name, b in sk.bodies.items():
        fused = name in SACRAL and sk.sacrum is not None
        rd.render_body(cv, b, bodies, cort, labels, LABEL_VALUES.get(name, 0), bone=not fused)
    if sk.sacrum is not None:
        rd.render_sacrum(cv, sk.sacrum, sk.bodies, bodies, cort)
    trab_m = np.zeros(mid.shape, dtype=np.float32)
    cort_m = np.zeros(mid.shape, dtype=np.float32)
    for name, slab, off in sk.slabs:  # soft-margined posterior elements: ~0.35 mm grid
        rd.render_slab(mid, sk.bodies[name], slab, off, trab_m, cort_m)
    for tb in sk.tubes:
        rd.render_tube(mid, tb, trab_m, cort_m)
    for pl in sk.plates:
        rd.render_plate(mid, pl, trab_m)
    spm = mid.spacing
    noise = rng.standard_normal(mid.shape).astype(np.float32)
    tex = ndimage.gaussian_filter(noise, (1.3 / spm, 0.5 / spm)) + 0.35 * ndimage.gaussian_filter(
        noise, 0.6 / spm
    )
    tex /= max(float(tex.std()), 1e-6)
    tex_amp = float(rng.uniform(0.15, 0.35))
    trab = (trab + rd.upsample(trab_m, shape, fm)) * (
        1 + np.float32(tex_amp) * rd.upsample(tex, shape, fm)
    ) + bodies
    cortical = float(rng.uniform(0.8, 1.2))
    bone = trab + np.float32(cortical) * (cort + rd.upsample(cort_m, shape, fm))
    rd.render_rings(cv, sc.distractors, bone)
    rd.render_strokes(cv, strokes, bone)
    flats = [rd.render_plaque(cv, p, sc.walls[p.wall], bone) for p in plaques]

    soft, gas = rd.soft_tissue(coarse, sc, rng)
    water = rd.upsample(soft - gas, shape, fc)

    roi_px = cv.to_px(roi_mm)
    h, w = shape
    box: tuple[int, int, int, int] = (
        max(int(roi_px[:, 1].min()), 0),
        min(int(roi_px[:, 1].max()) + 1, int(h)),
        max(int(roi_px[:, 0].min()), 0),
        min(int(roi_px[:, 0].max()) + 1, int(w)),
    )
    coll = rd.collimation(shape, chain, box, sp)
    spine_xy = cv.to_px(sk.bodies["L3"].centre)
    logs = rd.expose(bone, water, chain, sp, (int(spine_xy[1]), int(spine_xy[0])), coll, rng)
    img = rd.process(logs, chain, sp, box)
    if chain["shutter"] != "lead":
        img = img * coll + np.float32(0.0 if chain["shutter"] == "black" else 1.0) * (1 - coll)
    keep = rd.visible(img, flats, sp)
    calc = np.zeros(h * w, dtype=np.uint8)
    for p, flat, ok in zip(plaques, flats, keep, strict=True):
        if ok:
            calc[flat] = WALL_CODE[p.wall]
    calc = calc.reshape(shape)
    drawn = rd.burn_in(img, chain, box, sp, rng)
    stored, shown = rd.quantise(img, int(chain["bits_stored"]), str(chain["photometric"]))

    vertebrae = {n: cv.to_px(c) for n, c in corners_mm.items()}
    for n in ("T11", "S1"):
        cen = vertebrae[n].mean(axis=0)
        if not (0 <= cen[0] <= w - 1 and 0 <= cen[1] <= h - 1):
            del vertebrae[n]
    walls = {k: cv.to_px(v) for k, v in sc.walls.items()}
    bounds = segment_bounds(vertebrae, walls)
    truth = measure(calc, walls, bounds, vertebrae)
    params: dict[str, Any] = {
        "family": FAMILY,
        "anatomy": {**sk.params, **sc.params},
        "geometry": gp,
        "imaging": chain,
        "calcification": {
            "target_aac24": total,
            "target_grades": grades,
            "plaques": len(plaques),
            "plaques_visible": int(sum(keep)),
            "plaque_kinds": sorted({p.kind for p in plaques}),
            **pinfo,
        },
        "distractors": len(sc.distractors),
        "gas_tubes": len(sc.gas),
        "overlays": drawn,
        **(
            {}
            if neg_plan is None
            else {
                "hard_negatives": {
                    **neg_plan.counts(),
                    "points_px": [
                        [round(float(x), 3), round(float(y), 3)]
                        for x, y in cv.to_px(neg_plan.centres())
                    ],
                }
            }
        ),
        "layer_factors": [fm, fc],
    }
    log.debug("family b case %s/%s: aac24=%d target=%d", seed, index, truth.score.aac24, total)
    return FamilyBCase(
        image=shown,
        stored=stored,
        labels=labels,
        calc_mask=calc,
        spacing_mm=(sp, sp),
        anterior_side="right" if mirror else "left",
        truth=truth.score,
        fractions=truth.fractions,
        vertebrae=vertebrae,
        walls=walls,
        segment_bounds={s: np.stack([b[0].point, b[1].point]) for s, b in bounds.items()},
        params=json_safe(params, ndigits=5),
        seed=int(seed),
        index=int(index),
        distribution=distribution,
        segments=_records(truth, bounds, sp),
    )


def _records(
    truth: Any, bounds: dict[str, tuple[WallPoint, WallPoint]], sp: float
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i, seg in enumerate(SEGMENTS):
        top, bot = bounds[seg]
        out[seg] = {
            "fraction": round(float(truth.fractions[seg]), 6),
            "grade": int(truth.score.grades[i]),
            "wall_length_mm": round(float(truth.length_px[seg] * sp), 4),
            "calcified_mm": round(float(truth.calcified_px[seg] * sp), 4),
            "bounds": [
                [round(float(v), 3) for v in top.point],
                [round(float(v), 3) for v in bot.point],
            ],
        }
    return out


__all__ = ["FAMILY", "FAMILY_B_TAG", "OVERRIDES", "FamilyBCase", "simulate_case_b"]
