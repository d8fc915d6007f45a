import pytest

from aacscore.codes import ERROR_CODES, FLAGS, ErrorCode, ScoringError, markdown_table


def test_every_code_is_documented() -> None:
    assert set(ERROR_CODES) == set(ErrorCode)
    assert all(text for text in ERROR_CODES.values())
    assert all(name == name.lower() and " " not in name for name in FLAGS)


def test_scoring_error_names_the_film_and_keeps_the_code() -> None:
    e = ScoringError("wrong_view", "the header says AP", "a.dcm")
    assert e.code is ErrorCode.WRONG_VIEW
    assert str(e) == "a.dcm: the header says AP"
    assert isinstance(e, ValueError)
    assert str(ErrorCode.WRONG_VIEW) == "wrong_view"
    with pytest.raises(ValueError):
        ScoringError("no_such_code", "x")


def test_the_markdown_table_lists_every_code_and_flag() -> None:
    table = markdown_table()
    for code, text in ERROR_CODES.items():
        assert f"| `{code.value}` | {text} |" in table
    for flag, text in FLAGS.items():
        assert f"| `{flag}` | {text} |" in table


def test_spine_and_band_errors_are_scoring_errors_with_their_default_codes() -> None:
    from aacscore.aorta.roi import BandError
    from aacscore.vertebrae import SpineError

    e = SpineError("L3 too small", "a.dcm")
    assert isinstance(e, ScoringError) and e.code is ErrorCode.IMPLAUSIBLE_SPINE
    assert str(e) == "a.dcm: L3 too small" and e.problem == "L3 too small" and e.source == "a.dcm"
    assert SpineError("none", code="spine_not_found").code is ErrorCode.SPINE_NOT_FOUND
    b = BandError("degenerate")
    assert (
        isinstance(b, ScoringError) and b.code is ErrorCode.BAND_FAILED and str(b) == "degenerate"
    )
    assert BandError("x", code=ErrorCode.BAND_OUTSIDE_FILM).code is ErrorCode.BAND_OUTSIDE_FILM


def test_the_readme_holds_the_current_table() -> None:
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    assert markdown_table().strip() in readme.read_text(encoding="utf-8")
