"""The fast JPEG 2000 path (:mod:`aacscore.io._j2k`) and how the DICOM reader uses it."""

from __future__ import annotations

import logging
import os
import struct
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom.encaps import encapsulate, get_frame
from pydicom.pixels import get_encoder
from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGLSLossless, RLELossless

from aacscore.io import _j2k, read_radiograph, read_radiograph_bytes
from aacscore.io.inputs import collect_inputs

J2K_LOGGER = "aacscore.io._j2k"

GREY_J2K = (
    "RG1_J2KR.dcm",
    "RG1_J2KI.dcm",
    "RG3_J2KR.dcm",
    "RG3_J2KI.dcm",
    "MR2_J2KR.dcm",
    "MR2_J2KI.dcm",
    "693_J2KR.dcm",
    "693_J2KI.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "JPEG2000.dcm",
    "MR_small_jp2klossless.dcm",
)
"""pydicom's single-frame grey JPEG 2000 files: lossless and lossy, 10-16 bits, signed and
unsigned, and one whose codestream is unsigned while PixelRepresentation says signed."""


def codestream(ds: pydicom.Dataset) -> bytes:
    return bytes(get_frame(ds.PixelData, 0, number_of_frames=1))


def needs_j2k_encoder() -> None:
    if not get_encoder(JPEG2000Lossless).is_available:
        pytest.skip("no JPEG 2000 encoder")


def needs_glymur() -> None:
    """Skips without Glymur and OpenJPEG >= 2.3, except under CI (``AACSCORE_REQUIRE_TOOLS=1``:
    ``.ci/run`` installs libopenjp2), where their absence fails the test."""
    problem = _j2k.glymur_problem()
    if problem is not None:
        if os.environ.get("AACSCORE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{problem} (.ci/run installs libopenjp2-7 with apt-get)")
        pytest.skip(problem)


