import csv
from dataclasses import replace
from pathlib import Path

import pytest

from aacscore.codes import ErrorCode
from aacscore.kauppila import SEGMENTS
from aacscore.outputs.results_csv import (
    LEGACY_COLUMNS,
    NO_INT_COLUMNS,
    PREVIOUS_COLUMNS,
    ResultsWriter,
    read_results,
)
from aacscore.results import ID_COLUMNS, INT_COLUMNS, RESULT_COLUMNS, Status, counts, failed
from tests.results_fixtures import ok_result as _ok


def _done(w: ResultsWriter) -> dict[str, str]:
    return {r["file"]: r["status"] for r in w.rows.values()}


def test_writer_reopens_its_rows_and_drops_a_torn_line(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    w = ResultsWriter(p)
    w.write(_ok("a.dcm"))
    w.write(failed("b.dcm", "broken", ErrorCode.UNREADABLE))
    with pytest.raises(ValueError, match="already"):
        w.write(_ok("a.dcm"))
    with p.open("a") as f:
        f.write("c.dcm,ok,,1.0")  # torn line: a crash mid-write
    w2 = ResultsWriter(p)
    assert _done(w2) == {"a.dcm": "ok", "b.dcm": "failed"}
    assert list(w2.rows.values()) == [dict(r) for r in w.rows.values()]
    w2.write(_ok("c.dcm"))
    rows = read_results(p)
    assert [r["file"] for r in rows] == ["a.dcm", "b.dcm", "c.dcm"]
    assert counts(r["status"] for r in rows) == {"ok": 2, "warning": 0, "failed": 1}


def test_status_values_in_the_csv_are_unchanged(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    w = ResultsWriter(p)
    w.write(_ok("a.dcm"))
    w.write(_ok("b.dcm", Status.WARNING))
    w.write(failed("c.dcm", "broken", ErrorCode.UNREADABLE))
    lines = p.read_bytes().decode().split("\r\n")
    assert lines[0] == ",".join(RESULT_COLUMNS)
    assert [line.split(",")[1] for line in lines[1:4]] == ["ok", "warning", "failed"]
    assert lines[1].startswith("a.dcm,ok,,,3.250,0.400,0,0.406,")
    assert lines[3].startswith("c.dcm,failed,unreadable,broken,,")
    assert _done(w) == {"a.dcm": "ok", "b.dcm": "warning", "c.dcm": "failed"}


def test_a_replacing_row_takes_the_place_of_the_first_and_removes_the_others(
    tmp_path: Path,
) -> None:
    p = tmp_path / "results.csv"
    w = ResultsWriter(p)
    ids = [w.write(_ok(n)) for n in ("a.dcm", "b.dcm", "c.dcm", "d.dcm")]
    assert ids == [0, 1, 2, 3]
    new = failed("B.dcm", "broken", ErrorCode.UNREADABLE).with_ids(sha256="ff")
    assert w.write(new, replaces=[ids[1], ids[3], ids[1]]) == ids[1]
    rows = read_results(p)
    assert [r["file"] for r in rows] == ["a.dcm", "B.dcm", "c.dcm"]
    assert rows[1]["status"] == "failed" and rows[1]["sha256"] == "ff"
    assert rows == [dict(r) for r in w.rows.values()] == read_results(p)
    assert list(w.rows) == [0, 1, 2]
    assert not list(tmp_path.glob(".*"))  # the rewrite leaves no temporary file
    # a replaced row frees its file name; a row that stays keeps it
    assert w.write(_ok("a.dcm"), replaces=[ids[0]]) == ids[0]
    with pytest.raises(ValueError, match=r"c\.dcm: already has a row"):
        w.write(_ok("c.dcm"), replaces=[ids[0]])
    with pytest.raises(ValueError, match="no rows"):
        w.write(_ok("e.dcm"), replaces=[99])
    assert [r["file"] for r in read_results(p)] == ["a.dcm", "B.dcm", "c.dcm"]
    assert [r["file"] for r in ResultsWriter(p).rows.values()] == ["a.dcm", "B.dcm", "c.dcm"]


def test_update_and_reorder_rewrite_only_when_something_changes(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    w = ResultsWriter(p)
    a, b, c = (w.write(_ok(n)) for n in ("a.dcm", "b.dcm", "c.dcm"))
    before = p.stat().st_mtime_ns, p.read_bytes()
    w.update({a: {"patient_id": ""}})  # already so
    w.reorder([a, b, c])  # already so
    w.reorder([b, c])  # a stays in front
    assert (p.stat().st_mtime_ns, p.read_bytes()) == before
    w.update({a: {"patient_id": "P1"}, c: {"patient_id": "P3"}})
    assert [r["patient_id"] for r in read_results(p)] == ["P1", "", "P3"]
    w.reorder([c, a])
    assert [r["file"] for r in read_results(p)] == ["b.dcm", "c.dcm", "a.dcm"]
    assert list(w.rows) == [b, c, a]
    with pytest.raises(ValueError, match="file"):
        w.update({a: {"file": "x.dcm"}})
    with pytest.raises(ValueError, match="nonsense"):
        w.update({a: {"nonsense": "1"}})


def test_writer_refuses_foreign_csv(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    p.write_text("case,score\nx,1\n")
    with pytest.raises(ValueError, match="score into a new output folder") as e:
        ResultsWriter(p)
    assert str(p) in str(e.value) and "case, score" in str(e.value)
    assert p.read_text() == "case,score\nx,1\n"  # left as it was


def _legacy_file(p: Path, columns: tuple[str, ...] = LEGACY_COLUMNS) -> list[dict[str, str]]:
    """A results.csv as written by an older aacscore: one ok and one failed row."""
    ok = {c: v for c, v in _ok("a.dcm").csv_row().items() if c in columns}
    bad = {c: "" for c in columns} | {"file": "b.dcm", "status": "failed", "error": "x"}
    if "error_code" in columns:
        bad["error_code"] = "unreadable"
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows([ok, bad])
    return [ok, bad]


def test_older_headers_are_the_current_one_without_the_newer_columns() -> None:
    assert NO_INT_COLUMNS == tuple(c for c in RESULT_COLUMNS if c not in INT_COLUMNS)
    assert PREVIOUS_COLUMNS == tuple(c for c in NO_INT_COLUMNS if c not in ID_COLUMNS)
    assert PREVIOUS_COLUMNS == NO_INT_COLUMNS[: -len(ID_COLUMNS)]
    assert LEGACY_COLUMNS == tuple(
        c for c in PREVIOUS_COLUMNS if c not in ("error_code", "quality")
    )
    assert len(LEGACY_COLUMNS) == len(RESULT_COLUMNS) - 2 - len(ID_COLUMNS) - len(INT_COLUMNS)


@pytest.mark.parametrize(
    "columns",
    [LEGACY_COLUMNS, PREVIOUS_COLUMNS, NO_INT_COLUMNS],
    ids=["legacy", "previous", "no-integers"],
)
def test_resume_into_an_old_results_file_migrates_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, columns: tuple[str, ...]
) -> None:
    p = tmp_path / "results.csv"
    old = _legacy_file(p, columns)
    with caplog.at_level("WARNING", logger="aacscore.outputs.results_csv"):
        w = ResultsWriter(p)
    added = [c for c in RESULT_COLUMNS if c not in columns]
    (message,) = [r.getMessage() for r in caplog.records]
    assert str(p) in message and ", ".join(added) in message
    assert w.migrated and _done(w) == {"a.dcm": "ok", "b.dcm": "failed"}
    raw = _read_rows(p)
    assert tuple(raw[0]) == RESULT_COLUMNS  # rewritten with the new header
    rows = read_results(p)
    current = _ok("a.dcm").csv_row()
    for new, before in zip(rows, old, strict=True):
        # the integer columns are computed from the continuous ones; the others stay empty
        ints = {c: current[c] for c in INT_COLUMNS} if before["status"] == "ok" else {}
        assert new == {**dict.fromkeys(RESULT_COLUMNS, ""), **before, **ints}
        assert all(new[c] == "" for c in added if c not in INT_COLUMNS)
    assert rows[0]["aac24_int"] != "" and rows[1]["aac24_int"] == ""
    _assert_ok_values(rows[0], "a.dcm")
    w.write(failed("c.dcm", "broken", ErrorCode.UNREADABLE))
    rows = read_results(p)
    assert rows[2]["error_code"] == "unreadable" and len(rows) == 3
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    assert not ResultsWriter(p).migrated  # once migrated, an ordinary file


def test_codes_and_quality_round_trip_through_the_file(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    w = ResultsWriter(p)
    w.write(failed("b.dcm", "b.dcm: the header says AP", ErrorCode.WRONG_VIEW))
    w.write(replace(_ok("a.dcm"), quality=0.8125))
    rows = read_results(p)
    assert rows[0]["error_code"] == "wrong_view" and rows[0]["status"] == "failed"
    assert rows[1]["error_code"] == "" and rows[1]["quality"] == "0.812"
    assert _done(ResultsWriter(p)) == {"b.dcm": "failed", "a.dcm": "ok"}


def _read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _assert_ok_values(row: dict[str, str], name: str) -> None:
    assert row["file"] == name and row["status"] == "ok" and row["error"] == ""
    assert float(row["aac24"]) == 3.25 and float(row["aac24_sd"]) == 0.4
    assert [float(row[s]) for s in SEGMENTS] == [0.406] * len(SEGMENTS)
    assert float(row["aac8"]) == 1.0 and float(row["spacing_mm"]) == 0.2
    assert row["group"] == "moderate" and row["low_confidence"] == "False"
    assert row["orientation"] == "left" and row["qc_flags"] == "a;b"


@pytest.mark.parametrize(
    "torn",
    [
        "c.dcm,ok,,1.0",  # a crash mid-row
        "c.dcm,ok,,1.0\r",  # ... between the CR and the LF
        'c.dcm,failed,internal_error,"c.dcm: unexpected RuntimeError: CUDA error\n',  # multi-line
        'c.dcm,failed,internal_error,"c.dcm: unexpected RuntimeError: CUDA\r\nsee ""log"",\r\n',
    ],
)
def test_resume_after_a_torn_line_keeps_every_value_intact(tmp_path: Path, torn: str) -> None:
    p = tmp_path / "results.csv"
    w = ResultsWriter(p)
    w.write(_ok("a.dcm"))
    w.write(
        failed(
            "b.dcm",
            'b.dcm: unexpected RuntimeError: two\nlines, with a "quote"',
            ErrorCode.INTERNAL_ERROR,
        )
    )
    with p.open("a", newline="") as f:
        f.write(torn)
    w2 = ResultsWriter(p)
    assert _done(w2) == {"a.dcm": "ok", "b.dcm": "failed"}
    w2.write(_ok("c.dcm"))
    w2.write(_ok("d.dcm"))
    raw = _read_rows(p)
    assert tuple(raw[0]) == RESULT_COLUMNS
    assert all(len(r) == len(RESULT_COLUMNS) for r in raw[1:]), raw
    rows = [dict(zip(RESULT_COLUMNS, r, strict=True)) for r in raw[1:]]
    assert [r["file"] for r in rows] == ["a.dcm", "b.dcm", "c.dcm", "d.dcm"]
    _assert_ok_values(rows[0], "a.dcm")
    assert rows[1]["status"] == "failed"
    assert rows[1]["error"] == 'b.dcm: unexpected RuntimeError: two\nlines, with a "quote"'
    assert rows[1]["error_code"] == "internal_error"
    assert all(rows[1][c] == "" for c in RESULT_COLUMNS[4:])
    _assert_ok_values(rows[2], "c.dcm")
    _assert_ok_values(rows[3], "d.dcm")
    assert rows == read_results(p)
    # a further resume sees the same, complete file
    assert _done(ResultsWriter(p)) == {
        "a.dcm": "ok",
        "b.dcm": "failed",
        "c.dcm": "ok",
        "d.dcm": "ok",
    }
    assert _read_rows(p) == raw


# --- assertions added from mutation testing (benchmarks/mutation.py) ----------------------------


def test_recovery_keeps_complete_rows_byte_for_byte_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    p = tmp_path / "results.csv"
    w = ResultsWriter(p)
    w.write(
        failed("b.dcm", "first line\r\nsecond line", ErrorCode.SCORE_FAILED)
    )  # a multi-line error message
    w.write(_ok("a.dcm"))  # the last complete row ends with a non-empty column (qc_flags)
    before_bytes = p.read_bytes()
    before_rows = read_results(p)
    assert before_rows[0]["error"] == "first line\r\nsecond line"
    assert before_rows[1]["qc_flags"] == "a;b"
    with caplog.at_level("WARNING", logger="aacscore.outputs.results_csv"):
        ResultsWriter(p)
    assert not caplog.records  # nothing torn, nothing said
    assert p.read_bytes() == before_bytes
    with p.open("a") as f:
        f.write("c.dcm,ok,,1.0")  # torn line: a crash mid-write
    with caplog.at_level("WARNING", logger="aacscore.outputs.results_csv"):
        ResultsWriter(p)
    assert [r.getMessage() for r in caplog.records] == [
        f"{p}: dropping a torn last line left by an interrupted run"
    ]
    # the last complete row is kept whole, and the torn line is gone from the file, so the
    # next row does not glue onto it
    assert read_results(p)[1] == before_rows[1]
    ResultsWriter(p).write(_ok("c.dcm"))
    assert read_results(p)[2] == {**before_rows[1], "file": "c.dcm"}


def test_an_empty_results_file_gets_a_header(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    p.touch()
    w = ResultsWriter(p)
    assert dict(w.rows) == {}
    assert p.read_text(encoding="utf-8").splitlines() == [",".join(RESULT_COLUMNS)]
