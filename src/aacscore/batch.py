"""Batch scoring into an output folder, crash-safe and resumable.

Layout of ``OUT``: ``results.csv`` (one row per input, appended as each case finishes),
``cases/<name>.json`` (everything about one case), ``overlays/<name>.png`` (when asked),
``dicom/<name>_sr.dcm`` and ``dicom/<name>_sc.dcm`` (DICOM SR and overlay secondary capture of
DICOM inputs, when asked; see :mod:`aacscore.outputs.dicom`) and ``run.json`` (versions,
weight hashes, device, arguments, start/end, counts, and ``skipped_inputs``: the files found
but not taken as inputs, each with the reason). A failing input becomes a ``failed`` row with
its reason and :class:`~aacscore.codes.ErrorCode` (an unexpected exception:
``internal_error``; a worker process that died: ``worker_failed``) and the batch goes on.
Re-running the same command on the same ``OUT`` skips every input that already has a row.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore._files import write_json
from aacscore.codes import ErrorCode
from aacscore.info import environment_info
from aacscore.io import InputItem, Radiograph, RadiographError, SkippedInput
from aacscore.keys import case_key
from aacscore.outputs.case_json import write_case_json
from aacscore.outputs.results_csv import ResultsWriter, read_results
from aacscore.pipeline import Scorer
from aacscore.results import Result, counts, failed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchSummary:
    """What a batch run did."""

    out_dir: Path
    n_inputs: int
    n_skipped: int
    counts: dict[str, int]
    results_csv: Path
    run_json: Path


def case_stem(name: str) -> str:
    """File-system-safe, unique stem for an input name: its :func:`~aacscore.keys.case_key`
    (made safe, at most 60 characters) and a short hash of the whole name."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", case_key(name))[:60] or "case"
    return f"{base}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def process_item(
    scorer: Scorer, item: InputItem, out_dir: Path, overlay: bool = False, dicom_out: bool = False
) -> Result:
    """Score one input and write its JSON (and overlay, DICOM SR/SC); never raises."""
    stem = case_stem(item.name)
    try:
        try:
            rad = item.read(spacing_mm=scorer.spacing_mm)
        except (RadiographError, OSError) as e:
            result = failed(item.name, str(e), ErrorCode.UNREADABLE)
        else:
            result = scorer.score_radiograph(rad, item.name)
            rgb = None
            if overlay:
                result, rgb = _add_overlay(rad, result, out_dir / "overlays" / f"{stem}.png")
            if dicom_out:
                result = _add_dicom(scorer, result, rgb, out_dir / "dicom", stem)
    except Exception as e:  # one bad case must never stop the batch
        log.debug("unexpected error on %s", item.name, exc_info=True)
        result = failed(
            item.name,
            f"{item.name}: unexpected {type(e).__name__}: {e}",
            ErrorCode.INTERNAL_ERROR,
            {"traceback": traceback.format_exc()},
        )
    write_case_json(out_dir / "cases" / f"{stem}.json", result)
    return result


def _add_overlay(
    rad: Radiograph, result: Result, path: Path
) -> tuple[Result, npt.NDArray[np.uint8] | None]:
    """Draw and save the overlay; an error is recorded in the details, never raised."""
    from aacscore.outputs.overlay import overlay_image, save_overlay

    try:
        rgb = overlay_image(rad, result)
        return result.with_details({"overlay": str(save_overlay(rgb, path))}), rgb
    except Exception as e:  # a drawing problem must not lose the score
        log.warning("%s: overlay not written: %s", result.file, e)
        return result.with_details({"overlay_error": f"{type(e).__name__}: {e}"}), None


