from pathlib import Path

import pytest

from aacscore.kauppila import SEGMENTS
from aacscore.results import (
    RESULT_COLUMNS,
    Result,
    ResultsWriter,
    counts,
    failed,
    read_results,
)


def _ok(name: str) -> Result:
    return Result(
        file=name,
        status="ok",
        aac24=3.25,
        aac24_sd=0.4,
        grades=dict.fromkeys(SEGMENTS, 0.40625),
        aac8=1.0,
        group="moderate",
        low_confidence=False,
        orientation="left",
        spacing_mm=0.2,
        qc_flags=("a", "b"),
    )


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
    with pytest.raises(ValueError):
        Result(file="x", status="weird")


def test_writer_resume_skips_done_and_drops_torn_line(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    w = ResultsWriter(p)
    w.write(_ok("a.dcm"))
    w.write(failed("b.dcm", "broken"))
    with pytest.raises(ValueError, match="already"):
        w.write(_ok("a.dcm"))
    with p.open("a") as f:
        f.write("c.dcm,ok,,1.0")  # torn line: a crash mid-write
    w2 = ResultsWriter(p)
    assert w2.is_done("a.dcm")
    assert w2.is_done("b.dcm")
    assert not w2.is_done("c.dcm")
    w2.write(_ok("c.dcm"))
    rows = read_results(p)
    assert [r["file"] for r in rows] == ["a.dcm", "b.dcm", "c.dcm"]
    assert counts(r["status"] for r in rows) == {"ok": 2, "warning": 0, "failed": 1}


def test_writer_retry_failed_removes_failed_rows(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    w = ResultsWriter(p)
    w.write(_ok("a.dcm"))
    w.write(failed("b.dcm", "broken"))
    w2 = ResultsWriter(p, retry_failed=True)
    assert not w2.is_done("b.dcm")
    assert [r["file"] for r in read_results(p)] == ["a.dcm"]


def test_writer_refuses_foreign_csv(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    p.write_text("case,score\nx,1\n")
    with pytest.raises(ValueError, match="different columns"):
        ResultsWriter(p)


def test_to_json_merges_details() -> None:
    r = Result(file="a", status="warning", details={"timings": {"total_s": 1.0}})
    d = r.to_json()
    assert d["status"] == "warning"
    assert d["timings"] == {"total_s": 1.0}
    assert d["grades"] is None
