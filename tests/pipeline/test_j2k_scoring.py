"""Scoring a real-size JPEG 2000 film read at a reduced level (the band from its 0.28 mm level):
the reading agrees with the full read's and every coordinate handed on is in the film's own
pixels."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.pixels import get_encoder
from pydicom.uid import JPEG2000Lossless

from aacscore.io import _j2k, read_radiograph
from aacscore.io.dicom import SCORING_DECODE_SPACING_MM
from aacscore.kauppila import LEVELS
from aacscore.outputs.case_json import case_document, result_from_document
from aacscore.outputs.overlay import render_overlay
from aacscore.pipeline import Scorer, band_along_spine, spine_in_film_pixels
from aacscore.results import Result
from tests.io.test_io_j2k import needs_glymur

SPACING_MM = 0.14


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A calcified simulated film at 0.14 mm (about 2-3k pixels a side), JPEG 2000 lossless."""
    if not get_encoder(JPEG2000Lossless).is_available:
        pytest.skip("no JPEG 2000 encoder")
    needs_glymur()
    from aacscore.simulate import simulate_case
    from aacscore.simulate.dataset import write_case

    folder = tmp_path_factory.mktemp("j2k")
    case = simulate_case(7000, 4, spacing_mm=SPACING_MM, target_aac24=12)
    write_case(case, folder, "dicom")
    raw = folder / f"{case.name}.dcm"
    ds = pydicom.dcmread(raw)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    path = folder / "film_j2k.dcm"
    ds.save_as(path)
    return path


@pytest.fixture(scope="module")
def scorers() -> dict[str, Scorer]:
    full = Scorer(backend="onnx", decode_spacing_mm=None)
    default = Scorer(
        backend="onnx",
        spine_model=full.spine_model,
        score_model=full.score_model,
        view_model=full.view_model,
    )
    return {"full": full, "default": default}


@pytest.fixture(scope="module")
def results(film: Path, scorers: dict[str, Scorer]) -> dict[str, Result]:
    return {k: s.score(film) for k, s in scorers.items()}


def reduction(result: Result) -> int:
    assert result.stages is not None
    return int(result.stages.radiograph.metadata.get("ResolutionReduction", 0))


def test_scorer_reads_j2k_reduced_by_default(results: dict[str, Result]) -> None:
    assert Scorer().decode_spacing_mm == SCORING_DECODE_SPACING_MM
    full, default = (results[k].stages for k in ("full", "default"))
    assert full is not None and default is not None
    assert reduction(results["full"]) == 0
    level = reduction(results["default"])
    assert level >= 1 and SPACING_MM * 2**level <= SCORING_DECODE_SPACING_MM
    # the reader's summary is the film's: its own shape and spacing
    assert default.radiograph.shape == full.radiograph.shape
    assert default.radiograph.spacing_mm == full.radiograph.spacing_mm
    assert default.radiograph.spacing_mm == pytest.approx((SPACING_MM, SPACING_MM))
    # the band is cut from the same level either way (level 1, 0.28 mm: BAND_SOURCE_SPACING_MM)
    assert default.band is not None and full.band is not None
    assert default.band.spacing_mm == full.band.spacing_mm


def test_reduced_read_scores_within_tta_noise(results: dict[str, Result]) -> None:
    full, default = results["full"], results["default"]
    assert full.status == default.status and full.aac24 is not None and default.aac24 is not None
    assert full.aac24 > 4  # a calcified film, so that the band's detail matters
    assert full.aac24_sd is not None
    assert abs(full.aac24 - default.aac24) < max(0.5, full.aac24_sd)
    assert full.group == default.group
    assert full.aac24_int == default.aac24_int or abs(full.aac24 - default.aac24) < 0.5
    assert full.stages is not None and default.stages is not None
    assert full.stages.spine is not None and default.stages.spine is not None
    assert sorted(full.stages.spine.vertebrae) == sorted(default.stages.spine.vertebrae)


