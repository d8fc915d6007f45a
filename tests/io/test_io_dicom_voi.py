"""The DICOM grey pipeline on synthetic files (no pydicom-data needed): MONOCHROME1 with a
window, VOI LUT sequences, rescale then window, and garbage above BitsStored.

Each expected value is computed by hand from DICOM PS3.3 C.11 (LINEAR window: values at or below
``c - 0.5 - (w - 1) / 2`` are 0, above ``c - 0.5 + (w - 1) / 2`` are 1, linear in between), then
inverted for MONOCHROME1 so that bone (low MONOCHROME1 values) is bright.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import get_encoder
from pydicom.sequence import Sequence
from pydicom.uid import UID, JPEG2000Lossless, JPEGLSLossless

from aacscore.io import read_radiograph


def linear_window(values: npt.NDArray[Any], center: float, width: float) -> npt.NDArray[Any]:
    """PS3.3 C.11.2.1.2.1 LINEAR window, output mapped onto [0, 1]."""
    return np.clip((values.astype(np.float64) - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0)


# stored values planted at fixed pixels, and what a MONOCHROME1 window c=1500, w=1001 makes of
# them: [999.5, 2000.5) is the linear part, 1 - ((v - 1499.5) / 1000 + 0.5) after inversion
PROBES = {(0, 0): 0, (0, 1): 999, (0, 2): 1000, (0, 3): 1500, (0, 4): 1750, (0, 5): 2001}
PROBE_EXPECTED = {(0, 0): 1.0, (0, 1): 1.0, (0, 2): 0.9995, (0, 3): 0.4995, (0, 4): 0.2495}
PROBE_EXPECTED[(0, 5)] = 0.0


def probed_ramp(ramp: Any, bits: int = 12) -> npt.NDArray[np.int64]:
    raw = ramp(300, 300, bits)
    for (r, c), v in PROBES.items():
        raw[r, c] = v
    return raw


def test_monochrome1_window_is_applied_then_inverted(dicom_factory: Any, ramp: Any) -> None:
    raw = probed_ramp(ramp)
    path = dicom_factory.write(
        "m1w.dcm", pixels=raw, photometric="MONOCHROME1", WindowCenter=1500, WindowWidth=1001
    )
    rad = read_radiograph(path)
    assert rad.photometric == "MONOCHROME1" and rad.warnings == ()
    for rc, value in PROBE_EXPECTED.items():
        assert rad.pixels[rc] == pytest.approx(value, abs=1e-6), rc
    np.testing.assert_allclose(rad.pixels, 1.0 - linear_window(raw, 1500, 1001), atol=1e-6)
    # bone bright: the lowest stored values (top-left of the ramp) come out white
    assert rad.pixels[:20, :20].mean() > 0.99 and rad.pixels[-20:, -20:].mean() < 0.01


def test_monochrome1_multi_valued_window_uses_the_first(dicom_factory: Any, ramp: Any) -> None:
    raw = probed_ramp(ramp)
    path = dicom_factory.write(
        "m1mv.dcm",
        pixels=raw,
        photometric="MONOCHROME1",
        WindowCenter=[1500.0, 3500.0],
        WindowWidth=[1001.0, 201.0],
        WindowCenterWidthExplanation=["SOFT", "HARD"],
    )
    rad = read_radiograph(path)
    for rc, value in PROBE_EXPECTED.items():
        assert rad.pixels[rc] == pytest.approx(value, abs=1e-6), rc
    np.testing.assert_allclose(rad.pixels, 1.0 - linear_window(raw, 1500, 1001), atol=1e-6)
    # the second window would give something clearly different
    assert np.abs(rad.pixels - (1.0 - linear_window(raw, 3500, 201))).max() > 0.5


def gamma_lut(count: int, top: int = 65535) -> npt.NDArray[np.int64]:
    """A non-linear LUT (square law) spanning 0..top."""
    return np.rint(top * (np.arange(count) / (count - 1)) ** 2).astype(np.int64)


def voi_lut_item(first: int, data: npt.NDArray[np.int64]) -> Dataset:
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [len(data), first, 16])
    item.add_new("LUTData", "US", [int(v) for v in data])
    item.LUTExplanation = "test gamma"
    return item


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_voi_lut_sequence_maps_through_the_lut(
    dicom_factory: Any, ramp: Any, photometric: str
) -> None:
    raw = ramp(300, 300, 12)
    raw[0, :4] = [0, 1000, 1999, 4095]
    first, lut = 1000, gamma_lut(2000)
    ds = dicom_factory.dataset(pixels=raw, photometric=photometric)
    ds.VOILUTSequence = Sequence([voi_lut_item(first, lut)])
    # a window in the same file is not used: the VOI LUT comes first
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    rad = read_radiograph(dicom_factory.write("voi.dcm", ds))
    assert rad.warnings == ()
    # below the first entry -> LUT[0]; beyond the last -> LUT[-1]; LUT output 16 bits -> /65535
    expected = lut[np.clip(raw - first, 0, len(lut) - 1)] / 65535.0
    if photometric == "MONOCHROME1":
        expected = 1.0 - expected
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)
    # hand-computed probes: stored 0 and 1000 hit LUT[0] = 0, 1999 hits LUT[999], 4095 LUT[1999]
    probes = [0.0, 0.0, 65535 * (999 / 1999) ** 2 / 65535, 1.0]
    if photometric == "MONOCHROME1":
        probes = [1.0 - p for p in probes]
    np.testing.assert_allclose(rad.pixels[0, :4], probes, atol=2e-5)


def test_voi_lut_indexes_the_rescaled_values(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    first, lut = 1500, gamma_lut(2500)
    ds = dicom_factory.dataset(pixels=raw, RescaleSlope=1.0, RescaleIntercept=500.0)
    ds.VOILUTSequence = Sequence([voi_lut_item(first, lut)])
    rad = read_radiograph(dicom_factory.write("voir.dcm", ds))
    expected = lut[np.clip(raw + 500 - first, 0, len(lut) - 1)] / 65535.0
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_rescale_then_first_window(dicom_factory: Any, ramp: Any, photometric: str) -> None:
    raw = ramp(300, 300, 12)
    raw[0, :3] = [1000, 2500, 3000]  # rescaled: 1000, 4000, 5000
    path = dicom_factory.write(
        "rw.dcm",
        pixels=raw,
        photometric=photometric,
        RescaleSlope=2.0,
        RescaleIntercept=-1000.0,
        WindowCenter=[3000.0, 100.0],
        WindowWidth=[4001.0, 50.0],
    )
    rad = read_radiograph(path)
    expected = linear_window(raw * 2.0 - 1000.0, 3000.0, 4001.0)
    # by hand: (1000 - 2999.5) / 4000 + 0.5 = 0.000125; (4000 - 2999.5) / 4000 + 0.5 = 0.750125
    probes = np.array([0.000125, 0.750125, 1.0])
    if photometric == "MONOCHROME1":
        expected, probes = 1.0 - expected, 1.0 - probes
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)
    np.testing.assert_allclose(rad.pixels[0, :3], probes, atol=1e-6)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_garbage_above_bits_stored_is_masked_before_the_window(
    dicom_factory: Any, ramp: Any, photometric: str
) -> None:
    # native data: pydicom drops the high bits too; the compressed case below needs the reader
    raw = ramp(300, 300, 10)
    garbage = np.random.default_rng(7).integers(1, 64, size=raw.shape) << 10  # bits 10..15
    dirty = raw | garbage
    assert (dirty >> 10 > 0).all() and ((dirty & 0x3FF) == raw).all()
    path = dicom_factory.write(
        "dirty_w.dcm",
        pixels=dirty,
        bits_stored=10,
        photometric=photometric,
        WindowCenter=512,
        WindowWidth=601,
    )
    rad = read_radiograph(path)
    assert rad.bits_stored == 10
    expected = linear_window(raw, 512, 601)
    if photometric == "MONOCHROME1":
        expected = 1.0 - expected
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)


@pytest.mark.parametrize("syntax", [JPEGLSLossless, JPEG2000Lossless])
def test_compressed_garbage_above_bits_stored_is_masked(
    dicom_factory: Any, ramp: Any, syntax: UID
) -> None:
    # pydicom masks native pixel data itself, but not what a JPEG-LS / JPEG 2000 codestream
    # of 16-bit precision decodes to: the reader has to drop the high bits
    if not get_encoder(syntax).is_available:
        pytest.skip(f"no encoder for {syntax.name}")
    raw = ramp(300, 300, 10)
    dirty = raw | np.random.default_rng(7).integers(1, 64, size=raw.shape) << 10
    ds = dicom_factory.dataset(pixels=dirty, bits_stored=16, photometric="MONOCHROME1")
    ds.compress(syntax)
    ds.BitsStored, ds.HighBit = 10, 9  # the header says 10 bits; the stream holds garbage above
    path = dicom_factory.write("dirty_c.dcm", ds)
    assert int(pydicom.dcmread(path).pixel_array.max()) > 1023  # the garbage survives decoding
    rad = read_radiograph(path)
    assert rad.bits_stored == 10
    np.testing.assert_allclose(rad.pixels, 1.0 - raw / 1023.0, atol=1e-6)
    ds.WindowCenter, ds.WindowWidth = 512, 601
    path_w = dicom_factory.write("dirty_cw.dcm", ds)
    np.testing.assert_allclose(
        read_radiograph(path_w).pixels, 1.0 - linear_window(raw, 512, 601), atol=1e-6
    )
