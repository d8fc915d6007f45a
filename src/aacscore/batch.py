"""Batch scoring into an output folder: crash-safe, resumable, in input order.

Layout of ``OUT``: ``results.csv`` (one row per film, see :mod:`aacscore.outputs.results_csv`),
``cases/<stem>.json`` (everything about one case), ``overlays/<stem>.png`` (when asked),
``dicom/<stem>_sr.dcm`` and ``dicom/<stem>_sc.dcm`` (DICOM SR and overlay secondary capture of
DICOM inputs, when asked; see :mod:`aacscore.outputs.dicom`) and ``run.json``
(``{"runs": [record, ...]}``, one record per run: versions, weight hashes, device, arguments,
settings, start/end, what was scored, resumed, re-scored or a duplicate, and
``skipped_inputs``: the files found but not taken as inputs, each with the reason), and
``summary.html`` (:mod:`aacscore.outputs.summary_html`, rewritten at the end of every run).

A failing input becomes a ``failed`` row with its reason and :class:`~aacscore.codes.ErrorCode`
(a file that cannot be read, a missing path included: ``unreadable``; an unexpected exception:
``internal_error``; a worker process that died: ``worker_failed``) and the batch goes on.

Resume. A case is known by its input's content and the settings: the row's ``sha256`` (of the
input's bytes) and ``settings`` (a short hash of everything that changes results:
:func:`batch_settings`). On a re-run into the same ``OUT``:

* an input whose content and settings match a row is done, whatever the path is spelled like
  (relative or absolute, another folder): one film, one row. Failed rows count as done unless
  ``retry_failed``. Outputs asked for now but missing (overlay, DICOM SR/SC) are written from
  the case JSON and the re-read film, without running any model; ``patient_id`` is filled in or
  cleared to follow ``include_patient_id``.
* an input whose content or settings changed is scored again and its row replaced in place
  (the row at the same path, or with the same content), its old overlay and DICOM files
  removed first.
* the same bytes given twice in one batch are scored once; the later inputs are listed in the
  run record as duplicates (``duplicate_inputs``).

Rows are appended in completion order while the batch runs (each flushed to disk); at the end
``results.csv`` is rewritten atomically with this run's inputs last, in input order (rows of
earlier runs that are not among the inputs first), so ``jobs`` never changes the file.

Engines. The batch plans, writes every row, case file and run record in this process; an
:class:`Engine` only scores the cases: :class:`LocalEngine` (below) or
:class:`aacscore.batch_ray.RayEngine` (Ray actors), so both give the same files.

Parts. ``--num-parts N --part-id K`` (:func:`select_part`) keeps the inputs whose
:func:`shard_key` (the path relative to the folder given as input, not the content) falls in part
``K``, for a scheduler's array of jobs, each into its own output folder; ``aacscore merge``
(:mod:`aacscore.merge`) joins them.

Processes. ``jobs="auto"`` (the default) picks :func:`auto_processes` of the CPU cores; more
processes share the cores' threads (``cores // processes`` network threads each). A worker
process that dies (killed by the kernel for memory, a crash in native code) fails the film it
was scoring with ``worker_failed``; the pool is restarted and the films that were in flight are
run again one at a time, so only the film that kills a worker fails.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from aacscore._files import sha256_file, write_json
from aacscore._version import __version__
from aacscore.backend import Backend, BackendError, parse_backend, require_torch
from aacscore.codes import ErrorCode
from aacscore.info import environment_info
from aacscore.io import InputItem, Radiograph, RadiographError, SkippedInput
from aacscore.io.inputs import LIST_SUFFIXES
from aacscore.kauppila import parse_groups
from aacscore.keys import case_key
from aacscore.outputs.case_json import (
    read_case_json,
    result_from_document,
    write_case_json,
)
from aacscore.outputs.results_csv import ResultsWriter
from aacscore.pipeline import Scorer
from aacscore.results import CaseIds, Result, Status, counts, failed

log = logging.getLogger(__name__)

SPACING_RANGE_MM: tuple[float, float] = (0.01, 5.0)
"""The pixel spacings a user may impose (``spacing_mm``, ``--spacing``), in mm."""
CORES_PER_PROCESS = 8
"""``jobs="auto"``: one worker process per this many CPU cores (at least one process)."""
CASES_PER_PROCESS = 8
"""``jobs="auto"``: no more processes than one per this many films to score (a worker's
start-up, spawning and loading the models, costs about as much as scoring a few films)."""
JOBS_AUTO = "auto"

_HASHED_OPTIONS: tuple[str, ...] = (
    "tta",
    "spacing_mm",
    "decode_spacing_mm",
    "band_source_spacing_mm",
    "ignore_header",
    "ignore_view",
)
"""Scorer attributes (besides the models and groups) that change results."""
_MODEL_ATTRIBUTES: dict[str, str] = {
    "spine": "spine_model",
    "score": "score_model",
    "view": "view_model",
    "quality": "quality_reference",
}


class BatchOptionError(ValueError):
    """An option that cannot work (found before any film is read); the message names the
    option and its value."""


class EngineKind(str, Enum):
    """Who scores the cases (``--engine``)."""

    LOCAL = "local"
    """This process, or worker processes of this machine (:class:`LocalEngine`)."""
    RAY = "ray"
    """Ray actors (:class:`aacscore.batch_ray.RayEngine`)."""

    def __str__(self) -> str:
        return self.value


class Action(str, Enum):
    """What a batch does with one input."""

    SCORE = "scored"
    """New: no row has its content and settings."""
    RESCORE = "rescored"
    """Scored again: its content or the settings changed; the new row replaces the old."""
    RESUME = "resumed"
    """Done before: a row has its content and settings."""
    DUPLICATE = "duplicate"
    """The same bytes (or the same file) as an earlier input of this batch."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PlannedCase:
    """The plan for one input: ``row`` is the row it resumes, ``replaces`` the rows its new row
    replaces, ``same_as`` the earlier input it duplicates."""

    item: InputItem
    action: Action
    sha256: str
    row: int | None = None
    replaces: tuple[int, ...] = ()
    same_as: str | None = None


