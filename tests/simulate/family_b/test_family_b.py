"""Family B films: determinism, format parity with family A, labels, measured truth, readers."""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from PIL import Image
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.kauppila import SEGMENTS, parse_groups
from aacscore.simulate import TRUTH_COLUMNS, load_case_annotations, simulate_dataset, write_case
from aacscore.simulate.family_b import FamilyBCase, simulate_case_b
from aacscore.vertebrae import LABEL_VALUES
from tests.simulate.simulate_helpers import recompute

SPACING = 0.3
A_KEYS = {
    "case", "seed", "index", "distribution", "files", "shape", "spacing_mm", "anterior_side",
    "photometric", "modality", "vertebrae", "walls", "segments", "aac24", "aac8", "group",
    "params",
}  # fmt: skip


@lru_cache(maxsize=16)
def case(seed: int, index: int, **kw: object) -> FamilyBCase:
    return simulate_case_b(seed, index, distribution="balanced", spacing_mm=SPACING, **kw)


def test_same_seed_same_film_other_index_other_film() -> None:
    a = simulate_case_b(3, 1, spacing_mm=SPACING)
    b = simulate_case_b(3, 1, spacing_mm=SPACING)
    assert np.array_equal(a.stored, b.stored)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.calc_mask, b.calc_mask)
    assert a.annotations() == b.annotations()
    c = simulate_case_b(3, 2, spacing_mm=SPACING)
    assert c.stored.shape != a.stored.shape or not np.array_equal(c.stored, a.stored)


