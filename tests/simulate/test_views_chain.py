"""Projection phantoms of the non-lateral view classes and their imaging chains."""

from __future__ import annotations

import numpy as np
import pytest

from aacscore.simulate import views_chain as vc
from aacscore.simulate.case import simulate_case


def _mean(img: np.ndarray, at: tuple[float, float], r: int = 3) -> float:
    y, x = round(at[0]), round(at[1])
    return float(img[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].mean())


def _bits(img: np.ndarray) -> int | None:
    """The bit depth whose grey-level grid holds every value of ``img`` (None: none)."""
    for b in range(8, 17):
        top = (1 << b) - 1
        if np.allclose(img * top, np.rint(img * top), atol=1e-3):
            return b
    return None


@pytest.mark.parametrize("cls", sorted(vc.PHANTOMS))
@pytest.mark.parametrize("family", ["a", "b"])
def test_each_class_renders_deterministically_through_the_lateral_films_chain(
    cls: str, family: str
) -> None:
    a = vc.render_class(cls, np.random.default_rng(4), family)
    b = vc.render_class(cls, np.random.default_rng(4), family)
    c = vc.render_class(cls, np.random.default_rng(5), family)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    lateral = simulate_case(2, 0, spacing_mm=1.2).image
    assert a.dtype == lateral.dtype == np.float32 and a.ndim == 2
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert float(a.std()) > 0.05  # an exposed film, not a blank
    # quantised to a 10-16-bit grid like the simulator's films, and noisy like them
    assert _bits(a) is not None and _bits(a) >= 10
    assert _bits(lateral) is not None
    assert len(np.unique(a)) > 200


def test_unknown_class_or_family_is_refused() -> None:
    with pytest.raises(ValueError, match="no phantom"):
        vc.render_class("lateral_lumbar", np.random.default_rng(0))
    ph = vc.ap_lumbar(np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown simulator family"):
        vc.radiograph(ph, np.random.default_rng(0), "c")


@pytest.mark.parametrize("seed", range(4))
def test_ap_lumbar_shows_bilateral_pedicle_rings(seed: int) -> None:
    ph = vc.ap_lumbar(np.random.default_rng(seed))
    lm = ph.landmarks
    left, right, body = lm["L3_pedicle_left"], lm["L3_pedicle_right"], lm["L3"]
    # one pedicle each side of the body's centre line, at about the same height
    assert left[1] < body[1] < right[1]
    assert abs(left[0] - right[0]) < 0.5 * abs(right[1] - left[1])
    for c in (left, right):
        y, x = round(c[0]), round(c[1])
        rim = max(ph.bone[y, x - k] for k in range(1, 12))
        assert rim > ph.bone[y, x] * 1.15  # a bright cortical ring round a darker centre


@pytest.mark.parametrize("seed", range(4))
def test_chest_has_dark_lung_fields_either_side_of_the_spine(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ph = vc.chest_pa(rng)
    lm = ph.landmarks
    assert lm["lung_left"][1] < lm["mediastinum"][1] < lm["lung_right"][1]
    for side in ("lung_left", "lung_right"):  # air: much less water on the beam's path
        assert _mean(ph.soft, lm[side]) < 0.75 * _mean(ph.soft, lm["mediastinum"])
    for family in ("a", "b"):
        img = vc.radiograph(ph, np.random.default_rng(seed), family)
        mid = _mean(img, lm["mediastinum"])
        assert _mean(img, lm["lung_left"]) < mid and _mean(img, lm["lung_right"]) < mid


@pytest.mark.parametrize("seed", range(4))
def test_lateral_thoracic_has_aerated_lung_in_front_of_a_bony_spine(seed: int) -> None:
    ph = vc.lateral_thoracic(np.random.default_rng(seed))
    lm = ph.landmarks
    assert _mean(ph.bone, lm["T7"]) > 5.0  # bone on the beam's path through the body
    assert _mean(ph.soft, lm["lung"]) < 0.8 * float(ph.soft.max())
    img = vc.radiograph(ph, np.random.default_rng(seed), "a")
    assert _mean(img, lm["lung"]) < _mean(img, lm["T7"])


def test_lateral_thoracic_ribs_cross_the_field() -> None:
    ph = vc.lateral_thoracic(np.random.default_rng(1))
    # ribs: thin bony bands away from the spine, many of them along a vertical line
    _, x = ph.landmarks["lung"]
    col = ph.bone[:, round(x)]
    bands = np.count_nonzero(np.diff((col > 2.0).astype(np.int8)) == 1)
    assert bands >= 4


def test_pelvis_has_both_femoral_heads_and_a_sacrum() -> None:
    for seed in range(6):
        ph = vc.pelvis_hip(np.random.default_rng(seed))
        lm = ph.landmarks
        assert lm["femoral_head_left"][1] < lm["sacrum"][1] < lm["femoral_head_right"][1]
        h, w = ph.bone.shape
        inside = [
            k
            for k in ("femoral_head_left", "femoral_head_right")
            if 0 <= lm[k][0] < h and 0 <= lm[k][1] < w
        ]
        for k in inside:
            assert _mean(ph.bone, lm[k]) > 10.0  # a sphere of bone on the path


def test_grid_maps_millimetres_to_pixels_both_ways() -> None:
    g = vc.Grid(np.random.default_rng(0), (200.0, 300.0), (10.0, -20.0), 7.0)
    r, c = g.to_px(30.0, 5.0)
    assert abs(float(g.x[round(r), round(c)]) - 30.0) < g.spacing
    assert abs(float(g.y[round(r), round(c)]) - 5.0) < g.spacing
    assert g.window(1e4, 1e4, 1e4 + 1, 1e4 + 1) is None


def _frontal_body(**kw: float) -> tuple[vc.Grid, np.ndarray]:
    g = vc.Grid(np.random.default_rng(0), (120.0, 120.0), (0.0, 0.0), 0.0, long_px=(300, 300))
    args = dict(hw=22.0, hh=13.0, depth=32.0, t=1.2, trab=0.3, ang=0.0, plate=1.0)
    args.update(kw)
    return g, vc.column(g, 0.0, 0.0, **args)  # type: ignore[arg-type]


def test_frontal_body_tilt_spreads_the_end_plates_beyond_the_upright_body() -> None:
    g, upright = _frontal_body()
    _, tilted = _frontal_body(tilt=float(np.radians(20)))
    col = g.shape[1] // 2
    rows_up = np.flatnonzero(upright[:, col] > 0.5)
    rows_tilt = np.flatnonzero(tilted[:, col] > 0.5)
    # a 32 mm deep body tipped 20 degrees projects ~ 32 tan(20) = 11.6 mm taller
    extra_mm = (np.ptp(rows_tilt) - np.ptp(rows_up)) * g.spacing
    assert 8.0 < extra_mm < 14.0
    assert abs(float(tilted.sum() - upright.sum())) < 0.02 * float(upright.sum())  # same bone


def test_frontal_body_waist_narrows_it_at_mid_height_only() -> None:
    g, straight = _frontal_body()
    _, waisted = _frontal_body(waist=0.12)
    mid = g.shape[0] // 2
    near_plate = mid - round(12.0 / g.spacing)

    def width(img: np.ndarray, row: int) -> float:
        return float(np.count_nonzero(img[row] > 0.5) * g.spacing)

    assert width(waisted, mid) < width(straight, mid) - 3.0
    assert abs(width(waisted, near_plate) - width(straight, near_plate)) < 1.5
