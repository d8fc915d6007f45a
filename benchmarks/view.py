"""Benchmark of the view classifier of the input gate (``aacscore.gate.view``).

* a fresh synthetic test set (seed 13, never used for training or model selection): accuracy
  per class, the confusion table, the share of lateral films wrongly refused and of each
  negative class wrongly accepted;
* simulated full-size lateral films of ``data/sim_dev1000`` read from disk (accept rate);
* the real films of ``--reference`` (read with ``aacscore.io.read_radiograph``) and the held-out
  photograph ``skimage.data.chelsea()``: the label and probabilities each one gets;
* time per film at 1 CPU thread (network with mirror averaging, and preprocess + network on a
  full-size film).

Usage::

    python benchmarks/view.py [--n-per-class 200] [--reference ../shared/reference] [--card]

Writes ``benchmarks/results/view.json`` (``--card``: also the benchmark section of the model
card of ``--model``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "view.json"


def _timing(clf: Any, film: np.ndarray, repeats: int = 30) -> dict[str, float]:
    from aacscore.gate.view import preprocess

    x = preprocess(film)[None]
    clf.predict_inputs(x)
    net_t, full_t = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        clf.predict_inputs(x)
        net_t.append(time.perf_counter() - t)
    for _ in range(max(5, repeats // 3)):
        t = time.perf_counter()
        clf.predict(film)
        full_t.append(time.perf_counter() - t)
    return {
        "network_ms_median": round(1000 * statistics.median(net_t), 2),
        "preprocess_and_network_ms_median": round(1000 * statistics.median(full_t), 2),
        "film_shape": list(film.shape),
        "threads": torch.get_num_threads(),
    }


def _real_films(clf: Any, reference: Path) -> list[dict[str, Any]]:
    from PIL import Image
    from skimage.data import chelsea

    from aacscore.io import read_radiograph

    items: list[tuple[Path, str]] = [
        (p, "accept") for p in sorted((reference / "lateral_lumbar_example").glob("*.jpg"))
    ]
    for name in (
        "lateral_thoracic.jpg",
        "ap_lumbar_BUU_0001-F-037Y0.jpg",
        "chest_pa_NIH_00000001_000.png",
    ):
        items.append((reference / "negatives" / name, "refuse"))
    tmp = Path(tempfile.mkdtemp()) / "chelsea.png"
    Image.fromarray(chelsea()).save(tmp)
    items.append((tmp, "refuse as not_radiograph"))
    out = []
    for path, expected in items:
        if not path.is_file():
            out.append({"file": str(path), "expected": expected, "missing": True})
            continue
        pred = clf.predict(read_radiograph(path).pixels)
        ok = pred.refuse_code is None if expected == "accept" else pred.refuse_code is not None
        if expected.endswith("not_radiograph"):
            ok = pred.label.value == "not_radiograph"
        name = "skimage.data.chelsea()" if path == tmp else str(path.relative_to(reference))
        out.append({"file": name, "expected": expected, "correct": bool(ok), **pred.as_dict()})
    return out


def _dev_films(clf: Any, folder: Path, limit: int) -> dict[str, Any] | None:
    """Simulated full-size lateral films of ``folder``: refused (at the gate's threshold and at
    others, with the labels they get) and the share labelled lateral_lumbar."""
    from collections import Counter

    from aacscore.io import read_radiograph

    files = sorted(folder.glob("case_*.dcm"))[:limit]
    if not files:
        return None
    preds = [clf.predict(read_radiograph(f).pixels) for f in files]
    refused = [f.name for f, p in zip(files, preds, strict=True) if p.refuse_code]
    by_threshold = {}
    for t in (0.02, 0.05, 0.1, 0.2, 0.5):
        out = [
            p.label.value for p in preds if p.label.value != "lateral_lumbar" and p.p_lateral < t
        ]
        by_threshold[str(t)] = {"refused": len(out), "labels": dict(Counter(out))}
    return {
        "folder": str(folder),
        "n": len(files),
        "accept_p_lateral": clf.accept_p_lateral,
        "refused": len(refused),
        "refused_rate": len(refused) / len(files),
        "refused_files": refused[:20],
        "labelled_lateral": sum(p.label.value == "lateral_lumbar" for p in preds) / len(files),
        "refused_if_p_lateral_below": by_threshold,
    }


def _markdown(res: dict[str, Any]) -> str:
    t = res["synthetic_test"]
    names = list(t["per_class_accuracy"])
    lines = [
        f"Command: `{res['command']}`",
        "",
        f"Synthetic test set (seed {res['seed']}, {res['n_per_class']} per class, fresh): "
        f"accuracy {t['accuracy']:.4f}, balanced accuracy {t['balanced_accuracy']:.4f}; "
        f"acceptance threshold p_lateral {t['accept_p_lateral']}; "
        f"lateral films wrongly refused {t['lateral_wrongly_refused']:.4f} (target <= 0.01); "
        f"largest share of a negative class wrongly accepted {t['max_negative_accepted']:.4f} "
        "(target <= 0.01 per class).",
        "",
        "| true \\ predicted | " + " | ".join(names) + " | accuracy | accepted |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for n in names:
        row = t["confusion"][n]
        acc = t["negatives_wrongly_accepted"].get(n, 1 - t["lateral_wrongly_refused"])
        lines.append(
            f"| {n} | "
            + " | ".join(str(row[m]) for m in names)
            + f" | {t['per_class_accuracy'][n]:.3f} | {acc:.3f} |"
        )
    tm = res["timing"]
    lines += [
        "",
        f"Time per film at 1 CPU thread: network (film + mirror) {tm['network_ms_median']} ms, "
        f"preprocess + network on a {tm['film_shape'][0]}x{tm['film_shape'][1]} film "
        f"{tm['preprocess_and_network_ms_median']} ms (median).",
    ]
    if res.get("sim_dev_films"):
        d = res["sim_dev_films"]
        lines += [
            "",
            f"Full-size simulated lateral films read from disk ({d['folder']}): "
            f"{d['refused']} of {d['n']} refused.",
        ]
    lines += [
        "",
        "Real films (never used for training):",
        "",
        "| film | expected | label | p_lateral | top probabilities | correct |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["real_films"]:
        if r.get("missing"):
            lines.append(f"| {r['file']} | {r['expected']} | missing | | | |")
            continue
        top = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(
            f"| {r['file']} | {r['expected']} | {r['label']} | {r['p_lateral']:.3f} | "
            + ", ".join(f"{k} {v:.3f}" for k, v in top)
            + f" | {'yes' if r['correct'] else '**NO**'} |"
        )
    wrong = [r["file"] for r in res["real_films"] if not r.get("missing") and not r["correct"]]
    lines += [
        "",
        (
            f"**{len(wrong)} of {len(res['real_films'])} real images are misclassified** ("
            + ", ".join(wrong)
            + "). The classifier is trained on simulated films and phantoms only: check it "
            "on local real films of each kind before relying on its refusals."
        )
        if wrong
        else "All real images are classified as expected (only a handful were checked).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="view model folder")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--n-per-class", type=int, default=200)
    ap.add_argument("--data", type=Path, default=None, help="test shards (default data/views_SEED)")
    ap.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "reference")
    ap.add_argument("--dev", type=Path, default=Path("/work/main/data/sim_dev1000"))
    ap.add_argument("--dev-max", type=int, default=60)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--card", action="store_true", help="update the model card's benchmark")
    args = ap.parse_args(argv)

    from aacscore.backend import set_threads
    from aacscore.gate.view import PACKAGE_MODEL_DIR, ViewClassifier
    from aacscore.training.view import (
        CARD_FILE,
        build_view_dataset,
        load_view_dataset,
        replace_benchmark,
        view_metrics,
    )

    set_threads(1)
    clf = ViewClassifier.load(args.model)
    data = args.data or ROOT / "data" / f"views_{args.seed}"
    build_view_dataset(data, args.n_per_class, args.seed, jobs=args.jobs)
    x, y = load_view_dataset(data)
    keep = np.concatenate([np.nonzero(y == k)[0][: args.n_per_class] for k in np.unique(y)])
    x, y = x[keep], y[keep]
    probs = np.concatenate(
        [
            np.array(
                [list(p.probabilities.values()) for p in clf.predict_inputs(x[i : i + 256] / 255.0)]
            )
            for i in range(0, len(x), 256)
        ]
    )
    from aacscore.simulate.case import simulate_case

    film = simulate_case(13, 0).image
    res: dict[str, Any] = {
        "command": "python benchmarks/view.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": str(clf.model_dir),
        "weights_sha256": clf.config.get("sha256"),
        "seed": args.seed,
        "n_per_class": args.n_per_class,
        "synthetic_test": view_metrics(probs, y, clf.accept_p_lateral),
        "timing": _timing(clf, film),
        "sim_dev_films": _dev_films(clf, args.dev, args.dev_max) if args.dev.is_dir() else None,
        "real_films": _real_films(clf, args.reference),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    md = _markdown(res)
    print(md)
    if args.card:
        replace_benchmark((args.model or PACKAGE_MODEL_DIR) / CARD_FILE, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
