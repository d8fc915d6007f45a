"""Training of the spine U-Net and the orientation classifier on a 2-core CPU.

Recipe (nnU-Net's, scaled down): plans from the dataset fingerprint, whole films letterboxed to
the plan's input, Dice + cross-entropy (MONAI ``DiceCELoss``, batch Dice without background),
nnU-Net-style augmentation (rotation, scaling, elastic, mirroring, field-of-view cuts, gamma,
brightness, contrast, noise, blur, low resolution), AdamW with nnU-Net's polynomial learning-rate
decay (AdamW instead of SGD with momentum 0.99: it converges in the few thousand steps a CPU
affords), a held-out validation split, a checkpoint every epoch, ``resume``, early stopping on
the validation Dice of L1-L5, a JSONL + CSV log per epoch. The orientation classifier is trained
on the same augmented batches (its target is the random mirroring).

At the end the best epoch is exported to the model folder: ``unet.safetensors`` (fp16 when the
validation Dice does not change), ``orientation.safetensors``, ``plans.json``, ``metrics.json``
and ``MODEL_CARD.md`` (:func:`write_model_card`).
"""

from __future__ import annotations

import copy
import csv
import datetime as _dt
import json
import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss

from aacscore import __version__
from aacscore.spine.data import (
    AugmentConfig,
    PreprocessedSet,
    TrainingCase,
    augment_batch,
    batch_tensors,
    case_shapes,
    class_presence,
    discover_cases,
    load_or_build_cache,
    zscore,
)
from aacscore.spine.network import (
    ORIENTATION_WEIGHTS,
    UNET_WEIGHTS,
    OrientationNet,
    build_orientation_net,
    build_unet,
    save_weights,
    sha256_file,
)
from aacscore.spine.plans import CaseShape, Plans, compute_fingerprint, plan_from_fingerprint
from aacscore.spine.predict import MODEL_CARD, PLANS_FILE, default_model_dir, geometry_from_logits
from aacscore.vertebrae import CLASS_NAMES, LABEL_VALUES, LEVEL_ORDER, SpineError

logger = logging.getLogger(__name__)

LUMBAR = ("L1", "L2", "L3", "L4", "L5")
CHECKPOINT_LAST = "checkpoint_last.pt"
CHECKPOINT_BEST = "checkpoint_best.pt"
LOG_JSONL = "log.jsonl"
LOG_CSV = "log.csv"
CACHE_FILE = "cache.npz"


class TrainingError(RuntimeError):
    """Training cannot start or continue (bad data, incompatible checkpoint, ...)."""


@dataclass(frozen=True)
class TrainConfig:
    """Options of :func:`train_spine` (defaults: the full CPU run)."""

    data_dir: Path | tuple[Path, ...]
    """One training folder, or several (their cases are pooled; ids get the folder name)."""
    out_dir: Path = Path("runs/spine")
    model_dir: Path | None = None
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-2
    orientation_lr: float = 1e-3
    weight_decay: float = 3e-5
    seed: int = 0
    val_fraction: float = 0.1
    patience: int = 5
    resume: bool = False
    max_cases: int | None = None
    steps_per_epoch: int | None = None
    target_spacing_mm: float = 1.2
    longest_side_range: tuple[int, int] = (256, 384)
    base_filters: int = 8
    max_filters: int = 128
    deep_supervision: bool = False
    patch_size: tuple[int, int] | None = None
    default_anterior_side: str = "left"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    num_threads: int | None = None
    jobs: int = 2
    device: str = "cpu"
    """torch device for the networks ("cpu", "cuda", "cuda:1", ...); augmentation stays on CPU."""
    max_minutes: float | None = None
    """Wall-clock budget of this invocation: after the first epoch the number of epochs (and the
    learning-rate schedule) is cut to what fits, leaving time for the final evaluation."""
    progress: bool = True
    command: str | None = None


