"""Failure isolation of the batch runner (:mod:`aacscore.batch`): an unexpected exception in any
stage of one film fails that film only, in process (``jobs=1``) and in worker processes
(``jobs=2``), and a worker process that dies fails only the film it was scoring.

The three films are copies of the simulated film, padded at the bottom by 0, 4 and 8 rows so that
a fake stage can tell them apart by their shape (:mod:`tests.batch_fixtures`). The spine result,
band and score prediction of the real pipeline are computed once (oracle spine, untrained score
network) and handed back by fake stages, so the tests check the plumbing, not the models.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from aacscore.aorta.roi import Band
from aacscore.batch import BatchOptionError, BatchSummary, CaseJob, Part, case_stem, score_batch
from aacscore.io import InputItem
from aacscore.outputs.results_csv import read_results
from aacscore.results import Result
from tests.batch_fixtures import (
    BAD,
    BOOM,
    DyingSpine,
    ExplodingItem,
    FakeSpine,
    Reference,
    films,
    reference,
    rows_of,
)
from tests.batch_fixtures import fake_kwargs as _kwargs

__all__ = ["films", "reference"]  # fixtures


def _case(out: Path, name: str) -> dict[str, Any]:
    path = out / "cases" / f"{case_stem(name)}.json"
    assert path.is_file(), f"no case JSON for {name}"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _check_batch(
    summary: BatchSummary,
    out: Path,
    items: list[InputItem],
    reference: Reference,
    *,
    bad_fails: bool,
    problem: str = BOOM,
    code: str = "internal_error",
) -> tuple[dict[str, str], dict[str, Any]]:
    """The common assertions; returns the bad film's CSV row and case JSON."""
    names = [it.name for it in items]
    bad = names[BAD]
    rows = read_results(out / "results.csv")
    assert sorted(r["file"] for r in rows) == sorted(names)  # 3 rows, nothing lost or doubled
    by_name = {r["file"]: r for r in rows}
    expected_aac24 = float(f"{reference.prediction.aac24:.3f}")
    for name in names:
        row = by_name[name]
        if name == bad and bad_fails:
            assert row["status"] == "failed" and row["error_code"] == code
            assert row["aac24"] == "" and row["group"] == ""
            assert Path(bad).name in row["error"] and problem in row["error"], row["error"]
        else:
            assert row["status"] in ("ok", "warning"), row["error"]
            assert row["error"] == "" and row["error_code"] == ""
            assert float(row["aac24"]) == pytest.approx(expected_aac24)
            assert row["group"] == reference.prediction.group
        doc = _case(out, name)
        assert doc["file"] == name and doc["status"] == row["status"]
        assert doc["error"] == row["error"]
        assert doc["error_code"] == (row["error_code"] or None)
    n_failed = 1 if bad_fails else 0
    assert summary.n_inputs == 3 and summary.n_skipped == 0
    assert summary.counts["failed"] == n_failed
    assert summary.counts["ok"] + summary.counts["warning"] == 3 - n_failed
    (run,) = json.loads((out / "run.json").read_text())["runs"]
    assert run["finished"] and run["counts"] == summary.counts == summary.input_counts
    assert run["scored"] == 3 and run["resumed"] == run["rescored"] == run["duplicates"] == 0
    assert summary.exit_code == n_failed
    return by_name[bad], _case(out, bad)


# --- in process (jobs=1): every stage ----------------------------------------------------------

STAGES = ("read", "qc", "spine", "band", "score", "overlay", "dicom")


