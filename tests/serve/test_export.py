"""``aacscore review export``: the files it writes are read by validate and the trainers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.kauppila import SEGMENTS
from aacscore.serve.cases import CaseIndex
from aacscore.serve.export import export_reviews, label_map
from aacscore.serve.store import Decision, ReviewChange, ReviewStore
from aacscore.stats.validate.inputs import load_reference
from aacscore.training.score_data import read_labels_csv
from aacscore.vertebrae import CORNER_NAMES, LABEL_VALUES
from tests.serve.conftest import Folder

GRADES = {s: (i + 1) % 4 for i, s in enumerate(SEGMENTS)}


def _moved_l3(folder: Folder) -> list[list[float]]:
    doc = CaseIndex(folder.out).get(folder.dicom_id).document()
    c = doc["spine"]["vertebrae"]["L3"]["corners"]
    return [[c[n][0] + 2.0, c[n][1] - 1.0] for n in CORNER_NAMES]


def test_export_writes_what_validate_and_training_read(folder: Folder, tmp_path: Path) -> None:
    store = ReviewStore.for_folder(folder.out)
    l3 = _moved_l3(folder)
    store.save(folder.dicom_id, "ann", ReviewChange(Decision.PENDING, grades=GRADES), 0)
    store.save(
        folder.dicom_id,
        "bob",
        ReviewChange(Decision.ACCEPT, grades=GRADES, vertebrae={"L3": l3}),
        1,
    )
    store.save(folder.png_id, "ann", ReviewChange(Decision.REJECT, grades=GRADES), 0)
    labels = tmp_path / "labels"
    summary = export_reviews(folder.out, labels)
    assert (summary.n_reference, summary.n_grades, summary.n_spine) == (1, 1, 1)
    assert "reject" in summary.skipped[folder.png_id]

    ref = load_reference(summary.reference_csv)
    assert ref.keys == ("patient film",) and ref.total.tolist() == [sum(GRADES.values())]
    assert ref.segments is not None and ref.segments[0].tolist() == [GRADES[s] for s in SEGMENTS]

    films, grades, _totals = read_labels_csv(summary.grades_csv)
    assert films == [folder.dicom.resolve()] and films[0].is_file()
    assert grades[0].tolist() == [GRADES[s] for s in SEGMENTS]

    stem = folder.dicom_id
    spine = labels / "spine"
    assert (spine / f"{stem}.dcm").read_bytes() == folder.dicom.read_bytes()
    ann = json.loads((spine / f"{stem}.json").read_text())
    assert ann["vertebrae"]["L3"]["corners"] == l3 and ann["anterior_side"] in ("left", "right")
    lab = np.asarray(Image.open(spine / f"{stem}_labels.png"))
    assert lab.shape == tuple(ann["shape"])
    centre = np.mean(l3, axis=0)
    assert lab[round(centre[1]), round(centre[0])] == LABEL_VALUES["L3"]
    assert set(np.unique(lab)) >= {0, LABEL_VALUES["L1"], LABEL_VALUES["L4"]}

    torch = pytest.importorskip("torch")
    assert torch is not None
    from aacscore.training.spine_data import discover_cases

    (case,) = discover_cases(spine)
    assert case.case_id == stem and case.image_path.suffix == ".dcm"
    assert np.allclose(case.corners["L3"], l3)
    assert json.loads((labels / "export.json").read_text())["n_spine"] == 1


def test_the_latest_review_wins(folder: Folder, tmp_path: Path) -> None:
    store = ReviewStore.for_folder(folder.out)
    store.save(folder.png_id, "ann", ReviewChange(Decision.ACCEPT, grades=GRADES), 0)
    store.save(folder.png_id, "ann", ReviewChange(Decision.REJECT), 1)
    summary = export_reviews(folder.out, tmp_path / "l")
    assert summary.n_reference == 0 and "reject" in summary.skipped[folder.png_id]
    assert summary.reference_csv.read_text().strip() == "file,aac24," + ",".join(SEGMENTS)


def test_label_map_fills_each_quadrilateral() -> None:
    lab = label_map((20, 20), {"L1": [[2, 2], [8, 2], [8, 8], [2, 8]], "XX": [[0, 0]] * 4})
    assert lab[5, 5] == LABEL_VALUES["L1"] and lab[15, 15] == 0 and lab.sum() > 0


def test_cli_export_and_its_errors(folder: Folder, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["review", "export", str(folder.out), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no reviews" in r.output
    ReviewStore.for_folder(folder.out).save(
        folder.dicom_id, "ann", ReviewChange(Decision.ACCEPT, grades=GRADES), 0
    )
    r = runner.invoke(app, ["review", "export", str(folder.out), "-o", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    assert "wrote 1 reference rows" in r.output
    assert (tmp_path / "x" / "reference.csv").is_file()


def test_relabelled_levels_name_the_exported_bodies(folder: Folder, tmp_path: Path) -> None:
    doc = CaseIndex(folder.out).get(folder.dicom_id).document()
    shift: dict[str, str | None] = {
        "T12": "L1", "L1": "L2", "L2": "L3", "L3": "L4", "L4": "L5", "L5": "S1", "S1": None
    }  # fmt: skip
    bound = {"anterior": [600.0, 310.0], "posterior": [487.0, 341.0]}
    ReviewStore.for_folder(folder.out).save(
        folder.dicom_id,
        "ann",
        ReviewChange(Decision.ACCEPT, grades=GRADES, labels=shift, bounds={"L2/L3": bound}),
        0,
    )
    summary = export_reviews(folder.out, tmp_path / "labels")
    assert summary.n_spine == 1 and summary.skipped == {}
    ann = json.loads((summary.spine_dir / f"{folder.dicom_id}.json").read_text())
    model = doc["spine"]["vertebrae"]
    assert sorted(ann["vertebrae"]) == sorted(["L1", "L2", "L3", "L4", "L5", "S1"])
    assert ann["vertebrae"]["L2"]["corners"] == [model["L1"]["corners"][c] for c in CORNER_NAMES]
    assert ann["review_bounds"] == {"L2/L3": bound} and ann["review_labels"] == shift
    lab = np.asarray(Image.open(summary.spine_dir / f"{folder.dicom_id}_labels.png"))
    l1 = np.mean([model["L1"]["corners"][c] for c in CORNER_NAMES], axis=0)
    assert lab[round(l1[1]), round(l1[0])] == LABEL_VALUES["L2"]
    assert LABEL_VALUES["T12"] not in np.unique(lab)
    assert "patient" not in " ".join(p.name for p in summary.spine_dir.iterdir())