@dataclass(frozen=True)
class TrainResult:
    """Where the model went and how it did."""

    model_dir: Path
    out_dir: Path
    best_epoch: int
    """1-based."""
    epochs_run: int
    stopped_early: bool
    metrics: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    files: dict[str, Path]


# -------------------------------------------------------------------------------------------
# Trainer
# -------------------------------------------------------------------------------------------


def poly_lr(initial: float, step: int, total: int, exponent: float = 0.9) -> float:
    """nnU-Net's polynomial decay."""
    return initial * (1.0 - min(step, total) / max(total, 1)) ** exponent


class SegmentationTrainer:
    """U-Net + orientation classifier, their optimisers and one training/evaluation step."""

    def __init__(
        self,
        plans: Plans,
        lr: float = 1e-2,
        weight_decay: float = 3e-5,
        total_steps: int = 1000,
        seed: int = 0,
        orientation_lr: float = 1e-3,
        device: str | torch.device = "cpu",
    ) -> None:
        torch.manual_seed(seed)
        self.plans = plans
        self.device = torch.device(device)
        self.unet = build_unet(plans).to(self.device)
        self.orient = build_orientation_net(plans).to(self.device)
        self.lr = lr
        self.orientation_lr = orientation_lr
        self.total_steps = total_steps
        self.step = 0
        self.opt = torch.optim.AdamW(self.unet.parameters(), lr=lr, weight_decay=weight_decay)
        self.opt_orient = torch.optim.AdamW(
            self.orient.parameters(), lr=orientation_lr, weight_decay=weight_decay
        )
        self.loss_fn = DiceCELoss(
            to_onehot_y=True,
            softmax=True,
            include_background=False,
            batch=True,
            smooth_nr=1e-5,
            smooth_dr=1e-5,
        )

    def seg_loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if out.dim() == 5:  # deep supervision: (B, heads, C, H, W), weights 1/2^i normalised
            w = torch.tensor([0.5**i for i in range(out.shape[1])], device=out.device)
            w = w / w.sum()
            return sum(w[i] * self.loss_fn(out[:, i], labels) for i in range(out.shape[1]))
        return self.loss_fn(out, labels)

    def train_step(
        self, images: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, flipped: torch.Tensor
    ) -> tuple[float, float]:
        """One optimisation step on raw (un-normalised) augmented inputs; returns the losses."""
        dev = self.device
        images, labels, valid = images.to(dev), labels.to(dev), valid.to(dev)
        flipped = flipped.to(dev)
        self.unet.train()
        self.orient.train()
        for opt, lr0 in ((self.opt, self.lr), (self.opt_orient, self.orientation_lr)):
            for g in opt.param_groups:
                g["lr"] = poly_lr(lr0, self.step, self.total_steps)
        x = zscore(images, valid)
        out = self.unet(x)
        loss = self.seg_loss(out, labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 12.0)
        self.opt.step()
        xo = F.avg_pool2d(x, self.plans.orientation_downsample)
        logit = self.orient(xo)
        oloss = F.binary_cross_entropy_with_logits(logit, flipped.float())
        self.opt_orient.zero_grad(set_to_none=True)
        oloss.backward()
        self.opt_orient.step()
        self.step += 1
        return float(loss.detach()), float(oloss.detach())

    @torch.inference_mode()
    def predict_logits(self, images: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Logits on the CPU (the network runs on ``self.device``)."""
        self.unet.eval()
        x = zscore(images.to(self.device), valid.to(self.device))
        return self.unet(x).float().cpu()

    @torch.inference_mode()
    def orientation_logits(self, images: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Antisymmetrised logits (positive: anterior right)."""
        self.orient.eval()
        x = zscore(images.to(self.device), valid.to(self.device))
        x = F.avg_pool2d(x, self.plans.orientation_downsample)
        return (0.5 * (self.orient(x) - self.orient(torch.flip(x, dims=[3])))).float().cpu()

    def state_dict(self) -> dict[str, Any]:
        return {
            "unet": self.unet.state_dict(),
            "orient": self.orient.state_dict(),
            "opt": self.opt.state_dict(),
            "opt_orient": self.opt_orient.state_dict(),
            "step": self.step,
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.unet.load_state_dict(state["unet"])
        self.orient.load_state_dict(state["orient"])
        self.opt.load_state_dict(state["opt"])
        self.opt_orient.load_state_dict(state["opt_orient"])
        self.step = int(state["step"])
        self.total_steps = int(state.get("total_steps", self.total_steps))


# -------------------------------------------------------------------------------------------
# Metrics
# -------------------------------------------------------------------------------------------


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    s = int(pred.sum()) + int(truth.sum())
    if s == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, truth).sum()) / s


