"""The batch runner's decisions without any model: options, processes, settings hash, input
identity and the resume plan (:func:`aacscore.batch.plan_batch`)."""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from aacscore import batch
from aacscore.batch import (
    Action,
    BatchOptionError,
    auto_processes,
    batch_settings,
    check_options,
    input_sha256,
    item_location,
    parse_jobs,
    plan_batch,
    resolve_workers,
    row_location,
)
from aacscore.io import InputItem
from aacscore.pipeline import Scorer
from aacscore.results import RESULT_COLUMNS

SETTINGS = "abc123abc123"


def _row(file: str, sha: str, settings: str = SETTINGS, status: str = "ok") -> dict[str, str]:
    return {**dict.fromkeys(RESULT_COLUMNS, ""), "file": file, "status": status} | {
        "sha256": sha,
        "settings": settings,
    }


def _plan(
    items: list[InputItem], digests: list[str], rows: list[dict[str, str]], **kw: Any
) -> list[tuple[Action, int | None, tuple[int, ...], str | None]]:
    plans = plan_batch(items, digests, dict(enumerate(rows)), SETTINGS, **kw)
    return [(p.action, p.row, p.replaces, p.same_as) for p in plans]


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder is ``tmp_path``, holding a.dcm, b.dcm and sub/c.dcm."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    for name in ("a.dcm", "b.dcm", "sub/c.dcm"):
        (tmp_path / name).write_bytes(name.encode())
    return tmp_path


def test_a_film_is_done_whatever_its_path_is_spelled_like(here: Path) -> None:
    rows = [_row("a.dcm", "A"), _row(str(here / "sub" / "c.dcm"), "C")]
    items = [InputItem(here / "a.dcm"), InputItem(Path("sub/c.dcm"))]
    assert _plan(items, ["A", "C"], rows) == [
        (Action.RESUME, 0, (), None),
        (Action.RESUME, 1, (), None),
    ]
    # moved: the same bytes in another folder resume the row of a path no input has
    moved = [InputItem(here / "elsewhere.dcm")]
    assert _plan(moved, ["C"], rows) == [(Action.RESUME, 1, (), None)]


def test_changed_content_or_settings_are_scored_again_replacing_the_row(here: Path) -> None:
    rows = [_row("a.dcm", "A"), _row("b.dcm", "B", settings="old")]
    items = [InputItem(Path("a.dcm")), InputItem(Path("b.dcm"))]
    assert _plan(items, ["A2", "B"], rows) == [
        (Action.RESCORE, None, (0,), None),  # the file was replaced
        (Action.RESCORE, None, (1,), None),  # the options changed
    ]
    # a film moved and scored with other settings replaces its old row
    assert _plan([InputItem(Path("new.dcm"))], ["B"], rows) == [(Action.RESCORE, None, (1,), None)]
    assert _plan([InputItem(Path("new.dcm"))], ["N"], rows) == [(Action.SCORE, None, (), None)]


def test_the_same_bytes_or_file_twice_in_a_batch_is_one_case(here: Path) -> None:
    items = [
        InputItem(Path("a.dcm")),
        InputItem(Path("b.dcm")),
        InputItem(here / "a.dcm"),  # the same file again
        InputItem(Path("sub/c.dcm")),  # the bytes of b
    ]
    assert _plan(items, ["A", "B", "A", "B"], []) == [
        (Action.SCORE, None, (), None),
        (Action.SCORE, None, (), None),
        (Action.DUPLICATE, None, (), "a.dcm"),
        (Action.DUPLICATE, None, (), "b.dcm"),
    ]
    # unreadable inputs are never duplicates of each other by their (empty) digest
    missing = [InputItem(Path("x.dcm")), InputItem(Path("y.dcm"))]
    assert [a for a, *_ in _plan(missing, ["", ""], [])] == [Action.SCORE, Action.SCORE]


def test_failed_rows_are_done_unless_retried(here: Path) -> None:
    rows = [_row("a.dcm", "A", status="failed"), _row("x.dcm", "", status="failed")]
    items = [InputItem(Path("a.dcm")), InputItem(Path("x.dcm"))]  # x.dcm does not exist
    assert _plan(items, ["A", ""], rows) == [
        (Action.RESUME, 0, (), None),
        (Action.RESUME, 1, (), None),
    ]
    assert _plan(items, ["A", ""], rows, retry_failed=True) == [
        (Action.RESCORE, None, (0,), None),
        (Action.RESCORE, None, (1,), None),
    ]


