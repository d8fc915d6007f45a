"""``aacscore summary OUT``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aacscore.cli import app
from tests.outputs.test_summary_html import _overlay, _row, make_folder

runner = CliRunner()


def test_summary_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    ov = [_overlay(out / "overlays" / f"{i}.png") for i in range(2)]
    rows = [_row(f"/in/{i}.png", "ok", aac24="1", group="low") for i in range(2)]
    cases = [{"file": f"/in/{i}.png", "overlay": str(p)} for i, p in enumerate(ov)]
    make_folder(out, rows, cases=cases)
    res = runner.invoke(app, ["summary", str(out)])
    assert res.exit_code == 0, res.output
    page = (out / "summary.html").read_text(encoding="utf-8")
    assert f"wrote {out / 'summary.html'}" in res.output
    assert page.count('<figure class="thumb') == 2
    res = runner.invoke(app, ["summary", str(out), "--max-thumbnails", "1"])
    assert res.exit_code == 0, res.output
    assert (out / "summary.html").read_text(encoding="utf-8").count('<figure class="thumb') == 1


def test_summary_refuses_a_missing_or_foreign_folder(tmp_path: Path) -> None:
    res = runner.invoke(app, ["summary", str(tmp_path / "[red]missing")])
    assert res.exit_code == 2
    assert f"{tmp_path / '[red]missing'}: no such folder" in res.output
    res = runner.invoke(app, ["summary", str(tmp_path)])
    assert res.exit_code == 2
    assert f"{tmp_path / 'results.csv'}: not found" in res.output
    assert not (tmp_path / "summary.html").exists()
