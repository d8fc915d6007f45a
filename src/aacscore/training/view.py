"""Training of the view classifier (:mod:`aacscore.gate.view`) on procedural images.

Data (:func:`build_view_dataset`): ``n_per_class`` images of every class from
:func:`aacscore.simulate.views.generate`, preprocessed to the network input and stored as uint8
npz shards (``x``: (n, s, s), ``y``: class numbers) in a folder such as ``data/views_11``. The
validation set is a second folder made with another seed. Training (:func:`train_view`) runs
the common loop (:func:`aacscore.training.loop.run_loop`) with AdamW, a cosine schedule,
label smoothing, random mirroring/shifts/contrast on the stored inputs, and early stopping on
the balanced validation accuracy; the best weights are exported as fp16 safetensors with
``config.json``, ``metrics.json`` and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from aacscore._files import atomic_savez, atomic_write_text, json_safe, sha256_file
from aacscore.gate.view import (
    ACCEPT_P_LATERAL,
    ACCEPT_P_LATERAL_RANGE,
    CLASSES,
    CONFIG_FILE,
    PACKAGE_MODEL_DIR,
    WEIGHTS_FILE,
    ViewClass,
    ViewNet,
    mirrored_probabilities,
    preprocess,
)
from aacscore.training.config import ViewTrainConfig, resolve_config
from aacscore.training.errors import TrainingError
from aacscore.training.export import cpu_state, fp16_roundtrip, install_model, save_weights
from aacscore.training.loop import BEST_CHECKPOINT, CHECKPOINT_DIR, Advance, Mode, run_loop
from aacscore.training.style import style_batch

logger = logging.getLogger(__name__)

SHARD = 250
"""Images per class and shard file."""
METRICS_FILE = "metrics.json"
CARD_FILE = "MODEL_CARD.md"
MODEL_FILES = (WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE, CARD_FILE)
NAMES: tuple[str, ...] = tuple(c.value for c in CLASSES)
LATERAL = NAMES.index(ViewClass.LATERAL_LUMBAR.value)


# -------------------------------------------------------------------------------------------
# Data


def _shard_job(args: tuple[str, int, int, int, int, str]) -> str:
    from aacscore.simulate.views import generate

    cls, seed, start, stop, size, path = args
    torch.set_num_threads(1)
    x = np.stack(
        [
            (preprocess(generate(cls, seed, i), size) * 255 + 0.5).astype(np.uint8)
            for i in range(start, stop)
        ]
    )
    y = np.full(len(x), NAMES.index(cls), dtype=np.int64)
    atomic_savez(Path(path), x=x, y=y)
    return path


def _run_jobs(fn: Callable[[Any], str], todo: Sequence[Any], jobs: int) -> None:
    """Run ``fn`` on every shard job, in ``jobs`` forked processes when there are several."""
    if jobs > 1 and len(todo) > 1:
        with mp.get_context("fork").Pool(jobs) as pool:
            for p in pool.imap_unordered(fn, todo):
                logger.info("wrote %s", p)
    else:
        for job in todo:
            fn(job)


def build_view_dataset(
    out_dir: str | Path,
    n_per_class: int,
    seed: int,
    *,
    classes: Sequence[str] = NAMES,
    size: int = 128,
    jobs: int = 1,
) -> Path:
    """Generate (or complete) the shards of a dataset folder; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    todo = []
    for cls in classes:
        if cls not in NAMES:
            raise ValueError(f"unknown view class {cls!r}")
        for start in range(0, n_per_class, SHARD):
            stop = min(n_per_class, start + SHARD)
            path = out / f"{cls}_{start:05d}_{stop:05d}.npz"
            if not path.is_file():
                todo.append((cls, seed, start, stop, size, str(path)))
    t0 = time.perf_counter()
    _run_jobs(_shard_job, todo, jobs)
    summary = {
        "seed": seed,
        "n_per_class": n_per_class,
        "size": size,
        "classes": list(classes),
        "generation_s": round(time.perf_counter() - t0, 1),
        "shards": len(todo),
    }
    prev = out / "summary.json"
    if prev.is_file() and not todo:
        return out
    atomic_write_text(prev, json.dumps(summary, indent=2))
    return out