def test_a_film_that_became_unreadable_replaces_its_row(here: Path) -> None:
    # the row of a film that is now missing is not kept as if it were still true
    rows = [_row("gone.dcm", "G")]
    assert _plan([InputItem(Path("gone.dcm"))], [""], rows) == [(Action.RESCORE, None, (0,), None)]


def test_a_row_at_another_inputs_path_belongs_to_that_input(here: Path) -> None:
    # b.dcm now holds what a.dcm held; a.dcm holds new bytes: each input keeps its own row
    rows = [_row("a.dcm", "A"), _row("b.dcm", "B")]
    items = [InputItem(Path("a.dcm")), InputItem(Path("b.dcm"))]
    assert _plan(items, ["A2", "A"], rows) == [
        (Action.RESCORE, None, (0,), None),
        (Action.RESCORE, None, (1,), None),
    ]
    # rows by the same name (written from another folder) are replaced, never doubled
    other = [_row("a.dcm", "Z")]
    items = [InputItem(Path("a.dcm"))]
    assert _plan(items, ["A"], other) == [(Action.RESCORE, None, (0,), None)]


def test_legacy_rows_without_hashes_are_scored_again_in_place(here: Path) -> None:
    rows = [_row("a.dcm", "", settings=""), _row("b.dcm", "", settings="")]
    items = [InputItem(Path("b.dcm")), InputItem(Path("sub/c.dcm"))]
    assert _plan(items, ["B", "C"], rows) == [
        (Action.RESCORE, None, (1,), None),
        (Action.SCORE, None, (), None),
    ]


def test_locations_of_rows_and_inputs_agree(here: Path) -> None:
    with zipfile.ZipFile(here / "films.zip", "w") as zf:
        zf.writestr("dir/m.dcm", b"member")
    member = InputItem(Path("films.zip"), "dir/m.dcm")
    assert (
        row_location(member.name) == item_location(member) == (str(here / "films.zip"), "dir/m.dcm")
    )
    assert row_location("a.dcm") == item_location(InputItem(here / "a.dcm"))
    assert input_sha256(member) == hashlib.sha256(b"member").hexdigest()
    assert input_sha256(InputItem(here / "a.dcm")) == hashlib.sha256(b"a.dcm").hexdigest()
    assert input_sha256(InputItem(here / "missing.dcm")) == ""
    assert input_sha256(InputItem(Path("films.zip"), "nope.dcm")) == ""


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "jobs", "message"),
    [
        ({"spacing_mm": -1.0}, 1, "--spacing: -1.0"),
        ({"spacing_mm": float("nan")}, 1, "--spacing: nan"),
        ({"spacing_mm": float("inf")}, 1, "--spacing: inf"),
        ({"spacing_mm": 0.0}, 1, "--spacing: 0.0"),
        ({"spacing_mm": 12.0}, 1, "from 0.01 to 5.0"),
        ({"spacing_mm": (0.2, 0.2, 0.2)}, 1, "--spacing"),
        ({"groups": "mild,severe"}, 1, "--groups: invalid severity groups 'mild,severe'"),
        ({"groups": "4,2"}, 1, "--groups: cut-offs must be strictly increasing"),
        ({}, 0, "--jobs: 0 is not"),
        ({}, "x", "--jobs: 'x' is not"),
        ({}, "1.5", "--jobs: '1.5'"),
        ({}, 2.0, "--jobs: 2.0"),
        ({"spine_model": "/no/such/spine"}, 1, "--spine-model: /no/such/spine: no such"),
        ({"spine_model": "nnunet:/no/such/nn"}, 1, "--spine-model: nnunet:/no/such/nn: no such"),
        ({"score_model": "/no/such/score"}, 1, "--score-model: /no/such/score: no such"),
        ({"backend": "tensorrt"}, 1, "--backend: unknown backend 'tensorrt'"),
    ],
)
def test_bad_options_are_refused_naming_option_and_value(
    kwargs: dict[str, Any], jobs: Any, message: str
) -> None:
    with pytest.raises(BatchOptionError) as e:
        check_options(kwargs, jobs)
    assert message in str(e.value)


def test_good_options_pass_and_out_must_be_a_folder(tmp_path: Path) -> None:
    check_options({"spacing_mm": 0.15, "groups": "0,4,15", "score_model": str(tmp_path)}, "auto")
    check_options({"spacing_mm": (0.01, 5.0), "groups": "ckd"}, 3, tmp_path / "new")
    (tmp_path / "f").write_text("x")
    with pytest.raises(BatchOptionError, match=f"--out: {tmp_path / 'f'} is a file"):
        check_options({}, 1, tmp_path / "f")


