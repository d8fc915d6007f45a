"""The case JSON document: codes, quality, flags with their meaning, the header section, and the
result (with its stages) read back from it."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset

from aacscore._files import json_safe
from aacscore.codes import ERROR_CODES, FLAGS, ErrorCode
from aacscore.gate.field import FieldCheck
from aacscore.gate.header import check_header
from aacscore.gate.quality import Quality
from aacscore.gate.view import CLASSES, ViewPrediction, prediction
from aacscore.io import read_radiograph
from aacscore.io.types import RadiographInfo
from aacscore.kauppila import parse_groups
from aacscore.outputs.case_json import (
    CaseDocumentError,
    case_document,
    document_groups,
    read_case_json,
    result_from_document,
    write_case_json,
)
from aacscore.outputs.overlay import overlay_image
from aacscore.pipeline import Scorer
from aacscore.results import Result, StageResults, failed
from aacscore.spine.result import SpineResult
from tests.batch_fixtures import Reference, fake_kwargs, reference
from tests.results_fixtures import ok_result as _ok

__all__ = ["reference"]  # fixture


def test_the_case_document_carries_codes_quality_and_flag_meanings() -> None:
    doc = case_document(failed("a.dcm", "a.dcm: AP", ErrorCode.WRONG_VIEW))
    assert doc["error_code"] == "wrong_view"
    assert doc["error_meaning"] == ERROR_CODES[ErrorCode.WRONG_VIEW]
    assert list(doc)[:4] == ["file", "status", "error_code", "error"]
    ok = case_document(replace(_ok("b.dcm"), quality=0.5, qc_flags=("low_contrast", "new")))
    assert ok["error_code"] is None and ok["error_meaning"] is None and ok["quality"] == 0.5
    assert ok["qc_flags"] == ["low_contrast", "new"]
    assert ok["flags"] == [
        {"flag": "low_contrast", "meaning": FLAGS["low_contrast"]},
        {"flag": "new", "meaning": ""},  # an undocumented flag keeps its place
    ]
    json.dumps(ok, allow_nan=False)


def test_the_header_evidence_is_in_the_document_after_qc() -> None:
    ds = Dataset()
    ds.Modality = "DX"
    ds.ViewPosition = "AP"
    ds.SeriesDescription = "L-SPINE LAT"
    info = RadiographInfo("dicom", "MONOCHROME2", 12, (600, 600), (0.2, 0.2), header=ds)
    evidence = check_header(info)
    stages = StageResults("0", parse_groups("lewis"), info, header=evidence)
    doc = case_document(failed("a.dcm", f"a.dcm: {evidence.reason}", evidence.code, stages=stages))
    assert doc["error_code"] == "wrong_view"
    header = doc["header"]
    assert header["code"] == "wrong_view" and header["view"] == "ap"
    assert header["modality"] == "DX" and "ViewPosition=AP" in header["reason"]
    assert {"attribute": "ViewPosition", "value": "AP", "view": "ap", "region": None} in (
        header["clues"]
    )
    assert list(doc).index("header") == list(doc).index("reader") + 1  # no qc ran here
    json.dumps(doc, allow_nan=False)
    no_header = StageResults("0", parse_groups("lewis"), info)
    assert "header" not in case_document(replace(_ok("b"), stages=no_header))


# --- reading a document back -------------------------------------------------------------------


class _View:
    """A view classifier answering a lateral lumbar film with p_lateral 0.41234567."""

    def predict(self, pixels: object) -> ViewPrediction:
        probs = [0.41234567, *([0.58765433 / (len(CLASSES) - 1)] * (len(CLASSES) - 1))]
        return prediction(probs)


def _as_written(result: Result) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(case_document(result)))
    return doc


def test_the_document_reads_back_to_the_result_and_its_stages(
    simulated_film: dict[str, Path], reference: Reference
) -> None:
    dcm = simulated_film["dicom"]
    rad = read_radiograph(dcm)
    scorer = Scorer(**fake_kwargs(reference), view_model=_View(), quality_reference=False)
    res = scorer.score_radiograph(rad, str(dcm))
    assert res.ok and res.stages is not None and res.stages.view is not None
    quality = Quality(0.625, {"spine": 0.5, "band": 0.75}, 0.2, False, {"spine": -1.25})
    res = replace(res, quality=0.625, stages=replace(res.stages, quality=quality))
    res = res.with_ids(study_uid="1.2.3", sha256="ab" * 32, settings="0123456789ab")
    res = res.with_details({"overlay": "out/overlays/x.png"})
    doc = _as_written(res)
    back = result_from_document(doc, read_radiograph(dcm))
    assert case_document(back) == doc  # the same document, to the last digit
    assert back == res and back.details == {"overlay": "out/overlays/x.png"}
    st, st0 = back.stages, res.stages
    assert st is not None and st.spine is not None and st.band is not None
    assert st0.spine is not None and st0.band is not None
    for name, v in st0.spine.vertebrae.items():
        assert np.array_equal(st.spine.vertebrae[name].corners, v.corners)
    assert {n: b.to_dict() for n, b in st.spine.bounds.items()} == {
        n: b.to_dict() for n, b in st0.spine.bounds.items()
    }
    assert st.spine.labels.shape == (0, 0)  # not in the document
    assert np.array_equal(st.band.pixels, st0.band.pixels)  # the band cut again, the same
    assert np.array_equal(st.band.grid_x, st0.band.grid_x)
    assert st.quality == quality and st.prediction is not None and st0.prediction is not None
    assert st.prediction.as_dict() == st0.prediction.as_dict()
    assert st.radiograph.header is not None  # the header comes from the film again
    assert st.header == st0.header and st.qc == st0.qc and st.coverage == st0.coverage
    assert np.array_equal(overlay_image(rad, back), overlay_image(rad, res))
    # without the film: the reading, not the stages
    plain = result_from_document(doc)
    assert plain == res and plain.stages is None


def test_failed_documents_read_back(simulated_film: dict[str, Path], reference: Reference) -> None:
    unreadable = failed("x.dcm", "x.dcm: file not found", ErrorCode.UNREADABLE)
    assert result_from_document(_as_written(unreadable)) == unreadable
    # refused by the field check: a spine but no band
    dcm = simulated_film["dicom"]
    rad = read_radiograph(dcm)
    kwargs = fake_kwargs(reference)
    shape = reference.spine.shape
    far = replace(reference.spine, shape=(shape[0] // 4, shape[1]))  # L1-L4 off the "film"
    kwargs["spine_model"] = FakeSpineFor(far)
    res = Scorer(**kwargs, view_model=False).score_radiograph(rad, str(dcm))
    assert res.error_code is ErrorCode.FIELD_INCOMPLETE, res.error
    doc = _as_written(res)
    back = result_from_document(doc, read_radiograph(dcm))
    assert back == res and case_document(back) == doc
    assert back.stages is not None and back.stages.band is None and back.stages.spine is not None


class FakeSpineFor:
    """A spine model handing back ``spine``."""

    def __init__(self, spine: SpineResult) -> None:
        self.spine = spine

    def predict(self, radiograph: object, anterior_side: object = None) -> SpineResult:
        return self.spine


def test_documents_that_cannot_be_read_back_are_named(tmp_path: Path) -> None:
    with pytest.raises(CaseDocumentError, match=r"a\.dcm: the case document cannot be read back"):
        result_from_document({"file": "a.dcm", "status": "excellent"})
    with pytest.raises(CaseDocumentError, match=r"a\.dcm"):
        result_from_document({"file": "a.dcm", "status": "ok", "aac24": "lots"})
    path = tmp_path / "c.json"
    with pytest.raises(CaseDocumentError, match=re.escape(f"{path}: cannot read")):
        read_case_json(path)
    path.write_text("{ torn")
    with pytest.raises(CaseDocumentError, match=re.escape(f"{path}: cannot read")):
        read_case_json(path)
    path.write_text("[1, 2]")
    with pytest.raises(CaseDocumentError, match="not an aacscore case JSON"):
        read_case_json(path)
    write_case_json(path, _ok("b.dcm"))
    assert read_case_json(path)["file"] == "b.dcm"


def test_custom_groups_read_back() -> None:
    groups = parse_groups("0,4,15")
    assert document_groups({"name": groups.name}) == groups
    assert document_groups({"name": "ckd"}) == parse_groups("ckd")


def test_quality_field_and_view_results_read_back() -> None:
    q = Quality(0.5, {"spine": float("nan")}, 0.2, True, {"geometry": 2.0})
    back = Quality.from_dict(json.loads(json.dumps(json_safe(q.to_dict()))))
    assert back.value == 0.5 and back.low and np.isnan(back.components["spine"])
    check = FieldCheck(ErrorCode.FIELD_INCOMPLETE, "L4 cut", ("x",), {"edge": 1.5})
    assert FieldCheck.from_dict(check.to_dict()) == check
    assert FieldCheck.from_dict(FieldCheck(None).to_dict()) == FieldCheck(None)
    view = prediction([0.9] + [0.1 / (len(CLASSES) - 1)] * (len(CLASSES) - 1))
    assert ViewPrediction.from_dict(view.as_dict()).as_dict() == view.as_dict()
