"""``aacscore train view`` on a tiny generated set and two simulated films."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.gate.view import preprocess
from aacscore.io import read_radiograph
from aacscore.simulate.dataset import simulate_dataset
from aacscore.training.view import load_view_dataset

runner = CliRunner()


def test_train_view_films_as_read_adds_the_whole_films_to_training(tmp_path: Path) -> None:
    films = tmp_path / "films"
    simulate_dataset(films, 2, seed=8, spacing_mm=0.6, fmt="png", progress=False)
    args = ["train", "view", "--data", str(tmp_path / "d"), "--val-data", str(tmp_path / "v")]
    args += ["--n-per-class", "2", "--n-val-per-class", "2", "--films", str(films)]
    args += ["--films-as-read", "--epochs", "1", "--batch-size", "8", "--threads", "1"]
    args += ["--out", str(tmp_path / "run"), "--no-install", "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    as_read = Path(f"{films}_viewshards_asread")
    x, y = load_view_dataset(as_read)
    assert np.bincount(y, minlength=9)[[0, 6]].tolist() == [2, 2]  # 1 lateral + 1 spot per film
    first = sorted(films.glob("case_*[0-9].png"))[0]
    whole = (preprocess(read_radiograph(first).pixels) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(x[0], whole)  # the film whole, as the pipeline reads it
    conf = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert str(as_read) in conf["training"]["data"]
    assert str(Path(f"{films}_viewshards")) in conf["training"]["data"]