FILM_SHARD = 50
"""Films per shard file of :func:`build_film_shards`."""
FILM_CLASSES: tuple[str, ...] = ("lateral_lumbar", "lumbar_spot")


def _film_job(args: tuple[list[str], int, int, int, int, bool, str]) -> str:
    from aacscore.io import read_radiograph
    from aacscore.simulate.dataset import load_case_annotations
    from aacscore.simulate.views import film_image, working_film

    films, seed, start, copies, size, styled, path = args
    torch.set_num_threads(1)
    xs, ys = [], []
    for i, f in enumerate(films, start=start):
        ann = load_case_annotations(Path(f).with_suffix(".json"))
        corners = {n: v["corners"] for n, v in ann["vertebrae"].items()}
        pixels = read_radiograph(f).pixels
        for c, cls in enumerate(FILM_CLASSES):
            for k in range(copies):
                rng = np.random.default_rng(np.random.SeedSequence([seed, i, c, k]))
                if not styled and cls == "lateral_lumbar" and k == 0:
                    img = pixels  # the whole film, as the pipeline sees it
                else:
                    spacing = float(np.mean(np.asarray(ann["spacing_mm"], dtype=np.float64)))
                    film = working_film(pixels, corners, spacing, rng)
                    img = film_image(film, cls, rng, styled=styled)
                xs.append((preprocess(img, size) * 255 + 0.5).astype(np.uint8))
                ys.append(NAMES.index(cls))
    atomic_savez(Path(path), x=np.stack(xs), y=np.asarray(ys, dtype=np.int64))
    return path


def build_film_shards(
    films_dir: str | Path,
    out_dir: str | Path,
    seed: int,
    *,
    copies: int = 2,
    styled: bool = True,
    size: int = 128,
    jobs: int = 1,
) -> Path:
    """Shards of lateral_lumbar and lumbar_spot images cut from the full-size simulated films
    of ``films_dir`` (``case_*.dcm`` or ``case_*.png`` with their ``.json`` truth, read by the
    pipeline's reader): per film ``copies`` of each class, resampled to the phantoms' scale and
    styled like every generated radiograph (:func:`aacscore.simulate.views.film_image`). With
    ``styled`` False (validation) the first lateral image is the whole film as read. Returns
    ``out_dir``; shards already there are kept."""
    src = Path(films_dir)
    films = []
    for truth in sorted(src.glob("case_*.json")):  # the film beside each truth, DICOM first
        found = [f for f in (truth.with_suffix(".dcm"), truth.with_suffix(".png")) if f.is_file()]
        if found:
            films.append(str(found[0]))
    if not films:
        raise TrainingError(f"{src}: no case_*.dcm/png films with their .json truth")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recipe = {"seed": seed, "copies": copies, "styled": styled, "size": size}
    prev = out / "summary.json"
    if prev.is_file():
        old = json.loads(prev.read_text(encoding="utf-8"))
        if any(old.get(k) != v for k, v in recipe.items()):
            raise TrainingError(
                f"{out}: shards made with { ({k: old.get(k) for k in recipe}) }, not {recipe}; "
                "remove the folder to rebuild them"
            )
    todo = []
    for start in range(0, len(films), FILM_SHARD):
        stop = min(len(films), start + FILM_SHARD)
        path = out / f"films_{start:05d}_{stop:05d}.npz"
        if not path.is_file():
            todo.append((films[start:stop], seed, start, copies, size, styled, str(path)))
    t0 = time.perf_counter()
    _run_jobs(_film_job, todo, jobs)
    if todo or not (out / "summary.json").is_file():
        summary = {
            "films": str(src),
            "n_films": len(films),
            **recipe,
            "classes": list(FILM_CLASSES),
            "generation_s": round(time.perf_counter() - t0, 1),
        }
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return out


