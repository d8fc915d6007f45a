"""One simulated case: anatomy -> calcification -> imaging chain -> measured ground truth.

Case ``index`` of seed ``seed`` draws every random number from
``numpy.random.default_rng(numpy.random.SeedSequence([seed, index]))`` in a fixed order, so a case
is identical whatever the number of jobs, and overrides replace sampled values without changing
any other draw (the same case can be rendered mirrored or not, at another spacing, etc.).

All returned coordinates are pixel ``(x = column, y = row)`` in the image as written (after
rotation and mirroring).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore._files import json_safe
from aacscore.kauppila import LEVELS, SEGMENTS, WALLS, KauppilaScore
from aacscore.simulate.anatomy import (
    Anatomy,
    Variety,
    render_bones,
    render_medium,
    resolve_variety,
    sample_anatomy,
    variety_record_to_image,
)
from aacscore.simulate.calcification import (
    DISTRIBUTIONS,
    HARD_NEGATIVE,
    Bound,
    SimulationError,
    allocate_grades,
    compute_bounds,
    hard_negative_shapes,
    measure_truth,
    plan_hard_negatives,
    plan_plaques,
    render_distractors,
    render_gas,
    render_plaques,
    sample_distractors,
    sample_target,
    visible_plaques,
)
from aacscore.simulate.geometry import F32, F64, arc_length
from aacscore.simulate.render import (
    expose,
    overlays,
    process,
    quantise,
    sample_geometry,
    sample_imaging,
)

log = logging.getLogger(__name__)

OVERRIDES: dict[str, str] = {
    "mirror": "bool: force anterior to the right (True) or left (False)",
    "rotation_deg": "float: in-plane rotation",
    "fov_width_mm": "float: field of view width (enlarged if the ROI does not fit)",
    "fov_height_mm": "float: field of view height",
    "photometric": "MONOCHROME1 | MONOCHROME2",
    "modality": "CR | DX",
    "bits_stored": "int 8-16",
    "grid_lines": "bool",
    "target_aac24": "int 0-24: target total before measurement",
    "age": "float years",
    "sex": "F | M",
    "scale": "float patient size factor",
    "bmd": "float bone mineral density factor",
    "habitus": "float 0 (thin) - 1 (obese)",
    "sacral_slope_deg": "float",
    "lordosis_deg": "float",
    "kyphosis_deg_per_level": "float",
    "cortex_mm": "float",
    "rotation_split_mm": "float: left/right offset (double contours)",
    "fracture_prob": "float",
    "fracture_level": "T12 | L1 .. L4 | None",
    "fracture_kind": "wedge | biconcave | crush",
    "aorta_gap_mm": "float",
    "aorta_diameter_mm": "float",
    "aneurysm_prob": "float",
}

VERTEBRA_NAMES: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
HARD_NEGATIVE_TAG = 0x0AE6
"""Extra seed word of the hard-negative draws (``[seed, index, HARD_NEGATIVE_TAG]``), so the
other distributions' random streams are untouched."""
_REQUIRED = ("T12", "L1", "L2", "L3", "L4", "L5")


@dataclass(frozen=True, eq=False)
class SimulatedCase:
    """A rendered radiograph with its exact annotations (pixel coordinates of the image)."""

    image: npt.NDArray[np.float32]
    stored: npt.NDArray[np.uint16]
    labels: npt.NDArray[np.uint8]
    calc_mask: npt.NDArray[np.uint8]
    spacing_mm: tuple[float, float]
    anterior_side: str
    truth: KauppilaScore
    fractions: dict[str, float]
    vertebrae: dict[str, F64]
    walls: dict[str, F64]
    segment_bounds: dict[str, F64]
    params: dict[str, Any]
    seed: int = 0
    index: int = 0
    distribution: str = "population"
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def photometric(self) -> str:
        """PhotometricInterpretation of ``stored``."""
        return str(self.params["imaging"]["photometric"])

    @property
    def modality(self) -> str:
        """CR or DX."""
        return str(self.params["imaging"]["modality"])

    @property
    def bits_stored(self) -> int:
        """Bits stored of ``stored``."""
        return int(self.params["imaging"]["bits_stored"])

    @property
    def name(self) -> str:
        """File stem ``case_{index:06d}``."""
        return f"case_{self.index:06d}"

    def annotations(self, files: dict[str, str] | None = None) -> dict[str, Any]:
        """JSON-serialisable annotation record (the ``case_XXXXXX.json`` content)."""
        return {
            "case": self.name,
            "seed": self.seed,
            "index": self.index,
            "distribution": self.distribution,
            "files": files or {},
            "shape": [int(self.image.shape[0]), int(self.image.shape[1])],
            "spacing_mm": [float(self.spacing_mm[0]), float(self.spacing_mm[1])],
            "anterior_side": self.anterior_side,
            "photometric": self.photometric,
            "modality": self.modality,
            "vertebrae": {k: {"corners": _round(v)} for k, v in self.vertebrae.items()},
            "walls": {k: _round(v) for k, v in self.walls.items()},
            "segments": self.segments,
            "aac24": self.truth.aac24,
            "aac8": self.truth.aac8,
            "group": self.truth.group,
            "params": self.params,
        }


