import json
import pickle

import pytest

from aacscore.kauppila import SEGMENTS
from aacscore.outputs.case_json import case_document
from aacscore.results import RESULT_COLUMNS, STATUSES, Result, Status, counts, failed
from tests.results_fixtures import ok_result as _ok


def test_columns_are_the_documented_order() -> None:
    assert RESULT_COLUMNS[:5] == ("file", "status", "error", "aac24", "aac24_sd")
    assert RESULT_COLUMNS[5:13] == SEGMENTS
    assert RESULT_COLUMNS[13:] == (
        "aac8",
        "group",
        "low_confidence",
        "orientation",
        "spacing_mm",
        "qc_flags",
    )


def test_csv_row_formatting() -> None:
    row = _ok("x/a.dcm").csv_row()
    assert row["aac24"] == "3.250"
    assert row["L1_anterior"] == "0.406"
    assert row["qc_flags"] == "a;b"
    assert row["low_confidence"] == "False"
    f = failed("b.png", "b.png: not a DICOM or image").csv_row()
    assert f["status"] == "failed"
    assert f["aac24"] == ""
    assert f["error"] == "b.png: not a DICOM or image"
    with pytest.raises(ValueError, match="status must be one of"):
        Result(file="x", status="weird")  # type: ignore[arg-type]


def test_status_values_are_the_old_strings() -> None:
    assert STATUSES == ("ok", "warning", "failed")
    assert [s.value for s in Status] == list(STATUSES)
    for s in Status:
        assert s == s.value and str(s) == s.value and f"{s}" == s.value
        assert json.dumps(s) == f'"{s.value}"'
    # a plain string is accepted and stored as the member
    r = Result(file="a", status="warning")  # type: ignore[arg-type]
    assert r.status is Status.WARNING and r.csv_row()["status"] == "warning"
    assert type(r.csv_row()["status"]) is str
    assert failed("b", "broken").status is Status.FAILED and not failed("b", "x").ok
    assert case_document(r)["status"] == "warning"
    assert pickle.loads(pickle.dumps(r)) == r
    assert counts([Status.OK, "ok", Status.FAILED]) == {"ok": 2, "warning": 0, "failed": 1}


def test_to_json_merges_details() -> None:
    r = Result(file="a", status=Status.WARNING, details={"timings": {"total_s": 1.0}})
    d = case_document(r)
    assert d["status"] == "warning"
    assert d["timings"] == {"total_s": 1.0}
    assert d["grades"] is None
    assert case_document(r.with_details({"overlay": "o.png"}))["overlay"] == "o.png"
