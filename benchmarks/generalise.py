"""Generalisation benchmark: spine models across rendering families, and on the real flexion film.

Usage::

    aacscore simulate -n 150 -o data/simA_gen --seed 3001 --distribution population --family a
    aacscore simulate -n 150 -o data/simB_gen --seed 3002 --distribution population --family b
    python benchmarks/generalise.py spine \\
        --model shipped:A=src/aacscore/models/spine --model style:A=runs/style/model \\
        --test A=data/simA_gen --test B=data/simB_gen --max-cases 150 \\
        [--real ../shared/reference/lateral_lumbar_example] \\
        [--out benchmarks/results/generalise.json]

A model is ``NAME:TRAINED_ON=DIR`` (``TRAINED_ON`` the families it was trained on, e.g. ``A`` or
``A+B``), a test set ``FAMILY=DIR``. For every model and test set the spine figures of
``benchmarks/spine.py`` (mean Dice L1-L5, level identification, corner error median/p90,
orientation, plausibility rejections) form one row of the cross-family matrix; a row is
``in_family`` when the test family is among the training families. Targets for the rows that are
not in family (leave-one-family-out): level identification >= 98 %, orientation >= 99.5 %, films
failed <= 3 %, corner median <= 1.5 mm.

``--real DIR``: the real flexion film ``LAT.jpg`` with its hand-drawn mask ``Lat_Vertebra.png``
(four bodies, L2-L5 from the top; see ``../shared/README.md``): per body the Dice of the model's
label of that level with the mask's body (target >= 0.85), whether L2-L5 are each found on their
body (Dice > 0.5) and whether the model's L1 lies above L2.

``score``: score models on bands cut from the TRUE vertebra corners (jittered 1.5 mm RMS, as in
``benchmarks/score_model.py``), one row per model and test set::

    python benchmarks/generalise.py score \\
        --model shipped:A=src/aacscore/models/score --model new:A+B=runs/score_new/model \\
        --test A=data/sim_final2026 --test B=data/simB2_test3012 \\
        --test A-neg=data/simA_negtest3071 --test B-neg=data/simB2_negtest3072

Figures per row (with test-time augmentation and the model's calibration): MAE, Spearman, ICC(2,1),
lewis sensitivity/specificity, segment exact-grade, the integer AAC-24's MAE and the
false-positive rate (AAC-0 films whose integer AAC-24 is >= 2). A test's family is the part
before ``-`` (``A-neg`` is family A), for the in-family flag.

Each run writes its own section of the results file (other sections are kept; a ``score`` run
also keeps the rows of other models and tests, so models can be measured one at a time).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from aacscore.backend import set_threads
from aacscore.io import read_radiograph
from aacscore.spine.fallback import FallbackSpineModel
from aacscore.spine.predict import SpineModel
from aacscore.vertebrae import LABEL_VALUES

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "generalise.json"
DEFAULT_REAL = HERE.parent.parent / "shared" / "reference" / "lateral_lumbar_example"
TARGETS_OUT_OF_FAMILY = {
    "level_identification": 0.98,
    "orientation_accuracy": 0.995,
    "rejected_rate": 0.03,
    "corner_error_median_mm": 1.5,
}
REAL_DICE_TARGET = 0.85
MASK_LEVELS = ("L2", "L3", "L4", "L5")


def _benchmark(name: str) -> Any:
    """The benchmark script ``benchmarks/<name>.py`` as a module."""
    path = HERE / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def parse_model(spec: str) -> tuple[str, tuple[str, ...], Path]:
    """``NAME:TRAINED_ON=DIR`` -> (name, families, folder)."""
    head, sep, folder = spec.partition("=")
    name, sep2, fams = head.partition(":")
    if not sep or not sep2 or not name or not fams or not folder:
        raise argparse.ArgumentTypeError(f"--model {spec!r}: expected NAME:TRAINED_ON=DIR")
    return name, tuple(f.strip().upper() for f in fams.split("+") if f.strip()), Path(folder)


def parse_test(spec: str) -> tuple[str, Path]:
    """``FAMILY=DIR`` (or ``FAMILY-TAG=DIR``) -> (name, folder)."""
    fam, sep, folder = spec.partition("=")
    if not sep or not fam or not folder:
        raise argparse.ArgumentTypeError(f"--test {spec!r}: expected FAMILY=DIR")
    return fam.strip().upper(), Path(folder)


def meets(row: dict[str, Any]) -> dict[str, bool]:
    """Leave-one-family-out targets met by one matrix row."""
    out = {}
    for k, v in TARGETS_OUT_OF_FAMILY.items():
        x = float(row[k])
        out[k] = x <= v if (k.endswith("_mm") or k == "rejected_rate") else x >= v
    return out


def mask_bodies(mask: np.ndarray) -> dict[str, np.ndarray]:
    """The hand-drawn mask's four bodies (its largest components), named L2-L5 from the top."""
    m = ndimage.binary_opening(mask > 0, iterations=3)
    comp, n = ndimage.label(m)
    if n < len(MASK_LEVELS):
        raise ValueError(f"expected {len(MASK_LEVELS)} bodies in the mask, found {n}")
    sizes = np.asarray(ndimage.sum(m, comp, np.arange(1, n + 1)))
    biggest = np.argsort(sizes)[::-1][: len(MASK_LEVELS)] + 1
    rows = [float(np.nonzero(comp == i)[0].mean()) for i in biggest]
    ordered = [int(i) for _, i in sorted(zip(rows, biggest, strict=True))]
    return {name: comp == i for name, i in zip(MASK_LEVELS, ordered, strict=True)}


