import numpy as np
import pytest

from aacscore.vertebrae import (
    CLASS_NAMES,
    CORNER_NAMES,
    DISC_NAMES,
    LABEL_VALUES,
    Corner,
    Side,
    SpineError,
    Vertebra,
    anterior_vector,
    disc_bound,
    kauppila_bounds,
    level_bound_names,
    outer_disc_problem,
)


def _box(name: str, y: float, h: float = 50.0, tilt: float = 0.0) -> Vertebra:
    # anterior on the left: AS, PS, PI, AI
    return Vertebra(
        name,
        np.array([[100.0, y + tilt], [170.0, y], [170.0, y + h], [100.0, y + h - tilt]]),
    )


def _spine(names: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5")) -> dict[str, Vertebra]:
    return {n: _box(n, 40.0 + 70.0 * i) for i, n in enumerate(names)}


def test_vocabulary_is_consistent() -> None:
    assert CLASS_NAMES[0] == "background"
    assert all(CLASS_NAMES[v] == n for n, v in LABEL_VALUES.items())
    assert CORNER_NAMES == (
        "anterior_superior",
        "posterior_superior",
        "posterior_inferior",
        "anterior_inferior",
    )
    assert Corner.ANTERIOR_INFERIOR.key == "anterior_inferior"
    assert DISC_NAMES == ("T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5")
    assert level_bound_names("L1") == ("T12/L1", "L1/L2")
    assert level_bound_names("L4") == ("L3/L4", "L4/L5")
    with pytest.raises(ValueError, match="L5"):
        level_bound_names("L5")


def test_side_parses_and_compares_as_text() -> None:
    assert Side.parse("RIGHT ") is Side.RIGHT
    assert Side.LEFT == "left" and str(Side.LEFT) == "left"
    assert Side.LEFT.mirrored is Side.RIGHT
    with pytest.raises(ValueError, match="anterior_side must be 'left' or 'right'"):
        Side.parse("front")
    np.testing.assert_allclose(anterior_vector([0.0, -1.0], "left"), [-1.0, 0.0])
    np.testing.assert_allclose(anterior_vector([0.0, -1.0], Side.RIGHT), [1.0, 0.0])


def test_disc_bound_is_the_mid_disc_line_with_anchors_on_the_margins() -> None:
    upper = _box("L1", 40.0, tilt=4.0)
    lower = _box("L2", 110.0, tilt=-3.0)
    b = disc_bound(upper, lower)
    assert b.name == "L1/L2" and not b.extrapolated
    four = np.stack(
        [
            upper.anterior_inferior,
            upper.posterior_inferior,
            lower.anterior_superior,
            lower.posterior_superior,
        ]
    )
    np.testing.assert_allclose(b.point, four.mean(axis=0))
    d = upper.inferior_direction + lower.superior_direction
    np.testing.assert_allclose(b.direction, d / np.linalg.norm(d))
    assert b.direction[0] < 0  # points anteriorly (left)
    # the anchors lie on the line, next to the anterior / posterior corners facing the disc
    normal = np.array([-b.direction[1], b.direction[0]])
    for p in (b.anterior, b.posterior):
        assert abs(float((p - b.point) @ normal)) < 1e-9
    ant_mid = (upper.anterior_inferior + lower.anterior_superior) / 2
    assert np.linalg.norm(b.anterior - ant_mid) < 2.0
    moved = b.transformed(lambda p: p * 2.0 + 1.0)
    np.testing.assert_allclose(moved.point, b.point * 2.0 + 1.0)
    np.testing.assert_allclose(moved.direction, b.direction)


def test_kauppila_bounds_extrapolates_a_missing_t12_by_half_the_next_disc() -> None:
    verts = _spine(("L1", "L2", "L3", "L4", "L5"))
    bounds, discs, warnings = kauppila_bounds(verts)
    assert set(bounds) == set(DISC_NAMES)
    assert bounds["T12/L1"].extrapolated and not bounds["L4/L5"].extrapolated
    assert "T12/L1" not in discs
    assert any("T12 not found" in w for w in warnings)
    # L1/L2 disc is 20 px: the bound is 10 px above L1's superior end-plate
    np.testing.assert_allclose(bounds["T12/L1"].point, verts["L1"].superior_midpoint - [0, 10])


def test_an_implausible_outer_disc_is_ignored() -> None:
    verts = _spine()
    assert outer_disc_problem(verts, "T12/L1") is None
    far = dict(verts)
    far["T12"] = Vertebra("T12", verts["T12"].corners - np.array([0.0, 90.0]))
    assert "disc height" in (outer_disc_problem(far, "T12/L1") or "")
    bounds, discs, warnings = kauppila_bounds(far)
    assert bounds["T12/L1"].extrapolated and "T12/L1" not in discs
    assert any("T12 ignored" in w for w in warnings)
    with pytest.raises(ValueError, match="outer discs"):
        outer_disc_problem(verts, "L1/L2")


def test_vertebra_rejects_bad_corners() -> None:
    with pytest.raises(SpineError, match="L3"):
        Vertebra("L3", np.zeros((3, 2)))
    v = _box("L3", 0.0)
    assert v.anterior_height == pytest.approx(50.0)
    assert v.vertebral_height == pytest.approx(50.0)
    with pytest.raises(ValueError):
        v.corners[0, 0] = 1.0  # read-only


def test_simulator_truth_uses_the_same_bound() -> None:
    from aacscore.simulate.calcification import disc_line

    upper = _box("L3", 40.0, tilt=5.0)
    lower = _box("L4", 110.0, tilt=-2.0)
    mid, d = disc_line(upper.corners, lower.corners)
    b = disc_bound(upper, lower)
    np.testing.assert_allclose(mid, b.point)
    np.testing.assert_allclose(d, b.direction)
