"""Benchmark of the score model(s) on a held-out simulated set, heads side by side.

Usage::

    python benchmarks/score_model.py --data DIR \
        [--model segments=runs/score_segments/model --model total=runs/score_total/model ...] \
        [--jitter-mm 1.5] [--out benchmarks/results/score_model.json] [--card MODEL_CARD.md]

``DIR`` is simulator output (``aacscore simulate``), ideally the population distribution with a
seed unseen in training. Bands are extracted from the TRUE vertebra corners jittered by
``--jitter-mm`` (RMS per corner, like the spine stage). Without ``--model`` the shipped model is
benchmarked. Figures per model: MAE of the AAC-24 total, RMSE, bias, Spearman rho, ICC(2,1),
per-group sensitivity/specificity (lewis groups), group accuracy, per-segment exact-grade
accuracy, AAC-8 agreement, 95 % interval coverage, low-confidence rate and timing, with and
without test-time augmentation. ``--card`` writes the comparison table into model card(s).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from aacscore.aorta import BandGeometry
from aacscore.backend import set_threads
from aacscore.kauppila import parse_groups
from aacscore.score import ScoreModel
from aacscore.score.predict import aac8_from_fractions, confidence_interval
from aacscore.training.card import metrics_table, replace_comparison
from aacscore.training.metrics import score_metrics
from aacscore.training.score_data import BandSet, build_simulated_bands

TARGETS = {"mae": 0.6, "spearman": 0.95, "icc21": 0.95, "sens_spec": 0.90}
RESULTS = Path(__file__).resolve().parent / "results" / "score_model.json"


def _truth_aac8(data_dir: Path, case_ids: tuple[str, ...]) -> np.ndarray:
    truth = data_dir / "truth.csv"
    out = np.full(len(case_ids), np.nan)
    if truth.is_file():
        df = pd.read_csv(truth)
        if "aac8" in df.columns and "case" in df.columns:
            m = dict(zip(df["case"].astype(str), df["aac8"], strict=True))
            out = np.asarray([float(m.get(c, np.nan)) for c in case_ids])
    return out


def targets_met(m: dict[str, Any]) -> dict[str, bool]:
    """Which of the project's targets a metrics dict meets."""
    per = m["group"]["per_group"].values()
    ss = [v for g in per for v in (g["sensitivity"], g["specificity"]) if v is not None]
    return {
        "mae<=0.6": m["mae"] is not None and m["mae"] <= TARGETS["mae"],
        "spearman>=0.95": (m["spearman"] or 0) >= TARGETS["spearman"],
        "icc21>=0.95": (m["icc21"]["value"] or 0) >= TARGETS["icc21"],
        "group_sens_spec>=0.90": bool(ss) and min(ss) >= TARGETS["sens_spec"],
    }


def evaluate_model(
    model: ScoreModel, bs: BandSet, aac8_true: np.ndarray, tta: bool, groups: str
) -> dict[str, Any]:
    """Predict every band and compute the figures."""
    g = parse_groups(groups)
    t0 = time.perf_counter()
    preds = model.predict_many(list(bs.bands.astype(np.float32)), groups=g, tta=tta)
    secs = time.perf_counter() - t0
    total = np.asarray([p.aac24 for p in preds])
    sd = np.asarray([p.aac24_sd for p in preds])
    grades = None if preds[0].grades is None else np.asarray([p.grades for p in preds])
    m = score_metrics(total, bs.totals, grades, bs.grades if grades is not None else None, g)
    lo_hi = np.asarray([confidence_interval(t, s) for t, s in zip(total, sd, strict=True)])
    m["coverage95"] = float(np.mean((bs.totals >= lo_hi[:, 0]) & (bs.totals <= lo_hi[:, 1])))
    flagged = np.asarray([p.low_confidence for p in preds])
    right = np.asarray([g.index(t) == g.index(y) for t, y in zip(total, bs.totals, strict=True)])
    m["low_confidence"] = {
        "rate": float(np.mean(flagged)),
        "group_accuracy_flagged": float(np.mean(right[flagged])) if flagged.any() else None,
        "group_accuracy_confident": float(np.mean(right[~flagged])) if (~flagged).any() else None,
        "wrong_group_flagged": float(np.mean(flagged[~right])) if (~right).any() else None,
    }
    if preds[0].fractions is not None and np.isfinite(aac8_true).any():
        a8 = np.asarray(
            [
                aac8_from_fractions(
                    p.fractions or (), bs.level_length_mm[i], bs.vertebral_height_mm[i]
                )
                for i, p in enumerate(preds)
            ],
            dtype=np.float64,
        )
        ok = np.isfinite(aac8_true)
        m["aac8"] = {
            "exact": float(np.mean(a8[ok] == aac8_true[ok])),
            "within_1": float(np.mean(np.abs(a8[ok] - aac8_true[ok]) <= 1)),
            "mae": float(np.mean(np.abs(a8[ok] - aac8_true[ok]))),
        }
    m["seconds_per_band_batched"] = secs / len(preds)
    zero = bs.totals == 0
    m["mean_total_on_aac0"] = float(np.mean(total[zero])) if zero.any() else None
    return m


