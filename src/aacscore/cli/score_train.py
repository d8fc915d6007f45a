"""``aacscore train score``: thin wrapper over :func:`aacscore.training.score.train_score`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from aacscore.cli._app import console, err_console, require_device
from aacscore.cli.spine import train_app


@train_app.command("score")
def train_score_cmd(
    data: list[Path] = typer.Option(
        ...,
        "--data",
        help="Simulator output folder (case_*.json + films), or a CSV of your films with a "
        "'file' column and the 8 segment grades (L1_anterior..L4_posterior) or 'aac24' only. "
        "Repeat to combine sources (e.g. a balanced and a population folder).",
    ),
    out: Path = typer.Option(
        Path("runs/score"), "--out", help="Run folder: band cache, checkpoints, metrics, model."
    ),
    head: str = typer.Option(
        "segments",
        "--head",
        help="segments (8 grades, regression), ordinal (CORAL thresholds) or total "
        "(paper-faithful: total only; the only choice for totals-only CSVs).",
    ),
    epochs: int = typer.Option(40, "--epochs", min=1, help="Maximum number of epochs."),
    seed: int = typer.Option(0, "--seed", help="Seed of split, jitter, init and augmentation."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    model_dir: Path | None = typer.Option(
        None,
        "--model-dir",
        help="Where the final weights, config.json and MODEL_CARD.md are installed "
        "(default: the package's models/score folder).",
    ),
    install: bool = typer.Option(
        True, "--install/--no-install", help="Install the model (else only OUT/model)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Bands per step."),
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate (AdamW, cosine decay)."),
    patience: int = typer.Option(10, "--patience", min=1, help="Early stopping patience."),
    val_fraction: float = typer.Option(
        0.15, "--val-fraction", min=0.01, max=0.9, help="Share of films held out."
    ),
    jitter_mm: float = typer.Option(
        1.5, "--jitter-mm", min=0.0, help="RMS jitter of true corners (simulated data)."
    ),
    n_jitter: int = typer.Option(
        2, "--n-jitter", min=1, help="Jittered copies of each simulated film."
    ),
    max_cases: int | None = typer.Option(
        None, "--max-cases", min=2, help="Use only the first N simulated cases."
    ),
    spine_model: str | None = typer.Option(
        None,
        "--spine-model",
        help="Spine model for CSV films and --spine-copies (folder or nnunet:FOLDER; default: "
        "shipped).",
    ),
    spine_copies: bool = typer.Option(
        False,
        "--spine-copies/--no-spine-copies",
        help="Simulated folders: add one band per film cut from the spine model's own corners "
        "(true grades), so the model learns the spine stage's real errors.",
    ),
    init: Path | None = typer.Option(
        None,
        "--init",
        "--init-from",
        help="Fine-tune: start from this score model folder's weights (same head and band "
        "options), e.g. the shipped model on your own films.",
    ),
    init_backbone_only: bool = typer.Option(
        False,
        "--init-backbone-only/--init-whole",
        help="With --init-from: take only its backbone (its head may differ), e.g. the "
        "total-only baseline started from the segments model's features.",
    ),
    cache: Path | None = typer.Option(
        None, "--cache", help="Band cache folder (default OUT/cache); share it between heads."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (1 is fastest on a busy machine)."
    ),
    balance_groups: bool = typer.Option(
        False,
        "--balance-groups/--no-balance-groups",
        help="Sample films so that each lewis severity group is seen equally often.",
    ),
    calibrate: bool = typer.Option(
        True,
        "--calibrate/--no-calibrate",
        help="Fit an isotonic calibration of the outputs on the validation films.",
    ),
    rows_per_level: int = typer.Option(
        64,
        "--rows-per-level",
        min=4,
        help="Band rows per Kauppila level (multiples of 8 keep the network cells on the levels; "
        "64 rows are ~0.55-0.7 mm each).",
    ),
    mm_per_col: float = typer.Option(
        0.25,
        "--mm-per-col",
        min=0.05,
        help="Band column width in mm (finer keeps small plaques; cost grows as its inverse).",
    ),
    style_prob: float = typer.Option(
        0.0,
        "--style-prob",
        min=0.0,
        max=1.0,
        help="Share of training bands restyled (intensity-only style randomisation; 0: off).",
    ),
    negative_weight: float = typer.Option(
        1.0,
        "--negative-weight",
        min=0.01,
        help="Loss weight of hard-negative films (simulate --distribution negative).",
    ),
    wise_alpha: float = typer.Option(
        1.0,
        "--wise-alpha",
        min=0.0,
        max=1.0,
        help="With --init-from: export (1 - A) x its weights + A x the fine-tuned ones "
        "(weight-space ensembling, WiSE-FT); 1: the fine-tuned weights.",
    ),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", min=0.1, help="Stop training after this many minutes."
    ),
    device: str = typer.Option(
        "cpu", "--device", help="torch device of the network in training: cpu, cuda, cuda:N."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train the Kauppila score model on aortic bands and export it with a model card."""
    from aacscore.aorta import BandGeometry
    from aacscore.score import HEADS
    from aacscore.training.augment import AugmentConfig
    from aacscore.training.errors import TrainingError
    from aacscore.training.score import ScoreTrainConfig, train_score
    from aacscore.training.score_data import (
        GeometryProvider,
        ScoreDataError,
        spine_geometry_provider,
    )

    if head not in HEADS:
        err_console.print(f"[red]error:[/red] --head must be one of {', '.join(HEADS)}")
        raise typer.Exit(2)
    require_device(device)
    if wise_alpha < 1.0 and init is None:
        err_console.print("[red]error:[/red] --wise-alpha below 1 needs --init-from")
        raise typer.Exit(2)
    if init_backbone_only and (init is None or wise_alpha < 1.0):
        err_console.print(
            "[red]error:[/red] --init-backbone-only needs --init-from and no --wise-alpha"
        )
        raise typer.Exit(2)
    config = ScoreTrainConfig(
        head=head,
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        val_fraction=val_fraction,
        jitter_mm=jitter_mm,
        n_jitter=n_jitter,
        max_cases=max_cases,
        num_threads=threads,
        calibrate=calibrate,
        balance_groups=balance_groups,
        geometry=BandGeometry(rows_per_level=rows_per_level, mm_per_col=mm_per_col),
        device=device,
        spine_copies=spine_copies,
        spine_model=spine_model,
        init_from=None if init is None else str(init),
        init_backbone_only=init_backbone_only,
        augment_config=AugmentConfig(style_prob=style_prob),
        negative_weight=negative_weight,
        wise_alpha=wise_alpha,
        max_minutes=max_minutes,
    )
    provider: GeometryProvider | None = None
    try:
        if spine_copies or any(d.is_file() and d.suffix.lower() == ".csv" for d in data):
            provider = spine_geometry_provider(spine_model)
        result = train_score(
            data,
            out,
            config,
            resume=resume,
            provider=provider,
            install=install,
            install_dir=model_dir,
            progress=progress,
            command="aacscore " + shlex.join(sys.argv[1:]),
            cache_dir=cache,
        )
    except (ScoreDataError, TrainingError, ValueError, FileNotFoundError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    m = result.val_metrics
    console.print(
        f"best epoch {result.best_epoch} of {result.epochs_run}"
        f"{' (stopped early)' if result.stopped_early else ''}: validation MAE {m['mae']:.3f}, "
        f"Spearman {m['spearman'] if m['spearman'] is None else round(m['spearman'], 3)}, "
        f"ICC(2,1) {m['icc21']['value']}, 95 % coverage {m.get('coverage95')}"
    )
    console.print(
        f"model written to {result.model_dir} ({result.dtype}, sha256 "
        f"{result.weights_sha256[:12]}...)"
    )
    if result.installed_to is not None:
        console.print(f"installed to {result.installed_to}")
