"""collect_inputs: files, folders (recursive), list files and zip archives."""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from aacscore.io import InputItem, RadiographError, collect_inputs


def png(path: Path, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((300, 300), value, np.uint8)).save(path)
    return path


@pytest.fixture
def tree(tmp_path: Path, dicom_factory: Any) -> Path:
    """root/ with DICOMs (with and without extension), images, junk, hidden files, DICOMDIR."""
    root = tmp_path / "root"
    dicom_factory.write("root/b.dcm")
    dicom_factory.write("root/sub/deeper/IM0001")  # no extension: found by the DICM preamble
    png(root / "a.png")
    png(root / "sub" / "c.tiff")
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "data.csv").write_text("a,b\n")
    dicom_factory.write("root/.hidden/x.dcm")
    dicom_factory.write("root/DICOMDIR")
    return root


def test_folder_recursive_sorted_and_filtered(tree: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="aacscore.io"):
        items = collect_inputs([tree])
    rel = [item.path.relative_to(tree).as_posix() for item in items]
    assert rel == ["a.png", "b.dcm", "sub/c.tiff", "sub/deeper/IM0001"]
    assert all(item.member is None for item in items)
    skipped = " ".join(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
    assert "notes.txt" in skipped and "data.csv" in skipped and "DICOMDIR" in skipped
    rad = items[3].read()
    assert rad.source == "dicom" and rad.shape == (300, 300)


def test_explicit_files_kept_in_order_without_duplicates(tree: Path) -> None:
    items = collect_inputs([tree / "sub" / "c.tiff", tree / "a.png", str(tree / "a.png")])
    assert [item.path.name for item in items] == ["c.tiff", "a.png"]
    assert items[1].name == str(tree / "a.png") and items[1].stem == "a"


def test_explicit_non_image_file_is_kept_and_fails_on_read(tree: Path) -> None:
    items = collect_inputs([tree / "sub" / "data.csv"])
    assert len(items) == 1
    with pytest.raises(RadiographError, match="not a DICOM or image file"):
        items[0].read()


def test_missing_input(tmp_path: Path) -> None:
    with pytest.raises(RadiographError, match="file not found") as err:
        collect_inputs([tmp_path / "missing"])
    assert "missing" in str(err.value)


def make_zip(tmp_path: Path, dicom_factory: Any, ramp: Any) -> tuple[Path, np.ndarray]:
    raw = ramp(300, 300, 12)
    one = dicom_factory.write("src/one.dcm", pixels=raw)
    two = dicom_factory.write("src/two", pixels=raw[::-1])  # no extension
    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(two, "scans/two")
        zf.write(one, "scans/one.dcm")
        zf.writestr("scans/readme.txt", "junk")
        zf.writestr("__MACOSX/scans/._one.dcm", b"\x00" * 200)
        zf.writestr("scans/empty/", b"")
    return archive, raw


def test_zip_two_dicoms_and_junk(
    tmp_path: Path, dicom_factory: Any, ramp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, raw = make_zip(tmp_path, dicom_factory, ramp)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    items = collect_inputs([archive])
    assert [item.member for item in items] == ["scans/one.dcm", "scans/two"]
    assert items[0].name == f"{archive}:scans/one.dcm"
    assert items[0].stem == "one" and items[0].path == archive
    first, second = (item.read(spacing_mm=0.2) for item in items)
    np.testing.assert_allclose(first.pixels, raw / 4095.0, atol=1e-6)
    np.testing.assert_allclose(second.pixels, raw[::-1] / 4095.0, atol=1e-6)
    assert first.spacing_mm == (0.2, 0.2)
    assert items[0].read_bytes()[128:132] == b"DICM"
    assert os.listdir(work) == []  # nothing was extracted


def test_zip_member_errors_name_the_member(tmp_path: Path) -> None:
    archive = tmp_path / "bad_member.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/broken.dcm", b"\x00" * 128 + b"DICM" + b"\x02\x00")
    (item,) = collect_inputs([archive])
    with pytest.raises(RadiographError) as err:
        item.read()
    assert f"{archive}:x/broken.dcm" in str(err.value)


def test_zip_inside_folder_is_expanded(tmp_path: Path, dicom_factory: Any, ramp: Any) -> None:
    archive, _ = make_zip(tmp_path, dicom_factory, ramp)
    folder = tmp_path / "in"
    folder.mkdir()
    archive.rename(folder / "batch.zip")
    png(folder / "z.png")
    names = [item.name for item in collect_inputs([folder])]
    assert names == [
        f"{folder / 'batch.zip'}:scans/one.dcm",
        f"{folder / 'batch.zip'}:scans/two",
        str(folder / "z.png"),
    ]


def test_corrupt_zip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(RadiographError, match="zip") as err:
        collect_inputs([bad])
    assert "bad.zip" in str(err.value)


def test_list_file(tmp_path: Path, tree: Path) -> None:
    listing = tmp_path / "inputs.txt"
    listing.write_text("# scans to score\nroot/a.png\n\n  root/sub  \n" + f"{tree / 'b.dcm'}\n")
    items = collect_inputs([listing])
    assert [item.path.name for item in items] == ["a.png", "c.tiff", "IM0001", "b.dcm"]


def test_list_file_with_missing_entry(tmp_path: Path) -> None:
    listing = tmp_path / "inputs.lst"
    listing.write_text("gone.dcm\n")
    with pytest.raises(RadiographError, match=r"listed in .*inputs.lst line 1"):
        collect_inputs([listing])


def test_input_item_is_frozen_and_hashable(tmp_path: Path) -> None:
    item = InputItem(tmp_path / "a.zip", "x/y.dcm")
    assert item.name.endswith("a.zip:x/y.dcm") and item.stem == "y"
    assert len({item, InputItem(tmp_path / "a.zip", "x/y.dcm")}) == 1
    with pytest.raises(AttributeError):
        item.member = "z"  # type: ignore[misc]
