"""``aacscore cohort --results`` joined with ``--key-from`` (relative paths, DICOM identifiers)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.cohort import CohortData, CohortOptions, load_cohort, run_cohort
from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.simulate import simulate_cohort
from aacscore.keys import CaseKeyError, KeyFrom

runner = CliRunner()
N = 120


def cohort(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """Cohort table without AAC; each patient's film is <patient>/IM0001.dcm (same name)."""
    df, _ = simulate_cohort(N, seed=5)
    df["image"] = [f"{p}/IM0001.dcm" for p in df["patient_id"]]
    df["sop_uid"] = [f"1.2.826.0.1.3680043.8.498.{i + 1}.1.1" for i in range(N)]
    df["study_uid"] = [f"1.2.826.0.1.3680043.8.498.{i + 1}" for i in range(N)]
    df["accession"] = [f"{i + 1:05d}" for i in range(N)]
    table = tmp_path / "cohort.csv"
    df.drop(columns=["aac24"]).to_csv(table, index=False)
    return df, table


def results_frame(df: pd.DataFrame) -> pd.DataFrame:
    """results.csv rows for the cohort's films, in reverse order."""
    res = pd.DataFrame(
        {
            "file": [f"/export/{p}/IM0001.dcm" for p in df["patient_id"]],
            "status": "ok",
            "aac24": df["aac24"].astype(float),
            "study_uid": df["study_uid"],
            "sop_uid": df["sop_uid"],
            "accession": df["accession"],
        }
    )
    return res.iloc[::-1].reset_index(drop=True)


def write_results(tmp_path: Path, res: pd.DataFrame) -> Path:
    path = tmp_path / "results.csv"
    res.to_csv(path, index=False)
    return path


def assert_joined(data: CohortData, df: pd.DataFrame, n: int = N) -> None:
    """Every patient got the AAC of their own film."""
    assert len(data.frame) == n
    truth = dict(zip(df["patient_id"], df["aac24"].astype(float), strict=True))
    assert dict(zip(data.frame["patient_id"], data.frame["aac24"], strict=True)) == {
        p: truth[p] for p in data.frame["patient_id"]
    }


def options(results: Path, **kw: Any) -> CohortOptions:
    return CohortOptions(time="time_years", event="mace", results=results, **kw)


