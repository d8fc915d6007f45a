"""Benchmark of the spine stage on a held-out simulated set.

Usage::

    aacscore simulate -n 200 -o data/sim_spine_test --seed 2024 --distribution population
    python benchmarks/spine.py --data data/sim_spine_test [--model DIR] [--max-cases N]
        [--out benchmarks/results/spine.json]

Use a seed that was not used for the training set. Figures (targets in brackets):

* mean Dice of L1-L5 at the film's resolution (>= 0.95);
* level identification rate: all of L1-L5 present in the truth found with the right label, a
  vertebra counting as found when its predicted region overlaps the true one with Dice > 0.5
  (>= 99 %);
* corner landmark error (AS, PS, PI, AI of L1-L5) median and 90th percentile in mm (median
  <= 1.5 mm);
* orientation accuracy (>= 99.5 %);
* inference seconds per film (decoding excluded), and the share of films the plausibility
  checks reject (they raise ``SpineError`` in normal use).

Prints the figures and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aacscore.backend import set_threads
from aacscore.io import read_radiograph
from aacscore.spine.fallback import FallbackSpineModel
from aacscore.spine.geometry import check_plausibility
from aacscore.spine.predict import SpineModel, load_spine_model
from aacscore.training.spine_data import discover_cases, load_labels
from aacscore.vertebrae import LABEL_VALUES, SpineError

LUMBAR = ("L1", "L2", "L3", "L4", "L5")
TARGETS = {
    "dice_l1_l5": 0.95,
    "level_identification": 0.99,
    "corner_error_median_mm": 1.5,
    "orientation_accuracy": 0.995,
}


def _load(folder: Path | None) -> SpineModel | FallbackSpineModel:
    """The spine model of ``folder`` (with its ``fallback/`` model when it has one)."""
    model = load_spine_model(folder)
    assert isinstance(model, (SpineModel, FallbackSpineModel))
    return model


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int(np.logical_and(a, b).sum()) / s


def evaluate(
    data: Path, model: SpineModel | FallbackSpineModel, max_cases: int | None
) -> dict[str, Any]:
    cases = discover_cases(data)
    if max_cases is not None:
        cases = cases[:max_cases]
    dices: list[float] = []
    identified: list[bool] = []
    corner_err: list[float] = []
    orient_ok: list[bool] = []
    seconds: list[float] = []
    network: list[float] = []
    rejected = 0
    failures: list[str] = []
    for i, case in enumerate(cases):
        rad = read_radiograph(case.image_path)
        truth = load_labels(case.labels_path, rad.shape)
        spacing = case.spacing_mm or rad.spacing_mm
        res = model.predict(rad, check=False)
        seconds.append(res.timings["total_s"])
        network.append(res.timings["network_s"])
        orient_ok.append(res.anterior_side == case.anterior_side)
        ok = True
        for name in LUMBAR:
            t = truth == LABEL_VALUES[name]
            if not t.any():
                continue
            d = dice(res.labels == LABEL_VALUES[name], t)
            dices.append(d)
            ok = ok and d > 0.5
        identified.append(ok)
        for name in LUMBAR:
            if name in res.vertebrae and name in case.corners and spacing is not None:
                diff = res.vertebrae[name].corners - case.corners[name]
                corner_err += list(np.hypot(diff[:, 0] * spacing[1], diff[:, 1] * spacing[0]))
        try:
            check_plausibility(res.vertebrae, rad.spacing_mm, case.case_id)
        except SpineError as exc:
            rejected += 1
            failures.append(str(exc))
        if (i + 1) % 25 == 0:
            logging.info("%d/%d films", i + 1, len(cases))
    n = len(cases)
    return {
        "cases": n,
        "dice_l1_l5": float(np.mean(dices)) if dices else 0.0,
        "level_identification": float(np.mean(identified)) if identified else 0.0,
        "corner_error_median_mm": float(np.median(corner_err)) if corner_err else float("nan"),
        "corner_error_p90_mm": float(np.percentile(corner_err, 90)) if corner_err else float("nan"),
        "corners_measured": len(corner_err),
        "orientation_accuracy": float(np.mean(orient_ok)) if orient_ok else 0.0,
        "seconds_per_image": float(np.mean(seconds)) if seconds else float("nan"),
        "network_seconds_per_image": float(np.mean(network)) if network else float("nan"),
        "rejected_rate": rejected / max(n, 1),
        "rejections": failures[:20],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="held-out simulator output")
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: shipped)")
    ap.add_argument("--max-cases", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/spine.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    set_threads(args.threads)
    model = _load(args.model)
    t0 = time.perf_counter()
    figures = evaluate(args.data, model, args.max_cases)
    figures["wall_seconds"] = time.perf_counter() - t0
    figures["targets"] = TARGETS
    figures["meets_targets"] = {
        k: (figures[k] <= v if k.endswith("_mm") else figures[k] >= v) for k, v in TARGETS.items()
    }
    figures["model"] = str(model.model_dir)
    figures["data"] = str(args.data)
    figures["command"] = " ".join(["python", "benchmarks/spine.py", *(argv or sys.argv[1:])])
    figures["machine"] = f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    for k in (
        "cases",
        "dice_l1_l5",
        "level_identification",
        "corner_error_median_mm",
        "corner_error_p90_mm",
        "orientation_accuracy",
        "seconds_per_image",
        "network_seconds_per_image",
        "rejected_rate",
    ):
        v = figures[k]
        target = TARGETS.get(k)
        mark = (
            "" if target is None else ("  ok" if figures["meets_targets"][k] else "  BELOW TARGET")
        )
        print(f"{k:28s} {v:.4f}{mark}" if isinstance(v, float) else f"{k:28s} {v}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
