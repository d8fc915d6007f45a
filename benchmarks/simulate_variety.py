"""Rendering time of the extended simulator variety against the standard films.

Renders the same case indices with ``variety="standard"`` and ``"extended"`` (interleaved, so a
busy machine slows both alike) and reports the mean seconds per film, their ratio, and how often
each feature was drawn.

Usage: ``.venv/bin/python benchmarks/simulate_variety.py [--n 60] [--spacing 0.2]``.
Prints the figures and writes ``benchmarks/results/simulate_variety.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

from aacscore.simulate import simulate_case


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=60, help="cases per variety")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--spacing", type=float, default=0.2, help="pixel spacing in mm")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "simulate_variety.json"
    )
    args = ap.parse_args()

    simulate_case(0, 0, spacing_mm=args.spacing)  # warm-up (imports, caches)
    secs = {"standard": 0.0, "extended": 0.0}
    with_features = 0.0
    std_of_those = 0.0
    n_with = 0
    feats: Counter[str] = Counter()
    for i in range(args.n):
        dts = {}
        for variety in ("standard", "extended"):
            t = time.perf_counter()
            case = simulate_case(args.seed, i, spacing_mm=args.spacing, variety=variety)
            dts[variety] = time.perf_counter() - t
            secs[variety] += dts[variety]
        drawn = case.params["anatomy"]["variety"]["features"]
        feats.update(drawn)
        if drawn:
            with_features += dts["extended"]
            std_of_those += dts["standard"]
            n_with += 1
    mean = {k: v / max(args.n, 1) for k, v in secs.items()}
    results: dict[str, object] = {
        "spacing_mm": args.spacing,
        "n": args.n,
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "standard_seconds_per_film": round(mean["standard"], 3),
        "extended_seconds_per_film": round(mean["extended"], 3),
        "extended_over_standard": round(mean["extended"] / max(mean["standard"], 1e-9), 3),
        "films_with_features": n_with,
        "with_features_extended_over_standard": round(with_features / max(std_of_those, 1e-9), 3),
        "features": dict(sorted(feats.items())),
    }
    for k, v in results.items():
        print(f"{k}: {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
