"""``aacscore validate`` end to end on small CSVs, and every input error."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.kauppila import SEGMENTS
from aacscore.results import RESULT_COLUMNS
from aacscore.stats.agreement import LoaCIMethod
from aacscore.stats.bootstrap import BootstrapMethod
from aacscore.stats.icc import ICC_FORMS
from aacscore.stats.validate import (
    ValidationInputError,
    ValidationSettings,
    run_validation,
    validate,
)

runner = CliRunner()
PRED_HEADER = list(RESULT_COLUMNS)
FAST = ValidationSettings(n_resamples=100)

# 12 cases: reference grades and predicted (continuous) grades; totals span all Lewis groups.
REF_GRADES = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 1, 0, 0, 0],
        [2, 1, 1, 0, 1, 0, 1, 0],
        [2, 1, 2, 1, 1, 0, 1, 1],
        [2, 2, 2, 1, 2, 1, 2, 1],
        [3, 2, 2, 2, 2, 1, 2, 2],
        [3, 3, 3, 2, 3, 2, 2, 2],
        [3, 3, 3, 3, 3, 2, 3, 3],
        [3, 3, 3, 3, 3, 3, 3, 3],
        [0, 0, 1, 1, 0, 0, 1, 0],
    ]
)
DELTA = np.zeros_like(REF_GRADES, dtype=float)
DELTA[1, 0] = -0.6  # 1 -> 0.4 (rounds to 0)
DELTA[3, 4] = 0.8  # 1 -> 1.8 (rounds to 2)
DELTA[5, 2] = -1.0
DELTA[8, 7] = 0.3
DELTA[11, 3] = 0.5  # 1 -> 1.5 (rounds half up to 2)
PRED_GRADES = np.clip(REF_GRADES + DELTA, 0, 3)
NAMES = [f"case{i:02d}" for i in range(len(REF_GRADES))]


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def pred_row(name: str, grades: np.ndarray, status: str = "ok", low: bool = False) -> list[Any]:
    values: dict[str, Any] = {
        "file": f"/scans/site A/{name}.dcm",
        "status": status,
        "aac24": f"{grades.sum():.2f}",
        "aac24_sd": "0.8",
        **{s: f"{v:.2f}" for s, v in zip(SEGMENTS, grades, strict=True)},
        "aac8": "2",
        "low_confidence": "true" if low else "false",
        "orientation": "left",
        "spacing_mm": "0.15",
    }
    return [values.get(c, "") for c in PRED_HEADER]


def write_pred(tmp: Path, extra: list[list[Any]] | None = None) -> Path:
    rows = [pred_row(n, g) for n, g in zip(NAMES, PRED_GRADES, strict=True)]
    return write_csv(tmp / "results.csv", PRED_HEADER, rows + (extra or []))


def write_ref_totals(tmp: Path, extra: list[list[Any]] | None = None) -> Path:
    rows: list[list[Any]] = [
        [f"{n}.png", int(g.sum())] for n, g in zip(NAMES, REF_GRADES, strict=True)
    ]
    return write_csv(tmp / "reference.csv", ["file", "aac24"], rows + (extra or []))


def write_ref_segments(tmp: Path) -> Path:
    rows = [[n, *g.tolist()] for n, g in zip(NAMES, REF_GRADES, strict=True)]
    return write_csv(tmp / "reference.csv", ["file", *SEGMENTS], rows)


def load_json(path: Path) -> dict[str, Any]:
    def no_nan(x: str) -> Any:
        raise AssertionError(f"metrics.json holds {x}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=no_nan)


def invoke(*args: str | Path) -> Any:
    return runner.invoke(app, ["validate", *map(str, args)])


def test_totals_reference_end_to_end(tmp_path: Path) -> None:
    pred, ref = write_pred(tmp_path), write_ref_totals(tmp_path)
    out = tmp_path / "out"
    res = invoke("--pred", pred, "--ref", ref, "-o", out, "--n-resamples", "200")
    assert res.exit_code == 0, res.output
    assert "n = 12" in res.stdout
    m = load_json(out / "metrics.json")
    p, r = PRED_GRADES.sum(axis=1), REF_GRADES.sum(axis=1)
    assert m["n"] == 12
    assert m["mae"] == pytest.approx(np.mean(np.abs(p - r)))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((p - r) ** 2)))
    assert m["bias"] == pytest.approx(np.mean(p - r))
    assert m["mae_ci"][0] <= m["mae"] <= m["mae_ci"][1]
    for key in ("pearson_r", "spearman_rho", "spearman_p", "ccc"):
        assert isinstance(m[key], float)
    assert m["spearman_p"] < 0.001
    assert set(m["icc"]) == set(ICC_FORMS)
    assert set(m["icc"]["ICC(2,1)"]) >= {"value", "ci_low", "ci_high", "f", "p"}
    assert m["icc_raters"] == ["reference", "model"]
    assert m["icc_readers"] is None
    ba = m["bland_altman"]
    assert ba["loa_low"] < ba["bias"] < ba["loa_high"]
    assert set(m["kappa"]) == {"unweighted", "linear", "quadratic"}
    assert set(m["kappa"]["linear"]) >= {"value", "ci_low", "ci_high"}
    assert list(m["groups"]) == ["low", "moderate", "high"]
    for g in m["groups"].values():
        for k in ("sensitivity", "specificity", "ppv", "npv"):
            assert set(g[k]) >= {"value", "ci_low", "ci_high"}
    cm = m["confusion_matrix"]
    assert cm["labels"] == ["low", "moderate", "high"]
    assert sum(map(sum, cm["matrix"])) == 12
    assert m["segments"] is None
    assert m["unmatched"] == {"n_pred_only": 0, "n_ref_only": 0, "pred_only": [], "ref_only": []}
    assert m["failed"] == {"n": 0, "cases": []}
    assert m["reference_source"] == "aac24"
    assert m["settings"]["bootstrap_resamples"] == 200
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "ICC(2,1)" in md and "95 % CI" in md and "P < 0.001" in md
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 3
    assert "report_figures" not in html
    for name in ("scatter", "bland_altman", "confusion_matrix"):
        assert (out / "report_figures" / f"{name}.png").stat().st_size > 1000


def test_segment_reference_gives_per_segment_agreement(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = validate(write_pred(tmp_path), write_ref_segments(tmp_path), out, FAST)
    m = load_json(out / "metrics.json")
    assert m["reference_source"] == "segments"
    assert list(m["segments"]) == [*SEGMENTS, "all"]
    seg = m["segments"]["L1_anterior"]
    assert seg["mae"] == pytest.approx(np.mean(np.abs(PRED_GRADES[:, 0] - REF_GRADES[:, 0])))
    # case01 L1_anterior: 1 -> 0.4 rounds to 0, the only miss in this segment
    assert seg["accuracy"]["successes"] == 11 and seg["accuracy"]["n"] == 12
    assert set(seg["kappa_linear"]) >= {"value", "ci_low", "ci_high"}
    pooled = m["segments"]["all"]
    assert pooled["n"] == 96
    # Misses after rounding half up: case01 L1a, case03 L3a, case05 L2a, case11 L2p (1.5 -> 2).
    assert pooled["accuracy"]["successes"] == 92
    assert (
        pooled["accuracy"]["ci_low"] <= pooled["accuracy"]["value"] <= pooled["accuracy"]["ci_high"]
    )
    assert r.segments is not None and r.segments[-1].segment == "all"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("<img") == 4
    assert (out / "report_figures" / "segments.png").exists()


def test_perfect_agreement_end_to_end(tmp_path: Path) -> None:
    rows = [pred_row(n, g.astype(float)) for n, g in zip(NAMES, REF_GRADES, strict=True)]
    pred = write_csv(tmp_path / "results.csv", PRED_HEADER, rows)
    r = run_validation(pred, write_ref_segments(tmp_path), FAST)
    assert r.continuous.mae.estimate == 0.0
    assert r.icc["ICC(2,1)"].value == pytest.approx(1.0)
    assert r.categorical.kappa_quadratic.value == pytest.approx(1.0)
    assert r.categorical.accuracy.value == 1.0
    assert r.segments is not None
    assert all(s.accuracy.value == 1.0 for s in r.segments)


def test_multi_reader_reference(tmp_path: Path) -> None:
    totals = REF_GRADES.sum(axis=1)
    r2 = np.clip(totals + np.array([0, 1, 0, -1, 0, 2, 0, 0, -1, 0, 0, 1]), 0, 24)
    rows = [[f"{n}.dcm", int(a), int(b)] for n, a, b in zip(NAMES, totals, r2, strict=True)]
    ref = write_csv(tmp_path / "ref.csv", ["file", "aac24_reader1", "aac24_reader2"], rows)
    out = tmp_path / "out"
    res = invoke("--pred", write_pred(tmp_path), "--ref", ref, "-o", out, "--n-resamples", "100")
    assert res.exit_code == 0, res.output
    m = load_json(out / "metrics.json")
    assert m["reference_source"] == "readers_mean"
    assert m["readers"] == ["aac24_reader1", "aac24_reader2"]
    assert m["icc_raters"] == ["aac24_reader1", "aac24_reader2", "model"]
    assert set(m["icc_readers"]) == set(ICC_FORMS)
    assert len(m["pairwise_mae"]) == 3
    assert m["pairwise_mae"][0]["mae"] == pytest.approx(np.mean(np.abs(totals - r2)))
    assert m["n"] == 12


def test_reader_columns_option_with_consensus_total(tmp_path: Path) -> None:
    totals = REF_GRADES.sum(axis=1)
    rows = [[n, int(t), int(t), int(min(t + 1, 24))] for n, t in zip(NAMES, totals, strict=True)]
    ref = write_csv(tmp_path / "ref.csv", ["file", "aac24", "ra", "rb"], rows)
    out = tmp_path / "out"
    res = invoke(
        "--pred", write_pred(tmp_path), "--ref", ref, "-o", out,
        "--reader-columns", "ra,rb", "--n-resamples", "0",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    m = load_json(out / "metrics.json")
    assert m["reference_source"] == "aac24"
    assert m["icc_raters"] == ["ra", "rb", "model"]
    assert m["mae_ci"] == [None, None]  # bootstrap switched off


def test_unmatched_failed_and_flagged_rows(tmp_path: Path) -> None:
    extra_pred = [
        pred_row("orphan", np.ones(8)),
        [
            {
                "file": "/scans/case99.dcm",
                "status": "failed",
                "error_code": "wrong_view",
                "error": "not a lateral view",
            }.get(c, "")
            for c in PRED_HEADER
        ],
    ]
    pred = write_pred(tmp_path, extra_pred)
    # mark one used row as warning + low confidence
    rows = list(csv.reader(pred.open(encoding="utf-8")))
    rows[3][1], rows[3][PRED_HEADER.index("low_confidence")] = "warning", "True"
    write_csv(pred, rows[0], rows[1:])
    ref = write_ref_totals(tmp_path, [["case99.png", 4], ["lonely.png", 2]])
    out = tmp_path / "out"
    res = invoke("--pred", pred, "--ref", ref, "-o", out, "--n-resamples", "100")
    assert res.exit_code == 0, res.output
    m = load_json(out / "metrics.json")
    assert m["n"] == 12
    assert m["unmatched"] == {
        "n_pred_only": 1,
        "n_ref_only": 1,
        "pred_only": ["orphan"],
        "ref_only": ["lonely"],
    }
    assert m["failed"]["n"] == 1
    case = m["failed"]["cases"][0]
    assert case == {
        "key": "case99",
        "file": "/scans/case99.dcm",
        "status": "failed",
        "error": "not a lateral view",
        "row": 14,
        "in_reference": True,
    }
    assert (m["n_pred_rows"], m["n_ref_rows"]) == (14, 14)
    assert (m["n_warning"], m["n_low_confidence"]) == (1, 1)
    assert any("no reference row: orphan" in w for w in m["warnings"])
    assert any("failed and were excluded: case99" in w for w in m["warnings"])
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "not a lateral view" in md and "lonely" in md


def test_custom_key_columns_and_groups(tmp_path: Path) -> None:
    p_rows = [["x", "ok", f"{g.sum():.1f}", f"ID-{i}"] for i, g in enumerate(PRED_GRADES)]
    pred = write_csv(tmp_path / "p.csv", ["file", "status", "aac24", "case_id"], p_rows)
    r_rows = [[f"ID-{i}", int(g.sum())] for i, g in enumerate(REF_GRADES)]
    ref = write_csv(tmp_path / "r.csv", ["patient", "aac24"], r_rows)
    out = tmp_path / "out"
    res = invoke(
        "--pred", pred, "--ref", ref, "-o", out, "--pred-key", "case_id",
        "--ref-key", "patient", "--groups", "0,4,15", "--n-resamples", "50",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    m = load_json(out / "metrics.json")
    assert m["n"] == 12
    assert m["groups_definition"]["labels"] == ["0", "1-4", "5-15", ">=16"]
    assert list(m["groups"]) == ["0", "1-4", "5-15", ">=16"]
    assert m["settings"]["pred_key"] == "case_id" and m["settings"]["ref_key"] == "patient"
    r = run_validation(pred, ref, ValidationSettings(groups="ckd", n_resamples=0), key="x",
                       pred_key="case_id", ref_key="patient")  # fmt: skip
    assert r.groups.name == "ckd"


def test_uid_named_and_compressed_files_join(tmp_path: Path) -> None:
    # Keys are aacscore.keys.case_key: DICOM UIDs stay whole (they differ only after the last
    # dot here), a known suffix is removed after a compression suffix (.DCM.gz), and a zip
    # member is keyed by its own name.
    uids = [f"1.2.840.113619.2.55.{i}" for i in range(len(NAMES))]
    names = [u if i % 2 else f"{u}.DCM.gz" for i, u in enumerate(uids)]
    names[1] = f"batch.zip:{uids[1]}.dcm"
    rows = [pred_row(n, g) for n, g in zip(names, PRED_GRADES, strict=True)]
    for row, name in zip(rows, names, strict=True):
        row[0] = f"/scans/site A/{name}"
    pred = write_csv(tmp_path / "results.csv", PRED_HEADER, rows)
    ref_rows = [
        [f"{u}.dcm" if i % 3 else u, int(g.sum())]
        for i, (u, g) in enumerate(zip(uids, REF_GRADES, strict=True))
    ]
    ref = write_csv(tmp_path / "reference.csv", ["file", "aac24"], ref_rows)
    r = run_validation(pred, ref, ValidationSettings(n_resamples=0))
    assert r.n == len(NAMES)
    assert r.data.keys == tuple(uids)
    assert not r.data.pred_only and not r.data.ref_only


# ------------------------------------------------------------------------------------------
# Errors: every message names the file, and the row and column where they apply.


def _expect_error(
    pred: Path, ref: Path, file: Path, row: int | None, column: str | None, text: str, **kw: Any
) -> ValidationInputError:
    with pytest.raises(ValidationInputError) as info:
        run_validation(pred, ref, FAST, **kw)
    e = info.value
    msg = str(e)
    assert isinstance(e, ValueError)
    assert str(file) in msg and e.path == str(file)
    if row is not None:
        assert f"row {row} (line {row + 1})" in msg and e.row == row
    if column is not None:
        assert f"column {column!r}" in msg and e.column == column
    assert text in msg, msg
    return e


def test_error_missing_prediction_column(tmp_path: Path) -> None:
    pred = write_csv(tmp_path / "p.csv", ["file", "status"], [["a", "ok"]])
    _expect_error(
        pred, write_ref_totals(tmp_path), pred, None, "aac24", "missing column(s) 'aac24'"
    )


def test_error_missing_key_column(tmp_path: Path) -> None:
    ref = write_ref_totals(tmp_path)
    _expect_error(
        write_pred(tmp_path), ref, ref, None, "patient", "missing column", ref_key="patient"
    )


def test_error_reference_without_score_columns(tmp_path: Path) -> None:
    ref = write_csv(tmp_path / "r.csv", ["file", "comment"], [["a", "x"]])
    _expect_error(write_pred(tmp_path), ref, ref, None, "aac24", "missing reference score column")


def test_error_non_numeric_prediction(tmp_path: Path) -> None:
    pred = write_pred(tmp_path)
    rows = list(csv.reader(pred.open(encoding="utf-8")))
    rows[3][PRED_HEADER.index("aac24")] = "n/a"
    write_csv(pred, rows[0], rows[1:])
    _expect_error(
        pred,
        write_ref_totals(tmp_path),
        pred,
        3,
        "aac24",
        "non-numeric predicted AAC-24 total 'n/a'",
    )


def test_error_missing_value(tmp_path: Path) -> None:
    ref = write_ref_totals(tmp_path)
    rows = list(csv.reader(ref.open(encoding="utf-8")))
    rows[5][1] = " "
    write_csv(ref, rows[0], rows[1:])
    _expect_error(write_pred(tmp_path), ref, ref, 5, "aac24", "missing reference AAC-24 total")


def test_error_total_out_of_range(tmp_path: Path) -> None:
    ref = write_ref_totals(tmp_path, [["case50", 25]])
    _expect_error(write_pred(tmp_path), ref, ref, 13, "aac24", "25 outside the valid range 0-24")


def test_error_negative_prediction(tmp_path: Path) -> None:
    pred = write_pred(tmp_path, [pred_row("neg", np.zeros(8))])
    rows = list(csv.reader(pred.open(encoding="utf-8")))
    rows[-1][PRED_HEADER.index("L3_posterior")] = "-0.5"
    write_csv(pred, rows[0], rows[1:])
    _expect_error(
        pred, write_ref_totals(tmp_path), pred, 13, "L3_posterior", "outside the valid range 0-3"
    )


def test_error_grade_out_of_range_and_not_integer(tmp_path: Path) -> None:
    ref = write_ref_segments(tmp_path)
    rows = list(csv.reader(ref.open(encoding="utf-8")))
    rows[2][SEGMENTS.index("L2_anterior") + 1] = "4"
    write_csv(ref, rows[0], rows[1:])
    _expect_error(write_pred(tmp_path), ref, ref, 2, "L2_anterior", "4 outside the valid range 0-3")
    rows[2][SEGMENTS.index("L2_anterior") + 1] = "1.5"
    write_csv(ref, rows[0], rows[1:])
    _expect_error(write_pred(tmp_path), ref, ref, 2, "L2_anterior", "not a whole number")


def test_error_total_disagrees_with_grades(tmp_path: Path) -> None:
    rows = [
        [n, *g.tolist(), int(g.sum()) + (1 if i == 4 else 0)]
        for i, (n, g) in enumerate(zip(NAMES, REF_GRADES, strict=True))
    ]
    ref = write_csv(tmp_path / "r.csv", ["file", *SEGMENTS, "aac24"], rows)
    _expect_error(
        write_pred(tmp_path), ref, ref, 5, "aac24", "differs from the sum of its segment grades"
    )


def test_error_partial_segment_columns(tmp_path: Path) -> None:
    ref = write_csv(tmp_path / "r.csv", ["file", "aac24", "L1_anterior"], [["a", 1, 1]])
    _expect_error(
        write_pred(tmp_path), ref, ref, None, "L1_posterior", "give all 8 Kauppila segment grades"
    )


def test_error_duplicated_keys(tmp_path: Path) -> None:
    ref = write_ref_totals(tmp_path, [["/other/dir/case03.dcm", 3]])
    _expect_error(
        write_pred(tmp_path), ref, ref, 13, "file",
        "duplicated case key 'case03' (row 4: case03.png; row 13: /other/dir/case03.dcm): "
        "join on --key-from sop_uid or --key-from relpath --root DIR",
    )  # fmt: skip


def test_error_no_overlap(tmp_path: Path) -> None:
    ref = write_csv(tmp_path / "r.csv", ["file", "aac24"], [["zz1", 1], ["zz2", 2], ["zz3", 3]])
    pred = write_pred(tmp_path)
    _expect_error(pred, ref, pred, None, "file", "no case in common with")


def test_error_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    _expect_error(write_pred(tmp_path), empty, empty, None, None, "the file is empty")
    header = write_csv(tmp_path / "header.csv", PRED_HEADER, [])
    _expect_error(header, write_ref_totals(tmp_path), header, None, None, "header but no data rows")


def test_error_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    _expect_error(write_pred(tmp_path), missing, missing, None, None, "file not found")


def test_error_too_few_matched_cases(tmp_path: Path) -> None:
    ref = write_csv(tmp_path / "r.csv", ["file", "aac24"], [["case01", 1], ["case02", 2]])
    with pytest.raises(ValidationInputError, match=r"only 2 matched case\(s\): at least 3"):
        run_validation(write_pred(tmp_path), ref, FAST)


def test_error_unknown_reader_column(tmp_path: Path) -> None:
    ref = write_ref_totals(tmp_path)
    _expect_error(
        write_pred(tmp_path),
        ref,
        ref,
        None,
        "reader9",
        "missing column(s) 'reader9'",
        reader_columns=["reader9"],
    )


def test_settings_accept_enum_members_and_values(tmp_path: Path) -> None:
    s = ValidationSettings(n_resamples=50, ci_method="percentile", loa_ci_method=LoaCIMethod.EXACT)
    assert s.ci_method is BootstrapMethod.PERCENTILE and s.loa_ci_method is LoaCIMethod.EXACT
    out = tmp_path / "out"
    validate(write_pred(tmp_path), write_ref_totals(tmp_path), out, s)
    settings = load_json(out / "metrics.json")["settings"]
    assert settings["bootstrap_method"] == "percentile" and settings["loa_ci_method"] == "exact"
    assert "percentile bootstrap" in (out / "report.md").read_text(encoding="utf-8")


def test_error_bad_settings() -> None:
    with pytest.raises(ValidationInputError, match="severity groups"):
        ValidationSettings(groups="medium")
    with pytest.raises(ValidationInputError, match="bootstrap CI method"):
        ValidationSettings(ci_method="basic")
    with pytest.raises(ValidationInputError, match="LoA CI method"):
        ValidationSettings(loa_ci_method="nope")


def test_cli_reports_input_errors_on_stderr(tmp_path: Path) -> None:
    ref = write_ref_totals(tmp_path, [["case50", 99]])
    res = invoke("--pred", write_pred(tmp_path), "--ref", ref, "-o", tmp_path / "out")
    assert res.exit_code == 2
    assert f"error: {ref}, row 13 (line 14), column 'aac24'" in res.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()
    res = invoke(
        "--pred", write_pred(tmp_path), "--ref", ref, "-o", tmp_path / "out", "--groups", "x"
    )
    assert res.exit_code == 2 and "severity groups" in res.stderr


def test_metrics_json_has_no_nan_when_statistics_are_undefined(tmp_path: Path) -> None:
    """All-zero reference segments make several kappas undefined: written as null."""
    zeros = np.zeros_like(REF_GRADES)
    zeros[:, 0] = REF_GRADES[:, 0]
    rows = [pred_row(n, g.astype(float)) for n, g in zip(NAMES, zeros, strict=True)]
    pred = write_csv(tmp_path / "results.csv", PRED_HEADER, rows)
    ref = write_csv(
        tmp_path / "r.csv",
        ["file", *SEGMENTS],
        [[n, *g.tolist()] for n, g in zip(NAMES, zeros, strict=True)],
    )
    out = tmp_path / "out"
    r = validate(pred, ref, out, FAST)
    m = load_json(out / "metrics.json")
    assert m["segments"]["L4_posterior"]["kappa_linear"]["value"] is None
    assert math.isnan(r.segments[7].kappa_linear.value) if r.segments else False
    assert any("weighted kappa undefined" in w for w in m["warnings"])
