"""Decode benchmark: JPEG 2000 decoders, threads and resolution levels on real-size films.

Usage::

    python benchmarks/decode.py [--n 2] [--repeats 3] [--threads 2] [--score-repeats 2]
        [--no-pipeline] [--out benchmarks/results/decode.json]
    python benchmarks/decode.py --readings [--n 6] [--out benchmarks/results/decode_readings.json]
    python benchmarks/decode.py --profile [--n 4] [--repeats 3]
        [--out benchmarks/results/decode_profile.json]

Films: ``--n`` simulated films (seed 7000, AAC-24 targets 12, 4, 20, 8 in turn) at 0.14 mm (a DR
film) and at 0.1 mm (a CR film), each written JPEG 2000 lossless and lossy (compression ratio
15), plus pydicom-data's real CR films RG1 and RG3 (lossless and lossy; their spacing is
unknown).

Per film and decoder, on the codestream alone (the DICOM parse is not timed): the best and the
median seconds of ``--repeats`` decodes, and the agreement with pydicom's decode (full
resolution: the largest absolute difference; reduced levels: see :func:`agreement`).
Decoders: pydicom (pylibjpeg-openjpeg, one thread), imagecodecs on 1, 2 and all CPUs, Pillow at
levels 0-2, and glymur (needs the system's OpenJPEG library) when installed.

Then the reader (``read_radiograph``, file to pixels): pydicom's path (fast path off), the
default (multi-threaded full resolution) and ``decode_spacing_mm=SCORING_DECODE_SPACING_MM``
(the scoring rule's whole-film read, with how far its spine-network input is from the full
read's: :func:`spine_input_difference`); and,
unless ``--no-pipeline``, each simulated film that the rule reduces scored
(``Scorer.score_radiograph``, TTA on, torch threads as given) from its full-resolution and from
its scoring-rule read, the fastest of ``--score-repeats`` (read + score): stage timings, the
spine stage's own timings, and the AAC-24 of both.

``--readings`` does only this: the simulated films scored by two warm scorers sharing the shipped
models (onnx, TTA on), one decoding at full resolution (``decode_spacing_mm=None``) and sampling
the band from the finest level it needs (``band_source_spacing_mm=None``: at most the band's
0.25 mm per column), one as ``Scorer`` does by default (the film at the coarsest level of at
most :data:`~aacscore.io.dicom.SCORING_DECODE_SPACING_MM`, the band's rectangle from the
coarsest level of at most :data:`~aacscore.aorta.roi.BAND_SOURCE_SPACING_MM`), interleaved per
film: per film both AAC-24 and their errors against the truth, their difference beside the
full read's TTA sd, the
integer segment grades that differ, both severity groups, the vertebrae found, the largest
corner distance (mm; L1-L4 and all) and both timings; per spacing both MAEs against the
truth, the max and median |dAAC-24|, the agreement of grades, groups and vertebra levels, the
median TTA sd and the median paired time ratio full / default (:func:`bench_readings`).

``--profile`` times, on the simulated lossless films, where a default ``Scorer``'s seconds go
(onnx, TTA on, the median of ``--repeats`` warm runs per film): the reduced read, the spine
stage (and its own timings), the band (and within it the JPEG 2000 area decode of the band's
rectangle, ``Radiograph.region``, timed apart) and the score; per spacing the medians
(:func:`bench_profile`).

The machine's load (``os.getloadavg``) is recorded before and after: other work on it slows every
figure, threaded decoding most.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.data import get_testdata_file
from pydicom.encaps import get_frame
from pydicom.pixels import pixel_array
from pydicom.uid import JPEG2000, JPEG2000Lossless
from scipy import ndimage

from aacscore import __version__
from aacscore.io import _j2k, read_radiograph
from aacscore.io.dicom import SCORING_DECODE_SPACING_MM
from aacscore.kauppila import LEVELS

RESULTS = Path(__file__).resolve().parent / "results" / "decode.json"
PLANS = Path(__file__).resolve().parents[1] / "src" / "aacscore" / "models" / "spine" / "plans.json"
_LOWPASS_53 = np.array([-1.0, 2.0, 6.0, 2.0, -1.0]) / 8.0
SEED = 7000
SPACINGS_MM = (0.14, 0.1)
LOSSY_RATIO = 15
TARGETS = (12, 4, 20, 8)
"""AAC-24 targets of the simulated films in turn (calcified, so the two reads' scores can
differ)."""
REAL_FILMS = ("RG1_J2KR.dcm", "RG1_J2KI.dcm", "RG3_J2KR.dcm", "RG3_J2KI.dcm")

log = logging.getLogger("benchmarks.decode")


TRUTH_FILE = "truth.json"
"""The simulated films' true AAC-24 by file name, written beside them by :func:`make_films`."""


