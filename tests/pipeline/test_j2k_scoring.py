"""Scoring a real-size JPEG 2000 film read at a reduced level (the band at <= 0.25 mm)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.pixels import get_encoder
from pydicom.uid import JPEG2000Lossless

from aacscore.io import read_radiograph
from aacscore.io.dicom import SCORING_DECODE_SPACING_MM
from aacscore.pipeline import Scorer, band_along_spine
from aacscore.results import Result


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A calcified simulated film at 0.14 mm (about 2-3k pixels a side), JPEG 2000 lossless."""
    if not get_encoder(JPEG2000Lossless).is_available:
        pytest.skip("no JPEG 2000 encoder")
    from aacscore.simulate import simulate_case
    from aacscore.simulate.dataset import write_case

    folder = tmp_path_factory.mktemp("j2k")
    case = simulate_case(7000, 4, spacing_mm=0.14, target_aac24=12)
    write_case(case, folder, "dicom")
    raw = folder / f"{case.name}.dcm"
    ds = pydicom.dcmread(raw)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    path = folder / "film_j2k.dcm"
    ds.save_as(path)
    return path


@pytest.fixture(scope="module")
def results(film: Path) -> dict[str, Result]:
    full = Scorer(backend="onnx", decode_spacing_mm=None)
    default = Scorer(
        backend="onnx",
        spine_model=full.spine_model,
        score_model=full.score_model,
        view_model=full.view_model,
    )
    return {"full": full.score(film), "default": default.score(film)}


def test_scorer_reads_j2k_reduced_by_default(results: dict[str, Result]) -> None:
    assert Scorer().decode_spacing_mm == SCORING_DECODE_SPACING_MM
    full, default = (results[k].stages for k in ("full", "default"))
    assert full is not None and default is not None
    assert "ResolutionReduction" not in full.radiograph.metadata
    level = default.radiograph.metadata["ResolutionReduction"]
    assert level >= 1
    assert default.radiograph.spacing_mm == pytest.approx((0.14 * 2**level, 0.14 * 2**level))
    assert max(default.radiograph.spacing_mm) <= SCORING_DECODE_SPACING_MM
    # the band is cut at the film's full resolution all the same (0.14 mm <= 0.25 mm)
    assert default.band is not None and full.band is not None
    assert default.band.spacing_mm == default.radiograph.spacing_mm


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


def test_band_from_the_region_matches_the_full_read(film: Path) -> None:
    scorer = Scorer(backend="onnx")
    full = read_radiograph(film)
    reduced = scorer.read(film)
    assert reduced.reduction >= 1
    spine = scorer.spine_model.predict(full)
    geometry = scorer.score_model.band_geometry
    # the same spine result, scaled to the reduced read's pixels
    f = 2**reduced.reduction
    scaled = {n: v.corners / f for n, v in spine.vertebrae.items()}
    from aacscore.aorta.roi import extract_band

    ref = band_along_spine(full, spine, geometry)
    cut = extract_band(
        reduced.pixels,
        scaled,
        spine.anterior_side,
        reduced.spacing_mm,
        geometry=geometry,
        film=reduced,
    )
    coarse = extract_band(
        reduced.pixels, scaled, spine.anterior_side, reduced.spacing_mm, geometry=geometry
    )
    # from the full-resolution region: the band of the full read (the same millimetres, the
    # same film pixels); from the reduced pixels alone: visibly blurred
    assert float(abs(cut.pixels - ref.pixels).max()) < 1e-5
    assert float(abs(coarse.pixels - ref.pixels).mean()) > 1e-3
