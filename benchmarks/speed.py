"""Speed benchmark: seconds per film, by stage, on real-size and small films, per backend.

Usage::

    python benchmarks/speed.py [--n 8] [--threads 2] [--backend both|onnx|torch]
        [--baseline REF] [--out benchmarks/results/speed.json]

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
every figure: re-run on an idle machine before quoting them). ``shape_median`` is the films'
own shape (what the results report); ``reduction_levels`` counts, per runner, the JPEG 2000
resolution levels the scorer decoded the films at (0: full resolution; for the real-size J2K
films ``Scorer`` decodes the film at a reduced level and the band's rectangle apart from the
coarsest level of at most 0.3 mm, :data:`aacscore.aorta.roi.BAND_SOURCE_SPACING_MM`).

``--baseline REF`` also measures a previous version of the package on the same films in the same
run: the ``src`` folder of git commit ``REF`` is extracted (``git archive``) to a temporary
folder and imported from there by a worker subprocess (this script with ``--worker``, the same
Python and venv) that keeps one warm ``Scorer`` of that version (its default backend: torch
before the onnx backend existed) and scores each film when asked, so every film is scored by
the current backends and then by the baseline, interleaved. The baseline's figures sit beside
the backends' (``backends["baseline"]``), with the paired ratio baseline / current default
backend per film and the largest difference of their AAC-24 totals; ``baseline`` records the
commit and the worker's peak memory. :data:`DEFAULT_BASELINE` is the last commit before the
speed work (the commit before ``benchmarks/speed.py`` was added).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "speed.json"
SEED = 7000
REAL_SIZE_MM = 0.14
SMALL_MM = 0.3
REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE = "eec284b"
"""The previous release measured by ``--baseline``: the commit before ``benchmarks/speed.py``
(63fb94e) and the rest of the speed work (fast J2K decode, the onnx backend)."""
BASELINE = "baseline"
_MARK = "@@speed "
"""Prefix of the worker's protocol lines on its stdout."""

log = logging.getLogger("benchmarks.speed")


def make_films(folder: Path, n: int) -> dict[str, list[Path]]:
    """Write ``n`` films of each kind under ``folder``; the paths by kind."""
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    from aacscore.simulate import simulate_case
    from aacscore.simulate.dataset import write_case

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


@dataclass(frozen=True)
class Sample:
    """One film scored once: seconds (read -> result), status, stage timings, film shape."""

    seconds: float
    status: str
    timings: dict[str, float]
    shape: tuple[int, ...] | None
    aac24: float | None
    reduction: int = 0


Runner = Callable[[Path], Sample]


def _sample(scorer: Any, film: Path) -> Sample:
    """Score ``film`` with a warm ``Scorer`` of whichever aacscore version is imported."""
    t0 = time.perf_counter()
    res = scorer.score(film)
    dt = time.perf_counter() - t0
    stages = res.stages
    return Sample(
        dt,
        res.status.value,
        {} if stages is None else {k: float(v) for k, v in stages.timings.items()},
        None if stages is None else tuple(int(n) for n in stages.radiograph.shape),
        None if res.aac24 is None else float(res.aac24),
        0 if stages is None else int(stages.radiograph.metadata.get("ResolutionReduction", 0)),
    )


def in_process(scorer: Any) -> Runner:
    """A runner scoring films with ``scorer`` in this process."""
    return lambda film: _sample(scorer, film)


