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


# --- what is skipped, and why (find_inputs) --------------------------------------------------


def _simulated_folder(simulated_film: dict[str, Path], root: Path) -> Path:
    """A copy of the simulated film's folder (film as DICOM and PNG, label map, calcification
    mask, annotations JSON) plus truth.csv."""
    import shutil

    src = simulated_film["dicom"].parent
    shutil.copytree(src, root)
    (root / "truth.csv").write_text("case,file\n")
    return root


def test_simulator_sidecars_are_skipped_with_a_note(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    from aacscore.io import find_inputs

    root = _simulated_folder(simulated_film, tmp_path / "sim")
    stem = simulated_film["dicom"].stem
    found = find_inputs([root])
    assert [it.path.name for it in found.items] == [f"{stem}.dcm", f"{stem}.png"]
    reasons = {Path(s.file).name: s.reason for s in found.skipped}
    assert reasons == {
        f"{stem}.json": "a JSON sidecar (annotations or results), not a radiograph",
        f"{stem}_calc.png": f"the simulator's calcification mask of {stem}",
        f"{stem}_labels.png": f"the simulator's vertebra label map of {stem}",
        "truth.csv": "not a DICOM or image file",
    }
    assert [it.path for it in found.items] == [it.path for it in collect_inputs([root])]
    # given explicitly, a sidecar is skipped too; a "_labels" PNG without its case is a film
    explicit = find_inputs([root / f"{stem}_labels.png", root / f"{stem}.png"])
    assert [it.path.name for it in explicit.items] == [f"{stem}.png"]
    assert explicit.skipped[0].as_dict() == {
        "file": str(root / f"{stem}_labels.png"),
        "reason": f"the simulator's vertebra label map of {stem}",
    }
    lone = png(tmp_path / "other" / "knee_labels.png")
    assert [it.path for it in find_inputs([lone.parent]).items] == [lone]


def test_sidecars_in_a_zip_are_skipped(simulated_film: dict[str, Path], tmp_path: Path) -> None:
    from aacscore.io import find_inputs

    root = _simulated_folder(simulated_film, tmp_path / "sim")
    archive = tmp_path / "sim.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(root.iterdir()):
            zf.write(p, f"batch/{p.name}")
    found = find_inputs([archive])
    stem = simulated_film["dicom"].stem
    assert [it.member for it in found.items] == [f"batch/{stem}.dcm", f"batch/{stem}.png"]
    assert {s.file.rsplit("/", 1)[-1] for s in found.skipped} == {
        f"{stem}.json",
        f"{stem}_calc.png",
        f"{stem}_labels.png",
        "truth.csv",
    }


def test_our_overlay_png_is_skipped_and_other_pngs_are_not(tmp_path: Path) -> None:
    from aacscore.io import find_inputs
    from aacscore.outputs.overlay import save_overlay

    ours = save_overlay(np.zeros((300, 300, 3), np.uint8), tmp_path / "in" / "overlay.png")
    theirs = png(tmp_path / "in" / "film.png")
    tagged = tmp_path / "in" / "tagged.png"
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", "GIMP 2.10")
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(tagged, pnginfo=info)
    found = find_inputs([tmp_path / "in"])
    assert [it.path for it in found.items] == [theirs, tagged]
    (skip,) = found.skipped
    assert skip.file == str(ours) and skip.reason.startswith(
        "an aacscore overlay picture (PNG Software=aacscore "
    )
    assert find_inputs([ours]).items == ()  # given explicitly too
    archive = tmp_path / "o.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(ours, "overlay.png")
        zf.write(theirs, "film.png")
    assert [it.member for it in find_inputs([archive]).items] == ["film.png"]


def test_our_dicom_sr_and_sc_are_skipped_and_a_foreign_sc_is_not(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    import pydicom
    from pydicom.uid import generate_uid

    from aacscore.io import find_inputs
    from aacscore.outputs.dicom import build_sc

    source = pydicom.dcmread(simulated_film["dicom"])
    folder = tmp_path / "in"
    folder.mkdir()
    ours = build_sc(source, np.zeros((320, 320, 3), np.uint8), "left")
    ours.save_as(folder / "a_sc.dcm", enforce_file_format=True)
    foreign = build_sc(source, np.zeros((320, 320, 3), np.uint8), "left")
    foreign.Manufacturer = "Film Digitizer Inc"
    foreign.ManufacturerModelName = "Scan 3000"
    foreign.SeriesDescription = "L-SPINE LAT (digitised film)"
    foreign.SOPInstanceUID = generate_uid()
    foreign.file_meta.MediaStorageSOPInstanceUID = foreign.SOPInstanceUID
    foreign.save_as(folder / "b_foreign_sc", enforce_file_format=True)  # no suffix: sniffed
    sr = source.copy()
    del sr.PixelData
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR, from anyone
    sr.file_meta.MediaStorageSOPClassUID = sr.SOPClassUID
    sr.Modality = "SR"
    sr.save_as(folder / "c_sr.dcm", enforce_file_format=True)
    found = find_inputs([folder])
    assert [it.path.name for it in found.items] == ["b_foreign_sc"]
    reasons = {Path(s.file).name: s.reason for s in found.skipped}
    assert reasons["a_sc.dcm"].startswith("an aacscore secondary capture (series 'aacscore AAC-24")
    assert reasons["c_sr.dcm"] == (
        "a DICOM structured report (SOP Class 1.2.840.10008.5.1.4.1.1.88.33), not an image"
    )
    assert len(found.skipped) == 2


def test_an_excluded_folder_is_never_entered(tmp_path: Path) -> None:
    from aacscore.io import find_inputs
    from aacscore.io.inputs import OUTPUT_FOLDER_REASON

    root = tmp_path / "in"
    film = png(root / "a.png")
    png(root / "results" / "overlays" / "not_marked.png")  # would be read without exclude
    (root / "results" / "results.csv").write_text("file\n")
    found = find_inputs([root], exclude=[root / "results"])
    assert [it.path for it in found.items] == [film]
    assert [s.as_dict() for s in found.skipped] == [
        {"file": str(root / "results"), "reason": OUTPUT_FOLDER_REASON}
    ]
    # relative or absolute, and the folder or a file in it given explicitly
    rel = find_inputs([root], exclude=[os.path.relpath(root / "results")])
    assert [it.path for it in rel.items] == [film]
    inside = find_inputs(
        [root / "results" / "overlays" / "not_marked.png"], exclude=[root / "results"]
    )
    assert inside.items == () and inside.skipped[0].reason == OUTPUT_FOLDER_REASON
    others = find_inputs([root], exclude=[tmp_path / "elsewhere"])
    assert [it.path.name for it in others.items] == ["a.png", "not_marked.png"]
