import re
from pathlib import Path

import pytest

from aacscore.keys import (
    CaseKeyError,
    Duplicate,
    JoinKey,
    KeyFrom,
    case_key,
    find_duplicate,
    relative_key,
)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("/data/p1/P001.dcm", "P001"),
        ("P001.png", "P001"),
        ("P001.DCM.gz", "P001"),
        ("scan.nii.gz", "scan"),
        ("1.2.840.113619.2.55", "1.2.840.113619.2.55"),
        ("1.2.840.113619.2.55.dcm", "1.2.840.113619.2.55"),
        (r"C:\films\P002.JPG", "P002"),
        ("batch.zip:sub/IM0001.dcm", "IM0001"),
        ("batch.zip!IM0001", "IM0001"),
        ("  P003.tiff ", "P003"),
        ("P004", "P004"),
        (".dcm", ".dcm"),
        # a name that is only a suffix is kept whole (also a compression suffix)
        (".gz", ".gz"),
        (".DCM.gz", ".DCM"),
        ("", ""),
        (17, "17"),
    ],
)
def test_case_key(value: object, key: str) -> None:
    assert case_key(value) == key


def test_case_key_same_for_path_spellings() -> None:
    assert case_key("out/../x/P001.dcm") == case_key("P001.DCM") == "P001"


# ------------------------------------------------------------------------------------------
# relpath keys


@pytest.mark.parametrize(
    ("value", "root", "key"),
    [
        ("/data/p1/IM0001.dcm", "/data", "p1/IM0001"),
        ("/data/p1/IM0001.dcm", "/data/", "p1/IM0001"),
        ("/data/./p1/../p2/IM0001.DCM.gz", "/data", "p2/IM0001"),
        ("/data/Site A/P1/Im0001.PNG", "/data", "Site A/P1/Im0001"),  # case kept
        ("export/p1/IM0001.dcm", "export", "p1/IM0001"),  # both read from the cwd (/work)
        ("./export/p1/IM0001.dcm", "/work/export", "p1/IM0001"),
        ("/work/export/p1/IM0001.dcm", "export", "p1/IM0001"),
        (r"export\p1\IM0001.dcm", "export", "p1/IM0001"),
        (r"C:\exp\p1\IM0001.dcm", "c:/exp", "p1/IM0001"),
        ("/data/batch.zip:p1/IM0001.dcm", "/data", "batch.zip:p1/IM0001"),
        ("/data/sub/batch.ZIP!./p1/IM0001.dcm", "/data", "sub/batch.ZIP:p1/IM0001"),
        ("/data/batch.zip:p1/IM0001.dcm", "/data/batch.zip", "p1/IM0001"),
        ("/data/p1/1.2.840.113619.2.55", "/data", "p1/1.2.840.113619.2.55"),
        ("/data/p1/scan.nii.gz", "/", "data/p1/scan"),
        ("/data/batch.zip:/p1/IM0001.dcm", "/data", "batch.zip:p1/IM0001"),
        # a last part that is only a suffix is kept whole, as case_key does
        ("/data/p1/x/.dcm", "/data", "p1/x/.dcm"),
        ("/data/p1/a.dcm", "/data", "p1/a"),
        ("/data/batch.zip:.dcm", "/data", "batch.zip:.dcm"),
        ("", "/data", ""),
    ],
)
def test_relative_key(value: str, root: str, key: str) -> None:
    assert relative_key(value, root, "/work") == key


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("p1/IM0001.dcm", "p1/IM0001"),  # not inside the root from the cwd: root-relative
        ("./p1/IM0001", "p1/IM0001"),
        ("export/p1/IM0001.dcm", "p1/IM0001"),  # inside the root from the cwd (/work)
        ("/work/export/p1/IM0001.dcm", "p1/IM0001"),
        ("batch.zip:p1/IM0001.dcm", "batch.zip:p1/IM0001"),
    ],
)
def test_relative_key_of_table_values(value: str, key: str) -> None:
    assert relative_key(value, "/work/export", "/work", table=True) == key


