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
    data: list[Path] | None = typer.Option(
        None,
        "--data",
        help="Folder of training shards (default: data/views_SEED, generated if missing); "
        "the first is generated if missing; repeat to pool folders.",
    ),
    val_data: list[Path] | None = typer.Option(
        None,
        "--val-data",
        help="Folder of validation shards (default: data/views_SEED+1, generated if missing); "
        "repeat to pool folders.",
    ),
    films: list[Path] | None = typer.Option(
        None,
        "--films",
        help="Folder of full-size simulated films (aacscore simulate) cut into styled lateral "
        "and spot training images (shards cached in FOLDER_viewshards); repeatable.",
    ),
    val_films: list[Path] | None = typer.Option(
        None,
        "--val-films",
        help="Like --films for validation (FOLDER_viewshards_val): the whole films as read, "
        "unstyled, and spot crops.",
    ),
    film_copies: int = typer.Option(
        2, "--film-copies", min=1, help="Training images of each class per --films film."
    ),
    films_as_read: bool = typer.Option(
        False,
        "--films-as-read/--no-films-as-read",
        help="Also train on every --films film whole, as read (collimation and shutter borders "
        "kept), with one spot crop each (shards cached in FOLDER_viewshards_asread).",
    ),
    style_prob: float = typer.Option(
        0.0,
        "--style-prob",
        min=0.0,
        max=1.0,
        help="Share of training images restyled in the batch (random conv nets, tone curves, "
        "CLAHE, noise, JPEG).",
    ),
    max_lateral_refused: float = typer.Option(
        0.005,
        "--max-lateral-refused",
        min=0.0,
        max=1.0,
        help="The model's acceptance threshold is the largest that refuses at most this share "
        "of the validation lateral images.",
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
    from aacscore.training.view import build_film_shards, build_view_dataset, train_view

    require_device(device)
    train_dirs = list(data or [Path("data") / f"views_{seed}"])
    val_dirs = list(val_data or [Path("data") / f"views_{seed + 1}"])
    try:
        build_view_dataset(train_dirs[0], n_per_class, seed, jobs=jobs)
        build_view_dataset(val_dirs[0], n_val_per_class, seed + 1, jobs=jobs)
        for i, f in enumerate(films or []):
            train_dirs.append(
                build_film_shards(
                    f, Path(f"{f}_viewshards"), seed * 100 + i, copies=film_copies, jobs=jobs
                )
            )
            if films_as_read:
                train_dirs.append(
                    build_film_shards(
                        f,
                        Path(f"{f}_viewshards_asread"),
                        seed * 100 + 50 + i,
                        copies=1,
                        styled=False,
                        jobs=jobs,
                    )
                )
        for i, f in enumerate(val_films or []):
            val_dirs.append(
                build_film_shards(
                    f,
                    Path(f"{f}_viewshards_val"),
                    (seed + 1) * 100 + i,
                    copies=1,
                    styled=False,
                    jobs=jobs,
                )
            )
        config = ViewTrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            num_threads=threads,
            device=device,
            max_minutes=time_budget,
            jobs=jobs,
            style_prob=style_prob,
            max_lateral_refused=max_lateral_refused,
        )
        result = train_view(
            train_dirs,
            out,
            config,
            val_data=val_dirs,
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
        f"max negative accepted {v['max_negative_accepted']:.4f} at accept_p_lateral "
        f"{v['accept_p_lateral']}; {result.train_time_s} s)"
        + (f"; installed to {result.installed_to}" if result.installed_to else "")
    )
