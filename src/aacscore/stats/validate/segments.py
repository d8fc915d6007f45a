"""Per-segment agreement of the 8 Kauppila grades, and the 8 segments pooled."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from aacscore.kauppila import MAX_GRADE, SEGMENTS, round_half_up
from aacscore.stats._common import NAN, FloatArray
from aacscore.stats.bootstrap import BootstrapCI, bootstrap_ci
from aacscore.stats.categorical import (
    Kappa,
    Proportion,
    agreement_weights,
    cohens_kappa,
    confusion_matrix,
    wilson_ci,
)
from aacscore.stats.validate.settings import ValidationSettings


@dataclass(frozen=True)
class SegmentAgreement:
    """Agreement of the grades of one segment (or ``"all"`` segments pooled)."""

    segment: str
    n: int
    mae: BootstrapCI
    bias: float
    accuracy: Proportion
    kappa_linear: Kappa
    kappa_quadratic: Kappa


def _round_grades(x: FloatArray) -> FloatArray:
    return np.asarray(
        [min(max(round_half_up(float(v)), 0), MAX_GRADE) for v in x.ravel()], dtype=np.float64
    ).reshape(x.shape)


def _mae_vec(x: FloatArray, y: FloatArray, axis: int = -1) -> Any:
    return np.mean(np.abs(x - y), axis=axis)


def segment_agreement(
    pred: FloatArray, ref: FloatArray, s: ValidationSettings
) -> tuple[SegmentAgreement, ...]:
    """Agreement of each segment's grades, then of the 8 segments pooled (``"all"``)."""
    labels = list(range(MAX_GRADE + 1))
    pred_g = _round_grades(pred).astype(int)
    ref_g = ref.astype(int)
    out = []
    for j, name in enumerate(SEGMENTS):
        p, r = pred[:, j], ref[:, j]
        if s.n_resamples > 0:
            mae_ci = bootstrap_ci(
                _mae_vec,
                p,
                r,
                n_resamples=s.n_resamples,
                method=s.ci_method,
                seed=s.seed,
                confidence_level=s.confidence,
                vectorized=True,
            )
        else:
            est = float(np.mean(np.abs(p - r)))
            mae_ci = BootstrapCI(est, NAN, NAN, "none", 0, s.confidence, s.seed)
        cm = confusion_matrix(ref_g[:, j].tolist(), pred_g[:, j].tolist(), labels)
        out.append(
            SegmentAgreement(
                segment=name,
                n=p.size,
                mae=mae_ci,
                bias=float(np.mean(p - r)),
                accuracy=wilson_ci(int(np.trace(cm.array)), cm.n, s.confidence),
                kappa_linear=cohens_kappa(cm, "linear", s.confidence),
                kappa_quadratic=cohens_kappa(cm, "quadratic", s.confidence),
            )
        )
    out.append(_pooled_segments(pred, ref, pred_g, ref_g, s))
    return tuple(out)


def _kappa_stack(tables: FloatArray, weights: FloatArray) -> FloatArray:
    """Kappa of a stack of square count tables (..., c, c) with agreement ``weights``."""
    total = tables.sum(axis=(-2, -1))
    p = tables / total[..., None, None]
    rows = p.sum(axis=-1)
    cols = p.sum(axis=-2)
    po = np.sum(weights * p, axis=(-2, -1))
    pe = np.sum(weights * rows[..., :, None] * cols[..., None, :], axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(pe < 1.0 - 1e-12, (po - pe) / (1.0 - pe), np.nan)
    return out


def _pooled_segments(
    pred: FloatArray, ref: FloatArray, pred_g: Any, ref_g: Any, s: ValidationSettings
) -> SegmentAgreement:
    """All 8 segments pooled; CIs by resampling cases (the segments of a case stay together)."""
    n, n_seg = pred.shape
    c = MAX_GRADE + 1
    per_case_ae = np.mean(np.abs(pred - ref), axis=1)
    case_tables = np.zeros((n, c, c))
    np.add.at(case_tables, (np.repeat(np.arange(n), n_seg), ref_g.ravel(), pred_g.ravel()), 1)
    flat_tables = case_tables.reshape(n, c * c)

    def tables(idx: Any, axis: int = -1) -> FloatArray:
        """Summed tables of resampled cases; ``idx`` holds case indices along ``axis``."""
        a = np.moveaxis(np.asarray(idx), axis, -1).astype(np.intp)
        lead, m = a.shape[:-1], a.shape[-1]
        flat = a.reshape(-1, m)
        rows = flat.shape[0]
        offsets = (np.arange(rows) * n)[:, None]
        counts = np.bincount((flat + offsets).ravel(), minlength=rows * n).reshape(rows, n)
        out: FloatArray = (counts @ flat_tables).reshape(*lead, c, c)
        return out

    def stat_acc(idx: Any, axis: int = -1) -> Any:
        t = tables(idx, axis)
        return np.trace(t, axis1=-2, axis2=-1) / t.sum(axis=(-2, -1))

    def stat_kappa(weights: str) -> Any:
        w = agreement_weights(c, weights)
        return lambda idx, axis=-1: _kappa_stack(tables(idx, axis), w)

    def stat_mean(v: Any, axis: int = -1) -> Any:
        return np.mean(v, axis=axis)

    cm = confusion_matrix(ref_g.ravel().tolist(), pred_g.ravel().tolist(), list(range(c)))
    idx = np.arange(n, dtype=np.float64)
    kl = cohens_kappa(cm, "linear", s.confidence)
    kq = cohens_kappa(cm, "quadratic", s.confidence)
    acc_p = wilson_ci(int(np.trace(cm.array)), cm.n, s.confidence)
    mae_est = float(per_case_ae.mean())

    def boot(fn: Any, data: FloatArray, est: float) -> tuple[float, float]:
        if s.n_resamples == 0 or not math.isfinite(est):
            return NAN, NAN
        try:
            b = bootstrap_ci(
                fn,
                data,
                n_resamples=s.n_resamples,
                method=s.ci_method,
                seed=s.seed,
                confidence_level=s.confidence,
                vectorized=True,
            )
        except ValueError:
            return NAN, NAN
        return b.ci_low, b.ci_high

    mae_lo, mae_hi = boot(stat_mean, per_case_ae, mae_est)
    acc_lo, acc_hi = boot(stat_acc, idx, acc_p.value)
    kl_lo, kl_hi = boot(stat_kappa("linear"), idx, kl.value)
    kq_lo, kq_hi = boot(stat_kappa("quadratic"), idx, kq.value)
    method = str(s.ci_method) if s.n_resamples else "none"
    return SegmentAgreement(
        segment="all",
        n=int(pred.size),
        mae=BootstrapCI(mae_est, mae_lo, mae_hi, method, s.n_resamples, s.confidence, s.seed),
        bias=float(np.mean(pred - ref)),
        accuracy=Proportion(acc_p.value, acc_lo, acc_hi, acc_p.successes, acc_p.n),
        kappa_linear=Kappa(kl.value, kl_lo, kl_hi, NAN, "linear", kl.n),
        kappa_quadratic=Kappa(kq.value, kq_lo, kq_hi, NAN, "quadratic", kq.n),
    )
