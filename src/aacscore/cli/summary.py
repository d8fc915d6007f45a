"""``aacscore summary``: (re)write OUT/summary.html from an output folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from aacscore.cli._app import app, err_console
from aacscore.outputs.summary_html import MAX_THUMBNAILS, SummaryError, write_summary


@app.command("summary")
def summary(
    out: Path = typer.Argument(..., help="Output folder of `aacscore score`."),
    max_thumbnails: int = typer.Option(
        MAX_THUMBNAILS,
        "--max-thumbnails",
        min=0,
        help="Most overlay thumbnails on the contact sheet.",
    ),
) -> None:
    """(Re)write OUT/summary.html: one self-contained offline page of the batch (counts,
    AAC-24 histogram, failures, films to review, overlay thumbnails, run record).

    Works on a folder still being written. Research use, not a medical device."""
    try:
        path = write_summary(out, max_thumbnails=max_thumbnails)
    except SummaryError as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {path}")
