"""Training of the score network: bands cached once, augmented on the fly, checkpoints per
epoch, resume, early stopping on the validation MAE of the total, metrics log, and export of
safetensors weights + ``config.json`` + ``MODEL_CARD.md``.

Layout of ``out_dir``::

    cache/bands_<key>.npz       bands + targets (reused by later runs on the same data)
    checkpoints/epoch_NNN.pt    full training state (the last ``keep_checkpoints`` epochs)
    checkpoints/best.pt         weights of the best epoch
    metrics.jsonl, metrics.csv  one row per epoch
    model/                      model.safetensors, config.json, MODEL_CARD.md
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import shlex
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from aacscore.aorta.roi import DEFAULT_BAND_GEOMETRY, BandGeometry
from aacscore.score.augment import AugmentConfig, augment, normalize
from aacscore.score.card import write_model_card
from aacscore.score.data import (
    BandSet,
    GeometryProvider,
    ScoreDataError,
    build_film_bands,
    build_simulated_bands,
    build_simulated_spine_bands,
    cached_bands,
    concat_bandsets,
    is_simulated_folder,
    list_simulated_cases,
    source_fingerprint,
    spine_geometry_provider,
    spine_model_fingerprint,
    split_by_case,
)
from aacscore.score.metrics import headline, score_metrics
from aacscore.score.network import HEADS, NetworkConfig, ScoreNet, Targets, score_loss
from aacscore.score.predict import (
    CARD_NAME,
    CONFIG_NAME,
    PACKAGE_MODEL_DIR,
    WEIGHTS_NAME,
    Calibration,
    NetworkOutputs,
    ScoreModelConfig,
    calibrated_sd,
    fit_calibration,
    run_network,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved in checkpoints and ``config.json``)."""

    head: str = "segments"
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    val_fraction: float = 0.15
    patience: int = 10
    min_delta: float = 1e-3
    seed: int = 0
    jitter_mm: float = 1.5
    n_jitter: int = 2
    fraction_weight: float = 0.5
    augment: bool = True
    balance_groups: bool = False
    """Sample training bands with weights inverse to their lewis group's frequency (each
    severity group seen equally often; the smaller moderate group is oversampled)."""
    augment_config: AugmentConfig = field(default_factory=AugmentConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    geometry: BandGeometry = DEFAULT_BAND_GEOMETRY
    keep_checkpoints: int = 3
    calibrate: bool = True
    """Fit an isotonic output calibration on the validation films (see aacscore.score.predict)."""
    max_cases: int | None = None
    steps_per_epoch: int | None = None
    num_threads: int | None = None
    device: str = "cpu"
    """torch device of the network in training ("cpu", "cuda", "cuda:1", ...); bands are
    augmented on the CPU; calibration and export run on the CPU."""
    spine_copies: bool = False
    """For simulator folders, add one band per film cut from the spine model's own corners
    (labelled with the true grades), so the model learns the spine stage's real errors."""
    spine_model: str | None = None
    """Spine model of the spine copies (folder or ``nnunet:FOLDER``; None: the shipped one)."""
    init_from: str | None = None
    """Start from the weights of this score model folder (fine-tuning) instead of at random;
    its network and band geometry must match this run's."""

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; expected one of {', '.join(HEADS)}")
        if self.network.head != self.head:
            object.__setattr__(self, "network", replace(self.network, head=self.head))
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        d = asdict(self)
        d["network"] = self.network.as_dict()
        d["geometry"] = self.geometry.as_dict()
        return d

    def model_signature(self) -> dict[str, Any]:
        """The parts a checkpoint must share to be resumed."""
        sig: dict[str, Any] = {
            "network": self.network.as_dict(),
            "geometry": self.geometry.as_dict(),
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "batch_size": self.batch_size,
        }
        if self.init_from is not None:
            sig["init_from"] = self.init_from
        return sig


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit`."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_score`."""

    out_dir: Path
    model_dir: Path
    installed_to: Path | None
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    val_metrics: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    weights_sha256: str
    dtype: str


def _targets(
    bs: BandSet,
    idx: npt.NDArray[np.intp],
    fraction_weight: float,
    device: torch.device | str = "cpu",
) -> Targets:
    return Targets(
        grades=torch.from_numpy(bs.grades[idx].astype(np.float32)).to(device),
        total=torch.from_numpy(bs.totals[idx].astype(np.float32)).to(device),
        fractions=torch.from_numpy(bs.fractions[idx].astype(np.float32)).to(device),
        fraction_weight=fraction_weight,
    )


def _cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the network's weights."""
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


def _lr_lambda(total_steps: int, warmup_steps: int) -> Any:
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return f


@contextmanager
def _progress(show: bool) -> Iterator[Any]:
    if not show:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ) as prog:
        yield prog


