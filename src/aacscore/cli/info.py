"""``aacscore info``: versions, device and where the weights are."""

from __future__ import annotations

import json

import typer

from aacscore.cli._app import app, console
from aacscore.info import environment_info


@app.command("info")
def info(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Show versions of aacscore and its main dependencies, the compute device and weights."""
    data = environment_info()
    if json_out:
        typer.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            console.print(f"[bold]{key}[/bold]")
            for k, v in value.items():
                console.print(f"  {k}: {v}")
        else:
            console.print(f"[bold]{key}[/bold]: {value}")