class BaselineWorker:
    """A previous version of aacscore (its ``src`` at git ``ref``) scoring films in a worker
    subprocess: ``worker(film) -> Sample``; :meth:`close` ends it and returns its record."""

    def __init__(self, ref: str, threads: int, folder: Path) -> None:
        self.ref = ref
        self.commit, self.subject = _resolve(ref)
        src = folder / "baseline"
        src.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", self.commit, "src"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": str(src / "src")}
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            cwd=str(folder),
        )
        ready = self._reply()
        self.backend = str(ready["backend"])
        self.version = str(ready["version"])
        where = str(ready["package"])
        if not where.startswith(str(src)):
            raise RuntimeError(f"the baseline worker imported aacscore from {where}, not {src}")

    def _reply(self) -> dict[str, Any]:
        out: IO[str] | None = self._proc.stdout
        assert out is not None
        for line in out:
            if line.startswith(_MARK):
                reply: dict[str, Any] = json.loads(line[len(_MARK) :])
                if "error" in reply:
                    raise RuntimeError(f"baseline {self.ref}: {reply['error']}")
                return reply
        raise RuntimeError(f"baseline {self.ref}: the worker ended (exit {self._proc.wait()})")

    def __call__(self, film: Path) -> Sample:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"film": str(film)}) + "\n")
        self._proc.stdin.flush()
        r = self._reply()
        shape = None if r["shape"] is None else tuple(r["shape"])
        return Sample(
            r["seconds"], r["status"], r["timings"], shape, r["aac24"], int(r.get("reduction", 0))
        )

    def close(self) -> dict[str, Any]:
        """End the worker; what the results file says about the baseline."""
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        last = self._reply()
        self._proc.wait(timeout=60)
        return {
            "ref": self.ref,
            "commit": self.commit,
            "subject": self.subject,
            "version": self.version,
            "backend": self.backend,
            "peak_rss_mb": last["peak_rss_mb"],
        }


