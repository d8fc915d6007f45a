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


# --- assertions added from mutation testing (benchmarks/mutation.py) ----------------------------


def test_full_spine_bounds_are_mid_disc_lines_without_warnings() -> None:
    verts = _spine()
    bounds, discs, warnings = kauppila_bounds(verts)
    assert warnings == []
    assert set(discs) == set(DISC_NAMES)
    assert not any(b.extrapolated for b in bounds.values())
    # L1 spans y 110-160, L2 y 180-230: the L1/L2 disc midpoint is (135, 170)
    np.testing.assert_allclose(discs["L1/L2"], [135.0, 170.0])
    assert not discs["L1/L2"].flags.writeable
    for name, b in bounds.items():
        np.testing.assert_allclose(b.point, discs[name])


def test_extrapolated_bounds_anchor_on_the_margins() -> None:
    verts = _spine(("L1", "L2", "L3", "L4"))
    bounds, discs, warnings = kauppila_bounds(verts)
    assert warnings == [
        "T12 not found (outside the field of view or not segmented): T12/L1 bound "
        "extrapolated from the L1 superior end-plate and the L1/L2 disc height",
        "L5 not found: L4/L5 bound extrapolated from the L4 inferior end-plate and "
        "the L3/L4 disc height",
    ]
    assert set(discs) == {"L1/L2", "L2/L3", "L3/L4"}
    top, bottom = bounds["T12/L1"], bounds["L4/L5"]
    assert top.extrapolated and bottom.extrapolated
    assert (top.name, bottom.name) == ("T12/L1", "L4/L5")
    # half of the 20 px neighbouring disc beyond the end-plate, anchored on x=100 / x=170
    np.testing.assert_allclose(top.anterior, [100.0, 30.0])
    np.testing.assert_allclose(top.posterior, [170.0, 30.0])
    np.testing.assert_allclose(bottom.anterior, [100.0, 310.0])
    np.testing.assert_allclose(bottom.posterior, [170.0, 310.0])


@pytest.mark.parametrize(
    ("names", "bound", "y"),
    [(("L1",), "T12/L1", 40.0 - 6.25), (("L4",), "L4/L5", 90.0 + 6.25)],
)
def test_extrapolation_without_the_neighbouring_disc_uses_a_quarter_body_height(
    names: tuple[str, ...], bound: str, y: float
) -> None:
    bounds, discs, _ = kauppila_bounds(_spine(names))
    assert set(bounds) == {bound} and discs == {}
    np.testing.assert_allclose(bounds[bound].point, [135.0, y])


def test_an_implausible_l5_is_ignored_with_a_warning() -> None:
    verts = _spine()
    far = dict(verts)
    far["L5"] = Vertebra("L5", verts["L5"].corners + np.array([0.0, 90.0]))
    problem = "L4/L5 disc height x5.5 of the neighbouring disc"
    assert outer_disc_problem(far, "L4/L5") == problem
    bounds, discs, warnings = kauppila_bounds(far)
    assert warnings == [
        f"{problem}: L5 ignored for the bound, which is extrapolated "
        "(partly visible or mis-segmented)"
    ]
    assert bounds["L4/L5"].extrapolated and "L4/L5" not in discs
    np.testing.assert_allclose(
        bounds["L4/L5"].point, verts["L4"].inferior_midpoint + np.array([0.0, 10.0])
    )


def _moved(verts: dict[str, Vertebra], name: str, dy: float) -> dict[str, Vertebra]:
    out = dict(verts)
    out[name] = Vertebra(name, verts[name].corners + np.array([0.0, dy]))
    return out


@pytest.mark.parametrize(("outer", "sign"), [("T12", -1.0), ("L5", 1.0)])
def test_outer_disc_height_limit_is_exclusive(outer: str, sign: float) -> None:
    # neighbouring disc 20 px, body 50 px: the limit is max(2.5 x 20, 20 + 0.4 x 50) = 50 px
    name = "T12/L1" if outer == "T12" else "L4/L5"
    verts = _spine()
    assert outer_disc_problem(_moved(verts, outer, sign * 30.0), name) is None
    assert outer_disc_problem(_moved(verts, outer, sign * 31.0), name) == (
        f"{name} disc height x2.5 of the neighbouring disc"
    )


