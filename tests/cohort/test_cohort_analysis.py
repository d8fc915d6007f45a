import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.cohort import CohortOptions, MatchedModel, load_cohort, run_cohort
from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.simulate import simulate_cohort, write_simulated_cohort

runner = CliRunner()


def _table(tmp_path: Path, n: int = 200, seed: int = 7) -> Path:
    csv, _ = write_simulated_cohort(tmp_path / "cohort.csv", n=n, seed=seed)
    return csv


def test_cli_end_to_end(tmp_path):
    csv = tmp_path / "sim.csv"
    r = runner.invoke(app, ["simulate-cohort", "-n", "240", "-o", str(csv), "--seed", "4"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sim.truth.json").is_file()
    out = tmp_path / "out"
    args = [
        "cohort", str(csv), "--time", "time_years", "--event", "mace", "--key", "patient_id",
        "--exposure", "dialysis", "--match-on", "age,diabetes,hypertension", "--exact-on", "sex",
        "--adjust", "dialysis,age,sex,diabetes,hypertension,smoking", "--competing", "death",
        "--horizons", "1,3", "-o", str(out),
    ]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    for name in ("cohort.json", "report.md", "report.html", "matched.csv"):
        assert (out / name).is_file(), name
    s = json.loads((out / "cohort.json").read_text())
    assert s["n"] == 240 and s["events"] == int(pd.read_csv(csv)["mace"].sum())
    assert s["matched"] is True and s["matched_n"] == len(pd.read_csv(out / "matched.csv"))
    assert set(s["balance"]) == {"age", "sex[M]", "diabetes", "hypertension", "smoking"}
    assert s["max_abs_smd_after"] < s["max_abs_smd_before"]
    assert {r["comparison"] for r in s["logrank"] if r["by"] == "aac_group"} >= {"overall"}
    assert any(r["by"] == "dialysis" for r in s["logrank"])
    # sex is matched exactly, so it is constant within matched sets: dropped from the
    # stratified models (with a warning) but kept in the full-cohort ones.
    assert any("sex[M]: constant within every matched set" in w for w in s["warnings"])
    adj = {m["name"]: m["adjusted_for"] for m in s["cox"]}
    assert "sex[M]" not in adj["AAC per point, adjusted"]
    assert "sex[M]" in adj["AAC per point, adjusted (full cohort)"]
    assert s["matching"]["exact_on"] == ["sex"]
    names = [m["name"] for m in s["cox"]]
    assert "AAC per point" in names and "AAC per point, adjusted (full cohort)" in names
    for m in s["cox"]:
        assert 0 <= m["concordance"] <= 1
        assert m["stratified"] == (m["cohort"] == "matched")
        for t in m["terms"]:
            assert t["ci_low"] <= t["hr"] <= t["ci_high"]
            assert {"term", "hr", "ci_low", "ci_high", "p", "ph_test_p"} <= set(t)
    groups = next(m for m in s["cox"] if m["name"] == "AAC groups (vs low)")
    assert [t["term"] for t in groups["terms"]] == ["aac24[moderate]", "aac24[high]"]
    assert s["rates"][0]["by"] == "overall" and s["rates"][0]["ci_low"] < s["rates"][0]["rate"]
    assert s["competing_events"] == int(pd.read_csv(csv)["death"].sum())
    assert s["competing"]["events"] == int(pd.read_csv(out / "matched.csv")["death"].sum())
    assert len(s["competing"]["cif"][0]["at"]) == 2
    matched = pd.read_csv(out / "matched.csv")
    assert matched.columns[0] == "match_id"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "Love plot" in html
    md = (out / "report.md").read_text()
    assert "report_figures/km_aac_group.png" in md and "report_figures/forest.png" in md
    assert (out / "report_figures" / "km_aac_group.png").is_file()


def test_full_cohort_adjusted_model_recovers_truth(tmp_path):
    csv = _table(tmp_path, n=1500, seed=21)
    opts = CohortOptions(
        time="time_years",
        event="mace",
        exposure="dialysis",
        adjust=("dialysis", "age", "sex", "diabetes", "hypertension", "smoking"),
    )
    res = run_cohort(csv, opts)
    truth = json.loads(csv.with_name("cohort.truth.json").read_text())["true_hazard_ratios"]
    adj = next(m for m in res.models if m.name == "AAC per point, adjusted")
    for term in ("aac24", "dialysis", "age", "sex[M]"):
        t = adj.term(term)  # (coverage over repetitions is tested in test_cohort_simulate)
        assert abs(t.coef - math.log(truth[term])) < 3 * t.se, (term, t)
    assert res.summary["matched"] is False and res.summary["matched_n"] is None
    # Without matching the balance table still describes the exposure groups.
    assert res.summary["balance"]["age"]["smd_after"] is None


def test_results_join_and_exclusions(tmp_path):
    df, _ = simulate_cohort(150, seed=2)
    df["image"] = [f"img_{i}" for i in range(len(df))]
    table = tmp_path / "t.csv"
    df.drop(columns=["aac24"]).to_csv(table, index=False)
    res = pd.DataFrame(
        {
            "file": [f"/data/x/img_{i}.dcm" for i in range(len(df))],
            "status": ["ok"] * len(df),
            "aac24": df["aac24"].astype(float),
        }
    )
    res.loc[5, "status"] = "failed"
    res = res.drop(index=9)
    rpath = tmp_path / "results.csv"
    res.to_csv(rpath, index=False)
    opts = CohortOptions(time="time_years", event="mace", key="image", results=rpath)
    data = load_cohort(table, opts)
    assert len(data.frame) == 148
    reasons = {e["key"]: e["reason"] for e in data.excluded}
    assert reasons == {"img_5": "result status 'failed'", "img_9": "no result"}
    assert list(data.frame["aac24"][:3]) == list(df["aac24"][:3].astype(float))


def test_results_join_uid_named_and_compressed_files(tmp_path):
    # Keys are aacscore.keys.case_key: DICOM UIDs that differ only after their last dot stay
    # distinct, and .DCM.gz is removed whole (P0001.DCM.gz -> P0001).
    df, _ = simulate_cohort(60, seed=3)
    uid = [f"1.2.840.113619.2.55.{i}" for i in range(len(df))]
    df["image"] = [u if i % 2 else f"P{i:04d}" for i, u in enumerate(uid)]
    table = tmp_path / "t.csv"
    df.drop(columns=["aac24"]).to_csv(table, index=False)
    files = [f"/data/{u}" if i % 2 else f"/data/P{i:04d}.DCM.gz" for i, u in enumerate(uid)]
    res = pd.DataFrame({"file": files, "status": "ok", "aac24": df["aac24"].astype(float)})
    rpath = tmp_path / "results.csv"
    res.to_csv(rpath, index=False)
    opts = CohortOptions(time="time_years", event="mace", key="image", results=rpath)
    data = load_cohort(table, opts)
    assert data.excluded == ()
    assert len(data.frame) == len(df)
    assert list(data.frame["aac24"]) == list(df["aac24"].astype(float))


def _write(tmp_path: Path, df: pd.DataFrame) -> Path:
    p = tmp_path / "bad.csv"
    df.to_csv(p, index=False)
    return p


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d.drop(columns=["mace"]), r"missing column\(s\) 'mace'"),
        (lambda d: d.assign(time_years=d["time_years"].where(d.index != 2, -1.0)),
         r"row 3 \(line 4\), column 'time_years': follow-up time -1 is below 0"),
        (lambda d: d.assign(time_years=d["time_years"].where(d.index != 4, None)),
         r"row 5 \(line 6\), column 'time_years': missing follow-up time"),
        (lambda d: d.assign(mace=d["mace"].where(d.index != 0, 2)),
         r"row 1 \(line 2\), column 'mace': value 2 is not binary"),
        (lambda d: d.assign(aac24=d["aac24"].where(d.index != 1, 30)),
         r"row 2 \(line 3\), column 'aac24': AAC total 30 is above 24"),
        (lambda d: d.assign(age=d["age"].where(d.index != 6, None)),
         r"row 7 \(line 8\), column 'age': missing value"),
    ],
)  # fmt: skip
def test_bad_input_names_file_row_column(tmp_path, mutate, match):
    df, _ = simulate_cohort(30, seed=1)
    p = _write(tmp_path, mutate(df))
    opts = CohortOptions(time="time_years", event="mace", adjust=("age",))
    with pytest.raises(CohortInputError, match=match) as exc:
        load_cohort(p, opts)
    assert str(exc.value).startswith(str(p))
    assert isinstance(exc.value, ValueError)