def test_jobs_and_processes() -> None:
    assert parse_jobs("auto") is None and parse_jobs(" AUTO ") is None
    assert parse_jobs(3) == 3 and parse_jobs("2") == 2
    assert auto_processes(1) == auto_processes(2) == auto_processes(7) == 1
    assert auto_processes(8) == 1 and auto_processes(16) == 2 and auto_processes(64) == 8
    assert auto_processes(64, 100) == 8 and auto_processes(64, 20) == 2  # 8 films a process
    assert auto_processes(64, 7) == auto_processes(16, 0) == 1
    assert resolve_workers("auto", 100, cores=2) == (1, 0)  # one process, threads as they are
    assert resolve_workers("auto", 100, cores=32) == (4, 8)
    assert resolve_workers("auto", 12, cores=32) == (1, 0)
    assert resolve_workers(2, 100, cores=2) == (2, 1)
    assert resolve_workers(4, 2, cores=16) == (2, 8)  # never more processes than films
    assert resolve_workers(4, 1, cores=16) == (1, 0)
    assert resolve_workers(3, 0, cores=16) == (1, 0)


# --- the settings hash -------------------------------------------------------------------------


class _Model:
    """A model object without weight files."""

    band_geometry = None


def test_the_settings_hash_follows_every_option_that_changes_results() -> None:
    base: dict[str, Any] = {
        "spine_model": _Model(),
        "score_model": _Model(),
        "view_model": False,
        "quality_reference": False,
    }
    ref = batch_settings(Scorer(**base))
    assert len(ref.hash) == 12 and ref.hash == batch_settings(Scorer(**base)).hash
    assert ref.values["models"]["spine"]["class"].endswith("_Model")
    assert "view" not in ref.values["models"]
    changed = [
        {"groups": "ckd"},
        {"groups": "0,4,15"},
        {"tta": False},
        {"spacing_mm": 0.2},
        {"decode_spacing_mm": None},
        {"decode_spacing_mm": 0.3},
        {"band_source_spacing_mm": None},
        {"ignore_header": True},
        {"ignore_view": True},
    ]
    hashes = {batch_settings(Scorer(**{**base, **c})).hash for c in changed}
    assert len(hashes) == len(changed) and ref.hash not in hashes
    # the shipped view classifier is identified by its weights
    with_view = batch_settings(Scorer(**{**base, "view_model": None}))
    assert set(with_view.values["models"]["view"]["sha256"]) == {
        "config.json",
        "view.safetensors",
        "view.onnx",  # the default backend runs the ONNX graph
    }
    assert with_view.hash != ref.hash


def test_the_settings_values_are_exact_and_their_hash_is_of_canonical_json() -> None:
    import json

    from aacscore._version import __version__

    scorer = Scorer(
        spine_model=_Model(), score_model=_Model(), view_model=False, quality_reference=False
    )
    settings = batch_settings(scorer)
    model = {"path": None, "class": f"{__name__}._Model"}
    assert settings.values == {
        "aacscore": __version__,
        "models": {"spine": model, "score": model},
        "groups": {"name": "lewis", "upper_bounds": [1, 5], "labels": ["low", "moderate", "high"]},
        "view_check": False,
        "tta": True,
        "spacing_mm": None,
        "decode_spacing_mm": 0.6,
        "band_source_spacing_mm": 0.3,
        "ignore_header": False,
        "ignore_view": False,
    }
    canonical = json.dumps(settings.values, sort_keys=True, separators=(",", ":"))
    assert settings.hash == hashlib.sha256(canonical.encode()).hexdigest()[:12]


def test_a_scorer_whose_models_cannot_be_described_is_hashed_with_the_reason() -> None:
    class Broken(Scorer):
        def models_info(self) -> dict[str, Any]:
            raise FileNotFoundError("no weights here")

    settings = batch_settings(Broken(spine_model=_Model(), score_model=_Model(), view_model=False))
    assert settings.values["models"] == {"error": "FileNotFoundError: no weights here"}


def test_every_plan_carries_its_input_and_digest(here: Path) -> None:
    rows = [_row("a.dcm", "A")]
    items = [InputItem(Path("a.dcm")), InputItem(Path("b.dcm")), InputItem(Path("sub/c.dcm"))]
    plans = plan_batch(items, ["A", "B", "B"], dict(enumerate(rows)), SETTINGS)
    assert [(p.item, p.sha256, p.action) for p in plans] == [
        (items[0], "A", Action.RESUME),
        (items[1], "B", Action.SCORE),
        (items[2], "B", Action.DUPLICATE),
    ]


