"""Speed benchmark: seconds per film, by stage, on real-size and small films, per backend.

Usage::

    python benchmarks/speed.py [--n 8] [--threads 2] [--backend both|onnx|torch]
        [--out benchmarks/results/speed.json]

Films are rendered by the simulator (seed 7000, population distribution) and written three
ways: **real-size J2K** (rendered at 0.14 mm/px, about 2-3k px per side like a CR/DR film,
JPEG 2000 lossless), **real-size uncompressed** (the same pixels, explicit VR little endian),
and **small** (the simulator's usual 0.3 mm/px, uncompressed). Each film is scored by one warm
:class:`aacscore.pipeline.Scorer` per backend (shipped models, TTA on, CPU threads as given:
ONNX Runtime's and torch's), in the main process; with both backends each film is scored by one
and then the other, so that a change of the machine's load hits both alike. Per backend and
kind: per-film median and p95 seconds (read → result), films/s and the median of each stage's
timing; per kind the median ratio torch / onnx of the paired per-film times; the peak resident
memory of the process and the load of the machine while it ran (other work on the machine slows
every figure: re-run on an idle machine before quoting them).
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
from pydicom.uid import JPEG2000Lossless

from aacscore import __version__
from aacscore.backend import set_threads
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


def _timed(scorer: Scorer, film: Path) -> tuple[float, Any]:
    t0 = time.perf_counter()
    res = scorer.score(film)
    return time.perf_counter() - t0, res


def measure(scorers: dict[str, Scorer], films: list[Path]) -> dict[str, Any]:
    """Score each film once per scorer, interleaved (after a warm-up on the first film), and
    summarise the timings per scorer and the paired torch / onnx ratio."""
    for scorer in scorers.values():
        scorer.score(films[0])
    secs: dict[str, list[float]] = {b: [] for b in scorers}
    stages: dict[str, dict[str, list[float]]] = {b: {} for b in scorers}
    statuses: dict[str, list[str]] = {b: [] for b in scorers}
    walls = dict.fromkeys(scorers, 0.0)
    sizes: list[tuple[int, ...]] = []  # (rows, cols) of each film read
    for f in films:
        for b, scorer in scorers.items():
            dt, res = _timed(scorer, f)
            secs[b].append(dt)
            walls[b] += dt
            statuses[b].append(res.status.value)
            if res.stages is not None:
                if b == next(iter(scorers)):
                    sizes.append(tuple(res.stages.radiograph.shape))
                for k, v in res.stages.timings.items():
                    stages[b].setdefault(k, []).append(float(v))
    out: dict[str, Any] = {
        "n": len(films),
        "shape_median": (
            [int(np.median([s[i] for s in sizes])) for i in range(2)] if sizes else None
        ),
        "bytes_median": int(np.median([f.stat().st_size for f in films])),
        "backends": {
            b: {
                "statuses": {s: statuses[b].count(s) for s in sorted(set(statuses[b]))},
                "median_s": float(np.median(secs[b])),
                "p95_s": float(np.percentile(secs[b], 95)),
                "films_per_s": len(films) / walls[b],
                "stage_median_s": {k: float(np.median(v)) for k, v in stages[b].items()},
            }
            for b in scorers
        },
    }
    if {"onnx", "torch"} <= set(scorers):
        ratio = np.asarray(secs["torch"]) / np.asarray(secs["onnx"])
        out["torch_over_onnx_median"] = float(np.median(ratio))
        for stage in ("view_s", "spine_s", "score_s"):
            a, b = stages["torch"].get(stage), stages["onnx"].get(stage)
            if a and b:
                out[f"torch_over_onnx_{stage}"] = float(np.median(np.asarray(a) / np.asarray(b)))
    return out


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8, help="films per kind")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the networks")
    ap.add_argument(
        "--backend",
        choices=("both", "onnx", "torch"),
        default="both",
        help="backends to measure (both: side by side, interleaved)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    backends = ["onnx", "torch"] if args.backend == "both" else [args.backend]
    if "torch" in backends:
        import torch  # noqa: F401  (so that set_threads reaches torch too)
    set_threads(args.threads)
    load_before = os.getloadavg()
    scorers = {b: Scorer(backend=b) for b in backends}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        kinds = make_films(Path(tmp), args.n)
        for kind, films in kinds.items():
            results[kind] = r = measure(scorers, films)
            for b, rb in r["backends"].items():
                print(
                    f"{kind:24s} {b:5s} {r['shape_median']} median {rb['median_s']:.3f} s "
                    f"p95 {rb['p95_s']:.3f} s  {rb['films_per_s']:.2f} films/s  "
                    + " ".join(f"{k} {v:.3f}" for k, v in rb["stage_median_s"].items())
                )
            if "torch_over_onnx_median" in r:
                print(f"{kind:24s} torch / onnx per film: {r['torch_over_onnx_median']:.2f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_after = os.getloadavg()
    record = {
        "command": "python benchmarks/speed.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "aacscore_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "platform": platform.platform(),
            "load_1min_before": load_before[0],
            "load_1min_after": load_after[0],
            "load_5min_after": load_after[1],
            "loaded": max(load_before[0], load_after[0]) > 0.5,
        },
        "backends": backends,
        "seed": SEED,
        "spacing_mm": {"real_size": REAL_SIZE_MM, "small": SMALL_MM},
        "tta": True,
        "peak_rss_mb": peak_mb,
        "kinds": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    load = f"load {load_before[0]:.2f} -> {load_after[0]:.2f}"
    print(f"peak memory {peak_mb:.0f} MB, {load} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
