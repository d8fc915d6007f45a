"""Geometry extraction on hand-built masks: corners, midpoints, bounds, plausibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.draw import polygon

from aacscore.spine.geometry import (
    check_plausibility,
    contour_from_mask,
    convex_outline,
    fit_quadrilateral,
    geometry_from_labels,
    min_area_rectangle,
    name_corners,
    spacing_contradiction,
    vertebrae_from_contours,
)
from aacscore.vertebrae import (
    DISC_NAMES,
    LABEL_VALUES,
    SpineError,
    Vertebra,
    kauppila_bounds,
    outer_disc_problem,
)
from tests.spine.spine_synth import make_film, rotate


def _draw(shape: tuple[int, int], corners: dict[str, np.ndarray]) -> np.ndarray:
    lab = np.zeros(shape, dtype=np.uint8)
    for name, c in corners.items():
        rr, cc = polygon(c[:, 1], c[:, 0], shape)
        lab[rr, cc] = LABEL_VALUES[name]
    return lab


def _stack(
    names: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5"),
    angle: float = 0.0,
    height: float = 50.0,
    depth: float = 70.0,
    gap: float = 20.0,
    shape: tuple[int, int] = (600, 400),
) -> dict[str, np.ndarray]:
    out = {}
    y = 40.0
    for n in names:
        c = np.array(
            [
                [165.0, y],
                [165.0 + depth, y + 2],
                [165.0 + depth, y + height],
                [165.0, y + height - 3],
            ]
        )
        out[n] = rotate(c, angle, (200.0, 300.0))
        y += height + gap
    return out


def test_axis_aligned_quads_corners_and_midpoints() -> None:
    truth = _stack()
    lab = _draw((600, 400), truth)
    geo = geometry_from_labels(lab, "left", (0.5, 0.5))
    assert geo.warnings == ()
    for n, c in truth.items():
        v = geo.vertebrae[n]
        # corner order AS, PS, PI, AI; raster corners are cut by < 1 px
        assert np.abs(v.corners - c).max() < 1.0
        assert v.height_mm == pytest.approx(
            0.5 * np.hypot(*((c[0] + c[1]) / 2 - (c[2] + c[3]) / 2)), abs=0.5
        )
    # disc midpoint = mean of the 4 end-plate corners around the disc
    t = truth
    expected = np.mean([t["L1"][2], t["L1"][3], t["L2"][0], t["L2"][1]], axis=0)
    assert np.hypot(*(geo.discs["L1/L2"] - expected)) < 0.8
    assert set(geo.bounds) == set(DISC_NAMES)
    for b in geo.bounds.values():
        assert not b.extrapolated
        assert b.direction[0] < -0.99  # anterior = left


def test_intersection_mode_is_exact_for_sharp_corners() -> None:
    truth = _stack(names=("L1",))
    lab = _draw((600, 400), truth)
    contour = contour_from_mask(lab == LABEL_VALUES["L1"])
    quad, rms = fit_quadrilateral(contour, corner_mode="intersection")
    named = name_corners(quad, (0.0, -1.0), (-1.0, 0.0))
    assert np.abs(named - truth["L1"]).max() < 0.55  # raster edges are within half a pixel
    assert rms < 0.5


@pytest.mark.parametrize("angle", [-25.0, -10.0, 7.0, 20.0])
def test_rotated_quads(angle: float) -> None:
    truth = _stack(angle=angle)
    lab = _draw((600, 400), truth)
    geo = geometry_from_labels(lab, "left", None)
    for n, c in truth.items():
        assert np.abs(geo.vertebrae[n].corners - c).max() < 1.2, n
    # bounds follow the end-plates: direction rotated by the same angle
    a = math.radians(angle)
    d = geo.bounds["L2/L3"].direction
    expected = np.array([-math.cos(a), -math.sin(a)])
    assert float(d @ expected) > 0.995


def test_mirrored_naming() -> None:
    truth = _stack()
    mirrored = {n: np.column_stack([399 - c[:, 0], c[:, 1]]) for n, c in truth.items()}
    lab = _draw((600, 400), mirrored)
    geo = geometry_from_labels(lab, "right", None)
    for n, c in mirrored.items():
        assert np.abs(geo.vertebrae[n].corners - c).max() < 1.0
    assert geo.bounds["L1/L2"].direction[0] > 0.99  # anterior = right


def test_rounded_corner_convention() -> None:
    """'outline' corners sit on the rounded rim at 45 degrees (simulator/reader convention)."""
    h, w, r = 300, 300, 12.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x0, x1, y0, y1 = 80.0, 220.0, 100.0, 200.0
    dx = np.maximum(np.maximum(x0 + r - xx, xx - (x1 - r)), 0)
    dy = np.maximum(np.maximum(y0 + r - yy, yy - (y1 - r)), 0)
    inside = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1) & (dx**2 + dy**2 <= r**2)
    contour = contour_from_mask(inside)
    inset = r * (1 - 1 / math.sqrt(2))
    expected = np.array(
        [
            [x0 + inset, y0 + inset],
            [x1 - inset, y0 + inset],
            [x1 - inset, y1 - inset],
            [x0 + inset, y1 - inset],
        ]
    )
    quad, _ = fit_quadrilateral(contour)
    named = name_corners(quad, (0.0, -1.0), (-1.0, 0.0))
    assert np.abs(named - expected).max() < 0.9
    sharp, _ = fit_quadrilateral(contour, corner_mode="intersection")
    named_sharp = name_corners(sharp, (0.0, -1.0), (-1.0, 0.0))
    assert np.abs(named_sharp - np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])).max() < 0.9


def test_min_area_rectangle_of_rotated_box() -> None:
    c = rotate(np.array([[0.0, 0.0], [40.0, 0.0], [40.0, 20.0], [0.0, 20.0]]), 30.0, (20.0, 10.0))
    rect = min_area_rectangle(c)
    sides = sorted(np.hypot(*(np.roll(rect, -1, axis=0) - rect).T))
    assert sides == pytest.approx([20.0, 20.0, 40.0, 40.0], abs=1e-6)


def test_missing_t12_is_extrapolated_and_flagged() -> None:
    truth = _stack(names=("L1", "L2", "L3", "L4", "L5"))
    lab = _draw((600, 400), truth)
    geo = geometry_from_labels(lab, "left", (0.5, 0.5))
    b = geo.bounds["T12/L1"]
    assert b.extrapolated
    assert any("T12" in w for w in geo.warnings)
    # half the L1/L2 disc height above L1's superior end-plate midpoint
    l1 = geo.vertebrae["L1"]
    disc = np.hypot(*(l1.inferior_midpoint - geo.vertebrae["L2"].superior_midpoint))
    assert np.hypot(*(b.point - l1.superior_midpoint)) == pytest.approx(disc / 2, abs=0.3)
    assert b.point[1] < l1.superior_midpoint[1]  # cranial


def test_missing_l5_warns_and_extrapolates() -> None:
    truth = _stack(names=("T12", "L1", "L2", "L3", "L4"))
    geo = geometry_from_labels(_draw((600, 400), truth), "left", (0.5, 0.5))
    assert geo.bounds["L4/L5"].extrapolated
    assert any("L5 not found" in w for w in geo.warnings)


def test_missing_required_level_fails() -> None:
    truth = _stack(names=("T12", "L1", "L3", "L4", "L5"))
    with pytest.raises(SpineError, match="L2"):
        geometry_from_labels(_draw((600, 400), truth), "left", (0.5, 0.5), source="film.dcm")


def test_out_of_order_levels_fail() -> None:
    truth = _stack()
    truth["L2"], truth["L3"] = truth["L3"], truth["L2"]
    with pytest.raises(SpineError, match="order"):
        geometry_from_labels(_draw((600, 400), truth), "left", (0.5, 0.5))


def test_implausible_size_in_mm_fails() -> None:
    truth = _stack()
    lab = _draw((600, 400), truth)
    with pytest.raises(SpineError, match="implausible body size"):
        geometry_from_labels(lab, "left", (0.1, 0.1))  # bodies 5 mm tall
    # without spacing only proportions are checked: passes
    geometry_from_labels(lab, "left", None)


def test_a_spacing_that_scales_every_body_out_of_range_contradicts_the_anatomy() -> None:
    vs = _verts(_stack())  # bodies 50 x 70 px: 25 x 35 mm at 0.5 mm
    assert spacing_contradiction(vs, (0.5, 0.5)) is None
    small = spacing_contradiction(vs, (0.05, 0.05))  # 2.5 x 3.5 mm
    assert small is not None and "smaller than adult lumbar bodies" in small
    large = spacing_contradiction(vs, (5.0, 5.0))  # 250 x 350 mm
    assert large is not None and "larger than adult lumbar bodies" in large
    # only the height out of range (rows 10x too fine): not a scale error of the whole film
    assert spacing_contradiction(vs, (0.05, 0.5)) is None
    # one misread body moves neither median
    one = dict(vs)
    one["L2"] = Vertebra("L2", np.asarray(vs["L2"].corners) * 0.1)
    assert spacing_contradiction(one, (0.5, 0.5)) is None
    assert spacing_contradiction({n: v for n, v in vs.items() if n != "L3"}, (0.05, 0.05)) is None


def test_gap_between_levels_fails() -> None:
    truth = _stack()
    for n in ("L3", "L4", "L5"):
        truth[n] = truth[n] + np.array([0.0, 60.0])
    lab = _draw((700, 400), truth)
    with pytest.raises(SpineError, match="distance between body centres"):
        geometry_from_labels(lab, "left", (0.5, 0.5))


def test_check_plausibility_relative_sizes() -> None:
    truth = _stack()
    vs, _ = vertebrae_from_contours(
        {n: contour_from_mask(_draw((600, 400), {n: c}) > 0) for n, c in truth.items()}
    )
    assert check_plausibility(vs, None) == []
    big = _stack(names=("L3",), height=130.0, depth=160.0)
    vs["L3"] = vertebrae_from_contours({"L3": contour_from_mask(_draw((600, 400), big) > 0)})[0][
        "L3"
    ]
    with pytest.raises(SpineError):
        check_plausibility(vs, None)


def test_fragmented_label_warns() -> None:
    truth = _stack()
    lab = _draw((600, 400), truth)
    lab[5:35, 5:35] = LABEL_VALUES["L3"]  # a second, large-ish L3 blob far away
    geo = geometry_from_labels(lab, "left", (0.5, 0.5))
    assert any("L3" in w and "split" in w for w in geo.warnings)
    assert np.abs(geo.vertebrae["L3"].corners - truth["L3"]).max() < 1.0


def test_synthetic_film_geometry() -> None:
    film = make_film(3, shape=(384, 256), spacing_mm=0.75, rotation_deg=6.0)
    geo = geometry_from_labels(film["labels"], "left", film["spacing_mm"])
    for n, c in film["corners"].items():
        assert np.abs(geo.vertebrae[n].corners - c).max() < 1.2
    bounds, discs, _ = kauppila_bounds(geo.vertebrae)
    assert set(bounds) == set(DISC_NAMES) and len(discs) == 6


def test_low_but_possible_body_height_is_a_warning() -> None:
    # bodies ~50 px tall, ~70 px deep: ~12.5 mm tall at 0.25 mm/px rows (a severe compression
    # fracture range), ~24 mm deep at 0.35 mm/px columns
    lab = _draw((600, 400), _stack())
    geo = geometry_from_labels(lab, "left", (0.25, 0.35))
    assert geo.vertebrae["L2"].height_mm is not None and geo.vertebrae["L2"].height_mm < 15
    assert any("low body height" in w for w in geo.warnings)
    assert not any("low body height" in w for w in geometry_from_labels(lab, "left", None).warnings)


def _verts(corners: dict[str, np.ndarray]) -> dict[str, Vertebra]:
    return {n: Vertebra(n, c) for n, c in corners.items()}


def test_partly_segmented_t12_is_ignored_for_the_bound() -> None:
    good = _stack()
    bounds, discs, warnings = kauppila_bounds(_verts(good))
    assert not bounds["T12/L1"].extrapolated and "T12/L1" in discs and warnings == []
    assert outer_disc_problem(_verts(good), "T12/L1") is None
    # A T12 fragment whose inferior corners sit far above L1 (a body cut by the field edge).
    bad = dict(good)
    bad["T12"] = good["T12"] - np.array([0.0, 90.0])
    bounds, discs, warnings = kauppila_bounds(_verts(bad))
    assert bounds["T12/L1"].extrapolated and "T12/L1" not in discs
    assert any("T12 ignored" in w and "x" in w for w in warnings)
    assert not any("T12 not found" in w for w in warnings)
    # The extrapolated bound equals the one without any T12.
    no_t12 = {n: c for n, c in good.items() if n != "T12"}
    ref, _, _ = kauppila_bounds(_verts(no_t12))
    np.testing.assert_allclose(bounds["T12/L1"].point, ref["T12/L1"].point)


def test_l5_overlapping_l4_is_ignored_for_the_bound() -> None:
    bad = _stack()
    bad["L5"] = bad["L5"] - np.array([0.0, 35.0])  # 20 px disc -> 15 px overlap (0.3 height)
    problem = outer_disc_problem(_verts(bad), "L4/L5")
    assert problem is not None and "overlap" in problem
    bounds, _, warnings = kauppila_bounds(_verts(bad))
    assert bounds["L4/L5"].extrapolated and any("L5 ignored" in w for w in warnings)
    # A larger but plausible L4/L5 disc (x2 of L3/L4) is kept.
    wide = _stack()
    wide["L5"] = wide["L5"] + np.array([0.0, 20.0])
    assert outer_disc_problem(_verts(wide), "L4/L5") is None


def _notched_l2() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A stack whose L2 mask has a deep slot from the superior end-plate (what an overlying
    plaque or gas can leave in a segmentation)."""
    truth = _stack()
    lab = _draw((600, 400), truth)
    top = int(truth["L2"][:2, 1].min())
    lab[top - 1 : top + 32, 180:205][lab[top - 1 : top + 32, 180:205] == LABEL_VALUES["L2"]] = 0
    return truth, lab


