"""The case JSON document: codes, quality, flags with their meaning, the header section."""

from __future__ import annotations

import json
from dataclasses import replace

from pydicom.dataset import Dataset

from aacscore.codes import ERROR_CODES, FLAGS, ErrorCode
from aacscore.gate.header import check_header
from aacscore.io.types import RadiographInfo
from aacscore.kauppila import parse_groups
from aacscore.outputs.case_json import case_document
from aacscore.results import StageResults, failed
from tests.results_fixtures import ok_result as _ok


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
