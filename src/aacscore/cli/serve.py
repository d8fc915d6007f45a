"""``aacscore serve``: review a results folder in the browser; a REST scoring service."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from aacscore.cli._app import app, err_console


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(2)


@app.command("serve")
def serve(
    out: Path = typer.Argument(Path("."), help="Results folder of `aacscore score`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    token: str = typer.Option(
        None,
        "--token",
        help="Required on every request (Authorization: Bearer, or ?token= once in the "
        "browser); needed for any host but loopback. Default: $AACSCORE_TOKEN.",
        show_default=False,
    ),
    reviewer: str = typer.Option("reviewer", "--reviewer", help="Name saved with reviews."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Server processes (each loads the models once)."
    ),
    groups: str = typer.Option("lewis", "--groups", help="lewis | ckd | cut-offs like 0,4,15"),
    spine_model: str = typer.Option(None, "--spine-model", help="Spine weights folder."),
    score_model: str = typer.Option(None, "--score-model", help="Score weights folder."),
    backend: str = typer.Option(None, "--backend", help="onnx | torch | auto"),
) -> None:
    """Serve the worklist, the case viewer (corrections saved to OUT/reviews.sqlite) and the
    REST API (POST /api/score; OpenAPI at /docs). Research use, not a medical device."""
    from aacscore.serve import ServeDependencyError, require_serve_dependencies

    try:
        require_serve_dependencies()
    except ServeDependencyError as e:
        raise _fail(str(e)) from None
    import json
    import os

    import uvicorn

    from aacscore.serve.app import (
        CONFIG_ENV,
        TOKEN_ENV,
        BindError,
        check_bind,
        create_app,
        token_from_env,
    )
    from aacscore.serve.cases import FolderError
    from aacscore.serve.store import StoreError

    secret = token_from_env(token)
    kwargs = {"groups": groups, "spine_model": spine_model, "score_model": score_model}
    kwargs["backend"] = backend
    scorer_kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        check_bind(host, secret)
        application = create_app(out, secret, reviewer=reviewer, scorer_kwargs=scorer_kwargs)
    except (BindError, FolderError, StoreError) as e:
        raise _fail(str(e)) from None
    url = f"http://{host}:{port}/" + (f"?token={secret}" if secret else "")
    typer.echo(f"serving {out} on {url} (Ctrl-C stops)")
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level="warning")
        return
    config = {"out_dir": str(out.resolve()), "reviewer": reviewer, "scorer_kwargs": scorer_kwargs}
    os.environ[CONFIG_ENV] = json.dumps(config)
    if secret:
        os.environ[TOKEN_ENV] = secret
    uvicorn.run(
        "aacscore.serve.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )
