"""Simulator throughput: cases per second at ~0.2 mm spacing with 1 and 2 jobs.

Usage: ``.venv/bin/python benchmarks/simulate.py [--n 16] [--jobs 2] [--spacing 0.2]``.
Prints the figures and writes ``benchmarks/results/simulate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from aacscore.simulate import simulate_case, simulate_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=16, help="cases per run")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes of the parallel run")
    ap.add_argument("--spacing", type=float, default=0.2, help="pixel spacing in mm")
    ap.add_argument("--format", default="dicom", choices=["dicom", "png", "both"])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "simulate.json")
    args = ap.parse_args()

    simulate_case(0, 0, spacing_mm=args.spacing)  # warm-up (imports, caches)
    t = time.perf_counter()
    case = simulate_case(0, 1, spacing_mm=args.spacing)
    single = time.perf_counter() - t
    results: dict[str, object] = {
        "spacing_mm": args.spacing,
        "n": args.n,
        "format": args.format,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "single_case_seconds": round(single, 3),
        "example_shape": list(case.image.shape),
    }
    for jobs in sorted({1, args.jobs}):
        with tempfile.TemporaryDirectory() as tmp:
            summary = simulate_dataset(
                tmp, args.n, seed=1, jobs=jobs, fmt=args.format, progress=False,
                spacing_mm=args.spacing,
            )  # fmt: skip
            mpix = sum(p.stat().st_size for p in Path(tmp).glob("*.dcm")) / 2e6 / max(args.n, 1)
        results[f"jobs_{jobs}_cases_per_second"] = round(summary.cases_per_second, 3)
        results[f"jobs_{jobs}_seconds"] = round(summary.seconds, 2)
        results["mean_megapixels"] = round(mpix, 2)
        print(f"jobs={jobs}: {summary.n} cases in {summary.seconds:.1f} s "
              f"= {summary.cases_per_second:.2f} cases/s")  # fmt: skip
    print(f"single case: {single:.2f} s for {case.image.shape} at {args.spacing} mm")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