@pytest.fixture
def no_glymur(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Glymur not importable (and the cached answer and the one warning reset around it)."""
    monkeypatch.setitem(sys.modules, "glymur", None)  # import raises ImportError
    _j2k.glymur_problem.cache_clear()
    _j2k._warn_full_resolution.cache_clear()
    yield
    monkeypatch.undo()
    _j2k.glymur_problem.cache_clear()
    _j2k._warn_full_resolution.cache_clear()


def fine_film(
    factory: Any, ramp: Any, rows: int, cols: int, mm: float, reduced: bool = True, **kw: Any
) -> Path:
    """A lossless JPEG 2000 film of ``rows`` x ``cols`` at ``mm`` per pixel (``reduced``:
    the test reads it reduced, which needs Glymur)."""
    needs_j2k_encoder()
    if reduced:
        needs_glymur()
    ds = factory.dataset(pixels=ramp(rows, cols, 12), PixelSpacing=[mm, mm], **kw)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    return factory.write(f"fine_{rows}x{cols}.dcm", ds)


def box_mean(a: npt.NDArray[Any], factor: int) -> npt.NDArray[np.float64]:
    """``factor`` x ``factor`` block means (edge rows/columns repeated to fill the last block)."""
    h, w = -(-a.shape[0] // factor), -(-a.shape[1] // factor)
    pad = ((0, h * factor - a.shape[0]), (0, w * factor - a.shape[1]))
    full = np.pad(a.astype(np.float64), pad, mode="edge")
    return full.reshape(h, factor, w, factor).mean(axis=(1, 3))


@pytest.fixture
def no_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every film decoded by pydicom, as before the fast path."""
    monkeypatch.setattr(_j2k, "decode", lambda *a, **k: None)


# --- full resolution: the same integers as pydicom ----------------------------------------


@pytest.mark.parametrize("name", GREY_J2K)
def test_full_resolution_equals_pydicom(real: Any, name: str) -> None:
    ds = real.dataset(name)
    data = codestream(ds)
    info = _j2k.parse_codestream(data)
    assert info is not None
    fast = _j2k.decode(data, info, ds.PixelRepresentation == 1, 0, name)
    expected = real.stored(name)
    assert fast is not None
    assert fast.dtype == expected.dtype
    np.testing.assert_array_equal(fast, expected)


@pytest.mark.parametrize("name", ["RG1_J2KR.dcm", "RG3_J2KI.dcm", "J2K_pixelrep_mismatch.dcm"])
def test_reader_pixels_unchanged_by_fast_path(
    real: Any, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = read_radiograph(real.path(name), min_size=64)
    monkeypatch.setattr(_j2k, "decode", lambda *a, **k: None)
    slow = read_radiograph(real.path(name), min_size=64)
    np.testing.assert_array_equal(fast.pixels, slow.pixels)
    assert fast.spacing_mm == slow.spacing_mm and fast.metadata == slow.metadata
    assert fast.warnings == slow.warnings


def test_reader_decodes_on_several_threads(real: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    imagecodecs = pytest.importorskip("imagecodecs")
    calls: list[int] = []
    original = imagecodecs.jpeg2k_decode

    def spy(data: bytes, *, numthreads: int) -> Any:
        calls.append(numthreads)
        return original(data, numthreads=numthreads)

    monkeypatch.setattr(imagecodecs, "jpeg2k_decode", spy)
    monkeypatch.setattr(_j2k, "decode_threads", lambda: 2)
    rad = read_radiograph(real.path("RG3_J2KR.dcm"))
    assert calls == [2]
    np.testing.assert_array_equal(rad.pixels, real.read("RG3_UNCR.dcm").pixels)


def test_fallback_when_the_decoder_raises(
    real: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(data: bytes) -> Any:
        raise RuntimeError("codec exploded")

    monkeypatch.setattr(_j2k, "_decode_full", broken)
    with caplog.at_level(logging.DEBUG, logger=J2K_LOGGER):
        rad = read_radiograph(real.path("RG1_J2KR.dcm"))
    np.testing.assert_array_equal(rad.pixels, real.read("RG1_UNCR.dcm").pixels)
    assert any(
        r.name == J2K_LOGGER
        and "RG1_J2KR.dcm" in r.getMessage()
        and "codec exploded" in r.getMessage()
        for r in caplog.records
    )
    assert rad.warnings == real.read("RG1_UNCR.dcm").warnings  # a fallback is not a warning


def test_fallback_when_imagecodecs_is_missing(real: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # import raises ImportError
    data = codestream(real.dataset("RG3_J2KR.dcm"))
    info = _j2k.parse_codestream(data)
    assert info is not None
    assert _j2k.decode(data, info, False, 0, "RG3") is None
    rad = read_radiograph(real.path("RG3_J2KR.dcm"))
    np.testing.assert_array_equal(rad.pixels, real.read("RG3_UNCR.dcm").pixels)


def test_fallback_when_the_decoded_shape_is_wrong(
    real: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_j2k, "_decode_full", lambda data: np.zeros((4, 4), np.uint16))
    rad = read_radiograph(real.path("RG3_J2KR.dcm"))
    np.testing.assert_array_equal(rad.pixels, real.read("RG3_UNCR.dcm").pixels)


def test_truncated_codestream_still_refused(real: Any, tmp_path: Path) -> None:
    ds = real.dataset("RG3_J2KR.dcm")
    data = codestream(ds)
    ds.PixelData = encapsulate([data[: len(data) // 2]])
    path = tmp_path / "cut.dcm"
    ds.save_as(path)
    with pytest.raises(ValueError, match=r"cannot decode pixel data \(JPEG 2000"):
        read_radiograph(path)


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("US1_J2KR.dcm", JPEG2000Lossless),  # colour JPEG 2000: pydicom converts YBR_RCT
        ("RG1_UNCR.dcm", None),
        ("JPEG-LL.dcm", None),
    ],
)
def test_other_films_do_not_take_the_fast_path(
    real: Any, name: str, syntax: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def untouched(data: bytes) -> Any:
        raise AssertionError("fast path used")

    monkeypatch.setattr(_j2k, "parse_codestream", untouched)
    rad = read_radiograph(real.path(name), min_size=64, decode_spacing_mm=10.0)
    assert "ResolutionReduction" not in rad.metadata
    if syntax is not None:
        assert rad.metadata["TransferSyntaxUID"] == syntax


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless])
def test_other_syntaxes_ignore_decode_spacing(dicom_factory: Any, ramp: Any, syntax: Any) -> None:
    if not get_encoder(syntax).is_available:
        pytest.skip(f"no encoder for {syntax.name}")
    ds = dicom_factory.dataset(pixels=ramp(1100, 1060, 12), PixelSpacing=[0.05, 0.05])
    ds.compress(syntax)
    rad = read_radiograph(dicom_factory.write("other.dcm", ds), decode_spacing_mm=0.2)
    assert rad.shape == (1100, 1060) and rad.spacing_mm == (0.05, 0.05)


# --- reduced resolution -------------------------------------------------------------------


def test_reduced_decode_halves_shape_and_doubles_spacing(dicom_factory: Any, ramp: Any) -> None:
    path = fine_film(dicom_factory, ramp, 1200, 1101, 0.1)
    full = read_radiograph(path)
    half = read_radiograph(path, decode_spacing_mm=0.2)
    assert full.shape == (1200, 1101) and full.spacing_mm == (0.1, 0.1)
    assert "ResolutionReduction" not in full.metadata
    assert half.shape == (600, 551)
    assert half.spacing_mm == (0.2, 0.2)
    assert half.spacing_source == "PixelSpacing"
    assert half.metadata["ResolutionReduction"] == 1
    assert (half.metadata["Rows"], half.metadata["Columns"]) == (1200, 1101)
    assert half.warnings == ()
    # what is handed on is the film's own geometry
    assert half.film_shape == half.info.shape == (1200, 1101)
    assert half.film_spacing_mm == half.info.spacing_mm == (0.1, 0.1)
    # the wavelet low-pass image agrees with a 2 x 2 mean of the full image
    diff = np.abs(half.pixels - box_mean(full.pixels, 2))
    assert float(diff.mean()) < 0.005 and float(np.percentile(diff, 99)) < 0.02
    assert float(np.corrcoef(half.pixels.ravel(), box_mean(full.pixels, 2).ravel())[0, 1]) > 0.99


def test_reduced_decode_reaches_bytes_and_input_items(
    dicom_factory: Any, ramp: Any, tmp_path: Path
) -> None:
    path = fine_film(dicom_factory, ramp, 1100, 1030, 0.1)
    from_bytes = read_radiograph_bytes(path.read_bytes(), "film.dcm", decode_spacing_mm=0.2)
    (item,) = collect_inputs([path])
    from_item = item.read(decode_spacing_mm=0.2)
    assert from_bytes.shape == from_item.shape == (550, 515)
    np.testing.assert_array_equal(from_bytes.pixels, from_item.pixels)
    assert item.read().shape == (1100, 1030)


def test_user_spacing_decides_and_is_scaled(dicom_factory: Any, ramp: Any) -> None:
    path = fine_film(dicom_factory, ramp, 1100, 1030, 0.3)  # header: too coarse to reduce
    assert read_radiograph(path, decode_spacing_mm=0.2).shape == (1100, 1030)
    rad = read_radiograph(path, spacing_mm=(0.09, 0.1), decode_spacing_mm=0.2)
    assert rad.shape == (550, 515)
    assert rad.spacing_mm == (0.18, 0.2)
    assert rad.spacing_source == "user"


def test_no_reduction_without_spacing(dicom_factory: Any, ramp: Any) -> None:
    needs_j2k_encoder()
    ds = dicom_factory.dataset(pixels=ramp(1100, 1030, 12))
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    rad = read_radiograph(dicom_factory.write("nospacing.dcm", ds), decode_spacing_mm=0.2)
    assert rad.shape == (1100, 1030) and rad.spacing_mm is None


def test_reduced_fallback_is_full_resolution(
    dicom_factory: Any, ramp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fine_film(dicom_factory, ramp, 1100, 1030, 0.1)

    def broken(data: bytes, info: Any, level: int) -> Any:
        raise OSError("broken data stream")

    monkeypatch.setattr(_j2k, "_decode_reduced", broken)
    rad = read_radiograph(path, decode_spacing_mm=0.2)
    assert rad.shape == (1100, 1030) and rad.spacing_mm == (0.1, 0.1)
    assert "ResolutionReduction" not in rad.metadata
    np.testing.assert_array_equal(rad.pixels, read_radiograph(path).pixels)


def test_without_glymur_films_are_read_at_full_resolution_with_one_warning(
    dicom_factory: Any, ramp: Any, no_glymur: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = fine_film(dicom_factory, ramp, 1100, 1030, 0.1, reduced=False)
    with caplog.at_level(logging.WARNING, logger=J2K_LOGGER):
        first = read_radiograph(path, decode_spacing_mm=0.2)
        again = read_radiograph(path, decode_spacing_mm=0.2)
    assert not _j2k.glymur_available()
    for rad in (first, again):
        assert rad.reduction == 0 and rad.finer is None
        assert rad.shape == (1100, 1030) and rad.spacing_mm == (0.1, 0.1)
        assert "ResolutionReduction" not in rad.metadata
    np.testing.assert_array_equal(first.pixels, read_radiograph(path).pixels)
    (record,) = [r for r in caplog.records if r.name == J2K_LOGGER]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("Glymur is not importable")
    assert "decoded at full resolution" in message and "libopenjp2" in message


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("0.0.0", "Glymur finds no OpenJPEG library (libopenjp2)"),
        ("2.1.2", "Glymur finds OpenJPEG 2.1.2, older than 2.3"),
        ("2.3.0", None),
        ("2.5.0", None),
    ],
)
def test_glymur_needs_openjpeg_2_3(
    monkeypatch: pytest.MonkeyPatch, no_glymur: None, version: str, problem: str | None
) -> None:
    fake = types.SimpleNamespace(version=types.SimpleNamespace(openjpeg_version=version))
    monkeypatch.setitem(sys.modules, "glymur", fake)
    assert _j2k.glymur_problem() == problem
    assert _j2k.glymur_available() == (problem is None)


def test_reduced_decode_of_real_films(real: Any) -> None:
    needs_glymur()
    # RG1 (1955 x 1841, 15 bit, MONOCHROME1 windowed); RG3 (10 bit): the grey pipeline and the
    # inversion apply to the reduced image as to the full one
    for name in ("RG1_J2KR.dcm", "RG3_J2KI.dcm"):
        ds = real.dataset(name)
        data = codestream(ds)
        info = _j2k.parse_codestream(data)
        assert info is not None
        half = _j2k.decode(data, info, False, 1, name)
        assert half is not None and half.dtype == np.uint16
        expected = box_mean(real.stored(name), 2)
        assert half.shape == expected.shape
        span = float(np.ptp(real.stored(name)))
        assert float(np.mean(np.abs(half - expected))) / span < 0.005


@pytest.mark.parametrize(("bits", "signed"), [(8, False), (12, True), (16, False)])
def test_reduced_decode_keeps_the_stored_scale(
    dicom_factory: Any, ramp: Any, bits: int, signed: bool
) -> None:
    needs_j2k_encoder()
    needs_glymur()
    stored = ramp(300, 280, bits) - (2 ** (bits - 1) if signed else 0)
    ds = dicom_factory.dataset(
        pixels=stored, bits_allocated=8 if bits == 8 else 16, bits_stored=bits, signed=signed
    )
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    data = codestream(ds)
    info = _j2k.parse_codestream(data)
    assert info is not None and info.signed == signed and info.precision == bits
    for level in (1, 2):
        out = _j2k.decode(data, info, signed, level, "ramp")
        assert out is not None
        assert out.dtype == np.dtype(f"{'i' if signed else 'u'}{1 if bits == 8 else 2}")
        expected = box_mean(stored, 2**level)
        assert out.shape == expected.shape
        # same level and scale as the stored values: a missed shift or offset is far off
        span = 2**bits - 1
        assert abs(float(out.mean()) - float(stored.mean())) < 0.01 * span
        assert stored.min() - 0.01 * span <= out.min() < out.max() <= stored.max() + 0.01 * span
        assert float(np.corrcoef(out.ravel(), expected.ravel())[0, 1]) > 0.99


# --- the rule -----------------------------------------------------------------------------


def stream(rows: int = 3000, cols: int = 2400, levels: int = 5, **kw: Any) -> _j2k.Codestream:
    values: dict[str, Any] = {
        "rows": rows,
        "columns": cols,
        "offset": (0, 0),
        "components": 1,
        "precision": 12,
        "signed": False,
        "levels": levels,
    }
    values.update(kw)
    return _j2k.Codestream(**values)


@pytest.mark.parametrize(
    ("spacing", "limit", "level"),
    [
        ((0.14, 0.14), 0.2, 0),  # typical DR: full resolution
        ((0.2, 0.2), 0.2, 0),
        ((0.1, 0.1), 0.2, 1),
        ((0.1, 0.1), 0.199, 0),
        ((0.1, 0.12), 0.2, 0),  # the coarser of the two spacings decides
        ((0.05, 0.05), 0.2, 2),
        ((0.05, 0.05), 0.15, 1),
        ((0.01, 0.01), 0.2, 4),
        ((0.1, 0.1), None, 0),  # not asked for
        (None, 0.2, 0),  # spacing unknown
    ],
)
def test_reduction_level_rule(
    spacing: Any, limit: float | None, level: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_j2k, "glymur_available", lambda: True)
    assert _j2k.reduction_level(spacing, limit, stream(rows=8192, cols=8192), False, 256) == level


def test_reduction_level_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_j2k, "glymur_available", lambda: True)
    fine = (0.025, 0.025)
    assert _j2k.reduction_level(fine, 0.2, stream(levels=1), False, 256) == 1
    assert _j2k.reduction_level(fine, 0.2, stream(levels=0), False, 256) == 0
    # both sides keep 320 pixels (or min_size, when larger)
    assert _j2k.MIN_REDUCED_SIDE == 320
    assert _j2k.reduction_level(fine, 0.2, stream(rows=3000, cols=2100), False, 256) == 2
    assert _j2k.reduction_level(fine, 0.2, stream(rows=3000, cols=2100), False, 600) == 1
    assert _j2k.reduction_level(fine, 0.2, stream(rows=3000, cols=1000), False, 256) == 1
    assert _j2k.reduction_level(fine, 0.2, stream(rows=3000, cols=600), False, 256) == 0
    # a codestream signed otherwise than PixelRepresentation, or with an image offset
    assert _j2k.reduction_level(fine, 0.2, stream(), True, 256) == 0
    assert _j2k.reduction_level(fine, 0.2, stream(offset=(0, 8)), False, 256) == 0
    # any size of level (ceil(2101 / 4) = 526 columns)
    assert _j2k.reduction_level(fine, 0.2, stream(rows=4000, cols=2101), False, 256) == 2
    # without Glymur: full resolution
    monkeypatch.setattr(_j2k, "glymur_available", lambda: False)
    monkeypatch.setattr(_j2k, "_warn_full_resolution", lambda: None)
    assert _j2k.reduction_level(fine, 0.2, stream(rows=4000, cols=2101), False, 256) == 0


# --- codestream header, sample conversion, threads ----------------------------------------


def test_parse_codestream_of_a_real_film(real: Any) -> None:
    info = _j2k.parse_codestream(codestream(real.dataset("RG1_J2KR.dcm")))
    assert info == _j2k.Codestream(
        rows=1955, columns=1841, offset=(0, 0), components=1, precision=15, signed=False, levels=5
    )
    mismatch = _j2k.parse_codestream(codestream(real.dataset("J2K_pixelrep_mismatch.dcm")))
    assert mismatch is not None and (mismatch.precision, mismatch.signed) == (13, False)


def test_parse_codestream_coc_lowers_levels(real: Any) -> None:
    data = codestream(real.dataset("RG3_J2KR.dcm"))
    siz_len = struct.unpack_from(">H", data, 4)[0]
    at = 4 + siz_len
    coc = b"\xff\x53" + struct.pack(">HBBB", 5, 0, 0, 2)  # component 0: 2 levels
    info = _j2k.parse_codestream(data[:at] + coc + data[at:])
    assert info is not None and info.levels == 2


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 64,  # JP2 file, not a raw codestream
        b"\xff\x4f\xff\x51\x00\x29\x00",  # header cut inside SIZ
        b"\xff\x4f\xff\x90\x00\x0a" + b"\x00" * 8,  # no SIZ before the first tile
        b"",
    ],
)
def test_parse_codestream_refuses(data: bytes) -> None:
    assert _j2k.parse_codestream(data) is None


def test_as_stored_sign_corrections() -> None:
    unsigned = np.array([0, 100, 4096, 8191], dtype=np.uint16)  # 13-bit, stored unsigned
    signed_view = _j2k.as_stored(unsigned, 13, j2k_signed=False, pixel_signed=True)
    assert signed_view.dtype == np.int16
    assert signed_view.tolist() == [0, 100, -4096, -1]
    signed = np.array([-2, -1, 0, 5], dtype=np.int16)  # 12-bit signed codestream
    unsigned_view = _j2k.as_stored(signed, 12, j2k_signed=True, pixel_signed=False)
    assert unsigned_view.dtype == np.uint16
    assert unsigned_view.tolist() == [4094, 4095, 0, 5]
    assert _j2k.as_stored(np.array([1, 2], np.int32), 8, False, False).dtype == np.uint8
    assert _j2k.as_stored(np.array([1, 2], np.int32), 20, False, False).dtype == np.uint32


def test_decode_threads_follow_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.SimpleNamespace(get_num_threads=lambda: 3)
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert _j2k.decode_threads() == 3
    fake.get_num_threads = lambda: 64
    assert _j2k.decode_threads() == _j2k.MAX_THREADS
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4}, raising=False)
    assert _j2k.decode_threads() == 5


def test_lossy_full_resolution_equals_pydicom_on_a_film(dicom_factory: Any, ramp: Any) -> None:
    needs_j2k_encoder()
    ds = dicom_factory.dataset(pixels=ramp(600, 520, 12))
    ds.compress(JPEG2000, encoding_plugin="pylibjpeg", j2k_cr=[20])
    path = dicom_factory.write("lossy.dcm", ds)
    stored = pydicom.dcmread(path).pixel_array
    data = codestream(pydicom.dcmread(path))
    info = _j2k.parse_codestream(data)
    assert info is not None
    fast = _j2k.decode(data, info, False, 0, "lossy")
    assert fast is not None
    np.testing.assert_array_equal(fast, stored)
