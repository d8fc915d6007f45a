"""``aacscore score --dicom-out`` and the batch runner's DICOM output, with the shipped models."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest
from PIL import Image
from typer.testing import CliRunner

from aacscore.batch import case_stem, score_batch
from aacscore.cli import app
from aacscore.io import collect_inputs
from aacscore.outputs.dicom import replacement_uid
from aacscore.outputs.results_csv import read_results
from aacscore.pipeline import Scorer
from aacscore.results import RESULT_COLUMNS
from tests.outputs.dicom_sources import BAD_STUDY, variant


@pytest.fixture(scope="module")
def model_kwargs() -> dict[str, Any]:
    scorer = Scorer()
    return {"spine_model": scorer.spine_model, "score_model": scorer.score_model}


def _sr_numbers(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}

    def walk(ds: pydicom.Dataset) -> None:
        for item in ds.get("ContentSequence", []):
            if item.ValueType == "NUM":
                code = item.ConceptNameCodeSequence[0].CodeValue
                mv = item.MeasuredValueSequence[0]
                # FloatingPointValue only accompanies values a decimal string cannot hold exactly
                out[code] = float(mv.get("FloatingPointValue", mv.NumericValue))
            walk(item)

    walk(pydicom.dcmread(path))
    return out


def test_cli_dicom_out_writes_sr_and_sc(simulated_film: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["score", str(simulated_film["dicom"]), "-o", str(out), "--dicom-out", "--overlay"]
    )
    assert res.exit_code == 0, res.output
    with (out / "results.csv").open(newline="") as f:
        assert tuple(next(csv.reader(f))) == RESULT_COLUMNS
    (row,) = read_results(out / "results.csv")
    assert row["status"] in ("ok", "warning"), row["error"]
    stem = case_stem(str(simulated_film["dicom"]))
    sr_path, sc_path = out / "dicom" / f"{stem}_sr.dcm", out / "dicom" / f"{stem}_sc.dcm"
    case = json.loads((out / "cases" / f"{stem}.json").read_text())
    assert case["dicom_sr"] == str(sr_path) and case["dicom_sc"] == str(sc_path)
    assert "dicom_error" not in case and "dicom_skipped" not in case
    src = pydicom.dcmread(simulated_film["dicom"], stop_before_pixels=True)
    sr = pydicom.dcmread(sr_path)
    assert sr.StudyInstanceUID == src.StudyInstanceUID
    assert _sr_numbers(sr_path)["AAC24"] == pytest.approx(float(row["aac24"]), abs=5e-4)
    sc = pydicom.dcmread(sc_path)
    assert sc.StudyInstanceUID == src.StudyInstanceUID
    overlay = out / "overlays" / f"{stem}.png"
    assert case["overlay"] == str(overlay)
    assert Image.open(overlay).size == (sc.Columns, sc.Rows)
    (run,) = json.loads((out / "run.json").read_text())["runs"]
    assert run["arguments"]["dicom_out"] is True


def test_batch_dicom_out_without_overlay_writes_only_the_sr(
    simulated_film: dict[str, Path], model_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    items = collect_inputs([simulated_film["dicom"], simulated_film["png"]])
    summary = score_batch(items, tmp_path, model_kwargs, dicom_out=True)
    assert summary.counts["failed"] == 0
    dcm_case = json.loads((tmp_path / "cases" / f"{case_stem(items[0].name)}.json").read_text())
    assert Path(dcm_case["dicom_sr"]).is_file() and "dicom_sc" not in dcm_case
    png_case = json.loads((tmp_path / "cases" / f"{case_stem(items[1].name)}.json").read_text())
    assert "dicom_sr" not in png_case and "not DICOM" in png_case["dicom_skipped"]
    assert sorted(p.name for p in (tmp_path / "dicom").iterdir()) == [
        f"{case_stem(items[0].name)}_sr.dcm"
    ]


def test_batch_dicom_error_keeps_the_score(
    simulated_film: dict[str, Path],
    model_kwargs: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aacscore.outputs.dicom as dicom_out

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise dicom_out.DicomOutputError("film.dcm: cannot write (disk full)")

    monkeypatch.setattr(dicom_out, "write_dicom_outputs", broken)
    items = collect_inputs([simulated_film["dicom"]])
    score_batch(items, tmp_path, model_kwargs, dicom_out=True)
    (row,) = read_results(tmp_path / "results.csv")
    assert row["status"] in ("ok", "warning") and row["aac24"] != ""
    case = json.loads((tmp_path / "cases" / f"{case_stem(items[0].name)}.json").read_text())
    assert case["dicom_error"] == "DicomOutputError: film.dcm: cannot write (disk full)"
    assert case["aac24"] is not None


def test_cli_library_warnings_name_the_file_once(
    simulated_film: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = variant(simulated_film["dicom"], tmp_path / "films", "bad_uids")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["score", str(source), "-o", str(out), "--dicom-out", "--overlay"]
    )
    assert res.exit_code == 0, res.output
    # nothing raw on the console: no Python warning, no pydicom line without the file name
    assert "UserWarning" not in res.output and "Invalid value" not in res.output
    assert not [r for r in caplog.records if r.name.startswith(("pydicom", "highdicom"))]
    invalid = [
        r.getMessage() for r in caplog.records if "Invalid value for VR UI" in r.getMessage()
    ]
    # four invalid values, each reported once, while reading, with the file name
    assert len(invalid) == len(set(invalid)) == 4
    assert all(m.startswith(f"{source}: Invalid value for VR UI: '") for m in invalid)
    stem = case_stem(str(source))
    case = json.loads((out / "cases" / f"{stem}.json").read_text())
    assert len(case["reader"]["library_warnings"]) == 4
    assert [w.split()[0] for w in case["dicom_warnings"]] == [
        "SOPInstanceUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
    ]
    (row,) = read_results(out / "results.csv")
    assert row["status"] == "ok" and "reader_warning" not in row["qc_flags"]
    sr = pydicom.dcmread(out / "dicom" / f"{stem}_sr.dcm")
    assert sr.StudyInstanceUID == replacement_uid(BAD_STUDY)
