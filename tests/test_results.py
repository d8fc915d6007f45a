import json
import pickle

import pytest

from aacscore.codes import ErrorCode
from aacscore.kauppila import SEGMENTS
from aacscore.outputs.case_json import case_document
from aacscore.results import (
    ID_COLUMNS,
    RESULT_COLUMNS,
    STATUSES,
    CaseIds,
    Result,
    Status,
    counts,
    failed,
)
from tests.results_fixtures import ok_result as _ok


def test_columns_are_the_documented_order() -> None:
    assert RESULT_COLUMNS[:7] == (
        "file",
        "status",
        "error_code",
        "error",
        "aac24",
        "aac24_sd",
        "aac24_int",
    )
    assert RESULT_COLUMNS[7:15] == SEGMENTS
    assert RESULT_COLUMNS[15:23] == tuple(f"{s}_int" for s in SEGMENTS)
    assert RESULT_COLUMNS[23:] == (
        "aac8",
        "group",
        "low_confidence",
        "quality",
        "orientation",
        "spacing_mm",
        "qc_flags",
        "study_uid",
        "series_uid",
        "sop_uid",
        "accession",
        "patient_id",
        "sha256",
        "settings",
    )
    assert RESULT_COLUMNS[-len(ID_COLUMNS) :] == ID_COLUMNS


def test_csv_row_formatting() -> None:
    row = _ok("x/a.dcm").csv_row()
    assert row["aac24"] == "3.250"
    assert row["L1_anterior"] == "0.406"
    assert row["qc_flags"] == "a;b"
    assert row["low_confidence"] == "False"
    assert row["error_code"] == "" and row["quality"] == ""
    f = failed("b.png", "b.png: not a DICOM or image", ErrorCode.UNREADABLE).csv_row()
    assert f["status"] == "failed" and f["error_code"] == "unreadable"
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
    assert failed("b", "broken", "unreadable").status is Status.FAILED
    assert not failed("b", "x", ErrorCode.UNREADABLE).ok
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


def test_a_failed_result_needs_a_code_and_only_a_failed_one_has_one() -> None:
    with pytest.raises(ValueError, match="needs an error code"):
        Result(file="a", status=Status.FAILED, error="broken")
    for status in (Status.OK, Status.WARNING):
        with pytest.raises(ValueError, match="has no error code"):
            Result(file="a", status=status, error_code=ErrorCode.WRONG_VIEW)
    r = failed("a", "a: AP", "wrong_view")  # a string is taken as the code
    assert r.error_code is ErrorCode.WRONG_VIEW and r.csv_row()["error_code"] == "wrong_view"
    with pytest.raises(ValueError):
        failed("a", "x", "no_such_code")
    assert pickle.loads(pickle.dumps(r)) == r


def test_quality_is_written_with_three_decimals() -> None:
    from dataclasses import replace

    assert replace(_ok("a"), quality=0.43219).csv_row()["quality"] == "0.432"
    assert replace(_ok("a"), quality=float("nan")).csv_row()["quality"] == ""


def test_identifier_columns_come_from_the_ids() -> None:
    r = _ok("a.dcm")
    assert all(r.csv_row()[c] == "" for c in ID_COLUMNS)  # none unless the batch sets them
    r2 = r.with_ids(study_uid="1.2.3", sop_uid="1.2.3.4", sha256="ab" * 32, settings="0123")
    row = r2.csv_row()
    assert row["study_uid"] == "1.2.3" and row["sop_uid"] == "1.2.3.4"
    assert row["sha256"] == "ab" * 32 and row["settings"] == "0123"
    assert row["series_uid"] == row["accession"] == row["patient_id"] == ""
    assert r2.ids == CaseIds.from_mapping(row) and r2 != r
    assert r2.with_ids(patient_id="P1").ids.study_uid == "1.2.3"  # the others kept
    assert CaseIds.from_mapping({"study_uid": None}) == CaseIds()
    assert pickle.loads(pickle.dumps(r2)) == r2
    keys = list(case_document(r2))
    assert keys[keys.index("flags") + 1 : keys.index("flags") + 1 + len(ID_COLUMNS)] == list(
        ID_COLUMNS
    )  # after qc_flags and flags