def _resolve(ref: str) -> tuple[str, str]:
    """(full sha, subject) of git ``ref`` in this repository."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%H%n%s", f"{ref}^{{commit}}", "--"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except subprocess.CalledProcessError as exc:
        raise SystemExit(
            f"--baseline {ref}: not a commit of {REPO} ({exc.stderr.strip()})"
        ) from None
    sha, subject = out.split("\n", 1)
    return sha, subject.strip()


def worker() -> int:
    """The ``--worker`` loop: one warm ``Scorer`` of the aacscore on ``PYTHONPATH`` (a previous
    version: only the API every version has is used); one JSON request per stdin line."""
    import inspect

    import aacscore
    from aacscore.pipeline import Scorer

    def say(obj: dict[str, Any]) -> None:
        sys.stdout.write(_MARK + json.dumps(obj) + "\n")
        sys.stdout.flush()

    args = sys.argv[1:]
    threads = int(args[args.index("--threads") + 1])
    try:
        from aacscore.backend import set_threads
    except ImportError:  # before aacscore.backend: torch was the only backend
        import torch

        torch.set_num_threads(threads)
    else:
        set_threads(threads)
    scorer = Scorer()
    backend = "torch"
    if "backend" in inspect.signature(Scorer).parameters:
        backend = str(scorer.models_info().get("backend", "auto"))
    say({"backend": backend, "version": aacscore.__version__, "package": aacscore.__file__})
    for line in sys.stdin:
        try:
            s = _sample(scorer, Path(json.loads(line)["film"]))
        except Exception as exc:  # reported to the driver, which stops
            say({"error": f"{type(exc).__name__}: {exc}"})
            return 1
        say({**s.__dict__, "shape": None if s.shape is None else list(s.shape)})
    say({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    return 0


def measure(runners: dict[str, Runner], films: list[Path]) -> dict[str, Any]:
    """Score each film once per runner, interleaved (after a warm-up on the first film), and
    summarise the timings per runner, the paired torch / onnx ratio and, with a baseline, the
    paired baseline / first-backend ratio and AAC-24 difference."""
    for run in runners.values():
        run(films[0])
    samples: dict[str, list[Sample]] = {b: [] for b in runners}
    for f in films:
        for b, run in runners.items():
            samples[b].append(run(f))
    first = next(iter(runners))
    sizes = [s.shape for s in samples[first] if s.shape is not None]
    out: dict[str, Any] = {
        "n": len(films),
        "shape_median": (
            [int(np.median([s[i] for s in sizes])) for i in range(2)] if sizes else None
        ),
        "bytes_median": int(np.median([f.stat().st_size for f in films])),
        "reduction_levels": {
            b: {str(k): [s.reduction for s in v].count(k) for k in sorted({s.reduction for s in v})}
            for b, v in samples.items()
        },
        "backends": {b: _summary(samples[b]) for b in runners},
    }
    secs = {b: np.asarray([s.seconds for s in v]) for b, v in samples.items()}
    if {"onnx", "torch"} <= set(runners):
        out["torch_over_onnx_median"] = float(np.median(secs["torch"] / secs["onnx"]))
        for stage in ("view_s", "spine_s", "score_s"):
            ratio = _stage_ratio(samples["torch"], samples["onnx"], stage)
            if ratio is not None:
                out[f"torch_over_onnx_{stage}"] = ratio
    if BASELINE in runners and first != BASELINE:
        out[f"baseline_over_{first}_median"] = float(np.median(secs[BASELINE] / secs[first]))
        for stage in ("read_s", "spine_s", "score_s"):
            ratio = _stage_ratio(samples[BASELINE], samples[first], stage)
            if ratio is not None:
                out[f"baseline_over_{first}_{stage}"] = ratio
        diffs = [
            abs(a.aac24 - b.aac24)
            for a, b in zip(samples[BASELINE], samples[first], strict=True)
            if a.aac24 is not None and b.aac24 is not None
        ]
        out[f"baseline_{first}_max_abs_aac24_diff"] = float(max(diffs)) if diffs else None
    return out


def _summary(samples: list[Sample]) -> dict[str, Any]:
    secs = [s.seconds for s in samples]
    statuses = [s.status for s in samples]
    stages: dict[str, list[float]] = {}
    for s in samples:
        for k, v in s.timings.items():
            stages.setdefault(k, []).append(v)
    return {
        "statuses": {st: statuses.count(st) for st in sorted(set(statuses))},
        "median_s": float(np.median(secs)),
        "p95_s": float(np.percentile(secs, 95)),
        "films_per_s": len(secs) / float(sum(secs)),
        "stage_median_s": {k: float(np.median(v)) for k, v in stages.items()},
    }


def _stage_ratio(num: list[Sample], den: list[Sample], stage: str) -> float | None:
    """Median of the paired per-film ratio of one stage's seconds (films both timed)."""
    pairs = [
        (a.timings[stage], b.timings[stage])
        for a, b in zip(num, den, strict=True)
        if stage in a.timings and stage in b.timings and b.timings[stage] > 0
    ]
    if not pairs:
        return None
    return float(np.median([a / b for a, b in pairs]))


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
    ap.add_argument(
        "--baseline",
        metavar="REF",
        help=f"also measure the package at git commit REF (e.g. {DEFAULT_BASELINE}), same run",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker()
    logging.basicConfig(level=logging.WARNING)

    from aacscore import __version__
    from aacscore.backend import set_threads
    from aacscore.pipeline import Scorer

    backends = ["onnx", "torch"] if args.backend == "both" else [args.backend]
    if "torch" in backends:
        import torch  # noqa: F401  (so that set_threads reaches torch too)
    set_threads(args.threads)
    load_before = os.getloadavg()
    runners: dict[str, Runner] = {b: in_process(Scorer(backend=b)) for b in backends}
    results: dict[str, Any] = {}
    baseline: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        if args.baseline:
            base = BaselineWorker(args.baseline, args.threads, Path(tmp))
            runners[BASELINE] = base
        try:
            kinds = make_films(Path(tmp), args.n)
            for kind, films in kinds.items():
                results[kind] = r = measure(runners, films)
                for b, rb in r["backends"].items():
                    print(
                        f"{kind:24s} {b:8s} {r['shape_median']} median {rb['median_s']:.3f} s "
                        f"p95 {rb['p95_s']:.3f} s  {rb['films_per_s']:.2f} films/s  "
                        + " ".join(f"{k} {v:.3f}" for k, v in rb["stage_median_s"].items())
                    )
                for key, value in r.items():
                    if "_over_" in key and key.endswith("_median"):
                        print(f"{kind:24s} {key} per film: {value:.2f}")
        finally:
            if base is not None:
                baseline = base.close()
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
        "baseline": baseline,
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