def time_single(model: ScoreModel, band: np.ndarray, repeats: int = 20) -> dict[str, float]:
    """Median latency of one ``predict`` call (with TTA), after a warm-up."""
    model.predict(band)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(band)
        ts.append(time.perf_counter() - t0)
    return {"median_s": float(np.median(ts)), "p90_s": float(np.quantile(ts, 0.9))}


def comparison_markdown(results: dict[str, Any]) -> str:
    """Side-by-side table of the models (with TTA) plus the data line."""
    rows = {name: r["tta"] for name, r in results["models"].items()}
    lines = [
        f"Held-out simulated set `{results['data']}` ({results['n_cases']} films, corners "
        f"jittered {results['jitter_mm']} mm RMS), with test-time augmentation; command: "
        f"`{results['command']}`.",
        "",
        *metrics_table(rows),
        "",
        "| model | head | targets met | latency (1 band, TTA) |",
        "|---|---|---|---|",
    ]
    for name, r in results["models"].items():
        met = [k for k, v in r["targets_met"].items() if v]
        lines.append(
            f"| {name} | {r['head']} | {', '.join(met) or 'none'} | "
            f"{r['latency']['median_s'] * 1000:.0f} ms |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="held-out simulator folder")
    ap.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="model folder to benchmark (repeatable); default: the shipped model",
    )
    ap.add_argument("--jitter-mm", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=12345, help="seed of the corner jitter")
    ap.add_argument("--groups", default="lewis")
    ap.add_argument("--max-cases", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--card",
        type=Path,
        action="append",
        default=[],
        help="model card(s) whose 'Head comparison' section is replaced by the table",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    set_threads(args.threads)

    specs = [m.split("=", 1) if "=" in m else (Path(m).name, m) for m in args.model]
    models = {name: ScoreModel.load(path) for name, path in specs} or {"shipped": ScoreModel.load()}
    cache: dict[BandGeometry, BandSet] = {}
    t0 = time.perf_counter()
    for m in models.values():
        if m.band_geometry not in cache:
            cache[m.band_geometry] = build_simulated_bands(
                args.data,
                geometry=m.band_geometry,
                jitter_mm=args.jitter_mm,
                n_jitter=1,
                seed=args.seed,
                max_cases=args.max_cases,
                progress=True,
            )
    band_secs = (time.perf_counter() - t0) / max(1, sum(len(b) for b in cache.values()))
    results: dict[str, Any] = {
        "data": str(args.data),
        "jitter_mm": args.jitter_mm,
        "groups": args.groups,
        "command": "python benchmarks/score_model.py " + shlex.join(sys.argv[1:] or []),
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
        },
        "band_extraction_s_per_film_incl_decode": band_secs,
        "targets": TARGETS,
        "models": {},
    }
    for name, model in models.items():
        bs = cache[model.band_geometry]
        results["n_cases"] = len(bs)
        truth8 = _truth_aac8(args.data, bs.case_ids)
        entry: dict[str, Any] = {
            "path": str(model.path),
            "head": model.head,
            "sha256": model.config.sha256,
            "dtype": model.config.dtype,
            "tta": evaluate_model(model, bs, truth8, True, args.groups),
            "no_tta": evaluate_model(model, bs, truth8, False, args.groups),
            "latency": time_single(model, bs.bands[0].astype(np.float32)),
        }
        entry["targets_met"] = targets_met(entry["tta"])
        results["models"][name] = entry
        t = entry["tta"]
        print(
            f"{name} ({model.head}): MAE {t['mae']:.3f}, Spearman {t['spearman']}, "
            f"ICC(2,1) {t['icc21']['value']}, group acc {t['group']['accuracy']:.3f}, "
            f"coverage95 {t['coverage95']:.3f}, latency {entry['latency']['median_s'] * 1e3:.0f} ms"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    md = comparison_markdown(results)
    print(md)
    for card in args.card:
        replace_comparison(card, md)
        print(f"updated {card}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
