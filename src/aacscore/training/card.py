"""MODEL_CARD.md of trained models: one writer for both stages (shared header, learning curve
and file hashes; each stage adds its recipe)."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aacscore._files import atomic_write_text, sha256_file
from aacscore._version import __version__
from aacscore.spine.network import MODEL_CARD

if TYPE_CHECKING:
    from aacscore.score.predict import ScoreModelConfig
    from aacscore.spine.plans import Plans

COMPARISON_BEGIN = "<!-- head-comparison:begin -->"
COMPARISON_END = "<!-- head-comparison:end -->"


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _versions() -> str:
    import importlib.metadata as md

    parts = []
    for d in ("aacscore", "torch", "monai", "numpy"):
        try:
            parts.append(f"{d} {md.version(d)}")
        except md.PackageNotFoundError:
            parts.append(f"{d} ?")
    return ", ".join(parts) + f", Python {platform.python_version()}"


def history_table(
    history: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, int]]
) -> list[str]:
    """Markdown table of the epochs: ``columns`` are (header, history key, digits)."""
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    for row in history:
        lines.append("| " + " | ".join(_f(row.get(k), d) for _, k, d in columns) + " |")
    return lines


def files_section(files: Mapping[str, Path]) -> list[str]:
    """``## Files (sha256)`` lines of the files that exist."""
    lines = ["## Files (sha256)", ""]
    lines += [f"- `{n}`: `{sha256_file(p)}`" for n, p in files.items() if p.is_file()]
    return lines


