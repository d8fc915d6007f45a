"""Calibration of a trained score network on the validation films: isotonic output maps
(cross-fitted for the reported figures), the zero threshold of the segment grades and the
uncertainty scale (95 % coverage, per predicted-total bin)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.aorta.roi import BandGeometry
from aacscore.score.network import Head, ScoreNet
from aacscore.score.predict import (
    Calibration,
    NetworkOutputs,
    calibrated_sd,
    fit_calibration,
    run_network,
)
from aacscore.training.metrics import score_metrics
from aacscore.training.score_data import BandSet


def fit_output_calibration(
    out: NetworkOutputs, data: BandSet, idx: npt.NDArray[np.intp], head: str
) -> Calibration:
    """Isotonic calibration of raw TTA outputs of rows ``idx`` (every transform counts)."""
    if head == Head.TOTAL:
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
    geometry: BandGeometry,
    floor: float,
    outputs: NetworkOutputs | None = None,
    zero_below: float = 0.0,
) -> tuple[float, float, dict[str, Any]]:
    """(sd_scale, residual_sd, TTA metrics) on validation rows: 95 % of errors within 1.96 sd.

    ``outputs``: TTA outputs of the rows to use instead of the raw network's (calibrated);
    ``zero_below``: the calibration's zero threshold of the mean segment grades."""
    out = outputs if outputs is not None else run_network(net, data.bands[idx], geometry)
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


def stratum_labels(data: BandSet, idx: npt.NDArray[np.intp]) -> list[str]:
    """Stratum of rows ``idx``: the simulator family (``a``, ``b``; ``films`` for your own),
    with ``_negative`` for hard negatives."""
    out = []
    for i in idx:
        fam = data.family[i] or "films"
        out.append(f"{fam}_negative" if data.hard_negative[i] else fam)
    return out


def calibration_strata(data: BandSet, idx: npt.NDArray[np.intp]) -> dict[str, int]:
    """Number of rows ``idx`` (the films the calibration is fitted on) in each stratum."""
    labels = stratum_labels(data, idx)
    return {k: labels.count(k) for k in sorted(set(labels))}


def per_stratum_metrics(
    net: ScoreNet,
    data: BandSet,
    idx: npt.NDArray[np.intp],
    geometry: BandGeometry,
    outputs: NetworkOutputs | None = None,
    zero_below: float = 0.0,
) -> dict[str, dict[str, Any]]:
    """Validation figures of each stratum (:func:`stratum_labels`) from the TTA ``outputs``
    (the cross-fitted calibrated ones; default the raw network's), the zero rule applied."""
    out = outputs if outputs is not None else run_network(net, data.bands[idx], geometry)
    grades = out.grades.mean(axis=1) if out.grades is not None else None
    if grades is not None:
        grades = np.where(grades < zero_below, 0.0, grades)
        total = grades.sum(axis=1)
    else:
        total = out.total.mean(axis=1)
    labels = np.asarray(stratum_labels(data, idx))
    res: dict[str, dict[str, Any]] = {}
    for lab in sorted(set(labels.tolist())):
        r = np.flatnonzero(labels == lab)
        res[lab] = score_metrics(
            total[r],
            data.totals[idx][r],
            None if grades is None else grades[r],
            None if grades is None else data.grades[idx][r],
        )
    return res


def append_stratum_section(
    card: str | Path, metrics: dict[str, dict[str, Any]], fit_strata: dict[str, int]
) -> None:
    """Append the per-family validation figures and the calibration's fit set to a card."""

    def f(v: Any) -> str:
        return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    lines = [
        "",
        "## Validation by family",
        "",
        "The isotonic calibration and the zero threshold are fitted on the validation films of "
        "every stratum together: "
        + ", ".join(f"{k} {v}" for k, v in fit_strata.items())
        + " films (`_negative`: hard negatives). Figures with TTA and cross-fitted calibration:",
        "",
        "| stratum | n | MAE | Spearman | lewis accuracy | segment exact "
        "| FP rate (AAC-0 read >= 2) |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, m in metrics.items():
        fp = m.get("integer", {}).get("false_positive_rate")
        lines.append(
            f"| {k} | {m['n']} | {f(m['mae'])} | {f(m['spearman'])} | "
            f"{f(m['group']['accuracy'])} | {f(m.get('segment_exact', {}).get('overall'))} | "
            f"{f(fp)} |"
        )
    p = Path(card)
    p.write_text(p.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(lines) + "\n")
