"""Training of the spine U-Net and the orientation classifier on a 2-core CPU.

Recipe (nnU-Net's, scaled down): plans from the dataset fingerprint, whole films letterboxed to
the plan's input, Dice + cross-entropy (MONAI ``DiceCELoss``, batch Dice without background),
nnU-Net-style augmentation (rotation, scaling, elastic, mirroring, field-of-view cuts, gamma,
brightness, contrast, noise, blur, low resolution) plus style randomisation
(:mod:`aacscore.training.style`: other renderers, vendors' processing, phone photographs),
AdamW with nnU-Net's polynomial learning-rate decay (AdamW instead of SGD with momentum 0.99: it
converges in the few thousand steps a CPU affords), a held-out validation split, a checkpoint
every epoch, ``resume``, early stopping on the validation Dice of L1-L5
(:mod:`aacscore.training.loop`, shared with the score stage), a JSONL + CSV log per epoch. The
orientation classifier is trained on the same augmented batches (its target is the random
mirroring), so it sees the same styles.

With ``init_from`` (a spine model folder, e.g. the shipped
:func:`aacscore.spine.weights.default_model_dir`) the U-Net and orientation weights start from
that model (warm start, fine-tuning); its ``plans.json`` must describe the same networks and
input as the run's plans (the run takes its input size from it unless ``patch_size`` is set).

At the end the best epoch is exported to ``OUT/model``: ``unet.safetensors`` (fp16 when the
validation Dice does not change), ``orientation.safetensors``, ``plans.json``, ``metrics.json``
and ``MODEL_CARD.md``; with ``install`` they are copied to the package (or ``install_dir``).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aacscore._files import sha256_file, write_json
from aacscore.backend.torch_net import load_safetensors
from aacscore.spine.network import (
    MODEL_CARD,
    ORIENTATION_WEIGHTS,
    PLANS_FILE,
    UNET_WEIGHTS,
    default_model_dir,
)
from aacscore.spine.plans import Plans, PlansError
from aacscore.training.card import write_spine_card
from aacscore.training.config import TrainConfig, resolve_config
from aacscore.training.errors import TrainingError
from aacscore.training.export import fp16_roundtrip, install_model, save_weights
from aacscore.training.loop import Advance, Mode, progress_bar, progress_task, run_loop
from aacscore.training.plans import CaseShape, compute_fingerprint, plan_from_fingerprint
from aacscore.training.spine_data import (
    AugmentConfig,
    PreprocessedSet,
    TrainingCase,
    augment_batch,
    batch_tensors,
    case_shapes,
    class_presence,
    discover_cases,
    load_or_build_cache,
)
from aacscore.training.spine_metrics import evaluate
from aacscore.training.spine_trainer import SegmentationTrainer, poly_lr
from aacscore.vertebrae import Side

logger = logging.getLogger(__name__)

CACHE_FILE = "cache.npz"
MODEL_SUBDIR = "model"
EXPORTED = (UNET_WEIGHTS, ORIENTATION_WEIGHTS, PLANS_FILE, "metrics.json", MODEL_CARD)


@dataclass(frozen=True)
class SpineTrainConfig(TrainConfig):
    """Recipe of :func:`train_spine` (defaults: the full CPU run)."""

    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-2
    weight_decay: float = 3e-5
    patience: int = 5
    min_delta: float = 1e-4
    val_fraction: float = 0.1
    orientation_lr: float = 1e-3
    target_spacing_mm: float = 1.2
    longest_side_range: tuple[int, int] = (256, 384)
    base_filters: int = 8
    max_filters: int = 128
    deep_supervision: bool = False
    patch_size: tuple[int, int] | None = None
    default_anterior_side: Side = Side.LEFT
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    jobs: int = 2
    """Processes for decoding/preprocessing."""
    init_from: Path | None = None
    """Spine model folder whose weights start the run (warm start); None: random init."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "default_anterior_side", Side.parse(self.default_anterior_side))


@dataclass(frozen=True)
class TrainResult:
    """Where the model went and how it did."""

    model_dir: Path
    out_dir: Path
    installed_to: Path | None
    best_epoch: int
    """1-based."""
    epochs_run: int
    stopped_early: bool
    metrics: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    files: dict[str, Path]


def _split(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    if not 0.0 <= val_fraction < 1.0:
        raise TrainingError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n).tolist()
    n_val = round(val_fraction * n)
    if val_fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, n - 1)
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def _data_dirs(data_dir: Path | str | Sequence[Path | str]) -> list[Path]:
    dirs = [Path(data_dir)] if isinstance(data_dir, (str, Path)) else [Path(d) for d in data_dir]
    if not dirs:
        raise TrainingError("no training data folder given")
    return dirs


