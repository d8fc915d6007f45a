"""Entry points of ``aacscore validate``: load, join, compute and write the outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from aacscore._files import write_json
from aacscore.stats.validate.compute import ValidationResult, compute_metrics
from aacscore.stats.validate.inputs import load_predictions, load_reference
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
    key: str = "file",
    pred_key: str | None = None,
    ref_key: str | None = None,
    reader_columns: Sequence[str] | None = None,
) -> ValidationResult:
    """Load, join and compute; no files written."""
    s = settings or ValidationSettings()
    pk = pred_key or key
    rk = ref_key or key
    pred = load_predictions(pred_path, pk)
    ref = load_reference(ref_path, rk, reader_columns)
    data = match_tables(pred, ref)
    result = compute_metrics(data, s)
    inputs = {"pred": str(pred_path), "ref": str(ref_path), "pred_key": pk, "ref_key": rk}
    return replace(result, inputs=inputs)


def validate(
    pred_path: str | Path,
    ref_path: str | Path,
    out_dir: str | Path,
    settings: ValidationSettings | None = None,
    key: str = "file",
    pred_key: str | None = None,
    ref_key: str | None = None,
    reader_columns: Sequence[str] | None = None,
) -> ValidationResult:
    """Run the whole validation and write ``metrics.json`` and the report into ``out_dir``."""
    result = run_validation(pred_path, ref_path, settings, key, pred_key, ref_key, reader_columns)
    write_outputs(result, out_dir)
    return result
