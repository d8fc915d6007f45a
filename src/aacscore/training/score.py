"""Training of the score network: bands cached once, augmented on the fly, the shared loop
(:mod:`aacscore.training.loop`: checkpoints, resume, early stopping on the validation MAE of the
total, history), output and uncertainty calibration, and export of safetensors weights +
``config.json`` + ``MODEL_CARD.md``.

Layout of ``out_dir``::

    cache/bands_<key>.npz       bands + targets (reused by later runs on the same data)
    checkpoints/, history.*     see :mod:`aacscore.training.loop`
    model/                      model.safetensors, config.json, MODEL_CARD.md
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from safetensors.torch import save_file

from aacscore._files import atomic_write_text, sha256_file
from aacscore.aorta.roi import DEFAULT_BAND_GEOMETRY, BandGeometry
from aacscore.kauppila import parse_groups
from aacscore.score.augment import normalize
from aacscore.score.network import HEADS, Head, NetworkConfig, ScoreNet, Targets, score_loss
from aacscore.score.predict import (
    CARD_NAME,
    CONFIG_NAME,
    PACKAGE_MODEL_DIR,
    WEIGHTS_NAME,
    Calibration,
    NetworkOutputs,
    ScoreModel,
    ScoreModelConfig,
    run_network,
)
from aacscore.training.augment import AugmentConfig, augment
from aacscore.training.calibration import (
    append_stratum_section,
    calibrate_uncertainty,
    calibration_strata,
    choose_zero_threshold,
    cross_fitted,
    fit_output_calibration,
    per_stratum_metrics,
)
from aacscore.training.card import write_model_card
from aacscore.training.config import TrainConfig, resolve_config
from aacscore.training.export import cpu_state, install_model
from aacscore.training.loop import Advance, Mode, progress_bar, run_loop
from aacscore.training.metrics import score_metrics
from aacscore.training.score_data import (
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

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreTrainConfig(TrainConfig):
    """Everything that defines a score training run (saved in checkpoints and ``config.json``)."""

    head: str = Head.SEGMENTS.value
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    val_fraction: float = 0.15
    patience: int = 10
    min_delta: float = 1e-3
    keep_checkpoints: int = 3
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
    calibrate: bool = True
    """Fit an isotonic output calibration on the validation films (see aacscore.score.predict)."""
    spine_copies: bool = False
    """For simulator folders, add one band per film cut from the spine model's own corners
    (labelled with the true grades), so the model learns the spine stage's real errors."""
    spine_model: str | None = None
    """Spine model of the spine copies (folder or ``nnunet:FOLDER``; None: the shipped one)."""
    init_from: str | None = None
    """Start from the weights of this score model folder (fine-tuning) instead of at random;
    its network and band geometry must match this run's."""
    init_backbone_only: bool = False
    """With ``init_from``: take only its backbone's weights (its head may differ from this
    run's, which starts at random): a model with another head trained from the same features,
    e.g. the total-only baseline from the segments model."""
    negative_weight: float = 1.0
    """Loss weight of the hard-negative bands (simulated ``--distribution negative`` films: no
    plaque, distractors over the band) relative to the other bands' 1."""
    wise_alpha: float = 1.0
    """With ``init_from``: export ``(1 - wise_alpha) x`` its weights ``+ wise_alpha x`` the
    fine-tuned ones (weight-space ensembling, WiSE-FT), calibrated like any model; 1: the
    fine-tuned weights."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.wise_alpha <= 1.0:
            raise ValueError(f"wise_alpha must lie in [0, 1], got {self.wise_alpha}")
        if self.wise_alpha < 1.0 and self.init_from is None:
            raise ValueError("wise_alpha < 1 averages with the init_from model: set init_from")
        if self.init_backbone_only and self.init_from is None:
            raise ValueError("init_backbone_only takes the backbone of init_from: set init_from")
        if self.init_backbone_only and self.wise_alpha < 1.0:
            raise ValueError("wise_alpha < 1 averages whole networks: not with init_backbone_only")
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; expected one of {', '.join(HEADS)}")
        object.__setattr__(self, "head", Head(self.head).value)
        if self.network.head != self.head:
            object.__setattr__(self, "network", replace(self.network, head=self.head))
        if not self.negative_weight > 0:
            raise ValueError(f"negative_weight must be positive, got {self.negative_weight}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        d = super().as_dict()
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
        if self.init_backbone_only:
            sig["init_backbone_only"] = True
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


def row_weights(
    data: BandSet, idx: npt.NDArray[np.intp], negative_weight: float
) -> npt.NDArray[np.float64]:
    """Loss weight of rows ``idx``: ``negative_weight`` for hard negatives, 1 otherwise."""
    return np.where(data.hard_negative[idx], negative_weight, 1.0).astype(np.float64)


def weighted_score_loss(
    out: dict[str, torch.Tensor],
    targets: Targets,
    head: str,
    weights: npt.NDArray[np.float64],
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`aacscore.score.network.score_loss` with per-row weights: the weighted mean of the
    per-weight groups' losses (each a per-row mean), weighted by the group's rows x weight."""
    levels = np.unique(weights)
    if len(levels) == 1:
        return score_loss(out, targets, head)
    total_w = float(weights.sum())
    loss: torch.Tensor | None = None
    parts: dict[str, float] = {}
    for w in levels:
        rows = torch.from_numpy(np.flatnonzero(weights == w))
        sub_out = {k: v[rows.to(v.device)] for k, v in out.items()}
        dev = targets.grades.device
        sub_t = Targets(
            grades=targets.grades[rows.to(dev)],
            total=targets.total[rows.to(dev)],
            fractions=targets.fractions[rows.to(dev)],
            fraction_weight=targets.fraction_weight,
        )
        lg, pg = score_loss(sub_out, sub_t, head)
        share = float(w) * len(rows) / total_w
        loss = lg * share if loss is None else loss + lg * share
        for k, v in pg.items():
            parts[k] = parts.get(k, 0.0) + v * share
    assert loss is not None
    return loss, parts


