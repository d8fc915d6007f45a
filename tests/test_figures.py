"""The README's measured figures are the numbers in benchmarks/results (generated, not typed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "aacscore_benchmark_figures", ROOT / "benchmarks" / "figures.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["aacscore_benchmark_figures"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_readme_table_matches_the_results_files() -> None:
    figures = _figures()
    assert figures.main(["--check"]) == 0, "run: python benchmarks/figures.py --write"


def test_a_changed_results_file_is_detected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = _figures()
    results = tmp_path / "results"
    results.mkdir()
    for p in (ROOT / "benchmarks" / "results").glob("*.json"):
        (results / p.name).write_text(p.read_text())
    d = json.loads((results / "score.json").read_text())
    d["models"][next(iter(d["models"]))]["mae"] += 0.01
    (results / "score.json").write_text(json.dumps(d))
    monkeypatch.setattr(figures, "RESULTS", results)
    assert figures.main(["--check"]) == 1


def test_every_row_reads_an_existing_file() -> None:
    figures = _figures()
    missing = sorted({r.file for r in figures.ROWS} - {p.name for p in figures.RESULTS.glob("*")})
    assert missing == [], f"rows without a results file: {missing}"
