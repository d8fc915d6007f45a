"""On-disk layout, determinism across jobs, DICOM header and read-back through the reader."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from aacscore.kauppila import SEGMENTS
from aacscore.simulate import (
    TRUTH_COLUMNS,
    AnnotationError,
    load_case_annotations,
    simulate_dataset,
    write_case,
)
from tests.simulate.simulate_helpers import case


def test_dataset_layout_and_jobs_determinism(tmp_path: Path) -> None:
    a = simulate_dataset(
        tmp_path / "a", 3, seed=4, jobs=1, fmt="both", progress=False, spacing_mm=0.35
    )
    b = simulate_dataset(
        tmp_path / "b", 3, seed=4, jobs=2, fmt="both", progress=False, spacing_mm=0.35
    )
    files_a = sorted(p.name for p in (tmp_path / "a").iterdir())
    files_b = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert files_a == files_b
    expected = {"truth.csv"} | {
        f"case_{i:06d}{suf}"
        for i in range(3)
        for suf in (".dcm", ".png", "_labels.png", "_calc.png", ".json")
    }
    assert set(files_a) == expected
    for name in files_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert a.aac24 == b.aac24 and a.n == 3
    with open(a.truth_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
        assert tuple(rows[0].keys()) == TRUTH_COLUMNS
    assert list(TRUTH_COLUMNS) == ["case", "file", *SEGMENTS, "aac24", "aac8", "group"]
    assert rows[0]["file"] == "case_000000.dcm"
    for row in rows:
        ann = load_case_annotations(tmp_path / "a" / f"{row['case']}.json")
        assert ann["aac24"] == int(row["aac24"]) == sum(int(row[s]) for s in SEGMENTS)
        assert ann["group"] == row["group"]
        assert ann["vertebrae"]["L1"]["corners"].shape == (4, 2)
        assert ann["segments"]["L1_anterior"]["bounds"].shape == (2, 2)
        for s in SEGMENTS:
            assert ann["segments"][s]["grade"] == int(row[s])
        labels = np.asarray(Image.open(tmp_path / "a" / f"{row['case']}_labels.png"))
        calc = np.asarray(Image.open(tmp_path / "a" / f"{row['case']}_calc.png"))
        png = np.asarray(Image.open(tmp_path / "a" / f"{row['case']}.png"))
        assert labels.dtype == np.uint8 and calc.dtype == np.uint8
        assert png.dtype == np.uint16
        assert labels.shape == calc.shape == png.shape == tuple(ann["shape"])
        assert set(ann) >= {
            "case", "seed", "index", "distribution", "files", "shape", "spacing_mm",
            "anterior_side", "photometric", "modality", "vertebrae", "walls", "segments",
            "aac24", "aac8", "group", "params",
        }  # fmt: skip


def test_json_round_trip_matches_case(tmp_path: Path) -> None:
    c = case(11, 1)
    write_case(c, tmp_path, "png")
    ann = load_case_annotations(tmp_path / "case_000001.json")
    assert ann["files"]["png"] == "case_000001.png"
    assert ann["anterior_side"] == c.anterior_side
    np.testing.assert_allclose(ann["walls"]["anterior"], c.walls["anterior"], atol=1e-3)
    for s in SEGMENTS:
        assert ann["segments"][s]["fraction"] == pytest.approx(c.fractions[s], abs=1e-6)
        np.testing.assert_allclose(ann["segments"][s]["bounds"], c.segment_bounds[s], atol=1e-3)
    json.dumps(c.params)  # JSON-serialisable


def test_load_annotations_errors(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="not found"):
        load_case_annotations(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(AnnotationError, match=r"bad\.json"):
        load_case_annotations(bad)
    bad.write_text("{}")
    with pytest.raises(AnnotationError, match="missing"):
        load_case_annotations(bad)


@pytest.mark.parametrize(
    ("photometric", "modality"),
    [("MONOCHROME1", "DX"), ("MONOCHROME2", "CR"), ("MONOCHROME1", "CR")],
)
def test_dicom_header_and_reader_round_trip(
    tmp_path: Path, photometric: str, modality: str
) -> None:
    from aacscore.io import read_radiograph

    c = case(11, 3, photometric=photometric, modality=modality)
    write_case(c, tmp_path, "dicom")
    path = tmp_path / "case_000003.dcm"
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == photometric
    assert ds.Modality == modality
    assert ds.BitsAllocated == 16 and ds.HighBit == ds.BitsStored - 1
    assert ds.BodyPartExamined == "LSPINE"
    assert ds.ViewPosition in ("LL", "RL", "LATERAL")
    assert str(ds.PatientName) == "SIM^CASE_000003"
    assert np.array_equal(ds.pixel_array, c.stored)
    if modality == "CR":
        assert float(ds.PixelSpacing[0]) == pytest.approx(0.35)
    else:
        emf = float(ds.EstimatedRadiographicMagnificationFactor)
        assert float(ds.ImagerPixelSpacing[0]) / emf == pytest.approx(0.35, rel=1e-4)
    uids = {ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID}
    assert len(uids) == 3 and all(pydicom.uid.UID(u).is_valid for u in uids)
    again = pydicom.dcmread(path)
    assert again.SOPInstanceUID == ds.SOPInstanceUID
    rad = read_radiograph(path)
    assert rad.spacing_mm is not None
    assert rad.spacing_mm[0] == pytest.approx(0.35, rel=1e-4)
    assert rad.pixels.shape == c.image.shape
    corr = np.corrcoef(rad.pixels.ravel(), c.image.ravel())[0, 1]
    assert corr > 0.98  # bone bright whatever the photometric interpretation
