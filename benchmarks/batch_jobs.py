"""Batch speed by number of worker processes: what ``aacscore score --jobs auto`` should pick.

Usage::

    python benchmarks/batch_jobs.py [--n 8] [--jobs 1,1@1,2,auto] [--spacing 0.2] [--seed 5]
        [--repeat 2] [--out benchmarks/results/batch_jobs.json]

Simulates ``--n`` films (:func:`aacscore.simulate.simulate_case`, DICOM), then times
``aacscore score FILMS -o OUT --jobs J`` for each ``J``, each in a fresh process and a fresh
output folder, with the shipped models, exactly as a user runs it (start-up, model loading and
worker spawning included). Each setting is also timed on the first film alone (``one_film_wall_s``:
start-up, model loading and one film), so that the batch's steady throughput,
``steady_films_per_s`` = (n - 1) / (wall of n films - wall of one film), tells what a long cohort
run gets once started. The settings are run in turn ``--repeat`` times (interleaved, so that
a busy spell of other work on the machine hits them all) and the best run of each is kept, with
the 1-minute load average before it. ``J`` workers share the cores: ``cores // J`` torch threads
each; ``--jobs 1`` is one process with torch's default threads, ``1@T`` one process limited to
``T`` threads (``OMP_NUM_THREADS``). Each measurement is recorded with the machine's core count;
the results file keeps one entry per core count (a run on another machine adds its own).
"""

from __future__ import annotations

import argparse
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

import torch

from aacscore import __version__
from aacscore.batch import auto_processes, cpu_cores
from aacscore.simulate import simulate_case
from aacscore.simulate.dataset import write_case

RESULTS = Path(__file__).resolve().parent / "results" / "batch_jobs.json"
log = logging.getLogger("batch_jobs")


def simulate(folder: Path, n: int, seed: int, spacing_mm: float) -> list[Path]:
    """``n`` simulated DICOM films in ``folder``."""
    files = []
    for i in range(n):
        case = simulate_case(seed, i, spacing_mm=spacing_mm)
        row = write_case(case, folder, "dicom")
        files.append(folder / str(row["file"]))
    return files


def time_score(films: Path, out: Path, spec: str) -> dict[str, Any]:
    """Wall time of one ``aacscore score`` run and what its run record says it used."""
    jobs, _, threads = spec.partition("@")
    cmd = [sys.executable, "-m", "aacscore", "score", str(films), "-o", str(out), "--jobs", jobs]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = threads
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    (record,) = json.loads((out / "run.json").read_text())["runs"]
    return {
        "jobs": spec,
        "processes": record["processes"],
        "threads_per_process": int(threads or record["threads"] or torch.get_num_threads()),
        "wall_s": round(wall, 2),
        "exit_code": proc.returncode,
        "counts": record["input_counts"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=8, help="Simulated films.")
    ap.add_argument(
        "--jobs", default="1,1@1,2,auto", help="Comma-separated --jobs values (1@T: T threads)."
    )
    ap.add_argument("--spacing", type=float, default=0.2, help="Pixel spacing of the films, mm.")
    ap.add_argument("--seed", type=int, default=5, help="Simulator seed.")
    ap.add_argument("--repeat", type=int, default=1, help="Runs per --jobs value (best kept).")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cores = cpu_cores()
    specs = [j.strip() for j in args.jobs.split(",")]
    walls: dict[str, list[float]] = {j: [] for j in specs}
    best: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="batch_jobs_") as tmp:
        films = Path(tmp) / "films"
        simulate(films, args.n, args.seed, args.spacing)
        one = Path(tmp) / "one_film"
        simulate(one, 1, args.seed, args.spacing)  # the batch's first film, rendered again
        one_walls: dict[str, list[float]] = {j: [] for j in specs}
        for k in range(args.repeat):  # interleaved, so that a busy spell hits every setting
            for spec in specs:
                load = os.getloadavg()[0]
                run = time_score(films, Path(tmp) / f"out_{spec}_{k}", spec)
                log.info("--jobs %s: %.1f s (load %.1f) %s", spec, run["wall_s"], load, run)
                walls[spec].append(run["wall_s"])
                run["load_average_before"] = round(load, 2)
                if spec not in best or run["wall_s"] < best[spec]["wall_s"]:
                    best[spec] = run
                single = time_score(one, Path(tmp) / f"one_{spec}_{k}", spec)
                one_walls[spec].append(single["wall_s"])
    runs = []
    for spec in specs:
        run = best[spec]
        run["s_per_film"] = round(run["wall_s"] / args.n, 3)
        run["all_wall_s"] = walls[spec]
        run["one_film_wall_s"] = min(one_walls[spec])
        if args.n > 1 and run["wall_s"] > run["one_film_wall_s"]:
            run["steady_films_per_s"] = round(
                (args.n - 1) / (run["wall_s"] - run["one_film_wall_s"]), 2
            )
        runs.append(run)
    fastest = min(runs, key=lambda r: r["wall_s"])
    entry = {
        "command": "python benchmarks/batch_jobs.py " + shlex.join(argv or sys.argv[1:]),
        "cores": cores,
        "torch_default_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "n_films": args.n,
        "spacing_mm": args.spacing,
        "auto_processes": auto_processes(cores),
        "fastest": {"jobs": fastest["jobs"], "processes": fastest["processes"]},
        "runs": runs,
    }
    data: dict[str, Any] = {}
    if args.out.is_file():
        data = json.loads(args.out.read_text())
    measurements = [m for m in data.get("measurements", []) if m.get("cores") != cores]
    data = {
        "what": "wall time of `aacscore score` on simulated DICOM films by --jobs (shipped "
        "models, fresh process and output folder per run)",
        "aacscore": __version__,
        "measurements": sorted([*measurements, entry], key=lambda m: m["cores"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    log.info(
        "%d cores: fastest --jobs %s; auto picks %d process(es) -> %s",
        cores,
        fastest["jobs"],
        auto_processes(cores),
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
