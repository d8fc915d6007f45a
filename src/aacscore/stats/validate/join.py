"""Joining predictions and reference case by case on their keys."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aacscore.keys import KEY_SOURCES, JoinKey
from aacscore.stats._common import FloatArray
from aacscore.stats.validate.inputs import (
    FailedCase,
    PredictionTable,
    ReferenceTable,
    ValidationInputError,
)


@dataclass(frozen=True, eq=False)
class MatchedData:
    """Predictions and reference aligned case by case (in reference order)."""

    keys: tuple[str, ...]
    pred_total: FloatArray
    ref_total: FloatArray
    pred_segments: FloatArray | None
    ref_segments: FloatArray | None
    readers: tuple[str, ...]
    reader_values: FloatArray | None
    reference_source: str
    pred_only: tuple[str, ...]
    ref_only: tuple[str, ...]
    failed: tuple[FailedCase, ...]
    failed_in_reference: tuple[bool, ...]
    n_pred_rows: int
    n_ref_rows: int
    n_warning: int
    n_low_confidence: int

    @property
    def n(self) -> int:
        """Number of matched cases."""
        return len(self.keys)


def match_tables(
    pred: PredictionTable, ref: ReferenceTable, join: JoinKey | None = None
) -> MatchedData:
    """Join predictions and reference on their keys; unmatched and failed rows are recorded.

    ``join`` (how the keys were made) only words the error when no case matches.
    """
    p_index = {k: i for i, k in enumerate(pred.keys)}
    pi: list[int] = []
    ri: list[int] = []
    for j, k in enumerate(ref.keys):
        if k in p_index:
            ri.append(j)
            pi.append(p_index[k])
    ref_set = set(ref.keys)
    all_pred = set(pred.all_keys)
    if not pi:
        ex_p = ", ".join(repr(k) for k in pred.keys[:3]) or "none"
        ex_r = ", ".join(repr(k) for k in ref.keys[:3])
        raise ValidationInputError(
            f"no case in common with {ref.path} (prediction keys from column "
            f"{pred.key_column!r}, e.g. {ex_p}; reference keys from column {ref.key_column!r}, "
            f"e.g. {ex_r}); keys are {(join or JoinKey()).describe()}. "
            "Use --key/--pred-key/--ref-key to choose the columns, --key-from "
            f"({'/'.join(KEY_SOURCES)}) to choose the key",
            pred.path,
            column=pred.key_column,
        )
    pidx = np.asarray(pi, dtype=np.intp)
    ridx = np.asarray(ri, dtype=np.intp)
    return MatchedData(
        keys=tuple(ref.keys[j] for j in ri),
        pred_total=pred.total[pidx],
        ref_total=ref.total[ridx],
        pred_segments=None if pred.segments is None else pred.segments[pidx],
        ref_segments=None if ref.segments is None else ref.segments[ridx],
        readers=ref.readers,
        reader_values=None if ref.reader_values is None else ref.reader_values[ridx],
        reference_source=ref.source,
        pred_only=tuple(k for k in pred.all_keys if k not in ref_set),
        ref_only=tuple(k for k in ref.keys if k not in all_pred),
        failed=pred.failed,
        failed_in_reference=tuple(f.key in ref_set for f in pred.failed),
        n_pred_rows=pred.n_rows,
        n_ref_rows=ref.n_rows,
        n_warning=sum(pred.warning[i] for i in pi),
        n_low_confidence=sum(pred.low_confidence[i] for i in pi),
    )
