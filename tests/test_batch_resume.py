"""Resume of the batch runner (:mod:`aacscore.batch`), in one process: cases known by their
content and settings, rows replaced in place, outputs added later without running any model,
the DICOM identifier columns, the list of runs in ``run.json`` and the rows' order.

The models are the fakes of :mod:`tests.batch_fixtures` (they count their calls) or, where the
severity groups must matter, an untrained score network.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

from aacscore.aorta.roi import BandGeometry
from aacscore.batch import BatchSummary, case_stem, score_batch
from aacscore.io import InputItem
from aacscore.outputs.results_csv import PREVIOUS_COLUMNS, read_results
from aacscore.results import RESULT_COLUMNS
from aacscore.score.network import NetworkConfig, ScoreNet
from aacscore.score.predict import ScoreModel, ScoreModelConfig
from tests.batch_fixtures import Reference, fake_kwargs, films, reference

__all__ = ["films", "reference"]  # fixtures


def _run(items: list[InputItem], out: Path, kwargs: dict[str, Any], **kw: Any) -> BatchSummary:
    return score_batch(items, out, kwargs, jobs=1, **kw)


def _rows(out: Path) -> list[dict[str, str]]:
    return read_results(out / "results.csv")


def _runs(out: Path) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads((out / "run.json").read_text())["runs"]
    return runs


def _calls(kwargs: dict[str, Any]) -> tuple[int, int]:
    return kwargs["spine_model"].calls, kwargs["score_model"].calls


def _case(out: Path, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "cases" / f"{case_stem(name)}.json").read_text())
    return doc


@pytest.fixture()
def copies(films: list[Path], tmp_path: Path) -> list[Path]:
    """The three films copied into ``tmp_path/in`` (free to replace)."""
    folder = tmp_path / "in"
    folder.mkdir()
    return [Path(shutil.copy(f, folder / f.name)) for f in films]


def test_one_film_is_one_row_whatever_its_path_is_spelled_like(
    copies: list[Path], reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    kwargs = fake_kwargs(reference)
    first = _run([InputItem(p) for p in copies[:2]], out, kwargs)
    assert first.scored == 2 and _calls(kwargs) == (2, 2)
    monkeypatch.chdir(copies[0].parent)
    again = [InputItem(Path(p.name)) for p in copies]  # relative now, and one film more
    second = _run(again, out, kwargs)
    assert (second.n_skipped, second.scored, second.rescored) == (2, 1, 0)
    assert _calls(kwargs) == (3, 3)  # only the new film was scored
    rows = _rows(out)
    assert [r["file"] for r in rows] == [str(copies[0]), str(copies[1]), "film_c.dcm"]
    assert len({r["sha256"] for r in rows}) == 3 and len({r["settings"] for r in rows}) == 1
    runs = _runs(out)
    assert [(r["scored"], r["resumed"]) for r in runs] == [(2, 0), (1, 2)]
    assert second.exit_code == 0 and second.input_counts["failed"] == 0


def test_the_same_bytes_twice_in_one_batch_are_scored_once(
    copies: list[Path], reference: Reference, tmp_path: Path
) -> None:
    twin = copies[0].with_name("twin_of_a.dcm")
    shutil.copy(copies[0], twin)
    items = [InputItem(copies[0]), InputItem(twin), InputItem(copies[1])]
    kwargs = fake_kwargs(reference)
    summary = _run(items, tmp_path / "out", kwargs)
    assert summary.duplicates == 1 and summary.scored == 2 and _calls(kwargs) == (2, 2)
    assert [r["file"] for r in _rows(tmp_path / "out")] == [str(copies[0]), str(copies[1])]
    (run,) = _runs(tmp_path / "out")
    assert run["duplicate_inputs"] == [{"file": str(twin), "same_as": str(copies[0])}]
    assert run["duplicates"] == 1 and sum(run["input_counts"].values()) == 3


def test_a_replaced_file_is_scored_again_and_its_row_replaced(
    copies: list[Path], reference: Reference, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    items = [InputItem(p) for p in copies[:2]]
    kwargs = fake_kwargs(reference)
    _run(items, out, kwargs, overlay=True)
    before = _rows(out)
    stale_overlay = out / "overlays" / f"{case_stem(items[1].name)}.png"
    assert stale_overlay.is_file()
    shutil.copy(copies[2], copies[1])  # film b's path now holds film c
    summary = _run(items, out, kwargs)  # no overlay this time
    assert (summary.n_skipped, summary.rescored, summary.scored) == (1, 1, 0)
    assert _calls(kwargs) == (3, 3)
    rows = _rows(out)
    assert [r["file"] for r in rows] == [it.name for it in items]  # replaced, not added
    assert rows[0] == before[0] and rows[1]["sha256"] != before[1]["sha256"]
    assert _case(out, items[1].name)["sha256"] == rows[1]["sha256"]
    assert not stale_overlay.exists()  # drawn from the old film: removed
    assert _runs(out)[-1]["rescored"] == 1


@pytest.fixture(scope="module")
def untrained() -> ScoreModel:
    torch.manual_seed(0)
    net = ScoreNet(NetworkConfig(head="segments", layers=(1, 1, 1, 1)))
    return ScoreModel(net.eval(), ScoreModelConfig(network=net.config, band=BandGeometry()))


def test_changed_options_are_scored_again_and_recorded_run_by_run(
    copies: list[Path], reference: Reference, untrained: ScoreModel, tmp_path: Path
) -> None:
    # the case: a re-run with --overlay --groups ckd said "8 already done"
    out = tmp_path / "out"
    items = [InputItem(p) for p in copies[:2]]
    spine = fake_kwargs(reference)["spine_model"]
    lewis = {"spine_model": spine, "score_model": untrained, "tta": False}
    _run(items, out, lewis)
    before = _rows(out)
    assert {r["group"] for r in before} <= {"low", "moderate", "high"}
    ckd = {**lewis, "groups": "ckd"}
    summary = _run(items, out, ckd, overlay=True)
    assert (summary.rescored, summary.n_skipped) == (2, 0) and spine.calls == 4
    rows = _rows(out)
    assert len(rows) == 2 and {r["group"] for r in rows} <= {"none/mild", "moderate", "severe"}
    assert rows[0]["settings"] != before[0]["settings"] and rows[0]["sha256"] == before[0]["sha256"]
    for it in items:
        assert Path(_case(out, it.name)["overlay"]).is_file()
    runs = _runs(out)
    assert [r["settings"]["groups"]["name"] for r in runs] == ["lewis", "ckd"]
    assert [r["settings"]["hash"] for r in runs] == [before[0]["settings"], rows[0]["settings"]]
    assert _run(items, out, ckd).n_skipped == 2 and spine.calls == 4  # now done


def test_outputs_asked_for_later_are_written_without_running_any_model(
    simulated_film: dict[str, Path], reference: Reference, tmp_path: Path
) -> None:
    items = [InputItem(simulated_film["dicom"]), InputItem(simulated_film["png"])]
    kwargs = fake_kwargs(reference)
    out = tmp_path / "later"
    _run(items, out, kwargs)
    first = {it.name: _case(out, it.name) for it in items}
    assert not (out / "overlays").exists() and not (out / "dicom").exists()
    summary = _run(items, out, kwargs, overlay=True, dicom_out=True)
    assert _calls(kwargs) == (2, 2)  # no model ran again
    assert (summary.n_skipped, summary.outputs_added, summary.scored) == (2, 2, 0)
    dcm, png = (_case(out, it.name) for it in items)
    assert Path(dcm["overlay"]).is_file() and Path(png["overlay"]).is_file()
    assert Path(dcm["dicom_sr"]).is_file() and Path(dcm["dicom_sc"]).is_file()
    assert png["dicom_skipped"] == "input is png, not DICOM"
    for it, doc in zip(items, (dcm, png), strict=True):
        old = first[it.name]
        assert {k: v for k, v in doc.items() if k in old} == old  # only outputs added
    sr = pydicom.dcmread(dcm["dicom_sr"])
    assert sr.StudyInstanceUID == pydicom.dcmread(simulated_film["dicom"]).StudyInstanceUID
    # the overlays equal those drawn when scoring with --overlay from the start
    fresh = tmp_path / "fresh"
    _run(items, fresh, fake_kwargs(reference), overlay=True, dicom_out=True)
    for it in items:
        a = np.asarray(Image.open(Path(_case(out, it.name)["overlay"])))
        b = np.asarray(Image.open(Path(_case(fresh, it.name)["overlay"])))
        assert a.shape == b.shape and np.array_equal(a, b)
    assert _case(fresh, items[0].name).keys() == dcm.keys()
    # nothing more to add
    mtime = Path(dcm["overlay"]).stat().st_mtime_ns
    again = _run(items, out, kwargs, overlay=True, dicom_out=True)
    assert again.outputs_added == 0 and Path(dcm["overlay"]).stat().st_mtime_ns == mtime
    assert _calls(kwargs) == (2, 2)


def test_an_unusable_case_json_is_scored_again(
    copies: list[Path], reference: Reference, tmp_path: Path
) -> None:
    items = [InputItem(p) for p in copies[:2]]
    kwargs = fake_kwargs(reference)
    out = tmp_path / "out"
    _run(items, out, kwargs)
    (out / "cases" / f"{case_stem(items[0].name)}.json").write_text("{ torn")
    summary = _run(items, out, kwargs, overlay=True)
    assert (summary.rescored, summary.n_skipped, summary.outputs_added) == (1, 1, 1)
    assert _calls(kwargs) == (3, 3)
    assert [r["file"] for r in _rows(out)] == [it.name for it in items]
    assert all(Path(_case(out, it.name)["overlay"]).is_file() for it in items)


def test_dicom_identifiers_and_the_patient_id_only_when_asked(
    simulated_film: dict[str, Path], reference: Reference, tmp_path: Path
) -> None:
    items = [InputItem(simulated_film["dicom"]), InputItem(simulated_film["png"])]
    kwargs = fake_kwargs(reference)
    out = tmp_path / "out"
    _run(items, out, kwargs)
    ds = pydicom.dcmread(simulated_film["dicom"], stop_before_pixels=True)
    dcm, png = _rows(out)
    assert (dcm["study_uid"], dcm["series_uid"], dcm["sop_uid"], dcm["accession"]) == (
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        ds.AccessionNumber,
    )
    assert dcm["patient_id"] == "" and ds.PatientID  # identifying: not by default
    assert all(png[c] == "" for c in ("study_uid", "series_uid", "sop_uid", "accession"))
    with_id = _run(items, out, kwargs, include_patient_id=True)
    assert with_id.n_skipped == 2 and _calls(kwargs) == (2, 2)  # filled in without scoring
    assert [r["patient_id"] for r in _rows(out)] == [ds.PatientID, ""]
    assert _case(out, items[0].name)["patient_id"] == ds.PatientID
    fresh = tmp_path / "fresh"
    _run(items, fresh, fake_kwargs(reference), include_patient_id=True)
    assert _rows(fresh) == _rows(out)
    _run(items, out, kwargs)  # without the option again: cleared
    assert [r["patient_id"] for r in _rows(out)] == ["", ""] and _calls(kwargs) == (2, 2)


def test_a_missing_path_is_a_failed_row_and_the_batch_goes_on(
    copies: list[Path], reference: Reference, tmp_path: Path
) -> None:
    missing = tmp_path / "nonexist" / "x.dcm"
    items = [InputItem(missing), InputItem(copies[0])]
    kwargs = fake_kwargs(reference)
    out = tmp_path / "out"
    summary = _run(items, out, kwargs)
    bad, good = _rows(out)
    assert bad["status"] == "failed" and bad["error_code"] == "unreadable"
    assert bad["error"] == f"{missing}: file not found" and bad["sha256"] == ""
    assert good["status"] in ("ok", "warning")
    assert summary.exit_code == 1 and summary.input_counts["failed"] == 1
    assert _run(items, out, kwargs).n_skipped == 2  # a failed row is done ...
    retried = _run(items, out, kwargs, retry_failed=True)  # ... unless retried
    assert (retried.rescored, retried.n_skipped) == (1, 1) and len(_rows(out)) == 2
    assert _calls(kwargs) == (1, 1)


def test_every_input_failing_gives_exit_code_1(reference: Reference, tmp_path: Path) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"DICM" * 40)
    summary = _run([InputItem(junk)], tmp_path / "out", fake_kwargs(reference))
    assert summary.exit_code == 1 and summary.input_counts["failed"] == 1


def test_rows_of_this_run_end_the_file_in_input_order(
    copies: list[Path], reference: Reference, tmp_path: Path
) -> None:
    items = [InputItem(p) for p in copies]
    kwargs = fake_kwargs(reference)
    out = tmp_path / "out"
    _run(items, out, kwargs)
    _run([items[2], items[0]], out, kwargs)
    assert [r["file"] for r in _rows(out)] == [items[1].name, items[2].name, items[0].name]


def test_an_old_run_json_and_an_old_results_csv_are_carried_over(
    copies: list[Path], reference: Reference, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old_record = {"started": "2026-01-01T00:00:00+00:00", "finished": "x", "counts": {"ok": 2}}
    (out / "run.json").write_text(json.dumps(old_record))
    items = [InputItem(p) for p in copies[:2]]
    with (out / "results.csv").open("w", newline="") as f:  # as written before the ids
        w = csv.DictWriter(f, fieldnames=PREVIOUS_COLUMNS)
        w.writeheader()
        w.writerow({c: "" for c in PREVIOUS_COLUMNS} | {"file": items[0].name, "status": "ok"})
        w.writerow({c: "" for c in PREVIOUS_COLUMNS} | {"file": "other.dcm", "status": "ok"})
    kwargs = fake_kwargs(reference)
    summary = _run(items, out, kwargs)
    assert (summary.rescored, summary.scored) == (1, 1) and _calls(kwargs) == (2, 2)
    rows = _rows(out)
    assert [r["file"] for r in rows] == ["other.dcm", items[0].name, items[1].name]
    assert rows[0]["sha256"] == "" and all(r["sha256"] for r in rows[1:])
    with (out / "results.csv").open() as f:
        assert f.readline().strip() == ",".join(RESULT_COLUMNS)
    runs = _runs(out)
    assert runs[0] == old_record and len(runs) == 2 and runs[1]["rescored"] == 1
    (out / "run.json").write_text("{ torn")
    _run(items, out, kwargs)
    assert len(_runs(out)) == 1 and (out / "run.json.unreadable").read_text() == "{ torn"


def test_the_secondary_capture_is_added_when_overlay_is_asked_after_dicom_out(
    simulated_film: dict[str, Path], reference: Reference, tmp_path: Path
) -> None:
    # the SC is the overlay as DICOM: a --dicom-out run without --overlay writes only the SR
    item = InputItem(simulated_film["dicom"])
    kwargs = fake_kwargs(reference)
    out = tmp_path / "out"
    _run([item], out, kwargs, dicom_out=True)
    first = _case(out, item.name)
    assert Path(first["dicom_sr"]).is_file() and not first.get("dicom_sc")
    summary = _run([item], out, kwargs, dicom_out=True, overlay=True)
    assert summary.outputs_added == 1 and _calls(kwargs) == (1, 1)
    doc = _case(out, item.name)
    assert Path(doc["overlay"]).is_file() and Path(doc["dicom_sc"]).is_file()
    assert pydicom.dcmread(doc["dicom_sc"]).Modality == "OT"


def test_a_patient_id_added_later_does_not_redraw_the_overlay(
    simulated_film: dict[str, Path], reference: Reference, tmp_path: Path
) -> None:
    item = InputItem(simulated_film["dicom"])
    kwargs = fake_kwargs(reference)
    out = tmp_path / "out"
    _run([item], out, kwargs, overlay=True)
    overlay = Path(_case(out, item.name)["overlay"])
    mtime = overlay.stat().st_mtime_ns
    summary = _run([item], out, kwargs, overlay=True, include_patient_id=True)
    assert summary.outputs_added == 0 and overlay.stat().st_mtime_ns == mtime
    assert _rows(out)[0]["patient_id"] and _calls(kwargs) == (1, 1)


def test_scoring_again_after_an_unusable_case_json_names_the_film(
    copies: list[Path], reference: Reference, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    item = InputItem(copies[0])
    kwargs = fake_kwargs(reference)
    out = tmp_path / "out"
    _run([item], out, kwargs)
    (out / "cases" / f"{case_stem(item.name)}.json").write_text("{ torn")
    with caplog.at_level("WARNING", logger="aacscore.batch"):
        assert _run([item], out, kwargs, overlay=True).rescored == 1
    assert f"{item.name}: scoring again (CaseDocumentError: " in caplog.text