def _lr_lambda(total_steps: int, warmup_steps: int) -> Any:
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return f


def evaluate(
    net: ScoreNet, bs: BandSet, idx: npt.NDArray[np.intp], config: ScoreTrainConfig
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
    g = parse_groups(groups)
    idx = np.asarray([g.index(float(t)) for t in np.asarray(totals, dtype=np.float64)])
    counts = np.bincount(idx, minlength=len(g.labels)).astype(np.float64)
    return 1.0 / counts[idx]


def wise_average(
    start: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """``(1 - alpha) x start + alpha x tuned`` for every floating-point tensor (weights and batch
    norm statistics); other tensors (counters) are ``tuned``'s.

    Raises:
        ValueError: the two hold different tensors."""
    if set(start) != set(tuned):
        raise ValueError(f"different tensors: {sorted(set(start) ^ set(tuned))[:5]}")
    out: dict[str, torch.Tensor] = {}
    for k, t in tuned.items():
        s0 = start[k].to(device=t.device)
        if s0.shape != t.shape:
            raise ValueError(f"{k}: shape {tuple(s0.shape)} against {tuple(t.shape)}")
        out[k] = (1.0 - alpha) * s0.to(t.dtype) + alpha * t if t.is_floating_point() else t
    return out


def init_weights(net: ScoreNet, config: ScoreTrainConfig) -> None:
    """Load ``config.init_from``'s weights into ``net`` (fine-tuning a trained model); with
    ``config.init_backbone_only`` its backbone's only (the heads may differ).

    Raises:
        ValueError: the model's network (apart from the head, with ``init_backbone_only``) or
            band geometry differ from ``config``'s.
    """
    src = ScoreModel.load(config.init_from)
    theirs, ours = src.config.network.as_dict(), config.network.as_dict()
    ignored = {"head"} if config.init_backbone_only else set()
    diff = sorted(k for k in (set(theirs) | set(ours)) - ignored if theirs.get(k) != ours.get(k))
    if diff:
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
    state = src.net.state_dict()
    if config.init_backbone_only:
        net.backbone.load_state_dict(
            {
                k.removeprefix("backbone."): v.to(dev)
                for k, v in state.items()
                if k.startswith("backbone.")
            }
        )
        logger.info("initialised the backbone from %s (head at random)", src.path)
        return
    net.load_state_dict({k: v.to(dev) for k, v in state.items()})
    logger.info("initialised from the weights of %s", src.path)


class ScoreStage:
    """The score network as a :class:`aacscore.training.loop.Stage` (AdamW, warm-up + cosine)."""

    mode = Mode.MIN

    def __init__(
        self,
        data: BandSet,
        train_idx: npt.NDArray[np.intp],
        val_idx: npt.NDArray[np.intp],
        config: ScoreTrainConfig,
    ) -> None:
        if config.head != Head.TOTAL and not data.has_grades:
            raise ScoreDataError(
                data.meta.get("labels_csv", data.meta.get("data_dir", "?")),
                f"the {config.head!r} head needs the 8 segment grades; these data give totals "
                "only (use --head total)",
            )
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.data, self.train_idx, self.val_idx, self.config = data, train_idx, val_idx, config
        torch.manual_seed(config.seed)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.device = torch.device(config.device)
        self.net = ScoreNet(config.network).to(self.device)
        if config.init_from is not None:
            init_weights(self.net, config)  # a resumed checkpoint replaces these weights
        self.opt = torch.optim.AdamW(
            self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        n_batches = max(1, math.ceil(len(train_idx) / config.batch_size))
        self.steps = config.steps_per_epoch or n_batches
        warm = round(config.warmup_epochs * self.steps)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, _lr_lambda(self.steps * config.epochs, warm)
        )

    def steps_per_epoch(self) -> int:
        return self.steps

    def _order(self) -> npt.NDArray[np.intp]:
        cfg, train_idx = self.config, self.train_idx
        if cfg.balance_groups:
            w = torch.from_numpy(group_balance_weights(self.data.totals[train_idx]))
            draw = torch.multinomial(w, len(train_idx), replacement=True, generator=self.gen)
            perm = train_idx[draw.numpy()]
        else:
            perm = train_idx[torch.randperm(len(train_idx), generator=self.gen).numpy()]
        if cfg.steps_per_epoch:
            reps = math.ceil(cfg.steps_per_epoch * cfg.batch_size / len(perm))
            perm = np.concatenate([perm] * reps)[: cfg.steps_per_epoch * cfg.batch_size]
        return perm

    def batches(self) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]]:
        """One epoch's batches: (row indices, loss weight of each row)."""
        cfg = self.config
        perm = self._order()
        n_steps = max(1, math.ceil(len(perm) / cfg.batch_size))
        out = []
        for s in range(n_steps):
            idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            out.append((idx, row_weights(self.data, idx, cfg.negative_weight)))
        return out

    def train_epoch(self, epoch: int, advance: Advance | None) -> dict[str, Any]:
        cfg, data, dev = self.config, self.data, self.device
        self.net.train()
        sums: dict[str, float] = {}
        seen = 0
        for idx, weights in self.batches():
            x = torch.from_numpy(data.bands[idx].astype(np.float32))[:, None]
            if cfg.augment:
                x = augment(x, cfg.geometry, self.gen, cfg.augment_config)
            o = self.net(normalize(x).to(dev))
            targets = _targets(data, idx, cfg.fraction_weight, dev)
            loss, parts = weighted_score_loss(o, targets, cfg.head, weights)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
            self.opt.step()
            self.sched.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
            seen += len(idx)
            if advance is not None:
                advance(1)
        return {
            "lr": float(self.sched.get_last_lr()[0]),
            **{f"train_{k}": v / max(1, seen) for k, v in sums.items()},
        }

    def validate(self) -> dict[str, Any]:
        val = evaluate(self.net, self.data, self.val_idx, self.config)
        return {
            "val_loss": val["loss"],
            "val_mae": val["mae"],
            "val_rmse": val["rmse"],
            "val_spearman": val["spearman"],
            "val_icc21": val["icc21"]["value"],
            "val_group_accuracy": val["group"]["accuracy"],
            "val_segment_exact": val.get("segment_exact", {}).get("overall"),
        }

    def monitor(self, row: Mapping[str, Any]) -> float:
        return float(row["val_mae"])

    def describe(self, row: Mapping[str, Any]) -> str:
        return (
            f"loss {row['train_loss']:.4f} val loss {row['val_loss']:.4f} "
            f"MAE {row['val_mae']:.3f} (best epoch {row['best_epoch']})"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "generator": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])

    def weights(self) -> dict[str, Any]:
        return cpu_state(self.net)

    def signature(self) -> dict[str, Any]:
        return self.config.model_signature()

    def plan_epochs(self, epochs: int) -> None:
        """The cosine schedule keeps its length (only the epoch count is cut)."""