def test_csv_row_of_a_full_result_is_exact() -> None:
    res = Result(
        file="p1/IM0001.dcm",
        status=Status.WARNING,
        aac24=3.25,
        aac24_sd=0.4444,
        grades=dict.fromkeys(SEGMENTS, 0.40625),
        aac8=1.5,
        group="moderate",
        low_confidence=True,
        quality=0.01234,
        orientation="right",
        spacing_mm=0.14321,
        qc_flags=("low_quality",),
        ids=CaseIds(study_uid="1.2.3", sop_uid="1.2.3.4", sha256="ab" * 32, settings="f" * 12),
    )
    expected = dict.fromkeys(RESULT_COLUMNS, "")
    expected.update(
        file="p1/IM0001.dcm",
        status="warning",
        aac24="3.250",
        aac24_sd="0.444",
        aac8="1.500",
        group="moderate",
        low_confidence="True",
        quality="0.012",
        orientation="right",
        spacing_mm="0.1432",
        qc_flags="low_quality",
        study_uid="1.2.3",
        sop_uid="1.2.3.4",
        sha256="ab" * 32,
        settings="f" * 12,
    )
    expected.update(dict.fromkeys(SEGMENTS, "0.406"))
    expected.update(dict.fromkeys((f"{s}_int" for s in SEGMENTS), "0"), aac24_int="0")
    assert res.csv_row() == expected
    # nothing known: every value empty but file and status
    bare = Result(file="b.png", status=Status.OK).csv_row()
    assert bare == {**dict.fromkeys(RESULT_COLUMNS, ""), "file": "b.png", "status": "ok"}
    # a non-finite value is written empty, never "nan"
    assert Result(file="c", status=Status.OK, aac24=float("nan")).csv_row()["aac24"] == ""


def test_integer_columns_agree_with_the_continuous_ones() -> None:
    from aacscore.kauppila import INTEGER_THRESHOLDS

    t1, t2, t3 = INTEGER_THRESHOLDS
    values = [0.0, t1 - 0.01, t1, t2 - 0.01, t2, t3 - 0.01, t3, 3.0]
    grades = dict(zip(SEGMENTS, values, strict=True))
    res = Result(file="a", status=Status.OK, aac24=sum(values), grades=grades)
    row = res.csv_row()
    assert [int(row[f"{s}_int"]) for s in SEGMENTS] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert int(row["aac24_int"]) == 12 == res.aac24_int
    # a grade written 0.500 is integer grade 1 even when its float is a hair below
    edge = Result(
        file="b",
        status=Status.OK,
        aac24=t1,
        grades={**dict.fromkeys(SEGMENTS, 0.0), SEGMENTS[0]: t1 - 1e-4},
    )
    assert edge.csv_row()[SEGMENTS[0]] == f"{t1:.3f}" and edge.grades_int[SEGMENTS[0]] == 1
    # a total-only model: the total rounded half up
    total_only = Result(file="c", status=Status.OK, aac24=4.5)
    assert total_only.aac24_int == 5 and total_only.csv_row()[f"{SEGMENTS[0]}_int"] == ""


def test_failed_keeps_file_details_and_stages() -> None:
    from aacscore.results import StageResults

    stages = object.__new__(StageResults)  # any object: failed() must pass it through
    res = failed("f.dcm", "f.dcm: bad", "unreadable", {"traceback": "t"}, stages)  # type: ignore[arg-type]
    assert res.file == "f.dcm" and res.error == "f.dcm: bad"
    assert res.error_code is ErrorCode.UNREADABLE  # a code given as its string is coerced
    assert res.details == {"traceback": "t"} and res.stages is stages
    assert failed("g", "g: x", ErrorCode.INTERNAL_ERROR).details == {}
    light = res.without_stages()
    assert light.stages is None and light.file == "f.dcm" and light.details == res.details


def test_counts_every_status_including_unknown_ones() -> None:
    assert counts([]) == {"ok": 0, "warning": 0, "failed": 0}
    assert counts(["ok", "ok", Status.FAILED, "odd"]) == {
        "ok": 2,
        "warning": 0,
        "failed": 1,
        "odd": 1,
    }


def test_an_error_code_given_as_a_string_is_stored_as_the_enum() -> None:
    res = Result(file="f", status="failed", error="f: x", error_code="not_radiograph")  # type: ignore[arg-type]
    assert res.error_code is ErrorCode.NOT_RADIOGRAPH and res.status is Status.FAILED
