"""The batch's steps around each case, without any model or worker process: writing the overlay
and DICOM outputs (an error recorded, never raised), collecting a worker's result, the worker
start-up, killing a broken pool's processes, run records, case stems and output removal."""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from aacscore import batch
from aacscore.batch import CaseTask
from aacscore.codes import ErrorCode
from aacscore.io import InputItem
from aacscore.outputs.case_json import read_case_json
from aacscore.results import CaseIds, Result, Status

RGB = np.zeros((4, 4, 3), np.uint8)


def _result(name: str = "film.dcm") -> Result:
    return Result(file=name, status=Status.OK, aac24=3.0, details={"kept": 1})


def _task(name: str = "sub/film.dcm", index: int = 3) -> CaseTask:
    return CaseTask(index, InputItem(Path(name)), CaseIds(sha256="ab" * 32, settings="s1"), (7,))


class _Scorer:
    def __init__(self, info: dict[str, Any] | Exception) -> None:
        self.info = info

    def models_info(self) -> dict[str, Any]:
        if isinstance(self.info, Exception):
            raise self.info
        return self.info


# --- overlay and DICOM outputs -----------------------------------------------------------------


def test_the_overlay_is_drawn_from_the_film_and_result_and_its_path_recorded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from aacscore.outputs import overlay

    calls: list[tuple[Any, ...]] = []
    written = tmp_path / "written.png"

    def draw(rad: object, result: Result) -> np.ndarray:
        calls.append(("draw", rad, result))
        return RGB

    def save(rgb: np.ndarray, path: Path) -> Path:
        calls.append(("save", rgb, path))
        return written

    monkeypatch.setattr(overlay, "overlay_image", draw)
    monkeypatch.setattr(overlay, "save_overlay", save)
    rad, result, path = object(), _result(), tmp_path / "overlays" / "x.png"
    out, rgb = batch._add_overlay(rad, result, path)  # type: ignore[arg-type]
    assert calls == [("draw", rad, result), ("save", RGB, path)]
    assert rgb is RGB
    assert out.details == {"kept": 1, "overlay": str(written)}


def test_an_overlay_that_cannot_be_drawn_is_recorded_and_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from aacscore.outputs import overlay

    def draw(rad: object, result: Result) -> np.ndarray:
        raise ValueError("no corners")

    monkeypatch.setattr(overlay, "overlay_image", draw)
    with caplog.at_level(logging.WARNING, logger="aacscore.batch"):
        out, rgb = batch._add_overlay(object(), _result(), tmp_path / "x.png")  # type: ignore[arg-type]
    assert rgb is None
    assert out.details == {"kept": 1, "overlay_error": "ValueError: no corners"}
    assert [r.getMessage() for r in caplog.records] == ["film.dcm: overlay not written: no corners"]


def test_dicom_outputs_get_the_result_overlay_folder_stem_and_weight_hashes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from aacscore.outputs import dicom

    seen: dict[str, Any] = {}

    def write(result: Result, rgb: Any, out_dir: Path, stem: str, *, models: Any) -> Any:
        seen.update(result=result, rgb=rgb, out_dir=out_dir, stem=stem, models=models)
        return SimpleNamespace(details=lambda: {"dicom_sr": "sr.dcm"})

    monkeypatch.setattr(dicom, "write_dicom_outputs", write)
    info = {"spine": {"sha256": "f00"}}
    result = _result()
    out = batch._add_dicom(_Scorer(info), result, RGB, tmp_path, "stem_1")  # type: ignore[arg-type]
    assert seen == {
        "result": result,
        "rgb": RGB,
        "out_dir": tmp_path,
        "stem": "stem_1",
        "models": info,
    }
    assert out.details == {"kept": 1, "dicom_sr": "sr.dcm"}


def test_dicom_outputs_without_weight_hashes_and_a_dicom_error_is_recorded_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from aacscore.outputs import dicom

    seen_models: list[Any] = []

    def write(result: Result, rgb: Any, out_dir: Path, stem: str, *, models: Any) -> Any:
        seen_models.append(models)
        raise OSError("disk full")

    monkeypatch.setattr(dicom, "write_dicom_outputs", write)
    with caplog.at_level(logging.DEBUG, logger="aacscore.batch"):
        scorer = _Scorer(RuntimeError("no weights"))
        out = batch._add_dicom(scorer, _result(), None, tmp_path, "s")  # type: ignore[arg-type]
    assert seen_models == [None]
    assert out.details == {"kept": 1, "dicom_error": "OSError: disk full"}
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages == [
        (logging.DEBUG, "models info unavailable: no weights"),
        (logging.WARNING, "film.dcm: DICOM output not written: disk full"),
    ]


