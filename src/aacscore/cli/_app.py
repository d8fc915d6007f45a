"""The typer application shared by all command modules."""

from __future__ import annotations

import logging

import typer
from rich.console import Console

from aacscore._version import __version__

app = typer.Typer(
    name="aacscore",
    help="Kauppila AAC-24 scoring of abdominal aortic calcification on lateral lumbar radiographs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err_console = Console(stderr=True)


def require_device(device: str) -> None:
    """Exit with status 2 and a clear message when the torch ``device`` cannot be used here."""
    if device == "cpu":
        return
    import torch

    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        err_console.print(f"[red]--device {device} is not usable here:[/red] {exc}")
        raise typer.Exit(2) from exc


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"aacscore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
) -> None:
    """aacscore command-line interface."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    app()
