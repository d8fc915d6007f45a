"""The reader on PNG, JPEG and TIFF files (Pillow)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from aacscore.io import RadiographError, read_radiograph, read_radiograph_bytes


def save(tmp_path: Path, name: str, arr: np.ndarray, mode: str | None = None, **kw: Any) -> Path:
    path = tmp_path / name
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    img.save(path, **kw)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR claims ``width x height`` followed by a tiny (invalid) image stream."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    path.write_bytes(data + chunk(b"IEND", b""))
    return path


def test_png_8bit(tmp_path: Path, ramp: Any) -> None:
    raw = ramp(300, 310, 8).astype(np.uint8)
    rad = read_radiograph(save(tmp_path, "a.png", raw))
    assert rad.source == "png" and rad.photometric == "MONOCHROME2" and rad.bits_stored == 8
    assert rad.pixels.dtype == np.float32 and rad.shape == (300, 310)
    np.testing.assert_allclose(rad.pixels, raw / 255.0, atol=1e-6)
    assert rad.spacing_mm is None and rad.spacing_source is None and rad.warnings == ()


def test_png_spacing_supplied(tmp_path: Path, ramp: Any) -> None:
    path = save(tmp_path, "a.png", ramp(300, 300, 8).astype(np.uint8))
    rad = read_radiograph(path, spacing_mm=0.143)
    assert rad.spacing_mm == (0.143, 0.143) and rad.spacing_source == "user"


def test_png_16bit(tmp_path: Path, ramp: Any) -> None:
    raw = ramp(300, 300, 16).astype(np.uint16)
    path = save(tmp_path, "b.png", raw)
    assert Image.open(path).mode in ("I;16", "I")
    rad = read_radiograph(path)
    assert rad.bits_stored == 16
    np.testing.assert_allclose(rad.pixels, raw / 65535.0, atol=1e-6)


def test_jpeg_grey(tmp_path: Path, ramp: Any) -> None:
    raw = ramp(300, 300, 8).astype(np.uint8)
    rad = read_radiograph(save(tmp_path, "c.jpg", raw, quality=95))
    assert rad.source == "jpeg" and rad.bits_stored == 8
    assert float(np.mean(np.abs(rad.pixels - raw / 255.0))) < 0.02


def test_tiff_16bit(tmp_path: Path, ramp: Any) -> None:
    raw = ramp(300, 300, 16).astype(np.uint16)
    rad = read_radiograph(save(tmp_path, "d.tif", raw))
    assert rad.source == "tiff" and rad.bits_stored == 16
    np.testing.assert_allclose(rad.pixels, raw / 65535.0, atol=1e-6)


def test_tiff_16bit_white_is_zero_inverted(tmp_path: Path, ramp: Any) -> None:
    raw = ramp(300, 300, 16).astype(np.uint16)
    path = save(tmp_path, "wiz.tif", raw)
    data = bytearray(path.read_bytes())
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 262:  # PhotometricInterpretation
            struct.pack_into("<H", data, entry + 8, 0)  # WhiteIsZero
    path.write_bytes(bytes(data))
    rad = read_radiograph(path)
    assert rad.photometric == "MONOCHROME1"
    np.testing.assert_allclose(rad.pixels, 1.0 - raw / 65535.0, atol=1e-6)


def test_float_tiff_in_unit_range(tmp_path: Path, ramp: Any) -> None:
    raw = (ramp(300, 300, 12) / 4095.0).astype(np.float32)
    rad = read_radiograph(save(tmp_path, "f.tiff", raw))
    np.testing.assert_allclose(rad.pixels, raw, atol=1e-7)


def test_rgb_screenshot_converted_with_warning(tmp_path: Path, ramp: Any) -> None:
    grey = ramp(300, 300, 8).astype(np.uint8)
    rgb = np.stack([grey, grey, 255 - grey], axis=-1)
    rad = read_radiograph(save(tmp_path, "shot.png", rgb))
    assert rad.photometric == "RGB"
    expected = (0.299 * grey + 0.587 * grey + 0.114 * (255.0 - grey)) / 255.0
    np.testing.assert_allclose(rad.pixels, expected, atol=1e-6)
    assert len(rad.warnings) == 1 and "grey" in rad.warnings[0]


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_grey_stored_as_rgb_is_silent(tmp_path: Path, ramp: Any, mode: str) -> None:
    grey = ramp(300, 300, 8).astype(np.uint8)
    rad = read_radiograph(save(tmp_path, "g.png", grey, mode=mode))
    assert rad.warnings == ()
    np.testing.assert_allclose(rad.pixels, grey / 255.0, atol=1e-6)


def test_png_too_small(tmp_path: Path) -> None:
    path = save(tmp_path, "tiny.png", np.zeros((64, 400), np.uint8))
    with pytest.raises(RadiographError, match=r"too small: 64 x 400") as err:
        read_radiograph(path)
    assert "tiny.png" in str(err.value)


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [(20000, 20000, "400000000 pixels"), (11000, 10000, "10000 x 11000 = 110.0 megapixels")],
)
def test_png_too_large_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int, height: int, message: str
) -> None:
    # 400 MP: Pillow's own bomb limit; 110 MP: under Pillow's limit, over aacscore's 100 MP.
    path = png_header_only(tmp_path / "huge.png", width, height)
    decoded: list[str] = []
    real_load = ImageFile.ImageFile.load

    def spy_load(self: ImageFile.ImageFile) -> Any:
        decoded.append(self.filename if isinstance(self.filename, str) else "?")
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    with pytest.raises(RadiographError, match="too large") as err:
        read_radiograph(path)
    assert decoded == []  # refused from the header: the pixel data was never decoded
    assert "huge.png" in str(err.value) and message in str(err.value)
    # the spy does see the decoding of an acceptable file
    ok = save(tmp_path, "ok.png", np.zeros((300, 300), np.uint8))
    read_radiograph(ok)
    assert decoded and set(decoded) == {str(ok)}


def test_truncated_png(tmp_path: Path, ramp: Any) -> None:
    rng = np.random.default_rng(3)
    noisy = rng.integers(0, 256, size=(300, 300), dtype=np.uint8)  # incompressible
    path = save(tmp_path, "cut.png", noisy)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RadiographError, match="truncated") as err:
        read_radiograph(path)
    assert "cut.png" in str(err.value)


def test_png_extension_with_other_content(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_text("hello, not an image\n" * 20)
    with pytest.raises(RadiographError, match="not a DICOM or image file"):
        read_radiograph(path)


def test_multipage_tiff_refused(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.full((300, 300), v, np.uint8)) for v in (10, 20)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    with pytest.raises(RadiographError, match=r"multi-frame image \(2 frames\)"):
        read_radiograph(path)


def test_bytes_reader_uses_member_name(tmp_path: Path, ramp: Any) -> None:
    raw = ramp(300, 300, 8).astype(np.uint8)
    data = save(tmp_path, "m.png", raw).read_bytes()
    rad = read_radiograph_bytes(data, "scans.zip:dir/m.png", spacing_mm=0.1)
    np.testing.assert_allclose(rad.pixels, raw / 255.0, atol=1e-6)
    assert rad.spacing_mm == (0.1, 0.1)
    with pytest.raises(RadiographError, match=r"scans\.zip:dir/bad\.png"):
        read_radiograph_bytes(b"junk" * 100, "scans.zip:dir/bad.png")


def test_colourfulness_tells_photographs_from_grey_and_tinted_films() -> None:
    from skimage.data import astronaut, chelsea

    from aacscore.io._common import colourfulness

    grey = np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.float64)
    assert colourfulness(np.stack([grey] * 3, axis=-1)) == 0.0
    warm = np.stack([grey, grey * 0.88, grey * 0.7], axis=-1)
    assert colourfulness(warm) < 10
    assert colourfulness(chelsea()) >= 10 and colourfulness(astronaut()) >= 10
    # the scale of the input does not matter
    sixteen = chelsea().astype(np.float64) * 257.0
    assert abs(colourfulness(sixteen, 65535.0) - colourfulness(chelsea())) < 1e-6


def test_a_colour_image_records_its_colourfulness(tmp_path: Path) -> None:
    from skimage.data import chelsea

    Image.fromarray(chelsea()).save(tmp_path / "cat.png")
    rad = read_radiograph(tmp_path / "cat.png")
    assert rad.metadata["Colourfulness"] >= 10
    grey = np.stack([np.asarray(chelsea()).mean(axis=-1).astype(np.uint8)] * 3, axis=-1)
    Image.fromarray(grey).save(tmp_path / "grey_rgb.png")
    assert "Colourfulness" not in read_radiograph(tmp_path / "grey_rgb.png").metadata
