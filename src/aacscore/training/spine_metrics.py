"""Validation figures of the spine networks: Dice per class, level identification, orientation
accuracy and corner errors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aacscore.spine.result import geometry_from_logits
from aacscore.training.spine_data import PreprocessedSet, batch_tensors
from aacscore.vertebrae import CLASS_NAMES, LABEL_VALUES, LEVEL_ORDER, SpineError

if TYPE_CHECKING:
    from aacscore.training.spine_trainer import SegmentationTrainer

LUMBAR = ("L1", "L2", "L3", "L4", "L5")


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
