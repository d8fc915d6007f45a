"""Benchmark of the input gate's field check, spine flags and familiarity (quality) score.

Usage::

    python benchmarks/quality.py --data /work/main/data/sim_dev1000 --max-cases 100 [--start 0] \\
        --real /work/shared/reference/lateral_lumbar_example/LAT.jpg \\
        --real /work/shared/reference/negatives/*.jpg ... [--out benchmarks/results/quality.json]

For each simulated (development) film, as the pipeline would run: spine model, field check,
band, band coverage, score model (with test-time augmentation), quality. Figures: the share of
films flagged ``low_quality`` (target <= 2-3 %), refused by the field checks, and carrying each
spine flag; ``fracture_suspected`` against the simulator's fracture truth; the quality's
percentiles; milliseconds quality adds per film (statistics + p-values, after the passes).
The ``--real`` films get their quality (or the reason they are refused) listed one by one.
Never run it on the final test set.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from aacscore.codes import ScoringError
from aacscore.gate.field import check_band_coverage, check_field
from aacscore.gate.quality import QualityReference, assess_quality
from aacscore.io import read_radiograph
from aacscore.pipeline import band_along_spine
from aacscore.score.predict import ScoreModel
from aacscore.spine.predict import load_spine_model


def run_film(
    path: Path, spine_model: Any, score_model: ScoreModel, ref: QualityReference
) -> dict[str, Any]:
    """One film through spine, field check, band, coverage, score and quality."""
    out: dict[str, Any] = {"file": path.name}
    try:
        rad = read_radiograph(path)
        spine = spine_model.predict(rad)
        out["spine_flags"] = list(spine.flags)
        field = check_field(spine)
        out["field"] = field.to_dict()
        band = band_along_spine(rad, spine, score_model.band_geometry)
        cov = check_band_coverage(band)
        out["coverage"] = cov.to_dict()
        pred = score_model.predict(band)
        t0 = time.perf_counter()
        q = assess_quality(spine, band, pred, ref)
        out["quality_ms"] = (time.perf_counter() - t0) * 1000.0
        out["quality"] = q.to_dict()
        out["aac24"] = pred.aac24
        out["refused"] = field.code.value if field.code else (cov.code.value if cov.code else None)
    except ScoringError as exc:
        out["refused"] = exc.code.value
        out["error"] = str(exc)
    except ValueError as exc:
        out["refused"] = "error"
        out["error"] = str(exc)
    return out


def summarise(rows: list[dict[str, Any]], truth: dict[str, str | None]) -> dict[str, Any]:
    n = len(rows)
    scored = [r for r in rows if "quality" in r]
    qv = np.array([r["quality"]["value"] for r in scored])
    flags = Counter(f for r in rows for f in r.get("spine_flags", []))
    flags.update(f for r in rows for f in r.get("coverage", {}).get("flags", []))
    refused = Counter(r["refused"] for r in rows if r.get("refused"))
    low = [r["file"] for r in scored if r["quality"]["low"]]
    comp_low = Counter(
        min(r["quality"]["components"], key=r["quality"]["components"].get)
        for r in scored
        if r["quality"]["low"]
    )
    frac = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for r in rows:
        if "spine_flags" not in r:
            continue
        t = truth.get(r["file"]) in ("L1", "L2", "L3", "L4")
        f = "fracture_suspected" in r["spine_flags"]
        frac[("t" if t == f else "f") + ("p" if f else "n")] += 1
    ms = np.array([r["quality_ms"] for r in scored])
    return {
        "n_films": n,
        "n_scored": len(scored),
        "low_quality_rate": len(low) / max(len(scored), 1),
        "low_quality_files": low,
        "low_quality_by_component": dict(comp_low),
        "refused": dict(refused),
        "flag_rates": {k: v / n for k, v in sorted(flags.items())},
        "fracture_vs_truth_L1_L4": frac,
        "quality_percentiles": {f"p{p}": float(np.percentile(qv, p)) for p in (1, 2, 5, 10, 50)}
        if len(qv)
        else {},
        "quality_ms_mean": float(ms.mean()) if len(ms) else None,
        "quality_ms_max": float(ms.max()) if len(ms) else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--max-cases", type=int, default=100)
    ap.add_argument("--start", type=int, default=0, help="skip the first N films")
    ap.add_argument("--real", type=Path, action="append", default=[])
    ap.add_argument("--reference", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/quality.json"))
    args = ap.parse_args(argv)
    if "final" in str(args.data):
        print("refusing to run on the final test set", file=sys.stderr)
        return 2
    ref = QualityReference.load(args.reference)
    spine_model = load_spine_model(None)
    score_model = ScoreModel.load()
    paths = sorted(args.data.glob("*.dcm"))[args.start : args.start + args.max_cases]
    truth: dict[str, str | None] = {}
    rows = []
    t0 = time.time()
    for p in paths:
        j = p.with_suffix(".json")
        if j.is_file():
            anat = json.loads(j.read_text())["params"]["anatomy"]
            truth[p.name] = anat.get("fracture_level")
        rows.append(run_film(p, spine_model, score_model, ref))
        print(p.name, rows[-1].get("refused"), rows[-1].get("quality", {}).get("value"), flush=True)
    real = []
    for p in args.real:
        r = run_film(p, spine_model, score_model, ref)
        real.append(
            {
                "file": str(p),
                "refused": r.get("refused"),
                "error": r.get("error"),
                "spine_flags": r.get("spine_flags"),
                "field": r.get("field"),
                "quality": r.get("quality"),
            }
        )
        print(p.name, r.get("refused"), r.get("quality", {}).get("value"), flush=True)
    doc = {
        "benchmark": "quality",
        "data": str(args.data),
        "films": [args.start, args.start + len(paths)],
        "reference": ref.info,
        "threshold": ref.threshold,
        "simulated": summarise(rows, truth),
        "real": real,
        "seconds": time.time() - t0,
        "platform": platform.platform(),
        "command": "python benchmarks/quality.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc["simulated"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