def test_geometry_is_reported_in_the_films_pixels(results: dict[str, Result]) -> None:
    full, default = results["full"], results["default"]
    f = 2 ** reduction(default)
    assert full.stages is not None and default.stages is not None
    a, b = full.stages.spine, default.stages.spine
    assert a is not None and b is not None
    assert b.shape == a.shape == full.stages.radiograph.shape
    assert b.spacing_mm == a.spacing_mm and b.labels.shape == a.labels.shape
    assert default.spacing_mm == full.spacing_mm == pytest.approx(SPACING_MM)
    # the two spine results differ by the network's noise on its two inputs, not by 2^k
    dist = np.concatenate(
        [np.hypot(*(a.vertebrae[n].corners - b.vertebrae[n].corners).T) for n in LEVELS]
    )
    assert float(np.median(dist)) < f / 2 and float(dist.max()) < 2 * f
    for name, bound in a.bounds.items():
        other = b.bounds[name]
        for p, q in ((bound.anterior, other.anterior), (bound.posterior, other.posterior)):
            assert float(np.hypot(*(p - q))) < f
    for n in LEVELS:
        assert b.vertebrae[n].height_mm == pytest.approx(a.vertebrae[n].height_mm, abs=0.5)
        assert b.vertebrae[n].height_px == pytest.approx(a.vertebrae[n].height_px, abs=f)
    # the field check measures distances in film pixels
    assert full.stages.field_check is not None and default.stages.field_check is not None
    edges_a = full.stages.field_check.measurements["edge_distance_px"]
    edges_b = default.stages.field_check.measurements["edge_distance_px"]
    assert edges_a.keys() == edges_b.keys()
    assert all(abs(edges_a[n] - edges_b[n]) < 2 * f for n in edges_a)
    # and the band runs over the same film pixels
    assert full.stages.band is not None and default.stages.band is not None
    gap = np.hypot(
        default.stages.band.grid_x - full.stages.band.grid_x,
        default.stages.band.grid_y - full.stages.band.grid_y,
    )
    assert float(np.median(gap)) < f


def test_case_json_holds_the_films_geometry(film: Path, results: dict[str, Result]) -> None:
    full, default = (json.loads(json.dumps(case_document(results[k]))) for k in results)
    native = list(read_radiograph(film).shape)
    assert default["reader"]["shape"] == full["reader"]["shape"] == native
    assert default["reader"]["spacing_mm"] == pytest.approx([SPACING_MM, SPACING_MM])
    assert default["reader"]["metadata"]["ResolutionReduction"] == str(
        reduction(results["default"])
    )
    assert default["spine"]["shape"] == native
    assert default["spine"]["spacing_mm"] == pytest.approx([SPACING_MM, SPACING_MM])
    assert default["spacing_mm"] == pytest.approx(SPACING_MM)
    assert default["band"]["spacing_mm"] == pytest.approx([SPACING_MM, SPACING_MM])
    outline_a = np.asarray(full["band"]["outline_film_xy"])
    outline_b = np.asarray(default["band"]["outline_film_xy"])
    assert outline_a.shape == outline_b.shape
    assert float(np.median(np.hypot(*(outline_a - outline_b).T))) < 2 ** reduction(
        results["default"]
    )
    assert results["default"].csv_row()["spacing_mm"] == results["full"].csv_row()["spacing_mm"]
    assert results["default"].csv_row()["spacing_mm"] == f"{SPACING_MM:.4f}"


def test_serve_and_resume_cut_the_pipelines_band(
    film: Path, results: dict[str, Result], scorers: dict[str, Scorer]
) -> None:
    from aacscore.serve.rescore import corrected_spine, rescore

    result = results["default"]
    assert result.stages is not None and result.stages.band is not None
    doc = json.loads(json.dumps(case_document(result)))
    geometry = scorers["default"].score_model.band_geometry
    # `aacscore serve` reads the film at full resolution and cuts the band along the case's
    # spine (uncorrected here): the pipeline's band, pixel for pixel
    served = read_radiograph(film)
    band = band_along_spine(served, corrected_spine(doc, {}), geometry)
    np.testing.assert_allclose(band.pixels, result.stages.band.pixels, atol=1e-6)
    np.testing.assert_allclose(band.grid_x, result.stages.band.grid_x, atol=1e-9)
    model = scorers["default"].score_model
    out = rescore(served, doc, {}, model, scorers["default"].groups)
    assert out["band_outline_film_xy"] == doc["band"]["outline_film_xy"]
    assert out["grades_int"] == result.grades_int or out["aac24"] == pytest.approx(
        result.aac24, abs=1.0
    )
    # a resumed batch rebuilds the stages from the case JSON and the scorer's (reduced) read
    again = result_from_document(doc, scorers["default"].read(film))
    assert again.stages is not None and again.stages.band is not None
    np.testing.assert_allclose(again.stages.band.pixels, result.stages.band.pixels, atol=1e-6)


