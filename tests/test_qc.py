import numpy as np

from aacscore.codes import FLAGS
from aacscore.io.types import Radiograph
from aacscore.qc import QC_FLAGS, check_radiograph


def _rad(
    px: np.ndarray,
    spacing: tuple[float, float] | None = (0.2, 0.2),
    warnings: tuple[str, ...] | list[str] = (),
) -> Radiograph:
    return Radiograph(
        pixels=px.astype(np.float32),
        spacing_mm=spacing,
        source="png",
        photometric="MONOCHROME2",
        bits_stored=16,
        warnings=tuple(warnings),
    )


def _film(n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(0.5 + 0.15 * rng.standard_normal((n, n)), 0.01, 0.99)


def test_clean_film_has_no_flags() -> None:
    assert check_radiograph(_rad(_film())).flags == ()


def test_collimation_borders_are_not_saturation() -> None:
    px = _film()
    px[:, :140] = 1.0  # white shutters on both sides, outside the central half
    px[:, -140:] = 0.0
    assert "saturated" not in check_radiograph(_rad(px)).flags


def test_each_flag_fires() -> None:
    px = _film()
    px[150:450, 150:450] = 1.0
    assert "saturated" in check_radiograph(_rad(px)).flags
    flat = np.full((600, 600), 0.5) + 0.01 * np.random.default_rng(1).standard_normal((600, 600))
    assert "low_contrast" in check_radiograph(_rad(flat)).flags
    assert "low_resolution" in check_radiograph(_rad(_film(300))).flags
    assert "spacing_unknown" in check_radiograph(_rad(_film(), spacing=None)).flags
    assert "reader_warning" in check_radiograph(_rad(_film(), warnings=["x"])).flags
    assert set(check_radiograph(_rad(flat, None)).flags) <= set(QC_FLAGS)
    assert set(QC_FLAGS) <= set(FLAGS)  # every qc flag is documented in aacscore.codes


def test_grey_levels_tell_a_label_map_from_a_film() -> None:
    from aacscore.qc import MIN_GREY_LEVELS, grey_levels

    rng = np.random.default_rng(0)
    film = np.clip(rng.normal(0.5, 0.15, (400, 300)), 0, 1).astype(np.float32)
    assert grey_levels(film) > 500
    labels = np.zeros((400, 300), np.float32)
    labels[100:200, 50:150] = 3 / 7
    labels[220:300, 60:160] = 5 / 7
    assert grey_levels(labels) == 3 < MIN_GREY_LEVELS
    eight_bit = np.round(film * 255) / 255  # an 8-bit film still has many levels
    assert 100 < grey_levels(eight_bit) <= 256
    assert grey_levels(np.zeros((0, 0), np.float32)) == 0


def test_contrast_of_a_large_film_is_measured_on_a_subsample_within_3e3() -> None:
    import pytest

    from aacscore.qc import SUBSAMPLE_ABOVE_PX

    rng = np.random.default_rng(0)
    px = np.clip(rng.normal(0.5, 0.15, (1200, 1000)), 0, 1).astype(np.float32)
    assert px.size > SUBSAMPLE_ABOVE_PX
    rad = Radiograph(px, (0.15, 0.15), "dicom", "MONOCHROME2", 12)
    lo, hi = np.percentile(px, [1.0, 99.0])
    assert check_radiograph(rad).contrast_range == pytest.approx(hi - lo, abs=3e-3)
