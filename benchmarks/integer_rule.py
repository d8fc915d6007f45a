"""How to turn continuous segment grades into integer Kauppila grades: round half up against
thresholds fitted on the films themselves.

Usage::

    aacscore score data/sim_dev1000 -o OUT
    python benchmarks/integer_rule.py --results OUT/results.csv \\
        --truth data/sim_dev1000/truth.csv
        [--out benchmarks/results/integer_rule.json]

For every scored film of ``truth.csv`` the continuous grades of ``results.csv`` are made integer
with thresholds (t1, t2, t3) (grade >= t_k counts k); the figures are segment exact-grade
accuracy, the integer AAC-24's MAE, and the false-positive rate (AAC-0 films whose integer sum is
>= 2), for the shipped rule (:data:`aacscore.kauppila.INTEGER_THRESHOLDS`) and for the grid
thresholds that maximise exact-grade accuracy on these films (an optimistic, in-sample figure:
a rule is only worth changing if that gain is large).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from aacscore.kauppila import INTEGER_THRESHOLDS, SEGMENTS
from aacscore.training.metrics import integer_metrics

RESULTS = Path(__file__).resolve().parent / "results" / "integer_rule.json"


def figures(pred: np.ndarray, truth: np.ndarray, thresholds: tuple[float, ...]) -> dict[str, Any]:
    ints = (pred[..., None] >= np.asarray(thresholds)).sum(-1)
    m = integer_metrics(ints.sum(axis=1), truth.sum(axis=1))
    return {
        "thresholds": [round(float(t), 3) for t in thresholds],
        "segment_exact": float((ints == truth).mean()),
        "integer_mae": m["mae"],
        "false_positive_rate": m["false_positive_rate"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    truth = {r["file"]: r for r in csv.DictReader(args.truth.open(encoding="utf-8"))}
    pred, true = [], []
    for r in csv.DictReader(args.results.open(encoding="utf-8")):
        t = truth.get(Path(r["file"]).name)
        if t is None or r["status"] == "failed" or not r[SEGMENTS[0]]:
            continue
        pred.append([float(r[s]) for s in SEGMENTS])
        true.append([int(t[s]) for s in SEGMENTS])
    if not pred:
        print(f"no scored film of {args.truth} in {args.results}", file=sys.stderr)
        return 2
    p, t = np.asarray(pred), np.asarray(true)
    shipped = figures(p, t, INTEGER_THRESHOLDS)
    grid = itertools.product(
        np.arange(0.2, 0.85, 0.05), np.arange(1.2, 1.85, 0.05), np.arange(2.2, 2.85, 0.05)
    )
    best = max(
        (figures(p, t, th) for th in grid),
        key=lambda f: (f["segment_exact"], -f["integer_mae"]),
    )
    doc = {
        "films": len(p),
        "shipped_rule": shipped,
        "best_grid_in_sample": best,
        "continuous_mae": float(np.abs(p.sum(axis=1) - t.sum(axis=1)).mean()),
        "command": " ".join(["python", "benchmarks/integer_rule.py", *(argv or sys.argv[1:])]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