def _discover_all(dirs: Sequence[Path], default_anterior_side: str) -> list[TrainingCase]:
    """Cases of all folders; with several folders the ids are ``<folder name>/<stem>``."""
    if len(dirs) == 1:
        return discover_cases(dirs[0], default_anterior_side)
    names = [d.resolve().name for d in dirs]
    if len(set(names)) != len(names):
        raise TrainingError(f"training folders must have distinct names: {', '.join(names)}")
    cases: list[TrainingCase] = []
    for d, name in zip(dirs, names, strict=True):
        cases += [
            replace(c, case_id=f"{name}/{c.case_id}")
            for c in discover_cases(d, default_anterior_side)
        ]
    return cases


class SpineStage:
    """The spine networks as a :class:`aacscore.training.loop.Stage`."""

    mode = Mode.MAX

    def __init__(
        self,
        trainer: SegmentationTrainer,
        data: PreprocessedSet,
        train_idx: Sequence[int],
        eval_idx: Sequence[int],
        config: SpineTrainConfig,
        steps: int,
    ) -> None:
        self.trainer = trainer
        self.data = data
        self.train_idx = list(train_idx)
        self.eval_idx = list(eval_idx)
        self.config = config
        self.steps = steps

    def steps_per_epoch(self) -> int:
        return self.steps

    def train_epoch(self, epoch: int, advance: Advance | None) -> dict[str, Any]:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, epoch - 1])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        order = rng.permutation(np.array(self.train_idx))
        losses, olosses = [], []
        for s in range(self.steps):
            start = (s * cfg.batch_size) % len(order)
            bidx = [int(order[(start + k) % len(order)]) for k in range(cfg.batch_size)]
            img, lab, val = batch_tensors(self.data, bidx)
            img, lab, val, flip = augment_batch(img, lab, val, gen, cfg.augment)
            loss, oloss = self.trainer.train_step(img, lab, val, flip)
            losses.append(loss)
            olosses.append(oloss)
            if advance is not None:
                advance(1)
        return {
            "train_loss": float(np.mean(losses)),
            "orientation_loss": float(np.mean(olosses)),
            "lr": poly_lr(cfg.lr, self.trainer.step, self.trainer.total_steps),
        }

    def validate(self) -> dict[str, Any]:
        return evaluate(self.trainer, self.data, self.eval_idx, self.config.batch_size)

    def monitor(self, row: Mapping[str, Any]) -> float:
        return float(row["dice_l1_l5"]) + 0.1 * float(row["level_identification"])

    def describe(self, row: Mapping[str, Any]) -> str:
        return (
            f"loss {row['train_loss']:.4f} val {row['val_loss']:.4f} "
            f"Dice L1-L5 {row['dice_l1_l5']:.4f} levels {row['level_identification']:.3f} "
            f"orientation {row['orientation_accuracy']:.3f}"
        )

    def state_dict(self) -> dict[str, Any]:
        return self.trainer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer.load_state_dict(state)
        # a resumed run may ask for more epochs: the schedule follows this run's count
        self.trainer.total_steps = self.steps * self.config.epochs

    def weights(self) -> dict[str, Any]:
        return {
            "unet": copy.deepcopy(self.trainer.unet.state_dict()),
            "orient": copy.deepcopy(self.trainer.orient.state_dict()),
        }

    def load_weights(self, weights: Mapping[str, Any]) -> None:
        self.trainer.unet.load_state_dict(weights["unet"])
        self.trainer.orient.load_state_dict(weights["orient"])

    def signature(self) -> dict[str, Any]:
        return {"plans": self.trainer.plans.to_dict()}

    def plan_epochs(self, epochs: int) -> None:
        self.trainer.total_steps = self.steps * epochs


ARCHITECTURE_FIELDS: tuple[str, ...] = (
    "patch_size",
    "kernel_sizes",
    "strides",
    "filters",
    "n_classes",
    "class_names",
    "resize_rule",
    "normalization",
    "norm",
    "deep_supervision",
    "deep_supr_num",
    "orientation_downsample",
    "orientation_filters",
)
"""Plans fields a warm start must share with the run (the fingerprint and notes may differ)."""


def load_init_plans(folder: Path) -> Plans:
    """The plans of a warm-start model folder (TrainingError naming the folder otherwise)."""
    if not folder.is_dir():
        raise TrainingError(f"{folder}: --init-from model folder not found")
    for name in (PLANS_FILE, UNET_WEIGHTS, ORIENTATION_WEIGHTS):
        if not (folder / name).is_file():
            raise TrainingError(f"{folder}: not a spine model folder ({name} missing)")
    try:
        return Plans.load(folder / PLANS_FILE)
    except PlansError as exc:
        raise TrainingError(f"{folder}: {exc}") from exc