def _add_dicom(
    scorer: Scorer, result: Result, rgb: npt.NDArray[np.uint8] | None, out_dir: Path, stem: str
) -> Result:
    """Write the DICOM SR (and SC of ``rgb``) of a result; an error is recorded, never raised."""
    from aacscore.outputs import dicom

    try:
        outs = dicom.write_dicom_outputs(result, rgb, out_dir, stem, models=_models_info(scorer))
        extra: dict[str, Any] = outs.details()
    except Exception as e:  # a DICOM problem must not lose the score
        log.warning("%s: DICOM output not written: %s", result.file, e)
        extra = {"dicom_error": f"{type(e).__name__}: {e}"}
    return result.with_details(extra)


def _models_info(scorer: Scorer) -> dict[str, Any] | None:
    """Weight hashes for the DICOM SR (optional there: None when unavailable)."""
    try:
        return scorer.models_info()
    except Exception as e:  # the hashes are optional in the SR
        log.debug("models info unavailable: %s", e)
        return None


# --- worker processes ------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(scorer_kwargs: dict[str, Any], threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER["scorer"] = Scorer(**scorer_kwargs)


def _work(item: InputItem, out_dir: Path, overlay: bool, dicom_out: bool = False) -> Result:
    result = process_item(_WORKER["scorer"], item, out_dir, overlay, dicom_out)
    return result.without_stages()  # all outputs are written; only the CSV row goes back


def score_batch(
    items: Sequence[InputItem],
    out_dir: str | Path,
    scorer_kwargs: dict[str, Any] | None = None,
    *,
    jobs: int = 1,
    overlay: bool = False,
    dicom_out: bool = False,
    retry_failed: bool = False,
    arguments: dict[str, Any] | None = None,
    skipped_inputs: Sequence[SkippedInput] = (),
    on_result: Callable[[Result], None] | None = None,
    on_skip: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Score ``items`` into ``out_dir``; see the module docstring for the layout.

    ``on_result`` gets each result once its files are written, without its stage results.
    ``skipped_inputs`` (what :func:`aacscore.io.find_inputs` left out) is recorded in
    ``run.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = dict(scorer_kwargs or {})
    writer = ResultsWriter(out / "results.csv", retry_failed=retry_failed)
    todo = [it for it in items if not writer.is_done(it.name)]
    skipped = len(items) - len(todo)
    if on_skip is not None:
        on_skip(skipped)
    scorer = Scorer(**kwargs)
    run_json = out / "run.json"
    started = datetime.now(timezone.utc).isoformat()
    record: dict[str, Any] = {
        "started": started,
        "finished": None,
        "arguments": arguments or {},
        "environment": environment_info(),
        "n_inputs": len(items),
        "n_skipped_already_done": skipped,
        "skipped_inputs": [s.as_dict() for s in skipped_inputs],
        "jobs": jobs,
    }
    try:
        record["models"] = scorer.models_info()
    except Exception as e:  # models missing: every case fails below with the same reason
        record["models"] = {"error": str(e)}
    write_json(run_json, record)

    def done(res: Result) -> None:
        res = res.without_stages()
        writer.write(res)
        if on_result is not None:
            on_result(res)

    if jobs <= 1 or len(todo) <= 1:
        for it in todo:
            done(process_item(scorer, it, out, overlay, dicom_out))
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(kwargs, threads)
        ) as pool:
            pending: dict[Future[Result], InputItem] = {}
            queue = list(todo)
            while queue or pending:
                while queue and len(pending) < 2 * jobs:
                    it = queue.pop(0)
                    pending[pool.submit(_work, it, out, overlay, dicom_out)] = it
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    it = pending.pop(fut)
                    try:
                        res = fut.result()
                    except Exception as e:  # a worker died
                        res = failed(
                            it.name, f"{it.name}: worker failed: {e}", ErrorCode.WORKER_FAILED
                        )
                    done(res)
    rows = read_results(out / "results.csv")
    record["finished"] = datetime.now(timezone.utc).isoformat()
    record["counts"] = counts(r["status"] for r in rows)
    write_json(run_json, record)
    return BatchSummary(out, len(items), skipped, record["counts"], out / "results.csv", run_json)