@pytest.mark.parametrize(
    ("value", "table", "text"),
    [
        ("/other/p1/IM0001.dcm", False, "'/other/p1/IM0001.dcm' is outside --root /data"),
        ("/database/p1/IM0001.dcm", False, "is outside --root /data"),  # a prefix is not inside
        ("p1/IM0001.dcm", False, "'p1/IM0001.dcm' is outside --root /data"),  # cwd is /work
        ("../p1/IM0001.dcm", True, "is outside --root /data"),
        ("..", True, "'..' is outside --root /data"),
        (".", True, "'.' is the --root folder itself"),
        ("C:/data/IM0001.dcm", False, "'C:/data/IM0001.dcm' is outside --root /data"),
        ("/other/IM0001.dcm", True, "is outside --root /data"),
        ("/data", False, "'/data' is the --root folder itself, not a file in it"),
    ],
)
def test_relative_key_errors(value: str, table: bool, text: str) -> None:
    with pytest.raises(CaseKeyError, match=re.escape(text)):
        relative_key(value, "/data", "/work", table=table)


def test_relative_key_outside_message_says_what_to_give() -> None:
    with pytest.raises(CaseKeyError) as info:
        relative_key("/other/a.dcm", "/data", "/work")
    assert str(info.value) == (
        "'/other/a.dcm' is outside --root /data: give the folder that holds every input "
        "(as given to aacscore score, or its absolute path)"
    )


def test_relative_key_reads_relative_paths_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert relative_key("export/p1/IM0001.dcm", f"{tmp_path}/export") == "p1/IM0001"


# ------------------------------------------------------------------------------------------
# JoinKey


def test_join_key_defaults_to_the_file_name() -> None:
    j = JoinKey()
    assert j.kind is KeyFrom.NAME and j.root is None
    assert j.of_result("/data/p1/IM0001.dcm") == j.of_table("IM0001.png") == "IM0001"
    assert j.settings() == {"key_from": "name", "root": None}
    assert j.kind.results_column == "file" and j.kind.per_film


def test_join_key_relpath_root_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    j = JoinKey("relpath", "export/")
    assert j.kind is KeyFrom.RELPATH
    assert j.root == f"{tmp_path.as_posix()}/export"
    assert j.settings() == {"key_from": "relpath", "root": f"{tmp_path.as_posix()}/export"}
    assert j.of_result("export/p1/IM0001.dcm") == "p1/IM0001"
    assert j.of_table("p1/IM0001") == "p1/IM0001"
    with pytest.raises(CaseKeyError, match="outside --root"):
        j.of_result("p1/IM0001.dcm")
    assert str(tmp_path.name) in j.describe() and "relative" in j.describe()
    assert j.of_table(f"{tmp_path}/export/p2/IM0002.dcm") == "p2/IM0002"
    # relative paths are read from the folder current when the key was made
    monkeypatch.chdir(tmp_path / "..")
    with pytest.raises(CaseKeyError, match="is outside --root"):
        j.of_result(f"{tmp_path.name}/export/p1/IM0001.dcm")
    assert j.of_result("export/p1/IM0001.dcm") == "p1/IM0001"
    assert j.of_table("export/p1/IM0001.dcm") == "p1/IM0001"


def test_join_key_windows_root() -> None:
    j = JoinKey("relpath", r"c:\exp")
    assert j.root == "C:/exp"
    assert j.of_result(r"C:\exp\p1\IM0001.dcm") == j.of_table("c:/exp/p1/IM0001") == "p1/IM0001"


def test_join_key_uid_sources() -> None:
    sop = JoinKey(KeyFrom.SOP_UID)
    assert sop.of_result(" 1.2.840.1.5 ") == "1.2.840.1.5"
    # reference / cohort values may be UID file names
    assert sop.of_table("/export/1.2.840.1.5.dcm") == sop.of_table("1.2.840.1.5") == "1.2.840.1.5"
    acc = JoinKey("accession")
    assert acc.of_result(" 00123 ") == acc.of_table("00123") == "00123"
    assert acc.of_table("A/12.png") == "A/12.png"  # accession numbers are taken as written
    assert KeyFrom.STUDY_UID.results_column == "study_uid"
    assert not KeyFrom.STUDY_UID.per_film and not KeyFrom.ACCESSION.per_film
    assert KeyFrom.SOP_UID.per_film


