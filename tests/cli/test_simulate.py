"""Every option of ``aacscore simulate`` through typer's CliRunner."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from aacscore.cli import app

runner = CliRunner()


def test_simulate_all_options(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    args = ["simulate", "-n", "2", "-o", str(out), "--seed", "3", "--jobs", "2"]
    args += ["--distribution", "balanced", "--format", "both", "--spacing", "0.35"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "case_000001.dcm").exists() and (out / "case_000001.png").exists()
    with open(out / "truth.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["case"] for r in rows] == ["case_000000", "case_000001"]
    assert "wrote 2 cases" in res.output


def test_simulate_png_only_and_defaults(tmp_path: Path) -> None:
    out = tmp_path / "png"
    res = runner.invoke(
        app, ["simulate", "-n", "1", "-o", str(out), "--format", "png", "--spacing", "0.35"]
    )
    assert res.exit_code == 0, res.output
    assert (out / "case_000000.png").exists() and not (out / "case_000000.dcm").exists()
    out2 = tmp_path / "dcm"
    res = runner.invoke(app, ["simulate", "-n", "1", "-o", str(out2), "--spacing", "0.35"])
    assert res.exit_code == 0, res.output
    assert (out2 / "case_000000.dcm").exists()


def test_simulate_gallery(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["simulate", "--gallery", "-o", str(tmp_path), "--seed", "1", "-n", "2"]
    )
    assert res.exit_code == 0, res.output
    im = Image.open(tmp_path / "gallery.png")
    assert im.width > 100 and im.height > 100


def test_simulate_rejects_bad_options(tmp_path: Path) -> None:
    res = runner.invoke(app, ["simulate", "-n", "1", "-o", str(tmp_path), "--distribution", "x"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["simulate", "-n", "1", "-o", str(tmp_path), "--format", "jpg"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["simulate", "-n", "1", "-o", str(tmp_path), "--jobs", "0"])
    assert res.exit_code != 0


def test_simulate_accepts_every_distribution_of_the_simulator(tmp_path: Path) -> None:
    from aacscore.simulate.calcification import DISTRIBUTIONS

    assert "mild" in DISTRIBUTIONS
    args = ["simulate", "-n", "1", "-o", str(tmp_path), "--distribution", "mild"]
    res = runner.invoke(app, [*args, "--format", "png", "--spacing", "0.35"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "truth.csv").is_file()
