"""Batch generation: files per case, ``truth.csv`` and annotation loading.

On-disk layout of ``simulate_dataset(out_dir, n, seed)``, per case ``i`` (stem ``case_{i:06d}``):

* ``case_000000.dcm`` and/or ``case_000000.png`` (16-bit grey PNG, bone bright);
* ``case_000000_labels.png``: uint8 vertebral-body labels (0 background, L1..L5 = 1..5,
  T12 = 6, S1 = 7; T11 and the sacrum below S1 stay 0);
* ``case_000000_calc.png``: uint8 calcification mask (1 anterior wall, 2 posterior wall;
  distractors are not included);
* ``case_000000.json``: annotations (see :meth:`SimulatedCase.annotations`);

and ``truth.csv`` with columns :data:`TRUTH_COLUMNS`. All coordinates are pixel (x, y) in the
image as written.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aacscore.kauppila import SEGMENTS
from aacscore.simulate.anatomy import VARIETIES
from aacscore.simulate.calcification import DISTRIBUTIONS
from aacscore.simulate.case import SimulatedCase, simulate_case
from aacscore.simulate.dicom import write_dicom

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("dicom", "png", "both")
FAMILIES: tuple[str, ...] = ("a", "b")
"""Rendering families: ``a`` (:mod:`aacscore.simulate.case`) and ``b``
(:mod:`aacscore.simulate.family_b`, designed independently for train-on-A / test-on-B)."""
TRUTH_COLUMNS: tuple[str, ...] = ("case", "file", *SEGMENTS, "aac24", "aac8", "group")


class AnnotationError(ValueError):
    """An annotation file that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`simulate_dataset` wrote."""

    out_dir: Path
    n: int
    seed: int
    distribution: str
    fmt: str
    truth_csv: Path
    files: tuple[str, ...]
    aac24: tuple[int, ...]
    seconds: float

    @property
    def cases_per_second(self) -> float:
        """Throughput of the run."""
        return self.n / self.seconds if self.seconds > 0 else float("inf")


def save_png16(image: np.ndarray, path: Path) -> None:
    """16-bit grey PNG of a [0, 1] float image (bone bright)."""
    arr = np.rint(np.clip(image, 0, 1) * 65535.0).astype(np.uint16)
    Image.fromarray(arr).save(path, compress_level=1)


def write_case(case: SimulatedCase, out_dir: str | Path, fmt: str = "dicom") -> dict[str, Any]:
    """Write all files of one case; returns its ``truth.csv`` row."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = case.name
    files: dict[str, str] = {}
    if fmt in ("dicom", "both"):
        write_dicom(case, out / f"{stem}.dcm")
        files["dicom"] = f"{stem}.dcm"
    if fmt in ("png", "both"):
        save_png16(case.image, out / f"{stem}.png")
        files["png"] = f"{stem}.png"
    Image.fromarray(case.labels).save(out / f"{stem}_labels.png", compress_level=1)
    Image.fromarray(case.calc_mask).save(out / f"{stem}_calc.png", compress_level=1)
    files["labels"] = f"{stem}_labels.png"
    files["calc"] = f"{stem}_calc.png"
    with open(out / f"{stem}.json", "w", encoding="utf-8") as fh:
        json.dump(case.annotations(files), fh)
    image_file = files.get("dicom", files.get("png", ""))
    row: dict[str, Any] = {"case": stem, "file": image_file}
    row.update(dict(zip(SEGMENTS, case.truth.grades, strict=True)))
    row.update(aac24=case.truth.aac24, aac8=case.truth.aac8, group=case.truth.group)
    return row


def _job(args: tuple[int, int, str, str, str, float | None, str, str]) -> dict[str, Any]:
    seed, index, distribution, out_dir, fmt, spacing, family, variety = args
    case: SimulatedCase
    if family == "b":
        from aacscore.simulate.family_b import simulate_case_b

        case = simulate_case_b(seed, index, distribution=distribution, spacing_mm=spacing)
    else:
        case = simulate_case(
            seed, index, distribution=distribution, spacing_mm=spacing, variety=variety
        )
    return write_case(case, out_dir, fmt)


