"""Every option of ``aacscore simulate`` through typer's CliRunner."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.simulate import simulate_case

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
    sheet = np.asarray(Image.open(tmp_path / "gallery.png").convert("RGB")).astype(np.float64)
    # the documented contact sheet: one row of n tiles (up to 6 a row), each tile the case at
    # 420 px high (aspect kept) in a cell 8 px wider and 30 px higher for the AAC-24 label
    cases = [simulate_case(1, i, spacing_mm=0.3) for i in range(2)]
    widths = [round(c.image.shape[1] * 420 / c.image.shape[0]) for c in cases]
    cell_w = max(widths) + 8
    assert sheet.shape == (450, 2 * cell_w, 3)
    tiles = []
    for k, (case, w) in enumerate(zip(cases, widths, strict=True)):
        x = k * cell_w + 4
        tile = sheet[2:422, x : x + w]
        assert np.array_equal(tile[..., 0], tile[..., 2])  # grey film, no overlay
        # the tile is this case's film, scaled
        small = Image.fromarray(np.rint(case.image * 255).astype(np.uint8)).resize((w, 420))
        ref = np.asarray(small, dtype=np.float64)
        assert np.corrcoef(tile[..., 0].ravel(), ref.ravel())[0, 1] > 0.98, k
        assert tile.std() > 10  # a film, not a flat fill
        # dark background between tile and label; white label text below
        assert np.all(sheet[423:425, x : x + w] == 24.0)
        assert (sheet[426:450, x : x + w] > 200).sum() > 50
        tiles.append(tile[..., 0])
    # two different films
    h = min(t.shape[1] for t in tiles)
    assert np.abs(tiles[0][:, :h] - tiles[1][:, :h]).mean() > 5
    assert "gallery.png" in res.output


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
