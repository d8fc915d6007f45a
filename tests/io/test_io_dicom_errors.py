"""The DICOM reader's error paths and header defaults, with the exact messages.

Every refusal names the file (``err.path``, the start of ``str(err)``) and the problem
(``err.problem``); every work-around is a warning in ``Radiograph.warnings`` and a log line that
names the file. Written against the survivors of ``benchmarks/mutation.py`` for ``io.dicom``.
"""

from __future__ import annotations

import logging
import re
import struct
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    MPEG2MPML,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from aacscore.io import Radiograph, RadiographError, read_radiograph, read_radiograph_bytes
from aacscore.io import dicom as dicom_mod
from aacscore.io._common import LIBRARY_LOGGERS
from aacscore.io.dicom import read_dicom

DICOM_LOGGER = "aacscore.io.dicom"


def library_loggers() -> dict[str, tuple[bool, list[logging.Handler]]]:
    """Propagation and handlers of the loggers the reader captures."""
    return {
        n: (logging.getLogger(n).propagate, list(logging.getLogger(n).handlers))
        for n in LIBRARY_LOGGERS
    }


def refused(path: Path, problem: str) -> RadiographError:
    """Read ``path``; it must be refused with exactly ``problem``, naming the file."""
    with pytest.raises(RadiographError) as err:
        read_radiograph(path)
    assert err.value.path == str(path)
    assert err.value.problem == problem
    assert str(err.value) == f"{path}: {problem}"
    return err.value


def refused_like(path: Path, pattern: str) -> RadiographError:
    """Like :func:`refused` with the problem matched in full by a regular expression."""
    with pytest.raises(RadiographError) as err:
        read_radiograph(path)
    assert err.value.path == str(path)
    assert re.fullmatch(pattern, err.value.problem), err.value.problem
    assert str(err.value).startswith(f"{path}: ")
    return err.value


def logged(caplog: pytest.LogCaptureFixture, path: Path, message: str) -> None:
    """The warning ``message`` was logged once by the reader, prefixed with the file name."""
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == DICOM_LOGGER and r.levelno == logging.WARNING
    ]
    assert lines.count(f"{path}: {message}") == 1, lines


def read_warned(
    path: Path, caplog: pytest.LogCaptureFixture, *messages: str, **kwargs: Any
) -> Radiograph:
    """Read ``path``: it gives exactly ``messages`` as warnings, each logged with the file."""
    with caplog.at_level(logging.WARNING, logger=DICOM_LOGGER):
        rad = read_radiograph(path, **kwargs)
    assert rad.warnings == messages
    for message in messages:
        logged(caplog, path, message)
    return rad


def write_raw(folder: Path, name: str, ds: Dataset, implicit: bool, little: bool) -> Path:
    """Write a bare dataset: no preamble, no "DICM", no file meta."""
    del ds.file_meta
    ds.preamble = None
    path = folder / name
    pydicom.dcmwrite(path, ds, implicit_vr=implicit, little_endian=little)
    return path


# --- photometric interpretation and samples per pixel ------------------------------------


def test_palette_colour_is_refused_by_name(dicom_factory: Any) -> None:
    path = dicom_factory.write(
        "pal.dcm", bits_allocated=8, bits_stored=8, photometric="PALETTE COLOR"
    )
    refused(path, "colour image (PALETTE COLOR) is not supported")


def test_unknown_grey_photometric_is_refused(dicom_factory: Any) -> None:
    path = dicom_factory.write("hsv.dcm", bits_allocated=8, bits_stored=8, photometric="HSV")
    refused(path, "unsupported photometric interpretation 'HSV'")


@pytest.mark.parametrize(
    ("samples", "photometric", "problem"),
    [
        (3, "MONOCHROME2", "colour image (3 samples per pixel, MONOCHROME2) is not supported"),
        (4, "ARGB", "colour image (4 samples per pixel, ARGB) is not supported"),
        (3, None, "colour image (3 samples per pixel, no photometric) is not supported"),
    ],
)
def test_other_colour_layouts_are_refused(
    dicom_factory: Any, samples: int, photometric: str | None, problem: str
) -> None:
    pixels = np.zeros((300, 300, samples), dtype=np.uint8)
    ds = dicom_factory.dataset(
        pixels=pixels,
        samples=samples,
        photometric=photometric or "RGB",
        bits_allocated=8,
        bits_stored=8,
    )
    if photometric is None:
        del ds.PhotometricInterpretation
    refused(dicom_factory.write("col.dcm", ds), problem)


