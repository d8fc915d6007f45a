from __future__ import annotations

import numpy as np
import pytest

from aacscore.aorta import (
    DEFAULT_BAND_GEOMETRY,
    REFERENCE_ANTERIOR_HEIGHT_MM,
    BandError,
    BandGeometry,
    extract_band,
)
from aacscore.aorta.roi import BAND_SOURCE_SPACING_MM
from aacscore.io import Radiograph
from aacscore.kauppila import LEVELS
from tests.aorta.aorta_synth import SyntheticSpine

GEO = DEFAULT_BAND_GEOMETRY


def _col_of(offset_mm: float, geo: BandGeometry = GEO) -> float:
    return (offset_mm + geo.behind_mm) / geo.mm_per_col - 0.5


def test_geometry_rows_and_shape() -> None:
    assert GEO.shape == (4 * GEO.rows_per_level, 128)
    assert GEO.level_rows("L1") == (0, GEO.rows_per_level)
    assert GEO.level_rows("L4") == (3 * GEO.rows_per_level, 4 * GEO.rows_per_level)
    assert BandGeometry.from_dict(GEO.as_dict()) == GEO
    with pytest.raises(ValueError, match="level"):
        GEO.level_rows("L5")


def test_bounds_map_to_disc_midpoints() -> None:
    spine = SyntheticSpine()
    band = extract_band(spine.render(), spine.corners_px(), "right", spine.spacing)
    assert band.pixels.shape == GEO.shape
    assert band.pixels.dtype == np.float32
    assert not band.scale_estimated
    assert band.extrapolated_bounds == ()
    names = ["T12", *LEVELS, "L5"]
    c0 = _col_of(0.0)
    for k in range(5):
        x, y = band.to_film(k * GEO.rows_per_level - 0.5, c0)
        want = spine.to_px(spine.disc_anterior_mm(names[k], names[k + 1]))[0]
        np.testing.assert_allclose([float(x), float(y)], want, atol=1e-6)
    # Each level's row range spans from its upper to its lower bound.
    for i, lv in enumerate(LEVELS):
        assert band.level_rows[lv] == (i * GEO.rows_per_level, (i + 1) * GEO.rows_per_level)
        assert band.segment_rows(f"{lv}_posterior") == band.level_rows[lv]
    # Level lengths: half disc + body + half disc ~ 37 mm; body heights 28 mm.
    np.testing.assert_allclose(band.body_height_mm, 28.0, atol=1e-6)
    np.testing.assert_allclose(band.vertebral_height_mm, 28.0, atol=1e-6)
    assert all(34.0 < v < 40.0 for v in band.level_length_mm)


@pytest.mark.parametrize(("level", "offset"), [("L1", 20.0), ("L2", -4.0), ("L3", 45.0)])
def test_marker_lands_in_its_level_and_column(level: str, offset: float) -> None:
    spine = SyntheticSpine()
    c = spine.corners_mm[level]
    mid_anterior = (c[0] + c[3]) / 2
    # Marker `offset` mm in front of the body's anterior margin, perpendicular to it.
    normal = np.array([c[3, 1] - c[0, 1], -(c[3, 0] - c[0, 0])])
    normal /= np.linalg.norm(normal)
    marker = mid_anterior + offset * normal
    band = extract_band(spine.render([tuple(marker)]), spine.corners_px(), "right", spine.spacing)
    r, col = np.unravel_index(int(np.argmax(band.pixels)), band.pixels.shape)
    lo, hi = band.level_rows[level]
    assert lo <= r < hi
    assert abs(col - _col_of(offset)) <= 2.5
    # And the film -> band mapping of the marker agrees.
    br, bc = band.to_band(*spine.to_px(marker)[0])
    assert lo <= float(br) < hi
    assert abs(float(bc) - _col_of(offset)) < 0.5