def _round(a: F64) -> list[list[float]]:
    return [[round(float(x), 3), round(float(y), 3)] for x, y in np.asarray(a)]


def check_case_arguments(
    seed: int,
    index: int,
    distribution: str,
    distributions: tuple[str, ...],
    overrides: dict[str, Any],
    known: dict[str, str],
) -> None:
    """The argument checks every simulator family makes before drawing a case.

    Raises:
        ValueError: unknown distribution, or a negative seed or index.
        TypeError: an override the family does not know.
    """
    if distribution not in distributions:
        raise ValueError(f"unknown distribution {distribution!r}; expected one of {distributions}")
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise TypeError(f"unknown override(s) {unknown}; known: {sorted(known)}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got {seed}, {index}")


def simulate_case(
    seed: int,
    index: int,
    distribution: str = "population",
    spacing_mm: float | None = None,
    variety: str | Variety = "standard",
    **overrides: Any,
) -> SimulatedCase:
    """Render case ``index`` of ``seed`` (see module docstring and :data:`OVERRIDES`).

    ``variety``: ``"standard"``, ``"extended"`` (anatomical variety and implants drawn from their
    own stream, :func:`aacscore.simulate.anatomy.sample_variety`) or a
    :class:`~aacscore.simulate.anatomy.Variety` plan to force features.
    """
    check_case_arguments(seed, index, distribution, DISTRIBUTIONS, overrides, OVERRIDES)
    plan = resolve_variety(variety, seed, index)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    ov = dict(overrides)
    negative = distribution == HARD_NEGATIVE
    neg_rng = np.random.default_rng(
        np.random.SeedSequence([int(seed), int(index), HARD_NEGATIVE_TAG])
    )
    if negative:  # older patients: more osteophytes at the anterior corners
        ov.setdefault("age", float(neg_rng.uniform(65, 90)))

    anat = sample_anatomy(rng, ov, plan)
    corners_mm = {b.name: b.corners_mm() for b in anat.bodies if b.name in VERTEBRA_NAMES}
    bounds_mm = compute_bounds(corners_mm, anat.walls)
    seg_ranges = {s: (b[0].s, b[1].s) for s, b in bounds_mm.items()}
    wall_len = {w: float(arc_length(anat.walls[w])[-1]) for w in WALLS}

    total = sample_target(rng, distribution)
    total = int(ov.get("target_aac24", total))
    if not 0 <= total <= 24:
        raise ValueError(f"target_aac24 must lie in 0..24, got {total}")
    target = allocate_grades(rng, total)
    plaques, plaque_info = plan_plaques(rng, target, seg_ranges, wall_len, total)
    neg_plan = None
    if negative:  # no aortic plaque at all (also none outside the scored segments)
        if total != 0:
            raise ValueError(f"hard negatives have AAC-24 0, got target_aac24={total}")
        plaques = []
        span = (
            float(np.min(corners_mm["L1"][:, 1])),
            float(np.max(corners_mm["L4"][:, 1])),
        )
        neg_plan = plan_hard_negatives(neg_rng, anat.walls, span)
        if neg_plan.crop_band:
            ov.setdefault("fov_width_mm", 60.0)  # enlarged to the ROI: the band's front is cut
        anat.soft["gas"] = max(anat.soft["gas"], float(neg_rng.uniform(0.4, 0.9)))
        anat.soft["stool"] = max(anat.soft["stool"], float(neg_rng.uniform(0.3, 0.9)))

    l4 = anat.body("L4")
    region = {
        "anterior_x": min(b.centre[0] - b.depth / 2 for b in anat.bodies if b.name in LEVELS),
        "pelvis_y": anat.body("S1").centre[1],
        "top_y": anat.body("T10").centre[1],
        "l1_y": anat.body("L1").centre[1],
        "l5_y": anat.body("L5").centre[1],
    }
    del l4

    roi = _roi_points(corners_mm, anat, seg_ranges)
    spine_c = np.mean(corners_mm["L3"], axis=0)
    gp: dict[str, Any] = {}
    geo = sample_geometry(rng, ov, roi, spine_c, spacing_mm, gp)
    ip = sample_imaging(rng, ov, float(anat.soft["habitus"]))
    shapes, dcounts = sample_distractors(rng, anat.walls, region, ip["mu_scale"])
    if neg_plan is not None:
        shapes += hard_negative_shapes(neg_plan, float(ip["mu_scale"]))
    frame = geo.frame
    sp = frame.spacing

    l_fine = np.zeros(frame.shape, dtype=np.float32)
    labels = np.zeros(frame.shape, dtype=np.uint8)
    render_bones(anat, frame, l_fine, labels, rng)
    pmasks = render_plaques(plaques, anat.walls, frame, l_fine)
    render_distractors(shapes, frame, l_fine)
    if neg_plan is not None:
        render_gas(neg_plan.gas, frame, l_fine, neg_rng)
    fm = max(1, round(0.6 / sp))
    l_med, _thick = render_medium(anat, frame.coarse(fm), rng)

    roi_px = frame.to_px(roi)
    roi_box = (
        float(roi_px[:, 0].min()),
        float(roi_px[:, 1].min()),
        float(roi_px[:, 0].max()),
        float(roi_px[:, 1].max()),
    )
    sig, coll = expose(l_fine, l_med, fm, frame, ip, roi_box, rng)
    img = process(sig, coll, ip, sp, roi_box)
    keep = visible_plaques(img, pmasks, ring_px=max(3, round(1.2 / sp)), px_mm=sp)
    calc = np.zeros(frame.shape, dtype=np.uint8)
    flat_calc = calc.reshape(-1)
    for (flat, code), ok in zip(pmasks, keep, strict=True):
        if ok:
            flat_calc[flat] = code

    h, w = frame.shape

    def to_img(pts_mm: F64) -> F64:
        q = frame.to_px(pts_mm)
        if geo.mirror:
            q[..., 0] = (w - 1) - q[..., 0]
        return q

    if geo.mirror:
        img = np.ascontiguousarray(img[:, ::-1])
        labels = np.ascontiguousarray(labels[:, ::-1])
        calc = np.ascontiguousarray(calc[:, ::-1])
        roi_box = (w - 1 - roi_box[2], roi_box[1], w - 1 - roi_box[0], roi_box[3])
    drawn = overlays(img, ip, roi_box, rng, geo.mirror)
    stored, shown = quantise(img, int(ip["bits_stored"]), str(ip["photometric"]))

    vertebrae = {n: to_img(c) for n, c in corners_mm.items()}
    for n in ("T11", "S1"):
        cen = vertebrae[n].mean(axis=0)
        if not (0 <= cen[0] <= w - 1 and 0 <= cen[1] <= h - 1):
            del vertebrae[n]
    walls = {k: to_img(v) for k, v in anat.walls.items()}
    bounds_px = compute_bounds(vertebrae, walls)
    truth = measure_truth(calc, walls, bounds_px, vertebrae)
    segments = _segment_records(truth, bounds_px, sp)
    seg_bounds = {s: np.stack([bounds_px[s][0].point, bounds_px[s][1].point]) for s in SEGMENTS}

    anat_params = dict(anat.params)
    if "variety" in anat_params:  # its points in the film's pixels, like every coordinate
        anat_params["variety"] = variety_record_to_image(anat_params["variety"], to_img)
    params: dict[str, Any] = {
        "anatomy": anat_params,
        "geometry": gp,
        "imaging": ip,
        "calcification": {
            "target_aac24": total,
            "target_grades": target,
            "plaques": len(plaques),
            "plaques_visible": int(sum(keep)),
            "plaque_kinds": sorted({p.kind for p in plaques}),
            **plaque_info,
        },
        "distractors": dcounts,
        "overlays": drawn,
        **(
            {}
            if neg_plan is None
            else {
                "hard_negatives": {
                    **neg_plan.counts(),
                    "points_px": _round(to_img(neg_plan.centres())),
                }
            }
        ),
        "medium_factor": fm,
    }
    log.debug("case %s/%s: aac24=%d target=%d", seed, index, truth.score.aac24, total)
    return SimulatedCase(
        image=shown,
        stored=stored,
        labels=labels,
        calc_mask=calc,
        spacing_mm=(sp, sp),
        anterior_side="right" if geo.mirror else "left",
        truth=truth.score,
        fractions=truth.fractions,
        vertebrae=vertebrae,
        walls=walls,
        segment_bounds=seg_bounds,
        params=json_safe(params, ndigits=5),
        seed=int(seed),
        index=int(index),
        distribution=distribution,
        segments=segments,
    )