def test_missing_photometric_is_monochrome2(
    dicom_factory: Any, ramp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    raw = ramp(300, 300, 12)
    ds = dicom_factory.dataset(pixels=raw)
    del ds.PhotometricInterpretation
    path = dicom_factory.write("nophot.dcm", ds)
    rad = read_warned(path, caplog, "PhotometricInterpretation missing; MONOCHROME2 assumed")
    assert rad.photometric == "MONOCHROME2"
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)  # not inverted


def test_rgb_screenshot_warning_names_the_file(
    dicom_factory: Any, ramp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    grey = ramp(300, 300, 8)
    path = dicom_factory.write(
        "sc.dcm",
        pixels=np.stack([grey] * 3, axis=-1),
        samples=3,
        photometric="RGB",
        bits_allocated=8,
        bits_stored=8,
    )
    rad = read_warned(path, caplog, "colour DICOM (RGB) converted to grey")
    np.testing.assert_allclose(rad.pixels, grey / 255.0, atol=1e-6)


def test_subsampled_ybr_native_is_not_length_checked_as_full(dicom_factory: Any) -> None:
    # YBR_FULL_422 stores 2 bytes per pixel, not 3: the native length check must skip it
    rows, cols = 300, 300
    ys = np.full(rows * cols, 128, dtype=np.uint8)
    raw = np.empty(rows * cols * 2, dtype=np.uint8)
    raw[0::4], raw[1::4], raw[2::4], raw[3::4] = ys[0::2], ys[1::2], 128, 128  # Y Y Cb Cr
    ds = dicom_factory.dataset(
        pixels=np.zeros((rows, cols, 3), dtype=np.uint8),
        samples=3,
        photometric="YBR_FULL_422",
        bits_allocated=8,
        bits_stored=8,
        with_pixels=False,
    )
    ds.PixelData = raw.tobytes()
    rad = read_radiograph(dicom_factory.write("ybr.dcm", ds))
    assert rad.photometric == "YBR_FULL_422" and rad.shape == (rows, cols)
    assert abs(float(rad.pixels.mean()) - 128 / 255.0) < 0.02


# --- Rows / Columns and the other integer header values ----------------------------------


def test_missing_rows_is_refused(dicom_factory: Any) -> None:
    for keyword in ("Rows", "Columns"):
        ds = dicom_factory.dataset()
        delattr(ds, keyword)
        refused(dicom_factory.write(f"no{keyword}.dcm", ds), "DICOM header has no Rows/Columns")


@pytest.mark.parametrize(("keyword", "size"), [("Rows", "0 x 300"), ("Columns", "300 x 0")])
def test_empty_rows_or_columns_is_an_invalid_size(
    dicom_factory: Any, keyword: str, size: str
) -> None:
    ds = dicom_factory.dataset()
    setattr(ds, keyword, None)
    refused(dicom_factory.write("empty.dcm", ds), f"invalid image size {size} pixels")


@pytest.mark.parametrize(
    "keyword",
    [
        "NumberOfFrames",
        "SamplesPerPixel",
        "Rows",
        "Columns",
        "BitsStored",
        "PixelRepresentation",
    ],
)
def test_multi_valued_integer_is_refused_by_name(dicom_factory: Any, keyword: str) -> None:
    ds = dicom_factory.dataset()
    value = getattr(ds, keyword, 1)
    setattr(ds, keyword, [value, value])
    refused_like(
        dicom_factory.write("multi.dcm", ds),
        rf"invalid {keyword} in DICOM header \(int\(\) argument must be .*\)",
    )


def test_empty_number_of_frames_is_one_frame(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    rad = read_radiograph(dicom_factory.write("nf.dcm", pixels=raw, NumberOfFrames=""))
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)
    # pydicom's own correction is kept as a library warning
    assert rad.warnings == ()
    (warning,) = rad.library_warnings
    assert (
        warning
        == "A value of 'None' for (0028,0008) 'Number of Frames' is invalid, assuming 1 frame"
    )


def test_multiframe_names_the_file(dicom_factory: Any) -> None:
    refused(
        dicom_factory.write("mf.dcm", frames=2),
        "multi-frame image (2 frames) is not supported; export a single frame",
    )


@pytest.mark.parametrize(
    "keyword",
    [
        "SamplesPerPixel",
        "BitsStored",
        "PixelRepresentation",
        "HighBit",
    ],
)
def test_missing_header_values_take_their_defaults(
    dicom_factory: Any, ramp: Any, keyword: str
) -> None:
    raw = ramp(300, 300, 12)
    ds = dicom_factory.dataset(pixels=raw)
    delattr(ds, keyword)
    rad = read_radiograph(dicom_factory.write("def.dcm", ds))
    # no SamplesPerPixel: 1 (grey); no BitsStored: BitsAllocated (16); no PixelRepresentation: 0
    top = 65535.0 if keyword == "BitsStored" else 4095.0
    assert rad.bits_stored == (16 if keyword == "BitsStored" else 12)
    np.testing.assert_allclose(rad.pixels, raw / top, atol=1e-6)
    assert rad.warnings == ()


def test_bits_stored_equal_to_bits_allocated_is_valid(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 16)
    rad = read_radiograph(dicom_factory.write("b16.dcm", pixels=raw, bits_stored=16))
    assert rad.bits_stored == 16 and rad.warnings == ()
    np.testing.assert_allclose(rad.pixels, raw / 65535.0, atol=1e-6)


# --- 1-bit and 64-bit pixel data -----------------------------------------------------------


def one_bit_dataset(dicom_factory: Any, rows: int, cols: int, bits_stored: int = 1) -> Dataset:
    bits = (np.add.outer(np.arange(rows), np.arange(cols)) // 7 % 2).astype(np.uint8)
    ds = dicom_factory.dataset(
        pixels=np.zeros((rows, cols), dtype=np.uint8),
        bits_allocated=8,
        bits_stored=8,
        with_pixels=False,
    )
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, bits_stored, 0
    ds.PixelData = np.packbits(bits.ravel(), bitorder="little").tobytes()
    ds.bits = bits
    return ds


@pytest.mark.parametrize(("rows", "cols"), [(300, 300), (301, 300)])
def test_one_bit_image(dicom_factory: Any, rows: int, cols: int) -> None:
    ds = one_bit_dataset(dicom_factory, rows, cols)
    bits = ds.bits
    del ds.bits
    rad = read_radiograph(dicom_factory.write("b1.dcm", ds))
    assert rad.bits_stored == 1 and rad.warnings == ()
    np.testing.assert_array_equal(rad.pixels, bits.astype(np.float32))


def test_one_bit_image_with_too_many_bits_stored(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ds = one_bit_dataset(dicom_factory, 300, 300, bits_stored=2)
    bits = ds.bits
    del ds.bits
    path = dicom_factory.write("b1s2.dcm", ds)
    rad = read_warned(path, caplog, "BitsStored 2 invalid; BitsAllocated used")
    assert rad.bits_stored == 1
    np.testing.assert_array_equal(rad.pixels, bits.astype(np.float32))


@pytest.mark.parametrize(
    ("rows", "cols", "expected"),
    [(300, 300, 11250), (301, 300, 11288)],  # ceil(rows * cols / 8)
)
def test_short_one_bit_pixel_data(dicom_factory: Any, rows: int, cols: int, expected: int) -> None:
    ds = one_bit_dataset(dicom_factory, rows, cols)
    del ds.bits
    ds.PixelData = ds.PixelData[: expected - 2]  # even: the writer pads odd lengths
    refused(
        dicom_factory.write("b1short.dcm", ds),
        f"truncated pixel data: {expected - 2} of {expected} expected bytes are present",
    )


def test_short_64_bit_pixel_data(dicom_factory: Any) -> None:
    ds = dicom_factory.dataset(bits_allocated=64, bits_stored=40)
    ds.PixelData = ds.PixelData[:-16]
    refused(
        dicom_factory.write("b64short.dcm", ds),
        "truncated pixel data: 719984 of 720000 expected bytes are present",
    )


@pytest.mark.parametrize(("signed", "bits_stored"), [(False, 40), (True, 64), (False, 64)])
def test_64_bit_pixel_data(dicom_factory: Any, ramp: Any, signed: bool, bits_stored: int) -> None:
    raw = ramp(300, 300, 12) * (2**20)
    if signed:
        raw = raw - 2**31
    garbage = 0 if bits_stored == 64 else (1 << 50)  # above BitsStored: masked
    ds = dicom_factory.dataset(
        pixels=raw, bits_allocated=64, bits_stored=bits_stored, signed=signed, with_pixels=False
    )
    ds.PixelData = (raw + garbage).astype("<i8" if signed else "<u8").tobytes()
    rad = read_radiograph(dicom_factory.write("b64.dcm", ds))
    lo = -(2.0 ** (bits_stored - 1)) if signed else 0.0
    hi = 2.0 ** (bits_stored - 1) - 1 if signed else 2.0**bits_stored - 1
    np.testing.assert_allclose(rad.pixels, (raw - lo) / (hi - lo), rtol=1e-5, atol=1e-12)
    assert rad.warnings == ()


# --- pixel data presence, decoder, decoding ----------------------------------------------


def test_header_only_names_the_file(dicom_factory: Any) -> None:
    refused(
        dicom_factory.write("hdr.dcm", with_pixels=False),
        "no pixel data (the DICOM file has a header only)",
    )


@pytest.mark.parametrize("keyword", ["FloatPixelData", "DoubleFloatPixelData"])
def test_float_pixel_data_is_refused(dicom_factory: Any, keyword: str) -> None:
    ds = dicom_factory.dataset(with_pixels=False)
    setattr(ds, keyword, np.zeros(300 * 300, dtype="<f8").tobytes())
    refused(dicom_factory.write("float.dcm", ds), "floating-point pixel data is not supported")


def test_unsupported_transfer_syntax_exact_message(dicom_factory: Any) -> None:
    ds = dicom_factory.dataset(transfer_syntax=MPEG2MPML, with_pixels=False)
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    refused(
        dicom_factory.write("mpeg.dcm", ds),
        f"unsupported transfer syntax MPEG2 Main Profile / Main Level ({MPEG2MPML})",
    )


def test_private_transfer_syntax_is_named_by_its_uid(dicom_factory: Any) -> None:
    ds = dicom_factory.dataset(transfer_syntax=UID("1.2.3.4.5"))
    path = dicom_factory.folder / "private.dcm"
    pydicom.dcmwrite(path, ds, implicit_vr=False, little_endian=True)
    refused(path, "unsupported transfer syntax 1.2.3.4.5")


def test_missing_decoder_plugin_is_named(
    dicom_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = dicom_factory.write("noplugin.dcm")
    monkeypatch.setattr(
        dicom_mod, "get_decoder", lambda ts: types.SimpleNamespace(is_available=False)
    )
    refused(
        path,
        f"unsupported transfer syntax Explicit VR Little Endian ({ExplicitVRLittleEndian}): "
        "no decoder plugin is installed",
    )


def test_big_file_from_memory(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(1100, 1000, 12)
    path = dicom_factory.write("bigmem.dcm", pixels=raw)
    rad = read_radiograph_bytes(path.read_bytes(), "x.zip:bigmem.dcm")
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)


def test_unexpected_decoded_shape(dicom_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = dicom_factory.write("shape.dcm")
    monkeypatch.setattr(
        pydicom.dataset.Dataset,
        "pixel_array",
        property(lambda self: np.zeros((300, 300, 3), dtype=np.uint16)),
    )
    refused(path, "unexpected decoded pixel array shape (300, 300, 3)")


def test_decoder_failures_go_to_the_debug_log_only(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ds = dicom_factory.dataset()
    ds.compress(RLELossless)
    ds.PixelData = encapsulate([b"\x00" * 10])
    path = dicom_factory.write("rle.dcm", ds)
    before = library_loggers()
    with caplog.at_level(logging.DEBUG):
        refused_like(
            path,
            r"cannot decode pixel data \(RLE Lossless\); the file may be truncated or corrupt: "
            r"Unable to decode (.|\n)*",
        )
    # the plugin failure is summarised in the debug log, with the file name
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert f"{path}: pydicom: The RLE header can only be 64 bytes long" in debug
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # and the capture is removed again
    assert library_loggers() == before


def test_pydicom_messages_during_decoding_become_library_warnings(
    dicom_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = dicom_factory.write("warn.dcm")
    original = pydicom.dataset.Dataset.pixel_array

    def noisy(self: Dataset) -> Any:
        logging.getLogger("pydicom").warning("a pydicom warning")
        warnings.warn("a pydicom warning", UserWarning, stacklevel=1)  # as warn_and_log does
        warnings.warn("another one", UserWarning, stacklevel=1)
        logging.getLogger("pydicom.pixels.decoders.base").error("a plugin failure")
        return original.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(noisy))
    with caplog.at_level(logging.DEBUG):
        rad = read_radiograph(path)
    assert rad.library_warnings == ("a pydicom warning", "another one")
    # logged once each, with the file name, by the reader; nothing under pydicom's name
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [f"{path}: a pydicom warning", f"{path}: another one"]
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]
    # a decoding plugin that failed before another succeeded is only in the debug log
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert f"{path}: pydicom: a plugin failure" in debug
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_deprecation_warnings_are_passed_on(
    dicom_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = dicom_factory.write("dep.dcm")
    original = pydicom.dataset.Dataset.pixel_array

    def deprecated(self: Dataset) -> Any:
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        return original.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(deprecated))
    with pytest.warns(DeprecationWarning, match="old API"):
        rad = read_radiograph(path)
    assert rad.library_warnings == ()  # about code, not the file


# --- parsing -----------------------------------------------------------------------------


def test_not_dicom_without_force(tmp_path: Path) -> None:
    path = tmp_path / "plain.dcm"
    path.write_bytes(b"\x08\x00\x16\x00UI\x04\x001.2\x00")
    with pytest.raises(RadiographError) as err:
        read_dicom(path, "plain.dcm", spacing=None, include_patient=False, min_size=1)
    assert (err.value.path, err.value.problem) == ("plain.dcm", "not a DICOM or image file")
    assert isinstance(err.value.__cause__, pydicom.errors.InvalidDicomError)


@pytest.mark.parametrize(
    ("force", "problem"),
    [
        (False, "truncated or corrupt DICOM file (disk gone)"),
        (True, "not a DICOM or image file"),
    ],
)
def test_parse_failure(
    dicom_factory: Any, monkeypatch: pytest.MonkeyPatch, force: bool, problem: str
) -> None:
    path = dicom_factory.write("p.dcm")

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(pydicom, "dcmread", fail)
    with pytest.raises(RadiographError) as err:
        read_dicom(path, "p.dcm", spacing=None, include_patient=False, min_size=1, force=force)
    assert (err.value.path, err.value.problem) == ("p.dcm", problem)
    assert str(err.value) == f"p.dcm: {problem}"


def test_random_bytes_exact_message(tmp_path: Path) -> None:
    path = tmp_path / "random.dcm"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    refused(path, "not a DICOM or image file")


@pytest.mark.parametrize("keyword", ["Rows", "Columns", "SOPClassUID"])
def test_forced_dataset_with_one_image_element_is_accepted(
    dicom_factory: Any, keyword: str
) -> None:
    full = dicom_factory.dataset()
    ds = Dataset()
    ds.file_meta = full.file_meta
    ds.PatientID = "P-0001"
    setattr(ds, keyword, getattr(full, keyword))
    path = write_raw(dicom_factory.folder, "one.dcm", ds, implicit=True, little=True)
    # past the "looks like an image" test: refused for what it lacks instead
    refused(path, "DICOM header has no Rows/Columns")


@pytest.mark.parametrize(
    ("implicit", "little", "ts"),
    [
        (True, True, ImplicitVRLittleEndian),
        (False, True, ExplicitVRLittleEndian),
        (False, False, ExplicitVRBigEndian),
    ],
)
def test_bare_dataset_transfer_syntax_from_its_encoding(
    dicom_factory: Any, ramp: Any, implicit: bool, little: bool, ts: UID
) -> None:
    raw = ramp(300, 300, 12)
    ds = dicom_factory.dataset(pixels=raw)
    path = write_raw(dicom_factory.folder, "bare.dcm", ds, implicit=implicit, little=little)
    rad = read_radiograph(path)
    assert rad.header is not None and rad.header.file_meta.TransferSyntaxUID == ts
    assert "TransferSyntaxUID" not in rad.metadata  # not stated by the file
    assert rad.shape == (300, 300) and rad.warnings == ()
    if little:
        np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)


def test_truncated_header_names_the_element(tmp_path: Path) -> None:
    # a bare implicit-VR dataset whose last element ends early (pydicom reads it silently)
    def element(group: int, elem: int, value: bytes, length: int | None = None) -> bytes:
        size = len(value) if length is None else length
        return struct.pack("<HHI", group, elem, size) + value

    path = tmp_path / "cut.dcm"
    path.write_bytes(
        element(0x0008, 0x0005, b"ISO_IR 100")
        + element(0x0008, 0x0008, b"ORIGINAL")
        + element(0x0008, 0x0016, b"1.2.840.10008.5.1.4.1.1.1\x00")
        + element(0x0008, 0x0018, b"1.2.3.4", length=64)
    )
    refused(path, "truncated DICOM file: element (0008,0018) has 7 of 64 bytes")


def test_file_meta_only(dicom_factory: Any) -> None:
    path = dicom_factory.folder / "meta.dcm"
    path.write_bytes(
        b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x14\x00" + b"1.2.840.10008.1.2.1\x00"
    )
    refused(path, "truncated DICOM file: no data elements after the preamble")


# --- grey pipeline -------------------------------------------------------------------------


def test_infinite_slope_falls_back(
    dicom_factory: Any, ramp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    raw = ramp(300, 300, 12)
    path = dicom_factory.write(
        "inf.dcm", pixels=raw, RescaleSlope=float("inf"), RescaleIntercept=0.0
    )
    rad = read_warned(
        path, caplog, "modality LUT/rescale unusable (slope inf, intercept 0.0); stored values used"
    )
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)


def test_huge_slope_cannot_be_normalised(dicom_factory: Any) -> None:
    path = dicom_factory.write("huge.dcm", RescaleSlope=1e308, RescaleIntercept=0.0)
    refused(path, "cannot normalise pixel values: invalid range [0.0, inf]")


def test_signed_fallback_uses_the_signed_stored_range(
    dicom_factory: Any, ramp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    values = ramp(300, 300, 12) - 2048
    path = dicom_factory.write(
        "s0.dcm", pixels=values & 0x0FFF, signed=True, RescaleSlope=0.0, RescaleIntercept=1.0
    )
    rad = read_warned(
        path, caplog, "modality LUT/rescale unusable (slope 0.0, intercept 1.0); stored values used"
    )
    np.testing.assert_allclose(rad.pixels, (values + 2048) / 4095.0, atol=1e-6)


def voi_item(first: int, data: Any, vr: str = "US", bits: int = 16) -> Dataset:
    item = Dataset()
    item.add_new("LUTDescriptor", vr, [len(data) % 65536, first, bits])
    item.add_new("LUTData", "US", [int(v) for v in data])
    return item


def test_voi_lut_without_data_is_skipped_for_the_window(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    ds = dicom_factory.dataset(pixels=raw, WindowCenter=2047.5, WindowWidth=4096.0)
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [4096, 0, 16])
    ds.VOILUTSequence = Sequence([item])
    rad = read_radiograph(dicom_factory.write("voinodata.dcm", ds))
    assert rad.warnings == ()
    expected = np.clip((raw - 2047.0) / 4095.0 + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)


def test_voi_lut_after_fractional_rescale_rounds(dicom_factory: Any, ramp: Any) -> None:
    raw = ramp(300, 300, 12)
    lut = np.rint(65535 * (np.arange(4200) / 4199) ** 2).astype(np.int64)
    ds = dicom_factory.dataset(pixels=raw, RescaleSlope=1.0, RescaleIntercept=0.6)
    ds.VOILUTSequence = Sequence([voi_item(0, lut)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'VOI LUT on a float array' warning
        rad = read_radiograph(dicom_factory.write("voifrac.dcm", ds))
    assert rad.warnings == ()
    np.testing.assert_allclose(rad.pixels, lut[raw + 1] / 65535.0, atol=1e-6)


def test_voi_lut_range_includes_its_first_entries(dicom_factory: Any, ramp: Any) -> None:
    # a decreasing LUT from a negative first value: its largest output is in the first entries
    values = ramp(300, 300, 12) - 2048
    lut = np.concatenate([[4096], np.linspace(4095, 0, 199)]).round().astype(np.int64)
    ds = dicom_factory.dataset(pixels=values & 0x0FFF, signed=True)
    ds.VOILUTSequence = Sequence([voi_item(-20, lut, vr="SS")])
    rad = read_radiograph(dicom_factory.write("voineg.dcm", ds))
    assert rad.warnings == ()
    expected = lut[np.clip(values + 20, 0, len(lut) - 1)] / 8191.0  # 4096 needs 13 bits
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)


def test_unusable_voi_lut_warning_names_the_file(
    dicom_factory: Any, ramp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    raw = ramp(300, 300, 12)
    ds = dicom_factory.dataset(pixels=raw)
    ds.VOILUTSequence = Sequence([voi_item(0, np.arange(4096), bits=3)])
    path = dicom_factory.write("voibad.dcm", ds)
    rad = read_warned(
        path,
        caplog,
        "VOI LUT/window unusable ('3' bits per LUT entry is not supported); full stored range used",
    )
    np.testing.assert_allclose(rad.pixels, raw / 4095.0, atol=1e-6)


# --- spacing and metadata ----------------------------------------------------------------


def test_implausible_pixel_spacing_falls_back_to_imager(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = dicom_factory.write("ps.dcm", PixelSpacing=[50.0, 50.0], ImagerPixelSpacing=[0.2, 0.2])
    rad = read_warned(
        path,
        caplog,
        "PixelSpacing '50.0\\50.0' is not a plausible pixel spacing (0.01-2.0 mm); "
        "spacing from ImagerPixelSpacing",
    )
    assert rad.spacing_mm == pytest.approx((0.2, 0.2))
    assert rad.spacing_source == "ImagerPixelSpacing"


def test_two_spacing_problems_then_imager(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = dicom_factory.write(
        "two.dcm",
        PixelSpacing=[0.1, 0.1, 0.1],
        ImagerPixelSpacing=[0.2, 0.2],
        EstimatedRadiographicMagnificationFactor=0.0,
    )
    rad = read_warned(
        path,
        caplog,
        "PixelSpacing '0.1\\0.1\\0.1' cannot be parsed as two numbers; "
        "EstimatedRadiographicMagnificationFactor '0.0' is unusable, ImagerPixelSpacing taken "
        "without it; spacing from ImagerPixelSpacing",
    )
    assert rad.spacing_mm == pytest.approx((0.2, 0.2))


def test_two_spacing_problems_leave_it_unknown(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = dicom_factory.write("none.dcm", PixelSpacing=[0.1], ImagerPixelSpacing=[9.0, 9.0])
    rad = read_warned(
        path,
        caplog,
        "PixelSpacing '0.1' cannot be parsed as two numbers; ImagerPixelSpacing '9.0\\9.0' is "
        "not a plausible pixel spacing (0.01-2.0 mm); pixel spacing unknown",
    )
    assert rad.spacing_mm is None and rad.spacing_source is None


def test_empty_metadata_values_are_left_out(dicom_factory: Any) -> None:
    ds = dicom_factory.dataset()
    ds.Manufacturer = ""
    ds.ViewPosition = "  "
    rad = read_radiograph(dicom_factory.write("meta.dcm", ds))
    assert "Manufacturer" not in rad.metadata and "ViewPosition" not in rad.metadata
    assert rad.metadata["Modality"] == "CR"