def simulate_dataset(
    out_dir: str | Path,
    n: int,
    seed: int,
    jobs: int = 1,
    distribution: str = "population",
    fmt: str = "dicom",
    progress: bool | Callable[[int, int], None] = True,
    spacing_mm: float | None = None,
    family: str = "a",
    variety: str = "standard",
) -> DatasetSummary:
    """Simulate ``n`` cases into ``out_dir`` (cases are independent of ``jobs``) with the
    rendering ``family`` (:data:`FAMILIES`) and, for family ``a``, the anatomical ``variety``
    (:data:`aacscore.simulate.anatomy.VARIETIES`).

    ``progress`` is True for a rich progress bar, False for none, or a callback ``(done, n)``.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}; expected one of {DISTRIBUTIONS}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    if variety not in VARIETIES:
        raise ValueError(f"unknown variety {variety!r}; expected one of {VARIETIES}")
    if family != "a" and variety != "standard":
        raise ValueError(f"variety {variety!r} is a family a option; family {family!r} has none")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(seed, i, distribution, str(out), fmt, spacing_mm, family, variety) for i in range(n)]
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    callback: Callable[[int, int], None] | None = progress if callable(progress) else None
    bar: Any = None
    if progress is True:
        from aacscore._progress import progress_bar

        bar = progress_bar("simulating")
        bar.start()
        task_id = bar.add_task("simulate", total=n)

        def callback(done: int, total: int) -> None:
            bar.update(task_id, completed=done)

    try:
        if jobs == 1 or n <= 1:
            for k, t in enumerate(tasks):
                rows.append(_job(t))
                if callback:
                    callback(k + 1, n)
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for k, row in enumerate(pool.map(_job, tasks, chunksize=1)):
                    rows.append(row)
                    if callback:
                        callback(k + 1, n)
    finally:
        if bar is not None:
            bar.stop()
    truth_csv = out / "truth.csv"
    with open(truth_csv, "w", newline="", encoding="utf-8") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(TRUTH_COLUMNS))
        wr.writeheader()
        for row in rows:
            wr.writerow(row)
    secs = time.perf_counter() - t0
    log.info("simulated %d cases in %.1f s into %s", n, secs, out)
    return DatasetSummary(
        out_dir=out,
        n=n,
        seed=seed,
        distribution=distribution,
        fmt=fmt,
        truth_csv=truth_csv,
        files=tuple(r["file"] for r in rows),
        aac24=tuple(int(r["aac24"]) for r in rows),
        seconds=secs,
    )


def load_case_annotations(json_path: str | Path) -> dict[str, Any]:
    """Read a ``case_XXXXXX.json`` with numpy arrays for corners, walls and bounds.

    Returns the JSON dict where ``vertebrae[name]["corners"]`` (4x2), ``walls[w]`` (Nx2) and
    ``segments[s]["bounds"]`` (2x2) are float64 arrays in pixel (x, y).
    """
    p = Path(json_path)
    try:
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise AnnotationError(f"{p}: annotation file not found") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{p}: not valid JSON ({exc})") from None
    missing = [
        k for k in ("vertebrae", "walls", "segments", "aac24", "spacing_mm") if k not in data
    ]
    if missing:
        raise AnnotationError(f"{p}: missing keys {missing}")
    try:
        for v in data["vertebrae"].values():
            v["corners"] = np.asarray(v["corners"], dtype=np.float64).reshape(4, 2)
        data["walls"] = {
            k: np.asarray(v, dtype=np.float64).reshape(-1, 2) for k, v in data["walls"].items()
        }
        for s in data["segments"].values():
            s["bounds"] = np.asarray(s["bounds"], dtype=np.float64).reshape(2, 2)
    except (ValueError, TypeError, KeyError) as exc:
        raise AnnotationError(f"{p}: malformed geometry ({exc})") from None
    return data