def test_round_trip_band_film_band() -> None:
    spine = SyntheticSpine(spacing=(0.18, 0.22), rotation_deg=-12.0)
    band = extract_band(spine.render(), spine.corners_px(), "right", spine.spacing)
    rng = np.random.default_rng(0)
    rows = rng.uniform(0, GEO.n_rows - 1, 300)
    cols = rng.uniform(0, GEO.n_cols - 1, 300)
    x, y = band.to_film(rows, cols)
    r2, c2 = band.to_band(x, y)
    np.testing.assert_allclose(r2, rows, atol=1e-6)
    np.testing.assert_allclose(c2, cols, atol=1e-6)
    # film -> band -> film for points inside the band
    x3, y3 = band.to_film(r2, c2)
    np.testing.assert_allclose(x3, x, atol=1e-6)
    np.testing.assert_allclose(y3, y, atol=1e-6)
    # the stored grid is the mapping of integer pixel centres
    gx, gy = band.to_film(7, 11)
    assert float(gx) == pytest.approx(band.grid_x[7, 11])
    assert float(gy) == pytest.approx(band.grid_y[7, 11])
    # points far above the band have no band position
    far_r, far_c = band.to_band(band.grid_x[0, 20], band.grid_y[0, 20] - 5000)
    assert np.isnan(far_r) and np.isnan(far_c)


def test_mirrored_film_gives_the_same_canonical_band() -> None:
    markers = [(15.0, 20.0), (30.0, 70.0), (-3.0, 120.0)]
    right = SyntheticSpine(anterior_side="right")
    left = SyntheticSpine(anterior_side="left")
    img_r = right.render(markers)
    img_l = left.render(markers)
    np.testing.assert_array_equal(img_l, img_r[:, ::-1])
    b_r = extract_band(img_r, right.corners_px(), "right", right.spacing)
    b_l = extract_band(img_l, left.corners_px(), "left", left.spacing)
    np.testing.assert_allclose(b_l.pixels, b_r.pixels, atol=1e-5)
    np.testing.assert_allclose(b_l.grid_x, (img_r.shape[1] - 1) - b_r.grid_x, atol=1e-9)
    np.testing.assert_allclose(b_l.grid_y, b_r.grid_y, atol=1e-9)
    # Columns run posterior -> anterior in both: the vertebral body (bright) is at column 0.
    assert b_l.pixels[:, :4].mean() > b_l.pixels[:, -20:].mean()


def test_unknown_spacing_uses_vertebral_size() -> None:
    spine = SyntheticSpine(body_height=REFERENCE_ANTERIOR_HEIGHT_MM, spacing=(0.2, 0.2))
    img = spine.render([(20.0, 60.0)])
    known = extract_band(img, spine.corners_px(), "right", spine.spacing)
    est = extract_band(img, spine.corners_px(), "right", None)
    assert est.scale_estimated and not known.scale_estimated
    np.testing.assert_allclose(est.spacing_mm, (0.2, 0.2), rtol=1e-9)
    np.testing.assert_allclose(est.pixels, known.pixels, atol=1e-5)
    # A smaller patient (bodies 10 % shorter) on the same film scale: estimated scale is off by
    # the same 10 % and the band covers proportionally more film.
    small = SyntheticSpine(body_height=0.9 * REFERENCE_ANTERIOR_HEIGHT_MM)
    b = extract_band(small.render(), small.corners_px(), "right", None)
    assert b.spacing_mm[0] == pytest.approx(0.2 / 0.9, rel=1e-9)


@pytest.mark.parametrize(("lordosis", "curvature", "tol_mm"), [(0.0, 0.0, 1e-6), (4.0, 1.2, 6.0)])
def test_missing_t12_and_l5_are_extrapolated(
    lordosis: float, curvature: float, tol_mm: float
) -> None:
    kw = {"lordosis_deg": lordosis, "curvature_mm": curvature}
    full = SyntheticSpine(**kw)  # type: ignore[arg-type]
    part = SyntheticSpine(names=("L1", "L2", "L3", "L4"), **kw)  # type: ignore[arg-type]
    img = full.render()
    b_full = extract_band(img, full.corners_px(), "right", full.spacing)
    b_part = extract_band(img, part.corners_px(), "right", part.spacing)
    assert b_full.extrapolated_bounds == ()
    assert b_part.extrapolated_bounds == ("T12/L1", "L4/L5")
    # Straight spine, equal discs: the extrapolated bounds are exact; curved: close.
    for row in (-0.5, GEO.n_rows - 0.5):
        xf, yf = b_full.to_film(row, _col_of(0.0))
        xp, yp = b_part.to_film(row, _col_of(0.0))
        assert np.hypot(float(xf - xp), float(yf - yp)) * 0.2 < tol_mm
    # Inner bounds do not depend on T12/L5.
    xf, yf = b_full.to_film(GEO.rows_per_level - 0.5, _col_of(10.0))
    xp, yp = b_part.to_film(GEO.rows_per_level - 0.5, _col_of(10.0))
    assert np.hypot(float(xf - xp), float(yf - yp)) < 1e-6