def load_view_dataset(
    *data_dirs: str | Path,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """All shards of one or more dataset folders: inputs (n, s, s) uint8 and class numbers."""
    files = []
    for d in data_dirs:
        found = sorted(Path(d).glob("*.npz"))
        if not found:
            raise TrainingError(f"{d}: no .npz shards (build them with build_view_dataset)")
        files.extend(found)
    if not files:
        raise TrainingError("no view dataset folder given")
    xs, ys = [], []
    for f in files:
        with np.load(f) as z:
            xs.append(z["x"])
            ys.append(z["y"])
    return np.concatenate(xs), np.concatenate(ys)


# -------------------------------------------------------------------------------------------
# Metrics


def view_metrics(
    probs: npt.NDArray[np.floating[Any]],
    y: npt.NDArray[np.int64],
    accept_p_lateral: float = ACCEPT_P_LATERAL,
) -> dict[str, Any]:
    """Accuracy per class, confusion table and the gate's error rates of mirror-averaged
    probabilities ``(n, classes)`` against the true classes ``y``.

    A film is accepted when its label is lateral_lumbar or ``p_lateral >= accept_p_lateral``
    (the decision rule of :class:`aacscore.gate.view.ViewPrediction`).
    """
    pred = probs.argmax(axis=1)
    accepted = (pred == LATERAL) | (probs[:, LATERAL] >= accept_p_lateral)
    per_class: dict[str, float | None] = {}
    accept_rate: dict[str, float | None] = {}
    confusion: dict[str, dict[str, int]] = {}
    for k, name in enumerate(NAMES):
        sel = y == k
        n = int(sel.sum())
        per_class[name] = float((pred[sel] == k).mean()) if n else None
        accept_rate[name] = float(accepted[sel].mean()) if n else None
        confusion[name] = {m: int(((pred == j) & sel).sum()) for j, m in enumerate(NAMES)}
    present = [v for v in per_class.values() if v is not None]
    negatives = [v for n, v in accept_rate.items() if n != NAMES[LATERAL] and v is not None]
    lat = accept_rate[NAMES[LATERAL]]
    return {
        "n": len(y),
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "balanced_accuracy": float(np.mean(present)) if present else float("nan"),
        "per_class_accuracy": per_class,
        "lateral_wrongly_refused": None if lat is None else 1.0 - lat,
        "negatives_wrongly_accepted": {n: v for n, v in accept_rate.items() if n != NAMES[LATERAL]},
        "max_negative_accepted": max(negatives) if negatives else None,
        "accept_p_lateral": accept_p_lateral,
        "confusion": confusion,
    }


def choose_accept_threshold(
    probs: npt.NDArray[np.floating[Any]], y: npt.NDArray[np.int64], max_refused: float
) -> float:
    """The largest acceptance threshold (a multiple of 0.01 in
    :data:`~aacscore.gate.view.ACCEPT_P_LATERAL_RANGE`) that refuses at most ``max_refused`` of
    the lateral films among ``probs``; the range's lower end when none does."""
    lat = probs[y == LATERAL]
    if len(lat) == 0:
        raise TrainingError("no lateral_lumbar images to choose the acceptance threshold on")
    not_lat = lat.argmax(axis=1) != LATERAL
    lo, hi = ACCEPT_P_LATERAL_RANGE
    best = lo
    for t in np.arange(round(lo * 100), round(hi * 100) + 1) / 100.0:
        if float((not_lat & (lat[:, LATERAL] < t)).mean()) <= max_refused + 1e-12:
            best = float(t)
        else:
            break
    return best


@torch.inference_mode()
def predict_probabilities(
    net: ViewNet, x: npt.NDArray[np.uint8], device: str = "cpu", batch: int = 256
) -> npt.NDArray[np.float64]:
    """Mirror-averaged probabilities of stored uint8 inputs."""
    out = []
    for i in range(0, len(x), batch):
        t = torch.from_numpy(x[i : i + batch]).to(device).float().div_(255.0)[:, None]
        out.append(mirrored_probabilities(net, t).cpu().double().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(NAMES)))