def test_notched_outline_is_fitted_to_its_hull_with_a_warning() -> None:
    truth, lab = _notched_l2()
    geo = geometry_from_labels(lab, "left", (0.5, 0.5))
    assert np.abs(geo.vertebrae["L2"].corners - truth["L2"]).max() < 1.0
    assert any("L2: outline not convex" in w for w in geo.warnings)
    contours = {"L2": contour_from_mask(lab == LABEL_VALUES["L2"])}
    raw, _ = vertebrae_from_contours(contours, "left", (0.5, 0.5), convex=False)
    assert np.abs(raw["L2"].corners - truth["L2"]).max() > 3.0  # what the hull avoids


def test_convex_outline_keeps_direction_and_hull() -> None:
    _, lab = _notched_l2()
    pts = contour_from_mask(lab == LABEL_VALUES["L2"])
    for p in (pts, pts[::-1]):
        h = convex_outline(p, step=0.5)
        assert np.hypot(*np.diff(h, axis=0).T).max() <= 0.5 + 1e-9
        area = 0.5 * (np.dot(h[:, 0], np.roll(h[:, 1], -1)) - np.dot(h[:, 1], np.roll(h[:, 0], -1)))
        orig = 0.5 * (np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1)))
        assert np.sign(area) == np.sign(orig)
        assert abs(area) > abs(orig) * 1.05  # the slot is bridged
    with pytest.raises(SpineError, match="degenerate"):
        convex_outline(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))


@pytest.mark.parametrize("seed", range(5))
def test_line_fit_is_the_principal_axis(seed: int) -> None:
    from aacscore.spine.geometry import _fit_line

    rng = np.random.default_rng(seed)
    angle = rng.uniform(-np.pi, np.pi)
    t = rng.uniform(-20, 20, 60)
    pts = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) + rng.normal(0, 0.7, (60, 2))
    shift = np.array([5.0, -3.0])
    centre, d = _fit_line(pts + shift)
    np.testing.assert_allclose(centre, pts.mean(axis=0) + shift, atol=1e-12)
    ref = np.linalg.svd(pts - pts.mean(axis=0), full_matrices=False)[2][0]
    assert np.hypot(*d) == pytest.approx(1.0)
    assert abs(d[0] * ref[1] - d[1] * ref[0]) < 1e-9  # parallel (either sign)
