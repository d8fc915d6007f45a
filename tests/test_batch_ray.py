"""The Ray engine (:mod:`aacscore.batch_ray`) against a real local Ray cluster that the module
starts (``ray.init`` on 127.0.0.1 with 2 CPUs) and stops: the same ``results.csv`` as the local
batch with one and two actors, and resume; failure isolation (an exception, an actor that dies
once, an actor that dies twice); the option checks.

The films are those of :mod:`tests.batch_fixtures`, the fake stages those of :mod:`tests.ray_fakes`
(without PyTorch, so that actors start quickly); they travel to the actors pickled with the
scorer arguments. Skipped when Ray is not installed, except under CI
(``AACSCORE_REQUIRE_TOOLS=1``), where that fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aacscore.batch import BatchOptionError, CaseJob, case_stem, score_batch
from aacscore.batch_ray import RayEngine, _ScorerActor, parse_address
from aacscore.io import InputItem
from aacscore.outputs.results_csv import read_results
from aacscore.pipeline import Scorer
from tests.batch_fixtures import BAD, Reference, films, reference, rows_of
from tests.ray_fakes import BOOM, ExplodingInput, Failure, ray_kwargs

__all__ = ["films", "reference"]  # fixtures


def _require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("AACSCORE_REQUIRE_TOOLS") == "1":
            pytest.fail("ray is not installed (the dev extra installs aacscore[ray])")
        pytest.skip("ray is not installed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A local Ray cluster of 2 CPUs on 127.0.0.1, for this module."""
    _require_ray()
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level="WARNING",
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def _rows(out: Path) -> list[dict[str, str]]:
    return read_results(out / "results.csv")


