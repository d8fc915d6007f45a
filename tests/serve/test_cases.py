"""Case ids and the film's full-bit-depth values."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest

from aacscore.io import InputItem
from aacscore.serve.cases import CASE_ID, CaseIndex, case_id, film_values
from tests.serve.conftest import Folder


def test_case_ids_are_opaque_stable_and_name_no_file(folder: Folder) -> None:
    index = CaseIndex(folder.out)
    ids = [c.id for c in index.cases()]
    assert ids == [folder.dicom_id, folder.png_id, folder.missing_id]
    for cid in ids:
        assert CASE_ID.match(cid) and re.fullmatch(r"c[0-9a-f]{16}", cid)
        assert "patient" not in cid and "second" not in cid and "gone" not in cid
    assert [c.id for c in CaseIndex(folder.out).cases()] == ids  # stable
    assert case_id("a/b.dcm") != case_id("a/c.dcm")
    case = index.get(folder.dicom_id)
    assert case.stem == folder.dicom_stem and case.json_path.is_file()
    with pytest.raises(KeyError):
        index.get(folder.dicom_stem)  # the batch's stem is not an id


def _windowed_monochrome1(source: Path, out: Path) -> Path:
    ds = pydicom.dcmread(source)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.RescaleSlope = 2
    ds.RescaleIntercept = -1000
    ds.WindowCenter = 9000
    ds.WindowWidth = 4000
    ds.save_as(out)
    return out


def test_a_dicom_gives_its_modality_values_and_its_window(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    path = _windowed_monochrome1(simulated_film["dicom"], tmp_path / "w.dcm")
    item = InputItem(path)
    rad = item.read()
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    modality = stored * 2 - 1000
    pic = film_values(rad, item)
    assert pic.scale == 1.0 and pic.codes.shape == stored.shape
    assert (pic.window, pic.window_source, pic.invert) == ((9000.0, 4000.0), "dicom", True)
    values = pic.offset + pic.codes * pic.step
    assert np.abs(values - modality).max() <= pic.step / 2 + 1e-9
    # the reader's pixels are clipped by the window; these values are not
    outside = (modality < 7000) | (modality > 11000)
    assert outside.any()
    assert len(np.unique(rad.pixels[outside])) <= 2
    assert len(np.unique(pic.codes[outside])) > 100


def test_a_16_bit_png_gives_its_stored_values_shrunk_to_display_size(
    simulated_film: dict[str, Path],
) -> None:
    from PIL import Image

    item = InputItem(simulated_film["png"])
    rad = item.read()
    stored = np.asarray(Image.open(simulated_film["png"]), dtype=np.float64)
    pic = film_values(rad, item, max_px=500)
    _rows, cols = stored.shape
    assert max(pic.codes.shape) == 500 and pic.scale == pytest.approx(pic.codes.shape[1] / cols)
    assert pic.window_source == "range" and not pic.invert
    lo, hi = pic.value_range
    assert pic.window == pytest.approx(((lo + hi) / 2, hi - lo))
    assert stored.min() <= lo < hi <= stored.max() and hi - lo > 1000  # 16-bit values, not 8
    big = film_values(rad, item)
    values = big.offset + big.codes * big.step
    assert np.abs(values - stored).max() <= big.step / 2 + 1e-6