def levels_identified(pred: np.ndarray, truth: np.ndarray, levels: Sequence[str] = LUMBAR) -> bool:
    """All levels present in ``truth`` found with the right label (Dice > 0.5)."""
    for n in levels:
        v = LABEL_VALUES[n]
        t = truth == v
        if t.any() and dice(pred == v, t) <= 0.5:
            return False
    return True


def corner_errors_mm(logits: torch.Tensor, corners: np.ndarray, mm_per_px: float) -> list[float]:
    """Corner errors (mm) of the predicted L1-L5 bodies against (7, 4, 2) true model corners."""
    if not math.isfinite(mm_per_px):
        return []
    try:
        geo, _ = geometry_from_logits(logits, None, check=False)
    except SpineError:
        return []
    errs: list[float] = []
    for i, name in enumerate(LEVEL_ORDER):
        if name not in LUMBAR or name not in geo.vertebrae:
            continue
        t = corners[i]
        if not np.all(np.isfinite(t)):
            continue
        d = np.hypot(*(geo.vertebrae[name].corners - t).T) * mm_per_px
        errs.extend(float(x) for x in d)
    return errs


def evaluate(
    trainer: SegmentationTrainer,
    data: PreprocessedSet,
    idx: Sequence[int],
    batch_size: int = 8,
    landmarks: bool = False,
) -> dict[str, Any]:
    """Validation loss, Dice per class, level identification, orientation accuracy (and corner
    errors when ``landmarks``) on cached cases ``idx`` (canonical, not augmented)."""
    losses: list[float] = []
    per_class: dict[str, list[float]] = {n: [] for n in CLASS_NAMES[1:]}
    ident: list[bool] = []
    orient_ok: list[bool] = []
    errs: list[float] = []
    for s in range(0, len(idx), batch_size):
        chunk = list(idx[s : s + batch_size])
        img, lab, val = batch_tensors(data, chunk)
        out = trainer.predict_logits(img, val)
        main = out[:, 0] if out.dim() == 5 else out
        with torch.inference_mode():
            losses.append(float(trainer.loss_fn(main, lab)) * len(chunk))
        pred = main.argmax(dim=1).numpy()
        truth = lab[:, 0].numpy()
        for j in range(len(chunk)):
            for n in CLASS_NAMES[1:]:
                v = LABEL_VALUES[n]
                t, p = truth[j] == v, pred[j] == v
                if t.any():
                    per_class[n].append(dice(p, t))
            ident.append(levels_identified(pred[j], truth[j]))
            if landmarks:
                errs += corner_errors_mm(main[j], data.corners[chunk[j]], data.mm_per_px[chunk[j]])
        # orientation: canonical films must give "left"; their mirror images "right" (exactly,
        # by antisymmetry)
        ol = trainer.orientation_logits(img, val)
        orient_ok += (ol < 0).tolist()
    n_cases = max(len(idx), 1)
    dice_means = {k: float(np.mean(v)) if v else float("nan") for k, v in per_class.items()}
    lumbar = [dice_means[k] for k in LUMBAR if math.isfinite(dice_means[k])]
    out_m: dict[str, Any] = {
        "val_loss": float(sum(losses) / n_cases),
        "dice": dice_means,
        "dice_l1_l5": float(np.mean(lumbar)) if lumbar else 0.0,
        "level_identification": float(np.mean(ident)) if ident else 0.0,
        "orientation_accuracy": float(np.mean(orient_ok)) if orient_ok else 0.0,
    }
    if landmarks:
        out_m["corner_error_median_mm"] = float(np.median(errs)) if errs else float("nan")
        out_m["corner_error_p90_mm"] = float(np.percentile(errs, 90)) if errs else float("nan")
        out_m["corner_error_n"] = len(errs)
    return out_m