@pytest.mark.parametrize(("names", "name"), [(("T12", "L1"), "T12/L1"), (("L4", "L5"), "L4/L5")])
def test_outer_disc_limit_without_a_neighbouring_disc(names: tuple[str, str], name: str) -> None:
    # reference disc a quarter body height (12.5 px): limit max(31.25, 12.5 + 20) = 32.5 px
    upper, lower = names
    verts = {upper: _box(upper, 0.0), lower: _box(lower, 50.0 + 32.0)}
    assert outer_disc_problem(verts, name) is None
    verts[lower] = _box(lower, 50.0 + 33.0)
    assert outer_disc_problem(verts, name) == f"{name} disc height x2.6 of the neighbouring disc"


def test_outer_disc_overlap_limit() -> None:
    verts = _spine()  # T12 ends at y=90, L1 starts at y=110; body height 50
    assert outer_disc_problem(_moved(verts, "T12", 27.5), "T12/L1") is None  # overlap 0.15
    assert outer_disc_problem(_moved(verts, "T12", 28.0), "T12/L1") == (
        "T12/L1 end-plates overlap by 0.16 of the body height"
    )
    assert outer_disc_problem(_spine(("L1", "L2")), "T12/L1") is None  # no T12: no problem


def test_disc_height_needs_both_bodies() -> None:
    from aacscore.vertebrae import disc_height

    verts = _spine(("L1", "L3"))
    assert disc_height(verts, "L1", "L2") is None
    assert disc_height(verts, "L2", "L3") is None
    assert disc_height(_spine(("L1", "L2")), "L1", "L2") == pytest.approx(20.0)


def test_geometry_primitives() -> None:
    from aacscore.vertebrae import _line_bound, readonly, unit

    np.testing.assert_allclose(anterior_vector([0.6, -0.8], "left"), [-0.8, -0.6])
    np.testing.assert_allclose(anterior_vector([0.6, -0.8], "right"), [0.8, 0.6])
    r = readonly([1, 2])
    assert r.dtype == np.float64 and not r.flags.writeable
    np.testing.assert_allclose(unit([3.0, 4.0]), [0.6, 0.8])
    with pytest.raises(SpineError, match=r"^degenerate direction vector \[0.0, 0.0\]$"):
        unit([0.0, 0.0])
    with pytest.raises(SpineError, match="degenerate direction vector"):
        unit([float("nan"), 1.0])
    for ant, post in (([0.0, 5.0], [0.0, -5.0]), ([-1.0, 0.0], [1.0, 0.0])):
        with pytest.raises(
            SpineError, match=r"^x: degenerate mid-disc line \(anterior side not in front\)$"
        ):
            _line_bound("x", np.zeros(2), np.array([1.0, 0.0]), np.array(ant), np.array(post), True)
    with pytest.raises(ValueError, match=r"^Kauppila levels are L1, L2, L3, L4, got 'L5'$"):
        level_bound_names("L5")


def test_spine_error_names_the_source() -> None:
    e = SpineError("L3 not found", "film.dcm")
    assert (e.problem, e.source, str(e)) == ("L3 not found", "film.dcm", "film.dcm: L3 not found")
    e = SpineError("L3 not found")
    assert (e.problem, e.source, str(e)) == ("L3 not found", None, "L3 not found")