# -------------------------------------------------------------------------------------------
# Stage


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random mirroring, gamma, contrast and noise of a (n, 1, s, s) batch in [0, 1]."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], torch.flip(x, dims=[3]), x)
    g = torch.exp((torch.rand(n, generator=gen) - 0.5) * 0.8)[:, None, None, None]
    x = x.clamp(0, 1) ** g
    c = (0.8 + 0.4 * torch.rand(n, generator=gen))[:, None, None, None]
    x = ((x - 0.5) * c + 0.5).clamp(0, 1)
    noise = 0.03 * torch.rand(n, generator=gen)[:, None, None, None]
    return (x + noise * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def restyle_inputs(x: torch.Tensor, rng: np.random.Generator, p: float) -> torch.Tensor:
    """Restyle each (1, s, s) letterboxed input of a batch with probability ``p``: the
    intensity transforms of :func:`aacscore.training.style.restyle_intensity` on the image area
    (the bounding box of its non-zero pixels), then its 1st/99th percentiles mapped to 0/1 as
    :func:`aacscore.gate.view.preprocess` does."""
    valid = (x > 0).to(x.dtype)
    out, _, _ = style_batch(x, None, valid, rng, p, spatial=False)
    for i in range(out.shape[0]):
        v = valid[i, 0] > 0
        if not bool(v.any()) or torch.equal(out[i], x[i]):
            continue
        vals = out[i, 0][v]
        lo, hi = torch.quantile(vals, torch.tensor([0.01, 0.99], dtype=vals.dtype))
        if float(hi - lo) > 1e-6:
            out[i, 0] = torch.where(v, ((out[i, 0] - lo) / (hi - lo)).clamp(0, 1), 0.0)
    return out


class ViewStage:
    """The view classifier as a :class:`aacscore.training.loop.Stage`."""

    mode = Mode.MAX

    def __init__(
        self,
        config: ViewTrainConfig,
        train: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]],
        val: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]],
    ) -> None:
        self.config = config
        self.device = torch.device(config.device)
        torch.manual_seed(config.seed)
        self.net = ViewNet(config.filters, len(NAMES), config.dropout).to(self.device)
        self.opt = torch.optim.AdamW(
            self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.x, self.y = train
        self.vx, self.vy = val
        self.gen = torch.Generator().manual_seed(config.seed)
        self.style_rng = np.random.default_rng(config.seed + 7919)
        self.total_epochs = config.epochs
        self.step = 0
        counts = np.bincount(self.y, minlength=len(NAMES)).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(NAMES), 0.0)
        self.class_weight = torch.tensor(w, dtype=torch.float32, device=self.device)

    def steps_per_epoch(self) -> int:
        if self.config.steps_per_epoch is not None:
            return self.config.steps_per_epoch
        return max(1, math.ceil(len(self.x) / self.config.batch_size))

    def _lr(self) -> float:
        total = max(1, self.total_epochs * self.steps_per_epoch())
        warm = max(1, total // 30)
        if self.step < warm:
            return self.config.lr * (self.step + 1) / warm
        t = min(1.0, (self.step - warm) / max(1, total - warm))
        return self.config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))

    def train_epoch(self, epoch: int, advance: Advance | None) -> dict[str, Any]:
        self.net.train()
        order = torch.randperm(len(self.x), generator=self.gen).numpy()
        bs = self.config.batch_size
        losses: list[float] = []
        correct = 0
        seen = 0
        for s in range(self.steps_per_epoch()):
            idx = order[(s * bs) % len(order) : (s * bs) % len(order) + bs]
            if len(idx) == 0:
                idx = order[:bs]
            xb = torch.from_numpy(self.x[idx]).float().div_(255.0)[:, None]
            if self.config.style_prob > 0:
                xb = restyle_inputs(xb, self.style_rng, self.config.style_prob)
            xb = augment(xb, self.gen).to(self.device)
            yb = torch.from_numpy(self.y[idx]).to(self.device)
            for g in self.opt.param_groups:
                g["lr"] = self._lr()
            logits = self.net(xb)
            loss = F.cross_entropy(
                logits, yb, weight=self.class_weight, label_smoothing=self.config.label_smoothing
            )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.step += 1
            losses.append(float(loss.detach()))
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            if advance is not None:
                advance(1)
        return {
            "train_loss": float(np.mean(losses)),
            "train_accuracy": correct / max(seen, 1),
            "lr": self._lr(),
        }

    def validate(self) -> dict[str, Any]:
        probs = predict_probabilities(self.net, self.vx, str(self.device))
        m = view_metrics(probs, self.vy)
        nll = -np.log(np.clip(probs[np.arange(len(self.vy)), self.vy], 1e-9, 1.0)).mean()
        return {
            "val_loss": float(nll),
            "val_accuracy": m["accuracy"],
            "val_balanced_accuracy": m["balanced_accuracy"],
            "val_lateral_refused": m["lateral_wrongly_refused"],
            "val_max_negative_accepted": m["max_negative_accepted"],
            "val_per_class": m["per_class_accuracy"],
        }

    def monitor(self, row: Mapping[str, Any]) -> float:
        return float(row["val_balanced_accuracy"])

    def describe(self, row: Mapping[str, Any]) -> str:
        def f(v: Any) -> str:
            return "n/a" if v is None else f"{v:.4f}"

        return (
            f"loss {row['train_loss']:.4f} (train acc {row['train_accuracy']:.3f}), "
            f"val balanced acc {f(row['val_balanced_accuracy'])}, lateral refused "
            f"{f(row['val_lateral_refused'])}, max negative accepted "
            f"{f(row['val_max_negative_accepted'])}"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "step": self.step,
            "gen": self.gen.get_state(),
            "style_rng": self.style_rng.bit_generator.state,
            "total_epochs": self.total_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.step = int(state["step"])
        self.gen.set_state(state["gen"])
        if "style_rng" in state:
            self.style_rng.bit_generator.state = state["style_rng"]
        # a resumed run with more epochs stretches the learning-rate schedule to them
        self.total_epochs = max(int(state["total_epochs"]), self.config.epochs)

    def weights(self) -> dict[str, Any]:
        return cpu_state(self.net)

    def signature(self) -> dict[str, Any]:
        c = self.config
        return {
            "n_train": len(self.x),
            "n_val": len(self.vx),
            "filters": list(c.filters),
            "input_size": c.input_size,
            "batch_size": c.batch_size,
            "lr": c.lr,
            "seed": c.seed,
        }

    def plan_epochs(self, epochs: int) -> None:
        self.total_epochs = epochs


# -------------------------------------------------------------------------------------------
# Export and card


@dataclass(frozen=True)
class ViewTrainResult:
    """Where the model went and how it did (validation figures of the fp16 weights)."""

    model_dir: Path
    installed_to: Path | None
    metrics: dict[str, Any]
    train_time_s: float


def _folders_text(folders: Sequence[Mapping[str, Any]], fallback: Any) -> str:
    """What each dataset folder holds, for the card."""
    if not folders:
        return f"`{fallback}`"
    parts = []
    for f in folders:
        if "n_per_class" in f:
            parts.append(
                f"`{f['folder']}` (generated, {f['n_per_class']} per class, seed {f.get('seed')})"
            )
        elif "n_films" in f:
            kind = "styled" if f.get("styled") else "as read, unstyled"
            parts.append(
                f"`{f['folder']}` ({f['n_films']} films of `{f.get('films')}` x {f.get('copies')}"
                f" lateral + spot images, {kind}, seed {f.get('seed')})"
            )
        else:
            parts.append(f"`{f['folder']}`")
    return "; ".join(parts)


def write_view_card(model_dir: Path, config: Mapping[str, Any], metrics: Mapping[str, Any]) -> Path:
    """``MODEL_CARD.md`` of a view model folder (benchmark section filled by benchmarks/view.py)."""
    tr = config.get("training", {})
    tc = tr.get("config", {})
    val = metrics.get("validation", {})
    lines = [
        "# aacscore view classifier (input gate: is this a lateral lumbar radiograph?)",
        "",
        "## What it does",
        "",
        "Tells a lateral lumbar spine radiograph from 8 other kinds of image: "
        + ", ".join(f"`{n}`" for n in NAMES[1:])
        + ". The input gate refuses a film whose label is not `lateral_lumbar` unless its "
        f"p_lateral >= {config.get('accept_p_lateral', ACCEPT_P_LATERAL)} (`accept_p_lateral` "
        "in config.json: the largest threshold that refused at most "
        f"{tc.get('max_lateral_refused', '?')} of the validation lateral images; "
        "codes: `ap_lumbar` wrong_view; chest, "
        "lateral_thoracic, cervical, pelvis_hip, other_body_part wrong_region; "
        "lumbar_spot field_incomplete; "
        "not_radiograph not_radiograph); below 0.5 an accepted film is flagged "
        "`view_uncertain` (see the benchmark section for the real films checked).",
        "",
        "Intended use: research. Not a medical device.",
        "",
        "## Model",
        "",
        f"- input: the film resized to {config['input_size']} px on its longer side (aspect "
        "kept, antialiased), grey levels mapped by their 1st/99th percentiles to 0/1, centred on "
        f"a black {config['input_size']}x{config['input_size']} square "
        "(`aacscore.gate.view.preprocess`)",
        f"- network: `ViewNet`, 5 strided blocks with filters {config['filters']}, batch norm, "
        "ReLU, global average + max pooling, dropout, linear head over 9 classes; "
        "prediction = mean of the softmax of the film and its mirror image",
        f"- weights: `{WEIGHTS_FILE}` (float16, {config.get('n_parameters', '?')} parameters), "
        f"sha256 `{config.get('sha256', '?')}`",
        "",
        "## Data (procedural only: no real film was used for training)",
        "",
        "All images are generated by `aacscore.simulate.views` (see its docstring): "
        "lateral_lumbar = films of both simulator families (A `simulate_case` at 0.8-1.6 mm/px, "
        "B `simulate_case_b` at 1.5-2.0 mm/px, alternating, two crops per film), whole or "
        "cropped keeping L1-L4 and the T12/L1 and L4/L5 discs; lumbar_spot = crops of such "
        "films keeping only L4-S1 or only T12-L2; ap_lumbar, chest, lateral_thoracic, cervical, "
        "pelvis_hip and other_body_part = projection phantoms of that anatomy "
        "(`aacscore.simulate.views_chain`: bone and water path lengths in mm, e.g. pedicle rings "
        "and spinous processes seen frontally, lungs either side of the mediastinum, ribs, "
        "clavicles, diaphragm, iliac wings, sacrum, femoral heads) rendered through the SAME "
        "imaging chains as the lateral films (family A's or family B's exposure, scatter, "
        "noise, log and vendor processing, collimation, burnt-in marker and text); then every "
        "radiograph class gets the same style randomisation (gamma, window, inversion, noise, "
        "blur, unsharp masking, rotation +-15 deg, vignetting, grid lines, collimation, "
        "burned-in text) at the same strength; not_radiograph = scikit-image photographs (the "
        "cat `chelsea` held out), textures, gradients, drawings, screenshots and tables, label "
        "maps, aacscore-style overlays. Folders of full-size simulated films "
        "(`--films`: read by the pipeline's reader, resampled to 0.8-2.0 mm/px, cut into "
        "lateral and spot images and styled the same way; `--val-films`: the whole films as "
        "read, unstyled) add lateral and spot images at the scale the gate sees; with "
        f"`--style-prob` ({tc.get('style_prob', 0.0)}) that share of the training images of "
        "every class is restyled in the batch (`aacscore.training.style.restyle_intensity`: "
        "random shallow conv nets, tone curves, CLAHE, unsharp masking, noise, JPEG, moire, "
        "glare).",
        "",
        f"- training set: {tr.get('n_train')} images: "
        + _folders_text(tr.get("folders", {}).get("data", []), tr.get("data")),
        f"- validation set: {tr.get('n_val')} images: "
        + _folders_text(tr.get("folders", {}).get("val", []), tr.get("val_data")),
        "",
        "## Recipe",
        "",
        "```",
        str(tr.get("command", "(called from Python: aacscore.training.view.train_view)")),
        "```",
        "",
        f"- AdamW lr {tc.get('lr')} (warm-up, cosine decay), weight decay "
        f"{tc.get('weight_decay')}, batch {tc.get('batch_size')}, "
        f"label smoothing {tc.get('label_smoothing')}, class-balanced "
        "cross-entropy; augmentation: mirroring, gamma, contrast, noise",
        f"- epochs run {tr.get('epochs_run')} (best {tr.get('best_epoch')}, stopped by time: "
        f"{tr.get('stopped_by_time')}), training time {tr.get('train_time_s')} s on "
        f"{tr.get('threads')} CPU threads",
        "",
        "## Validation (held-out synthetic seed, fp16 weights)",
        "",
        f"- accuracy {val.get('accuracy', float('nan')):.4f}, balanced accuracy "
        f"{val.get('balanced_accuracy', float('nan')):.4f}",
        f"- acceptance threshold (p_lateral): {val.get('accept_p_lateral')}",
        f"- lateral films wrongly refused: {val.get('lateral_wrongly_refused')}",
        f"- largest share of a negative class wrongly accepted: {val.get('max_negative_accepted')}",
        "",
        "| class | accuracy | accepted |",
        "|---|---|---|",
    ]
    acc = val.get("per_class_accuracy", {})
    neg = val.get("negatives_wrongly_accepted", {})
    for n in NAMES:
        a = acc.get(n)
        r = neg.get(
            n, None if n != NAMES[LATERAL] else 1 - (val.get("lateral_wrongly_refused") or 0)
        )
        lines.append(
            f"| {n} | {'n/a' if a is None else f'{a:.3f}'} | {'n/a' if r is None else f'{r:.3f}'} |"
        )
    lines += [
        "",
        "## Benchmark",
        "",
        BENCH_BEGIN,
        "Not yet benchmarked: run `benchmarks/view.py --card`.",
        BENCH_END,
        "",
        "## Limitations",
        "",
        "- Trained on procedural images only: simulated lateral films and projection phantoms "
        "of the other regions built from a few solids each; real films of other regions carry "
        "detail (organs, vessels, implants, positioning) the phantoms lack. See the benchmark "
        "section for the few real films we checked; they were never used for training or "
        "tuning.",
        "- Unusual lateral lumbar films (implants, severe scoliosis, contrast, children, "
        "stitched long films) were never seen and may be refused.",
        "- p_lateral is not calibrated on real data.",
        "",
    ]
    path = model_dir / CARD_FILE
    atomic_write_text(path, "\n".join(lines))
    return path


BENCH_BEGIN = "<!-- view-benchmark:begin -->"
BENCH_END = "<!-- view-benchmark:end -->"


def replace_benchmark(card: str | Path, markdown: str) -> None:
    """Replace the benchmark section of a view model card."""
    p = Path(card)
    text = p.read_text(encoding="utf-8")
    i, j = text.find(BENCH_BEGIN), text.find(BENCH_END)
    block = f"{BENCH_BEGIN}\n{markdown.strip()}\n{BENCH_END}"
    text = (
        text[:i] + block + text[j + len(BENCH_END) :]
        if i >= 0 and j > i
        else text + "\n" + block + "\n"
    )
    atomic_write_text(p, text)


def export_view_model(
    weights: Mapping[str, torch.Tensor],
    config: ViewTrainConfig,
    model_dir: Path,
    val: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]],
    training: Mapping[str, Any],
) -> dict[str, Any]:
    """Write the fp16 weights, config.json, metrics.json and the card; returns the metrics."""
    net = ViewNet(config.filters, len(NAMES), config.dropout)
    net.load_state_dict(fp16_roundtrip(weights))
    probs = predict_probabilities(net, val[0])
    if bool((val[1] == LATERAL).any()):
        accept = choose_accept_threshold(probs, val[1], config.max_lateral_refused)
    else:
        logger.warning("no lateral validation images: acceptance threshold %s", ACCEPT_P_LATERAL)
        accept = ACCEPT_P_LATERAL
    metrics = {
        "validation": view_metrics(probs, val[1], accept),
        "validation_at_default_threshold": view_metrics(probs, val[1]),
    }
    model_dir.mkdir(parents=True, exist_ok=True)
    save_weights(net, model_dir / WEIGHTS_FILE, fp16=True, metadata={"model": "aacscore-view"})
    cfg = {
        "classes": list(NAMES),
        "input_size": config.input_size,
        "filters": list(config.filters),
        "percentiles": [1.0, 99.0],
        "mirror_average": True,
        "accept_p_lateral": accept,
        "dtype": "float16",
        "n_parameters": sum(p.numel() for p in net.parameters()),
        "sha256": sha256_file(model_dir / WEIGHTS_FILE),
        "training": json_safe(dict(training)),
    }
    atomic_write_text(model_dir / CONFIG_FILE, json.dumps(cfg, indent=2))
    atomic_write_text(model_dir / METRICS_FILE, json.dumps(json_safe(metrics), indent=2))
    write_view_card(model_dir, cfg, metrics)
    return metrics