def _install_failure(
    stage: str,
    monkeypatch: pytest.MonkeyPatch,
    reference: Reference,
    bad_path: Path,
    bad_rows: int,
) -> dict[str, Any]:
    """Make ``stage`` raise RuntimeError on the bad film; returns the scorer arguments.

    The band stage hands back the precomputed band for the other films (speed); the pipeline's
    stage order (band right before score) lets the score stage know which film its band is
    from."""
    import aacscore.aorta.roi as roi
    import aacscore.io.inputs as inputs
    import aacscore.outputs.dicom as dicom
    import aacscore.outputs.overlay as overlay
    import aacscore.pipeline as pipeline

    last_rows: list[int] = []

    def fake_band(image: npt.ArrayLike, *args: Any, **kwargs: Any) -> Band:
        last_rows.append(int(np.shape(image)[0]))
        if stage == "band" and last_rows[-1] == bad_rows:
            raise RuntimeError(BOOM)
        return reference.band

    monkeypatch.setattr(roi, "extract_band", fake_band)
    kwargs = _kwargs(reference, bad_rows if stage == "spine" else None)

    def failing(real: Callable[..., Any], is_bad: Callable[..., bool]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kw: Any) -> Any:
            if is_bad(*args):
                raise RuntimeError(BOOM)
            return real(*args, **kw)

        return wrapper

    if stage == "read":
        monkeypatch.setattr(
            inputs,
            "read_radiograph",
            failing(inputs.read_radiograph, lambda path, *a: Path(path) == bad_path),
        )
    elif stage == "qc":
        monkeypatch.setattr(
            pipeline,
            "check_radiograph",
            failing(pipeline.check_radiograph, lambda rad: rad.shape[0] == bad_rows),
        )
    elif stage == "score":
        score = kwargs["score_model"]
        monkeypatch.setattr(
            score,
            "predict",
            failing(score.predict, lambda band, *a: last_rows[-1] == bad_rows),
        )
    elif stage == "overlay":
        monkeypatch.setattr(
            overlay,
            "overlay_image",
            failing(overlay.overlay_image, lambda rad, res: res.file == str(bad_path)),
        )
    elif stage == "dicom":
        monkeypatch.setattr(
            dicom,
            "write_dicom_outputs",
            failing(dicom.write_dicom_outputs, lambda res, *a: res.file == str(bad_path)),
        )
    return kwargs