def test_anisotropic_spacing_marker_column() -> None:
    spine = SyntheticSpine(spacing=(0.15, 0.3), rotation_deg=0.0)
    c = spine.corners_mm["L2"]
    marker = (c[0] + c[3]) / 2 + np.array([25.0, 0.0])
    band = extract_band(spine.render([tuple(marker)]), spine.corners_px(), "right", spine.spacing)
    _, bc = band.to_band(*spine.to_px(marker)[0])
    assert abs(float(bc) - _col_of(25.0)) < 1.0


def test_bad_inputs_raise_clear_errors() -> None:
    spine = SyntheticSpine()
    img = spine.render()
    corners = spine.corners_px()
    with pytest.raises(BandError, match="L3"):
        extract_band(img, {k: v for k, v in corners.items() if k != "L3"}, "right", None)
    with pytest.raises(BandError, match="anterior_side"):
        extract_band(img, corners, "left", spine.spacing)
    with pytest.raises(BandError, match="anterior_side"):
        extract_band(img, corners, "front", spine.spacing)
    with pytest.raises(BandError, match="4x2"):
        extract_band(img, {**corners, "L2": corners["L2"][:3]}, "right", None)
    with pytest.raises(BandError, match="spacing"):
        extract_band(img, corners, "right", (0.0, 0.2))
    with pytest.raises(BandError, match="2-D"):
        extract_band(img[None], corners, "right", None)
    with pytest.raises(BandError, match="outside") as outside:
        shifted = {k: v + 50000.0 for k, v in corners.items()}
        extract_band(img, shifted, "right", None)
    assert outside.value.code == "band_outside_film"
    with pytest.raises(BandError, match="L3") as missing:
        extract_band(img, {k: v for k, v in corners.items() if k != "L3"}, "right", None)
    assert missing.value.code == "band_failed"


def test_band_outside_film_is_reported() -> None:
    spine = SyntheticSpine()
    img = spine.render()
    band = extract_band(img[:, :700], spine.corners_px(), "right", spine.spacing)
    assert band.inside_fraction < 0.99
    assert extract_band(img, spine.corners_px(), "right", spine.spacing).inside_fraction == 1.0


def test_level_boundaries_run_along_the_kauppila_bounds() -> None:
    from aacscore.aorta.roi import band_bounds
    from aacscore.vertebrae import DISC_NAMES

    spine = SyntheticSpine()
    corners = spine.corners_px()
    band = extract_band(spine.render(), corners, "right", spine.spacing)
    bounds = band_bounds(corners)
    g = band.geometry
    for i, name in enumerate(DISC_NAMES):
        r = min(i * g.rows_per_level, g.n_rows) - 0.5
        x, y = band.to_film(np.full(7, r), np.linspace(0, g.n_cols - 1, 7))
        b = bounds[name]
        normal = np.array([-b.direction[1], b.direction[0]])
        off = (np.stack([x, y], axis=1) - b.point) @ normal
        assert np.max(np.abs(off)) < 0.05, name
        # the boundary row starts behind the anterior anchor and runs anteriorly
        along = (np.stack([x, y], axis=1) - b.anterior) @ b.direction
        assert along[0] < 0 < along[-1], name
        assert np.all(np.diff(along) > 0), name


def test_orientation_check_needs_a_majority_of_levels() -> None:
    spine = SyntheticSpine()
    img = spine.render()
    corners = spine.corners_px()

    def mirrored_levels(names: tuple[str, ...]) -> dict[str, np.ndarray]:
        out = dict(corners)
        for n in names:  # anterior and posterior corners swapped: that level faces left
            out[n] = corners[n][[1, 0, 3, 2]]
        return out

    # two of four levels disagree: not a majority, accepted
    extract_band(img, mirrored_levels(("L1", "L2")), "right", spine.spacing)
    with pytest.raises(BandError, match="anterior margin on the left but anterior_side='right'"):
        extract_band(img, mirrored_levels(("L1", "L2", "L3")), "right", spine.spacing)