def _same_rows(a: list[dict[str, str]], b: list[dict[str, str]]) -> None:
    """Same files in the same order, the same values (numbers to 1e-6)."""
    assert [r["file"] for r in a] == [r["file"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for col in ra:
            try:
                x, y = float(ra[col]), float(rb[col])
            except ValueError:
                assert ra[col] == rb[col], (ra["file"], col)
            else:
                assert x == pytest.approx(y, abs=1e-6), (ra["file"], col)


def _run(out: Path) -> dict[str, Any]:
    (run,) = json.loads((out / "run.json").read_text())["runs"][-1:]
    assert isinstance(run, dict)
    return run


def test_one_and_two_actors_write_the_local_batch_results(
    cluster: Any, films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    # an exception on film b (spine model) and in the reader of film c: failed rows, as locally
    items = [InputItem(p) for p in films]
    items[2] = ExplodingInput(films[2])
    kwargs = ray_kwargs(reference, fail_rows=rows_of(films)[BAD])
    local = score_batch(items, tmp_path / "local", kwargs, jobs=1, overlay=True)
    expected = _rows(tmp_path / "local")
    assert [r["error_code"] for r in expected] == ["", "internal_error", "internal_error"]
    for jobs in (1, 2):
        out = tmp_path / f"ray{jobs}"
        summary = score_batch(items, out, kwargs, jobs=jobs, overlay=True, engine=RayEngine())
        _same_rows(_rows(out), expected)
        assert summary.counts == local.counts and summary.exit_code == 1
        run = _run(out)
        assert run["engine"] == "ray" and run["processes"] == jobs and run["threads"] == 1
        assert run["ray"]["actors"] == jobs and run["ray"]["cluster_cpus"] == 2
        assert run["worker_restarts"] == 0 and run["finished"]
        for it in items:  # the actors wrote the case files
            doc = json.loads((out / "cases" / f"{case_stem(it.name)}.json").read_text())
            assert doc["file"] == it.name
        assert (out / "overlays" / f"{case_stem(items[0].name)}.png").is_file()
        assert BOOM in _rows(out)[BAD]["error"]
    assert _run(tmp_path / "local")["engine"] == "local"
    # a re-run resumes every film without starting any actor (failed rows count as done)
    before = (tmp_path / "ray2" / "results.csv").read_bytes()
    again = score_batch(items, tmp_path / "ray2", kwargs, jobs=2, engine=RayEngine())
    assert again.n_skipped == 3 and again.scored == 0
    assert (tmp_path / "ray2" / "results.csv").read_bytes() == before
    runs = json.loads((tmp_path / "ray2" / "run.json").read_text())["runs"]
    assert [r["processes"] for r in runs] == [2, 0] and runs[1]["ray"]["actors"] == 0


def test_an_actor_that_dies_twice_on_a_film_fails_only_that_film(
    cluster: Any, films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    items = [InputItem(p) for p in films]
    kwargs = ray_kwargs(reference, rows_of(films)[BAD], Failure.DIE)
    summary = score_batch(items, tmp_path, kwargs, jobs=2, engine=RayEngine())
    rows = _rows(tmp_path)
    assert [r["file"] for r in rows] == [it.name for it in items]  # none lost, in input order
    bad = rows[BAD]
    assert bad["status"] == "failed" and bad["error_code"] == "worker_failed"
    assert Path(films[BAD]).name in bad["error"] and "died while scoring this film" in bad["error"]
    assert bad["sha256"] and bad["settings"]  # resumable like any other row
    assert all(r["status"] != "failed" for i, r in enumerate(rows) if i != BAD), rows
    assert summary.counts["failed"] == 1 and summary.exit_code == 1
    run = _run(tmp_path)
    assert run["worker_restarts"] == 2  # the first death and the retry's
    doc = json.loads((tmp_path / "cases" / f"{case_stem(items[BAD].name)}.json").read_text())
    assert doc["error_code"] == "worker_failed"


def test_a_film_whose_actor_died_once_is_scored_on_a_fresh_actor(
    cluster: Any, films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    items = [InputItem(p) for p in films]
    marker = tmp_path / "died"
    kwargs = ray_kwargs(reference, rows_of(films)[BAD], Failure.DIE_ONCE, marker)
    summary = score_batch(items, tmp_path / "out", kwargs, jobs=1, engine=RayEngine())
    assert marker.is_file()
    rows = _rows(tmp_path / "out")
    assert [r["error_code"] for r in rows] == ["", "", ""]
    assert all(r["status"] in ("ok", "warning") for r in rows)
    assert summary.exit_code == 0
    assert _run(tmp_path / "out")["worker_restarts"] == 1


def test_more_actors_than_the_cluster_holds_are_refused(
    cluster: Any, films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    items = [InputItem(p) for p in films]
    with pytest.raises(BatchOptionError, match=r"--jobs: 3 actors .* at most 2"):
        score_batch(items, tmp_path, ray_kwargs(reference), jobs=3, engine=RayEngine())
    with pytest.raises(BatchOptionError, match=r"one actor needs 4 CPU\(s\)"):
        score_batch(items, tmp_path, ray_kwargs(reference), engine=RayEngine(num_cpus_per_worker=4))
    with pytest.raises(BatchOptionError, match=r"0 GPU\(s\)"):
        score_batch(items, tmp_path, ray_kwargs(reference), engine=RayEngine(num_gpus_per_worker=1))


def test_ray_options_are_checked_before_any_work() -> None:
    assert parse_address(None) is None and parse_address(" ") is None
    assert parse_address("AUTO") == "auto"
    assert parse_address("127.0.0.1:6379") == "127.0.0.1:6379"
    assert parse_address("ray://head:10001") == "ray://head:10001"
    for bad in ("nohost", "host:port", "host:0", "host:70000"):
        with pytest.raises(BatchOptionError, match="--address"):
            parse_address(bad)
    with pytest.raises(BatchOptionError, match="--num-cpus-per-worker"):
        RayEngine(num_cpus_per_worker=0)
    with pytest.raises(BatchOptionError, match="--num-gpus-per-worker"):
        RayEngine(num_gpus_per_worker=-1)
    assert RayEngine(num_cpus_per_worker=2.5).threads == 2
    assert RayEngine(num_cpus_per_worker=0.5).threads == 1


def test_the_scorer_of_an_actor_is_built_from_the_batch_arguments(reference: Reference) -> None:
    actor = _ScorerActor(CaseJob(ray_kwargs(reference), Path("unused")), threads=1)
    assert isinstance(actor.scorer, Scorer) and actor.scorer.tta is False


@pytest.mark.slow
def test_the_command_line_starts_and_stops_its_own_local_ray_instance(
    films: list[Path], tmp_path: Path
) -> None:
    # a fresh process (not connected to the module's cluster), the shipped models in the actor
    import subprocess
    import sys

    _require_ray()
    out = tmp_path / "ray"
    cmd = [sys.executable, "-m", "aacscore", "score", str(films[0]), "-o", str(out)]
    proc = subprocess.run(
        [*cmd, "--engine", "ray", "--jobs", "1"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode in (0, 1), proc.stderr
    (row,) = _rows(out)
    assert row["file"] == str(films[0]) and row["sha256"] and row["settings"]
    assert proc.returncode == (1 if row["status"] == "failed" else 0)
    assert (
        json.loads((out / "cases" / f"{case_stem(row['file'])}.json").read_text())["status"]
        == (row["status"])
    )
    run = _run(out)
    assert run["engine"] == "ray" and run["ray"]["address"] == "local"
    assert run["ray"]["actors"] == 1 and run["ray"]["cluster_cpus"] >= 1 and run["finished"]
    assert run["models"] and "error" not in run["models"]