def test_dataset_jobs_independent_and_family_a_format(tmp_path: Path) -> None:
    kw = {"fmt": "both", "progress": False, "spacing_mm": SPACING, "family": "b"}
    one = simulate_dataset(tmp_path / "j1", 2, seed=9, jobs=1, **kw)  # type: ignore[arg-type]
    two = simulate_dataset(tmp_path / "j2", 2, seed=9, jobs=2, **kw)  # type: ignore[arg-type]
    names = sorted(p.name for p in (tmp_path / "j1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "j2").iterdir())
    assert set(names) == {"truth.csv"} | {
        f"case_{i:06d}{s}"
        for i in range(2)
        for s in (".dcm", ".png", "_labels.png", "_calc.png", ".json")
    }
    for n in names:
        assert (tmp_path / "j1" / n).read_bytes() == (tmp_path / "j2" / n).read_bytes(), n
    assert one.aac24 == two.aac24
    with open(one.truth_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == TRUTH_COLUMNS
    for row in rows:
        raw = json.loads((tmp_path / "j1" / f"{row['case']}.json").read_text())
        assert set(raw) >= A_KEYS and raw["family"] == "b"
        assert raw["params"]["family"] == "b"
        assert set(raw["vertebrae"]) >= {"T12", "L1", "L2", "L3", "L4", "L5"}
        ann = load_case_annotations(tmp_path / "j1" / f"{row['case']}.json")
        assert ann["aac24"] == int(row["aac24"]) == sum(int(row[s]) for s in SEGMENTS)
        png = np.asarray(Image.open(tmp_path / "j1" / f"{row['case']}.png"))
        lab = np.asarray(Image.open(tmp_path / "j1" / f"{row['case']}_labels.png"))
        calc = np.asarray(Image.open(tmp_path / "j1" / f"{row['case']}_calc.png"))
        assert png.dtype == np.uint16 and lab.dtype == calc.dtype == np.uint8
        assert png.shape == lab.shape == calc.shape == tuple(ann["shape"])
        assert set(np.unique(calc)) <= {0, 1, 2}
        assert set(np.unique(lab)) <= {0, *LABEL_VALUES.values()}


def test_family_b_differs_from_family_a_of_same_seed(tmp_path: Path) -> None:
    from aacscore.simulate import simulate_case

    a = simulate_case(3, 1, spacing_mm=SPACING)
    assert a.annotations().get("family") is None  # family A output unchanged
    b = simulate_case_b(3, 1, spacing_mm=SPACING)
    assert b.annotations()["family"] == "b"
    assert a.image.shape != b.image.shape or not np.allclose(a.image, b.image)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_labels_match_corners(index: int) -> None:
    c = case(21, index)
    h, w = c.labels.shape
    checked = 0
    for name, value in LABEL_VALUES.items():
        if name not in c.vertebrae:
            continue
        quad = c.vertebrae[name]
        if quad.min() < 2 or quad[:, 0].max() > w - 3 or quad[:, 1].max() > h - 3:
            continue  # body cut by the field edge
        ys, xs = np.nonzero(c.labels == value)
        assert len(xs) > 0, name
        centroid = (xs.mean(), ys.mean())
        assert MplPath(quad).contains_point(centroid), name
        x, y = quad[:, 0], quad[:, 1]
        area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
        assert len(xs) == pytest.approx(area, rel=0.12), name
        # corners in contract order: anterior corners on the anterior side
        ant = quad[[0, 3]].mean(axis=0)[0] - quad[[1, 2]].mean(axis=0)[0]
        assert (ant < 0) == (c.anterior_side == "left"), name
        assert quad[0, 1] < quad[3, 1] and quad[1, 1] < quad[2, 1], name  # superior above
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize(("index", "target"), [(4, 14), (5, 22), (6, 6)])
def test_truth_measured_on_the_mask(index: int, target: int) -> None:
    c = case(33, index, target_aac24=target)
    fr, grades, aac8 = recompute(c.calc_mask, c.walls, c.segment_bounds, c.vertebrae)
    for i, s in enumerate(SEGMENTS):
        assert c.fractions[s] == pytest.approx(fr[s], abs=0.02), s
        if abs(fr[s] - 1 / 3) > 0.02 and abs(fr[s] - 2 / 3) > 0.02:
            assert c.truth.grades[i] == grades[s], s
    assert c.truth.aac24 == sum(c.truth.grades)
    assert c.truth.aac8 == aac8
    assert c.truth.group == parse_groups(None).label(c.truth.aac24)
    assert c.truth.aac24 > 0 and np.isin(c.calc_mask, [1, 2]).any()


def test_high_target_more_calcification_than_zero() -> None:
    zero = case(40, 1, target_aac24=0)
    high = case(40, 1, target_aac24=22)
    assert zero.truth.aac24 == 0
    assert high.truth.aac24 >= 12
    assert (high.calc_mask > 0).sum() > (zero.calc_mask > 0).sum()


def test_mirror_override_and_errors() -> None:
    c = case(7, 0, mirror=True)
    assert c.anterior_side == "right"
    assert c.vertebrae["L3"][0, 0] > c.vertebrae["L3"][1, 0]
    with pytest.raises(TypeError, match="unknown override"):
        simulate_case_b(0, 0, fracture_level="L2")
    with pytest.raises(ValueError, match="distribution"):
        simulate_case_b(0, 0, distribution="ckd")
    with pytest.raises(ValueError, match="family"):
        simulate_dataset("unused", 1, 0, family="c", progress=False)


def test_cli_family_b(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    res = CliRunner().invoke(
        app, ["simulate", "--family", "b", "-n", "2", "-o", str(out), "--format", "png",
              "--spacing", str(SPACING), "--seed", "3"]
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    for i in range(2):
        for suffix in (".png", "_labels.png", "_calc.png", ".json"):
            assert (out / f"case_{i:06d}{suffix}").is_file()
        assert json.loads((out / f"case_{i:06d}.json").read_text())["family"] == "b"
    bad = CliRunner().invoke(app, ["simulate", "--family", "z", "-n", "1", "-o", str(out)])
    assert bad.exit_code == 2


def test_reader_and_training_loader(tmp_path: Path) -> None:
    from aacscore.io import read_radiograph
    from aacscore.training.spine_data import discover_cases

    c = case(11, 3, photometric="MONOCHROME1", modality="DX")
    write_case(c, tmp_path, "dicom")
    rad = read_radiograph(tmp_path / "case_000003.dcm")
    assert rad.pixels.shape == c.image.shape
    assert rad.spacing_mm is not None and rad.spacing_mm[0] == pytest.approx(SPACING, rel=1e-4)
    assert np.corrcoef(rad.pixels.ravel(), c.image.ravel())[0, 1] > 0.98
    found = discover_cases(tmp_path)
    assert [f.case_id for f in found] == ["case_000003"]
    assert found[0].anterior_side == c.anterior_side
    assert set(found[0].corners) >= {"L1", "L2", "L3", "L4"}


def test_a_dotted_plaque_too_short_for_a_dot_draws_nothing_and_the_film_renders() -> None:
    # seed 62, index 11 (balanced) holds such a plaque: it once stopped a whole dataset
    case = simulate_case_b(62, 11, distribution="balanced")
    assert case.image.size > 0
    assert 0 <= case.truth.aac24 <= 24
