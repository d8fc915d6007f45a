"""``aacscore score`` argument handling."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aacscore.cli import app


def test_cli_score_reports_missing_inputs(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["score", str(tmp_path / "nothing"), "-o", str(tmp_path)])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["score", str(tmp_path), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "no radiographs" in res.output
