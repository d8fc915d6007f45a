"""The reader's own LINEAR window and identity rescale against pydicom's transforms."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_windowing

from aacscore.io import dicom as dicom_mod
from aacscore.io import read_radiograph


def window_dataset(center: Any, width: Any, function: str | None, **attrs: Any) -> Dataset:
    ds = Dataset()
    ds.BitsStored = 12
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.WindowCenter = center
    ds.WindowWidth = width
    if function is not None:
        ds.VOILUTFunction = function
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def pydicom_unit(values: Any, ds: Dataset) -> Any:
    """pydicom's window output mapped onto [0, 1] by its own output range."""
    out = apply_windowing(np.asarray(values), ds, 0)
    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = sorted(apply_windowing(np.array([-np.inf, np.inf]), ds, 0))
    return (out - lo) / (hi - lo)


@pytest.mark.parametrize("function", [None, "LINEAR", "LINEAR_EXACT"])
@pytest.mark.parametrize(("center", "width"), [(2048, 4096), (1500, 1001), (100.5, 2.0)])
def test_linear_window_equals_pydicom(function: str | None, center: float, width: float) -> None:
    # every stored value, and the window's edges exactly
    values = np.concatenate(
        [np.arange(4096), [center - width / 2, center + width / 2, center - 0.5, center]]
    )
    ds = window_dataset(center, width, function)
    mine = dicom_mod._linear_window(ds, values)
    assert mine is not None and mine.dtype == np.float64
    np.testing.assert_allclose(mine, pydicom_unit(values, ds), rtol=0, atol=1e-12)
    assert mine.min() == 0.0 and mine.max() == 1.0


def test_linear_window_takes_the_first_of_several_and_leaves_input_alone() -> None:
    values = np.arange(4096, dtype=np.float64)
    kept = values.copy()
    ds = window_dataset([3000.0, 100.0], [4001.0, 50.0], None)
    mine = dicom_mod._linear_window(ds, values)
    assert mine is not None
    np.testing.assert_allclose(mine, pydicom_unit(values, ds), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(values, kept)


@pytest.mark.parametrize(
    ("center", "width", "function"),
    [
        (2048, 4096, "SIGMOID"),  # pydicom's formula
        (2048, 1, "LINEAR"),  # a step: pydicom's special case
        (2048, 0.5, "LINEAR"),  # invalid: pydicom's error becomes the reader's warning
        (2048, 0, "LINEAR_EXACT"),
        (2048, 4096, ""),  # an empty function: pydicom refuses it
    ],
)
def test_other_windows_are_left_to_pydicom(center: float, width: float, function: str) -> None:
    ds = window_dataset(center, width, function)
    assert dicom_mod._linear_window(ds, np.arange(10)) is None


def test_sigmoid_and_step_windows_still_read(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    step = read_radiograph(
        dicom_factory.write("step.dcm", pixels=raw, WindowCenter=2048, WindowWidth=1)
    )
    np.testing.assert_array_equal(step.pixels, (raw > 2047.5).astype(np.float32))
    assert step.warnings == ()


def test_identity_rescale_changes_nothing(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    plain = read_radiograph(dicom_factory.write("plain.dcm", pixels=raw))
    ident = read_radiograph(
        dicom_factory.write("ident.dcm", pixels=raw, RescaleSlope="1.0", RescaleIntercept="0")
    )
    np.testing.assert_array_equal(ident.pixels, plain.pixels)
    shifted = read_radiograph(
        dicom_factory.write("shift.dcm", pixels=raw, RescaleSlope=1, RescaleIntercept=-1024)
    )
    # a real rescale with a window: the window applies to the rescaled values
    windowed = read_radiograph(
        dicom_factory.write(
            "shift_w.dcm",
            pixels=raw,
            RescaleSlope=1,
            RescaleIntercept=-1024,
            WindowCenter=0,
            WindowWidth=1001,
        )
    )
    np.testing.assert_array_equal(shifted.pixels, plain.pixels)  # no window: full range
    expected = np.clip((raw - 1024 + 0.5) / 1000.0 + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(windowed.pixels, expected, atol=1e-6)