Folders = str | Path | Sequence[str | Path]
"""One dataset folder or several (their shards are pooled)."""


def _folders(d: Folders) -> list[Path]:
    return [Path(d)] if isinstance(d, str | Path) else [Path(p) for p in d]


def train_view(
    data: Folders,
    out_dir: str | Path,
    config: ViewTrainConfig | None = None,
    *,
    val_data: Folders | None = None,
    install: bool = False,
    install_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    command: str | None = None,
    **overrides: Any,
) -> ViewTrainResult:
    """Train the view classifier on dataset folders (:func:`build_view_dataset`,
    :func:`build_film_shards`) and export it to ``out_dir/model`` (and the package's
    ``models/view`` with ``install``), with the acceptance threshold chosen on the validation
    images (:func:`choose_accept_threshold`).

    Without ``val_data`` a stratified ``val_fraction`` of ``data`` is held out.
    """
    from aacscore.training.loop import progress_bar

    cfg = resolve_config(ViewTrainConfig, config, overrides)
    t0 = time.perf_counter()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    train_dirs = _folders(data)
    val_dirs = None if val_data is None else _folders(val_data)
    x, y = load_view_dataset(*train_dirs)
    if x.shape[1] != cfg.input_size:
        raise TrainingError(f"{data}: inputs are {x.shape[1]} px, config wants {cfg.input_size}")
    if val_dirs is not None:
        vx, vy = load_view_dataset(*val_dirs)
    else:
        rng = np.random.default_rng(cfg.seed)
        val_idx = np.concatenate(
            [
                rng.permutation(np.nonzero(y == k)[0])[
                    : max(1, round(cfg.val_fraction * int((y == k).sum())))
                ]
                for k in np.unique(y)
            ]
        )
        mask = np.zeros(len(y), bool)
        mask[val_idx] = True
        vx, vy, x, y = x[mask], y[mask], x[~mask], y[~mask]
    if cfg.max_cases is not None:
        x, y = x[: cfg.max_cases], y[: cfg.max_cases]
    out = Path(out_dir)
    stage = ViewStage(cfg, (x, y), (vx, vy))
    with progress_bar(progress) as prog:
        result = run_loop(stage, cfg, out, resume=resume, progress=prog, t_start=t0)
    train_time = round(time.perf_counter() - t0, 1)
    data_summary: dict[str, Any] = {}
    folders: dict[str, list[dict[str, Any]]] = {"data": [], "val": []}
    for key, dirs in (("data", train_dirs), ("val", val_dirs or [])):
        for d in dirs:
            s = d / "summary.json"
            info = json.loads(s.read_text(encoding="utf-8")) if s.is_file() else {}
            folders[key].append({"folder": str(d), **info})
            if "n_per_class" in info and key not in data_summary:
                data_summary[key] = info
    training = {
        "command": command,
        "data": ", ".join(str(d) for d in train_dirs),
        "val_data": None if val_dirs is None else ", ".join(str(d) for d in val_dirs),
        "folders": folders,
        "data_seed": data_summary.get("data", {}).get("seed"),
        "val_seed": data_summary.get("val", {}).get("seed"),
        "n_per_class_train": data_summary.get("data", {}).get("n_per_class"),
        "generation_s": data_summary.get("data", {}).get("generation_s"),
        "n_train": len(x),
        "n_val": len(vx),
        "config": cfg.as_dict(),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_by_time": result.stopped_by_time,
        "train_time_s": train_time,
        "threads": torch.get_num_threads(),
    }
    model_dir = out / "model"
    metrics = export_view_model(result.best_weights, cfg, model_dir, (vx, vy), training)
    metrics["history"] = list(result.history)
    installed = None
    if install:
        installed = install_model(model_dir, MODEL_FILES, Path(install_dir or PACKAGE_MODEL_DIR))
    logger.info("view model written to %s (%s)", model_dir, out / CHECKPOINT_DIR / BEST_CHECKPOINT)
    return ViewTrainResult(model_dir, installed, metrics, train_time)
