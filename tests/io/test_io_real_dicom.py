"""The reader on real DICOM files shipped with pydicom / pydicom-data (read offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGLosslessSV1

from aacscore.io import RadiographError, read_radiograph

META_KEYS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "Modality",
    "ViewPosition",
    "BodyPartExamined",
    "Manufacturer",
    "TransferSyntaxUID",
    "Rows",
    "Columns",
)


def linear_window(raw: npt.NDArray[Any], center: float, width: float) -> npt.NDArray[np.float64]:
    """DICOM PS3.3 C.11.2.1.2.1 LINEAR window mapped onto [0, 1]."""
    c, w = center - 0.5, width - 1.0
    return np.clip((raw.astype(np.float64) - c) / w + 0.5, 0.0, 1.0)


def correlation(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def test_rg1_cr_monochrome1_windowed_and_inverted(real: Any) -> None:
    rad = real.read("RG1_UNCI.dcm")
    raw = real.stored("RG1_UNCI.dcm")
    assert rad.source == "dicom"
    assert rad.photometric == "MONOCHROME1"
    assert rad.bits_stored == 15
    assert rad.pixels.dtype == np.float32
    assert rad.shape == (1955, 1841) == raw.shape
    assert 0.0 <= rad.pixels.min() < rad.pixels.max() <= 1.0
    # MONOCHROME1: high stored values are dark, so the bone-bright output anti-correlates.
    assert correlation(raw, rad.pixels) < -0.99
    # Window centre 15000 / width 30000 from the header, then inverted.
    expected = 1.0 - linear_window(raw, 15000, 30000)
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-5)


def test_rg1_invalid_spacing_is_unknown_with_warning(
    real: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rad = real.read("RG1_UNCI.dcm")
    assert real.dataset("RG1_UNCI.dcm").PixelSpacing == [0.0, 0.0]
    assert rad.spacing_mm is None
    assert rad.mean_spacing_mm is None
    assert rad.spacing_source is None
    assert any("PixelSpacing" in w and "0.000" in w for w in rad.warnings)
    # the warning is logged too (read again: the session cache read before caplog started)
    with caplog.at_level("WARNING", logger="aacscore.io"):
        read_radiograph(real.path("RG1_UNCI.dcm"))
    assert any("PixelSpacing" in r.getMessage() for r in caplog.records)


def test_rg1_metadata_without_patient(real: Any) -> None:
    rad = real.read("RG1_UNCI.dcm")
    for key in META_KEYS:
        assert key in rad.metadata, key
    assert rad.metadata["Modality"] == "CR"
    assert rad.metadata["ViewPosition"] == "PA"
    assert rad.metadata["Rows"] == 1955 and rad.metadata["Columns"] == 1841
    assert rad.metadata["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"
    assert "PatientName" not in rad.metadata and "PatientID" not in rad.metadata
    assert not any("CompressedSamples" in str(v) for v in rad.metadata.values())


def test_include_patient_adds_name(real: Any) -> None:
    rad = read_radiograph(real.path("RG3_UNCI.dcm"), include_patient=True)
    assert rad.metadata["PatientName"] == "CompressedSamples^RG3"


def test_rg3_monochrome1_10bit_no_spacing(real: Any) -> None:
    rad = real.read("RG3_UNCI.dcm")
    raw = real.stored("RG3_UNCI.dcm")
    assert rad.photometric == "MONOCHROME1" and rad.bits_stored == 10
    assert rad.spacing_mm is None
    assert rad.warnings == ()  # no spacing element at all: nothing to warn about
    assert correlation(raw, rad.pixels) < -0.9
    np.testing.assert_allclose(rad.pixels, 1.0 - linear_window(raw, 550, 1024), atol=1e-5)
    assert rad.metadata["BodyPartExamined"] == "EXTREMITY"


@pytest.mark.parametrize("stem", ["RG1", "RG3"])
def test_jpeg2000_lossless_equals_uncompressed(real: Any, stem: str) -> None:
    j2k = real.read(f"{stem}_J2KR.dcm")
    assert j2k.metadata["TransferSyntaxUID"] == JPEG2000Lossless
    np.testing.assert_array_equal(j2k.pixels, real.read(f"{stem}_UNCR.dcm").pixels)


@pytest.mark.parametrize("stem", ["RG1", "RG3"])
def test_jpeg2000_lossy_decodes(real: Any, stem: str) -> None:
    lossy = real.read(f"{stem}_J2KI.dcm")
    assert lossy.metadata["TransferSyntaxUID"] == JPEG2000
    # *_UNCI holds the decompressed lossy image: identical; the original is close.
    np.testing.assert_array_equal(lossy.pixels, real.read(f"{stem}_UNCI.dcm").pixels)
    original = real.read(f"{stem}_UNCR.dcm").pixels
    assert float(np.mean(np.abs(lossy.pixels - original))) < 0.01
    assert correlation(lossy.pixels, original) > 0.99


def test_voi_lut_sequence(real: Any, tmp_path: Path) -> None:
    ds = real.dataset("vlut_04.dcm")
    item = ds.VOILUTSequence[0]
    count, first, _bits = (int(v) for v in item.LUTDescriptor)
    lut = np.asarray(item.LUTData, dtype=np.float64)
    raw = real.stored("vlut_04.dcm").astype(np.int64)
    top = 2 ** int(lut.max()).bit_length() - 1
    expected = lut[np.clip(raw - first, 0, (count or 65536) - 1)] / top
    rad = real.read("vlut_04.dcm")
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)
    assert rad.pixels.min() >= 0.0 and rad.pixels.max() <= 1.0
    # This file's LUT is linear (v * 257); a gamma LUT in the same file must change the output.
    gamma = np.rint(65535.0 * (np.arange(count) / (count - 1)) ** 2.0).astype(np.uint16)
    ds.VOILUTSequence[0].LUTData = gamma.tolist()
    ds.save_as(tmp_path / "vlut_gamma.dcm")
    bent = read_radiograph(tmp_path / "vlut_gamma.dcm")
    np.testing.assert_allclose(bent.pixels, (raw / 255.0) ** 2.0, atol=1e-4)


def test_modality_lut_sequence(real: Any) -> None:
    ds = real.dataset("mlut_18.dcm")
    assert "ModalityLUTSequence" in ds and "VOILUTSequence" not in ds
    item = ds.ModalityLUTSequence[0]
    count, first, _bits = (int(v) for v in item.LUTDescriptor)
    lut = np.asarray(item.LUTData, dtype=np.float64)
    raw = real.stored("mlut_18.dcm").astype(np.int64)
    top = 2 ** int(lut.max()).bit_length() - 1
    expected = lut[np.clip(raw - first, 0, (count or 65536) - 1)] / top
    rad = real.read("mlut_18.dcm")
    assert rad.bits_stored == 12
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)


def test_lossless_jpeg_nm(real: Any) -> None:
    rad = real.read("JPEG-LL.dcm")  # 1024 x 256, signed 16-bit, PixelSpacing 2.26 mm
    assert rad.shape == (1024, 256)
    assert rad.metadata["TransferSyntaxUID"] == JPEGLosslessSV1
    assert 0.0 <= rad.pixels.min() <= rad.pixels.max() <= 1.0
    assert rad.spacing_mm is None
    assert any("2.26" in w for w in rad.warnings)


def test_lossless_jpeg_8bit_window(real: Any) -> None:
    rad = real.read("JPGLosslessP14SV1_1s_1f_8b.dcm")
    raw = real.stored("JPGLosslessP14SV1_1s_1f_8b.dcm")
    assert rad.photometric == "MONOCHROME2"
    np.testing.assert_allclose(rad.pixels, linear_window(raw, 127, 254), atol=1e-5)


def test_small_jpeg_ls_refused_by_default_and_decoded_with_min_size(real: Any) -> None:
    path = real.path("JPEGLSNearLossless_16.dcm")  # 50 x 10 pixels
    with pytest.raises(RadiographError, match="too small") as err:
        read_radiograph(path)
    assert "JPEGLSNearLossless_16.dcm" in str(err.value)
    rad = real.read("JPEGLSNearLossless_16.dcm", min_size=1)
    raw = real.stored("JPEGLSNearLossless_16.dcm")
    assert rad.shape == (50, 10)
    np.testing.assert_allclose(rad.pixels, raw / 65535.0, atol=1e-6)


def test_rgb_lossless_jpeg_converted_to_grey(real: Any) -> None:
    with pytest.raises(RadiographError, match="too small"):
        read_radiograph(real.path("SC_rgb_jpeg_gdcm.dcm"))
    jpeg = real.read("SC_rgb_jpeg_gdcm.dcm", min_size=1)
    plain = real.read("SC_rgb.dcm", min_size=1)
    assert jpeg.photometric == "RGB" and jpeg.pixels.ndim == 2
    assert any("colour" in w for w in jpeg.warnings)
    np.testing.assert_array_equal(jpeg.pixels, plain.pixels)
    rgb = real.stored("SC_rgb.dcm").astype(np.float64)
    luma = rgb @ np.array([0.299, 0.587, 0.114]) / 255.0
    np.testing.assert_allclose(plain.pixels, luma, atol=1e-6)


def test_real_multiframe_refused(real: Any) -> None:
    with pytest.raises(RadiographError, match="multi-frame"):
        read_radiograph(real.path("SC_rgb_2frame.dcm"))