def test_same_stems_are_refused_by_default(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    rpath = write_results(tmp_path, results_frame(df))
    with pytest.raises(CohortInputError) as info:
        load_cohort(table, options(rpath, key="image"))
    e = info.value
    assert (e.file, e.row, e.column) == (str(table), 2, "image")
    assert e.problem.startswith(
        "duplicated case key 'IM0001' (row 1: P00001/IM0001.dcm; row 2: P00002/IM0001.dcm;"
    )
    assert e.problem.endswith("join on --key-from sop_uid or --key-from relpath --root DIR")
    # the same in results.csv when the table is keyed otherwise
    df2 = df.assign(image=[f"case{i}" for i in range(N)])
    df2.drop(columns=["aac24"]).to_csv(table, index=False)
    with pytest.raises(CohortInputError, match=r"duplicated case key 'IM0001' \(row 1: /export"):
        load_cohort(table, options(rpath, key="image"))


def test_relpath_join(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    res = results_frame(df)
    res.loc[0, "status"] = "failed"  # the last patient's film
    data = load_cohort(
        table,
        options(write_results(tmp_path, res), key="image", key_from="relpath", root="/export"),
    )
    assert_joined(data, df, N - 1)
    last = df["patient_id"].iloc[-1]
    assert data.excluded == (
        {"row": N, "key": f"{last}/IM0001", "reason": "result status 'failed'"},
    )


def test_relpath_film_outside_the_root(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    res = results_frame(df)
    res.loc[3, "file"] = "/elsewhere/x/IM0001.dcm"
    rpath = write_results(tmp_path, res)
    with pytest.raises(CohortInputError) as info:
        load_cohort(table, options(rpath, key="image", key_from="relpath", root="/export"))
    assert (info.value.file, info.value.row, info.value.column) == (str(rpath), 4, "file")
    assert "'/elsewhere/x/IM0001.dcm' is outside --root /export" in str(info.value)


@pytest.mark.parametrize("key_from", ["sop_uid", "study_uid", "accession"])
def test_uid_join_with_the_column_of_the_same_name(tmp_path: Path, key_from: str) -> None:
    df, table = cohort(tmp_path)
    data = load_cohort(
        table, options(write_results(tmp_path, results_frame(df)), key_from=key_from)
    )
    assert_joined(data, df)
    assert data.excluded == ()


def test_accession_keeps_leading_zeros_in_the_table(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    res = results_frame(df)
    res["accession"] = [str(int(a)) for a in res["accession"]]  # 00012 -> 12: other keys
    with pytest.raises(CohortInputError, match="no cohort row matched a usable result"):
        load_cohort(table, options(write_results(tmp_path, res), key_from="accession"))


def test_study_uid_with_a_refused_film_in_every_study(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    res = results_frame(df)
    frontal = res.assign(
        file=res["file"].str.replace("IM0001", "IM0002"),
        status="failed",
        aac24=float("nan"),
        sop_uid=res["sop_uid"] + ".2",
    )
    # the refused film comes before the usable one for half of the studies, after it for the rest
    both = pd.concat([frontal.iloc[: N // 2], res, frontal.iloc[N // 2 :]], ignore_index=True)
    data = load_cohort(table, options(write_results(tmp_path, both), key_from="study_uid"))
    assert_joined(data, df)


def test_study_uid_refuses_two_usable_films(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    res = results_frame(df)
    extra = res.iloc[[5]].assign(file="/export/second/IM0002.dcm", sop_uid="9.9")
    rpath = write_results(tmp_path, pd.concat([res, extra], ignore_index=True))
    with pytest.raises(CohortInputError) as info:
        load_cohort(table, options(rpath, key_from="study_uid"))
    e = info.value
    assert (e.file, e.row, e.column) == (str(rpath), N + 1, "study_uid")
    assert f"duplicated case key '{res['study_uid'][5]}' (study_uid) (row 6: " in e.problem
    assert "row 121: /export/second/IM0002.dcm" in e.problem
    assert "needs one usable film and one reference row per study" in e.problem


def test_results_without_the_uid_column(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    rpath = write_results(tmp_path, results_frame(df).drop(columns=["sop_uid"]))
    with pytest.raises(CohortInputError) as info:
        load_cohort(table, options(rpath, key_from="sop_uid"))
    assert info.value.file == str(rpath)
    assert "no 'sop_uid' column for --key-from sop_uid" in str(info.value)
    assert "--key-from relpath --root DIR" in str(info.value)


def test_empty_uid_on_a_scored_result_and_in_the_table(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    res = results_frame(df)
    res.loc[7, "sop_uid"] = ""
    rpath = write_results(tmp_path, res)
    with pytest.raises(CohortInputError) as info:
        load_cohort(table, options(rpath, key_from="sop_uid"))
    assert (info.value.row, info.value.column) == (8, "sop_uid")
    assert "1 scored row(s) have no sop_uid (row 8: /export/" in info.value.problem
    # a patient without a UID in the table is excluded, not an error
    rpath = write_results(tmp_path, results_frame(df))
    df.loc[2, "sop_uid"] = None
    df.drop(columns=["aac24"]).to_csv(table, index=False)
    data = load_cohort(table, options(rpath, key_from="sop_uid"))
    assert_joined(data, df, N - 1)
    assert data.excluded == ({"row": 3, "key": "", "reason": "empty key column 'sop_uid'"},)


def test_table_without_the_default_key_column(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    df.drop(columns=["aac24", "sop_uid"]).to_csv(table, index=False)
    rpath = write_results(tmp_path, results_frame(df))
    with pytest.raises(
        CohortInputError,
        match=r"--results needs --key: .* SOP Instance UIDs \(there is no 'sop_uid' column\)",
    ):
        load_cohort(table, options(rpath, key_from="sop_uid"))


def test_bad_key_choices(tmp_path: Path) -> None:
    _, table = cohort(tmp_path)
    with pytest.raises(CohortInputError, match="--key-from sop_uid chooses how --results"):
        load_cohort(table, CohortOptions(time="time_years", event="mace", key_from="sop_uid"))
    with pytest.raises(CaseKeyError, match=re.escape("--key-from relpath needs --root DIR")):
        CohortOptions(time="time_years", event="mace", key_from="relpath")
    o = CohortOptions(time="time_years", event="mace", key_from="relpath", root="/export")
    assert o.key_from is KeyFrom.RELPATH and o.join.root == "/export"


def test_key_is_recorded_in_cohort_json(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    opts = options(write_results(tmp_path, results_frame(df)), key="image", key_from="relpath",
                   root="/export")  # fmt: skip
    s = run_cohort(table, opts).summary
    assert s["input"]["key"] == "image"
    assert (s["input"]["key_from"], s["input"]["root"]) == ("relpath", "/export")
    default = run_cohort(
        table, options(write_results(tmp_path, results_frame(df)), key_from="sop_uid")
    )
    assert (default.summary["input"]["key_from"], default.summary["input"]["root"]) == (
        "sop_uid",
        None,
    )


def test_cli_key_from(tmp_path: Path) -> None:
    df, table = cohort(tmp_path)
    rpath = write_results(tmp_path, results_frame(df))
    out = tmp_path / "out"
    base = ["cohort", str(table), "--time", "time_years", "--event", "mace", "-o", str(out)]
    res = runner.invoke(app, [*base, "--results", str(rpath), "--key", "image"])
    assert res.exit_code == 2
    assert "duplicated case key 'IM0001'" in res.stderr and "--key-from relpath" in res.stderr
    args = ["--results", str(rpath), "--key", "image", "--key-from", "relpath", "--root", "/export"]
    res = runner.invoke(app, [*base, *args])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "cohort.json").read_text(encoding="utf-8"))
    assert summary["n"] == N
    assert summary["input"]["key_from"] == "relpath" and summary["input"]["root"] == "/export"
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "joined on paths relative to /export without extension (--key-from relpath)" in md
    res = runner.invoke(app, [*base, "--results", str(rpath), "--key-from", "relpath"])
    assert res.exit_code == 2 and "needs --root DIR" in res.stderr
