"""``aacscore score --num-parts N --part-id K`` and ``aacscore merge``: a scheduler's array of
jobs scores the parts into their own folders and merge joins them; exit codes 0 / 1 / 2; the
engine options are checked before any work."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.outputs.results_csv import read_results
from tests.batch_fixtures import films, reference
from tests.cli.test_score import fake_models

__all__ = ["fake_models", "films", "reference"]  # fixtures


def _flat(output: str) -> str:
    return " ".join(output.split())


def test_parts_scored_apart_then_merged_are_every_film_once(
    films: list[Path], tmp_path: Path, fake_models: None
) -> None:
    src = tmp_path / "films"
    src.mkdir()
    for p in films:
        shutil.copy(p, src / p.name)
    parts = []
    for k in range(3):
        out = tmp_path / f"part{k}"
        args = [
            "score",
            str(src),
            "-o",
            str(out),
            "-j",
            "1",
            "--num-parts",
            "3",
            "--part-id",
            str(k),
        ]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert f"part {k} of 3:" in _flat(res.output)
        (run,) = json.loads((out / "run.json").read_text())["runs"]
        assert run["part"] == {"num_parts": 3, "part_id": k} and run["engine"] == "local"
        parts.append(out)
    per_part = [len(read_results(p / "results.csv")) for p in parts]
    assert sum(per_part) == len(films)  # an empty part is a run too (exit 0, no rows)
    merged = tmp_path / "merged"
    res = CliRunner().invoke(app, ["merge", *map(str, parts), "-o", str(merged)])
    assert res.exit_code == 0, res.output
    assert "3 parts: 3 rows (0 duplicate(s) dropped)" in _flat(res.output)
    rows = read_results(merged / "results.csv")
    assert sorted(r["file"] for r in rows) == sorted(str(src / p.name) for p in films)
    # a failed row makes the merge's exit status 1, as score's
    failed_part = tmp_path / "with_failure"
    missing = tmp_path / "gone.dcm"
    res = CliRunner().invoke(app, ["score", str(missing), str(films[0]), "-o", str(failed_part)])
    assert res.exit_code == 1, res.output
    res = CliRunner().invoke(app, ["merge", str(failed_part), "-o", str(tmp_path / "m2")])
    assert res.exit_code == 1 and "1 failed" in _flat(res.output)


def test_merge_refusals_exit_2_naming_the_folder(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    res = CliRunner().invoke(app, ["merge", str(tmp_path / "p"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not an output folder" in _flat(res.output)
    assert str(tmp_path / "p") in res.output.replace("\n", "")
    (tmp_path / "p" / "results.csv").write_text("file,status\n")
    res = CliRunner().invoke(app, ["merge", str(tmp_path / "p"), "-o", str(tmp_path / "p")])
    assert res.exit_code == 2 and "is one of the parts" in _flat(res.output)
    help_text = _flat(CliRunner().invoke(app, ["merge", "--help"]).output)
    assert "--allow-mixed-settings" in help_text and "Exit status: 0" in help_text


def test_engine_ray_hands_a_ray_engine_to_the_batch(
    films: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed")  # tests/test_batch_ray.py fails under CI then
    import aacscore.batch as batch
    from aacscore.batch_ray import RayEngine

    seen: dict[str, Any] = {}

    def fake_batch(items: Any, out: Any, kwargs: Any, **kw: Any) -> Any:
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(batch, "score_batch", fake_batch)
    args = ["score", str(films[0]), "-o", str(tmp_path / "o"), "--engine", "ray", "-j", "2"]
    extra = ["--address", "127.0.0.1:6380", "--num-cpus-per-worker", "2"]
    CliRunner().invoke(app, [*args, *extra, "--num-gpus-per-worker", "0.5"])
    engine = seen["engine"]
    assert isinstance(engine, RayEngine) and engine.address == "127.0.0.1:6380"
    assert engine.num_cpus_per_worker == 2 and engine.num_gpus_per_worker == 0.5
    assert seen["jobs"] == "2" and seen["arguments"]["engine"] == "ray"
    res = CliRunner().invoke(app, [*args, "--address", "nowhere"])
    assert res.exit_code == 2 and "--address: 'nowhere' is not a Ray cluster address" in res.output
