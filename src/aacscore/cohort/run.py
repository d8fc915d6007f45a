"""Entry points of ``aacscore cohort``: load, analyse and write ``cohort.json`` and the report."""

from __future__ import annotations

from pathlib import Path

from aacscore._files import write_json
from aacscore.cohort.analysis import CohortResult, analyse_cohort
from aacscore.cohort.inputs import load_cohort
from aacscore.cohort.matching import MATCH_ID
from aacscore.cohort.options import CohortOptions
from aacscore.cohort.report import build_report


def write_outputs(result: CohortResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``cohort.json``, ``report.md``/``report.html`` and ``matched.csv`` (if matched)."""
    out = Path(out_dir)
    paths: dict[str, Path] = {"json": write_json(out / "cohort.json", result.summary)}
    if result.match is not None:
        mpath = out / "matched.csv"
        m = result.match.matched
        cols = [MATCH_ID, *(c for c in m.columns if c != MATCH_ID)]
        m[cols].to_csv(mpath, index=False)
        paths["matched"] = mpath
    md, html = build_report(result).write(out, "report")
    paths["report_md"] = md
    paths["report_html"] = html
    return paths


def run_cohort(
    table: str | Path, options: CohortOptions, out_dir: str | Path | None = None
) -> CohortResult:
    """Load, analyse and (when ``out_dir`` is given) write all outputs."""
    data = load_cohort(table, options)
    result = analyse_cohort(data, options)
    if out_dir is not None:
        write_outputs(result, out_dir)
    return result