def warm_start(trainer: SegmentationTrainer, folder: Path, init_plans: Plans) -> dict[str, str]:
    """Load the U-Net and orientation weights of ``folder`` into ``trainer``; returns the
    folder and the sha256 of each weights file. The plans must match the trainer's."""
    run, ref = trainer.plans.to_dict(), init_plans.to_dict()
    diff = [k for k in ARCHITECTURE_FIELDS if run[k] != ref[k]]
    if diff:
        detail = "; ".join(f"{k}: model {ref[k]} vs run {run[k]}" for k in diff)
        raise TrainingError(f"{folder}: {PLANS_FILE} does not match this run's plans ({detail})")
    mismatch = f"do not match {folder / PLANS_FILE}"
    load_safetensors(trainer.unet, folder / UNET_WEIGHTS, TrainingError, mismatch)
    load_safetensors(trainer.orient, folder / ORIENTATION_WEIGHTS, TrainingError, mismatch)
    logger.info("warm start from %s", folder)
    return {
        "folder": str(folder.resolve()),
        UNET_WEIGHTS: sha256_file(folder / UNET_WEIGHTS),
        ORIENTATION_WEIGHTS: sha256_file(folder / ORIENTATION_WEIGHTS),
    }


def _plans(
    cases: Sequence[TrainingCase], config: SpineTrainConfig, advance: Advance | None
) -> Plans:
    fp = compute_fingerprint(case_shapes(cases, advance))
    return plan_from_fingerprint(
        fp,
        target_spacing_mm=config.target_spacing_mm,
        longest_side_range=config.longest_side_range,
        base_filters=config.base_filters,
        max_filters=config.max_filters,
        deep_supervision=config.deep_supervision,
        patch_size=config.patch_size,
    )


def _fingerprinted(plans: Plans, data: PreprocessedSet) -> Plans:
    """The plans with the fingerprint of the preprocessed set (intensities, class presence)."""
    shapes = [
        CaseShape(
            (int(sh[0]), int(sh[1])),
            (float(sp[0]), float(sp[1])) if np.all(np.isfinite(sp)) else None,
        )
        for sh, sp in zip(data.shapes, data.spacings, strict=True)
    ]
    fp = compute_fingerprint(
        shapes,
        intensity_samples=[data.intensity_samples],
        class_presence=class_presence(data.labels),
    )
    return replace(plans, fingerprint=fp.to_dict())