def make_films(folder: Path, n: int) -> list[Path]:
    """Simulated J2K films (lossless and lossy at each spacing; their true AAC-24 in
    :data:`TRUTH_FILE`), then the real ones found."""
    from aacscore.simulate import simulate_case
    from aacscore.simulate.dataset import write_case

    films: list[Path] = []
    truth: dict[str, float] = {}
    for mm in SPACINGS_MM:
        for i in range(n):
            target = TARGETS[i % len(TARGETS)]
            case = simulate_case(SEED, i, spacing_mm=mm, target_aac24=target)
            write_case(case, folder / "raw", "dicom")
            raw = folder / "raw" / f"{case.name}.dcm"
            for syntax, tag, options in (
                (JPEG2000Lossless, "j2kr", {}),
                (JPEG2000, "j2ki", {"j2k_cr": [LOSSY_RATIO]}),
            ):
                ds = pydicom.dcmread(raw)
                ds.compress(syntax, encoding_plugin="pylibjpeg", **options)
                path = folder / f"sim{mm:g}mm_{i}_{tag}.dcm"
                ds.save_as(path)
                films.append(path)
                truth[path.name] = float(case.truth.aac24)
    (folder / TRUTH_FILE).write_text(json.dumps(truth, indent=1))
    for name in REAL_FILMS:
        found = get_testdata_file(name, download=False)
        if isinstance(found, str):
            films.append(Path(found))
        else:
            log.warning("pydicom-data file %s not installed; skipped", name)
    return films


def timed(fn: Callable[[], Any], repeats: int) -> tuple[dict[str, float], Any]:
    """Best and median seconds of ``repeats`` calls, and the last result."""
    secs: list[float] = []
    out: Any = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        secs.append(time.perf_counter() - t0)
    return {"best_s": min(secs), "median_s": statistics.median(secs)}, out