# -------------------------------------------------------------------------------------------
# Model card
# -------------------------------------------------------------------------------------------


def write_model_card(
    model_dir: Path,
    plans: Plans,
    metrics: dict[str, Any],
    config: dict[str, Any],
    data_summary: dict[str, Any],
    command: str | None,
    files: dict[str, Path],
    history: Sequence[dict[str, Any]] = (),
) -> Path:
    """Write ``MODEL_CARD.md`` (data, recipe, exact command, seed, metrics, sha256 of files)."""
    sha: dict[str, str] = {name: sha256_file(p) for name, p in files.items() if p.is_file()}
    lines = [
        "# aacscore spine model (vertebral bodies T12-S1, Kauppila bounds)",
        "",
        f"- aacscore {__version__}, torch {torch.__version__}, "
        f"trained {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on "
        f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)",
        f"- Seed: {config.get('seed')}",
        "",
        "## Command",
        "",
        "```",
        command or "(called from Python: aacscore.spine.train.train_spine)",
        "```",
        "",
        "## Data",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in data_summary.items()]
    lines += [
        "",
        "## Model and recipe",
        "",
        "- nnU-Net 2D U-Net (MONAI DynUNet): "
        f"input {plans.patch_size[0]}x{plans.patch_size[1]}, filters {list(plans.filters)}, "
        f"strides {[list(s) for s in plans.strides]}, instance norm, leaky ReLU",
        f"- Input rule: {plans.resize_rule}",
        f"- Median film mm/px at the input: {plans.median_mm_per_px}",
        f"- Normalisation: {plans.normalization}",
        "- Classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(plans.class_names)),
        "- Loss: Dice + cross-entropy (MONAI DiceCELoss, batch Dice, no background)",
        f"- Optimiser: AdamW lr {config.get('lr')} (orientation classifier "
        f"{config.get('orientation_lr')}), poly decay 0.9, weight decay "
        f"{config.get('weight_decay')}, batch {config.get('batch_size')}, "
        f"epochs {config.get('epochs')} (early stopping patience {config.get('patience')})",
        "- Augmentation: " + json.dumps(config.get("augment", {})),
        f"- Orientation classifier: {list(plans.orientation_filters)} filters on the input "
        f"downsampled x{plans.orientation_downsample}, antisymmetrised under mirroring",
        "",
        "## Validation metrics (best epoch, held-out split of the training folder)",
        "",
    ]
    for k, v in metrics.items():
        if isinstance(v, dict):
            lines.append(f"- {k}: " + ", ".join(f"{a} {b:.4f}" for a, b in v.items()))
        elif isinstance(v, float):
            lines.append(f"- {k}: {v:.4f}")
        else:
            lines.append(f"- {k}: {v}")
    if history:
        lines += [
            "",
            "## Epochs",
            "",
            "| epoch | train loss | val loss | Dice L1-L5 | levels | orient |",
        ]
        lines += ["|---|---|---|---|---|---|"]
        for h in history:
            lines.append(
                f"| {h['epoch']} | {h['train_loss']:.4f} | {h['val_loss']:.4f} | "
                f"{h['dice_l1_l5']:.4f} | {h['level_identification']:.3f} | "
                f"{h['orientation_accuracy']:.3f} |"
            )
    lines += ["", "## Files (sha256)", ""]
    lines += [f"- `{name}`: `{digest}`" for name, digest in sha.items()]
    lines += [
        "",
        "## Intended use and limits",
        "",
        "Trained on simulated lateral lumbar radiographs (aacscore.simulate) unless stated "
        "otherwise above; validate on your own films before relying on it. Not a medical device.",
        "",
    ]
    path = model_dir / MODEL_CARD
    path.write_text("\n".join(lines))
    return path


