"""Entry points of ``aacscore validate``: load, join, compute and write the outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from aacscore._files import write_json
from aacscore.keys import CaseKeyError, JoinKey, KeyFrom
from aacscore.stats.validate.compute import ValidationResult, compute_metrics
from aacscore.stats.validate.inputs import ValidationInputError, load_predictions, load_reference
from aacscore.stats.validate.join import match_tables
from aacscore.stats.validate.metrics_json import metrics_dict
from aacscore.stats.validate.report import build_report
from aacscore.stats.validate.settings import ValidationSettings


def write_outputs(result: ValidationResult, out_dir: str | Path) -> tuple[Path, Path, Path]:
    """Write ``metrics.json``, ``report.md`` (+ ``report_figures/``) and ``report.html``."""
    out = Path(out_dir)
    metrics_path = write_json(out / "metrics.json", metrics_dict(result))
    md, html = build_report(result).write(out, "report")
    return metrics_path, md, html


def run_validation(
    pred_path: str | Path,
    ref_path: str | Path,
    settings: ValidationSettings | None = None,
    key: str | None = None,
    pred_key: str | None = None,
    ref_key: str | None = None,
    reader_columns: Sequence[str] | None = None,
    key_from: KeyFrom | str = KeyFrom.NAME,
    root: str | Path | None = None,
) -> ValidationResult:
    """Load, join and compute; no files written.

    ``key_from`` and ``root`` choose the case key (:class:`aacscore.keys.JoinKey`); ``key``
    (both files), ``pred_key`` and ``ref_key`` the columns, by default ``file`` or the
    ``key_from`` UID column.
    """
    s = settings or ValidationSettings()
    try:
        join = JoinKey(key_from, root)
    except CaseKeyError as e:
        raise ValidationInputError(str(e)) from None
    pk = pred_key or key or join.kind.results_column
    rk = ref_key or key or join.kind.results_column
    pred = load_predictions(pred_path, pk, join)
    ref = load_reference(ref_path, rk, reader_columns, join)
    data = match_tables(pred, ref, join)
    result = compute_metrics(data, s)
    inputs: dict[str, str | None] = {
        "pred": str(pred_path),
        "ref": str(ref_path),
        "pred_key": pk,
        "ref_key": rk,
        **join.settings(),
    }
    return replace(result, inputs=inputs)


def validate(
    pred_path: str | Path,
    ref_path: str | Path,
    out_dir: str | Path,
    settings: ValidationSettings | None = None,
    key: str | None = None,
    pred_key: str | None = None,
    ref_key: str | None = None,
    reader_columns: Sequence[str] | None = None,
    key_from: KeyFrom | str = KeyFrom.NAME,
    root: str | Path | None = None,
) -> ValidationResult:
    """Run the whole validation and write ``metrics.json`` and the report into ``out_dir``."""
    result = run_validation(
        pred_path, ref_path, settings, key, pred_key, ref_key, reader_columns, key_from, root
    )
    write_outputs(result, out_dir)
    return result