def _roi_points(
    corners: dict[str, F64], anat: Anatomy, seg_ranges: dict[str, tuple[float, float]]
) -> F64:
    """Points that must stay inside the field: L1-L4, adjacent end-plates, the scored walls."""
    pts = [corners[n] for n in ("L1", "L2", "L3", "L4")]
    pts.append(corners["T12"][2:4])
    pts.append(corners["L5"][0:2])
    for w in WALLS:
        s = arc_length(anat.walls[w])
        lo, hi = seg_ranges[f"L1_{w}"][0] - 3, seg_ranges[f"L4_{w}"][1] + 3
        sel = (s >= lo) & (s <= hi)
        pts.append(anat.walls[w][sel])
    return np.concatenate(pts, axis=0)


def _segment_records(
    truth: Any, bounds: dict[str, tuple[Bound, Bound]], sp: float
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i, seg in enumerate(SEGMENTS):
        top, bot = bounds[seg]
        out[seg] = {
            "fraction": round(float(truth.fractions[seg]), 6),
            "grade": int(truth.score.grades[i]),
            "wall_length_mm": round(float(truth.wall_length_px[seg] * sp), 4),
            "calcified_mm": round(float(truth.calcified_px[seg] * sp), 4),
            "bounds": [
                [round(float(top.point[0]), 3), round(float(top.point[1]), 3)],
                [round(float(bot.point[0]), 3), round(float(bot.point[1]), 3)],
            ],
        }
    return out


__all__ = ["OVERRIDES", "SimulatedCase", "SimulationError", "simulate_case"]
_ = F32
