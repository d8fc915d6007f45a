"""End-to-end benchmark: DICOM film -> results.csv row, on a held-out simulated set.

Usage::

    python benchmarks/score.py --data data/sim_test [--model NAME=SCORE_DIR ...]
        [--spine-model DIR] [--limit N] [--out benchmarks/results/score.json]

``--data`` is simulator output (``aacscore simulate``; population distribution, seed unseen in
training). Every film goes through the whole pipeline (reader, QC, spine model, band, score
model with test-time augmentation). Per score model (the per-film truth and prediction are kept
under ``cases`` in the results file): MAE of the total, Spearman rho, ICC(2,1),
lewis-group sensitivity/specificity, per-segment exact-grade accuracy, failures; speed: median
seconds per image (read -> result), images/s and peak resident memory. Targets: MAE <= 0.6,
Spearman >= 0.95, ICC >= 0.95, every group's sensitivity and specificity >= 0.90, <= 0.5 s per
image, peak memory <= 2 GB.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from aacscore import __version__
from aacscore.kauppila import SEGMENTS
from aacscore.pipeline import Scorer
from aacscore.training.metrics import score_metrics

RESULTS = Path(__file__).resolve().parent / "results" / "score.json"


def run_model(scorer: Scorer, data: Path, truth: pd.DataFrame) -> dict[str, Any]:
    """Score every film of ``truth`` and compute agreement and speed figures."""
    pred_tot, true_tot, pred_g, true_g, secs, failures = [], [], [], [], [], []
    cases: list[dict[str, Any]] = []
    scorer.score(data / str(truth.iloc[0]["file"]))  # warm-up (model loading, first call)
    t_all = time.perf_counter()
    for _, row in truth.iterrows():
        t0 = time.perf_counter()
        res = scorer.score(data / str(row["file"]))
        secs.append(time.perf_counter() - t0)
        if res.status == "failed" or res.aac24 is None:
            failures.append({"case": row["case"], "error": res.error})
            continue
        pred_tot.append(res.aac24)
        true_tot.append(float(row["aac24"]))
        cases.append(
            {
                "case": row["case"],
                "aac24": float(row["aac24"]),
                "predicted": round(float(res.aac24), 3),
                "sd": round(float(res.aac24_sd), 3) if res.aac24_sd is not None else None,
                "status": res.status,
            }
        )
        if res.grades is not None:
            pred_g.append([res.grades[s] for s in SEGMENTS])
            true_g.append([float(row[s]) for s in SEGMENTS])
    wall = time.perf_counter() - t_all
    m = score_metrics(
        np.asarray(pred_tot),
        np.asarray(true_tot),
        np.asarray(pred_g) if pred_g else None,
        np.asarray(true_g) if true_g else None,
    )
    m["failed"] = len(failures)
    m["failures"] = failures[:20]
    m["seconds_per_image_median"] = float(np.median(secs))
    m["seconds_per_image_p90"] = float(np.percentile(secs, 90))
    m["images_per_second"] = len(secs) / wall
    m["cases"] = cases
    return m


def _fmt(value: float | None) -> str:
    """A figure for the summary line; ``n/a`` where it is undefined (all-zero truth)."""
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", action="append", default=[], help="NAME=SCORE_MODEL_DIR")
    ap.add_argument("--spine-model", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    truth = pd.read_csv(args.data / "truth.csv")
    if args.limit:
        truth = truth.iloc[: args.limit]
    models = dict(m.split("=", 1) for m in args.model) or {"shipped": None}
    out: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "data": str(args.data),
        "n_cases": len(truth),
        "aacscore": __version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "models": {},
    }
    for name, path in models.items():
        scorer = Scorer(spine_model=args.spine_model, score_model=path)
        m = run_model(scorer, args.data, truth)
        out["models"][name] = m
        icc = m["icc21"]["value"] if isinstance(m["icc21"], dict) else m["icc21"]
        g = m["group"]["per_group"]
        ss = ", ".join(f"{k} sens {v['sensitivity']} spec {v['specificity']}" for k, v in g.items())
        print(
            f"{name}: n={m['n']} failed={m['failed']} MAE={m['mae']:.3f} "
            f"Spearman={_fmt(m['spearman'])} ICC(2,1)={_fmt(icc)} | {ss} | "
            f"segment exact={(m.get('segment_exact') or {}).get('overall')} | "
            f"median {m['seconds_per_image_median']:.3f} s/image, "
            f"{m['images_per_second']:.2f} images/s"
        )
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {out['peak_rss_mb']:.0f} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
