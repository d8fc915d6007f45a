"""``aacscore merge``: join output folders of ``aacscore score`` (e.g. the parts of a
scheduler's array of jobs) into one."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from aacscore.cli._app import app, console, err_console

EPILOG = (
    "Exit status: 0 every merged row scored (ok or warning); 1 some merged rows failed (see "
    "error_code in OUT/results.csv); 2 nothing was merged (a folder that is not an output of "
    "aacscore score, OUT among the parts, parts that disagree)."
)


@app.command("merge", epilog=EPILOG)
def merge(
    parts: list[Path] = typer.Argument(..., help="Output folders of aacscore score."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder to merge into."),
    allow_mixed_settings: bool = typer.Option(
        False,
        "--allow-mixed-settings",
        help="Keep both rows of a film scored with different settings (models, groups, "
        "spacing, TTA, --ignore-*) in two parts, instead of refusing the merge.",
    ),
) -> None:
    """Merge OUT_PART folders into OUT: one results.csv (a film scored alike in several parts
    is one row), the case, overlay and DICOM files, every part's run records and a new
    summary.html.

    Refused (nothing written): a file with different content or settings in two parts, a file
    of OUT that differs from the part's. An OUT that holds an earlier merge is merged into:
    merging again after the parts grew adds their new rows."""
    from aacscore.merge import MergeError, merge_outputs

    try:
        summary = merge_outputs(parts, out, allow_mixed_settings=allow_mixed_settings)
    except MergeError as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2) from None
    c = summary.counts
    if len(summary.settings) > 1:
        err_console.print(
            f"warning: the rows were scored with {len(summary.settings)} different settings "
            f"({', '.join(summary.settings)}); see OUT/run.json",
            highlight=False,
        )
    console.print(
        f"{len(summary.parts)} parts: {summary.rows} rows ({summary.duplicates} duplicate(s) "
        f"dropped): {c['ok']} ok, {c['warning']} warning, {c['failed']} failed -> "
        f"{summary.results_csv}",
        highlight=False,
    )
    raise typer.Exit(summary.exit_code)