def test_inside_fraction_is_the_share_of_band_pixels_on_the_film() -> None:
    spine = SyntheticSpine()
    img = spine.render()
    full = extract_band(img, spine.corners_px(), "right", spine.spacing)
    # crop the film at a column through the band: the share of band samples left of the crop
    cut = int(np.median(full.grid_x))
    band = extract_band(img[:, :cut], spine.corners_px(), "right", spine.spacing)
    expected = float(np.mean(full.grid_x <= cut - 0.5))
    assert band.inside_fraction == pytest.approx(expected, abs=1e-9)
    assert 0.3 < band.inside_fraction < 0.7
    # rows too: drop the film below the middle of the band
    cut_y = int(np.median(full.grid_y))
    band_y = extract_band(img[:cut_y], spine.corners_px(), "right", spine.spacing)
    assert band_y.inside_fraction == pytest.approx(float(np.mean(full.grid_y <= cut_y - 0.5)))


def test_degenerate_geometry_messages_name_the_problem() -> None:
    from aacscore.aorta.roi import band_bounds

    spine = SyntheticSpine()
    img = spine.render()
    corners = spine.corners_px()
    tiny = {k: v * 0.001 for k, v in corners.items()}
    with pytest.raises(BandError, match=r"too small to estimate the scale \(0\.\d\d px\)"):
        extract_band(img, tiny, "right", None)
    bounds = band_bounds(corners)
    partial = {k: v for k, v in bounds.items() if k != "L2/L3"}
    with pytest.raises(BandError, match="Kauppila bounds L2/L3 are missing"):
        extract_band(img, corners, "right", spine.spacing, bounds=partial)
    nan = {**corners, "L4": np.full((4, 2), np.nan)}
    with pytest.raises(BandError, match="corners of L4 contain non-finite values"):
        extract_band(img, nan, "right", spine.spacing)


def test_band_records_heights_and_side() -> None:
    spine = SyntheticSpine(body_height=28.0)
    band = extract_band(spine.render(), spine.corners_px(), "right", spine.spacing)
    assert band.anterior_side == "right"
    assert band.pixels.dtype == np.float32 and band.pixels.shape == band.geometry.shape
    assert band.vertebral_height_mm == pytest.approx((28.0,) * 4, abs=0.5)
    assert band.body_height_mm == pytest.approx((28.0,) * 4, abs=0.5)
    assert band.segment_rows("L3_posterior") == band.geometry.level_rows("L3")


FINE = BandGeometry(rows_per_level=64, behind_mm=8.0, front_mm=56.0, mm_per_col=0.25)
"""The shipped score model's band: 0.25 mm per column."""


class _Levels:
    """A stand-in for a JPEG 2000 film's area decoder: level ``k`` is every 2^k-th film pixel;
    records what it is asked and fails when told to."""

    levels = 5

    def __init__(self, film: np.ndarray, fail: bool = False) -> None:
        self.film, self.fail = film, fail
        self.asked: list[tuple[int, tuple[int, int, int, int]]] = []

    def __call__(self, level: int, area: tuple[int, int, int, int]) -> np.ndarray | None:
        self.asked.append((level, area))
        if self.fail:
            return None
        r0, r1, c0, c1 = area
        f = 2**level
        return np.ascontiguousarray(self.film[::f, ::f][r0:r1, c0:c1])


def _read(
    film: np.ndarray, spacing: tuple[float, float], finer: _Levels | None, reduction: int = 1
) -> Radiograph:
    """``film`` as a reader would hand it at JPEG 2000 level ``reduction`` (pixel i = film
    pixel 2^reduction i)."""
    f = 2**reduction
    return Radiograph(
        pixels=np.ascontiguousarray(film[::f, ::f]),
        spacing_mm=(spacing[0] * f, spacing[1] * f),
        source="dicom",
        photometric="MONOCHROME2",
        bits_stored=12,
        metadata={"Rows": film.shape[0], "Columns": film.shape[1]},
        reduction=reduction,
        finer=finer,
    )