def fit(
    data: BandSet,
    train_idx: npt.NDArray[np.intp],
    val_idx: npt.NDArray[np.intp],
    config: ScoreTrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = False,
) -> FitResult:
    """Train ``config.network`` on ``data[train_idx]``, validating on ``data[val_idx]``."""
    stage = ScoreStage(data, train_idx, val_idx, config)
    with progress_bar(progress) as prog:
        loop = run_loop(stage, config, out_dir, resume=resume, progress=prog)
    return FitResult(
        best_state=loop.best_weights,
        best_epoch=loop.best_epoch,
        epochs_run=loop.epochs_run,
        stopped_early=loop.stopped_early,
        history=loop.history,
    )


def export_model(
    net: ScoreNet,
    model_dir: Path,
    model_config: ScoreModelConfig,
    data: BandSet,
    val_idx: npt.NDArray[np.intp],
    train_config: ScoreTrainConfig,
) -> ScoreModelConfig:
    """Write weights (fp16 when validation totals do not change) and config.json."""
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
        sha256=sha256_file(weights),
        extra={
            **dict(model_config.extra),
            "fp16_check": {"max_total_change": max_diff, "mae_change": d_mae},
        },
    )
    atomic_write_text(model_dir / CONFIG_NAME, json.dumps(cfg.as_dict(), indent=2) + "\n")
    return cfg


