"""How visible are the simulator's graded plaques, and which ones does the score model miss?

Usage::

    python benchmarks/plaque_visibility.py --data data/sim_test [--model SCORE_DIR]
        [--out benchmarks/results/plaque_visibility.json]

For every graded segment (grade >= 1) of a simulator folder: the contrast-to-noise ratio (CNR)
of its calcification on the film, and the score model's grade for it on the band cut from the
TRUE corners (no spine error, no jitter). CNR is the simulator's own structured measure
(:func:`aacscore.simulate.calcification.structured_cnr`): in a band-pass image (0.3 mm
smoothing minus a 3 mm background) the mean over the segment's calcified pixels (within 4 mm of
its wall line) minus the median of a 2 mm ring around them (other calcification excluded), over
the ring's robust SD (1.4826 MAD): anatomical texture and edges count as noise, slow gradients
do not. Prints the share of graded segments the model reads below 0.5 per CNR bin, and the
moderate-group (lewis 2-5) films it misses.

The question it answers: are the score model's residual misses plaques that an expert could see?
Kauppila grades radiographically visible calcification; since 2026-11-27 the simulator keeps a
plaque in its truth only at a structured CNR >= 1 (per plaque), so a graded segment here should
not fall far below 1; the bins show how the model's misses depend on how faint the plaque is.
(An earlier version of this script compared the plaque with the whole 4 mm strip, whose dark
or bright neighbours made some visible plaques score below 0.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from aacscore import __version__
from aacscore.aorta import extract_band
from aacscore.backend import set_threads
from aacscore.io import read_radiograph
from aacscore.kauppila import SEGMENTS, parse_groups
from aacscore.score.predict import ScoreModel
from aacscore.simulate.calcification import structured_cnr
from aacscore.training.score_data import list_simulated_cases, read_case_json

RESULTS = Path(__file__).resolve().parent / "results" / "plaque_visibility.json"
BINS = (-np.inf, 1.0, 2.0, 4.0, 8.0, np.inf)
MISSED_BELOW = 0.5

logger = logging.getLogger("plaque_visibility")


def segment_cnr(
    film: np.ndarray, calc: np.ndarray, wall: tuple[np.ndarray, np.ndarray], spacing_mm: float
) -> float:
    """Structured CNR of the calcified pixels near one segment's wall line (module docstring)."""
    (x0, y0), (x1, y1) = wall
    v = np.array([x1 - x0, y1 - y0], dtype=float)
    length = float(np.hypot(*v))
    if length < 1e-6:
        return float("nan")
    u = v / length
    # window: the strip plus room for the ring and the 3 mm background filter
    pad = int(np.ceil(4.0 / spacing_mm)) + int(np.ceil(11.0 / spacing_mm))
    r0 = max(int(min(y0, y1)) - pad, 0)
    r1 = min(int(max(y0, y1)) + pad + 1, film.shape[0])
    c0 = max(int(min(x0, x1)) - pad, 0)
    c1 = min(int(max(x0, x1)) + pad + 1, film.shape[1])
    yy, xx = np.mgrid[r0:r1, c0:c1]
    t = (xx - x0) * u[0] + (yy - y0) * u[1]
    n = np.abs(-(xx - x0) * u[1] + (yy - y0) * u[0])
    strip = (t >= 0) & (t <= length) & (n < 4.0 / spacing_mm)
    sub_calc = calc[r0:r1, c0:c1]
    plaque = strip & sub_calc
    if not plaque.any():
        return float("nan")
    ring_w = max(2, round(2.0 / spacing_mm))
    ring = ndimage.binary_dilation(plaque, iterations=ring_w) & ~ndimage.binary_dilation(
        sub_calc, iterations=2
    )
    if ring.sum() < 8:
        return float("nan")
    sub = film[r0:r1, c0:c1].astype(np.float64)
    return structured_cnr(sub, plaque, ring, spacing_mm)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="simulator output folder")
    ap.add_argument("--model", type=Path, default=None, help="score model (default: shipped)")
    ap.add_argument("--limit", type=int, default=None, help="first N cases only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    set_threads(args.threads)
    t_start = time.time()
    model = ScoreModel.load(args.model)
    groups = parse_groups("lewis")
    segs: list[dict[str, Any]] = []
    films: list[dict[str, Any]] = []
    for jp in list_simulated_cases(args.data)[: args.limit]:
        case = read_case_json(jp)
        if sum(case.grades) == 0:
            continue
        meta = json.loads(jp.read_text(encoding="utf-8"))
        calc_name = meta.get("files", {}).get("calc") or f"{jp.stem}_calc.png"
        calc_path = jp.parent / calc_name
        if not calc_path.is_file():
            logger.warning("%s: no calcification mask, skipped", jp)
            continue
        rad = read_radiograph(case.film)
        calc = np.asarray(Image.open(calc_path)) > 0
        band = extract_band(
            rad.pixels,
            case.corners,
            case.anterior_side,
            rad.spacing_mm,
            geometry=model.band_geometry,
        )
        pred = model.predict(band)
        assert pred.grades is not None, "needs a model with the segments head"
        spacing = float(np.mean(case.spacing_mm or rad.spacing_mm or (1.0, 1.0)))
        cnrs = []
        for j, s in enumerate(SEGMENTS):
            grade = case.grades[j]
            if grade == 0:
                continue
            b = meta["segments"][s]["bounds"]
            cnr = segment_cnr(rad.pixels, calc, (np.asarray(b[0]), np.asarray(b[1])), spacing)
            cnrs.append(cnr)
            segs.append(
                {
                    "case": case.case_id,
                    "segment": s,
                    "grade": grade,
                    "calcified_mm": meta["segments"][s].get("calcified_mm"),
                    "cnr": cnr,
                    "predicted": pred.grades[j],
                }
            )
        truth_total = sum(case.grades)
        films.append(
            {
                "case": case.case_id,
                "aac24": truth_total,
                "predicted": pred.aac24,
                "true_group": groups.label(truth_total),
                "predicted_group": pred.group,
                "min_cnr": float(np.nanmin(cnrs)) if np.isfinite(cnrs).any() else None,
            }
        )
    seg_cnr = np.asarray([s["cnr"] for s in segs], dtype=float)
    missed = np.asarray([s["predicted"] < MISSED_BELOW for s in segs], dtype=bool)
    bins = []
    for lo, hi in itertools.pairwise(BINS):
        k: np.ndarray = (seg_cnr >= lo) & (seg_cnr < hi)
        bins.append(
            {
                "cnr_from": None if not np.isfinite(lo) else lo,
                "cnr_to": None if not np.isfinite(hi) else hi,
                "segments": int(k.sum()),
                "missed": int((k & missed).sum()),
                "missed_share": float((k & missed).sum() / k.sum()) if k.any() else None,
            }
        )
    mod = [f for f in films if f["true_group"] == "moderate"]
    mod_missed = [f for f in mod if f["predicted_group"] != "moderate"]
    out = {
        "benchmark": "plaque_visibility",
        "command": shlex.join([sys.executable.split("/")[-1], *sys.argv]),
        "aacscore": __version__,
        "data": str(args.data),
        "model": str(model.path),
        "bands": "from the true corners (no jitter), with test-time augmentation",
        "graded_segments": len(segs),
        "missed_segments": int(missed.sum()),
        "by_cnr": bins,
        "moderate_films": len(mod),
        "moderate_missed": mod_missed,
        "missed_segment_list": [s for s, m in zip(segs, missed, strict=True) if m],
        "seconds": round(time.time() - t_start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"{len(segs)} graded segments, {int(missed.sum())} read below {MISSED_BELOW}")
    for b in bins:
        print(
            f"  CNR {b['cnr_from']} to {b['cnr_to']}: {b['segments']} segments, "
            f"{b['missed']} missed ({b['missed_share']})"
        )
    print(f"moderate films: {len(mod)}, missed {len(mod_missed)} (bands from true corners)")
    for f in mod_missed:
        print(f"  {f['case']} true {f['aac24']} -> {f['predicted']:.2f}, min CNR {f['min_cnr']}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