# -------------------------------------------------------------------------------------------
# Main loop
# -------------------------------------------------------------------------------------------


def _split(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    if not 0.0 <= val_fraction < 1.0:
        raise TrainingError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n).tolist()
    n_val = round(val_fraction * n)
    if val_fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, n - 1)
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def _progress(enabled: bool) -> Any:
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=Console(stderr=True),
        transient=False,
    )


def _task(prog: Any, description: str, total: int) -> Callable[[int], None] | None:
    if prog is None:
        return None
    tid = prog.add_task(description, total=total, info="")

    def advance(n: int = 1) -> None:
        prog.advance(tid, n)

    return advance


def _append_log(out_dir: Path, row: dict[str, Any]) -> None:
    with (out_dir / LOG_JSONL).open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    flat = {k: v for k, v in row.items() if not isinstance(v, dict)}
    flat.update({f"dice_{k}": v for k, v in row.get("dice", {}).items()})
    path = out_dir / LOG_CSV
    new = not path.is_file()
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(flat))
        if new:
            w.writeheader()
        w.writerow(flat)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    d = asdict(config)
    for k, v in list(d.items()):
        if isinstance(v, Path):
            d[k] = str(v)
    return d


def _data_dirs(data_dir: Path | Sequence[Path]) -> list[Path]:
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


def _epochs_within_budget(
    config: TrainConfig,
    t_start: float,
    t_loop: float,
    epochs_done_now: int,
    epochs_done: int,
    planned: int,
) -> int:
    """Epochs (total, 1-based count) that fit ``config.max_minutes``: the time per epoch is the
    mean of this invocation's epochs; one epoch's worth is kept for the final evaluation."""
    assert config.max_minutes is not None
    now = time.perf_counter()
    per_epoch = (now - t_loop) / max(epochs_done_now, 1)
    left = config.max_minutes * 60.0 - (now - t_start) - per_epoch
    fit = epochs_done + max(0, math.floor(left / per_epoch))
    # the schedule is set once (after the first epoch of this invocation), then only shortened
    return max(epochs_done, min(planned, fit) if epochs_done_now > 1 else min(config.epochs, fit))


