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


# --- assertions added from mutation testing (benchmarks/mutation.py) ----------------------------


@pytest.mark.parametrize(
    ("fraction", "grade"),
    [
        (1 / 3 + 1e-10, 1),  # within the float tolerance of 1/3
        (2 / 3 + 1e-10, 2),
        (1 + 1e-9, 3),  # the tolerance applies to the upper limit of the range too
    ],
)
def test_grade_float_tolerance(fraction: float, grade: int) -> None:
    assert k.grade_from_fraction(fraction) == grade


def test_aac8_float_tolerance_is_inclusive() -> None:
    assert k.aac8_wall_score(1.0 + 1e-9) == 1
    assert k.aac8_wall_score(3.0 + 1e-9) == 3


def test_error_messages_name_the_problem() -> None:
    with pytest.raises(TypeError, match="fraction must be a number, got str"):
        k.grade_from_fraction("0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fraction must be finite, got nan"):
        k.grade_from_fraction(float("nan"))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], got 1.5"):
        k.grade_from_fraction(1.5)
    with pytest.raises(ValueError, match=r"finite non-negative number, got -1.0"):
        k.aac8_wall_score(-1)
    with pytest.raises(ValueError, match="total must be finite, got inf"):
        k.parse_groups("lewis").index(float("inf"))


def test_segment_grade_validation_messages() -> None:
    partial = dict.fromkeys(k.SEGMENTS, 0)
    del partial["L1_posterior"], partial["L3_anterior"]
    with pytest.raises(ValueError, match=r"^missing segment grades: L1_posterior, L3_anterior$"):
        k.aac24_total(partial)
    with pytest.raises(ValueError, match=r"^expected 8 segment grades, got 3$"):
        k.aac24_total([0, 0, 0])
    with pytest.raises(ValueError, match=r"^grade of L2_anterior must lie in \[0, 3\], got 4$"):
        k.aac24_total([0, 0, 4, 0, 0, 0, 0, 0])


def test_segment_name() -> None:
    assert k.segment("L2", "posterior") == "L2_posterior"


def test_parse_groups_ignores_empty_cut_offs_and_explains_bad_ones() -> None:
    assert k.parse_groups(" 0,4,15, ").upper_bounds == (0, 4, 15)
    with pytest.raises(
        ValueError,
        match=(
            r"^invalid severity groups 'abc': use a preset \(lewis, ckd\) "
            r"or comma-separated integer cut-offs such as 0,4,15$"
        ),
    ):
        k.parse_groups("abc")
    assert k.parse_groups("0,4,15").describe() == "0 0, 1-4 1-4, 5-15 5-15, >=16 >=16"


@pytest.mark.parametrize(
    ("bounds", "labels", "message"),
    [
        ((), ("all",), "^severity groups need at least one cut-off$"),
        ((1.5,), ("a", "b"), r"^cut-offs must be integers, got \(1.5,\)$"),
        ((24,), ("a", "b"), r"^cut-offs must lie in 0..23, got \(24,\)$"),
        ((5, 1), ("a", "b", "c"), r"^cut-offs must be strictly increasing, got \(5, 1\)$"),
        ((1, 5), ("a", "b"), r"^need 3 labels for 2 cut-offs, got \('a', 'b'\)$"),
    ],
)
def test_severity_groups_validation_messages(
    bounds: tuple[int, ...], labels: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        k.SeverityGroups("x", bounds, labels)


def test_score_from_measurements_uses_the_given_groups_and_no_aac8_without_lengths() -> None:
    fr = dict.fromkeys(k.SEGMENTS, 0.0)
    fr["L4_posterior"] = 0.9  # grade 3: "low" for ckd, "moderate" for lewis
    s = k.score_from_measurements(fr, groups="ckd")
    assert (s.group, s.groups_name) == ("none/mild", "ckd")
    assert s.aac8 is None
    assert s.as_dict()["aac8"] is None
    default = k.score_from_measurements(fr)
    assert (default.group, default.groups_name) == ("moderate", "lewis")
    with pytest.raises(
        ValueError, match=r"^missing segment fractions: L1_posterior, L2_anterior, L2_posterior"
    ):
        k.score_from_measurements({"L1_anterior": 0.0})


def test_kauppila_score_as_dict_and_aac8_range() -> None:
    for aac8 in (0, 8):
        s = k.KauppilaScore(grades=(1,) * 8, aac8=aac8, group="high")
        assert s.as_dict() == {
            **dict.fromkeys(k.SEGMENTS, 1),
            "aac24": 8,
            "aac8": aac8,
            "group": "high",
        }
    with pytest.raises(ValueError, match=r"^AAC-8 must lie in 0..8, got -1$"):
        k.KauppilaScore(grades=(0,) * 8, aac8=-1, group="low")
    with pytest.raises(ValueError, match=r"^Kauppila grades must be integers"):
        k.KauppilaScore(grades=(0.5,) * 8, aac8=0, group="low")  # type: ignore[arg-type]