def test_an_input_resumed_at_its_own_path_is_not_moved_to_another_copy(here: Path) -> None:
    # the same film was scored from two folders; given again from the first, it keeps that row
    rows = [_row(str(here / "sub" / "old.dcm"), "A"), _row("a.dcm", "A")]
    items = [InputItem(Path("a.dcm")), InputItem(Path("b.dcm"))]
    assert _plan(items, ["A", "B"], rows) == [
        (Action.RESUME, 1, (), None),
        (Action.SCORE, None, (), None),
    ]


def test_every_moved_film_is_found_not_only_the_first(here: Path) -> None:
    rows = [_row("a.dcm", "A"), _row("old_b.dcm", "B"), _row("old_c.dcm", "C")]
    items = [InputItem(Path("a.dcm")), InputItem(Path("b.dcm")), InputItem(Path("sub/c.dcm"))]
    assert _plan(items, ["A", "B", "C"], rows) == [
        (Action.RESUME, 0, (), None),
        (Action.RESUME, 1, (), None),
        (Action.RESUME, 2, (), None),
    ]


def test_a_row_at_another_inputs_path_spelled_otherwise_still_belongs_to_it(here: Path) -> None:
    # b.dcm held a's bytes when it was scored (its row spelled as an absolute path); b.dcm now
    # holds new bytes: that row is b's to replace, a is scored on its own
    rows = [_row(str(here / "b.dcm"), "A")]
    items = [InputItem(Path("a.dcm")), InputItem(Path("b.dcm"))]
    assert _plan(items, ["A", "B"], rows) == [
        (Action.SCORE, None, (), None),
        (Action.RESCORE, None, (0,), None),
    ]


def test_replaced_rows_are_listed_in_file_order_not_row_id_order(here: Path) -> None:
    # row ids follow the order rows were written, the file order can differ (after a reorder)
    rows = {5: _row("a.dcm", "OLD"), 2: _row("sub/moved.dcm", "A2")}
    plans = plan_batch([InputItem(Path("a.dcm"))], ["A2"], rows, "other-settings")
    assert [(p.action, p.replaces) for p in plans] == [(Action.RESCORE, (5, 2))]


def test_jobs_must_be_written_as_a_plain_integer() -> None:
    for bad in ("03", "+2", "2 x"):
        with pytest.raises(BatchOptionError, match=f"--jobs: '{re.escape(bad)}' is not"):
            parse_jobs(bad)
    assert parse_jobs(" 4 ") == 4


def test_processes_and_threads_are_whole_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert auto_processes(20) == 2
    assert resolve_workers(3, 100, cores=8) == (3, 2)
    assert all(isinstance(v, int) for v in (auto_processes(20), *resolve_workers(3, 100, cores=8)))
    monkeypatch.setattr(batch, "cpu_cores", lambda: 32)
    assert resolve_workers("auto", 100) == (4, 8)


def test_options_that_are_not_numbers_or_need_torch_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from aacscore.backend import BackendError

    with pytest.raises(BatchOptionError, match="--spacing: 'abc' is not a pixel spacing"):
        check_options({"spacing_mm": "abc"})
    with pytest.raises(BatchOptionError, match="--spacing"):
        check_options({"spacing_mm": [None]})

    def no_torch() -> None:
        raise BackendError("PyTorch is not installed")

    monkeypatch.setattr(batch, "require_torch", no_torch)
    with pytest.raises(BatchOptionError, match="--backend: PyTorch is not installed"):
        check_options({"backend": "torch"})
    check_options({"backend": "onnx"})
    check_options({"spine_model": f"nnunet:{tmp_path}"})  # an existing nnU-Net folder


def test_models_without_weights_are_named_by_their_path_and_class() -> None:
    class Described(Scorer):
        def models_info(self) -> dict[str, Any]:
            return {
                "spine": {"path": "/models/spine", "sha256": None},
                "extra": {"path": "/models/extra"},  # no attribute of the scorer
            }

    scorer = Described(spine_model=_Model(), score_model=_Model(), view_model=False)
    assert batch_settings(scorer).values["models"] == {
        "spine": {"path": "/models/spine", "class": f"{__name__}._Model"},
        "extra": {"path": "/models/extra", "class": "builtins.NoneType"},
    }