def box_mean(a: npt.NDArray[Any], factor: int) -> npt.NDArray[np.float64]:
    h, w = -(-a.shape[0] // factor), -(-a.shape[1] // factor)
    pad = ((0, h * factor - a.shape[0]), (0, w * factor - a.shape[1]))
    full = np.pad(a.astype(np.float64), pad, mode="edge")
    return full.reshape(h, factor, w, factor).mean(axis=(1, 3))


def lowpass_53(a: npt.NDArray[Any], level: int) -> npt.NDArray[np.float64]:
    """``level`` times the JPEG 2000 reversible (5/3) analysis low-pass, kept at even samples:
    what a lossless codestream's reduced level holds (up to the lifting's rounding)."""
    out = a.astype(np.float64)
    for _ in range(level):
        for axis in (0, 1):
            out = ndimage.convolve1d(out, _LOWPASS_53, axis=axis, mode="mirror")
        out = out[::2, ::2]
    return out


def agreement(out: npt.NDArray[Any], ref: npt.NDArray[Any], level: int) -> dict[str, Any]:
    """Full resolution: equality with pydicom's integers. Reduced: the mean and 99th percentile
    absolute difference, as a share of the film's range, to the 2^k block mean of pydicom's
    image (``box``: shifted by half a pixel and softer at edges, so never small on films with
    hard collimation edges) and to its 5/3 low-pass at even samples (``53``: the transform's own
    downsampling; lossy films use the 9/7 filter instead)."""
    if level == 0:
        if out.shape != ref.shape:
            return {"shape": list(out.shape), "equal": False}
        diff = np.abs(out.astype(np.int64) - ref.astype(np.int64))
        return {"equal": bool(not diff.any()), "max_abs_diff": int(diff.max())}
    row: dict[str, Any] = {"shape": list(out.shape)}
    span = max(float(np.ptp(ref)), 1.0)
    for label, expected in (("box", box_mean(ref, 2**level)), ("53", lowpass_53(ref, level))):
        if out.shape != expected.shape:
            row[f"{label}_shape"] = list(expected.shape)
            continue
        diff = np.abs(out.astype(np.float64) - expected) / span
        row[f"{label}_mean_abs_diff_of_range"] = float(diff.mean())
        row[f"{label}_p99_abs_diff_of_range"] = float(np.percentile(diff, 99))
    return row


def spine_input_difference(full: Any, reduced: Any) -> dict[str, Any]:
    """Both reads resized to the spine network's input of the full read (the shipped plan's
    letterbox; the reduced read's own may be a row shorter, its sides being rounded up): the
    mean and largest absolute difference, in [0, 1] grey."""
    from aacscore.spine.plans import Plans
    from aacscore.spine.preprocess import Letterbox

    box = Letterbox.fit(full.shape, Plans.load(PLANS).patch_size)
    same = Letterbox(reduced.shape, box.out_shape, box.resized, box.offset)
    diff = np.abs(box.resize_image(full.pixels) - same.resize_image(reduced.pixels))
    own = Letterbox.fit(reduced.shape, box.out_shape).resized
    return {
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff": float(diff.max()),
        "letterbox_full": list(box.resized),
        "letterbox_reduced": list(own),
    }


def decoders(threads_all: int) -> dict[str, tuple[int, Callable[[bytes], Any]]]:
    """name -> (resolution level, decode function of a codestream)."""
    out: dict[str, tuple[int, Callable[[bytes], Any]]] = {}
    import openjpeg

    out["pylibjpeg-openjpeg"] = (0, lambda d: openjpeg.decode(d))
    try:
        import imagecodecs
    except ImportError:
        log.warning("imagecodecs not installed")
    else:
        for t in sorted({1, 2, threads_all}):
            out[f"imagecodecs threads={t}"] = (
                0,
                lambda d, t=t: imagecodecs.jpeg2k_decode(d, numthreads=t),
            )
    from PIL import Image

    def pillow(d: bytes, level: int) -> Any:
        with Image.open(io.BytesIO(d), formats=["JPEG2000"]) as img:
            img.reduce = level  # type: ignore[assignment,method-assign]
            img.load()
            return np.asarray(img)

    for level in (0, 1, 2):
        out[f"pillow level={level}"] = (level, lambda d, level=level: pillow(d, level))
    try:
        import glymur

        glymur.version.openjpeg_version  # noqa: B018 - fails without the library
    except Exception as exc:
        log.warning("glymur unavailable (%s)", exc)
    else:

        def gly(d: bytes, level: int, threads: int) -> Any:
            glymur.set_option("lib.num_threads", threads)
            with tempfile.NamedTemporaryFile(suffix=".j2k") as fh:
                fh.write(d)
                fh.flush()
                step = 2**level
                return glymur.Jp2k(fh.name)[::step, ::step]

        for t in sorted({1, 2}):
            for level in (0, 1):
                out[f"glymur threads={t} level={level}"] = (
                    level,
                    lambda d, level=level, t=t: gly(d, level, t),
                )
    return out


def pillow_shift(out: npt.NDArray[Any], precision: int) -> npt.NDArray[Any]:
    """Pillow scales N-bit samples up to 8/16 bits; shift back to compare."""
    container = 8 if out.dtype == np.uint8 else 16
    return np.asarray(out) >> (container - precision)


def bench_decoders(films: list[Path], repeats: int, threads_all: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    codecs = decoders(threads_all)
    for path in films:
        ds = pydicom.dcmread(path)
        data = bytes(get_frame(ds.PixelData, 0, number_of_frames=1))
        info = _j2k.parse_codestream(data)
        ref_time, ref = timed(lambda ds=ds: pixel_array(ds), repeats)
        row: dict[str, Any] = {
            "film": path.name,
            "transfer_syntax": ds.file_meta.TransferSyntaxUID.name,
            "shape": [int(ds.Rows), int(ds.Columns)],
            "codestream_bytes": len(data),
            "precision": None if info is None else info.precision,
            "levels": None if info is None else info.levels,
            "decoders": {"pydicom (pixel_array)": {**ref_time, "equal": True}},
        }
        for name, (level, fn) in codecs.items():
            try:
                secs, out = timed(lambda fn=fn, data=data: fn(data), repeats)
            except Exception as exc:
                row["decoders"][name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            out = np.asarray(out)
            if name.startswith("pillow") and info is not None:
                out = pillow_shift(out, info.precision)
            row["decoders"][name] = {**secs, **agreement(out, ref, level)}
        rows.append(row)
        best = {k: v.get("best_s") for k, v in row["decoders"].items()}
        print(
            path.name,
            row["shape"],
            {k: None if v is None else round(v, 3) for k, v in best.items()},
        )
    return rows


def bench_reader(films: list[Path], repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    original = _j2k.decode
    for path in films:
        row: dict[str, Any] = {"film": path.name}
        try:
            _j2k.decode = lambda *a, **k: None  # type: ignore[assignment]
            secs, rad = timed(lambda p=path: read_radiograph(p), repeats)
        finally:
            _j2k.decode = original  # type: ignore[assignment]
        row["pydicom"] = {**secs, "shape": list(rad.shape)}
        secs, fast = timed(lambda p=path: read_radiograph(p), repeats)
        row["fast_full"] = {
            **secs,
            "shape": list(fast.shape),
            "pixels_equal": bool(np.array_equal(fast.pixels, rad.pixels)),
        }
        secs, red = timed(
            lambda p=path: read_radiograph(p, decode_spacing_mm=SCORING_DECODE_SPACING_MM),
            repeats,
        )
        level = int(red.metadata.get("ResolutionReduction", 0))
        row["scoring_rule"] = {
            **secs,
            "shape": list(red.shape),
            "level": level,
            "spacing_mm": None if red.spacing_mm is None else list(red.spacing_mm),
        }
        if level:
            row["scoring_rule"]["spine_input"] = spine_input_difference(fast, red)
        rows.append(row)
        print(
            f"read {path.name}: pydicom {row['pydicom']['best_s']:.3f} s, fast "
            f"{row['fast_full']['best_s']:.3f} s, rule {row['scoring_rule']['best_s']:.3f} s "
            f"(level {row['scoring_rule']['level']})"
        )
    return rows


def bench_pipeline(films: list[Path], threads: int, repeats: int) -> list[dict[str, Any]]:
    from aacscore.backend import set_threads
    from aacscore.pipeline import Scorer

    set_threads(threads)
    scorer = Scorer()
    rows: list[dict[str, Any]] = []
    for path in films:
        if not path.name.startswith("sim"):
            continue
        probe = read_radiograph(path, decode_spacing_mm=SCORING_DECODE_SPACING_MM)
        if not probe.metadata.get("ResolutionReduction"):
            continue  # read as at full resolution: nothing to compare
        row: dict[str, Any] = {"film": path.name}
        for label, limit in (("full", None), ("scoring_rule", SCORING_DECODE_SPACING_MM)):
            scorer.score_radiograph(read_radiograph(path, decode_spacing_mm=limit), path.name)
            best: tuple[float, Any, Any] | None = None
            for _ in range(repeats):  # the fastest of the repeats, with its stage timings
                t0 = time.perf_counter()
                rad = read_radiograph(path, decode_spacing_mm=limit)
                read_s = time.perf_counter() - t0
                res = scorer.score_radiograph(rad, path.name, read_s=read_s)
                secs = time.perf_counter() - t0
                if best is None or secs < best[0]:
                    best = (secs, rad, res)
            assert best is not None
            secs, rad, res = best
            stages = res.stages
            row[label] = {
                "shape": list(rad.shape),
                "status": res.status.value,
                "aac24": res.aac24,
                "seconds": secs,
                "stage_s": {} if stages is None else dict(stages.timings),
                "spine_s": (
                    {} if stages is None or stages.spine is None else dict(stages.spine.timings)
                ),
            }
        rows.append(row)
        print(
            f"score {path.name}: full {row['full']['seconds']:.3f} s aac24 {row['full']['aac24']}"
            f" | rule {row['scoring_rule']['seconds']:.3f} s aac24 "
            f"{row['scoring_rule']['aac24']} {row['scoring_rule']['shape']}"
        )
    return rows


def bench_readings(films: list[Path], threads: int) -> dict[str, Any]:
    """Full-resolution reads against the scorer's default reads (see the module docstring)."""
    from aacscore.backend import set_threads
    from aacscore.pipeline import Scorer

    set_threads(threads)
    full = Scorer(backend="onnx", decode_spacing_mm=None, band_source_spacing_mm=None)
    new = Scorer(
        backend="onnx",
        spine_model=full.spine_model,
        score_model=full.score_model,
        view_model=full.view_model,
    )
    sims = [f for f in films if f.name.startswith("sim")]
    truths = json.loads((sims[0].parent / TRUTH_FILE).read_text())
    full.score(sims[0])
    new.score(sims[0])
    rows: list[dict[str, Any]] = []
    for path in sims:
        a = full.score(path)
        b = new.score(path)
        row: dict[str, Any] = {
            "film": path.name,
            "spacing_mm": float(path.name[3:].split("mm")[0]),
            "status": [a.status.value, b.status.value],
            "reduction": int(b.stages.radiograph.metadata.get("ResolutionReduction", 0))
            if b.stages is not None
            else None,
            "seconds": [a.stages.timings["total_s"], b.stages.timings["total_s"]]
            if a.stages is not None and b.stages is not None and "total_s" in a.stages.timings
            else None,
            "read_s": [a.stages.timings["read_s"], b.stages.timings["read_s"]]
            if a.stages is not None and b.stages is not None
            else None,
        }
        if a.aac24 is not None and b.aac24 is not None:
            assert a.grades is not None and b.grades is not None
            assert a.stages is not None and b.stages is not None
            assert a.stages.spine is not None and b.stages.spine is not None
            row["aac24"] = [a.aac24, b.aac24]
            row["truth_aac24"] = truths[path.name]
            row["abs_error"] = [abs(v - truths[path.name]) for v in (a.aac24, b.aac24)]
            row["abs_diff_aac24"] = abs(a.aac24 - b.aac24)
            row["aac24_sd_full"] = a.aac24_sd
            ga, gb = a.grades_int or {}, b.grades_int or {}
            row["aac24_int"] = [a.aac24_int, b.aac24_int]
            row["grades_differ"] = [s for s in ga if ga[s] != gb.get(s)]
            row["group"] = [str(a.group), str(b.group)]
            row["levels"] = [sorted(a.stages.spine.vertebrae), sorted(b.stages.spine.vertebrae)]
            row["corner_max_mm"] = _corner_distance_mm(a, b, LEVELS)
            row["corner_max_all_mm"] = _corner_distance_mm(a, b, None)
        rows.append(row)
        print(json.dumps(row))
    summary: dict[str, Any] = {}
    for mm in SPACINGS_MM:
        scored = [r for r in rows if r["spacing_mm"] == mm and "aac24" in r]
        timed_rows = [r for r in rows if r["spacing_mm"] == mm and r["seconds"]]
        if not scored:
            continue
        diffs = [r["abs_diff_aac24"] for r in scored]
        grades = sum(8 - len(r["grades_differ"]) for r in scored)
        summary[f"{mm:g}mm"] = {
            "films": len([r for r in rows if r["spacing_mm"] == mm]),
            "scored_both": len(scored),
            "status_agree": sum(
                r["status"][0] == r["status"][1] for r in rows if r["spacing_mm"] == mm
            ),
            "max_abs_diff_aac24": float(max(diffs)),
            "mae_vs_truth": [float(np.mean([r["abs_error"][k] for r in scored])) for k in (0, 1)],
            "median_abs_diff_aac24": float(np.median(diffs)),
            "median_aac24_sd_full": float(np.median([r["aac24_sd_full"] for r in scored])),
            "segment_grades_agree": f"{grades}/{8 * len(scored)}",
            "aac24_int_agree": _agree(scored, "aac24_int"),
            "groups_agree": _agree(scored, "group"),
            "levels_agree": _agree(scored, "levels"),
            "corner_max_all_mm": float(max(r["corner_max_all_mm"] for r in scored)),
            "corner_max_mm": float(max(r["corner_max_mm"] for r in scored)),
            "corner_median_of_max_mm": float(np.median([r["corner_max_mm"] for r in scored])),
            "median_s": [
                float(np.median([r["seconds"][0] for r in timed_rows])),
                float(np.median([r["seconds"][1] for r in timed_rows])),
            ],
            "median_read_s": [
                float(np.median([r["read_s"][0] for r in timed_rows])),
                float(np.median([r["read_s"][1] for r in timed_rows])),
            ],
            "median_full_over_default": float(
                np.median([r["seconds"][0] / r["seconds"][1] for r in timed_rows])
            ),
        }
    return {"films": rows, "summary": summary}


def bench_profile(films: list[Path], threads: int, repeats: int) -> dict[str, Any]:
    """Where a default scorer's seconds go on each simulated lossless film (module docstring)."""
    from aacscore.backend import set_threads
    from aacscore.pipeline import Scorer

    set_threads(threads)
    scorer = Scorer(backend="onnx")
    sims = [f for f in films if f.name.startswith("sim") and f.name.endswith("j2kr.dcm")]
    scorer.score(sims[0])
    rows: list[dict[str, Any]] = []
    for path in sims:
        try:
            runs = _profile_runs(scorer, path, repeats)
        except ValueError as exc:  # a film the pipeline refuses (spine, band): not timed
            rows.append({"film": path.name, "error": f"{type(exc).__name__}: {exc}"})
            print(json.dumps(rows[-1]))
            continue
        rad = scorer.read(path)
        row = {
            "film": path.name,
            "spacing_mm": float(path.name[3:].split("mm")[0]),
            "shape": list(rad.film_shape),
            "reduction": rad.reduction,
            "median_s": {k: statistics.median(r[k] for r in runs) for k in runs[0]},
        }
        rows.append(row)
        print(json.dumps(row))
    summary: dict[str, Any] = {}
    for mm in SPACINGS_MM:
        sel = [r for r in rows if r.get("spacing_mm") == mm]
        if sel:
            keys = sel[0]["median_s"].keys()
            summary[f"{mm:g}mm"] = {
                "films": len(sel),
                "reduction": sorted({r["reduction"] for r in sel}),
                "median_s": {k: statistics.median(r["median_s"][k] for r in sel) for k in keys},
            }
    return {"films": rows, "summary": summary}


def _profile_runs(scorer: Any, path: Path, repeats: int) -> list[dict[str, float]]:
    """``repeats`` timed runs of the default scorer's stages on one film (:func:`bench_profile`)."""
    from dataclasses import replace

    from aacscore.pipeline import band_along_spine, spine_in_film_pixels

    runs: list[dict[str, float]] = []
    for _ in range(repeats):
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        rad = scorer.read(path)
        t["read_s"] = time.perf_counter() - t0
        area_s: list[float] = []
        finer = rad.finer
        if finer is not None:

            def timed_finer(
                level: int, area: Any, finer: Any = finer, into: list[float] = area_s
            ) -> Any:
                t1 = time.perf_counter()
                out = finer(level, area)
                into.append(time.perf_counter() - t1)
                return out

            rad = replace(rad, finer=timed_finer)
        t0 = time.perf_counter()
        raw = scorer.spine_model.predict(rad)
        spine = spine_in_film_pixels(raw, rad)
        t["spine_s"] = time.perf_counter() - t0
        for k, v in raw.timings.items():
            t[f"spine.{k}"] = float(v)
        t0 = time.perf_counter()
        band = band_along_spine(rad, spine, scorer.score_model.band_geometry)
        t["band_s"] = time.perf_counter() - t0
        t["band.area_decode_s"] = sum(area_s)
        t0 = time.perf_counter()
        scorer.score_model.predict(band, groups=scorer.groups, tta=True)
        t["score_s"] = time.perf_counter() - t0
        runs.append(t)
    return runs


def _agree(rows: list[dict[str, Any]], key: str) -> str:
    """``"k/n"``: the rows whose two values of ``key`` are equal."""
    return f"{sum(r[key][0] == r[key][1] for r in rows)}/{len(rows)}"


def _corner_distance_mm(a: Any, b: Any, names: tuple[str, ...] | None) -> float:
    """Largest distance (mm) between the two results' corners of the vertebrae both found
    (only ``names`` when given)."""
    sa, sb = a.stages.spine, b.stages.spine
    spacing = a.stages.radiograph.spacing_mm[0]  # both in the film's own pixels
    worst = 0.0
    for name in set(sa.vertebrae) & set(sb.vertebrae) & set(names or sa.vertebrae):
        pa = np.asarray(sa.vertebrae[name].corners)
        pb = np.asarray(sb.vertebrae[name].corners)
        worst = max(worst, float(np.max(np.hypot(*(pa - pb).T))) * spacing)
    return worst


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("pydicom", "pylibjpeg-openjpeg", "imagecodecs", "pillow", "glymur"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2, help="simulated films per spacing")
    ap.add_argument("--repeats", type=int, default=3, help="decodes per film and decoder")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (pipeline)")
    ap.add_argument("--score-repeats", type=int, default=2, help="scorings per film and read")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the scoring part")
    ap.add_argument("--readings", action="store_true", help="only full vs default readings")
    ap.add_argument("--profile", action="store_true", help="only the default scorer's stages")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aacscore.io").setLevel(logging.ERROR)  # RG1: "spacing unknown"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    if args.readings or args.profile:
        return _readings_main(args, load_before, t_start)
    args.out = args.out or RESULTS
    with tempfile.TemporaryDirectory() as tmp:
        films = make_films(Path(tmp), args.n)
        decode_rows = bench_decoders(films, args.repeats, int(cpus or 1))
        reader_rows = bench_reader(films, args.repeats)
        pipeline_rows = (
            [] if args.no_pipeline else bench_pipeline(films, args.threads, args.score_repeats)
        )
    record = {
        "command": "python benchmarks/decode.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "aacscore_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": cpus,
            "platform": platform.platform(),
            "loadavg_before": list(load_before),
            "loadavg_after": list(os.getloadavg()),
            "torch_threads": args.threads,
        },
        "versions": versions(),
        "seed": SEED,
        "aac24_targets": list(TARGETS),
        "spacings_mm": list(SPACINGS_MM),
        "lossy_ratio": LOSSY_RATIO,
        "repeats": args.repeats,
        "scoring_decode_spacing_mm": SCORING_DECODE_SPACING_MM,
        "wall_s": time.perf_counter() - t_start,
        "decoders": decode_rows,
        "reader": reader_rows,
        "pipeline": pipeline_rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"load {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}; -> {args.out}")
    return 0


def _readings_main(args: argparse.Namespace, load_before: Any, t_start: float) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        films = make_films(Path(tmp), args.n)
        if args.profile:
            readings = bench_profile(films, args.threads, args.repeats)
        else:
            readings = bench_readings(films, args.threads)
    name = "decode_profile.json" if args.profile else "decode_readings.json"
    out = args.out or RESULTS.with_name(name)
    record = {
        "command": "python benchmarks/decode.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "aacscore_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "platform": platform.platform(),
            "loadavg_before": list(load_before),
            "loadavg_after": list(os.getloadavg()),
            "threads": args.threads,
        },
        "versions": versions(),
        "seed": SEED,
        "aac24_targets": list(TARGETS),
        "scoring_decode_spacing_mm": SCORING_DECODE_SPACING_MM,
        "wall_s": time.perf_counter() - t_start,
        **readings,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(readings["summary"], indent=1))
    print(f"load {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}; -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
