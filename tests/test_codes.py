import pytest

from aacscore.codes import ERROR_CODES, FLAGS, ErrorCode, ScoringError


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