def test_event_and_competing_both_set(tmp_path):
    df, _ = simulate_cohort(30, seed=1)
    df.loc[3, ["mace", "death"]] = 1
    p = _write(tmp_path, df)
    opts = CohortOptions(time="time_years", event="mace", competing="death")
    with pytest.raises(CohortInputError, match=r"row 4 .*'death'"):
        load_cohort(p, opts)


def test_too_few_events_clear_error(tmp_path):
    df, _ = simulate_cohort(40, seed=1)
    df["mace"] = 0
    df.loc[0, "mace"] = 1
    p = _write(tmp_path, df)
    r = runner.invoke(
        app, ["cohort", str(p), "--time", "time_years", "--event", "mace", "-o", str(tmp_path)]
    )
    assert r.exit_code == 2
    assert "only 1 event" in r.output


def test_collinear_adjustment_names_columns(tmp_path):
    df, _ = simulate_cohort(200, seed=1)
    df["age_months"] = df["age"] * 12
    p = _write(tmp_path, df)
    opts = CohortOptions(time="time_years", event="mace", adjust=("age", "age_months"))
    with pytest.raises(CohortInputError, match=r"'age_months' is a linear combination of 'age'"):
        run_cohort(p, opts)


def test_matching_needs_exposure_and_custom_groups(tmp_path):
    csv = _table(tmp_path, n=150, seed=3)
    with pytest.raises(CohortInputError, match="needs --exposure"):
        load_cohort(csv, CohortOptions(time="time_years", event="mace", match_on=("age",)))
    res = run_cohort(csv, CohortOptions(time="time_years", event="mace", groups="0,4"))
    assert res.summary["groups"]["labels"] == ["0", "1-4", ">=5"]
    terms = [t.term for m in res.models if m.coding == "groups" for t in m.terms]
    assert terms == ["aac24[1-4]", "aac24[>=5]"]