# --- worker results and processes --------------------------------------------------------------


def _future(result: Result | None = None, error: BaseException | None = None) -> Future[Result]:
    fut: Future[Result] = Future()
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)  # type: ignore[arg-type]
    return fut


def test_a_workers_result_goes_to_done_with_its_task(tmp_path: Path) -> None:
    done: list[tuple[CaseTask, Result]] = []
    lost: list[CaseTask] = []
    task, res = _task(), _result()
    batch._collect(_future(res), task, lambda t, r: done.append((t, r)), lost, tmp_path)
    assert done == [(task, res)]
    assert lost == []


def test_a_broken_pool_loses_the_task_for_a_rerun_without_a_row(tmp_path: Path) -> None:
    done: list[Any] = []
    lost: list[CaseTask] = []
    task = _task()
    batch._collect(_future(error=BrokenProcessPool("gone")), task, done.append, lost, tmp_path)
    assert lost == [task]
    assert done == []
    assert not (tmp_path / "cases").exists()


def test_a_result_that_cannot_come_back_is_worker_failed_with_the_reason(tmp_path: Path) -> None:
    done: list[tuple[CaseTask, Result]] = []
    lost: list[CaseTask] = []
    task = _task()
    err = TypeError("cannot pickle 'generator' object")
    batch._collect(_future(error=err), task, lambda t, r: done.append((t, r)), lost, tmp_path)
    assert lost == []
    [(t, res)] = done
    assert t is task
    assert res.status is Status.FAILED
    assert res.error_code is ErrorCode.WORKER_FAILED
    assert res.error == ("sub/film.dcm: worker failed: TypeError: cannot pickle 'generator' object")
    assert res.ids == task.ids


def test_worker_failed_writes_the_case_json_under_the_case_stem(tmp_path: Path) -> None:
    task = _task()
    res = batch.worker_failed(task, tmp_path, "killed")
    path = tmp_path / "cases" / f"{batch.case_stem('sub/film.dcm')}.json"
    doc = read_case_json(path)
    assert doc["file"] == "sub/film.dcm"
    assert doc["status"] == "failed"
    assert doc["error_code"] == "worker_failed"
    assert doc["error"] == "sub/film.dcm: worker failed: killed" == res.error
    assert doc["sha256"] == "ab" * 32
    assert doc["settings"] == "s1"


def test_a_worker_loads_its_scorer_with_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import aacscore.backend

    threads: list[int | None] = []
    monkeypatch.setattr(aacscore.backend, "set_threads", threads.append)
    monkeypatch.setattr(batch, "Scorer", lambda **kw: ("scorer", kw))
    monkeypatch.setattr(batch, "_WORKER", {})
    batch._init_worker({"tta": False}, 3)
    assert threads == [3]
    assert batch._WORKER == {"scorer": ("scorer", {"tta": False})}


def test_a_broken_pools_processes_are_all_killed() -> None:
    killed: list[str] = []
    procs = {n: SimpleNamespace(kill=lambda n=n: killed.append(n)) for n in ("p1", "p2")}
    batch._kill_workers(SimpleNamespace(_processes=procs))  # type: ignore[arg-type]
    assert killed == ["p1", "p2"]
    batch._kill_workers(SimpleNamespace(_processes=None))  # type: ignore[arg-type]
    batch._kill_workers(SimpleNamespace())  # type: ignore[arg-type]
    assert killed == ["p1", "p2"]


# --- run records, stems, outputs ---------------------------------------------------------------


def test_run_records_are_read_old_single_records_kept_and_none_without_a_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.json"
    assert batch._read_runs(path) == []
    path.write_text(json.dumps({"runs": [{"a": 1}, {"b": 2}]}), encoding="utf-8")
    assert batch._read_runs(path) == [{"a": 1}, {"b": 2}]
    path.write_text(json.dumps({"started": "x"}), encoding="utf-8")
    assert batch._read_runs(path) == [{"started": "x"}]