def train_spine(config: TrainConfig) -> TrainResult:
    """Train (or resume) the spine model and export the best epoch; see the module docstring."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    out_dir = Path(config.out_dir)
    model_dir = Path(config.model_dir) if config.model_dir is not None else default_model_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dirs = _data_dirs(config.data_dir)
    cases = _discover_all(data_dirs, config.default_anterior_side)
    if config.max_cases is not None:
        cases = cases[: config.max_cases]
    if len(cases) < 2:
        raise TrainingError(
            f"{', '.join(map(str, data_dirs))}: need at least 2 training cases, found {len(cases)}"
        )
    last_ckpt = out_dir / CHECKPOINT_LAST
    plans_path = out_dir / PLANS_FILE
    resuming = config.resume and last_ckpt.is_file() and plans_path.is_file()
    if config.resume and not resuming:
        logger.warning("%s: nothing to resume, starting a new run", out_dir)
    t_start = time.perf_counter()
    with _progress(config.progress) as prog:
        if resuming:
            plans = Plans.load(plans_path)
        else:
            adv = _task(prog, "fingerprint", len(cases))
            fp = compute_fingerprint(case_shapes(cases, adv))
            plans = plan_from_fingerprint(
                fp,
                target_spacing_mm=config.target_spacing_mm,
                longest_side_range=config.longest_side_range,
                base_filters=config.base_filters,
                max_filters=config.max_filters,
                deep_supervision=config.deep_supervision,
                patch_size=config.patch_size,
            )
        adv = _task(prog, "preprocess", len(cases))
        data, _ = load_or_build_cache(cases, plans, out_dir / CACHE_FILE, config.jobs, adv)
        if not resuming:
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
            plans = replace(plans, fingerprint=fp.to_dict())
            plans.save(plans_path)
        train_idx, val_idx = _split(len(data), config.val_fraction, config.seed)
        (out_dir / "split.json").write_text(
            json.dumps(
                {
                    "train": [data.case_ids[i] for i in train_idx],
                    "val": [data.case_ids[i] for i in val_idx],
                },
                indent=1,
            )
        )
        steps = config.steps_per_epoch or max(1, math.ceil(len(train_idx) / config.batch_size))
        trainer = SegmentationTrainer(
            plans,
            config.lr,
            config.weight_decay,
            steps * config.epochs,
            config.seed,
            orientation_lr=config.orientation_lr,
            device=config.device,
        )
        history: list[dict[str, Any]] = []
        start_epoch, best_score, best_epoch, bad_epochs = 0, -math.inf, -1, 0
        if resuming:
            ck = torch.load(last_ckpt, map_location="cpu", weights_only=False)
            if ck.get("plans") != plans.to_dict():
                raise TrainingError(f"{last_ckpt}: checkpoint does not match {plans_path}")
            trainer.load_state_dict(ck["trainer"])
            trainer.total_steps = steps * config.epochs
            history = list(ck["history"])
            start_epoch = int(ck["epoch"]) + 1
            best_score, best_epoch = float(ck["best_score"]), int(ck["best_epoch"])
            bad_epochs = int(ck["bad_epochs"])
            logger.info("resuming %s at epoch %d", out_dir, start_epoch)
        eval_idx = val_idx if val_idx else train_idx
        planned_epochs = config.epochs
        stopped_by_time = False
        t_loop = time.perf_counter()
        for epoch in range(start_epoch, config.epochs):
            if bad_epochs >= config.patience or epoch >= planned_epochs:
                break
            t0 = time.perf_counter()
            rng = np.random.default_rng([config.seed, epoch])
            gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
            order = rng.permutation(np.array(train_idx))
            adv = _task(prog, f"epoch {epoch + 1}/{config.epochs}", steps)
            losses, olosses = [], []
            for s in range(steps):
                start = (s * config.batch_size) % len(order)
                bidx = [int(order[(start + k) % len(order)]) for k in range(config.batch_size)]
                img, lab, val = batch_tensors(data, bidx)
                img, lab, val, flip = augment_batch(img, lab, val, gen, config.augment)
                loss, oloss = trainer.train_step(img, lab, val, flip)
                losses.append(loss)
                olosses.append(oloss)
                if adv is not None:
                    adv(1)
            metrics = evaluate(trainer, data, eval_idx, config.batch_size)
            row = {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                "orientation_loss": float(np.mean(olosses)),
                **metrics,
                "lr": poly_lr(config.lr, trainer.step, trainer.total_steps),
                "seconds": time.perf_counter() - t0,
            }
            if config.max_minutes is not None:
                planned_epochs = _epochs_within_budget(
                    config, t_start, t_loop, epoch + 1 - start_epoch, epoch + 1, planned_epochs
                )
                stopped_by_time = planned_epochs < config.epochs
                if planned_epochs < config.epochs:
                    trainer.total_steps = steps * planned_epochs
                row["epochs_planned"] = planned_epochs
            history.append(row)
            _append_log(out_dir, row)
            score = metrics["dice_l1_l5"] + 0.1 * metrics["level_identification"]
            improved = score > best_score + 1e-4
            if improved:
                best_score, best_epoch, bad_epochs = score, epoch, 0
                torch.save(
                    {
                        "unet": trainer.unet.state_dict(),
                        "orient": trainer.orient.state_dict(),
                        "epoch": epoch,
                    },
                    out_dir / CHECKPOINT_BEST,
                )
            else:
                bad_epochs += 1
            torch.save(
                {
                    "trainer": trainer.state_dict(),
                    "history": history,
                    "epoch": epoch,
                    "best_score": best_score,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                    "plans": plans.to_dict(),
                    "config": _config_dict(config),
                },
                last_ckpt,
            )
            msg = (
                f"epoch {epoch + 1}: loss {row['train_loss']:.4f} val {metrics['val_loss']:.4f} "
                f"Dice L1-L5 {metrics['dice_l1_l5']:.4f} "
                f"levels {metrics['level_identification']:.3f} "
                f"orientation {metrics['orientation_accuracy']:.3f}"
            )
            logger.info(msg)
            if prog is not None:
                prog.console.print(msg)
        stopped_early = len(history) < config.epochs and not stopped_by_time
        if best_epoch < 0:
            raise TrainingError(f"{out_dir}: no epoch was trained (epochs={config.epochs})")
        best = torch.load(out_dir / CHECKPOINT_BEST, map_location="cpu", weights_only=False)
        trainer.unet.load_state_dict(best["unet"])
        trainer.orient.load_state_dict(best["orient"])
        final = evaluate(trainer, data, eval_idx, config.batch_size, landmarks=True)
        files = export_model(trainer, plans, data, eval_idx, model_dir, final, config)
        data_summary = {
            "folder": ", ".join(str(d.resolve()) for d in data_dirs),
            "cases": len(data),
            "training cases": len(train_idx),
            "validation cases": len(val_idx),
            "median film (rows x cols px)": plans.fingerprint.get("median_shape"),
            "median spacing (mm)": plans.fingerprint.get("median_spacing_mm"),
            "films mirrored (anterior right)": int(data.mirrored.sum()),
            "class presence": plans.fingerprint.get("class_presence"),
        }
        final = {**final, "best_epoch": best_epoch + 1, "epochs_run": len(history)}
        if stopped_by_time:
            final["stopped_by_time_budget_minutes"] = config.max_minutes
        final["device"] = str(trainer.device)
        final["training_minutes"] = round((time.perf_counter() - t_start) / 60.0, 2)
        (model_dir / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
        cfg = _config_dict(config)
        files["plans.json"] = model_dir / PLANS_FILE
        card = write_model_card(
            model_dir, plans, final, cfg, data_summary, config.command, files, history
        )
        files[MODEL_CARD] = card
    return TrainResult(
        model_dir=model_dir,
        out_dir=out_dir,
        best_epoch=best_epoch + 1,
        epochs_run=len(history),
        stopped_early=stopped_early,
        metrics=final,
        history=tuple(history),
        files=files,
    )


def export_model(
    trainer: SegmentationTrainer,
    plans: Plans,
    data: PreprocessedSet,
    eval_idx: Sequence[int],
    model_dir: Path,
    metrics: dict[str, Any],
    config: TrainConfig,
) -> dict[str, Path]:
    """Write the weights (fp16 when the validation Dice is unchanged) and ``plans.json``."""
    model_dir.mkdir(parents=True, exist_ok=True)
    half = copy.deepcopy(trainer)
    half.unet.load_state_dict(
        {
            k: v.half().float() if v.is_floating_point() else v
            for k, v in trainer.unet.state_dict().items()
        }
    )
    half.orient.load_state_dict(
        {
            k: v.half().float() if v.is_floating_point() else v
            for k, v in trainer.orient.state_dict().items()
        }
    )
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
    "OrientationNet",
    "SegmentationTrainer",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "evaluate",
    "train_spine",
    "write_model_card",
]
