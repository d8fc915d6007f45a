"""``aacscore train view``: thin wrapper over :mod:`aacscore.training.view`."""

from __future__ import annotations

from pathlib import Path

import typer

from aacscore.cli._app import console, err_console, require_device
from aacscore.cli.spine import _command_line, train_app


@train_app.command("view")
def train_view_cmd(
    ctx: typer.Context,
    out: Path = typer.Option(
        Path("runs/view"), "--out", help="Run folder: checkpoints, history, OUT/model."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Folder of training shards (default: data/views_SEED, generated if missing).",
    ),
    val_data: Path | None = typer.Option(
        None,
        "--val-data",
        help="Folder of validation shards (default: data/views_SEED+1, generated if missing).",
    ),
    n_per_class: int = typer.Option(
        750, "--n-per-class", min=1, help="Training images per class to generate."
    ),
    n_val_per_class: int = typer.Option(
        200, "--n-val-per-class", min=1, help="Validation images per class to generate."
    ),
    seed: int = typer.Option(11, "--seed", help="Seed of the training images and the run."),
    epochs: int = typer.Option(12, "--epochs", min=1, help="Maximum number of epochs."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per step."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate (AdamW, cosine decay)."),
    time_budget: float | None = typer.Option(
        None, "--time-budget", min=1.0, help="Minutes: fit the number of epochs into it."
    ),
    jobs: int = typer.Option(2, "--jobs", min=1, help="Processes generating images."),
    threads: int | None = typer.Option(2, "--threads", min=1, help="torch CPU threads."),
    device: str = typer.Option("cpu", "--device", help="torch device: cpu, cuda, cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    install: bool = typer.Option(
        True, "--install/--no-install", help="Install the model (else only OUT/model)."
    ),
    model_dir: Path | None = typer.Option(
        None, "--model-dir", help="Install folder (default: the package's models/view)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train the view/region classifier of the input gate on procedural images."""
    from aacscore.training.config import ViewTrainConfig
    from aacscore.training.errors import TrainingError
    from aacscore.training.view import build_view_dataset, train_view

    require_device(device)
    train_dir = data or Path("data") / f"views_{seed}"
    val_dir = val_data or Path("data") / f"views_{seed + 1}"
    try:
        build_view_dataset(train_dir, n_per_class, seed, jobs=jobs)
        build_view_dataset(val_dir, n_val_per_class, seed + 1, jobs=jobs)
        config = ViewTrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            num_threads=threads,
            device=device,
            max_minutes=time_budget,
            jobs=jobs,
        )
        result = train_view(
            train_dir,
            out,
            config,
            val_data=val_dir,
            install=install,
            install_dir=model_dir,
            resume=resume,
            progress=progress,
            command=_command_line(ctx),
        )
    except (TrainingError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    v = result.metrics["validation"]
    console.print(
        f"view model: {result.model_dir} (accuracy {v['accuracy']:.4f}, balanced "
        f"{v['balanced_accuracy']:.4f}, lateral refused {v['lateral_wrongly_refused']:.4f}, "
        f"max negative accepted {v['max_negative_accepted']:.4f}; {result.train_time_s} s)"
        + (f"; installed to {result.installed_to}" if result.installed_to else "")
    )