@pytest.mark.parametrize("stage", STAGES)
def test_unexpected_error_in_one_stage_fails_only_that_film(
    stage: str,
    films: list[Path],
    reference: Reference,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [InputItem(p) for p in films]
    kwargs = _install_failure(stage, monkeypatch, reference, films[BAD], rows_of(films)[BAD])
    seen: list[Result] = []
    summary = score_batch(
        items,
        tmp_path,
        kwargs,
        jobs=1,
        overlay=stage == "overlay",
        dicom_out=stage == "dicom",
        on_result=seen.append,
    )
    writer_stage = stage in ("overlay", "dicom")
    row, doc = _check_batch(summary, tmp_path, items, reference, bad_fails=not writer_stage)
    assert [r.file for r in seen] == [it.name for it in items]  # in order, all reported
    if not writer_stage:
        assert f"unexpected RuntimeError: {BOOM}" in row["error"]
        assert "RuntimeError" in doc["traceback"]
        return
    # an output writer's error keeps the score and is recorded in the case JSON only
    key = "overlay" if stage == "overlay" else "dicom_sr"
    assert doc[f"{stage}_error"] == f"RuntimeError: {BOOM}"
    assert key not in doc
    for it in (items[0], items[2]):
        other = _case(tmp_path, it.name)
        assert f"{stage}_error" not in other and Path(other[key]).is_file()


# --- worker processes (jobs=2) -----------------------------------------------------------------


@pytest.mark.slow
def test_workers_isolate_a_spine_model_crash_and_write_what_one_process_writes(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    # the failure travels with the (pickled) model; band extraction and QC run for real; the
    # first film takes longest, so its row is likely appended after the others
    items = [InputItem(p) for p in films]
    rows = rows_of(films)
    kwargs = _kwargs(reference)
    kwargs["spine_model"] = FakeSpine(reference.spine, fail_rows=rows[BAD], slow_rows=rows[0])
    summary = score_batch(items, tmp_path / "two", kwargs, jobs=2)
    row, doc = _check_batch(summary, tmp_path / "two", items, reference, bad_fails=True)
    assert f"unexpected RuntimeError: {BOOM}" in row["error"]
    assert "RuntimeError" in doc["traceback"]
    one = score_batch(items, tmp_path / "one", kwargs, jobs=1)
    assert one.counts == summary.counts
    two_csv = (tmp_path / "two" / "results.csv").read_bytes()
    assert two_csv == (tmp_path / "one" / "results.csv").read_bytes()
    assert [r["file"] for r in read_results(tmp_path / "two" / "results.csv")] == [
        it.name for it in items
    ]
    (run,) = json.loads((tmp_path / "two" / "run.json").read_text())["runs"]
    assert run["jobs"] == 2 and run["processes"] == 2 and run["threads"] >= 1


@pytest.mark.slow
def test_workers_isolate_an_unexpected_reader_error(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    # the failure travels with the (pickled) input item and is raised in the worker
    items = [InputItem(p) for p in films]
    items[BAD] = ExplodingItem(films[BAD])
    summary = score_batch(items, tmp_path, _kwargs(reference), jobs=2)
    row, doc = _check_batch(summary, tmp_path, items, reference, bad_fails=True)
    assert f"unexpected RuntimeError: {BOOM}" in row["error"]
    assert "RuntimeError" in doc["traceback"]


@pytest.mark.slow
def test_a_result_that_cannot_come_back_from_a_worker_is_worker_failed(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    items = [InputItem(p) for p in films]
    items[BAD] = UnsendableItem(films[BAD])
    summary = score_batch(items, tmp_path, _kwargs(reference), jobs=2)
    rows = {r["file"]: r for r in read_results(tmp_path / "results.csv")}
    bad = rows[items[BAD].name]
    assert bad["status"] == "failed" and bad["error_code"] == "worker_failed"
    assert "worker failed" in bad["error"] and Path(films[BAD]).name in bad["error"]
    assert summary.counts["failed"] == 1
    assert all(rows[it.name]["error_code"] == "" for i, it in enumerate(items) if i != BAD)


@pytest.mark.slow
def test_a_worker_that_dies_fails_only_its_film_and_the_batch_goes_on(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    # the spine model kills its process on film b: the pool breaks with every film in flight
    films = [*films, films[0].with_name("film_a2.dcm")]
    films[-1].write_bytes(films[0].read_bytes() + b"\0\0")  # other bytes: a film of its own
    items = [InputItem(p) for p in films]
    kwargs = _kwargs(reference, fail_rows=rows_of(films)[BAD], spine=DyingSpine)
    summary = score_batch(items, tmp_path, kwargs, jobs=2)
    rows = read_results(tmp_path / "results.csv")
    assert [r["file"] for r in rows] == [it.name for it in items]  # none lost, in input order
    bad = rows[BAD]
    assert bad["status"] == "failed" and bad["error_code"] == "worker_failed"
    assert Path(films[BAD]).name in bad["error"] and "worker process died" in bad["error"]
    assert bad["sha256"] and bad["settings"]  # a film that is known: resumable like any other
    assert all(r["status"] != "failed" for i, r in enumerate(rows) if i != BAD), rows
    assert summary.counts["failed"] == 1 and summary.exit_code == 1
    assert _case(tmp_path, items[BAD].name)["error_code"] == "worker_failed"
    (run,) = json.loads((tmp_path / "run.json").read_text())["runs"]
    assert run["worker_restarts"] >= 1 and run["finished"]


@dataclass(frozen=True)
class UnsendableItem(InputItem):
    """An input that cannot be sent to a worker process (its pickling fails)."""

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle this input")


def test_an_unreadable_film_is_unreadable(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    bad = tmp_path / "junk.dcm"
    bad.write_bytes(b"DICM" * 40)
    items = [InputItem(films[0]), InputItem(bad)]
    score_batch(items, tmp_path / "out", _kwargs(reference), jobs=1)
    rows = read_results(tmp_path / "out" / "results.csv")
    assert [r["error_code"] for r in rows] == ["", "unreadable"]
    assert _case(tmp_path / "out", str(bad))["error_meaning"].startswith("the file could not")


def test_run_json_lists_the_skipped_inputs_and_reruns_never_read_the_output_folder(
    simulated_film: dict[str, Path], reference: Reference, tmp_path: Path
) -> None:
    # aacscore score IN --out IN/results, twice, with overlays and DICOM output
    import shutil

    from aacscore.io import find_inputs

    src = simulated_film["dicom"].parent
    root = tmp_path / "in"
    shutil.copytree(src, root)
    out = root / "results"
    stem = simulated_film["dicom"].stem
    for run in (1, 2):
        found = find_inputs([root], exclude=[out])
        assert [it.path.name for it in found.items] == [f"{stem}.dcm", f"{stem}.png"]
        summary = score_batch(
            list(found.items),
            out,
            _kwargs(reference),
            jobs=1,
            overlay=True,
            dicom_out=True,
            skipped_inputs=found.skipped,
        )
        assert summary.n_skipped == (0 if run == 1 else 2)
        record = json.loads((out / "run.json").read_text())["runs"][-1]
        skipped = {Path(s["file"]).name: s["reason"] for s in record["skipped_inputs"]}
        assert set(skipped) == (
            {f"{stem}.json", f"{stem}_labels.png", f"{stem}_calc.png"}
            | ({"results"} if run == 2 else set())
        )
        assert len(read_results(out / "results.csv")) == 2
    assert list((out / "dicom").glob("*_sr.dcm")) and list((out / "overlays").glob("*.png"))
    # even without --out's exclusion, none of our outputs is taken for a film
    again = find_inputs([root])
    assert [it.path.name for it in again.items] == [f"{stem}.dcm", f"{stem}.png"]
    reasons = " | ".join(s.reason for s in again.skipped)
    assert "aacscore overlay picture" in reasons and "structured report" in reasons
    assert "aacscore secondary capture" in reasons
    assert "aacscore thumbnail" in reasons  # summary.html's, in results/thumbnails


# --- options, the run record and the engine's inputs -------------------------------------------


def test_an_output_folder_that_is_a_file_is_refused_before_any_work(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.write_text("not a folder")
    kwargs = _kwargs(reference)
    with pytest.raises(BatchOptionError, match=r"--out: .*out.* is a file"):
        score_batch([InputItem(films[0])], out, kwargs, jobs=1)
    assert kwargs["spine_model"].calls == 0 and out.read_text() == "not a folder"


def test_the_output_folder_is_made_with_its_parents_and_the_summary_names_its_files(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    out = tmp_path / "a" / "b" / "out"
    summary = score_batch([InputItem(films[0])], out, _kwargs(reference), jobs=1)
    assert summary.out_dir == out and summary.results_csv == out / "results.csv"
    assert summary.run_json == out / "run.json"
    assert [r["file"] for r in read_results(summary.results_csv)] == [str(films[0])]


def test_the_run_record_keeps_the_arguments_the_number_of_inputs_and_the_part(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    items = [InputItem(f) for f in films[:2]]
    arguments = {"inputs": [str(f) for f in films], "overlay": False}
    score_batch(items, out, _kwargs(reference), jobs=1, arguments=arguments, part=Part(3, 1))
    score_batch(items, out, _kwargs(reference), jobs=1)
    first, second = json.loads((out / "run.json").read_text())["runs"]
    assert first["arguments"] == arguments and second["arguments"] == {}
    assert first["n_inputs"] == second["n_inputs"] == 2
    assert first["part"] == {"num_parts": 3, "part_id": 1} and "part" not in second


@dataclass
class _RecordingEngine:
    """An engine that scores in process and keeps the job it was handed."""

    name: str = "recording"
    job: CaseJob | None = None

    def run(
        self,
        tasks: Any,
        job: CaseJob,
        scorer: Any,
        start: Callable[..., None],
        done: Callable[..., None],
    ) -> dict[str, Any]:
        self.job = job
        for task in tasks:
            start(task)
            done(task, job.score(scorer, task))
        return {}


def test_the_engine_gets_the_scorer_arguments_and_output_options(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    # workers (local processes, Ray actors) build their scorer from the job's arguments
    kwargs = _kwargs(reference)
    engine = _RecordingEngine()
    out = tmp_path / "out"
    score_batch(
        [InputItem(films[0])],
        out,
        kwargs,
        jobs=3,
        overlay=True,
        engine=engine,
        include_patient_id=True,
    )
    assert engine.job is not None
    assert dict(engine.job.scorer_kwargs) == kwargs
    job = engine.job
    assert (job.out_dir, job.overlay, job.dicom_out, job.include_patient_id, job.jobs) == (
        out,
        True,
        False,
        True,
        3,
    )
    (record,) = json.loads((out / "run.json").read_text())["runs"]
    assert record["engine"] == "recording"


def test_several_processes_get_every_task_and_their_thread_count(
    films: list[Path], reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aacscore.batch as batch

    seen: dict[str, Any] = {}

    def pool(
        tasks: Any,
        start: Callable[..., None],
        done: Callable[..., None],
        *,
        processes: int,
        threads: int,
        job: CaseJob,
    ) -> int:
        seen.update(names=[t.item.name for t in tasks], processes=processes, threads=threads)
        scorer = batch.Scorer(**job.scorer_kwargs)
        for task in tasks:
            start(task)
            done(task, job.score(scorer, task))
        return 0

    monkeypatch.setattr(batch, "_run_pool", pool)
    monkeypatch.setattr(batch, "cpu_cores", lambda: 4)
    items = [InputItem(f) for f in films]
    summary = score_batch(items, tmp_path / "out", _kwargs(reference), jobs=2)
    assert seen == {"names": [it.name for it in items], "processes": 2, "threads": 2}
    assert summary.counts["failed"] == 0 and summary.scored == 3
    (record,) = json.loads((tmp_path / "out" / "run.json").read_text())["runs"]
    assert (record["processes"], record["threads"], record["worker_restarts"]) == (2, 2, 0)


def test_an_imposed_pixel_spacing_reaches_the_reader(
    simulated_film: dict[str, Path], reference: Reference, tmp_path: Path
) -> None:
    png = InputItem(simulated_film["png"])  # a PNG has no spacing of its own
    out = tmp_path / "out"
    score_batch([png], out, {**_kwargs(reference), "spacing_mm": 0.3}, jobs=1)
    (row,) = read_results(out / "results.csv")
    assert float(row["spacing_mm"]) == pytest.approx(0.3)
    assert _case(out, png.name)["spacing_mm"] == pytest.approx(0.3)