def test_a_radiograph_is_cut_in_its_films_pixels() -> None:
    # 0.16 mm: level 1 (0.32 mm) is coarser than BAND_SOURCE_SPACING_MM, so level 0
    assert 0.16 <= BAND_SOURCE_SPACING_MM < 0.32
    spine = SyntheticSpine(spacing=(0.16, 0.16), shape=(1800, 1400))
    film = spine.render([(20.0, 60.0)])
    corners = spine.corners_px()
    ref = extract_band(film, corners, "right", spine.spacing, geometry=FINE)
    # an unreduced radiograph without other levels: its pixels
    plain = Radiograph(film, spine.spacing, "dicom", "MONOCHROME2", 12)
    same = extract_band(plain, corners, "right", spine.spacing, geometry=FINE)
    np.testing.assert_array_equal(same.pixels, ref.pixels)
    # a reduced one: the band's rectangle decoded at level 0, the film's own pixels
    finer = _Levels(film)
    band = extract_band(
        _read(film, spine.spacing, finer), corners, "right", spine.spacing, geometry=FINE
    )
    np.testing.assert_array_equal(band.pixels, ref.pixels)
    np.testing.assert_array_equal(band.grid_x, ref.grid_x)
    assert band.inside_fraction == ref.inside_fraction
    ((level, (r0, r1, c0, c1)),) = finer.asked
    assert level == 0
    assert r0 <= ref.grid_y.min() and r1 > ref.grid_y.max()
    assert c0 <= ref.grid_x.min() and c1 > ref.grid_x.max()


@pytest.mark.parametrize("spacing", [0.1, 0.14])
def test_a_radiograph_fine_enough_for_the_band_is_cut_from_its_pixels(spacing: float) -> None:
    # level 1 (0.2 or 0.28 mm) is fine enough: the band from the level-1 read's own pixels
    spine = SyntheticSpine(spacing=(spacing, spacing), shape=(2800, 2200))
    film = spine.render([(20.0, 60.0)])
    finer = _Levels(film)
    rad = _read(film, spine.spacing, finer)
    band = extract_band(rad, spine.corners_px(), "right", spine.spacing, geometry=FINE)
    assert finer.asked == []
    # the level-1 pixels with the corners in their frame: the same band up to the crop's edges
    half = {n: c / 2 for n, c in spine.corners_px().items()}
    coarse = extract_band(rad.pixels, half, "right", rad.spacing_mm, geometry=FINE)
    np.testing.assert_allclose(band.grid_x, coarse.grid_x * 2, atol=1e-9)
    np.testing.assert_allclose(band.pixels, coarse.pixels, atol=1e-3)


@pytest.mark.parametrize("reduction", [0, 2])
def test_the_band_comes_from_one_level_however_the_film_was_read(reduction: int) -> None:
    # a 0.14 mm JPEG 2000 film read at full resolution or at level 2: the band from level 1
    spine = SyntheticSpine(spacing=(0.14, 0.14), shape=(2000, 1600))
    film = spine.render([(20.0, 60.0)])
    corners = spine.corners_px()
    at_level_1 = extract_band(
        _read(film, spine.spacing, _Levels(film)), corners, "right", spine.spacing, geometry=FINE
    )
    finer = _Levels(film)
    band = extract_band(
        _read(film, spine.spacing, finer, reduction), corners, "right", spine.spacing, geometry=FINE
    )
    assert [level for level, _ in finer.asked] == [1]
    np.testing.assert_array_equal(band.pixels, at_level_1.pixels)
    # the same pixels without other levels (an uncompressed film): the film's own
    own = extract_band(
        _read(film, spine.spacing, None, 0), corners, "right", spine.spacing, geometry=FINE
    )
    np.testing.assert_array_equal(
        own.pixels, extract_band(film, corners, "right", spine.spacing, geometry=FINE).pixels
    )


def test_a_failed_finer_decode_cuts_the_band_from_the_reduced_pixels() -> None:
    spine = SyntheticSpine(spacing=(0.16, 0.16), shape=(1800, 1400))
    film = spine.render([(20.0, 60.0)])
    finer = _Levels(film, fail=True)
    rad = _read(film, spine.spacing, finer)
    band = extract_band(rad, spine.corners_px(), "right", spine.spacing, geometry=FINE)
    assert [level for level, _ in finer.asked] == [0]
    half = {n: c / 2 for n, c in spine.corners_px().items()}
    coarse = extract_band(rad.pixels, half, "right", rad.spacing_mm, geometry=FINE)
    np.testing.assert_allclose(band.pixels, coarse.pixels, atol=1e-3)
    ref = extract_band(film, spine.corners_px(), "right", spine.spacing, geometry=FINE)
    assert float(np.abs(band.pixels - ref.pixels).max()) > 0.05  # coarser than the film