def real_film(model: SpineModel | FallbackSpineModel, folder: Path) -> dict[str, Any]:
    """Per-body Dice and level check on the real flexion film (see the module docstring)."""
    rad = read_radiograph(folder / "LAT.jpg")
    mask = np.asarray(Image.open(folder / "Lat_Vertebra.png"))
    if mask.ndim == 3:
        mask = mask[..., 0]
    bodies = mask_bodies(mask)
    res = model.predict(rad, check=False)
    dices: dict[str, float] = {}
    for name, body in bodies.items():
        pred = res.labels == LABEL_VALUES[name]
        s = int(pred.sum()) + int(body.sum())
        dices[name] = 2.0 * int((pred & body).sum()) / s if s else 0.0
    l1 = res.labels == LABEL_VALUES["L1"]
    top_l2 = float(np.nonzero(bodies["L2"])[0].min())
    l1_above = bool(l1.any()) and float(np.nonzero(l1)[0].mean()) < top_l2
    return {
        "film": str(folder / "LAT.jpg"),
        "dice": dices,
        "mean_dice": float(np.mean(list(dices.values()))),
        "levels_right": bool(all(d > 0.5 for d in dices.values()) and l1_above),
        "l1_above_l2": l1_above,
        "meets_dice_target": bool(min(dices.values()) >= REAL_DICE_TARGET),
        "anterior_side": str(res.anterior_side),
        "flags": list(res.flags),
    }


def spine_section(args: argparse.Namespace) -> dict[str, Any]:
    bench = _benchmark("spine")
    rows: list[dict[str, Any]] = []
    real: dict[str, Any] = {}
    for name, fams, folder in args.model:
        model = bench._load(folder)
        for fam, data in args.test:
            t0 = time.perf_counter()
            fig = bench.evaluate(data, model, args.max_cases)
            row = {
                "model": name,
                "trained_on": "+".join(fams),
                "test": fam,
                "in_family": fam in fams,
                "model_dir": str(folder),
                "data": str(data),
                **{k: v for k, v in fig.items() if k != "rejections"},
                "rejections": fig["rejections"][:5],
                "wall_seconds": time.perf_counter() - t0,
            }
            row["meets_targets"] = meets(row)
            rows.append(row)
            logging.info(
                "%s (trained on %s) on %s: Dice %.3f, levels %.3f, corners %.2f mm, "
                "orientation %.3f, rejected %.3f",
                name,
                row["trained_on"],
                fam,
                row["dice_l1_l5"],
                row["level_identification"],
                row["corner_error_median_mm"],
                row["orientation_accuracy"],
                row["rejected_rate"],
            )
        if args.real is not None and (args.real / "LAT.jpg").is_file():
            real[name] = real_film(model, args.real)
            logging.info("%s on LAT.jpg: %s", name, real[name])
    return {"matrix": rows, "real": real, "targets_out_of_family": TARGETS_OUT_OF_FAMILY}


def score_row(m: dict[str, Any]) -> dict[str, Any]:
    """The matrix figures of one score evaluation (``score_model.evaluate_model``)."""
    per = m["group"]["per_group"]
    return {
        "n": m["n"],
        "mae": m["mae"],
        "bias": m["bias"],
        "spearman": m["spearman"],
        "icc21": m["icc21"]["value"],
        "group_accuracy": m["group"]["accuracy"],
        "sens_spec": {g: [v["sensitivity"], v["specificity"]] for g, v in per.items()},
        "segment_exact": m.get("segment_exact", {}).get("overall"),
        "integer_mae": m.get("integer", {}).get("mae"),
        "aac0_films": m.get("integer", {}).get("aac0_films"),
        "false_positive_rate": m.get("integer", {}).get("false_positive_rate"),
        "mean_total_on_aac0": m.get("mean_total_on_aac0"),
        "low_confidence_rate": m["low_confidence"]["rate"],
    }


