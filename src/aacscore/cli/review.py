"""``aacscore review export``: reviews as the reference and training files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from aacscore.cli._app import app, err_console

review_app = typer.Typer(
    help="Reviews made with `aacscore serve` (OUT/reviews.sqlite).", no_args_is_help=True
)
app.add_typer(review_app, name="review")


@review_app.command("export")
def export(
    out: Path = typer.Argument(..., help="Results folder with reviews.sqlite."),
    labels: Path = typer.Option(..., "--out", "-o", help="Folder to write the labels to."),
) -> None:
    """Write LABELS/reference.csv (aacscore validate --ref), LABELS/grades.csv (aacscore train
    score --data) and LABELS/spine/ (aacscore train spine --data) from the latest accepted
    review of each case; rejected and pending cases are left out."""
    from aacscore.serve.cases import FolderError
    from aacscore.serve.export import ExportError, export_reviews
    from aacscore.serve.store import StoreError

    try:
        summary = export_reviews(out, labels)
    except (ExportError, FolderError, StoreError) as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"wrote {summary.n_reference} reference rows ({summary.reference_csv}), "
        f"{summary.n_grades} training grades ({summary.grades_csv}), "
        f"{summary.n_spine} corrected spines ({summary.spine_dir}); "
        f"{len(summary.skipped)} reviewed cases left out (see export.json)"
    )