@dataclass(frozen=True)
class BatchSettings:
    """The options that change results (``values``, JSON-ready) and their short ``hash``."""

    values: Mapping[str, Any]
    hash: str


@dataclass(frozen=True)
class BatchSummary:
    """What a batch run did.

    ``counts``: statuses of every row of ``results.csv``; ``input_counts``: the statuses of
    this run's inputs (a duplicate counts with the input it repeats). ``n_skipped`` inputs were
    already done (resumed)."""

    out_dir: Path
    n_inputs: int
    n_skipped: int
    counts: dict[str, int]
    results_csv: Path
    run_json: Path
    input_counts: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    rescored: int = 0
    duplicates: int = 0
    outputs_added: int = 0

    @property
    def exit_code(self) -> int:
        """0 when every input was scored (ok or warning), 1 when any failed."""
        return 1 if self.input_counts.get(Status.FAILED.value, 0) else 0


def case_stem(name: str) -> str:
    """File-system-safe, unique stem for an input name: its :func:`~aacscore.keys.case_key`
    (made safe, at most 60 characters) and a short hash of the whole name."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", case_key(name))[:60] or "case"
    return f"{base}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


# --- options -----------------------------------------------------------------------------------


def parse_jobs(jobs: int | str) -> int | None:
    """The number of worker processes asked for (None: ``auto``).

    Raises:
        BatchOptionError: not ``auto`` or a positive integer."""
    if isinstance(jobs, str) and jobs.strip().lower() == JOBS_AUTO:
        return None
    try:
        n = int(jobs)
        if isinstance(jobs, float) or str(jobs).strip() != str(n):
            raise ValueError
    except (TypeError, ValueError):
        raise BatchOptionError(
            f"--jobs: {jobs!r} is not a number of processes: give a positive integer or auto"
        ) from None
    if n < 1:
        raise BatchOptionError(f"--jobs: {n} is not a number of processes: give 1 or more, or auto")
    return n


def check_options(
    scorer_kwargs: Mapping[str, Any], jobs: int | str = JOBS_AUTO, out_dir: str | Path | None = None
) -> None:
    """Check the options of a batch before any work.

    Raises:
        BatchOptionError: a pixel spacing that is not a finite number in
            :data:`SPACING_RANGE_MM`, severity groups that do not parse, a bad ``jobs``, an
            unknown backend (or torch without PyTorch installed), a model folder that does
            not exist, or an output folder that is a file."""
    spacing = scorer_kwargs.get("spacing_mm")
    if spacing is not None:
        values = spacing if isinstance(spacing, (list, tuple)) else [spacing]
        lo, hi = SPACING_RANGE_MM
        try:
            ok = 1 <= len(values) <= 2 and all(
                math.isfinite(float(v)) and lo <= float(v) <= hi for v in values
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise BatchOptionError(
                f"--spacing: {spacing!r} is not a pixel spacing: give a finite number of "
                f"millimetres from {lo} to {hi}"
            )
    groups = scorer_kwargs.get("groups", "lewis")
    try:
        parse_groups(groups)
    except (ValueError, TypeError) as e:
        raise BatchOptionError(f"--groups: {e}") from None
    parse_jobs(jobs)
    backend = scorer_kwargs.get("backend")
    try:
        chosen = parse_backend(backend)
        if chosen == Backend.TORCH:
            require_torch()
    except (ValueError, BackendError) as e:
        raise BatchOptionError(f"--backend: {e}") from None
    for key, option in (("spine_model", "--spine-model"), ("score_model", "--score-model")):
        spec = scorer_kwargs.get(key)
        if isinstance(spec, (str, Path)):
            folder = Path(str(spec).removeprefix("nnunet:"))
            if not folder.exists():
                raise BatchOptionError(f"{option}: {spec}: no such file or folder")
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise BatchOptionError(f"--out: {out_dir} is a file, not a folder")


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return max(1, os.cpu_count() or 1)


def auto_processes(cores: int, n_cases: int | None = None) -> int:
    """Worker processes for ``jobs="auto"``: ``cores // CORES_PER_PROCESS``, and at most one
    per :data:`CASES_PER_PROCESS` films to score; at least 1.

    Each process pays its start-up (spawning, loading the models, ~3 s); on 2 cores two
    processes of one thread beat one of two threads only on long batches
    (``benchmarks/batch_jobs.py``: 8.2 against 6.0 films/s once started), so ``--jobs 2`` is
    the user's choice there."""
    processes = max(1, cores // CORES_PER_PROCESS)
    if n_cases is not None:
        processes = min(processes, max(1, n_cases // CASES_PER_PROCESS))
    return processes


def resolve_workers(jobs: int | str, n_cases: int, cores: int | None = None) -> tuple[int, int]:
    """``(processes, network threads per process)`` for a batch of ``n_cases`` to score.

    One process (the caller's, threads left as they are: 0) when one is asked for, chosen, or
    enough for the cases."""
    cores = cpu_cores() if cores is None else cores
    asked = parse_jobs(jobs)
    processes = auto_processes(cores, n_cases) if asked is None else asked
    processes = max(1, min(processes, n_cases))
    if processes == 1:
        return 1, 0
    return processes, max(1, cores // processes)


# --- settings and input identity ---------------------------------------------------------------


def batch_settings(scorer: Scorer) -> BatchSettings:
    """What changes the results of ``scorer``: the aacscore version, each model's weight
    hashes (a model without weight files: its class), the severity groups, TTA, the imposed
    pixel spacing, how coarse JPEG 2000 films are decoded (``decode_spacing_mm``,
    ``band_source_spacing_mm``) and the
    ``ignore_header`` / ``ignore_view`` choices. The hash is the first
    12 hex digits of the SHA-256 of their canonical JSON."""
    try:
        models: dict[str, Any] = {}
        for key, entry in scorer.models_info().items():
            if entry.get("sha256"):
                models[key] = {"sha256": entry["sha256"]}
            else:
                model = getattr(scorer, _MODEL_ATTRIBUTES.get(key, ""), None)
                kind = type(model)
                models[key] = {
                    "path": entry.get("path"),
                    "class": f"{kind.__module__}.{kind.__qualname__}",
                }
    except Exception as e:  # models missing: every case fails with the same reason
        models = {"error": f"{type(e).__name__}: {e}"}
    groups = scorer.groups
    values: dict[str, Any] = {
        "aacscore": __version__,
        "models": models,
        "groups": {
            "name": groups.name,
            "upper_bounds": list(groups.upper_bounds),
            "labels": list(groups.labels),
        },
        "view_check": scorer.view_check,
        **{k: _json_value(getattr(scorer, k)) for k in _HASHED_OPTIONS},
    }
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return BatchSettings(values, hashlib.sha256(text.encode()).hexdigest()[:12])


def _json_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [float(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def input_sha256(item: InputItem) -> str:
    """SHA-256 hex digest of an input's bytes; "" when they cannot be read."""
    try:
        if item.member is None:
            return sha256_file(item.path)
        return hashlib.sha256(item.read_bytes()).hexdigest()
    except (OSError, RadiographError) as e:
        log.debug("%s: cannot hash (%s)", item.name, e)
        return ""


Location = tuple[str, str | None]
_ZIP_MEMBER = re.compile(r"(.*?\.zip):(.+)$", re.IGNORECASE | re.DOTALL)


def item_location(item: InputItem) -> Location:
    """Where an input lies: its absolute path (and zip member)."""
    return (str(item.path.resolve()), item.member)


def row_location(file: str) -> Location:
    """Where the input of a ``results.csv`` row lies (``file`` is an input name: a path, or
    ``archive.zip:member``; a relative path is taken from the current folder)."""
    m = _ZIP_MEMBER.match(file)
    if m is not None:
        return (str(Path(m.group(1)).resolve()), m.group(2))
    return (str(Path(file).resolve()), None)


# --- parts (sharding for schedulers) -------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """Part ``part_id`` of ``num_parts`` (``--num-parts N --part-id K``, ``0 <= K < N``)."""

    num_parts: int
    part_id: int

    def __post_init__(self) -> None:
        if isinstance(self.num_parts, bool) or not isinstance(self.num_parts, int):
            raise BatchOptionError(f"--num-parts: {self.num_parts!r} is not a whole number")
        if isinstance(self.part_id, bool) or not isinstance(self.part_id, int):
            raise BatchOptionError(f"--part-id: {self.part_id!r} is not a whole number")
        if self.num_parts < 1:
            raise BatchOptionError(f"--num-parts: {self.num_parts} parts: give 1 or more")
        if not 0 <= self.part_id < self.num_parts:
            raise BatchOptionError(
                f"--part-id: {self.part_id} is not a part of {self.num_parts}: give 0 to "
                f"{self.num_parts - 1}"
            )

    def as_dict(self) -> dict[str, int]:
        """``{"num_parts": N, "part_id": K}`` (the form of the run record's ``part``)."""
        return {"num_parts": self.num_parts, "part_id": self.part_id}


def parse_part(num_parts: int | None, part_id: int | None) -> Part | None:
    """The part asked for by ``--num-parts`` and ``--part-id`` (None: neither, every input).

    Raises:
        BatchOptionError: only one of them, or values that are not a part."""
    if num_parts is None and part_id is None:
        return None
    if num_parts is None or part_id is None:
        given, missing = ("--num-parts", "--part-id")
        if num_parts is None:
            given, missing = missing, given
        raise BatchOptionError(f"{given} needs {missing} too")
    return Part(num_parts, part_id)


def shard_key(item: InputItem, roots: Sequence[str | Path] = ()) -> str:
    """The key that decides an input's part: its path (POSIX) relative to the first of
    ``roots`` that holds it (the folders given as inputs, and the folders of the list files
    given), else its file name; for a zip member, the zip's key, ``:`` and the member.

    Not the content hash (every part would read every file), nor the absolute path (a part
    run on another machine, where the data lies elsewhere, must split the same way)."""
    return _shard_key(item, _root_folders(roots))


def _root_folders(roots: Sequence[str | Path]) -> list[Path]:
    folders = []
    for root in roots:
        r = Path(root)
        folder = r.parent if r.is_file() and r.suffix.lower() in LIST_SUFFIXES else r
        if folder.is_dir():
            folders.append(Path(os.path.abspath(folder)))
    return folders


def _shard_key(item: InputItem, folders: Sequence[Path]) -> str:
    path = Path(os.path.abspath(item.path))  # as found under its folder: links not followed
    key = item.path.name
    for folder in folders:
        if folder == path or folder in path.parents:
            key = path.relative_to(folder).as_posix()
            break
    return key if item.member is None else f"{key}:{item.member}"


def part_of(key: str, num_parts: int) -> int:
    """The part (``0 .. num_parts - 1``) of a :func:`shard_key`: its SHA-256 modulo the number
    of parts (the same on every machine and Python)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16) % num_parts


def select_part(
    items: Sequence[InputItem], roots: Sequence[str | Path], part: Part | None
) -> list[InputItem]:
    """The inputs of ``part`` (all of them when None), in order; the parts of one set of inputs
    hold every input exactly once."""
    if part is None:
        return list(items)
    folders = _root_folders(roots)
    return [it for it in items if part_of(_shard_key(it, folders), part.num_parts) == part.part_id]


# --- planning ----------------------------------------------------------------------------------


def plan_batch(
    items: Sequence[InputItem],
    digests: Sequence[str],
    rows: Mapping[int, Mapping[str, str]],
    settings: str,
    *,
    retry_failed: bool = False,
) -> list[PlannedCase]:
    """What to do with each input, given the existing rows (see the module docstring).

    An input resumes the row at its own path with its content (``digests``, "" for an
    unreadable input) and ``settings``; failing that, for a readable input, a row with its
    content and settings at a path that is not another input's (the film was given by another
    path). Failed rows are not resumed with ``retry_failed``. Every other input is scored; its
    row replaces the rows not resumed at its path, and those with its content at paths that
    are not another input's. A row's path is its ``file`` as :func:`row_location` reads it,
    the same location as an input of that name."""
    locs = [item_location(it) for it in items]
    row_locs = {rid: row_location(r["file"]) for rid, r in rows.items()}
    position = {rid: k for k, rid in enumerate(rows)}
    by_loc: dict[Location, list[int]] = {}
    by_key: dict[tuple[str, str], list[int]] = {}
    by_sha: dict[str, list[int]] = {}
    for rid, r in rows.items():  # row ids in file order; every row has every column
        by_loc.setdefault(row_locs[rid], []).append(rid)
        by_key.setdefault((r["sha256"], r["settings"]), []).append(rid)
        if r["sha256"]:
            by_sha.setdefault(r["sha256"], []).append(rid)
    first: dict[Any, str] = {}
    duplicate_of: dict[int, str] = {}
    for i, (it, loc, sha) in enumerate(zip(items, locs, digests, strict=True)):
        keys: list[Any] = [("loc", loc)] + ([("sha", sha)] if sha else [])
        same = next((first[k] for k in keys if k in first), None)
        if same is not None:
            duplicate_of[i] = same
        for k in keys:
            first.setdefault(k, it.name)
    live = [i for i in range(len(items)) if i not in duplicate_of]
    own_locs = {locs[i] for i in live}
    claimed: set[int] = set()
    resumed: dict[int, int] = {}

    def resumable(rid: int) -> bool:
        failed_row = rows[rid]["status"] == Status.FAILED.value
        return rid not in claimed and not (retry_failed and failed_row)

    for i in live:  # the row at the input's own path
        same_key = set(by_key.get((digests[i], settings), ()))
        at = next((r for r in by_loc.get(locs[i], ()) if r in same_key and resumable(r)), None)
        if at is not None:
            claimed.add(at)
            resumed[i] = at
    for i in live:  # the film given by another path
        if i in resumed or not digests[i]:
            continue
        moved = next(
            (
                r
                for r in by_key.get((digests[i], settings), ())
                if resumable(r) and row_locs[r] not in own_locs
            ),
            None,
        )
        if moved is not None:
            claimed.add(moved)
            resumed[i] = moved
    plans: list[PlannedCase] = []
    for i, (it, sha) in enumerate(zip(items, digests, strict=True)):
        if i in duplicate_of:
            plans.append(PlannedCase(it, Action.DUPLICATE, sha, same_as=duplicate_of[i]))
            continue
        if i in resumed:
            plans.append(PlannedCase(it, Action.RESUME, sha, row=resumed[i]))
            continue
        same_bytes = [r for r in by_sha.get(sha, ()) if row_locs[r] not in own_locs]
        candidates = {*by_loc.get(locs[i], ()), *same_bytes}
        gone = tuple(sorted((r for r in candidates if r not in claimed), key=position.__getitem__))
        claimed.update(gone)
        plans.append(PlannedCase(it, Action.RESCORE if gone else Action.SCORE, sha, None, gone))
    return plans


# --- one case ----------------------------------------------------------------------------------


def dicom_ids(rad: Radiograph, include_patient_id: bool = False) -> dict[str, str]:
    """The identifier columns from a film's DICOM header (none for other formats)."""
    header = rad.header
    if header is None:
        return {}

    def get(keyword: str) -> str:
        value = header.get(keyword)
        return "" if value is None else str(value).strip()

    ids = {
        "study_uid": get("StudyInstanceUID"),
        "series_uid": get("SeriesInstanceUID"),
        "sop_uid": get("SOPInstanceUID"),
        "accession": get("AccessionNumber"),
    }
    if include_patient_id:
        ids["patient_id"] = get("PatientID")
    return ids


def process_item(
    scorer: Scorer,
    item: InputItem,
    out_dir: Path,
    overlay: bool = False,
    dicom_out: bool = False,
    *,
    ids: CaseIds | None = None,
    include_patient_id: bool = False,
) -> Result:
    """Score one input and write its JSON (and overlay, DICOM SR/SC); never raises.

    The result carries ``ids`` (the input's hash and settings) and the film's DICOM
    identifiers."""
    stem = case_stem(item.name)
    base = ids or CaseIds()
    header_ids: dict[str, str] = {}
    try:
        try:
            rad = scorer.read(item)
        except (RadiographError, OSError) as e:
            result = failed(item.name, str(e), ErrorCode.UNREADABLE)
        else:
            header_ids = dicom_ids(rad, include_patient_id)
            result = scorer.score_radiograph(rad, item.name).with_ids(**header_ids)
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
    result = result.with_ids(**header_ids, sha256=base.sha256, settings=base.settings)
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
        outs = dicom.write_dicom_outputs(result, rgb, out_dir, stem, models=sr_models_info(scorer))
        extra: dict[str, Any] = outs.details()
    except Exception as e:  # a DICOM problem must not lose the score
        log.warning("%s: DICOM output not written: %s", result.file, e)
        extra = {"dicom_error": f"{type(e).__name__}: {e}"}
    return result.with_details(extra)


def sr_models_info(scorer: Scorer) -> dict[str, Any] | None:
    """Weight hashes for the DICOM SR (optional there: None when unavailable)."""
    try:
        return scorer.models_info()
    except Exception as e:  # the hashes are optional in the SR
        log.debug("models info unavailable: %s", e)
        return None


_OVERLAY_KEYS = ("overlay", "overlay_error")
_DICOM_KEYS = ("dicom_sr", "dicom_sc", "dicom_skipped", "dicom_error")


def complete_case(
    scorer: Scorer,
    item: InputItem,
    row: Mapping[str, str],
    out_dir: Path,
    *,
    overlay: bool = False,
    dicom_out: bool = False,
    include_patient_id: bool = False,
) -> tuple[bool, dict[str, str]]:
    """Bring a resumed case up to the options of this run without running any model.

    Writes the overlay and the DICOM SR/SC that are asked for but missing, from the case JSON
    and the re-read film, and says how ``patient_id`` must change. Returns (whether outputs
    were written, the row's columns to change).

    Raises:
        Exception: the case JSON or the film cannot be used (the caller scores it again)."""
    updates: dict[str, str] = {}
    if not include_patient_id and row["patient_id"]:
        updates["patient_id"] = ""
    if not (overlay or dicom_out or include_patient_id):
        return False, updates
    stem = case_stem(row["file"])
    path = out_dir / "cases" / f"{stem}.json"
    doc = read_case_json(path)
    if doc["file"] != row["file"]:
        raise ValueError(f"{path}: written for {doc['file']}, not {row['file']}")
    if "reader" not in doc:  # never read: nothing to draw or report
        return False, updates

    def have(key: str) -> bool:
        return bool(doc.get(key)) and Path(str(doc[key])).is_file()

    need_overlay = overlay and not have("overlay")
    need_dicom = dicom_out and not doc.get("dicom_skipped") and not have("dicom_sr")
    need_dicom |= dicom_out and overlay and have("dicom_sr") and not have("dicom_sc")
    need_pid = include_patient_id and not row["patient_id"] and doc["reader"]["source"] == "dicom"
    if not (need_overlay or need_dicom or need_pid):
        return False, updates
    rad = scorer.read(item)
    result = result_from_document(doc, rad)
    if need_pid:
        pid = dicom_ids(rad, True).get("patient_id", "")
        result = result.with_ids(patient_id=pid)
        if pid:
            updates["patient_id"] = pid
    rgb = None
    if need_overlay or (need_dicom and overlay):
        result = _without_details(result, _OVERLAY_KEYS)
        result, rgb = _add_overlay(rad, result, out_dir / "overlays" / f"{stem}.png")
    if need_dicom:
        result = _without_details(result, _DICOM_KEYS)
        result = _add_dicom(scorer, result, rgb, out_dir / "dicom", stem)
    write_case_json(path, result)
    return need_overlay or need_dicom, updates


def _without_details(result: Result, keys: Sequence[str]) -> Result:
    return replace(result, details={k: v for k, v in result.details.items() if k not in keys})


def _remove_outputs(out_dir: Path, name: str) -> None:
    """Remove the case JSON, overlay and DICOM files of the input ``name`` (a replaced row)."""
    stem = case_stem(name)
    for p in (
        out_dir / "cases" / f"{stem}.json",
        out_dir / "overlays" / f"{stem}.png",
        out_dir / "dicom" / f"{stem}_sr.dcm",
        out_dir / "dicom" / f"{stem}_sc.dcm",
    ):
        p.unlink(missing_ok=True)


# --- engines: who scores the cases ------------------------------------------------------------


@dataclass(frozen=True)
class CaseTask:
    """One input to score: ``index`` of the input in the batch, its ``ids`` (hash and
    settings) and the row ids its row replaces."""

    index: int
    item: InputItem
    ids: CaseIds
    replaces: tuple[int, ...]


@dataclass(frozen=True)
class CaseJob:
    """What every case of a batch is scored with: the :class:`Scorer` arguments, the output
    folder and options, and ``jobs`` (the workers asked for: a number or ``"auto"``)."""

    scorer_kwargs: Mapping[str, Any]
    out_dir: Path
    overlay: bool = False
    dicom_out: bool = False
    include_patient_id: bool = False
    jobs: int | str = JOBS_AUTO

    def score(self, scorer: Scorer, task: CaseTask) -> Result:
        """Score ``task`` with ``scorer`` and write its files (:func:`process_item`, never
        raises); the result comes back without its stage results (the caller writes its row)."""
        result = process_item(
            scorer,
            task.item,
            self.out_dir,
            self.overlay,
            self.dicom_out,
            ids=task.ids,
            include_patient_id=self.include_patient_id,
        )
        return result.without_stages()


class Engine(Protocol):
    """Who scores the cases of a batch (:class:`LocalEngine`, or
    :class:`aacscore.batch_ray.RayEngine`). The batch plans, writes every ``results.csv`` row and
    the run record; an engine only runs :meth:`CaseJob.score` for each task."""

    @property
    def name(self) -> str:
        """What the run record calls it (``engine``)."""
        ...

    def run(
        self,
        tasks: Sequence[CaseTask],
        job: CaseJob,
        scorer: Scorer,
        start: Callable[[CaseTask], None],
        done: Callable[[CaseTask, Result], None],
    ) -> dict[str, Any]:
        """Score ``tasks``: call ``start`` before a task is first sent to a worker and ``done``
        exactly once per task with its result (its case JSON written; a worker that died:
        :func:`worker_failed`). ``scorer`` is the batch's own (for scoring in this process).
        Returns what the run record says of the workers (``processes``, ``threads``,
        ``worker_restarts`` and the engine's own)."""
        ...


@dataclass(frozen=True)
class LocalEngine:
    """Score in this process, or in spawned worker processes (``job.jobs``, see
    :func:`resolve_workers` and the module docstring)."""

    name: str = "local"

    def run(
        self,
        tasks: Sequence[CaseTask],
        job: CaseJob,
        scorer: Scorer,
        start: Callable[[CaseTask], None],
        done: Callable[[CaseTask, Result], None],
    ) -> dict[str, Any]:
        """See :meth:`Engine.run`."""
        processes, threads = resolve_workers(job.jobs, len(tasks))
        restarts = 0
        if processes == 1:
            for task in tasks:
                start(task)
                done(task, job.score(scorer, task))
        else:
            restarts = _run_pool(tasks, start, done, processes=processes, threads=threads, job=job)
        return {"processes": processes, "threads": threads or None, "worker_restarts": restarts}


def worker_failed(task: CaseTask, out_dir: Path, problem: str) -> Result:
    """The ``worker_failed`` result of a task whose worker died or whose result could not come
    back (``problem`` says how); writes its case JSON."""
    name = task.item.name
    res = failed(name, f"{name}: worker failed: {problem}", ErrorCode.WORKER_FAILED)
    res = replace(res, ids=task.ids)
    write_case_json(out_dir / "cases" / f"{case_stem(name)}.json", res)
    return res


# --- worker processes ------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(scorer_kwargs: dict[str, Any], threads: int) -> None:
    from aacscore.backend import set_threads

    set_threads(threads)
    _WORKER["scorer"] = Scorer(**scorer_kwargs)


def _work(job: CaseJob, task: CaseTask) -> Result:
    return job.score(_WORKER["scorer"], task)  # all outputs are written; only the row goes back


def _run_pool(
    tasks: Sequence[CaseTask],
    start: Callable[[CaseTask], None],
    done: Callable[[CaseTask, Result], None],
    *,
    processes: int,
    threads: int,
    job: CaseJob,
) -> int:
    """Score ``tasks`` in ``processes`` spawned workers, calling ``start`` before a task is
    first submitted and ``done`` with its result; returns how often the pool was restarted
    after a worker died.

    At most two tasks per process are in flight. When a worker dies every task in flight is
    lost; they are run again one at a time in a new pool, and a task that kills a worker while
    it is alone in flight fails (``worker_failed``); then the batch goes on."""
    queue = deque(tasks)
    suspects: deque[CaseTask] = deque()
    alone: set[int] = set()  # tasks submitted one at a time
    restarts = 0
    ctx = multiprocessing.get_context("spawn")
    out_dir = job.out_dir
    while queue or suspects:
        lost: list[CaseTask] = []
        pending: dict[Future[Result], CaseTask] = {}
        with ProcessPoolExecutor(
            max_workers=processes,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(dict(job.scorer_kwargs), threads),
        ) as pool:
            while not lost and (queue or suspects or pending):
                source = suspects if suspects else queue
                limit = 1 if suspects else 2 * processes
                while source and len(pending) < limit:
                    task = source.popleft()
                    if source is queue:
                        start(task)
                    try:
                        fut = pool.submit(_work, job, task)
                    except BrokenProcessPool:
                        source.appendleft(task)
                        break
                    pending[fut] = task
                    if source is suspects:
                        alone.add(task.index)
                if not pending:  # the pool broke before taking anything
                    task = source.popleft()
                    if source is suspects:
                        alone.add(task.index)
                    lost.append(task)
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    task = pending.pop(fut)
                    _collect(fut, task, done, lost, out_dir)
            for fut, task in pending.items():  # a broken pool loses every other future too
                _collect(fut, task, done, lost, out_dir)
            if lost:
                _kill_workers(pool)
        if not lost:
            continue
        restarts += 1
        if len(lost) == 1 and lost[0].index in alone:
            (task,) = lost
            log.warning("%s: the worker process died while scoring it", task.item.name)
            problem = "the worker process died while scoring this film (killed or crashed)"
            done(task, worker_failed(task, out_dir, problem))
        else:
            log.warning(
                "a worker process died with %d film(s) in flight; running them again one at a time",
                len(lost),
            )
            suspects.extend(lost)
    return restarts


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the processes of a broken pool.

    The pool terminates them itself, but in CPython 3.11 a worker started by a ``submit`` while
    the pool breaks is missed, and shutting the pool down then waits for it forever (seen here:
    a worker killed while the second one was still starting)."""
    processes = getattr(pool, "_processes", None) or {}
    for proc in list(processes.values()):
        proc.kill()


def _collect(
    fut: Future[Result],
    task: CaseTask,
    done: Callable[[CaseTask, Result], None],
    lost: list[CaseTask],
    out_dir: Path,
) -> None:
    """Hand a finished future's result to ``done``, or note its task as lost with the pool."""
    try:
        res = fut.result()
    except BrokenProcessPool:
        lost.append(task)
        return
    except Exception as e:  # the result could not come back
        res = worker_failed(task, out_dir, f"{type(e).__name__}: {e}")
    done(task, res)


# --- run records -------------------------------------------------------------------------------


def _read_runs(path: Path) -> list[dict[str, Any]]:
    """The run records of ``run.json`` (a single record written by an older aacscore becomes
    the first); an unreadable file is moved aside (``run.json.unreadable``)."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        aside = path.with_name(path.name + ".unreadable")
        log.warning("%s: unreadable (%s); moved to %s, starting a new list of runs", path, e, aside)
        os.replace(path, aside)
        return []
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        return list(data["runs"])
    if isinstance(data, dict):
        return [data]
    log.warning("%s: not a run record; starting a new list of runs after it", path)
    return [{"unrecognised": data}]


# --- the batch ---------------------------------------------------------------------------------


def score_batch(
    items: Sequence[InputItem],
    out_dir: str | Path,
    scorer_kwargs: dict[str, Any] | None = None,
    *,
    jobs: int | str = JOBS_AUTO,
    overlay: bool = False,
    dicom_out: bool = False,
    retry_failed: bool = False,
    include_patient_id: bool = False,
    arguments: dict[str, Any] | None = None,
    skipped_inputs: Sequence[SkippedInput] = (),
    on_result: Callable[[Result], None] | None = None,
    on_skip: Callable[[int], None] | None = None,
    engine: Engine | None = None,
    part: Part | None = None,
) -> BatchSummary:
    """Score ``items`` into ``out_dir``; see the module docstring for the layout and resume.

    ``engine`` scores the cases (default :class:`LocalEngine`); ``jobs``: its workers, or
    ``"auto"``. ``part``: the part of the inputs that ``items`` is (:func:`select_part`),
    recorded in the run record. ``include_patient_id`` fills the
    ``patient_id`` column from the DICOM header (identifying; off by default). ``on_result``
    gets each scored result once its files are written, without its stage results;
    ``on_skip`` the number of inputs already done or duplicated, before scoring starts.
    ``skipped_inputs`` (what :func:`aacscore.io.find_inputs` left out) is recorded in the run
    record.

    Raises:
        BatchOptionError: see :func:`check_options`; or ``out_dir`` holds a ``results.csv``
            with columns this aacscore cannot migrate.
    """
    kwargs = dict(scorer_kwargs or {})
    check_options(kwargs, jobs, out_dir)
    runner: Engine = LocalEngine() if engine is None else engine
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        writer = ResultsWriter(out / "results.csv")
    except ValueError as e:  # a results.csv this aacscore did not write
        raise BatchOptionError(f"--out: {e}") from None
    scorer = Scorer(**kwargs)
    settings = batch_settings(scorer)
    digests = [input_sha256(it) for it in items]
    plans = plan_batch(items, digests, writer.rows, settings.hash, retry_failed=retry_failed)
    run_json = out / "run.json"
    runs = _read_runs(run_json)
    record: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(),
        "finished": None,
        "arguments": arguments or {},
        "environment": environment_info(),
        "settings": {"hash": settings.hash, **settings.values},
        "n_inputs": len(items),
        "skipped_inputs": [s.as_dict() for s in skipped_inputs],
        "jobs": jobs,
        "engine": runner.name,
    }
    if part is not None:
        record["part"] = part.as_dict()
    try:
        record["models"] = scorer.models_info()
    except Exception as e:  # models missing: every case fails below with the same reason
        record["models"] = {"error": str(e)}
    write_json(run_json, {"runs": [*runs, record]})

    row_of: dict[int, int] = {}  # input index -> row id
    outputs_added = 0
    changes: dict[int, dict[str, str]] = {}
    for i, p in enumerate(plans):
        if p.action is not Action.RESUME:
            continue
        assert p.row is not None
        try:
            added, updates = complete_case(
                scorer,
                p.item,
                writer.rows[p.row],
                out,
                overlay=overlay,
                dicom_out=dicom_out,
                include_patient_id=include_patient_id,
            )
        except Exception as e:  # the case JSON or film cannot be used: score it again
            log.warning("%s: scoring again (%s: %s)", p.item.name, type(e).__name__, e)
            plans[i] = replace(p, action=Action.RESCORE, row=None, replaces=(p.row,))
            continue
        outputs_added += added
        if updates:
            changes[p.row] = updates
        row_of[i] = p.row
    writer.update(changes)
    todo = [i for i, p in enumerate(plans) if p.action in (Action.SCORE, Action.RESCORE)]
    if on_skip is not None:
        on_skip(len(items) - len(todo))

    def done(task: CaseTask, res: Result) -> None:
        res = res.without_stages()
        row_of[task.index] = writer.write(res, task.replaces)
        if on_result is not None:
            on_result(res)

    def start(task: CaseTask) -> None:
        for rid in task.replaces:  # drawn from what is scored again
            _remove_outputs(out, writer.rows[rid]["file"])

    ids = CaseIds(settings=settings.hash)
    tasks = [
        CaseTask(i, plans[i].item, replace(ids, sha256=plans[i].sha256), plans[i].replaces)
        for i in todo
    ]
    job = CaseJob(kwargs, out, overlay, dicom_out, include_patient_id, jobs)
    record.update(runner.run(tasks, job, scorer, start, done))
    first_index: dict[str, int] = {}
    for i, it in enumerate(items):
        first_index.setdefault(it.name, i)
    for i, p in enumerate(plans):
        if p.action is Action.DUPLICATE and p.same_as is not None:
            src = first_index[p.same_as]
            if src in row_of:
                row_of[i] = row_of[src]
    writer.reorder([row_of[i] for i in range(len(items)) if i in row_of])
    rows = writer.rows
    actions = [p.action for p in plans]
    summary = BatchSummary(
        out_dir=out,
        n_inputs=len(items),
        n_skipped=actions.count(Action.RESUME),
        counts=counts(r["status"] for r in rows.values()),
        results_csv=out / "results.csv",
        run_json=run_json,
        input_counts=counts(rows[row_of[i]]["status"] for i in range(len(items)) if i in row_of),
        scored=actions.count(Action.SCORE),
        rescored=actions.count(Action.RESCORE),
        duplicates=actions.count(Action.DUPLICATE),
        outputs_added=outputs_added,
    )
    record.update(
        finished=datetime.now(timezone.utc).isoformat(),
        scored=summary.scored,
        rescored=summary.rescored,
        resumed=summary.n_skipped,
        duplicates=summary.duplicates,
        outputs_added=outputs_added,
        n_skipped_already_done=summary.n_skipped,
        duplicate_inputs=[
            {"file": p.item.name, "same_as": p.same_as}
            for p in plans
            if p.action is Action.DUPLICATE
        ],
        counts=summary.counts,
        input_counts=summary.input_counts,
    )
    write_json(run_json, {"runs": [*runs, record]})
    _write_summary(out)
    return summary


def _write_summary(out: Path) -> None:
    """Write ``OUT/summary.html``; a problem is logged, never raised (the batch is done)."""
    from aacscore.outputs.summary_html import write_summary

    try:
        write_summary(out)
    except Exception as e:  # the page is a convenience: it must not fail a finished batch
        log.warning("%s: summary.html not written: %s", out, e)
