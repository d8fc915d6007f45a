from fractions import Fraction

import pytest

from aacscore import kauppila as k


def test_segment_names_and_order() -> None:
    assert k.SEGMENTS == (
        "L1_anterior",
        "L1_posterior",
        "L2_anterior",
        "L2_posterior",
        "L3_anterior",
        "L3_posterior",
        "L4_anterior",
        "L4_posterior",
    )
    with pytest.raises(ValueError, match="segment"):
        k.segment("L5", "anterior")


@pytest.mark.parametrize(
    ("fraction", "grade"),
    [
        (0, 0),
        (0.0, 0),
        (1e-6, 1),
        (0.2, 1),
        (1 / 3, 1),
        (Fraction(1, 3), 1),
        (0.3333334, 2),
        (Fraction(1, 3) + Fraction(1, 10**9), 2),
        (0.5, 2),
        (2 / 3, 2),
        (Fraction(2, 3), 2),
        (0.6667, 3),
        (1.0, 3),
        (1, 3),
    ],
)
def test_grade_boundaries(fraction: float, grade: int) -> None:
    assert k.grade_from_fraction(fraction) == grade


@pytest.mark.parametrize("bad", [-0.01, 1.1, float("nan"), float("inf")])
def test_grade_rejects_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError):
        k.grade_from_fraction(bad)


def test_grade_rejects_non_numbers() -> None:
    with pytest.raises(TypeError):
        k.grade_from_fraction("0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        k.grade_from_fraction(True)


@pytest.mark.parametrize(
    ("length", "score"),
    [(0, 0), (0.01, 1), (1.0, 1), (1.0001, 2), (2.0, 2), (2.5, 3), (3.0, 3), (3.01, 4), (7, 4)],
)
def test_aac8_wall_boundaries(length: float, score: int) -> None:
    assert k.aac8_wall_score(length) == score


def test_aac8_rejects_negative() -> None:
    with pytest.raises(ValueError):
        k.aac8_wall_score(-1)


@pytest.mark.parametrize(
    ("x", "r"), [(0.49, 0), (0.5, 1), (1.5, 2), (2.5, 3), (4.4999, 4), (-0.5, 0), (23.5, 24)]
)
def test_round_half_up(x: float, r: int) -> None:
    assert k.round_half_up(x) == r


@pytest.mark.parametrize(
    ("preset", "total", "label"),
    [
        ("lewis", 0, "low"),
        ("lewis", 1, "low"),
        ("lewis", 1.49, "low"),
        ("lewis", 1.5, "moderate"),
        ("lewis", 2, "moderate"),
        ("lewis", 5, "moderate"),
        ("lewis", 5.5, "high"),
        ("lewis", 6, "high"),
        ("lewis", 24, "high"),
        ("ckd", 4, "none/mild"),
        ("ckd", 4.5, "moderate"),
        ("ckd", 5, "moderate"),
        ("ckd", 15, "moderate"),
        ("ckd", 15.5, "severe"),
        ("ckd", 16, "severe"),
        ("0,4,15", 0, "0"),
        ("0,4,15", 1, "1-4"),
        ("0,4,15", 4, "1-4"),
        ("0,4,15", 5, "5-15"),
        ("0,4,15", 15, "5-15"),
        ("0,4,15", 16, ">=16"),
    ],
)
def test_severity_group_boundaries(preset: str, total: float, label: str) -> None:
    assert k.parse_groups(preset).label(total) == label


def test_groups_default_and_describe() -> None:
    g = k.parse_groups(None)
    assert g.name == "lewis"
    assert g.describe() == "low 0-1, moderate 2-5, high >=6"
    assert g.ranges == ((0, 1), (2, 5), (6, 24))
    assert k.parse_groups("CKD").describe() == "none/mild 0-4, moderate 5-15, severe >=16"
    custom = k.parse_groups("0,4,15")
    assert custom.labels == ("0", "1-4", "5-15", ">=16")
    assert custom.name == "custom:0,4,15"


@pytest.mark.parametrize("spec", ["abc", "4,2", "1,1", "-1,3", "0,24", ""])
def test_groups_reject_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        k.parse_groups(spec)


def test_score_from_measurements() -> None:
    fr = dict.fromkeys(k.SEGMENTS, 0.0)
    fr["L4_posterior"] = 0.9
    fr["L3_posterior"] = 0.5
    fr["L4_anterior"] = 0.1
    s = k.score_from_measurements(fr, {"anterior": 0.3, "posterior": 1.4})
    assert s.grades == (0, 0, 0, 0, 0, 2, 1, 3)
    assert s.aac24 == 6
    assert s.aac8 == 1 + 2
    assert s.group == "high"
    d = s.as_dict()
    assert d["L3_posterior"] == 2
    assert d["aac24"] == 6
    with pytest.raises(ValueError, match="missing"):
        k.score_from_measurements({"L1_anterior": 0.0})


def test_kauppila_score_validation_and_totals() -> None:
    with pytest.raises(ValueError):
        k.KauppilaScore(grades=(0, 0, 0), aac8=0, group="low")
    with pytest.raises(ValueError):
        k.KauppilaScore(grades=(4, 0, 0, 0, 0, 0, 0, 0), aac8=0, group="low")
    with pytest.raises(ValueError):
        k.KauppilaScore(grades=(0,) * 8, aac8=9, group="low")
    assert k.aac24_total([3] * 8) == 24
    assert k.aac24_total(dict.fromkeys(k.SEGMENTS, 1.5)) == 12.0