@pytest.mark.parametrize(
    ("source", "root", "text"),
    [
        ("relpath", None, "--key-from relpath needs --root DIR"),
        ("relpath", " ", "--key-from relpath needs --root DIR"),
        ("name", "/data", "--root is used with --key-from relpath only"),
        ("sop_uid", "/data", "--root is used with --key-from relpath only (key source: sop_uid)"),
        ("uid", None, "unknown key source 'uid'; use one of name, relpath, sop_uid, study_uid"),
    ],
)
def test_join_key_bad_choices(source: str, root: str | None, text: str) -> None:
    with pytest.raises(CaseKeyError, match=re.escape(text)):
        JoinKey(source, root)
    assert issubclass(CaseKeyError, ValueError)


# ------------------------------------------------------------------------------------------
# duplicates and their messages


def test_find_duplicate_reports_the_first_repeated_key() -> None:
    keys = ["a", "b", "c", "b", "a", "", ""]
    labels = [f"f{i}" for i in range(len(keys))]
    d = find_duplicate(keys, labels)
    # "b" repeats first (row 4); "a" repeats later; empty keys are never duplicates
    assert d == Duplicate("b", (2, 4), ("f1", "f3"), 1)
    assert find_duplicate(["a", "b", "", ""], labels) is None
    # only counted rows: the second "b" is not counted, so "a" is the duplicate
    d2 = find_duplicate(keys, labels, [True, True, True, False, True, True, True])
    assert d2 == Duplicate("a", (1, 5), ("f0", "f4"), 0)


def test_duplicate_message_names_key_files_and_options() -> None:
    d = find_duplicate(["IM0001", "IM0001"], ["p1/IM0001.dcm", "p2/IM0001.dcm"])
    assert d is not None
    assert JoinKey().duplicate_problem(d) == (
        "duplicated case key 'IM0001' (row 1: p1/IM0001.dcm; row 2: p2/IM0001.dcm): "
        "join on --key-from sop_uid or --key-from relpath --root DIR"
    )
    study = JoinKey("study_uid").duplicate_problem(d)
    assert study.startswith("duplicated case key 'IM0001' (study_uid) (row 1:")
    assert "needs one usable film and one reference row per study" in study
    assert "remove the duplicate rows" in JoinKey("sop_uid").duplicate_problem(d)


def test_duplicate_message_lists_at_most_five_rows() -> None:
    d = find_duplicate(["k"] * 8 + ["x", "x"], [f"f{i}" for i in range(10)])
    assert d is not None and d.rows == tuple(range(1, 9)) and d.others == 1
    msg = JoinKey().duplicate_problem(d)
    assert "row 5: f4; and 3 more; 1 more key(s) are duplicated" in msg
    assert "f5" not in msg
    five = find_duplicate(["k"] * 5, [f"f{i}" for i in range(5)])
    assert five is not None
    assert (
        JoinKey()
        .duplicate_problem(five)
        .startswith(
            "duplicated case key 'k' (row 1: f0; row 2: f1; row 3: f2; row 4: f3; row 5: f4): "
        )
    )


def test_missing_uid_messages_say_what_to_do() -> None:
    j = JoinKey("sop_uid")
    assert j.missing_column_problem("sop_uid") == (
        "no 'sop_uid' column for --key-from sop_uid (a results.csv written before aacscore "
        "recorded DICOM identifiers, or not a results.csv): score the films again, or join on "
        "--key-from relpath --root DIR"
    )
    assert j.missing_values_problem([2, 5], ["a.png", "b.png"]) == (
        "2 scored row(s) have no sop_uid (row 2: a.png; row 5: b.png): they are not DICOM "
        "files, or lack this attribute; join on --key-from relpath --root DIR (or --key-from "
        "name), or remove those rows"
    )


def test_relpath_needs_root_message() -> None:
    with pytest.raises(CaseKeyError) as info:
        JoinKey("relpath")
    assert str(info.value) == (
        "--key-from relpath needs --root DIR: the folder the input paths are relative to (the "
        "folder given to aacscore score)"
    )