def metrics_table(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Markdown table of headline figures, one column per named metrics dict."""
    names = list(rows)
    out = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def line(label: str, get: Any) -> None:
        vals = []
        for n in names:
            try:
                vals.append(_f(get(rows[n])))
            except (KeyError, TypeError):
                vals.append("n/a")
        out.append(f"| {label} | " + " | ".join(vals) + " |")

    line("n", lambda m: m["n"])
    line("MAE (AAC-24)", lambda m: m["mae"])
    line("RMSE", lambda m: m["rmse"])
    line("bias (pred - true)", lambda m: m["bias"])
    line("Spearman rho", lambda m: m["spearman"])
    line("ICC(2,1)", lambda m: m["icc21"]["value"])
    line("severity group accuracy (lewis)", lambda m: m["group"]["accuracy"])
    first = next(iter(rows.values()), {})
    for lab in first.get("group", {}).get("per_group", {}):
        line(f"sensitivity {lab}", lambda m, lab=lab: m["group"]["per_group"][lab]["sensitivity"])
        line(f"specificity {lab}", lambda m, lab=lab: m["group"]["per_group"][lab]["specificity"])
    line("segment exact-grade accuracy", lambda m: m["segment_exact"]["overall"])
    line("95 % interval coverage", lambda m: m["coverage95"])
    return out


def write_model_card(
    path: str | Path, config: ScoreModelConfig, history: Sequence[Mapping[str, Any]]
) -> Path:
    """Write MODEL_CARD.md: data, recipe, exact command, seed, metrics, weights sha256."""
    extra = dict(config.extra)
    tr: dict[str, Any] = dict(extra.get("training", {}))
    metrics: dict[str, Any] = dict(extra.get("metrics", {}))
    data: dict[str, Any] = dict(tr.get("data", {}))
    tcfg: dict[str, Any] = dict(tr.get("config", {}))
    net = config.network
    p = Path(path)
    weights = p.parent / config.weights
    size_mb = weights.stat().st_size / 1e6 if weights.is_file() else float("nan")
    lines = [
        f"# aacscore score model ({net.head} head)",
        "",
        f"Written {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} "
        f"by `aacscore train score` ({_versions()}).",
        "",
        "## What it does",
        "",
        "Stage 2 of aacscore: from the straightened aortic band in front of L1-L4 "
        "(`aacscore.aorta.extract_band`) it predicts the Kauppila AAC-24 reading"
        + (
            " as 8 segment grades (total = their sum)"
            if net.head != "total"
            else " as the total only (paper-faithful baseline)"
        )
        + ". Test-time augmentation gives a calibrated standard deviation of the total.",
        "",
        "Intended use: research on lateral lumbar spine radiographs. Not a medical device; "
        "trained on simulated films unless stated below.",
        "",
        "## Weights",
        "",
        f"- file: `{config.weights}` ({config.dtype}, {size_mb:.2f} MB)",
        f"- sha256: `{config.sha256}`",
        f"- architecture: MONAI ResNet 2-D, BasicBlock, layers {list(net.layers)}, "
        f"block_inplanes {list(net.block_inplanes)}, first conv stride {net.conv1_stride}, "
        f"pool to 4 levels x {net.col_bins} column bins, dropout {net.dropout}",
        f"- head: `{net.head}`"
        + (", plus per-segment calcified fractions (AAC-8)" if net.has_fractions else ""),
        f"- band: {config.band.n_rows} x {config.band.n_cols} px "
        f"({config.band.rows_per_level} rows per level, {config.band.mm_per_col} mm per column, "
        f"{config.band.behind_mm} mm behind to {config.band.front_mm} mm in front of the "
        "anterior vertebral margin)",
        "",
        "## Data",
        "",
    ]
    for k in (
        "source",
        "data_dir",
        "labels_csv",
        "n_cases",
        "n_bands",
        "n_train_bands",
        "n_val_films",
        "n_skipped",
        "jitter_mm",
        "n_jitter",
        "aac24_mean",
        "aac24_median",
        "lewis_groups",
    ):
        if k in data:
            lines.append(f"- {k}: {_f(data[k])}")
    lines += [
        "",
        "Simulated cases use the true vertebra corners jittered by `jitter_mm` (RMS per corner) "
        "to mimic the spine stage; each film appears `n_jitter` times with different jitter. "
        "Validation films are held out by case.",
        "",
        "## Recipe",
        "",
        "```",
        tr.get("command", "?"),
        "```",
        "",
        f"- seed: {tr.get('seed', '?')}",
        f"- epochs run: {tr.get('epochs_run', '?')} (best {tr.get('best_epoch', '?')}, "
        f"early stop: {tr.get('stopped_early', '?')}), training time "
        f"{tr.get('train_time_s', '?')} s (this session {tr.get('wall_time_s', '?')} s)",
    ]
    for k in (
        "batch_size",
        "lr",
        "weight_decay",
        "warmup_epochs",
        "patience",
        "fraction_weight",
        "val_fraction",
        "augment",
    ):
        if k in tcfg:
            lines.append(f"- {k}: {tcfg[k]}")
    lines += [
        "- optimiser AdamW, linear warm-up then cosine decay; loss: "
        + {
            "segments": "mean squared error of the 8 grades",
            "ordinal": "binary cross-entropy of the 3 cumulative thresholds per segment",
            "total": "squared error of the total / 8",
        }[net.head]
        + (" + fraction_weight x squared error of 3 x fractions" if net.has_fractions else ""),
        "- augmentation: row/column shifts, column zoom +-10 %, gamma, blur or unsharp masking, "
        "intensity ramp, noise",
        "",
        "## Validation (held-out simulated films)",
        "",
    ]
    cal = config.calibration
    tta_label = "with TTA + calibration" if cal is not None else "with TTA"
    lines += metrics_table(
        {
            tta_label: metrics.get("validation_tta", {}),
            "raw network, no TTA": metrics.get("validation_no_tta", {}),
        }
    )
    if cal is not None:
        knots = ", ".join(f"{x:g} -> {y:.2f}" for x, y in zip(cal.x, cal.y, strict=True))
        lines += [
            "",
            f"Output calibration ({cal.target}): isotonic regression of the truth on the raw "
            "TTA outputs of the validation films, stored as a piecewise-linear map in "
            "config.json; the validation figures with calibration are cross-fitted (each half "
            "of the validation films calibrated by a map fitted on the other half). Map: "
            + (
                knots
                if len(cal.x) <= 13
                else ", ".join(knots.split(", ")[:: max(1, len(cal.x) // 12)])
            )
            + (
                f". Mean segment grades below {cal.zero_below:g} read exactly 0 (threshold "
                "chosen on the validation films by the MAE of the total)."
                if cal.zero_below > 0
                else ""
            ),
        ]
    lines += [
        "",
        f"Uncertainty: sd = scale x sqrt(tta_sd^2 + {config.sd_floor}^2), scale calibrated for "
        "95 % coverage on validation "
        + (
            "per predicted-total bin (edges "
            + ", ".join(f"{e:g}" for e in config.sd_scale_bins[0])
            + ": scales "
            + ", ".join(f"{v:.2f}" for v in config.sd_scale_bins[1])
            + ")"
            if config.sd_scale_bins is not None
            else f"({config.sd_scale:.3f})"
        )
        + f"; without TTA sd = {config.residual_sd:.3f} (validation RMSE).",
        "",
        "## Learning curve",
        "",
    ]
    lines += history_table(
        history,
        [
            ("epoch", "epoch", 0),
            ("train loss", "train_loss", 4),
            ("val loss", "val_loss", 4),
            ("val MAE", "val_mae", 3),
            ("val Spearman", "val_spearman", 3),
        ],
    )
    lines += [
        "",
        "## Head comparison",
        "",
        COMPARISON_BEGIN,
        "Not yet benchmarked: run `benchmarks/score_model.py --card` to fill this section.",
        COMPARISON_END,
        "",
    ]
    atomic_write_text(p, "\n".join(lines))
    return p


def replace_comparison(card_path: str | Path, markdown: str) -> None:
    """Replace the head-comparison section of an existing model card."""
    p = Path(card_path)
    text = p.read_text(encoding="utf-8")
    block = f"{COMPARISON_BEGIN}\n{markdown.strip()}\n{COMPARISON_END}"
    if COMPARISON_BEGIN in text and COMPARISON_END in text:
        pattern = re.escape(COMPARISON_BEGIN) + r".*?" + re.escape(COMPARISON_END)
        text = re.sub(pattern, lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Head comparison\n\n" + block + "\n"
    p.write_text(text, encoding="utf-8")


def write_spine_card(
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
        command or "(called from Python: aacscore.training.spine.train_spine)",
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
        lines += ["", "## Epochs", ""]
        lines += history_table(
            history,
            [
                ("epoch", "epoch", 0),
                ("train loss", "train_loss", 4),
                ("val loss", "val_loss", 4),
                ("Dice L1-L5", "dice_l1_l5", 4),
                ("levels", "level_identification", 3),
                ("orient", "orientation_accuracy", 3),
            ],
        )
    lines += ["", *files_section(files)]
    lines += [
        "",
        "## Intended use and limits",
        "",
        "Trained on simulated lateral lumbar radiographs (aacscore.simulate) unless stated "
        "otherwise above; validate on your own films before relying on it. Not a medical device.",
        "",
    ]
    path = model_dir / MODEL_CARD
    atomic_write_text(path, "\n".join(lines))
    return path


# -------------------------------------------------------------------------------------------
# Main loop
