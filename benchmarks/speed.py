"""Speed benchmark: seconds per film, by stage, on real-size and small films.

Usage::

    python benchmarks/speed.py [--n 8] [--threads 2] [--out benchmarks/results/speed.json]

Films are rendered by the simulator (seed 7000, population distribution) and written three
ways: **real-size J2K** (rendered at 0.14 mm/px, about 2-3k px per side like a CR/DR film,
JPEG 2000 lossless), **real-size uncompressed** (the same pixels, explicit VR little endian),
and **small** (the simulator's usual 0.3 mm/px, uncompressed). Each film is scored by one warm
:class:`aacscore.pipeline.Scorer` (shipped models, TTA on, torch threads as given), in the main
process; per-film median and p95 seconds (read → result), films/s and the median of each stage's
timing are reported per kind, with the peak resident memory of the process and the load of the
machine while it ran (other work on the machine slows every figure).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from pydicom.uid import JPEG2000Lossless

from aacscore import __version__
from aacscore.pipeline import Scorer
from aacscore.simulate import simulate_case
from aacscore.simulate.dataset import write_case

RESULTS = Path(__file__).resolve().parent / "results" / "speed.json"
SEED = 7000
REAL_SIZE_MM = 0.14
SMALL_MM = 0.3

log = logging.getLogger("benchmarks.speed")


def make_films(folder: Path, n: int) -> dict[str, list[Path]]:
    """Write ``n`` films of each kind under ``folder``; the paths by kind."""
    kinds: dict[str, list[Path]] = {"real_size_j2k": [], "real_size_uncompressed": [], "small": []}
    for i in range(n):
        big = simulate_case(SEED, i, spacing_mm=REAL_SIZE_MM)
        write_case(big, folder / "raw", "dicom")
        raw = folder / "raw" / f"{big.name}.dcm"
        kinds["real_size_uncompressed"].append(raw)
        ds = pydicom.dcmread(raw)
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
        j2k = folder / "j2k" / f"{big.name}.dcm"
        j2k.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(j2k)
        kinds["real_size_j2k"].append(j2k)
        small = simulate_case(SEED, i, spacing_mm=SMALL_MM)
        write_case(small, folder / "small", "dicom")
        kinds["small"].append(folder / "small" / f"{small.name}.dcm")
    return kinds


def measure(scorer: Scorer, films: list[Path]) -> dict[str, Any]:
    """Score each film once (after a warm-up on the first) and summarise the timings."""
    scorer.score(films[0])
    secs: list[float] = []
    stages: dict[str, list[float]] = {}
    sizes: list[tuple[int, ...]] = []  # (rows, cols) of each film read
    statuses: list[str] = []
    t_all = time.perf_counter()
    for f in films:
        t0 = time.perf_counter()
        res = scorer.score(f)
        secs.append(time.perf_counter() - t0)
        statuses.append(res.status.value)
        if res.stages is not None:
            sizes.append(tuple(res.stages.radiograph.shape))
            for k, v in res.stages.timings.items():
                stages.setdefault(k, []).append(float(v))
    wall = time.perf_counter() - t_all
    return {
        "n": len(films),
        "shape_median": (
            [int(np.median([s[i] for s in sizes])) for i in range(2)] if sizes else None
        ),
        "bytes_median": int(np.median([f.stat().st_size for f in films])),
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "median_s": float(np.median(secs)),
        "p95_s": float(np.percentile(secs, 95)),
        "films_per_s": len(films) / wall,
        "stage_median_s": {k: float(np.median(v)) for k, v in stages.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8, help="films per kind")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    scorer = Scorer()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        kinds = make_films(Path(tmp), args.n)
        for kind, films in kinds.items():
            results[kind] = measure(scorer, films)
            r = results[kind]
            print(
                f"{kind:24s} {r['shape_median']} median {r['median_s']:.3f} s "
                f"p95 {r['p95_s']:.3f} s  {r['films_per_s']:.2f} films/s  "
                + " ".join(f"{k} {v:.3f}" for k, v in r["stage_median_s"].items())
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record = {
        "command": "python benchmarks/speed.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "aacscore_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": args.threads,
            "platform": platform.platform(),
            "load_1min_before": load_before,
            "load_1min_after": os.getloadavg()[0],
        },
        "seed": SEED,
        "spacing_mm": {"real_size": REAL_SIZE_MM, "small": SMALL_MM},
        "tta": True,
        "peak_rss_mb": peak_mb,
        "kinds": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"peak memory {peak_mb:.0f} MB -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
