"""The DICOM reader on hand-made files: LUT pipeline, spacing, metadata and bad input."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.pixels import get_encoder
from pydicom.uid import (
    MPEG2MPML,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from aacscore.io import RadiographError, read_radiograph, read_radiograph_bytes

# --- grey pipeline ------------------------------------------------------------------------


def test_monochrome2_full_stored_range(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 320, 12)
    rad = read_radiograph(dicom_factory.write("a.dcm", pixels=raw))
    assert rad.pixels.dtype == np.float32 and rad.shape == (300, 320)
    assert rad.source == "dicom" and rad.photometric == "MONOCHROME2" and rad.bits_stored == 12
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)
    assert rad.pixels.min() == pytest.approx(raw.min() / 4095.0)
    assert rad.pixels.max() == 1.0
    assert rad.warnings == ()


def test_high_bits_above_bits_stored_are_masked(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    dirty = raw | 0xF000  # garbage (e.g. overlay) bits above BitsStored
    rad = read_radiograph(dicom_factory.write("dirty.dcm", pixels=dirty))
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)


def test_signed_pixels_are_sign_extended(dicom_factory: Any, ramp: Any) -> None:
    values = ramp(300, 300, 12) - 2048  # -2048..2047
    unextended = values & 0x0FFF  # two's complement in the low 12 bits only
    path = dicom_factory.write("signed.dcm", pixels=unextended, signed=True)
    rad = read_radiograph(path)
    np.testing.assert_allclose(rad.pixels, (values + 2048) / 4095.0, atol=1e-6)


def test_monochrome1_is_inverted(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    rad = read_radiograph(dicom_factory.write("m1.dcm", pixels=raw, photometric="MONOCHROME1"))
    assert rad.photometric == "MONOCHROME1"
    np.testing.assert_allclose(rad.pixels, 1.0 - raw / 4095.0, atol=1e-6)


def test_inverse_presentation_lut_on_monochrome2(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    path = dicom_factory.write("inv.dcm", pixels=raw, PresentationLUTShape="INVERSE")
    np.testing.assert_allclose(read_radiograph(path).pixels, 1.0 - raw / 4095.0, atol=1e-6)


def test_window_uses_first_value_after_rescale(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    path = dicom_factory.write(
        "win.dcm",
        pixels=raw,
        RescaleSlope=2.0,
        RescaleIntercept=-1000.0,
        WindowCenter=[3000.0, 100.0],
        WindowWidth=[4001.0, 50.0],
    )
    value = raw * 2.0 - 1000.0
    expected = np.clip((value - 2999.5) / 4000.0 + 0.5, 0.0, 1.0)
    rad = read_radiograph(path)
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)
    assert 0.0 < rad.pixels.mean() < 1.0


def test_rescale_without_window_uses_transformed_range(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 10)
    path = dicom_factory.write(
        "resc.dcm", pixels=raw, bits_stored=10, RescaleSlope=-1.0, RescaleIntercept=100.0
    )
    # stored range [0, 1023] -> [-923, 100]; a negative slope reverses the order
    np.testing.assert_allclose(read_radiograph(path).pixels, 1.0 - raw / 1023.0, atol=1e-6)


def test_sigmoid_window(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    path = dicom_factory.write(
        "sig.dcm", pixels=raw, WindowCenter=2048, WindowWidth=1000, VOILUTFunction="SIGMOID"
    )
    expected = 1.0 / (1.0 + np.exp(-4.0 * (raw - 2048.0) / 1000.0))
    np.testing.assert_allclose(read_radiograph(path).pixels, expected, atol=1e-5)


def test_invalid_window_falls_back_with_warning(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    path = dicom_factory.write("w0.dcm", pixels=raw, WindowCenter=2000, WindowWidth=0)
    rad = read_radiograph(path)
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)
    assert any("window" in w.lower() for w in rad.warnings)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, JPEGLSLossless])
def test_compressed_round_trip_is_lossless(
    dicom_factory: Any, ramp: Any, syntax: pydicom.uid.UID
) -> None:
    if not get_encoder(syntax).is_available:
        pytest.skip(f"no encoder for {syntax.name}")
    raw = ramp(256, 260, 12)
    plain = read_radiograph(dicom_factory.write("plain.dcm", pixels=raw))
    ds = dicom_factory.dataset(pixels=raw)
    ds.compress(syntax)
    packed = read_radiograph(dicom_factory.write("packed.dcm", ds))
    assert packed.metadata["TransferSyntaxUID"] == syntax
    np.testing.assert_array_equal(packed.pixels, plain.pixels)


def test_dicom_without_preamble(dicom_factory: Any, ramp: Any, tmp_path: Path) -> None:
    raw = ramp(300, 300, 12)
    ds = dicom_factory.dataset(pixels=raw)
    del ds.file_meta
    ds.preamble = None
    path = tmp_path / "bare.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True)  # dataset only, no file meta
    assert path.read_bytes()[128:132] != b"DICM"
    rad = read_radiograph(path)
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)
    assert "TransferSyntaxUID" not in rad.metadata


# --- spacing ----------------------------------------------------------------------------


def test_pixel_spacing(dicom_factory: Any) -> None:
    rad = read_radiograph(dicom_factory.write("ps.dcm", PixelSpacing=[0.15, 0.14]))
    assert rad.spacing_mm == pytest.approx((0.15, 0.14))
    assert rad.spacing_source == "PixelSpacing"
    assert rad.mean_spacing_mm == pytest.approx(0.145)
    assert rad.warnings == ()


def test_imager_spacing_divided_by_magnification(dicom_factory: Any) -> None:
    path = dicom_factory.write(
        "ips.dcm",
        ImagerPixelSpacing=[0.2, 0.2],
        EstimatedRadiographicMagnificationFactor=1.25,
    )
    rad = read_radiograph(path)
    assert rad.spacing_mm == pytest.approx((0.16, 0.16))
    assert rad.spacing_source == "ImagerPixelSpacing"


def test_pixel_spacing_preferred_over_imager(dicom_factory: Any) -> None:
    path = dicom_factory.write("both.dcm", PixelSpacing=[0.1, 0.1], ImagerPixelSpacing=[0.2, 0.2])
    assert read_radiograph(path).spacing_mm == pytest.approx((0.1, 0.1))


def test_invalid_pixel_spacing_falls_back_to_imager(dicom_factory: Any) -> None:
    path = dicom_factory.write("fb.dcm", PixelSpacing="0\\0", ImagerPixelSpacing=[0.18, 0.18])
    rad = read_radiograph(path)
    assert rad.spacing_mm == pytest.approx((0.18, 0.18))
    assert rad.spacing_source == "ImagerPixelSpacing"
    assert len(rad.warnings) == 1 and "PixelSpacing '0\\0'" in rad.warnings[0]


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("PixelSpacing", "0.000\\0.000"),
        ("PixelSpacing", "-0.1\\-0.1"),
        ("PixelSpacing", "2.5\\2.5"),
        ("PixelSpacing", "0.1"),
        ("ImagerPixelSpacing", "0\\0.1"),
        ("ImagerPixelSpacing", "3\\3"),
    ],
)
def test_implausible_spacing_is_unknown(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture, keyword: str, value: str
) -> None:
    path = dicom_factory.write("bad.dcm", **{keyword: value})
    with caplog.at_level("WARNING", logger="aacscore.io"):
        rad = read_radiograph(path)
    assert rad.spacing_mm is None and rad.spacing_source is None
    assert len(rad.warnings) == 1 and keyword in rad.warnings[0]
    assert "unknown" in rad.warnings[0]
    assert any(keyword in r.getMessage() and "bad.dcm" in r.getMessage() for r in caplog.records)


def test_unparsable_spacing_is_unknown(dicom_factory: Any) -> None:
    path = dicom_factory.write("nan.dcm", PixelSpacing="0.125\\0.125")
    data = path.read_bytes()
    assert data.count(b"0.125\\0.125") == 1
    path.write_bytes(data.replace(b"0.125\\0.125", b"abcde\\fghij"))  # same length
    rad = read_radiograph(path)
    assert rad.spacing_mm is None
    assert any("abc" in w and "cannot be parsed" in w for w in rad.warnings)


def test_unusable_magnification_is_ignored_with_warning(dicom_factory: Any) -> None:
    path = dicom_factory.write(
        "ermf.dcm", ImagerPixelSpacing=[0.2, 0.2], EstimatedRadiographicMagnificationFactor=0
    )
    rad = read_radiograph(path)
    assert rad.spacing_mm == pytest.approx((0.2, 0.2))
    assert any("Magnification" in w for w in rad.warnings)


def test_user_spacing_overrides_header(dicom_factory: Any) -> None:
    path = dicom_factory.write("u.dcm", PixelSpacing="0\\0")
    rad = read_radiograph(path, spacing_mm=0.2)
    assert rad.spacing_mm == (0.2, 0.2) and rad.spacing_source == "user"
    assert rad.warnings == ()
    assert read_radiograph(path, spacing_mm=(0.1, 0.12)).spacing_mm == (0.1, 0.12)
    with pytest.raises(ValueError, match="spacing_mm"):
        read_radiograph(path, spacing_mm=-1.0)


# --- metadata ---------------------------------------------------------------------------


def test_metadata_and_patient_privacy(dicom_factory: Any) -> None:
    path = dicom_factory.write("meta.dcm")
    meta = read_radiograph(path).metadata
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert meta[key].startswith("1.2.826.0.1.3680043")
    assert meta["Modality"] == "CR" and meta["ViewPosition"] == "LL"
    assert meta["BodyPartExamined"] == "LSPINE" and meta["Manufacturer"] == "aacscore tests"
    assert meta["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"
    assert meta["Rows"] == 300 and meta["Columns"] == 300
    assert "PatientName" not in meta and "PatientID" not in meta
    assert "Doe" not in repr(meta) and "P-0001" not in repr(meta)
    full = read_radiograph(path, include_patient=True).metadata
    assert full["PatientName"] == "Doe^Jane" and full["PatientID"] == "P-0001"


def test_metadata_only_present_keys(dicom_factory: Any) -> None:
    ds = dicom_factory.dataset()
    del ds.ViewPosition
    del ds.Manufacturer
    meta = read_radiograph(dicom_factory.write("few.dcm", ds)).metadata
    assert "ViewPosition" not in meta and "Manufacturer" not in meta
    assert meta["Modality"] == "CR"


def test_header_is_kept_without_pixel_data(dicom_factory: Any, tmp_path: Path) -> None:
    # > 1 MB of pixel data, so deferred: the header must not depend on the file afterwards
    path = dicom_factory.write("big.dcm", rows=1100, cols=1000)
    rad = read_radiograph(path)
    src = pydicom.dcmread(path, stop_before_pixels=True)
    path.unlink()
    header = rad.header
    assert header is not None and "PixelData" not in header
    assert header.SOPInstanceUID == src.SOPInstanceUID and header.PatientID == src.PatientID
    assert list(header.keys()) == list(src.keys())
    assert header.file_meta.TransferSyntaxUID == src.file_meta.TransferSyntaxUID
    assert "header" not in repr(rad) and rad.info.header is header
    # zip members too (read from memory)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(dicom_factory.write("small.dcm"), "m/small.dcm")
    member = read_radiograph_bytes(
        zipfile.ZipFile(archive).read("m/small.dcm"), "a.zip:m/small.dcm"
    )
    assert member.header is not None and member.header.Modality == "CR"


# --- bad input --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RadiographError, match="file not found") as err:
        read_radiograph(tmp_path / "nope.dcm")
    assert err.value.path.endswith("nope.dcm")
    assert "nope.dcm" in str(err.value)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(RadiographError, match="empty file"):
        read_radiograph(tmp_path / "empty.dcm")
    with pytest.raises(RadiographError, match="empty file"):
        read_radiograph_bytes(b"", "x.zip:empty.dcm")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(RadiographError, match="directory"):
        read_radiograph(tmp_path)


@pytest.mark.parametrize("name", ["random.dcm", "random.bin", "random"])
def test_random_bytes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(RadiographError, match="not a DICOM or image file") as err:
        read_radiograph(path)
    assert name in str(err.value)


def test_truncated_pixel_data(dicom_factory: Any) -> None:
    path = dicom_factory.write("trunc.dcm")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RadiographError, match="truncated") as err:
        read_radiograph(path)
    assert "trunc.dcm" in str(err.value)


def test_truncated_header(dicom_factory: Any) -> None:
    path = dicom_factory.write("head.dcm")
    data = path.read_bytes()
    uid = str(pydicom.dcmread(path).SOPInstanceUID).encode()
    cut = data.index(uid, 140) + len(uid) // 2  # inside the dataset's SOPInstanceUID value
    path.write_bytes(data[:cut])
    with pytest.raises(RadiographError, match="truncated"):
        read_radiograph(path)


def test_header_only(dicom_factory: Any) -> None:
    path = dicom_factory.write("hdr.dcm", with_pixels=False)
    with pytest.raises(RadiographError, match="no pixel data"):
        read_radiograph(path)


def test_multiframe(dicom_factory: Any) -> None:
    path = dicom_factory.write("mf.dcm", frames=3)
    with pytest.raises(RadiographError, match=r"multi-frame image \(3 frames\)"):
        read_radiograph(path)


def test_palette_colour_refused(dicom_factory: Any) -> None:
    path = dicom_factory.write(
        "pal.dcm", bits_allocated=8, bits_stored=8, photometric="PALETTE COLOR"
    )
    with pytest.raises(RadiographError, match="colour"):
        read_radiograph(path)


def test_four_sample_colour_refused(dicom_factory: Any) -> None:
    pixels = np.zeros((300, 300, 4), dtype=np.uint8)
    path = dicom_factory.write(
        "argb.dcm", pixels=pixels, samples=4, photometric="ARGB", bits_allocated=8, bits_stored=8
    )
    with pytest.raises(RadiographError, match="colour"):
        read_radiograph(path)


def test_rgb_screenshot_converted_with_warning(dicom_factory: Any, ramp: Any) -> None:
    grey = ramp(300, 300, 8)
    rgb = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    path = dicom_factory.write(
        "sc.dcm", pixels=rgb, samples=3, photometric="RGB", bits_allocated=8, bits_stored=8
    )
    rad = read_radiograph(path)
    assert rad.photometric == "RGB" and rad.pixels.shape == (300, 300)
    luma = (0.299 * grey + 0.587 * (255 - grey) + 0.114 * (grey // 2)) / 255.0
    np.testing.assert_allclose(rad.pixels, luma, atol=1e-6)
    assert any("colour" in w for w in rad.warnings)


def test_too_small(dicom_factory: Any, ramp: Any) -> None:
    path = dicom_factory.write("small.dcm", pixels=ramp(100, 300, 12))
    with pytest.raises(RadiographError, match=r"too small: 100 x 300"):
        read_radiograph(path)
    assert read_radiograph(path, min_size=100).shape == (100, 300)


def test_too_large_refused_before_decoding(
    dicom_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = dicom_factory.dataset(with_pixels=False)
    ds.Rows = ds.Columns = 20000
    ds.PixelData = b"\x00" * 16  # far too short: any decoding attempt would fail differently
    path = dicom_factory.write("huge.dcm", ds)

    decoded: list[str] = []

    def no_decode(self: Any) -> None:
        decoded.append("pixel_array")  # recorded: the reader turns exceptions into its own
        raise AssertionError("pixel data decoded")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_decode))
    with pytest.raises(RadiographError, match="too large") as err:
        read_radiograph(path)
    assert decoded == []
    assert "20000 x 20000" in str(err.value) and "huge.dcm" in str(err.value)
    # the spy does see a decode of a file of acceptable size
    with pytest.raises(RadiographError):
        read_radiograph(dicom_factory.write("ok.dcm"))
    assert decoded == ["pixel_array"]


def test_unsupported_transfer_syntax_is_named(dicom_factory: Any) -> None:
    ds = dicom_factory.dataset(transfer_syntax=MPEG2MPML, with_pixels=False)
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    path = dicom_factory.write("mpeg.dcm", ds)
    with pytest.raises(RadiographError, match="unsupported transfer syntax") as err:
        read_radiograph(path)
    assert "MPEG2 Main Profile / Main Level" in str(err.value)


def test_truncated_large_pixel_data_read_lazily(dicom_factory: Any) -> None:
    # > 1 MB of pixel data: read from the file only when needed, still checked for length
    path = dicom_factory.write("big.dcm", rows=1100, cols=1000)
    data = path.read_bytes()
    path.write_bytes(data[:-1000])
    with pytest.raises(RadiographError, match="truncated pixel data: 2199000 of 2200000"):
        read_radiograph(path)


def test_corrupt_compressed_pixel_data(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ds = dicom_factory.dataset()
    ds.compress(RLELossless)
    ds.PixelData = encapsulate([b"\x00" * 10])
    path = dicom_factory.write("rle.dcm", ds)
    with caplog.at_level("WARNING"), pytest.raises(RadiographError, match="cannot decode") as err:
        read_radiograph(path)
    assert "RLE Lossless" in str(err.value) and "rle.dcm" in str(err.value)
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]


def test_zip_given_to_read_radiograph(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x.txt", "hi")
    with pytest.raises(RadiographError, match="zip archive"):
        read_radiograph(archive)


# --- assertions added from mutation testing (benchmarks/mutation.py) ----------------------------


@pytest.mark.parametrize(
    ("bits", "samples", "photometric"),
    [(8, 1, "MONOCHROME2"), (16, 1, "MONOCHROME2"), (8, 3, "RGB"), (32, 1, "MONOCHROME2")],
)
def test_short_pixel_data_is_named_with_its_byte_counts(
    dicom_factory: Any, bits: int, samples: int, photometric: str
) -> None:
    ds = dicom_factory.dataset(
        bits_allocated=bits, bits_stored=min(bits, 16), samples=samples, photometric=photometric
    )
    expected = 300 * 300 * samples * bits // 8
    ds.PixelData = ds.PixelData[: expected - 10]
    path = dicom_factory.write("short.dcm", ds)
    with pytest.raises(
        RadiographError,
        match=rf"short.dcm: truncated pixel data: {expected - 10} of {expected} expected bytes",
    ):
        read_radiograph(path)


def test_signed_rescale_maps_the_transformed_stored_range(dicom_factory: Any, ramp: Any) -> None:
    values = ramp(300, 300, 12) - 2048  # -2048..2047, rescaled to -5096..3094
    path = dicom_factory.write(
        "sresc.dcm",
        pixels=values & 0x0FFF,
        signed=True,
        RescaleSlope=2.0,
        RescaleIntercept=-1000.0,
    )
    rad = read_radiograph(path)
    np.testing.assert_allclose(rad.pixels, (values + 2048) / 4095.0, atol=1e-6)
    assert rad.warnings == ()


@pytest.mark.parametrize(
    "attrs",
    [
        {"RescaleSlope": 2.0},  # no intercept: no rescale, and nothing to warn about
        {"RescaleSlope": 1.0, "RescaleIntercept": 0.0},
        {"WindowCenter": 2000.0},  # no width: no window
        {"WindowWidth": 1000.0},
    ],
)
def test_incomplete_or_identity_transforms_are_silent(
    dicom_factory: Any, ramp: Any, attrs: dict[str, float]
) -> None:
    raw = ramp(300, 300, 12)
    rad = read_radiograph(dicom_factory.write("id.dcm", pixels=raw, **attrs))
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)
    assert rad.warnings == ()


def test_zero_rescale_slope_falls_back_to_stored_values(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    path = dicom_factory.write("s0.dcm", pixels=raw, RescaleSlope=0.0, RescaleIntercept=5.0)
    rad = read_radiograph(path)
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)
    assert len(rad.warnings) == 1
    assert (
        "modality LUT/rescale unusable (slope 0.0, intercept 5.0); stored values used"
        in (rad.warnings[0])
    )


def test_magnification_below_one_is_applied(dicom_factory: Any) -> None:
    path = dicom_factory.write(
        "m08.dcm", ImagerPixelSpacing=[0.2, 0.2], EstimatedRadiographicMagnificationFactor=0.8
    )
    rad = read_radiograph(path)
    assert rad.spacing_mm == pytest.approx((0.25, 0.25))
    assert rad.warnings == ()


def test_colour_dicom_records_its_colourfulness(dicom_factory: Any, ramp: Any) -> None:
    from skimage.data import chelsea

    grey = ramp(300, 300, 8)
    tinted = np.stack([grey, 255 - grey, grey // 2], axis=-1)  # colour that follows the luma
    path = dicom_factory.write(
        "sc.dcm", pixels=tinted, samples=3, photometric="RGB", bits_allocated=8, bits_stored=8
    )
    assert read_radiograph(path).metadata["Colourfulness"] < 10
    photo = np.ascontiguousarray(chelsea())
    path = dicom_factory.write(
        "cat.dcm", pixels=photo, samples=3, photometric="RGB", bits_allocated=8, bits_stored=8
    )
    assert read_radiograph(path).metadata["Colourfulness"] >= 10
