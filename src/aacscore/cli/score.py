"""``aacscore score``: score films, folders and zip archives into an output folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import TextColumn

from aacscore._progress import progress_bar
from aacscore.cli._app import app, console, err_console
from aacscore.io import RadiographError, find_inputs


@app.command("score")
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
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Parallel worker processes."),
    spacing: float | None = typer.Option(
        None, "--spacing", help="Pixel spacing in mm for every input (overrides the header)."
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
) -> None:
    """Score lateral lumbar radiographs (Kauppila AAC-24) into OUT/results.csv.

    Nothing under OUT is read as input; sidecar files (*.json, the simulator's label maps) and
    aacscore's own outputs (overlay PNGs, DICOM SR and secondary captures) are skipped and
    listed in OUT/run.json (skipped_inputs)."""
    from aacscore.batch import score_batch
    from aacscore.kauppila import parse_groups

    try:
        parse_groups(groups)
        found = find_inputs(inputs, exclude=[out])
    except (ValueError, RadiographError) as e:
        err_console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    items = list(found.items)
    if not items:
        err_console.print("[red]error:[/red] no radiographs found in the inputs")
        for skip in found.skipped[:5]:
            err_console.print(f"  skipped {skip.file}: {skip.reason}")
        raise typer.Exit(2)
    kwargs = {
        "spine_model": spine_model,
        "score_model": score_model,
        "groups": groups,
        "tta": not no_tta,
        "spacing_mm": spacing,
        "ignore_header": ignore_header,
        "ignore_view": ignore_view,
    }
    args = {
        "inputs": inputs,
        "out": str(out),
        "overlay": overlay,
        "dicom_out": dicom_out,
        **kwargs,
        "jobs": jobs,
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

        summary = score_batch(
            items,
            out,
            kwargs,
            jobs=jobs,
            overlay=overlay,
            dicom_out=dicom_out,
            retry_failed=retry_failed,
            arguments=args,
            skipped_inputs=found.skipped,
            on_result=on_result,
            on_skip=on_skip,
        )
    c = summary.counts
    if found.skipped:
        err_console.print(f"{len(found.skipped)} file(s) skipped (see {summary.run_json})")
    console.print(
        f"{summary.n_inputs} inputs ({summary.n_skipped} already done): "
        f"{c['ok']} ok, {c['warning']} warning, {c['failed']} failed -> {summary.results_csv}"
    )
