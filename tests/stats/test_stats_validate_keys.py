"""``aacscore validate --key-from``: joining on relative paths and DICOM identifiers."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.stats.validate import (
    ValidationInputError,
    ValidationResult,
    ValidationSettings,
    run_validation,
    validate,
)

runner = CliRunner()
NO_BOOT = ValidationSettings(n_resamples=0)

# A PACS export: one film IM0001.dcm in each of 8 patient folders (same file name everywhere).
FOLDERS = [f"p{i}" for i in range(1, 9)]
REF = np.array([0, 2, 5, 7, 10, 13, 18, 22], dtype=float)
DELTA = np.array([0.5, -1.0, 0.0, 2.0, -0.5, 1.0, 0.0, -2.0])
STUDY = [f"1.2.826.0.1.3680043.8.498.{i + 1}" for i in range(8)]
SOP = [f"{s}.1.1" for s in STUDY]
ACCESSION = [f"{i + 1:05d}" for i in range(8)]
UID_COLUMNS = ["study_uid", "series_uid", "sop_uid", "accession", "patient_id"]
HEADER = ["file", "status", "error", "aac24", *UID_COLUMNS]


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def film(i: int, file: str, status: str = "ok", sop: str | None = None) -> dict[str, Any]:
    return {
        "file": file,
        "status": status,
        "error": "" if status == "ok" else "not a lateral view",
        "aac24": f"{REF[i] + DELTA[i]:.1f}" if status == "ok" else "",
        "study_uid": STUDY[i],
        "series_uid": f"{STUDY[i]}.1",
        "sop_uid": SOP[i] if sop is None else sop,
        "accession": ACCESSION[i],
        "patient_id": "",
    }


def write_results(
    tmp: Path, prefix: str = "/export", rows: list[dict[str, Any]] | None = None
) -> Path:
    films = (
        rows
        if rows is not None
        else [film(i, f"{prefix}/{d}/IM0001.dcm") for i, d in enumerate(FOLDERS)]
    )
    header = [c for c in HEADER if c in films[0]]
    return write_csv(tmp / "results.csv", header, [[f[c] for c in header] for f in films])


def write_reference(tmp: Path, column: str, values: list[str]) -> Path:
    """Reference rows in reverse order (a positional join would pair them wrongly)."""
    rows = [[values[i], int(REF[i])] for i in reversed(range(len(values)))]
    return write_csv(tmp / "reference.csv", [column, "aac24"], rows)


def assert_joined(r: ValidationResult, keys: list[str]) -> None:
    """Every film is paired with its own reference row (its known prediction error)."""
    assert r.n == len(keys)
    diff = dict(zip(r.data.keys, r.data.pred_total - r.data.ref_total, strict=True))
    assert diff == pytest.approx(dict(zip(keys, DELTA[: len(keys)], strict=True)))
    assert r.continuous.mae.estimate == pytest.approx(np.mean(np.abs(DELTA[: len(keys)])))
    assert not r.data.pred_only and not r.data.ref_only


def expect_error(
    file: Path, row: int | None, column: str | None, text: str, *args: Any, **kw: Any
) -> str:
    with pytest.raises(ValidationInputError) as info:
        run_validation(*args, NO_BOOT, **kw)
    e, msg = info.value, str(info.value)
    assert e.path == str(file) and msg.startswith(str(file))
    assert e.row == row and e.column == column
    assert text in msg, msg
    return msg


# ------------------------------------------------------------------------------------------
# name (the default): same stems are refused with a message that says what to do


def test_same_stem_in_two_folders_is_refused_by_default(tmp_path: Path) -> None:
    pred = write_results(tmp_path)
    ref = write_reference(tmp_path, "file", [f"{d}/IM0001.dcm" for d in FOLDERS])
    msg = expect_error(
        pred, 2, "file",
        "duplicated case key 'IM0001' (row 1: /export/p1/IM0001.dcm; row 2: "
        "/export/p2/IM0001.dcm; row 3: /export/p3/IM0001.dcm;",
        pred, ref,
    )  # fmt: skip
    assert msg.endswith(
        "; and 3 more): join on --key-from sop_uid or --key-from relpath --root DIR"
    )


# ------------------------------------------------------------------------------------------
# relpath


def test_relpath_joins_same_stems_in_different_folders(tmp_path: Path) -> None:
    pred = write_results(tmp_path)
    # reference written relative to the root, with other spellings of the same paths
    values = [f"{d}/IM0001.dcm" for d in FOLDERS]
    values[2] = "./p3/IM0001"
    values[3] = "p4/IM0001.DCM"
    values[4] = "/export/p5/IM0001.dcm"
    values[5] = r"p6\IM0001.dcm"
    ref = write_reference(tmp_path, "file", values)
    r = run_validation(pred, ref, NO_BOOT, key_from="relpath", root="/export")
    assert_joined(r, [f"{d}/IM0001" for d in FOLDERS])
    assert r.inputs["key_from"] == "relpath" and r.inputs["root"] == "/export"


def test_relpath_with_paths_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files = [f"export/{d}/IM0001.dcm" for d in FOLDERS]
    files[7] = "export/batch.zip:p8/IM0001.dcm"  # a zip member
    pred = write_results(tmp_path, rows=[film(i, f) for i, f in enumerate(files)])
    values = [f"{d}/IM0001.dcm" for d in FOLDERS]
    values[0] = "export/p1/IM0001.dcm"  # as results.csv spells it (from the current folder)
    values[7] = "batch.zip:p8/IM0001.dcm"
    ref = write_reference(tmp_path, "file", values)
    r = run_validation(pred, ref, NO_BOOT, key_from="relpath", root="export")
    keys = [f"{d}/IM0001" for d in FOLDERS]
    keys[7] = "batch.zip:p8/IM0001"
    assert_joined(r, keys)
    assert r.inputs["root"] == f"{tmp_path.as_posix()}/export"


def test_relpath_names_a_file_outside_the_root(tmp_path: Path) -> None:
    rows = [film(i, f"/export/{d}/IM0001.dcm") for i, d in enumerate(FOLDERS)]
    rows[2]["file"] = "/elsewhere/p3/IM0001.dcm"
    pred = write_results(tmp_path, rows=rows)
    ref = write_reference(tmp_path, "file", [f"{d}/IM0001.dcm" for d in FOLDERS])
    expect_error(
        pred, 3, "file", "'/elsewhere/p3/IM0001.dcm' is outside --root /export",
        pred, ref, key_from="relpath", root="/export",
    )  # fmt: skip
    ref_out = write_reference(tmp_path, "file", ["../p1/IM0001.dcm", *FOLDERS[1:]])
    expect_error(
        ref_out, 8, "file", "'../p1/IM0001.dcm' is outside --root /export",
        write_results(tmp_path), ref_out, key_from="relpath", root="/export",
    )  # fmt: skip


def test_relpath_duplicates_name_the_rows(tmp_path: Path) -> None:
    pred = write_results(tmp_path)
    values = [f"{d}/IM0001.dcm" for d in FOLDERS]
    values[1] = "p1/IM0001.png"  # same path as p1/IM0001.dcm once the extension is dropped
    ref = write_reference(tmp_path, "file", values)
    expect_error(
        ref, 8, "file",
        "duplicated case key 'p1/IM0001' (relpath) (row 7: p1/IM0001.png; row 8: "
        "p1/IM0001.dcm): the same file is listed twice, or two names differ only in their "
        "extension",
        pred, ref, key_from="relpath", root="/export",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("key_from", "root", "text"),
    [
        ("relpath", None, "--key-from relpath needs --root DIR"),
        ("name", "/export", "--root is used with --key-from relpath only"),
        ("uid", None, "unknown key source 'uid'"),
    ],
)
def test_bad_key_choices(tmp_path: Path, key_from: str, root: str | None, text: str) -> None:
    ref = write_reference(tmp_path, "sop_uid", SOP)
    with pytest.raises(ValidationInputError, match=re.escape(text)):
        run_validation(write_results(tmp_path), ref, NO_BOOT, key_from=key_from, root=root)


# ------------------------------------------------------------------------------------------
# sop_uid


def test_sop_uid_joins_same_stems(tmp_path: Path) -> None:
    pred = write_results(tmp_path)
    r = run_validation(pred, write_reference(tmp_path, "sop_uid", SOP), NO_BOOT, key_from="sop_uid")
    assert_joined(r, SOP)
    assert (r.inputs["pred_key"], r.inputs["ref_key"]) == ("sop_uid", "sop_uid")
    # a reference keyed by UID-named files, chosen with ref_key
    ref = write_reference(tmp_path, "file", [f"/pacs/{u}.dcm" for u in SOP])
    r2 = run_validation(pred, ref, NO_BOOT, ref_key="file", key_from="sop_uid")
    assert_joined(r2, SOP)
    assert (r2.inputs["pred_key"], r2.inputs["ref_key"]) == ("sop_uid", "file")


def test_sop_uid_on_results_without_the_column(tmp_path: Path) -> None:
    rows = [film(i, f"/export/{d}/IM0001.dcm") for i, d in enumerate(FOLDERS)]
    old = [{k: v for k, v in f.items() if k not in UID_COLUMNS} for f in rows]
    pred = write_results(tmp_path, rows=old)
    ref = write_reference(tmp_path, "sop_uid", SOP)
    msg = expect_error(
        pred, None, "sop_uid",
        "no 'sop_uid' column for --key-from sop_uid (a results.csv written before aacscore "
        "recorded DICOM identifiers",
        pred, ref, key_from="sop_uid",
    )  # fmt: skip
    assert "join on --key-from relpath --root DIR" in msg and "columns present: 'file'" in msg


def test_sop_uid_empty_on_scored_rows_names_them(tmp_path: Path) -> None:
    rows = [film(i, f"/export/{d}/IM0001.dcm") for i, d in enumerate(FOLDERS)]
    rows[3] = film(3, "/export/p4/scan.png", sop="")
    rows[6] = film(6, "/export/p7/scan.png", sop="")
    pred = write_results(tmp_path, rows=rows)
    msg = expect_error(
        pred, 4, "sop_uid",
        "2 scored row(s) have no sop_uid (row 4: /export/p4/scan.png; row 7: "
        "/export/p7/scan.png): they are not DICOM files",
        pred, write_reference(tmp_path, "sop_uid", SOP), key_from="sop_uid",
    )  # fmt: skip
    assert "--key-from relpath --root DIR" in msg


def test_sop_uid_empty_on_a_failed_row_is_listed_as_failed(tmp_path: Path) -> None:
    rows = [film(i, f"/export/{d}/IM0001.dcm") for i, d in enumerate(FOLDERS)]
    rows.append(film(0, "/export/p9/broken.dcm", status="failed", sop=""))
    pred = write_results(tmp_path, rows=rows)
    r = run_validation(pred, write_reference(tmp_path, "sop_uid", SOP), NO_BOOT, key_from="sop_uid")
    assert_joined(r, SOP)
    (f,) = r.data.failed
    assert (f.key, f.file, f.row) == ("", "/export/p9/broken.dcm", 9)
    assert r.data.failed_in_reference == (False,)
    assert any("/export/p9/broken.dcm" in w for w in r.warnings)


def test_reference_without_the_uid_column(tmp_path: Path) -> None:
    ref = write_reference(tmp_path, "file", [f"{d}/IM0001.dcm" for d in FOLDERS])
    expect_error(
        ref, None, "sop_uid",
        "no 'sop_uid' column for --key-from sop_uid: add the key of each case, or name the "
        "column that holds it with --ref-key COLUMN (columns present: 'file', 'aac24')",
        write_results(tmp_path), ref, key_from="sop_uid",
    )  # fmt: skip


# ------------------------------------------------------------------------------------------
# study_uid and accession: one usable film per study


def test_study_uid_with_one_usable_film_per_study(tmp_path: Path) -> None:
    # every study also holds a frontal film that was refused: it does not block the join
    rows = [film(i, f"/export/{d}/IM0001.dcm") for i, d in enumerate(FOLDERS)]
    rows += [
        film(i, f"/export/{d}/IM0002.dcm", status="failed", sop=f"{SOP[i]}.2")
        for i, d in enumerate(FOLDERS)
    ]
    pred = write_results(tmp_path, rows=rows)
    r = run_validation(
        pred, write_reference(tmp_path, "study_uid", STUDY), NO_BOOT, key_from="study_uid"
    )
    assert_joined(r, STUDY)
    assert [f.key for f in r.data.failed] == STUDY
    assert r.data.failed_in_reference == (True,) * 8


def test_study_uid_refuses_two_usable_films_per_study(tmp_path: Path) -> None:
    rows = [film(i, f"/export/{d}/IM0001.dcm") for i, d in enumerate(FOLDERS)]
    rows.append(film(2, "/export/p3/IM0002.dcm", sop=f"{SOP[2]}.2"))
    pred = write_results(tmp_path, rows=rows)
    msg = expect_error(
        pred, 9, "study_uid",
        f"duplicated case key '{STUDY[2]}' (study_uid) (row 3: /export/p3/IM0001.dcm; row 9: "
        "/export/p3/IM0002.dcm): --key-from study_uid needs one usable film and one reference "
        "row per study",
        pred, write_reference(tmp_path, "study_uid", STUDY), key_from="study_uid",
    )  # fmt: skip
    assert "join on --key-from sop_uid or --key-from relpath --root DIR" in msg


def test_accession_keeps_leading_zeros(tmp_path: Path) -> None:
    pred = write_results(tmp_path)
    r = run_validation(
        pred, write_reference(tmp_path, "accession", ACCESSION), NO_BOOT, key_from="accession"
    )
    assert_joined(r, ACCESSION)
    assert r.data.keys[0] == "00008"
    no_zeros = write_reference(tmp_path, "accession", [str(int(a)) for a in ACCESSION])
    with pytest.raises(ValidationInputError, match="no case in common"):
        run_validation(pred, no_zeros, NO_BOOT, key_from="accession")


# ------------------------------------------------------------------------------------------
# outputs and command line


def test_key_is_recorded_in_metrics_and_report(tmp_path: Path) -> None:
    ref = write_reference(tmp_path, "file", [f"{d}/IM0001.dcm" for d in FOLDERS])
    out = tmp_path / "out"
    validate(write_results(tmp_path), ref, out, NO_BOOT, key_from="relpath", root="/export")
    settings = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["settings"]
    assert settings["key_from"] == "relpath" and settings["root"] == "/export"
    assert settings["pred_key"] == settings["ref_key"] == "file"
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "on paths relative to /export without extension (--key-from relpath)" in md


def test_no_overlap_message_describes_the_key(tmp_path: Path) -> None:
    ref = write_reference(tmp_path, "sop_uid", [f"9.{i}" for i in range(8)])
    pred = write_results(tmp_path)
    expect_error(pred, None, "sop_uid", "keys are SOP Instance UIDs", pred, ref, key_from="sop_uid")


def test_cli_key_from(tmp_path: Path) -> None:
    pred = write_results(tmp_path)
    ref = write_reference(tmp_path, "file", [f"{d}/IM0001.dcm" for d in FOLDERS])
    out = tmp_path / "out"
    base = ["validate", "--pred", str(pred), "--ref", str(ref), "-o", str(out)]
    res = runner.invoke(app, [*base, "--n-resamples", "0"])
    assert res.exit_code == 2
    assert "duplicated case key 'IM0001'" in res.stderr
    assert "--key-from relpath --root DIR" in res.stderr
    assert not (out / "metrics.json").exists()
    res = runner.invoke(
        app, [*base, "--key-from", "relpath", "--root", "/export", "--n-resamples", "0"]
    )
    assert res.exit_code == 0, res.output
    assert "n = 8  MAE 0.88" in res.stdout
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["n"] == 8 and m["settings"]["key_from"] == "relpath"
    res = runner.invoke(app, [*base, "--key-from", "relpath"])
    assert res.exit_code == 2 and "needs --root DIR" in res.stderr
    res = runner.invoke(app, [*base, "--key-from", "uid"])
    assert res.exit_code == 2 and "uid" in res.output