def test_string_exposure_months_and_skipped_group_model(tmp_path):
    df, _ = simulate_cohort(300, seed=9)
    base = run_cohort(_write(tmp_path, df), CohortOptions(time="time_years", event="mace"))
    df2 = df.assign(
        dialysis=df["dialysis"].map({1: "Yes", 0: "no"}), time_months=df["time_years"] * 12
    )
    p2 = tmp_path / "m.csv"
    df2.to_csv(p2, index=False)
    res = run_cohort(
        p2,
        CohortOptions(time="time_months", event="mace", exposure="dialysis", time_unit="months"),
    )
    r0, r1 = base.summary["rates"][0], res.summary["rates"][0]
    assert r1["person_years"] == pytest.approx(r0["person_years"])
    assert r1["rate"] == pytest.approx(r0["rate"]) and r1["ci_high"] == pytest.approx(r0["ci_high"])
    expo = next(m for m in res.models if m.coding == "exposure")
    assert expo.term("dialysis").hr > 1
    # No events in the high group: the group model is skipped with a reason, others remain.
    df3 = df.copy()
    df3.loc[df3["aac24"] >= 6, "mace"] = 0
    res3 = run_cohort(_write(tmp_path, df3), CohortOptions(time="time_years", event="mace"))
    skipped = res3.summary["cox_skipped"]
    assert [k["name"] for k in skipped] == ["AAC groups (vs low)"]
    assert "no events among" in skipped[0]["reason"]
    assert any(m.coding == "per_point" for m in res3.models)


def test_matched_robust_model(tmp_path):
    csv = _table(tmp_path, n=300, seed=12)
    opts = CohortOptions(
        time="time_years",
        event="mace",
        exposure="dialysis",
        match_on=("age", "sex", "diabetes", "hypertension"),
        ratio=2,
        adjust=("dialysis", "age"),
        matched_model="robust",
    )
    res = run_cohort(csv, opts)
    s = res.summary
    assert s["options"]["matched_model"] == "robust"
    matched = [m for m in s["cox"] if m["cohort"] == "matched"]
    assert matched and all(m["cluster"] == "match_id" and not m["stratified"] for m in matched)
    assert s["matching"]["ratio"] == 2
    assert s["matching"]["n_unexposed_matched"] > s["matching"]["n_exposed_matched"]
    with pytest.raises(ValueError, match="matched_model"):
        CohortOptions(time="t", event="e", matched_model="other")
    assert CohortOptions(time="t", event="e", matched_model="robust").matched_model is (
        MatchedModel.ROBUST
    )
    assert {m["coding"] for m in s["cox"]} >= {"per_point", "per_sd", "exposure"}