def train_spine(
    data: Path | str | Sequence[Path | str],
    out_dir: Path | str = Path("runs/spine"),
    config: SpineTrainConfig | None = None,
    *,
    resume: bool = False,
    install: bool = False,
    install_dir: Path | str | None = None,
    progress: bool = False,
    command: str | None = None,
    **settings: Any,
) -> TrainResult:
    """Train (or resume) the spine model on ``data`` (one folder or several, pooled), export the
    best epoch to ``out_dir/model`` and, with ``install``, copy it to ``install_dir`` (default:
    the package's ``models/spine``).

    The recipe is ``config`` or, instead, :class:`SpineTrainConfig` keyword ``settings``;
    both at once raise TypeError.
    """
    cfg = resolve_config(SpineTrainConfig, config, settings)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_dirs = _data_dirs(data)
    cases = _discover_all(data_dirs, cfg.default_anterior_side)
    if cfg.max_cases is not None:
        cases = cases[: cfg.max_cases]
    if len(cases) < 2:
        raise TrainingError(
            f"{', '.join(map(str, data_dirs))}: need at least 2 training cases, found {len(cases)}"
        )
    plans_path = out / PLANS_FILE
    resuming = resume and plans_path.is_file()
    init_dir = Path(cfg.init_from) if cfg.init_from is not None else None
    init_plans = load_init_plans(init_dir) if init_dir is not None else None
    t_start = time.perf_counter()
    with progress_bar(progress) as prog:
        if resuming:
            plans = Plans.load(plans_path)
        else:
            plan_cfg = cfg
            if init_plans is not None and cfg.patch_size is None:
                plan_cfg = replace(cfg, patch_size=init_plans.patch_size)
            plans = _plans(cases, plan_cfg, progress_task(prog, "fingerprint", len(cases)))
        adv = progress_task(prog, "preprocess", len(cases))
        ds, _ = load_or_build_cache(cases, plans, out / CACHE_FILE, cfg.jobs, adv)
        if not resuming:
            plans = _fingerprinted(plans, ds)
            plans.save(plans_path)
        train_idx, val_idx = _split(len(ds), cfg.val_fraction, cfg.seed)
        write_json(
            out / "split.json",
            {
                "train": [ds.case_ids[i] for i in train_idx],
                "val": [ds.case_ids[i] for i in val_idx],
            },
            indent=1,
        )
        steps = cfg.steps_per_epoch or max(1, math.ceil(len(train_idx) / cfg.batch_size))
        trainer = SegmentationTrainer(
            plans,
            cfg.lr,
            cfg.weight_decay,
            steps * cfg.epochs,
            cfg.seed,
            orientation_lr=cfg.orientation_lr,
            device=cfg.device,
        )
        init: dict[str, str] | None = None
        if init_dir is not None and init_plans is not None:
            init = warm_start(trainer, init_dir, init_plans)  # a resumed checkpoint overrides
            write_json(out / "init_from.json", init)
        eval_idx = val_idx if val_idx else train_idx
        stage = SpineStage(trainer, ds, train_idx, eval_idx, cfg, steps)
        loop = run_loop(stage, cfg, out, resume=resume, progress=prog, t_start=t_start)
        stage.load_weights(loop.best_weights)
        final = evaluate(trainer, ds, eval_idx, cfg.batch_size, landmarks=True)
        model_dir = out / MODEL_SUBDIR
        files = export_model(trainer, plans, ds, eval_idx, model_dir, final, cfg)
        data_summary = {
            "folder": ", ".join(str(d.resolve()) for d in data_dirs),
            "cases": len(ds),
            "training cases": len(train_idx),
            "validation cases": len(val_idx),
            "median film (rows x cols px)": plans.fingerprint.get("median_shape"),
            "median spacing (mm)": plans.fingerprint.get("median_spacing_mm"),
            "films mirrored (anterior right)": int(ds.mirrored.sum()),
            "class presence": plans.fingerprint.get("class_presence"),
        }
        if init is not None:
            data_summary["initial weights (warm start)"] = (
                f"{init['folder']} ({UNET_WEIGHTS} sha256 {init[UNET_WEIGHTS]}, "
                f"{ORIENTATION_WEIGHTS} sha256 {init[ORIENTATION_WEIGHTS]})"
            )
        final = {**final, "best_epoch": loop.best_epoch, "epochs_run": loop.epochs_run}
        if loop.stopped_by_time:
            final["stopped_by_time_budget_minutes"] = cfg.max_minutes
        final["device"] = str(trainer.device)
        final["training_minutes"] = round((time.perf_counter() - t_start) / 60.0, 2)
        files["metrics.json"] = write_json(model_dir / "metrics.json", final)
        files[PLANS_FILE] = model_dir / PLANS_FILE
        card_cfg = cfg.as_dict()
        files[MODEL_CARD] = write_spine_card(
            model_dir, plans, final, card_cfg, data_summary, command, files, loop.history
        )
    installed: Path | None = None
    if install:
        dest = Path(install_dir) if install_dir is not None else default_model_dir()
        installed = install_model(model_dir, EXPORTED, dest)
    return TrainResult(
        model_dir=model_dir,
        out_dir=out,
        installed_to=installed,
        best_epoch=loop.best_epoch,
        epochs_run=loop.epochs_run,
        stopped_early=loop.stopped_early,
        metrics=final,
        history=loop.history,
        files=files,
    )


def export_model(
    trainer: SegmentationTrainer,
    plans: Plans,
    data: PreprocessedSet,
    eval_idx: Sequence[int],
    model_dir: Path,
    metrics: dict[str, Any],
    config: SpineTrainConfig,
) -> dict[str, Path]:
    """Write the weights (fp16 when the validation Dice is unchanged) and ``plans.json``."""
    model_dir.mkdir(parents=True, exist_ok=True)
    half = copy.deepcopy(trainer)
    half.unet.load_state_dict(fp16_roundtrip(trainer.unet.state_dict()))
    half.orient.load_state_dict(fp16_roundtrip(trainer.orient.state_dict()))
    m16 = evaluate(half, data, eval_idx, config.batch_size)
    fp16 = (
        abs(m16["dice_l1_l5"] - metrics["dice_l1_l5"]) <= 1e-3
        and m16["orientation_accuracy"] >= metrics["orientation_accuracy"]
    )
    metrics["weights_dtype"] = "float16" if fp16 else "float32"
    metrics["dice_l1_l5_fp16"] = m16["dice_l1_l5"]
    unet_path = save_weights(trainer.unet, model_dir / UNET_WEIGHTS, fp16)
    orient_path = save_weights(trainer.orient, model_dir / ORIENTATION_WEIGHTS, fp16)
    plans.save(model_dir / PLANS_FILE)
    return {UNET_WEIGHTS: unet_path, ORIENTATION_WEIGHTS: orient_path}


__all__ = [
    "ARCHITECTURE_FIELDS",
    "SegmentationTrainer",
    "SpineStage",
    "SpineTrainConfig",
    "TrainResult",
    "TrainingError",
    "export_model",
    "load_init_plans",
    "train_spine",
    "warm_start",
]
