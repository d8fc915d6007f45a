"""The Ray engine against the local batch: the same films give the same ``results.csv``, and
what it costs or gains in time.

Usage::

    python benchmarks/ray_engine.py [--n 32] [--spacing 0.35] [--seed 7]
        [--specs local:1,ray:1,ray:1x2,ray:2] [--repeat 1]
        [--out benchmarks/results/ray_engine.json]

Simulates ``--n`` DICOM films (:func:`aacscore.simulate.simulate_case`), then runs
``aacscore score FILMS -o OUT`` with the shipped models for each spec, each in a fresh process and
output folder, exactly as a user runs it: ``local:J`` is ``--engine local --jobs J``, ``ray:J`` is
``--engine ray --jobs J`` (J actors of one CPU each, on a local Ray instance that the command
starts and stops: its start-up is in the wall time) and ``ray:JxC`` gives each actor ``C`` CPUs
(``--num-cpus-per-worker C``, as many network threads). Each ray run's ``results.csv`` is compared
with the first spec's first run: same files in the same order, every column equal (numbers to
1e-6). With ``--repeat`` the specs run in turn that many times and the fastest run of each is
kept. The results file keeps one entry per core count.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aacscore import __version__
from aacscore.batch import cpu_cores
from aacscore.simulate import simulate_case
from aacscore.simulate.dataset import write_case

RESULTS = Path(__file__).resolve().parent / "results" / "ray_engine.json"
TOLERANCE = 1e-6
log = logging.getLogger("ray_engine")


def simulate(folder: Path, n: int, seed: int, spacing_mm: float) -> None:
    """``n`` simulated DICOM films in ``folder``."""
    for i in range(n):
        write_case(simulate_case(seed, i, spacing_mm=spacing_mm), folder, "dicom")


def command(films: Path, out: Path, spec: str) -> list[str]:
    """The ``aacscore score`` command of a spec (``ENGINE:JOBS[xCPUS]``)."""
    engine, _, rest = spec.partition(":")
    jobs, _, cpus = rest.partition("x")
    cmd = [sys.executable, "-m", "aacscore", "score", str(films), "-o", str(out)]
    cmd += ["--engine", engine, "--jobs", jobs or "1"]
    if cpus:
        cmd += ["--num-cpus-per-worker", cpus]
    return cmd


def run(films: Path, out: Path, spec: str) -> dict[str, Any]:
    """Wall time of one run and what its run record says."""
    cmd = command(films, out, spec)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    (record,) = json.loads((out / "run.json").read_text())["runs"]
    return {
        "spec": spec,
        "command": shlex.join(["aacscore", *cmd[3:]])
        .replace(str(films), "FILMS")
        .replace(str(out), "OUT"),
        "engine": record["engine"],
        "workers": record["processes"],
        "threads_per_worker": record["threads"],
        "wall_s": round(wall, 2),
        "load_average_before": round(load, 2),
        "exit_code": proc.returncode,
        "counts": record["input_counts"],
    }


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Whether two ``results.csv`` agree (see the module docstring), and the largest numeric
    difference."""
    with a.open(newline="") as fa, b.open(newline="") as fb:
        ra, rb = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    same_files = [r["file"] for r in ra] == [r["file"] for r in rb]
    worst, differing = 0.0, []
    for x, y in zip(ra, rb, strict=False):
        for col in x:
            try:
                d = abs(float(x[col]) - float(y[col]))
            except ValueError:
                d = 0.0 if x[col] == y[col] else float("inf")
            if d != d:  # both nan
                d = 0.0
            worst = max(worst, d)
            if d > TOLERANCE:
                differing.append(f"{Path(x['file']).name}:{col}")
    equal = same_files and len(ra) == len(rb) and not differing
    return {"equal": equal, "max_abs_difference": worst, "differing": differing[:10]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32, help="Simulated films.")
    ap.add_argument("--spacing", type=float, default=0.35, help="Pixel spacing of the films, mm.")
    ap.add_argument("--seed", type=int, default=7, help="Simulator seed.")
    ap.add_argument(
        "--specs",
        default="local:1,ray:1,ray:1x2,ray:2",
        help="ENGINE:JOBS[xCPUS], comma-separated.",
    )
    ap.add_argument("--repeat", type=int, default=1, help="Runs per spec (the fastest kept).")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    specs = [s.strip() for s in args.specs.split(",")]
    runs = []
    with tempfile.TemporaryDirectory(prefix="ray_engine_") as tmp:
        films = Path(tmp) / "films"
        simulate(films, args.n, args.seed, args.spacing)
        best: dict[str, dict[str, Any]] = {}
        walls: dict[str, list[float]] = {s: [] for s in specs}
        first = Path(tmp) / "out_0_0"
        for rep in range(args.repeat):  # interleaved, so that a busy spell hits every spec
            for k, spec in enumerate(specs):
                out = Path(tmp) / f"out_{k}_{rep}"
                r = run(films, out, spec)
                if out != first:
                    key = "same_results_as_" + specs[0]
                    r[key] = compare(first / "results.csv", out / "results.csv")
                log.info("%s: %.1f s %s", spec, r["wall_s"], r)
                walls[spec].append(r["wall_s"])
                if spec not in best or r["wall_s"] < best[spec]["wall_s"]:
                    best[spec] = r
        for spec in specs:
            r = best[spec]
            r["s_per_film"] = round(r["wall_s"] / args.n, 3)
            r["all_wall_s"] = walls[spec]
            runs.append(r)
    base = runs[0]["wall_s"]
    for r in runs:
        r["speed_vs_" + specs[0]] = round(base / r["wall_s"], 3)
    entry = {
        "command": "python benchmarks/ray_engine.py " + shlex.join(argv or sys.argv[1:]),
        "cores": cpu_cores(),
        "platform": platform.platform(),
        "n_films": args.n,
        "spacing_mm": args.spacing,
        "ray": _ray_version(),
        "all_equal": all(
            r.get(f"same_results_as_{specs[0]}", {"equal": True})["equal"] for r in runs
        ),
        "runs": runs,
    }
    data: dict[str, Any] = {}
    if args.out.is_file():
        data = json.loads(args.out.read_text())
    measurements = [m for m in data.get("measurements", []) if m.get("cores") != entry["cores"]]
    data = {
        "what": "aacscore score with --engine ray against the local batch on the same simulated "
        "films (shipped models, fresh process and output folder per run, Ray start-up included): "
        "results.csv equality and wall time",
        "aacscore": __version__,
        "measurements": sorted([*measurements, entry], key=lambda m: m["cores"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    log.info("all equal: %s -> %s", entry["all_equal"], args.out)
    return 0 if entry["all_equal"] else 1


def _ray_version() -> str | None:
    try:
        import ray
    except ImportError:
        return None
    return str(ray.__version__)


if __name__ == "__main__":
    raise SystemExit(main())
