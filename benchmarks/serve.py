"""``POST /api/score`` latency (p50/p95) and throughput of ``aacscore serve`` on loopback, with
1 and 2 worker processes.

Usage::

    python benchmarks/serve.py [--n 8] [--workers 1,2] [--films 2] [--time-limit 300]
        [--out benchmarks/results/serve.json]

Simulates ``--films`` DICOM films (:func:`aacscore.simulate.simulate_case`), starts
``aacscore serve`` (shipped models) on a free loopback port for each worker count, sends one
warm-up request per worker (model loading), then ``--n`` uploads from as many client threads
as there are workers. Bounded in count (``--n``) and time (``--time-limit`` seconds per worker
count: requests not sent by then are dropped and counted). Prints and writes the figures with
the machine's core count and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from aacscore import __version__
from aacscore.batch import cpu_cores
from aacscore.simulate import simulate_case
from aacscore.simulate.dataset import write_case


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(url + "/api/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer in time")


def _post(url: str, film: Path) -> float:
    t0 = time.perf_counter()
    r = httpx.post(
        url + "/api/score",
        files={"file": (film.name, film.read_bytes(), "application/dicom")},
        timeout=600.0,
    )
    r.raise_for_status()
    assert r.json()["status"] in ("ok", "warning", "failed")
    return time.perf_counter() - t0


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run(workers: int, films: list[Path], n: int, time_limit: float, out: Path) -> dict[str, Any]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "aacscore", "serve", str(out), "--port", str(port)]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(url, proc)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:  # one warm-up per worker (models load)
            list(pool.map(lambda i: _post(url, films[i % len(films)]), range(workers)))
        warmup = time.perf_counter() - t0
        deadline = time.monotonic() + time_limit
        latencies: list[float] = []
        dropped = 0

        def one(i: int) -> float | None:
            if time.monotonic() > deadline:
                return None
            return _post(url, films[i % len(films)])

        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            for lat in pool.map(one, range(n)):
                if lat is None:
                    dropped += 1
                else:
                    latencies.append(lat)
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    return {
        "workers": workers,
        "requests": len(latencies),
        "dropped_after_time_limit": dropped,
        "warmup_s": round(warmup, 2),
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(_percentile(latencies, 0.95), 3),
        "throughput_per_min": round(60.0 * len(latencies) / wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8, help="timed requests per worker count")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--films", type=int, default=2)
    ap.add_argument("--spacing", type=float, default=0.2)
    ap.add_argument("--time-limit", type=float, default=300.0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/serve.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="aacscore_serve_bench_") as tmp:
        root = Path(tmp)
        films = []
        for i in range(args.films):
            case = simulate_case(7, i, spacing_mm=args.spacing)
            write_case(case, root / "films", "dicom")
            films.append(root / "films" / f"{case.name}.dcm")
        results = []
        for w in (int(x) for x in args.workers.split(",")):
            out = root / f"out_{w}"
            out.mkdir()
            (out / "results.csv").write_text("file,status\n", encoding="utf-8")
            load = os.getloadavg()[0]
            entry = run(w, films, args.n, args.time_limit, out)
            entry["load_1min_before"] = round(load, 2)
            print(json.dumps(entry))
            results.append(entry)
    record = {
        "aacscore": __version__,
        "cores": cpu_cores(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "n": args.n,
        "spacing_mm": args.spacing,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
