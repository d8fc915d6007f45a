"""``aacscore train spine`` and ``aacscore export-nnunet``: thin wrappers over aacscore.training.

``train_app`` is the ``train`` sub-command group; other stages add their own ``train <stage>``
commands to it (``from aacscore.cli.spine import train_app``).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from aacscore.cli._app import app, console, err_console, require_device
from aacscore.spine.weights import default_model_dir

train_app = typer.Typer(
    name="train",
    help="Train the models of the pipeline (spine segmentation, ...).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(train_app, name="train")


def _command_line(ctx: typer.Context) -> str:
    """The command as typed: command path plus the options given on the command line."""
    parts = [ctx.command_path]
    for param in ctx.command.params:
        if param.name is None or getattr(param, "param_type_name", "") != "option":
            continue
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params[param.name]
        if getattr(param, "is_flag", False):
            names = param.opts if value else param.secondary_opts
            parts.append(names[0] if names else param.opts[0])
        elif isinstance(value, (list, tuple)):
            for v in value:
                parts += [param.opts[0], shlex.quote(str(v))]
        else:
            parts += [param.opts[0], shlex.quote(str(value))]
    return " ".join(parts)


@train_app.command("spine")
def train_spine_cmd(
    ctx: typer.Context,
    data: list[Path] = typer.Option(
        ...,
        "--data",
        help="Folder of training films: simulator output, or <stem>.<dcm|png|tif|jpg|nii.gz> "
        "images with <stem>_labels.png or <stem>_labels.nii.gz label maps (+ optional "
        "<stem>.json with spacing_mm, anterior_side). "
        "Repeat to pool several folders.",
    ),
    out: Path = typer.Option(
        Path("runs/spine"), "--out", help="Run folder: cache, checkpoints, history, OUT/model."
    ),
    model_dir: Path | None = typer.Option(
        None,
        "--model-dir",
        help="Where the final weights, plans.json, metrics.json and MODEL_CARD.md are installed "
        "(default: the package's models/spine folder).",
    ),
    install: bool = typer.Option(
        True, "--install/--no-install", help="Install the model (else only OUT/model)."
    ),
    epochs: int = typer.Option(20, "--epochs", min=1, help="Maximum number of epochs."),
    seed: int = typer.Option(
        0, "--seed", help="Random seed (split, initialisation, augmentation)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the run folder's last checkpoint."
    ),
    val_fraction: float = typer.Option(
        0.1, "--val-fraction", min=0.0, max=0.9, help="Share of cases held out for validation."
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Films per step."),
    patience: int = typer.Option(
        5, "--patience", min=1, help="Early stopping: epochs without gain."
    ),
    lr: float = typer.Option(
        1e-2,
        "--lr",
        help="Initial learning rate (AdamW, poly decay); lower it (e.g. 1e-3) with --init-from.",
    ),
    init_from: Path | None = typer.Option(
        None,
        "--init-from",
        help="Start from the U-Net and orientation weights of this spine model folder "
        f"(fine-tuning; the shipped model is {default_model_dir()}); its plans.json must match "
        "the run's.",
    ),
    style_prob: float = typer.Option(
        0.7,
        "--style-prob",
        min=0.0,
        max=1.0,
        help="Share of training films restyled (other renderers, vendors, phone photos); 0: off.",
    ),
    max_cases: int | None = typer.Option(
        None, "--max-cases", min=2, help="Use only the first N cases."
    ),
    steps_per_epoch: int | None = typer.Option(
        None, "--steps-per-epoch", min=1, help="Steps per epoch (default: one pass over the data)."
    ),
    jobs: int = typer.Option(2, "--jobs", min=1, help="Processes for decoding/preprocessing."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch CPU threads."),
    device: str = typer.Option(
        "cpu", "--device", help="torch device for the networks: cpu, cuda, cuda:N."
    ),
    max_minutes: float | None = typer.Option(
        None,
        "--max-minutes",
        min=1.0,
        help="Time budget: fit the number of epochs (and the learning-rate decay) into it.",
    ),
    anterior: str = typer.Option(
        "left",
        "--assume-anterior",
        help="Anterior side of films that have no .json annotation (left = canonical).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train the spine U-Net + orientation classifier and export them with a model card."""
    from aacscore.training.errors import SpineDataError, TrainingError
    from aacscore.training.spine import SpineTrainConfig, train_spine
    from aacscore.training.spine_data import AugmentConfig
    from aacscore.vertebrae import Side

    try:
        side = Side.parse(anterior)
    except ValueError:
        err_console.print(f"[red]--assume-anterior must be left or right, got {anterior!r}[/red]")
        raise typer.Exit(2) from None
    require_device(device)
    config = SpineTrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        val_fraction=val_fraction,
        patience=patience,
        max_cases=max_cases,
        steps_per_epoch=steps_per_epoch,
        default_anterior_side=side,
        num_threads=threads,
        jobs=jobs,
        device=device,
        max_minutes=max_minutes,
        init_from=init_from,
        augment=AugmentConfig(p_style=style_prob),
    )
    try:
        result = train_spine(
            data[0] if len(data) == 1 else data,
            out,
            config,
            resume=resume,
            install=install,
            install_dir=model_dir,
            progress=progress,
            command=_command_line(ctx),
        )
    except (SpineDataError, TrainingError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    m = result.metrics
    console.print(
        f"best epoch {result.best_epoch} of {result.epochs_run}"
        f"{' (stopped early)' if result.stopped_early else ''}: "
        f"Dice L1-L5 {m['dice_l1_l5']:.4f}, levels {m['level_identification']:.3f}, "
        f"orientation {m['orientation_accuracy']:.3f}, "
        f"corner error median {m.get('corner_error_median_mm', float('nan')):.2f} mm"
    )
    console.print(f"model written to {result.model_dir}")
    if result.installed_to is not None:
        console.print(f"installed to {result.installed_to}")


@app.command("export-nnunet")
def export_nnunet_cmd(
    data: Path = typer.Argument(..., help="Simulator output or films + <stem>_labels.png/.nii.gz."),
    out: Path = typer.Argument(..., help="nnU-Net raw folder (nnUNet_raw)."),
    dataset_id: int = typer.Option(..., "--id", min=1, max=999, help="nnU-Net dataset id."),
    max_side: int | None = typer.Option(
        None,
        "--max-side",
        min=64,
        help="Downsize films whose longest side exceeds this (recorded in dataset.json; "
        "the nnunet: spine model downsizes films the same way at prediction).",
    ),
    canonical: bool = typer.Option(
        False, "--canonical", help="Mirror films with the anterior on the right (needs .json)."
    ),
) -> None:
    """Write a dataset as nnU-Net v2 DatasetNNN_AACSpine (imagesTr, labelsTr, dataset.json)."""
    from aacscore.training.errors import SpineDataError
    from aacscore.training.nnunet_export import export_nnunet

    try:
        summary = export_nnunet(data, out, dataset_id, max_side=max_side, canonical=canonical)
    except (SpineDataError, ValueError, OSError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"wrote {summary.n_cases} cases to {summary.dataset_dir}")
