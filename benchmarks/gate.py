"""Input-gate benchmark: what the whole pipeline accepts and refuses, and with which code.

Usage::

    python benchmarks/gate.py --lateral data/sim_final2026 [--n-lateral 300]
        [--negatives-seed 14] [--n-per-class 100] [--reference ../shared/reference]
        [--out benchmarks/results/gate.json]

Three panels, each film through :meth:`aacscore.pipeline.Scorer.score_radiograph` exactly as
``aacscore score`` runs it:

- ``lateral``: simulated lateral lumbar films (simulator output, DICOM). Wrongly refused =
  ``failed`` although the film's truth has L1-L4 and their Kauppila bounds on the film
  (:func:`truth_field_complete`; a film whose truth is cut is rightly refused); target <= 1 %.
  The codes of the refused films and the flags of the scored ones.
- ``negatives``: synthetic films of every other view class (:func:`aacscore.simulate.views.
  generate`, a seed used neither for training nor validation of the view classifier), enlarged
  to a film-like size (long side 1200-2400 px); ``--n-per-class 0`` skips the panel. Refused
  and refused-with-the-right-code rates per class (targets >= 99 %), and the confusion table
  class x error code.
- ``reference``: every radiograph under ``--reference`` (real films, not shipped): the status,
  code, message and view probabilities each gets. Masks (``*mask*``, ``Lat_*``) are not films.

Time per film: the gate's own share (header and view classifier) and the whole pipeline.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shlex
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aacscore import __version__
from aacscore.backend import set_threads
from aacscore.gate.view import VIEW_ERROR_CODES, ViewClass
from aacscore.io import Radiograph, read_radiograph
from aacscore.pipeline import Scorer
from aacscore.results import Result
from aacscore.simulate.views import generate

RESULTS = Path(__file__).resolve().parent / "results" / "gate.json"
log = logging.getLogger("gate")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm"}


def _row(res: Result) -> dict[str, Any]:
    st = res.stages
    view = getattr(st, "view", None) if st is not None else None
    return {
        "file": res.file,
        "status": res.status.value,
        "error_code": None if res.error_code is None else res.error_code.value,
        "error": res.error,
        "aac24": res.aac24,
        "quality": res.quality,
        "flags": list(res.qc_flags),
        "view": None if view is None else view.label.value,
        "p_lateral": None if view is None else round(float(view.p_lateral), 4),
        "view_top": None if view is None else _top(view.probabilities),
        "view_s": None if st is None else st.timings.get("view_s"),
        "total_s": None if st is None else st.timings.get("total_s"),
    }


def _route(row: Mapping[str, Any]) -> str:
    """Which part of the gate decided a film: ``scored``; ``view`` (the classifier alone);
    ``explained`` (a spine or field refusal re-coded by the classifier's likelier class);
    ``explained_runner_up`` (the same by its most probable other class, likelier once the stage
    has refused: ``REFUSAL_LIKELIHOOD_RATIO``);
    ``corroborated`` / ``corroborated_low_quality`` (a scored reading refused by the two-witness
    rule, by a spine doubt / by unfamiliar ground beside a confident alternative); ``stage``
    (the input checks, the header or the spine, field and band stages under their own code)."""
    if row["status"] != "failed":
        return "scored"
    error = str(row["error"])
    if "likelier than a lateral film the spine stage cannot read" in error:
        return "explained_runner_up"
    if "than a lateral lumbar film" in error:
        if "spine reading is unsure" in error:
            return "corroborated"
        if "unfamiliar (low_quality)" in error:
            return "corroborated_low_quality"
        return "explained"
    if "not a lateral lumbar film (p=" in error:
        return "view"
    return "stage"


def _top(probabilities: Mapping[str, float], k: int = 3) -> dict[str, float]:
    """The ``k`` most probable view classes."""
    best = sorted(probabilities.items(), key=lambda kv: -kv[1])[:k]
    return {c: round(float(p), 4) for c, p in best}


def _enlarge(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A synthetic image resized to a film-like size (long side 1200-2400 px)."""
    h, w = img.shape
    long_side = int(rng.integers(1200, 2401))
    s = long_side / max(h, w)
    size = (max(64, round(w * s)), max(64, round(h * s)))
    pil = Image.fromarray(np.clip(img, 0.0, 1.0).astype(np.float32), mode="F")
    return np.asarray(pil.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def truth_field_complete(json_path: Path) -> bool | None:
    """Whether a simulated film's truth has L1-L4 (every corner at least 1 px inside) and the
    Kauppila bounds of its walls on the film (None without a truth file)."""
    if not json_path.is_file():
        return None
    d = json.loads(json_path.read_text(encoding="utf-8"))
    h, w = d["shape"]
    pts = [c for n in ("L1", "L2", "L3", "L4") for c in d["vertebrae"][n]["corners"]]
    pts += [p for s in d["segments"].values() for p in s["bounds"]]
    a = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return bool(np.all((a >= 1.0) & (a <= np.array([w - 2.0, h - 2.0]))))


def lateral_panel(scorer: Scorer, folder: Path, limit: int | None) -> dict[str, Any]:
    files = sorted(folder.glob("*.dcm"))[:limit]
    rows = []
    for f in files:
        row = _row(scorer.score(f))
        row["truth_field_complete"] = truth_field_complete(f.with_suffix(".json"))
        rows.append(row)
    refused = [r for r in rows if r["status"] == "failed"]
    wrongly = [r for r in refused if r["truth_field_complete"] is not False]
    flags = Counter(fl for r in rows if r["status"] != "failed" for fl in r["flags"])
    return {
        "folder": str(folder),
        "n": len(rows),
        "refused": len(refused),
        "refused_fraction": len(refused) / max(1, len(rows)),
        "refused_codes": dict(Counter(r["error_code"] for r in refused)),
        "refused_by": dict(Counter(_route(r) for r in refused)),
        "field_incomplete_by_truth": sum(r["truth_field_complete"] is False for r in rows),
        "wrongly_refused": len(wrongly),
        "wrongly_refused_fraction": len(wrongly) / max(1, len(rows)),
        "refused_files": [
            {k: r[k] for k in ("file", "error_code", "error", "truth_field_complete", "view_top")}
            for r in refused
        ],
        "flags_of_scored": dict(flags),
        "low_quality_fraction": flags.get("low_quality", 0) / max(1, len(rows) - len(refused)),
        "median_total_s": _median(r["total_s"] for r in rows),
        "median_view_s": _median(r["view_s"] for r in rows),
    }


def negatives_panel(scorer: Scorer, seed: int, n_per_class: int) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": seed, "n_per_class": n_per_class, "classes": {}}
    confusion: dict[str, dict[str, int]] = {}
    for cls in ViewClass:
        if cls is ViewClass.LATERAL_LUMBAR:
            continue
        expected = VIEW_ERROR_CODES[cls]
        rng = np.random.default_rng([seed, 99])
        rows = []
        for i in range(n_per_class):
            img = _enlarge(generate(cls.value, seed, i), rng)
            rad = Radiograph(
                pixels=img,
                spacing_mm=None,
                source=f"{cls.value}_{i:04d}",
                photometric="MONOCHROME2",
                bits_stored=16,
            )
            rows.append(_row(scorer.score_radiograph(rad, rad.source)))
        codes = Counter(r["error_code"] or "scored" for r in rows)
        confusion[cls.value] = dict(codes)
        refused = sum(r["status"] == "failed" for r in rows)
        right = sum(r["error_code"] == (expected.value if expected else None) for r in rows)
        out["classes"][cls.value] = {
            "expected_code": None if expected is None else expected.value,
            "refused_fraction": refused / n_per_class,
            "right_code_fraction": right / n_per_class,
            "decided_by": dict(Counter(_route(r) for r in rows)),
            "accepted_files": [r["file"] for r in rows if r["status"] != "failed"],
            "wrong_code_files": [
                {k: r[k] for k in ("file", "error_code", "error", "aac24", "flags", "view_top")}
                for r in rows
                if r["error_code"] != (expected.value if expected else None)
            ],
            "median_total_s": _median(r["total_s"] for r in rows),
        }
    out["confusion"] = confusion
    return out


def reference_panel(scorer: Scorer, folder: Path) -> list[dict[str, Any]]:
    rows = []
    for f in sorted(folder.rglob("*")):
        if f.suffix.lower() not in IMAGE_SUFFIXES or "mask" in f.name.lower():
            continue
        if f.name.startswith("Lat_"):  # the example's hand-drawn masks
            continue
        rad = read_radiograph(f)
        row = _row(scorer.score_radiograph(rad, str(f.relative_to(folder))))
        view = scorer.view_model.predict(rad.pixels)
        row["view_probabilities"] = {k: round(float(v), 4) for k, v in view.probabilities.items()}
        rows.append(row)
    return rows


def _median(values: Iterable[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return None if not v else round(float(np.median(v)), 4)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--lateral", type=Path, required=True)
    p.add_argument("--n-lateral", type=int, default=None)
    p.add_argument("--negatives-seed", type=int, default=14)
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--reference", type=Path, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    set_threads(args.threads)
    scorer = Scorer()
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "command": "python benchmarks/gate.py "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "aacscore_version": __version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus_used": args.threads, "platform": platform.platform()},
        "models": scorer.models_info(),
    }
    result["lateral"] = lateral_panel(scorer, args.lateral, args.n_lateral)
    print(
        f"lateral: {result['lateral']['refused']}/{result['lateral']['n']} refused "
        f"{result['lateral']['refused_codes']}; low_quality "
        f"{result['lateral']['low_quality_fraction']:.3f}"
    )
    negatives: dict[str, Any] = {"classes": {}}
    if args.n_per_class > 0:
        negatives = negatives_panel(scorer, args.negatives_seed, args.n_per_class)
        result["negatives"] = negatives
    for cls, v in negatives["classes"].items():
        print(
            f"{cls:18s} refused {v['refused_fraction']:.3f}  right code "
            f"{v['right_code_fraction']:.3f}  {negatives['confusion'][cls]}"
        )
    if args.reference is not None:
        result["reference"] = reference_panel(scorer, args.reference)
        for r in result["reference"]:
            print(
                f"{r['file']:50s} {r['status']:8s} {r['error_code'] or '-':18s} {r['error'][:80]}"
            )
    result["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
