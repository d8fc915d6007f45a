"""``aacscore score`` argument handling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aacscore.cli import app
from tests.batch_fixtures import fake_kwargs, films, reference

__all__ = ["films", "reference"]  # fixtures


def test_cli_score_reports_missing_inputs(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["score", str(tmp_path / "nothing"), "-o", str(tmp_path)])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["score", str(tmp_path), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "no radiographs" in res.output


def test_cli_score_excludes_out_records_skips_and_passes_ignore_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from PIL import Image

    import aacscore.batch as batch
    from aacscore.io.inputs import OUTPUT_FOLDER_REASON

    root = tmp_path / "in"
    (root / "results" / "overlays").mkdir(parents=True)
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(root / "a.png")
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(root / "results" / "overlays" / "x.png")
    (root / "a.json").write_text("{}")
    seen: dict[str, Any] = {}

    def fake_batch(items: Any, out: Any, kwargs: Any, **kw: Any) -> Any:
        seen.update(items=items, out=out, kwargs=kwargs, **kw)
        raise SystemExit(0)

    monkeypatch.setattr(batch, "score_batch", fake_batch)
    args = ["score", str(root), "-o", str(root / "results"), "--ignore-header"]
    CliRunner().invoke(app, [*args, "--backend", "onnx"])
    assert [it.path for it in seen["items"]] == [root / "a.png"]
    assert seen["kwargs"]["ignore_header"] is True
    assert seen["kwargs"]["backend"] == "onnx"
    assert seen["arguments"]["ignore_header"] is True
    assert seen["jobs"] == "auto" and seen["include_patient_id"] is False
    skipped = {s.file: s.reason for s in seen["skipped_inputs"]}
    assert skipped[str(root / "results")] == OUTPUT_FOLDER_REASON
    assert "JSON sidecar" in skipped[str(root / "a.json")]


# --- exit codes --------------------------------------------------------------------------------


def _flat(output: str) -> str:
    """The output without the line breaks rich adds at the terminal width."""
    return " ".join(output.split())


@pytest.fixture()
def fake_models(reference: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``aacscore score`` with the fake spine and score models (in this process: --jobs 1)."""
    import aacscore.batch as batch
    from aacscore.pipeline import Scorer

    kwargs = fake_kwargs(reference)

    def scorer(**kw: Any) -> Scorer:
        return Scorer(**{**kw, **{k: kwargs[k] for k in ("spine_model", "score_model")}})

    monkeypatch.setattr(batch, "Scorer", scorer)


def test_cli_exit_codes_and_a_missing_path_is_a_failed_row(
    films: list[Path], tmp_path: Path, fake_models: None
) -> None:
    from aacscore.outputs.results_csv import read_results

    ok = CliRunner().invoke(app, ["score", str(films[0]), "-o", str(tmp_path / "a"), "-j", "1"])
    assert ok.exit_code == 0, ok.output
    missing = tmp_path / "nonexist" / "x.dcm"
    args = ["score", str(films[0]), str(missing), "-o", str(tmp_path / "b"), "-j", "1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "1 failed" in _flat(res.output)
    good, bad = read_results(tmp_path / "b" / "results.csv")
    assert good["status"] in ("ok", "warning") and bad["error_code"] == "unreadable"
    assert bad["file"] == str(missing) and str(missing) in bad["error"]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "2 already done" in _flat(again.output)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--spacing", "-1"], "--spacing: -1.0"),
        (["--spacing", "nan"], "--spacing: nan"),
        (["--spacing", "9"], "from 0.01 to 5.0"),
        (["--groups", "bogus"], "--groups: invalid severity groups 'bogus'"),
        (["--jobs", "0"], "--jobs: 0 is not"),
        (["--jobs", "many"], "--jobs: 'many' is not"),
        (["--spine-model", "/no/such/spine"], "--spine-model: /no/such/spine: no such"),
        (["--score-model", "/no/such/score"], "--score-model: /no/such/score: no such"),
        (["--backend", "tensorrt"], "--backend: unknown backend 'tensorrt'"),
        (["--num-parts", "2"], "--num-parts needs --part-id"),
        (["--part-id", "0"], "--part-id needs --num-parts"),
        (["--num-parts", "2", "--part-id", "5"], "--part-id: 5 is not a part of 2"),
        (["--engine", "spark"], "--engine: 'spark' is not an engine: give local or ray"),
        (["--address", "auto"], "--address: only with --engine ray"),
        (["--num-gpus-per-worker", "1"], "--num-gpus-per-worker: only with --engine ray"),
    ],
)
def test_cli_bad_options_exit_2_before_any_work(
    films: list[Path], tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["score", str(films[0]), "-o", str(out), *extra])
    assert res.exit_code == 2, res.output
    assert message in _flat(res.output)
    assert not out.exists()  # nothing was done


def test_cli_out_must_not_be_a_file_nor_a_foreign_results_folder(
    films: list[Path], tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    res = CliRunner().invoke(app, ["score", str(films[0]), "-o", str(tmp_path / "file")])
    assert res.exit_code == 2 and "is a file, not a folder" in _flat(res.output)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "results.csv").write_text("case,score\nx,1\n")
    res = CliRunner().invoke(app, ["score", str(films[0]), "-o", str(tmp_path / "foreign")])
    assert res.exit_code == 2 and "score into a new output folder" in _flat(res.output)


def test_cli_nothing_to_score_names_the_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.json").write_text("{}")
    res = CliRunner().invoke(app, ["score", str(empty), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    flat = _flat(res.output)
    assert "nothing to score: no radiographs found in" in flat
    assert str(empty) in res.output.replace("\n", "")
    assert "skipped" in flat and "notes.json" in res.output.replace("\n", "")
    gone = CliRunner().invoke(
        app, ["score", str(tmp_path / "x.dcm"), str(tmp_path / "y.dcm"), "-o", str(tmp_path / "o")]
    )
    assert gone.exit_code == 2 and "none of the inputs exists" in _flat(gone.output)
    assert not (tmp_path / "o").exists()


def test_cli_help_documents_the_exit_codes() -> None:
    res = CliRunner().invoke(app, ["score", "--help"])
    flat = _flat(res.output)
    assert res.exit_code == 0 and "Exit status: 0 every input scored" in flat
    assert "1 some or all inputs failed" in flat and "2 nothing was scored" in flat
    assert "--include-patient-id" in flat and "auto" in flat
