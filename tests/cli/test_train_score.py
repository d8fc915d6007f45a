from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.score import ScoreModel
from tests.score.score_synth import write_fake_simulator_folder

runner = CliRunner()


def test_train_score_command(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    write_fake_simulator_folder(sim, 8)
    args = ["train", "score", "--data", str(sim), "--out", str(tmp_path / "run")]
    args += ["--head", "total", "--epochs", "1", "--seed", "2", "--no-progress"]
    args += ["--model-dir", str(tmp_path / "installed"), "--threads", "1", "--val-fraction", "0.25"]
    args += ["--rows-per-level", "16", "--mm-per-col", "1.0"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "validation MAE" in res.output
    conf = json.loads((tmp_path / "installed" / "config.json").read_text())
    assert conf["head"] == "total"
    assert conf["band"]["rows_per_level"] == 16 and conf["band"]["mm_per_col"] == 1.0
    assert conf["band"]["shape"] == [64, 64]
    assert conf["training"]["command"].startswith("aacscore ")
    model = ScoreModel.load(tmp_path / "installed")
    assert model.head == "total" and model.band_geometry.shape == (64, 64)


def test_train_score_command_errors(tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "score", "--data", str(tmp_path), "--head", "softmax"])
    assert res.exit_code == 2 and "--head" in res.output
    res = runner.invoke(
        app, ["train", "score", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 1 and "simulator output folder" in res.output
    res = runner.invoke(
        app, ["train", "score", "--data", str(tmp_path), "--device", "nosuchdevice:7"]
    )
    assert res.exit_code == 2 and "--device nosuchdevice:7 is not usable here" in res.output
    res = runner.invoke(app, ["train", "score", "--data", str(tmp_path), "--init-backbone-only"])
    assert res.exit_code == 2 and "--init-backbone-only needs --init-from" in res.output


def test_train_score_command_fine_tunes_with_init(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    write_fake_simulator_folder(sim, 8)
    base = ["train", "score", "--data", str(sim), "--head", "total", "--epochs", "1"]
    base += ["--no-progress", "--threads", "1", "--val-fraction", "0.25", "--no-install"]
    base += ["--rows-per-level", "16", "--mm-per-col", "1.0"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    first = tmp_path / "a" / "model"
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--init", str(first)])
    assert res.exit_code == 0, res.output
    conf = json.loads((tmp_path / "b" / "model" / "config.json").read_text())
    assert conf["training"]["config"]["init_from"] == str(first)
    wrong = [a if a != "16" else "32" for a in base]  # another band resolution
    res = runner.invoke(app, [*wrong, "--out", str(tmp_path / "c"), "--init", str(first)])
    assert res.exit_code == 1 and "band geometry" in res.output
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "d"), "--init", str(tmp_path / "x")])
    assert res.exit_code == 1 and "config.json not found" in res.output