def score_section(args: argparse.Namespace) -> dict[str, Any]:
    from aacscore.score import ScoreModel
    from aacscore.training.score_data import build_simulated_bands

    bench = _benchmark("score_model")
    models = [(name, fams, ScoreModel.load(folder), folder) for name, fams, folder in args.model]
    rows: list[dict[str, Any]] = []
    for fam, data in args.test:
        cache: dict[Any, Any] = {}
        for name, fams, model, folder in models:
            if model.band_geometry not in cache:
                cache[model.band_geometry] = build_simulated_bands(
                    data,
                    geometry=model.band_geometry,
                    jitter_mm=args.jitter_mm,
                    n_jitter=1,
                    seed=args.seed,
                    max_cases=args.max_cases,
                )
            bs = cache[model.band_geometry]
            t0 = time.perf_counter()
            m = bench.evaluate_model(model, bs, bench._truth_aac8(data, bs.case_ids), True, "lewis")
            row = {
                "model": name,
                "trained_on": "+".join(fams),
                "test": fam,
                "in_family": fam.split("-")[0] in fams,
                "model_dir": str(folder),
                "sha256": model.config.sha256,
                "data": str(data),
                **score_row(m),
                "wall_seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            logging.info(
                "%s on %s: MAE %.3f, Spearman %s, FP rate %s",
                name,
                fam,
                row["mae"],
                row["spearman"],
                row["false_positive_rate"],
            )
    return {"matrix": rows, "jitter_mm": args.jitter_mm, "bands": "true corners, jittered"}


def _print_score(section: dict[str, Any]) -> None:
    def f(v: Any) -> str:
        return "  n/a" if v is None else f"{v:5.3f}"

    print(f"{'model':10s} {'test':6s} {'n':>4s}   MAE  rho   ICC   seg   FP   lewis sens/spec")
    for r in section["matrix"]:
        ss = " ".join(f"{g} {f(a)}/{f(b)}" for g, (a, b) in r["sens_spec"].items())
        print(
            f"{r['model']:10s} {r['test']:6s} {r['n']:4d} {f(r['mae'])} {f(r['spearman'])} "
            f"{f(r['icc21'])} {f(r['segment_exact'])} {f(r['false_positive_rate'])} {ss}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="section", required=True)
    sp = sub.add_parser("spine", help="spine models across families and on the real film")
    sp.add_argument("--model", type=parse_model, action="append", required=True)
    sp.add_argument("--test", type=parse_test, action="append", required=True)
    sp.add_argument("--max-cases", type=int, default=None)
    sp.add_argument("--real", type=Path, default=DEFAULT_REAL if DEFAULT_REAL.is_dir() else None)
    sp.add_argument("--threads", type=int, default=2)
    sp.add_argument("--out", type=Path, default=RESULTS)
    sc = sub.add_parser("score", help="score models on true-corner bands across families")
    sc.add_argument("--model", type=parse_model, action="append", required=True)
    sc.add_argument("--test", type=parse_test, action="append", required=True)
    sc.add_argument("--max-cases", type=int, default=None)
    sc.add_argument("--jitter-mm", type=float, default=1.5)
    sc.add_argument("--seed", type=int, default=12345, help="seed of the corner jitter")
    sc.add_argument("--threads", type=int, default=2)
    sc.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    set_threads(args.threads)
    section = spine_section(args) if args.section == "spine" else score_section(args)
    section["command"] = " ".join(["python", "benchmarks/generalise.py", *(argv or sys.argv[1:])])
    section["machine"] = f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads"
    doc: dict[str, Any] = {}
    if args.out.is_file():
        doc = json.loads(args.out.read_text())
    if args.section == "score" and "score" in doc:  # rows of other models and tests are kept
        new = {(r["model"], r["test"]) for r in section["matrix"]}
        kept = [r for r in doc["score"].get("matrix", []) if (r["model"], r["test"]) not in new]
        section["matrix"] = kept + section["matrix"]
        earlier = doc["score"].get("commands", [doc["score"].get("command")])
        section["commands"] = [c for c in earlier if c] + [section["command"]]
    doc[args.section] = section
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    if args.section == "score":
        _print_score(section)
        print(f"written to {args.out}")
        return 0
    head = f"{'model':10s} {'trained':8s} {'test':5s} {'Dice':>6s} {'levels':>7s} "
    print(head + f"{'corner':>7s} {'p90':>6s} {'orient':>7s} {'failed':>7s}")
    for r in section["matrix"]:
        print(
            f"{r['model']:10s} {r['trained_on']:8s} {r['test']:5s} {r['dice_l1_l5']:6.3f} "
            f"{r['level_identification']:7.3f} {r['corner_error_median_mm']:7.2f} "
            f"{r['corner_error_p90_mm']:6.2f} {r['orientation_accuracy']:7.3f} "
            f"{r['rejected_rate']:7.3f}"
        )
    for name, r in section["real"].items():
        dices = ", ".join(f"{k} {v:.2f}" for k, v in r["dice"].items())
        print(f"{name}: LAT.jpg Dice {dices}; levels right {r['levels_right']}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
