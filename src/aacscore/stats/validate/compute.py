"""All agreement statistics of matched predictions and reference: :func:`compute_metrics`."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aacscore.kauppila import SeverityGroups, parse_groups
from aacscore.stats.agreement import MIN_CORRELATION_N, ContinuousAgreement, continuous_agreement
from aacscore.stats.categorical import CategoricalAgreement, categorical_agreement
from aacscore.stats.icc import ICCResult, icc
from aacscore.stats.validate.inputs import ValidationInputError
from aacscore.stats.validate.join import MatchedData
from aacscore.stats.validate.segments import SegmentAgreement, segment_agreement
from aacscore.stats.validate.settings import ValidationSettings

logger = logging.getLogger(__name__)

MODEL_RATER = "model"
REFERENCE_RATER = "reference"


@dataclass(frozen=True, eq=False)
class ValidationResult:
    """Everything ``aacscore validate`` computes."""

    data: MatchedData
    settings: ValidationSettings
    groups: SeverityGroups
    continuous: ContinuousAgreement
    icc: ICCResult
    icc_readers: ICCResult | None
    pairwise_mae: tuple[tuple[str, str, float], ...]
    categorical: CategoricalAgreement
    segments: tuple[SegmentAgreement, ...] | None
    warnings: tuple[str, ...]
    inputs: dict[str, str | None] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of matched cases."""
        return self.data.n


def compute_metrics(data: MatchedData, settings: ValidationSettings) -> ValidationResult:
    """All agreement statistics of matched data."""
    groups = parse_groups(settings.groups)
    warnings: list[str] = []
    if data.pred_only:
        warnings.append(
            f"{len(data.pred_only)} prediction row(s) have no reference row: "
            + preview(data.pred_only)
        )
    if data.ref_only:
        warnings.append(
            f"{len(data.ref_only)} reference row(s) have no prediction row: "
            + preview(data.ref_only)
        )
    if data.failed:
        warnings.append(
            f"{len(data.failed)} prediction row(s) failed and were excluded: "
            + preview([f.key or f.file for f in data.failed])
        )
    if data.n < MIN_CORRELATION_N:
        raise ValidationInputError(
            f"only {data.n} matched case(s): at least {MIN_CORRELATION_N} are needed for the "
            "correlation-type statistics (Pearson, Spearman, Lin's CCC, ICC, Bland-Altman)"
        )
    if data.n < 30:
        warnings.append(f"only {data.n} matched cases: confidence intervals are wide")
    pred, ref = data.pred_total, data.ref_total
    if np.ptp(ref) == 0 or np.ptp(pred) == 0:
        warnings.append("predicted or reference totals are constant: correlations are undefined")

    cont = continuous_agreement(
        pred,
        ref,
        confidence=settings.confidence,
        n_resamples=settings.n_resamples,
        ci_method=settings.ci_method,
        seed=settings.seed,
        loa_ci_method=settings.loa_ci_method,
    )
    if data.readers and data.reader_values is not None:
        names = (*data.readers, MODEL_RATER)
        ratings = np.column_stack([data.reader_values, pred])
    else:
        names = (REFERENCE_RATER, MODEL_RATER)
        ratings = np.column_stack([ref, pred])
    icc_all = icc(ratings, settings.confidence, names)
    icc_r = (
        icc(data.reader_values, settings.confidence, data.readers)
        if data.reader_values is not None and len(data.readers) >= 2
        else None
    )
    pairwise = tuple(
        (names[a], names[b], float(np.mean(np.abs(ratings[:, a] - ratings[:, b]))))
        for a in range(len(names))
        for b in range(a + 1, len(names))
    )
    cat = categorical_agreement(
        [groups.label(t) for t in ref],
        [groups.label(t) for t in pred],
        groups.labels,
        settings.confidence,
    )
    segs = None
    if data.pred_segments is not None and data.ref_segments is not None:
        segs = segment_agreement(data.pred_segments, data.ref_segments, settings)
        undefined = [s.segment for s in segs if not math.isfinite(s.kappa_linear.value)]
        if undefined:
            warnings.append(
                "weighted kappa undefined (a single grade used by both) for: "
                + ", ".join(undefined)
            )
    elif data.pred_segments is None and data.ref_segments is not None:
        warnings.append("the prediction file has no segment grades: no per-segment agreement")
    for w in warnings:
        logger.warning("%s", w)
    return ValidationResult(
        data=data,
        settings=settings,
        groups=groups,
        continuous=cont,
        icc=icc_all,
        icc_readers=icc_r,
        pairwise_mae=pairwise,
        categorical=cat,
        segments=segs,
        warnings=tuple(warnings),
    )


def preview(keys: Sequence[str], limit: int = 10) -> str:
    """The first ``limit`` keys, comma-separated, and how many more there are."""
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
