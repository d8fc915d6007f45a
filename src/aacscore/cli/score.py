"""``aacscore score``: score films, folders and zip archives into an output folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import TextColumn

from aacscore._progress import progress_bar
from aacscore.cli._app import app, console, err_console
from aacscore.io import RadiographError, find_inputs

if TYPE_CHECKING:
    from aacscore.batch import Engine

EPILOG = (
    "Exit status: 0 every input scored (ok or warning); 1 some or all inputs failed (see "
    "error_code in OUT/results.csv; a missing file is a failed row, unreadable); 2 nothing was "
    "scored because of a problem found before any work (a bad option, an unreadable zip or "
    "list file, no radiograph among the inputs)."
)


def _usage_error(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(2)


def _engine(name: str, address: str | None, cpus: float, gpus: float) -> Engine | None:
    """The engine of ``--engine`` (None: the local default).

    Raises:
        BatchOptionError: an unknown engine, a Ray option without ``--engine ray``, Ray
            missing, or a bad value."""
    from aacscore.batch import BatchOptionError, EngineKind

    try:
        kind = EngineKind(name.strip().lower())
    except ValueError:
        choices = " or ".join(k.value for k in EngineKind)
        raise BatchOptionError(f"--engine: {name!r} is not an engine: give {choices}") from None
    if kind is EngineKind.LOCAL:
        given = [
            name
            for name, value, default in (
                ("--address", address, None),
                ("--num-cpus-per-worker", cpus, 1.0),
                ("--num-gpus-per-worker", gpus, 0.0),
            )
            if value != default
        ]
        if given:
            raise BatchOptionError(f"{', '.join(given)}: only with --engine ray")
        return None
    from aacscore.batch_ray import RayEngine, require_ray

    require_ray()
    return RayEngine(address=address, num_cpus_per_worker=cpus, num_gpus_per_worker=gpus)


@app.command("score", epilog=EPILOG)
def score(
    inputs: list[str] = typer.Argument(..., help="DICOM/PNG/JPEG/TIFF files, folders, zips."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    groups: str = typer.Option("lewis", "--groups", help="lewis | ckd | cut-offs like 0,4,15"),
    overlay: bool = typer.Option(False, "--overlay", help="Write an overlay PNG per case."),
    dicom_out: bool = typer.Option(
        False,
        "--dicom-out",
        help="For DICOM inputs also write a DICOM Comprehensive SR (OUT/dicom/<case>_sr.dcm) "
        "in the film's study, plus a Secondary Capture of the overlay (<case>_sc.dcm) when "
        "--overlay is given. Research use, not a medical device.",
    ),
    jobs: str = typer.Option(
        "auto",
        "--jobs",
        "-j",
        help="Worker processes, or auto: one process per 8 CPU cores and per 8 films to score "
        "(one below 16 cores), each with cores/processes threads.",
    ),
    spacing: float | None = typer.Option(
        None,
        "--spacing",
        help="Pixel spacing in mm for every input (overrides the header); 0.01 to 5.",
    ),
    spine_model: str | None = typer.Option(
        None, "--spine-model", help="Spine weights folder or nnunet:RESULTS_FOLDER."
    ),
    score_model: str | None = typer.Option(None, "--score-model", help="Score weights folder."),
    no_tta: bool = typer.Option(False, "--no-tta", help="Skip test-time augmentation."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="On resume, score again the inputs that failed before."
    ),
    ignore_header: bool = typer.Option(
        False,
        "--ignore-header",
        help="Score films whose DICOM header says they are not lateral lumbar radiographs "
        "(AP/PA view, another region, a non-X-ray modality) instead of refusing them; they "
        "are flagged header_ignored.",
    ),
    ignore_view: bool = typer.Option(
        False,
        "--ignore-view",
        help="Score films that the view classifier refuses (it judges them not to be lateral "
        "lumbar films); they are flagged view_uncertain. For films from a site where the "
        "classifier has been checked to be wrong.",
    ),
    backend: str = typer.Option(
        "auto",
        "--backend",
        help="What runs the networks: onnx (ONNX Runtime, no PyTorch needed), torch (needs "
        "aacscore[train]) or auto: onnx where the model folder has graphs exported from its "
        "weights, else torch.",
    ),
    include_patient_id: bool = typer.Option(
        False,
        "--include-patient-id",
        help="Fill the patient_id column of results.csv from the DICOM header (identifying "
        "data; empty by default).",
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="Who scores the films: local (this machine's processes) or ray (Ray actors, one "
        "model per actor; needs aacscore[ray]; --jobs is then the number of actors, auto: the "
        "cluster's CPUs / --num-cpus-per-worker). Inputs and OUT must be on a file system that "
        "every Ray node sees at the same path.",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="--engine ray: the cluster to join, auto or HOST:PORT (default: start a local Ray "
        "instance of this machine's cores on 127.0.0.1).",
    ),
    num_cpus_per_worker: float = typer.Option(
        1.0,
        "--num-cpus-per-worker",
        help="--engine ray: CPUs each actor reserves (its network threads).",
    ),
    num_gpus_per_worker: float = typer.Option(
        0.0, "--num-gpus-per-worker", help="--engine ray: GPUs each actor reserves."
    ),
    num_parts: int | None = typer.Option(
        None,
        "--num-parts",
        help="Split the inputs into N parts (e.g. a Slurm array of N jobs, each into its own "
        "OUT; join them with aacscore merge). The split is by each input's path relative to the "
        "folder given (a file given: its name), the same on every machine.",
    ),
    part_id: int | None = typer.Option(
        None,
        "--part-id",
        help="Score part K (0 to N-1) of --num-parts N, e.g. $SLURM_ARRAY_TASK_ID.",
    ),
) -> None:
    """Score lateral lumbar radiographs (Kauppila AAC-24) into OUT/results.csv.

    Re-running into the same OUT scores only what is new or changed: a film whose bytes and
    settings (models, groups, spacing, TTA, --ignore-*) match a row is done, and outputs asked
    for now (--overlay, --dicom-out) are added without scoring it again. Nothing under OUT is
    read as input; sidecar files (*.json, the simulator's label maps) and aacscore's own
    outputs (overlay PNGs, DICOM SR and secondary captures) are skipped and listed in
    OUT/run.json (skipped_inputs)."""
    from aacscore.batch import (
        BatchOptionError,
        check_options,
        parse_part,
        score_batch,
        select_part,
    )

    kwargs = {
        "spine_model": spine_model,
        "score_model": score_model,
        "groups": groups,
        "tta": not no_tta,
        "spacing_mm": spacing,
        "ignore_header": ignore_header,
        "ignore_view": ignore_view,
        "backend": backend,
    }
    try:
        check_options(kwargs, jobs, out)
        part = parse_part(num_parts, part_id)
        runner = _engine(engine, address, num_cpus_per_worker, num_gpus_per_worker)
        found = find_inputs(inputs, exclude=[out], missing_ok=True)
    except (BatchOptionError, RadiographError) as e:
        raise _usage_error(str(e)) from None
    items = list(found.items)
    if not any(it.path.exists() for it in items):
        what = "none of the inputs exists" if items else "no radiographs found"
        err_console.print(
            f"[red]error:[/red] nothing to score: {what} in {', '.join(inputs)}", highlight=False
        )
        for skip in found.skipped[:5]:
            err_console.print(f"  skipped {skip.file}: {skip.reason}", highlight=False)
        if len(found.skipped) > 5:
            err_console.print(f"  ... and {len(found.skipped) - 5} more", highlight=False)
        raise typer.Exit(2)
    if part is not None:
        items = select_part(items, inputs, part)
        err_console.print(
            f"part {part.part_id} of {part.num_parts}: {len(items)} of {len(found.items)} inputs",
            highlight=False,
        )
    args = {
        "inputs": inputs,
        "out": str(out),
        "overlay": overlay,
        "dicom_out": dicom_out,
        **kwargs,
        "jobs": jobs,
        "retry_failed": retry_failed,
        "include_patient_id": include_patient_id,
        "engine": engine,
        "address": address,
        "num_cpus_per_worker": num_cpus_per_worker,
        "num_gpus_per_worker": num_gpus_per_worker,
        "num_parts": num_parts,
        "part_id": part_id,
    }
    with progress_bar(
        "scoring", extra_columns=[TextColumn("{task.description}")], console=err_console
    ) as progress:
        task = progress.add_task("", total=len(items))

        def on_skip(n: int) -> None:
            if n:
                progress.update(task, advance=n, description=f"{n} already done")

        def on_result(r: object) -> None:
            progress.update(task, advance=1, description=str(getattr(r, "file", "")))

        try:
            summary = score_batch(
                items,
                out,
                kwargs,
                jobs=jobs,
                overlay=overlay,
                dicom_out=dicom_out,
                retry_failed=retry_failed,
                include_patient_id=include_patient_id,
                arguments=args,
                skipped_inputs=found.skipped,
                on_result=on_result,
                on_skip=on_skip,
                engine=runner,
                part=part,
            )
        except BatchOptionError as e:
            raise _usage_error(str(e)) from None
    c = summary.input_counts
    if found.skipped:
        err_console.print(f"{len(found.skipped)} file(s) skipped (see {summary.run_json})")
    done = f"{summary.n_skipped} already done"
    if summary.rescored:
        done += f", {summary.rescored} scored again"
    if summary.duplicates:
        done += f", {summary.duplicates} duplicate(s)"
    if summary.outputs_added:
        done += f", outputs added to {summary.outputs_added}"
    console.print(
        f"{summary.n_inputs} inputs ({done}): {c['ok']} ok, {c['warning']} warning, "
        f"{c['failed']} failed -> {summary.results_csv}"
    )
    raise typer.Exit(summary.exit_code)