def test_a_run_json_that_is_not_a_record_is_kept_as_unrecognised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="aacscore.batch"):
        assert batch._read_runs(path) == [{"unrecognised": [1, 2]}]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: not a run record; starting a new list of runs after it"
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"{not json", "Expecting property name"), (b"\xff\xfe\x00bad", "can't decode byte 0xff")],
)
def test_an_unreadable_run_json_is_moved_aside_and_a_new_list_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, problem: str
) -> None:
    path = tmp_path / "run.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="aacscore.batch"):
        assert batch._read_runs(path) == []
    aside = tmp_path / "run.json.unreadable"
    assert not path.exists()
    assert aside.read_bytes() == content
    [message] = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"{path}: unreadable (")
    assert problem in message
    assert message.endswith(f"); moved to {aside}, starting a new list of runs")


def test_case_stems_are_safe_short_and_unique_per_name() -> None:
    stem = batch.case_stem("dir/Pat ient#1.dcm")
    assert stem.startswith("Pat_ient_1")
    assert stem == batch.case_stem("dir/Pat ient#1.dcm")
    assert stem != batch.case_stem("other/Pat ient#1.dcm")
    assert all(c.isalnum() or c in "._-" for c in stem)
    long = batch.case_stem("x" * 200 + ".dcm")
    assert len(long) == 60 + 1 + 8
    assert batch.case_stem("###") == "__" + hashlib.sha1(b"###").hexdigest()[:8]
    assert batch.case_stem("") == "case_" + hashlib.sha1(b"").hexdigest()[:8]


def test_removing_a_replaced_rows_outputs_removes_its_four_files_only(tmp_path: Path) -> None:
    stem = batch.case_stem("a.dcm")
    other = batch.case_stem("b.dcm")
    files = [
        tmp_path / "cases" / f"{stem}.json",
        tmp_path / "overlays" / f"{stem}.png",
        tmp_path / "dicom" / f"{stem}_sr.dcm",
        tmp_path / "dicom" / f"{stem}_sc.dcm",
    ]
    keep = tmp_path / "cases" / f"{other}.json"
    for p in [*files, keep]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    batch._remove_outputs(tmp_path, "a.dcm")
    assert [p.exists() for p in files] == [False] * 4
    assert keep.exists()
    batch._remove_outputs(tmp_path, "a.dcm")  # already gone: no error


def test_dicom_identifiers_come_stripped_from_the_header_and_the_patient_only_when_asked() -> None:
    header = {
        "StudyInstanceUID": " 1.2.3 ",
        "SeriesInstanceUID": "1.2.4",
        "SOPInstanceUID": "1.2.5",
        "AccessionNumber": "ACC9 ",
        "PatientID": None,
    }
    rad = SimpleNamespace(header=header)
    ids = {"study_uid": "1.2.3", "series_uid": "1.2.4", "sop_uid": "1.2.5", "accession": "ACC9"}
    assert batch.dicom_ids(rad) == ids  # type: ignore[arg-type]
    assert batch.dicom_ids(rad, include_patient_id=True) == {**ids, "patient_id": ""}  # type: ignore[arg-type]
    rad = SimpleNamespace(header={**header, "PatientID": "P7"})
    assert batch.dicom_ids(rad, include_patient_id=True)["patient_id"] == "P7"  # type: ignore[arg-type]
    assert batch.dicom_ids(SimpleNamespace(header=None)) == {}  # type: ignore[arg-type]


def test_a_summary_page_that_cannot_be_written_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from aacscore.outputs import summary_html

    seen: list[Path] = []

    def write(out: Path) -> Path:
        seen.append(out)
        raise PermissionError("read-only")

    monkeypatch.setattr(summary_html, "write_summary", write)
    with caplog.at_level(logging.WARNING, logger="aacscore.batch"):
        batch._write_summary(tmp_path)
    assert seen == [tmp_path]
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path}: summary.html not written: read-only"
    ]


def test_settings_values_are_floats_lists_or_as_given() -> None:
    assert batch._json_value((0.2, 1)) == [0.2, 1.0]
    assert batch._json_value(2) == 2.0
    assert isinstance(batch._json_value(2), float)
    assert batch._json_value(True) is True
    assert batch._json_value(None) is None