def _checkpoints(ck_dir: Path) -> list[Path]:
    return sorted(ck_dir.glob("epoch_*.pt"))


def _write_history(out_dir: Path, history: list[dict[str, Any]]) -> None:
    with (out_dir / "metrics.jsonl").open("w", encoding="utf-8") as fh:
        for row in history:
            fh.write(json.dumps(row) + "\n")
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    with (out_dir / "metrics.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for row in history:
            w.writerow(row)


def evaluate(
    net: ScoreNet, bs: BandSet, idx: npt.NDArray[np.intp], config: TrainConfig
) -> dict[str, Any]:
    """Validation loss and figures (no test-time augmentation)."""
    out = run_network(net, bs.bands[idx], config.geometry, None, batch_size=64)
    pred_total = out.total[:, 0]
    true_total = bs.totals[idx].astype(np.float64)
    grades = out.grades[:, 0] if out.grades is not None else None
    true_grades = bs.grades[idx] if bs.has_grades else None
    m = score_metrics(pred_total, true_total, grades, true_grades if grades is not None else None)
    # Loss on the same rows, for the learning curves.
    net.eval()
    dev = next(net.parameters()).device
    losses = []
    with torch.inference_mode():
        for start in range(0, len(idx), 64):
            sub = idx[start : start + 64]
            x = torch.from_numpy(bs.bands[sub].astype(np.float32))[:, None]
            o = net(normalize(x).to(dev))
            targets = _targets(bs, sub, config.fraction_weight, dev)
            loss, _ = score_loss(o, targets, config.head)
            losses.append(float(loss) * len(sub))
    m["loss"] = float(sum(losses) / max(1, len(idx)))
    return m


def group_balance_weights(totals: npt.ArrayLike, groups: str = "lewis") -> npt.NDArray[np.float64]:
    """Per-row sampling weights inverse to the frequency of each row's severity group."""
    from aacscore.kauppila import parse_groups

    g = parse_groups(groups)
    idx = np.asarray([g.index(float(t)) for t in np.asarray(totals, dtype=np.float64)])
    counts = np.bincount(idx, minlength=len(g.labels)).astype(np.float64)
    return 1.0 / counts[idx]


def init_weights(net: ScoreNet, config: TrainConfig) -> None:
    """Load ``config.init_from``'s weights into ``net`` (fine-tuning a trained model).

    Raises:
        ValueError: the model's network or band geometry differ from ``config``'s.
    """
    from aacscore.score.predict import ScoreModel

    src = ScoreModel.load(config.init_from)
    theirs, ours = src.config.network.as_dict(), config.network.as_dict()
    if theirs != ours:
        diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise ValueError(
            f"{src.path}: cannot fine-tune, its network differs from this run's in "
            f"{', '.join(diff)} (use the same --head)"
        )
    if src.band_geometry != config.geometry:
        raise ValueError(
            f"{src.path}: cannot fine-tune, its band geometry {src.band_geometry.as_dict()} "
            f"differs from this run's {config.geometry.as_dict()} (set --rows-per-level and "
            "--mm-per-col to the model's)"
        )
    dev = next(net.parameters()).device
    net.load_state_dict({k: v.to(dev) for k, v in src.net.state_dict().items()})
    logger.info("initialised from the weights of %s", src.path)


def fit(
    data: BandSet,
    train_idx: npt.NDArray[np.intp],
    val_idx: npt.NDArray[np.intp],
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = False,
) -> FitResult:
    """Train ``config.network`` on ``data[train_idx]``, validating on ``data[val_idx]``."""
    out = Path(out_dir)
    ck_dir = out / "checkpoints"
    ck_dir.mkdir(parents=True, exist_ok=True)
    if config.head != "total" and not data.has_grades:
        raise ScoreDataError(
            data.meta.get("labels_csv", data.meta.get("data_dir", "?")),
            f"the {config.head!r} head needs the 8 segment grades; these data give totals only "
            "(use --head total)",
        )
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    dev = torch.device(config.device)
    net = ScoreNet(config.network).to(dev)
    if config.init_from is not None:
        init_weights(net, config)  # a resumed checkpoint below replaces these weights
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_batches = max(1, math.ceil(len(train_idx) / config.batch_size))
    steps = config.steps_per_epoch or n_batches
    warm = round(config.warmup_epochs * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(steps * config.epochs, warm))

    history: list[dict[str, Any]] = []
    best_mae = math.inf
    best_epoch = 0
    best_state = _cpu_state(net)
    start_epoch = 1
    stale = 0
    signature = config.model_signature()
    if resume:
        cks = _checkpoints(ck_dir)
        if cks:
            state = torch.load(cks[-1], map_location="cpu", weights_only=True)
            if state["signature"] != json.loads(json.dumps(signature)):
                raise ValueError(
                    f"{cks[-1]}: checkpoint was made with different settings; "
                    "use a new --out folder or the same head/network/seed"
                )
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            history = list(state["history"])
            best_mae, best_epoch, stale = state["best_mae"], state["best_epoch"], state["stale"]
            best_state = state["best_model"]
            start_epoch = int(state["epoch"]) + 1
            logger.info("resuming after epoch %d from %s", start_epoch - 1, cks[-1])
        else:
            logger.info("no checkpoint in %s: starting from scratch", ck_dir)
    stopped_early = bool(history) and stale >= config.patience
    epoch = start_epoch - 1
    with _progress(progress) as prog:
        ep_task = (
            prog.add_task("Epochs", total=config.epochs, completed=start_epoch - 1, info="")
            if prog
            else None
        )
        for epoch in range(start_epoch, config.epochs + 1):
            if stopped_early:
                break
            t0 = time.perf_counter()
            net.train()
            if config.balance_groups:
                w = torch.from_numpy(group_balance_weights(data.totals[train_idx]))
                draw = torch.multinomial(w, len(train_idx), replacement=True, generator=gen)
                perm = train_idx[draw.numpy()]
            else:
                perm = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
            if config.steps_per_epoch:
                reps = math.ceil(config.steps_per_epoch * config.batch_size / len(perm))
                perm = np.concatenate([perm] * reps)[: config.steps_per_epoch * config.batch_size]
            n_steps = max(1, math.ceil(len(perm) / config.batch_size))
            b_task = (
                prog.add_task(f"Epoch {epoch}", total=n_steps, info="")
                if prog is not None
                else None
            )
            sums: dict[str, float] = {}
            seen = 0
            for s in range(n_steps):
                idx = perm[s * config.batch_size : (s + 1) * config.batch_size]
                x = torch.from_numpy(data.bands[idx].astype(np.float32))[:, None]
                if config.augment:
                    x = augment(x, config.geometry, gen, config.augment_config)
                o = net(normalize(x).to(dev))
                loss, parts = score_loss(
                    o, _targets(data, idx, config.fraction_weight, dev), config.head
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                sched.step()
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v * len(idx)
                seen += len(idx)
                if prog is not None and b_task is not None:
                    prog.update(b_task, advance=1, info=f"loss {sums['loss'] / seen:.4f}")
            if prog is not None and b_task is not None:
                prog.remove_task(b_task)
            val = evaluate(net, data, val_idx, config)
            row: dict[str, Any] = {
                "epoch": epoch,
                "lr": float(sched.get_last_lr()[0]),
                **{f"train_{k}": v / max(1, seen) for k, v in sums.items()},
                "val_loss": val["loss"],
                "val_mae": val["mae"],
                "val_rmse": val["rmse"],
                "val_spearman": val["spearman"],
                "val_icc21": val["icc21"]["value"],
                "val_group_accuracy": val["group"]["accuracy"],
                "val_segment_exact": val.get("segment_exact", {}).get("overall"),
                "seconds": round(time.perf_counter() - t0, 2),
            }
            improved = val["mae"] < best_mae - config.min_delta
            if improved:
                best_mae, best_epoch, stale = float(val["mae"]), epoch, 0
                best_state = _cpu_state(net)
                torch.save(
                    {"model": best_state, "epoch": epoch, "val_mae": best_mae}, ck_dir / "best.pt"
                )
            else:
                stale += 1
            row["best_epoch"] = best_epoch
            history.append(row)
            stopped_early = stale >= config.patience and epoch < config.epochs
            torch.save(
                {
                    "epoch": epoch,
                    "model": net.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "best_mae": best_mae,
                    "best_epoch": best_epoch,
                    "best_model": best_state,
                    "stale": stale,
                    "signature": json.loads(json.dumps(signature)),
                },
                ck_dir / f"epoch_{epoch:03d}.pt",
            )
            for old in _checkpoints(ck_dir)[: -max(1, config.keep_checkpoints)]:
                old.unlink()
            _write_history(out, history)
            logger.info("epoch %d: val %s", epoch, headline(val))
            if prog is not None and ep_task is not None:
                prog.update(
                    ep_task, advance=1, info=f"val MAE {val['mae']:.3f} (best {best_mae:.3f})"
                )
            if stopped_early:
                logger.info("early stop: no improvement for %d epochs", config.patience)
    return FitResult(
        best_state=best_state,
        best_epoch=best_epoch,
        epochs_run=len(history),
        stopped_early=stopped_early,
        history=tuple(history),
    )


def fit_output_calibration(
    out: NetworkOutputs, data: BandSet, idx: npt.NDArray[np.intp], head: str
) -> Calibration:
    """Isotonic calibration of raw TTA outputs of rows ``idx`` (every transform counts)."""
    if head == "total":
        truth = np.broadcast_to(data.totals[idx][:, None], out.total.shape)
        return fit_calibration(out.total, truth, "total")
    assert out.grades is not None
    truth = np.broadcast_to(data.grades[idx][:, None, :], out.grades.shape)
    return fit_calibration(out.grades, truth, "grades")


ZERO_THRESHOLDS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def choose_zero_threshold(
    grades: npt.NDArray[np.float64],
    truth_totals: npt.NDArray[np.float64],
    candidates: tuple[float, ...] = ZERO_THRESHOLDS,
) -> float:
    """The threshold below which mean segment grades read 0 that minimises the MAE of the
    total on (cross-fitted) validation predictions; the smallest one among equals."""
    best, best_mae = 0.0, math.inf
    for tau in candidates:
        pred = np.where(grades < tau, 0.0, grades).sum(axis=1)
        mae = float(np.mean(np.abs(pred - truth_totals)))
        if mae < best_mae - 1e-9:
            best, best_mae = tau, mae
    return best


def cross_fitted(
    out: NetworkOutputs, data: BandSet, idx: npt.NDArray[np.intp], head: str, seed: int
) -> NetworkOutputs:
    """Outputs calibrated out-of-sample: each half of the rows by a map fitted on the other."""
    halves = np.array_split(np.random.default_rng(seed).permutation(len(idx)), 2)

    def rows(o: NetworkOutputs, r: npt.NDArray[np.intp]) -> NetworkOutputs:
        return NetworkOutputs(
            total=o.total[r],
            grades=None if o.grades is None else o.grades[r],
            fractions=None if o.fractions is None else o.fractions[r],
        )

    total = out.total.copy()
    grades = None if out.grades is None else out.grades.copy()
    for a, b in ((halves[0], halves[1]), (halves[1], halves[0])):
        cal = fit_output_calibration(rows(out, a), data, idx[a], head)
        cb = cal.apply(rows(out, b))
        total[b] = cb.total
        if grades is not None and cb.grades is not None:
            grades[b] = cb.grades
    return NetworkOutputs(total=total, grades=grades, fractions=out.fractions)


def calibrate_uncertainty(
    net: ScoreNet,
    data: BandSet,
    idx: npt.NDArray[np.intp],
    config: TrainConfig,
    floor: float,
    outputs: NetworkOutputs | None = None,
    zero_below: float = 0.0,
) -> tuple[float, float, dict[str, Any]]:
    """(sd_scale, residual_sd, TTA metrics) on validation rows: 95 % of errors within 1.96 sd.

    ``outputs``: TTA outputs of the rows to use instead of the raw network's (calibrated);
    ``zero_below``: the calibration's zero threshold of the mean segment grades."""
    out = outputs if outputs is not None else run_network(net, data.bands[idx], config.geometry)
    mean = out.total.mean(axis=1)
    grades = out.grades.mean(axis=1) if out.grades is not None else None
    if grades is not None and zero_below > 0:
        grades = np.where(grades < zero_below, 0.0, grades)
        mean = grades.sum(axis=1)
    sd_raw = out.total.std(axis=1, ddof=1)
    resid = np.abs(mean - data.totals[idx])
    z = resid / calibrated_sd(sd_raw, 1.0, floor)
    scale = float(max(np.quantile(z, 0.95) / 1.96, 0.25)) if len(z) else 1.0
    bins = scale_bins(mean, z, scale)
    residual_sd = float(np.sqrt(np.mean(resid**2))) if len(resid) else 1.0
    m = score_metrics(
        mean, data.totals[idx], grades, data.grades[idx] if grades is not None else None
    )
    scales = np.asarray(bins[1])[np.digitize(mean, bins[0])] if bins else scale
    sd = calibrated_sd(sd_raw, 1.0, floor) * scales
    m["coverage95"] = float(np.mean(resid <= 1.96 * sd)) if len(resid) else None
    m["mean_sd"] = float(np.mean(sd)) if len(sd) else None
    m["sd_scale_bins"] = (
        {"edges": list(bins[0]), "scales": list(bins[1])} if bins is not None else None
    )
    return scale, residual_sd, m


SD_BIN_EDGES: tuple[float, ...] = (0.5, 2.0, 5.0, 10.0)
"""Predicted-total bins of the uncertainty scale (uncalcified, trace, mild, moderate, severe)."""


def scale_bins(
    mean: npt.NDArray[np.float64],
    z: npt.NDArray[np.float64],
    overall: float,
    edges: tuple[float, ...] = SD_BIN_EDGES,
    min_n: int = 20,
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Per-bin scale (95 % of ``z`` within 1.96) by predicted total; bins with fewer than
    ``min_n`` films take the ``overall`` scale. None when no bin has enough films."""
    idx = np.digitize(mean, edges)
    scales: list[float] = []
    own = 0
    for b in range(len(edges) + 1):
        zb = z[idx == b]
        if len(zb) >= min_n:
            scales.append(float(max(np.quantile(zb, 0.95) / 1.96, 0.1)))
            own += 1
        else:
            scales.append(overall)
    return (edges, tuple(scales)) if own else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_model(
    net: ScoreNet,
    model_dir: Path,
    model_config: ScoreModelConfig,
    data: BandSet,
    val_idx: npt.NDArray[np.intp],
    train_config: TrainConfig,
) -> ScoreModelConfig:
    """Write weights (fp16 when validation totals do not change) and config.json."""
    from safetensors.torch import save_file

    model_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    ref = run_network(net, data.bands[val_idx], train_config.geometry, None, 64).total[:, 0]
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    probe = ScoreNet(train_config.network)
    probe.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    test = run_network(probe, data.bands[val_idx], train_config.geometry, None, 64).total[:, 0]
    truth = data.totals[val_idx]
    d_mae = abs(float(np.mean(np.abs(test - truth))) - float(np.mean(np.abs(ref - truth))))
    max_diff = float(np.max(np.abs(test - ref))) if len(ref) else 0.0
    use_half = d_mae <= 0.005 and max_diff <= 0.05
    logger.info("fp16 check: max total change %.4f, MAE change %.4f", max_diff, d_mae)
    tensors = half if use_half else state
    weights = model_dir / WEIGHTS_NAME
    save_file(
        tensors,
        str(weights),
        metadata={"format": "aacscore-score-model", "head": train_config.head},
    )
    cfg = replace(
        model_config,
        dtype="float16" if use_half else "float32",
        sha256=_sha256(weights),
        extra={
            **dict(model_config.extra),
            "fp16_check": {"max_total_change": max_diff, "mae_change": d_mae},
        },
    )
    (model_dir / CONFIG_NAME).write_text(json.dumps(cfg.as_dict(), indent=2) + "\n", "utf-8")
    return cfg


def default_command(
    data: str | Path | Sequence[str | Path], out_dir: str | Path, config: TrainConfig, install: bool
) -> str:
    """The CLI command that reproduces a run."""
    sources = [data] if isinstance(data, (str, Path)) else list(data)
    args = ["aacscore", "train", "score"]
    for d in sources:
        args += ["--data", str(d)]
    args += [
        "--out",
        str(out_dir),
        "--head",
        config.head,
        "--epochs",
        str(config.epochs),
        "--seed",
        str(config.seed),
    ]
    if install:
        args.append("--install")
    return shlex.join(args)


def load_training_data(
    data: str | Path,
    out_dir: str | Path,
    config: TrainConfig,
    provider: GeometryProvider | None = None,
    progress: bool = False,
    cache_dir: str | Path | None = None,
) -> BandSet:
    """Bands for training from a simulator folder or a labels CSV, cached in ``cache_dir``
    (default ``out_dir/cache``; share it between runs on the same data)."""
    d = Path(data)
    cache_dir = Path(cache_dir) if cache_dir is not None else Path(out_dir) / "cache"
    geo = config.geometry
    if is_simulated_folder(d):
        # Only the case files used (a folder still being written keeps its key).
        cases = list_simulated_cases(d)[: config.max_cases]
        key = source_fingerprint(
            d,
            cases,
            geometry=geo.as_dict(),
            jitter_mm=config.jitter_mm,
            n_jitter=config.n_jitter,
            seed=config.seed,
            max_cases=config.max_cases,
        )
        jittered = cached_bands(
            cache_dir,
            key,
            lambda: build_simulated_bands(
                d,
                geometry=geo,
                jitter_mm=config.jitter_mm,
                n_jitter=config.n_jitter,
                seed=config.seed,
                max_cases=config.max_cases,
                progress=progress,
            ),
        )
        if not config.spine_copies:
            return jittered
        if provider is None:
            raise ScoreDataError(d, "spine copies need a geometry provider (the spine model)")
        spine_provider = provider
        spine_key = source_fingerprint(
            d,
            cases,
            geometry=geo.as_dict(),
            spine=spine_model_fingerprint(config.spine_model),
            max_cases=config.max_cases,
        )
        spine = cached_bands(
            cache_dir,
            spine_key,
            lambda: build_simulated_spine_bands(
                d,
                spine_provider,
                geometry=geo,
                copy_index=config.n_jitter,
                max_cases=config.max_cases,
                progress=progress,
            ),
        )
        return concat_bandsets([jittered, spine], same_films=True)
    if d.is_file() and d.suffix.lower() == ".csv":
        if provider is None:
            raise ScoreDataError(
                d,
                "training on your own films needs a geometry provider (the spine model) to "
                "find the vertebrae",
            )
        key = source_fingerprint(d, geometry=geo.as_dict(), films=True)
        return cached_bands(
            cache_dir, key, lambda: build_film_bands(d, provider, geometry=geo, progress=progress)
        )
    raise ScoreDataError(
        d, "expected a simulator output folder (case_*.json) or a labels CSV of your films"
    )


def train_score(
    data_dir: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    head: str = "segments",
    epochs: int = 40,
    seed: int = 0,
    resume: bool = False,
    *,
    config: TrainConfig | None = None,
    provider: GeometryProvider | None = None,
    install: bool = False,
    install_dir: str | Path | None = None,
    progress: bool = False,
    command: str | None = None,
    cache_dir: str | Path | None = None,
) -> TrainResult:
    """Train a score model on simulator folder(s) (or labels CSVs + ``provider``; several
    sources are combined), export it to ``out_dir/model`` and, with ``install``, copy it to the
    package (or ``install_dir``).

    ``config`` overrides every setting; ``head``/``epochs``/``seed`` are applied on top of it.
    ``cache_dir`` holds the band cache (default ``out_dir/cache``).
    """
    base = config or TrainConfig()
    cfg = replace(base, head=head, epochs=epochs, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    sources = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
    if cfg.spine_copies and provider is None:
        provider = spine_geometry_provider(cfg.spine_model)
    data = concat_bandsets(
        [load_training_data(d, out, cfg, provider, progress, cache_dir) for d in sources]
    )
    train_idx, val_idx = split_by_case(data.case_ids, cfg.val_fraction, cfg.seed)
    # Validate on one copy per film (the first jitter) so every film counts once.
    val_idx = val_idx[data.copy_index[val_idx] == 0]
    logger.info("%d training bands, %d validation films", len(train_idx), len(val_idx))
    result = fit(data, train_idx, val_idx, cfg, out, resume=resume, progress=progress)

    net = ScoreNet(cfg.network)
    net.load_state_dict(result.best_state)
    floor = 0.15
    calibration: Calibration | None = None
    val_out: NetworkOutputs | None = None
    if cfg.calibrate and len(val_idx) >= 20:
        raw = run_network(net, data.bands[val_idx], cfg.geometry)
        calibration = fit_output_calibration(raw, data, val_idx, cfg.head)
        # reported validation figures use out-of-sample (cross-fitted) calibration
        val_out = cross_fitted(raw, data, val_idx, cfg.head, cfg.seed)
        if val_out.grades is not None:
            zb = choose_zero_threshold(val_out.grades.mean(axis=1), data.totals[val_idx])
            calibration = replace(calibration, zero_below=zb)
    elif cfg.calibrate:
        logger.warning("fewer than 20 validation films: no output calibration")
    scale, residual_sd, tta_metrics = calibrate_uncertainty(
        net,
        data,
        val_idx,
        cfg,
        floor,
        outputs=val_out,
        zero_below=calibration.zero_below if calibration is not None else 0.0,
    )
    bins = tta_metrics.get("sd_scale_bins")
    plain = evaluate(net, data, val_idx, cfg)
    n_train_cases = len({data.case_ids[i] for i in train_idx})
    data_summary = _data_summary(data, train_idx, val_idx)
    used_command = command or default_command(data_dir, out, cfg, install)
    model_cfg = ScoreModelConfig(
        network=cfg.network,
        band=cfg.geometry,
        sd_scale=scale,
        sd_scale_bins=(tuple(bins["edges"]), tuple(bins["scales"])) if bins else None,
        sd_floor=floor,
        residual_sd=residual_sd,
        calibration=calibration,
        extra={
            "training": {
                "command": used_command,
                "seed": cfg.seed,
                "config": cfg.as_dict(),
                "data": data_summary,
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                "stopped_early": result.stopped_early,
                "n_train_cases": n_train_cases,
                "train_time_s": round(sum(float(r["seconds"]) for r in result.history), 1),
                "wall_time_s": round(time.perf_counter() - t_start, 1),
            },
            "metrics": {"validation_tta": tta_metrics, "validation_no_tta": plain},
        },
    )
    model_dir = out / "model"
    final_cfg = export_model(net, model_dir, model_cfg, data, val_idx, cfg)
    write_model_card(model_dir / CARD_NAME, final_cfg, list(result.history))
    installed: Path | None = None
    if install:
        installed = Path(install_dir) if install_dir is not None else PACKAGE_MODEL_DIR
        installed.mkdir(parents=True, exist_ok=True)
        for name in (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME):
            shutil.copy2(model_dir / name, installed / name)
        logger.info("installed score model to %s", installed)
    return TrainResult(
        out_dir=out,
        model_dir=model_dir,
        installed_to=installed,
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        stopped_early=result.stopped_early,
        val_metrics=tta_metrics,
        history=result.history,
        weights_sha256=final_cfg.sha256 or "",
        dtype=final_cfg.dtype,
    )


def _data_summary(
    data: BandSet, train_idx: npt.NDArray[np.intp], val_idx: npt.NDArray[np.intp]
) -> dict[str, Any]:
    from aacscore.kauppila import parse_groups

    g = parse_groups("lewis")
    first = data.copy_index == 0
    totals = data.totals[first]
    counts = {lab: 0 for lab in g.labels}
    for t in totals:
        counts[g.label(float(t))] += 1
    return {
        **{k: v for k, v in data.meta.items() if k != "skipped"},
        "n_skipped": len(data.meta.get("skipped", [])),
        "n_bands": len(data),
        "n_train_bands": len(train_idx),
        "n_val_films": len(val_idx),
        "aac24_mean": float(np.mean(totals)) if len(totals) else None,
        "aac24_median": float(np.median(totals)) if len(totals) else None,
        "lewis_groups": counts,
    }
