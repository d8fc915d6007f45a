"""The README's before/after overlay pictures: one film drawn by the overlay module of an earlier
commit ("before") and by the current one ("after"), written to ``docs/images/``.

Usage::

    python benchmarks/overlay_pictures.py [--seed 11 --index 4] [--before eec284b]
    python benchmarks/overlay_pictures.py --film FILM --name NAME --ignore-view

The default film is simulated (seed 11, case 4, 0.3 mm/px: grades 0 to 3 on both walls), so the
pictures can be committed and rebuilt anywhere; ``--film`` draws any film instead (keep pictures
of films whose licence forbids copying them out of the repository). Each picture is quantised to
256 colours (and scaled down if still over ``--max-kb``). Prints the pictures' sizes and the
median time to draw each overlay (the downsampled film and everything on it, not the scoring).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt
from PIL import Image

from aacscore.io import Radiograph, read_radiograph
from aacscore.outputs import overlay
from aacscore.pipeline import Scorer
from aacscore.results import Result
from aacscore.simulate import simulate_case
from aacscore.simulate.dataset import write_case

ROOT = Path(__file__).resolve().parent.parent
BEFORE_REV = "eec284b"
"""The last commit with the overlay of issue #18 (a title over the film, no legend)."""

Draw = Callable[[Radiograph, Result], npt.NDArray[np.uint8]]


def old_overlay(rev: str) -> ModuleType:
    """``aacscore.outputs.overlay`` as it was at commit ``rev`` (imported from a copy)."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/aacscore/outputs/overlay.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "overlay_before.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("aacscore_overlay_before", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def small_png(rgb: npt.NDArray[np.uint8], max_kb: float) -> bytes:
    """PNG bytes of ``rgb`` quantised to 256 colours (fast octree: the film's greys in few
    levels, the drawing's colours exact), scaled down until under ``max_kb``."""
    img = Image.fromarray(rgb)
    while True:
        buf = io.BytesIO()
        img.quantize(256, method=Image.Quantize.FASTOCTREE).save(buf, "PNG", optimize=True)
        if buf.tell() <= max_kb * 1024 or img.width < 200:
            return buf.getvalue()
        img = img.resize((round(img.width * 0.85), round(img.height * 0.85)), Image.LANCZOS)


def timed(
    draw: Draw, rad: Radiograph, result: Result, n: int
) -> tuple[npt.NDArray[np.uint8], float]:
    """The picture and the median seconds of ``n`` draws."""
    times = []
    rgb = draw(rad, result)
    for _ in range(n):
        t = time.perf_counter()
        rgb = draw(rad, result)
        times.append(time.perf_counter() - t)
    return rgb, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--film", type=Path, help="a film to draw (default: a simulated one)")
    ap.add_argument("--seed", type=int, default=11, help="simulated film: seed")
    ap.add_argument("--index", type=int, default=4, help="simulated film: case index")
    ap.add_argument("--before", default=BEFORE_REV, help="commit of the 'before' overlay")
    ap.add_argument("--name", default="overlay", help="pictures NAME_before.png, NAME_after.png")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--max-kb", type=float, default=250.0)
    ap.add_argument("--repeat", type=int, default=5, help="draws timed per overlay")
    ap.add_argument("--ignore-view", action="store_true", help="score a film the gate refuses")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.film is None:
            case = simulate_case(args.seed, args.index, spacing_mm=0.3)
            write_case(case, Path(tmp), "dicom")
            path = Path(tmp) / f"{case.name}.dcm"
            shown = f"simulated/{case.name}.dcm"
        else:
            path, shown = args.film, args.film.name
        rad = read_radiograph(path)
    result = Scorer(ignore_view=args.ignore_view).score_radiograph(rad, shown)
    print(f"{shown}: {rad.pixels.shape[1]} x {rad.pixels.shape[0]} px, {result.status.value}, "
          f"AAC-24 {result.aac24}, {result.error_code or ''}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    before: Draw = old_overlay(args.before).overlay_image
    for label, draw in (("before", before), ("after", overlay.overlay_image)):
        rgb, seconds = timed(draw, rad, result, args.repeat)
        data = small_png(rgb, args.max_kb)
        out = args.out / f"{args.name}_{label}.png"
        out.write_bytes(data)
        h, w = Image.open(io.BytesIO(data)).size[::-1]
        print(f"{label:6s} ({args.before if label == 'before' else 'this tree'}): drawn "
              f"{rgb.shape[1]} x {rgb.shape[0]} px in {1000 * seconds:.0f} ms (median of "
              f"{args.repeat}); wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
              f"{w} x {h} px, {len(data) / 1024:.0f} KB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
