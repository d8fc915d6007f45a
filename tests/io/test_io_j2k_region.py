"""A reduced JPEG 2000 read and its finer rectangles (``Radiograph.region``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.encaps import get_frame
from pydicom.uid import JPEG2000Lossless

from aacscore.io import _j2k, read_radiograph
from aacscore.io.types import Radiograph
from aacscore.qc import check_radiograph
from tests.io.test_io_j2k import needs_glymur, needs_j2k_encoder
from tests.io.test_io_j2k import no_glymur as no_glymur  # fixture

BOX = (148, 764, 80, 532)
"""(row0, row1, col0, col1) in film pixels (a 1600 x 1300 film): whole pixels of levels 0-2."""


def j2k_film(factory: Any, ramp: Any, name: str = "fine.dcm", **kw: Any) -> Path:
    """A 12-bit lossless JPEG 2000 film of 1600 x 1300 at 0.05 mm."""
    needs_j2k_encoder()
    needs_glymur()
    ds = factory.dataset(pixels=ramp(1600, 1300, 12), PixelSpacing=[0.05, 0.05], **kw)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    return factory.write(name, ds)


def crop(rad: Radiograph, box: tuple[int, int, int, int], step: int) -> Any:
    """``box`` (film pixels) of a read whose pixel ``i`` is film pixel ``step * i``."""
    r0, r1, c0, c1 = (v // step for v in box)
    return rad.pixels[r0:r1, c0:c1]


def test_region_equals_crop_of_the_full_decode_at_its_level(dicom_factory: Any, ramp: Any) -> None:
    path = j2k_film(dicom_factory, ramp)
    coarse = read_radiograph(path, decode_spacing_mm=0.2)
    assert coarse.reduction == 2 and coarse.shape == (400, 325)
    assert coarse.spacing_mm == (0.2, 0.2) and coarse.film_shape == (1600, 1300)
    assert coarse.film_spacing_mm == (0.05, 0.05)
    # finest 0.1 mm: level 1, the same pixels as a level-1 read cropped
    half = read_radiograph(path, decode_spacing_mm=0.1)
    region = coarse.region(BOX, 0.1)
    assert region.step == 2 and region.spacing_mm == (0.1, 0.1)
    assert region.origin == (BOX[0] // 2, BOX[2] // 2)
    np.testing.assert_array_equal(region.pixels, crop(half, BOX, 2))
    # finest 0.05 mm (or finer than the film): full resolution, as the default read
    full = read_radiograph(path)
    for finest in (0.05, 0.01):
        region = coarse.region(BOX, finest)
        assert region.step == 1 and region.spacing_mm == (0.05, 0.05)
        assert region.origin == (BOX[0], BOX[2])
        np.testing.assert_array_equal(region.pixels, crop(full, BOX, 1))
    # as coarse as the read: a crop of its pixels
    same = coarse.region(BOX, 0.3)
    assert same.step == 4 and same.spacing_mm == (0.2, 0.2)
    np.testing.assert_array_equal(same.pixels, crop(coarse, BOX, 4))


def test_region_coordinates_are_film_pixels(dicom_factory: Any, ramp: Any) -> None:
    path = j2k_film(dicom_factory, ramp)
    coarse = read_radiograph(path, decode_spacing_mm=0.2)
    full = read_radiograph(path)
    rows, cols = np.array([160.0, 201.0]), np.array([120.0, 86.0])
    for finest, step in ((0.05, 1), (0.1, 2), (0.2, 4)):
        region = coarse.region(BOX, finest)
        r, c = region.to_region(rows, cols)
        np.testing.assert_allclose(r, rows / step - BOX[0] // step)
        np.testing.assert_allclose(c, cols / step - BOX[2] // step)
        # the film pixel (160, 120) is where the region's level has it
        assert region.pixels[int(r[0]), int(c[0])] == pytest.approx(
            float(full.pixels[160, 120]), abs=0.01
        )
    # a rectangle off the levels' pixels grows to whole pixels of the level
    grown = coarse.region((BOX[0] + 1, BOX[1] - 1, BOX[2] + 3, BOX[3] - 2), 0.2)
    assert grown.origin == (BOX[0] // 4, BOX[2] // 4)
    assert grown.pixels.shape == ((BOX[1] - BOX[0]) // 4, (BOX[3] - BOX[2]) // 4)


def test_region_is_clipped_to_the_film(dicom_factory: Any, ramp: Any) -> None:
    path = j2k_film(dicom_factory, ramp)
    coarse = read_radiograph(path, decode_spacing_mm=0.2)
    full = read_radiograph(path)
    region = coarse.region((1520, 1700, -20, 40), 0.05)
    assert region.origin == (1520, 0)
    np.testing.assert_array_equal(region.pixels, full.pixels[1520:1600, 0:40])
    with pytest.raises(ValueError, match="outside the film of shape"):
        coarse.region((1600, 2000, 0, 40), 0.05)
    with pytest.raises(ValueError, match="outside the film of shape"):
        coarse.region((0, 100, 1300, 1400), 0.3)


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_region_goes_through_the_grey_pipeline(
    dicom_factory: Any, ramp: Any, photometric: str
) -> None:
    # rescale, a window narrower than the stored range (clipping both ends) and inversion
    path = j2k_film(
        dicom_factory,
        ramp,
        photometric=photometric,
        RescaleSlope=2,
        RescaleIntercept=-100,
        WindowCenter=3000,
        WindowWidth=2500,
    )
    coarse = read_radiograph(path, decode_spacing_mm=0.2)
    full = read_radiograph(path)
    region = coarse.region(BOX, 0.05)
    np.testing.assert_array_equal(region.pixels, crop(full, BOX, 1))
    assert region.pixels.dtype == np.float32
    whole = coarse.region((0, 1600, 0, 1300), 0.05).pixels
    np.testing.assert_array_equal(whole, full.pixels)
    # the window clips both ends; bone bright either way: MONOCHROME1 inverted (the stored
    # ramp rises to the lower right)
    assert float(whole.min()) == 0.0 and float(whole.max()) == 1.0
    assert (whole[-1, -1] > whole[0, 0]) == (photometric == "MONOCHROME2")


def test_other_inputs_give_crops(dicom_factory: Any, ramp: Any, tmp_path: Path) -> None:
    path = dicom_factory.write("plain.dcm", pixels=ramp(1600, 1300, 12), PixelSpacing=[0.05, 0.05])
    rad = read_radiograph(path, decode_spacing_mm=0.2)
    assert rad.reduction == 0 and rad.finer is None and rad.shape == rad.film_shape
    region = rad.region(BOX, 0.2)
    assert region.step == 1 and region.origin == (BOX[0], BOX[2])
    assert region.spacing_mm == (0.05, 0.05)
    np.testing.assert_array_equal(region.pixels, crop(rad, BOX, 1))
    from PIL import Image

    png = tmp_path / "film.png"
    Image.fromarray((ramp(600, 500, 8)).astype(np.uint8)).save(png)
    image = read_radiograph(png, decode_spacing_mm=0.2)
    assert image.reduction == 0 and image.film_spacing_mm is None
    np.testing.assert_array_equal(
        image.region((10, 20, 30, 40), 0.25).pixels, image.pixels[10:20, 30:40]
    )


def test_a_full_read_decodes_coarser_levels_only_when_asked(dicom_factory: Any, ramp: Any) -> None:
    path = j2k_film(dicom_factory, ramp)
    full = read_radiograph(path)
    assert full.reduction == 0 and full.finer is not None and full.finer.levels >= 2
    # without `coarser`: a crop of its own pixels, as before
    own = full.region(BOX, 0.2)
    assert own.step == 1
    np.testing.assert_array_equal(own.pixels, crop(full, BOX, 1))
    # with it: the level-1 rectangle, as a level-1 read has it, and as a level-2 read gives it
    region = full.region(BOX, 0.1, coarser=True)
    assert region.step == 2 and region.spacing_mm == (0.1, 0.1)
    half = read_radiograph(path, decode_spacing_mm=0.1)
    np.testing.assert_array_equal(region.pixels, crop(half, BOX, 2))
    coarse = read_radiograph(path, decode_spacing_mm=0.2)
    np.testing.assert_array_equal(coarse.region(BOX, 0.1, coarser=True).pixels, region.pixels)
    # no coarser than the codestream holds
    deepest = full.region(BOX, 1e6, coarser=True)
    assert deepest.step == 2**full.finer.levels


def test_full_reads_without_glymur_have_no_other_levels(
    dicom_factory: Any, ramp: Any, no_glymur: None
) -> None:
    needs_j2k_encoder()
    ds = dicom_factory.dataset(pixels=ramp(600, 500, 12), PixelSpacing=[0.05, 0.05])
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    rad = read_radiograph(dicom_factory.write("plain_j2k.dcm", ds))
    assert rad.reduction == 0 and rad.finer is None
    assert rad.region(BOX, 0.2, coarser=True).step == 1


def test_failed_finer_decode_falls_back_to_a_crop(
    dicom_factory: Any, ramp: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    path = j2k_film(dicom_factory, ramp)
    coarse = read_radiograph(path, decode_spacing_mm=0.2)
    monkeypatch.setattr(_j2k, "decode_area", lambda *a, **k: None)
    with caplog.at_level(logging.WARNING, logger="aacscore.io.dicom"):
        region = coarse.region(BOX, 0.05)
    assert region.step == 4 and region.spacing_mm == (0.2, 0.2)
    np.testing.assert_array_equal(region.pixels, crop(coarse, BOX, 4))
    assert f"{path}: JPEG 2000 area decode at resolution level 0 failed" in caplog.text


def test_area_decode_needs_glymur(dicom_factory: Any, ramp: Any, no_glymur: None) -> None:
    needs_j2k_encoder()
    ds = dicom_factory.dataset(pixels=ramp(600, 500, 12), PixelSpacing=[0.05, 0.05])
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    data = bytes(get_frame(ds.PixelData, 0, number_of_frames=1))
    info = _j2k.parse_codestream(data)
    assert info is not None
    assert _j2k.decode_area(data, info, False, 0, (0, 10, 0, 10), "film") is None
    assert _j2k.decode(data, info, False, 1, "film") is None  # no reduced level either


def test_quality_checks_judge_the_film_size(dicom_factory: Any, ramp: Any) -> None:
    path = j2k_film(dicom_factory, ramp)
    coarse = read_radiograph(path, decode_spacing_mm=0.2)
    assert min(coarse.shape) < 512 <= min(coarse.film_shape)
    assert "low_resolution" not in check_radiograph(coarse).flags