def default_command(
    data: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    config: ScoreTrainConfig,
    install: bool,
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
    config: ScoreTrainConfig,
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
    config: ScoreTrainConfig | None = None,
    *,
    resume: bool = False,
    provider: GeometryProvider | None = None,
    install: bool = False,
    install_dir: str | Path | None = None,
    progress: bool = False,
    command: str | None = None,
    cache_dir: str | Path | None = None,
    **settings: Any,
) -> TrainResult:
    """Train a score model on simulator folder(s) (or labels CSVs + ``provider``; several
    sources are combined), export it to ``out_dir/model`` and, with ``install``, copy it to the
    package (or ``install_dir``).

    The recipe is ``config`` or, instead, :class:`ScoreTrainConfig` keyword ``settings``
    (``head=``, ``epochs=``, ...); both at once raise TypeError. ``cache_dir`` holds the band
    cache (default ``out_dir/cache``).
    """
    cfg = resolve_config(ScoreTrainConfig, config, settings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    sources = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
    if cfg.spine_copies and provider is None:
        provider = spine_geometry_provider(cfg.spine_model)
    data = concat_bandsets(
        [load_training_data(d, out, cfg, provider, progress, cache_dir) for d in sources]
    )
    # held out by case within each family and hard-negative stratum: all are in validation
    strata = [f"{f}:{int(n)}" for f, n in zip(data.family, data.hard_negative, strict=True)]
    train_idx, val_idx = split_by_case(data.case_ids, cfg.val_fraction, cfg.seed, strata)
    # Validate on one copy per film (the first jitter) so every film counts once.
    val_idx = val_idx[data.copy_index[val_idx] == 0]
    logger.info(
        "%d training bands (%d hard negatives), %d validation films (%s)",
        len(train_idx),
        int(data.hard_negative[train_idx].sum()),
        len(val_idx),
        calibration_strata(data, val_idx),
    )
    result = fit(data, train_idx, val_idx, cfg, out, resume=resume, progress=progress)

    net = ScoreNet(cfg.network)
    state = result.best_state
    if cfg.init_from is not None and cfg.wise_alpha < 1.0:
        start = ScoreModel.load(cfg.init_from).net.state_dict()
        state = wise_average(start, state, cfg.wise_alpha)
        logger.info(
            "weights: %.2f x %s + %.2f x the fine-tuned",
            1 - cfg.wise_alpha,
            cfg.init_from,
            cfg.wise_alpha,
        )
    net.load_state_dict(state)
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
        cfg.geometry,
        floor,
        outputs=val_out,
        zero_below=calibration.zero_below if calibration is not None else 0.0,
    )
    bins = tta_metrics.get("sd_scale_bins")
    plain = evaluate(net, data, val_idx, cfg)
    by_family = per_stratum_metrics(
        net,
        data,
        val_idx,
        cfg.geometry,
        val_out,
        calibration.zero_below if calibration is not None else 0.0,
    )
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
            "metrics": {
                "validation_tta": tta_metrics,
                "validation_no_tta": plain,
                "validation_tta_by_stratum": by_family,
            },
            "calibration_fit": {
                "n_films": len(val_idx),
                "strata": calibration_strata(data, val_idx),
                "cross_fitted_figures": val_out is not None,
            },
        },
    )
    model_dir = out / "model"
    final_cfg = export_model(net, model_dir, model_cfg, data, val_idx, cfg)
    write_model_card(model_dir / CARD_NAME, final_cfg, list(result.history))
    append_stratum_section(model_dir / CARD_NAME, by_family, calibration_strata(data, val_idx))
    installed: Path | None = None
    if install:
        dest = Path(install_dir) if install_dir is not None else PACKAGE_MODEL_DIR
        installed = install_model(model_dir, (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME), dest)
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