def test_overlay_is_drawn_in_the_films_pixels(
    film: Path, results: dict[str, Result], scorers: dict[str, Scorer]
) -> None:
    result = results["default"]
    reduced = scorers["default"].read(film)
    full = read_radiograph(film)
    assert reduced.reduction >= 1
    a, b = render_overlay(full, result), render_overlay(reduced, result)
    assert a.rgb.shape == b.rgb.shape and a.film_box == b.film_box and a.scale == b.scale
    assert a.drawn == b.drawn and [x.box for x in a.labels] == [x.box for x in b.labels]
    # the film under the drawing: decoded at the level nearest the picture's scale, closer to
    # the full read's picture than the reduced pixels blown up
    coarse = render_overlay(replace(reduced, finer=None), result)
    assert coarse.film_box == a.film_box
    x0, y0, x1, y1 = a.film_box

    def gap(o: Any) -> float:
        return float(np.abs(a.rgb[y0:y1, x0:x1].astype(int) - o.rgb[y0:y1, x0:x1]).mean())

    assert gap(b) < 2.0 and gap(b) < gap(coarse) / 1.5


def test_the_region_path_and_the_full_read_cut_the_same_band(
    film: Path, scorers: dict[str, Scorer]
) -> None:
    scorer = scorers["default"]
    full = read_radiograph(film)
    reduced = scorer.read(film)
    assert reduced.reduction >= 1
    spine = scorer.spine_model.predict(full)
    geometry = scorer.score_model.band_geometry
    ref = band_along_spine(full, spine, geometry)
    cut = band_along_spine(reduced, spine, geometry)
    # the same pixels (the band's rectangle from level 1 however the film was read)
    assert float(abs(cut.pixels - ref.pixels).max()) < 1e-5
    from aacscore.aorta.roi import extract_band

    f = 2**reduced.reduction
    scaled = {n: v.corners / f for n, v in spine.vertebrae.items()}
    coarse = extract_band(
        reduced.pixels, scaled, spine.anterior_side, reduced.spacing_mm, geometry=geometry
    )
    # from the reduced pixels alone: visibly blurred
    assert float(abs(coarse.pixels - ref.pixels).mean()) > 1e-3


def test_spine_in_film_pixels_scales_by_the_reduction(
    film: Path, scorers: dict[str, Scorer]
) -> None:
    reduced = scorers["default"].read(film)
    spine = scorers["default"].spine_model.predict(reduced)
    native = spine_in_film_pixels(spine, reduced)
    f = 2**reduced.reduction
    assert spine.shape == reduced.shape and native.shape == reduced.film_shape
    assert native.spacing_mm == reduced.film_spacing_mm
    for n, v in spine.vertebrae.items():
        np.testing.assert_allclose(native.vertebrae[n].corners, v.corners * f)
        assert native.vertebrae[n].height_mm == pytest.approx(v.height_mm)
        assert native.vertebrae[n].fit_rms_px == pytest.approx(v.fit_rms_px * f, nan_ok=True)
    for n, b in spine.bounds.items():
        np.testing.assert_allclose(native.bounds[n].anterior, b.anterior * f)
        assert native.bounds[n].extrapolated == b.extrapolated
    np.testing.assert_array_equal(native.labels[::f, ::f], spine.labels)
    assert native.labels.shape == reduced.film_shape
    full = read_radiograph(film)
    assert spine_in_film_pixels(spine, full) is spine  # nothing to do at full resolution


def test_without_glymur_the_scorer_reads_at_full_resolution(
    film: Path,
    scorers: dict[str, Scorer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "glymur", None)
    _j2k.glymur_problem.cache_clear()
    _j2k._warn_full_resolution.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="aacscore.io._j2k"):
            rad = scorers["default"].read(film)
            again = scorers["default"].read(film)
        records: list[Any] = [r for r in caplog.records if r.name == "aacscore.io._j2k"]
    finally:
        monkeypatch.undo()
        _j2k.glymur_problem.cache_clear()
        _j2k._warn_full_resolution.cache_clear()
    assert rad.reduction == again.reduction == 0 and rad.shape == rad.film_shape
    np.testing.assert_array_equal(rad.pixels, read_radiograph(film).pixels)
    assert len(records) == 1 and "decoded at full resolution" in records[0].getMessage()