def test_bound_fields_and_maps() -> None:
    from aacscore.vertebrae import Bound

    b = Bound("T12/L1", [1, 2], [-1, -2], extrapolated=True)  # type: ignore[arg-type]
    for a in (b.anterior, b.posterior):
        assert a.dtype == np.float64 and not a.flags.writeable
    with pytest.raises(SpineError):
        Bound("x", np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    np.testing.assert_allclose(b.point, [0.0, 0.0])
    np.testing.assert_allclose(b.at(5.0), 5.0 * np.array([1.0, 2.0]) / np.sqrt(5.0))
    moved = b.transformed(lambda p: p + 1.0)
    assert (moved.name, moved.extrapolated) == ("T12/L1", True)
    s = b.scaled([2.0, 0.5])
    assert (s.name, s.extrapolated) == ("T12/L1", True)
    np.testing.assert_allclose(s.anterior, [2.0, 1.0])
    np.testing.assert_allclose(s.posterior, [-2.0, -1.0])
    d = Bound("L1/L2", np.array([0.0, 0.0]), np.array([4.0, 0.0])).to_dict()
    assert d == {
        "point": [2.0, 0.0],
        "direction": [-1.0, 0.0],
        "anterior": [0.0, 0.0],
        "posterior": [4.0, 0.0],
        "extrapolated": False,
    }
    assert disc_bound(_box("L1", 40.0), _box("L2", 110.0)).extrapolated is False


def test_vertebra_sizes_maps_and_dict() -> None:
    from aacscore.vertebrae import distance_mm, vertebrae_from_corners

    assert distance_mm([0, 0], [3, 4], (0.5, 0.2)) == pytest.approx(np.hypot(0.6, 2.0))
    corners = _box("L3", 10.0).corners
    v = Vertebra("L3", corners, area_px=3500.0, fit_rms_px=1.5, spacing_mm=(0.5, 0.2))
    assert (v.height_mm, v.depth_mm) == (pytest.approx(25.0), pytest.approx(14.0))
    assert _box("L3", 0.0).height_mm is None and _box("L3", 0.0).depth_mm is None
    assert v.to_dict() == {
        "corners": {
            "anterior_superior": [100.0, 10.0],
            "posterior_superior": [170.0, 10.0],
            "posterior_inferior": [170.0, 60.0],
            "anterior_inferior": [100.0, 60.0],
        },
        "superior_midpoint": [135.0, 10.0],
        "inferior_midpoint": [135.0, 60.0],
        "height_px": 50.0,
        "depth_px": 70.0,
        "height_mm": pytest.approx(25.0),
        "depth_mm": pytest.approx(14.0),
        "fit_rms_px": 1.5,
    }
    t = v.transformed(lambda p: p * 2.0, (0.25, 0.1), area_scale=4.0, length_scale=2.0)
    assert (t.name, t.area_px, t.fit_rms_px, t.spacing_mm) == ("L3", 14000.0, 3.0, (0.25, 0.1))
    np.testing.assert_allclose(t.corners, corners * 2.0)
    s = v.scaled([0.2, 0.5])
    assert s.name == "L3" and s.spacing_mm is None and np.isnan(s.area_px)
    np.testing.assert_allclose(s.corners, corners * [0.2, 0.5])
    got = vertebrae_from_corners({"L1": corners.tolist(), "X9": corners}, spacing_mm=(0.3, 0.3))
    assert list(got) == ["L1"]
    assert got["L1"].name == "L1" and got["L1"].spacing_mm == (0.3, 0.3)
    np.testing.assert_allclose(got["L1"].corners, corners)


@pytest.mark.parametrize("tilt", [0.0, 6.0])
def test_extrapolated_bounds_are_the_end_plates_moved_out(tilt: float) -> None:
    verts = {n: _box(n, 40.0 + 70.0 * i, tilt=tilt) for i, n in enumerate(("L1", "L2", "L3", "L4"))}
    bounds, _, _ = kauppila_bounds(verts)
    l1, l4 = verts["L1"], verts["L4"]
    disc = 20.0 + tilt  # between the end-plate midpoints
    for bound, ant, post, out in (
        (bounds["T12/L1"], l1.anterior_superior, l1.posterior_superior, l1.cranial_direction),
        (bounds["L4/L5"], l4.anterior_inferior, l4.posterior_inferior, -l4.cranial_direction),
    ):
        shift = 0.5 * disc * out  # half the neighbouring disc, along the body's axis
        np.testing.assert_allclose(bound.anterior, ant + shift, atol=1e-9)
        np.testing.assert_allclose(bound.posterior, post + shift, atol=1e-9)


def test_an_implausible_t12_gives_one_warning() -> None:
    verts = _spine()
    far = _moved(verts, "T12", -90.0)
    _, _, warnings = kauppila_bounds(far)
    assert warnings == [
        "T12/L1 disc height x5.5 of the neighbouring disc: T12 ignored for the bound, which is "
        "extrapolated (partly visible or mis-segmented)"
    ]


def test_vertebra_transformed_keeps_sizes_by_default() -> None:
    v = Vertebra("L2", _box("L2", 0.0).corners, area_px=3500.0, fit_rms_px=1.5)
    t = v.transformed(lambda p: p + 1.0, None)
    assert (t.area_px, t.fit_rms_px, t.spacing_mm) == (3500.0, 1.5, None)
