"""The input gate inside the pipeline: every refusal reaches ``error_code`` with its reason,
before the models that should not run, and the gate's flags reach ``qc_flags``.

A stub view classifier (fixed probabilities) and the oracle spine (the simulator's true label
map) keep these tests about the plumbing; the shipped classifier and reference are measured in
``benchmarks/gate.py`` and tested in ``tests/gate``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from aacscore.aorta.roi import BandGeometry
from aacscore.codes import ErrorCode, ScoringError
from aacscore.gate.view import CLASSES, ViewClass, ViewPrediction, prediction
from aacscore.io import read_radiograph
from aacscore.io.types import Radiograph
from aacscore.outputs.case_json import case_document
from aacscore.pipeline import Scorer
from aacscore.results import Status
from aacscore.score.network import NetworkConfig, ScoreNet
from aacscore.score.predict import ScoreModel, ScoreModelConfig
from aacscore.simulate import simulate_case
from aacscore.simulate.case import SimulatedCase
from tests.pipeline.test_pipeline import OracleSpine

SEED = 7


class StubView:
    """A view classifier that answers the same probabilities for every film."""

    def __init__(self, label: ViewClass, p: float = 0.9, p_lateral: float | None = None) -> None:
        probs = np.full(len(CLASSES), 0.0)
        probs[CLASSES.index(label)] = p
        if p_lateral is not None:
            probs[CLASSES.index(ViewClass.LATERAL_LUMBAR)] = p_lateral
        rest = [i for i in range(len(CLASSES)) if probs[i] == 0.0]
        probs[rest] = (1.0 - probs.sum()) / len(rest)
        self.answer = prediction(probs.tolist())
        self.calls = 0

    def predict(self, pixels: object) -> ViewPrediction:
        self.calls += 1
        return self.answer


class CountingSpine(OracleSpine):
    calls = 0

    def predict(self, radiograph: Radiograph, anterior_side: str | None = None):  # type: ignore[no-untyped-def]
        CountingSpine.calls += 1
        return super().predict(radiograph, anterior_side)


@pytest.fixture(scope="module")
def case() -> SimulatedCase:
    return simulate_case(SEED, 0, spacing_mm=0.35)


@pytest.fixture(scope="module")
def score_model() -> ScoreModel:
    torch.manual_seed(0)
    net = ScoreNet(NetworkConfig(head="segments", layers=(1, 1, 1, 1)))
    return ScoreModel(net.eval(), ScoreModelConfig(network=net.config, band=BandGeometry()))


def _film(img: np.ndarray, name: str = "film.png") -> Radiograph:
    return Radiograph(
        pixels=np.ascontiguousarray(img, dtype=np.float32),
        spacing_mm=(0.35, 0.35),
        source=name,
        photometric="MONOCHROME2",
        bits_stored=16,
    )


def _scorer(
    cases: list[tuple[np.ndarray, str]], score_model: ScoreModel, view: object = False, **kw: object
) -> Scorer:
    spine = CountingSpine({labels.shape: (labels, side) for labels, side in cases})
    return Scorer(spine_model=spine, score_model=score_model, view_model=view, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("label", "code"),
    [
        (ViewClass.NOT_RADIOGRAPH, ErrorCode.NOT_RADIOGRAPH),
        (ViewClass.AP_LUMBAR, ErrorCode.WRONG_VIEW),
        (ViewClass.CHEST, ErrorCode.WRONG_REGION),
        (ViewClass.LATERAL_THORACIC, ErrorCode.WRONG_REGION),
        (ViewClass.CERVICAL, ErrorCode.WRONG_REGION),
        (ViewClass.PELVIS_HIP, ErrorCode.WRONG_REGION),
        (ViewClass.OTHER_BODY_PART, ErrorCode.WRONG_REGION),
        (ViewClass.LUMBAR_SPOT, ErrorCode.FIELD_INCOMPLETE),
    ],
)
def test_the_view_classifier_refuses_before_the_spine_runs(
    case: SimulatedCase, score_model: ScoreModel, label: ViewClass, code: ErrorCode
) -> None:
    view = StubView(label)
    scorer = _scorer([(case.labels, case.anterior_side)], score_model, view)
    CountingSpine.calls = 0
    res = scorer.score_radiograph(_film(case.image), "film.png")
    assert res.status is Status.FAILED and res.error_code is code
    assert res.error.startswith("film.png: the image looks like ")
    assert res.error.endswith("; use --ignore-view to score it anyway")
    assert CountingSpine.calls == 0 and view.calls == 1
    assert res.stages is not None and res.stages.view is view.answer
    assert case_document(res)["view"]["refuse_code"] == code.value
    with pytest.raises(ScoringError) as err:
        scorer.score_radiograph(_film(case.image), "film.png", raise_errors=True)
    assert err.value.code is code and str(err.value).startswith("film.png: ")
    # --ignore-view: scored, flagged
    ignoring = _scorer([(case.labels, case.anterior_side)], score_model, view, ignore_view=True)
    scored = ignoring.score_radiograph(_film(case.image), "film.png")
    assert scored.status is Status.WARNING and scored.error_code is None, scored.error
    assert "view_uncertain" in scored.qc_flags and scored.aac24 is not None


def test_an_accepted_but_unsure_view_is_flagged(
    case: SimulatedCase, score_model: ScoreModel
) -> None:
    sure = _scorer(
        [(case.labels, case.anterior_side)], score_model, StubView(ViewClass.LATERAL_LUMBAR, 0.95)
    )
    res = sure.score_radiograph(_film(case.image), "film.png")
    assert res.ok and "view_uncertain" not in res.qc_flags, res.error
    unsure = _scorer(
        [(case.labels, case.anterior_side)],
        score_model,
        StubView(ViewClass.CHEST, 0.3, p_lateral=0.4),  # argmax lateral, but only 0.4
    )
    res = unsure.score_radiograph(_film(case.image), "film.png")
    assert res.ok and "view_uncertain" in res.qc_flags
    assert res.stages is not None and res.stages.timings["view_s"] >= 0.0


@pytest.mark.parametrize(
    ("modality", "ignore_header", "scored"),
    [("DX", False, True), ("CR", False, True), ("OT", False, False), ("DX", True, False)],
)
def test_an_acquisition_modality_rules_out_not_a_radiograph(
    case: SimulatedCase,
    score_model: ScoreModel,
    tmp_path: Path,
    modality: str,
    ignore_header: bool,
    scored: bool,
) -> None:
    import pydicom

    from aacscore.simulate.dataset import write_case

    write_case(case, tmp_path, fmt="dicom")
    film = next(tmp_path.glob("*.dcm"))
    ds = pydicom.dcmread(film)
    ds.Modality = modality
    ds.save_as(film)
    view = StubView(ViewClass.NOT_RADIOGRAPH, 0.9, p_lateral=0.06)  # refused on its own
    scorer = _scorer(
        [(case.labels, case.anterior_side)], score_model, view, ignore_header=ignore_header
    )
    res = scorer.score_radiograph(read_radiograph(film), film.name)
    assert res.stages is not None and res.stages.view is not None
    if not scored:
        assert res.error_code is ErrorCode.NOT_RADIOGRAPH, res.error
        assert res.stages.view is view.answer
        return
    assert res.status is not Status.FAILED and res.aac24 is not None, res.error
    got = res.stages.view
    assert got.label is ViewClass.LATERAL_LUMBAR and got.p_lateral == pytest.approx(0.6)
    assert got.ruled_out == {"not_radiograph": pytest.approx(0.9)}
    assert case_document(res)["view"]["ruled_out"] == {"not_radiograph": 0.9}


def test_header_and_image_disagreeing_is_flagged(
    case: SimulatedCase, score_model: ScoreModel, tmp_path: Path
) -> None:
    from aacscore.simulate.dataset import write_case

    write_case(case, tmp_path, fmt="dicom")
    film = next(tmp_path.glob("*.dcm"))
    import pydicom

    ds = pydicom.dcmread(film)
    ds.BodyPartExamined = "CHEST"
    ds.save_as(film)
    rad = read_radiograph(film)
    scorer = _scorer(
        [(case.labels, case.anterior_side)],
        score_model,
        StubView(ViewClass.LATERAL_LUMBAR, 0.95),
        ignore_header=True,
    )
    res = scorer.score_radiograph(rad, film.name)
    assert res.ok, res.error
    assert {"header_ignored", "header_image_disagree"} <= set(res.qc_flags)
    # the simulator's header (lateral, LSPINE) against a classifier that doubts and says chest
    write_case(case, tmp_path / "plain", fmt="dicom")
    plain_film = read_radiograph(next((tmp_path / "plain").glob("*.dcm")))
    doubting = _scorer(
        [(case.labels, case.anterior_side)],
        score_model,
        StubView(ViewClass.CHEST, 0.6, p_lateral=0.3),
    )
    res = doubting.score_radiograph(plain_film, "plain.dcm")
    assert res.ok and {"view_uncertain", "header_image_disagree"} <= set(res.qc_flags)
    sure = _scorer(
        [(case.labels, case.anterior_side)],
        score_model,
        StubView(ViewClass.CHEST, 0.4, p_lateral=0.55),  # chest second, p_lateral >= 0.5
    )
    res = sure.score_radiograph(plain_film, "plain.dcm")
    assert res.ok and not {"view_uncertain", "header_image_disagree"} & set(res.qc_flags)
    # a header that agrees raises no flag
    agree = _scorer(
        [(case.labels, case.anterior_side)], score_model, StubView(ViewClass.LATERAL_LUMBAR, 0.95)
    )
    plain = agree.score_radiograph(_film(case.image), "film.png")
    assert "header_image_disagree" not in plain.qc_flags


def _rows_of(case: SimulatedCase, name: str) -> tuple[float, float]:
    pts = case.vertebrae[name]
    return float(pts[:, 1].min()), float(pts[:, 1].max())


def test_a_film_cut_through_l1_is_field_incomplete(
    case: SimulatedCase, score_model: ScoreModel
) -> None:
    top, bottom = _rows_of(case, "L1")
    cut = int((top + bottom) / 2)  # the film starts in the middle of L1: T12 and T12/L1 are off
    img, labels = case.image[cut:], case.labels[cut:]
    scorer = _scorer([(labels, case.anterior_side)], score_model)
    res = scorer.score_radiograph(_film(img), "cut.png")
    assert res.status is Status.FAILED and res.error_code is ErrorCode.FIELD_INCOMPLETE, res.error
    assert "L1 cut by the edge of the film" in res.error  # not "implausible size"
    assert res.stages is not None and res.stages.band is None  # refused before the band


def test_a_header_spacing_that_contradicts_the_vertebrae_is_dropped(
    case: SimulatedCase, score_model: ScoreModel
) -> None:
    scorer = _scorer([(case.labels, case.anterior_side)], score_model)
    bare = scorer.score_radiograph(replace(_film(case.image), spacing_mm=None), "bare.png")
    assert bare.status is not Status.FAILED, bare.error
    # a spacing 10x too fine (bodies ~3 mm tall): read as a film without spacing, flagged
    res = scorer.score_radiograph(replace(_film(case.image), spacing_mm=(0.035, 0.035)), "f.dcm")
    assert res.status is Status.WARNING, res.error
    assert "spacing_inconsistent" in res.qc_flags and "spacing_unknown" not in res.qc_flags
    assert res.aac24 == pytest.approx(bare.aac24)
    assert res.spacing_mm == pytest.approx(bare.spacing_mm)
    assert res.stages is not None and res.stages.spine is not None
    assert any("header's pixel spacing" in w for w in res.stages.spine.warnings)
    # the right spacing: no flag
    ok = scorer.score_radiograph(_film(case.image), "ok.dcm")
    assert "spacing_inconsistent" not in ok.qc_flags
    # only the rows 10x too fine: bodies too short but not too shallow, the refusal stands
    rows = scorer.score_radiograph(replace(_film(case.image), spacing_mm=(0.035, 0.35)), "r.dcm")
    assert rows.status is Status.FAILED and rows.error_code is ErrorCode.IMPLAUSIBLE_SPINE
    assert "implausible body size" in (rows.error or "")


def test_a_spine_stage_refusal_takes_the_code_of_the_likelier_view(
    case: SimulatedCase, score_model: ScoreModel
) -> None:
    top, bottom = _rows_of(case, "L1")
    cut = int((top + bottom) / 2)
    img, labels = case.image[cut:], case.labels[cut:]
    ap = StubView(ViewClass.AP_LUMBAR, 0.6, p_lateral=0.3)  # accepted, AP likelier
    res = _scorer([(labels, case.anterior_side)], score_model, ap).score_radiograph(
        _film(img), "cut.png"
    )
    assert res.status is Status.FAILED and res.error_code is ErrorCode.WRONG_VIEW, res.error
    assert res.error.startswith("cut.png: the image looks more like an AP/PA lumbar film")
    assert "L1 cut by the edge of the film" in res.error
    assert res.stages is not None and res.stages.view is ap.answer
    with pytest.raises(ScoringError) as err:
        _scorer([(labels, case.anterior_side)], score_model, ap).score_radiograph(
            _film(img), "cut.png", raise_errors=True
        )
    assert err.value.code is ErrorCode.WRONG_VIEW and str(err.value).startswith("cut.png: ")
    # a lateral argmax with a runner-up likelier once the spine stage has refused the film
    runner_up = StubView(ViewClass.AP_LUMBAR, 0.3, p_lateral=0.4)
    res = _scorer([(labels, case.anterior_side)], score_model, runner_up).score_radiograph(
        _film(img), "cut.png"
    )
    assert res.error_code is ErrorCode.WRONG_VIEW, res.error
    assert res.error.startswith("cut.png: L1 cut by the edge of the film")
    assert "may be an AP/PA lumbar film (p=0.30, lateral lumbar film p=0.40)" in res.error
    # a runner-up below REFUSAL_LIKELIHOOD_RATIO x p_lateral, or --ignore-view: the stage's code
    for view, kw in (
        (StubView(ViewClass.AP_LUMBAR, 0.1, p_lateral=0.85), {}),
        (ap, {"ignore_view": True}),
    ):
        scorer = _scorer([(labels, case.anterior_side)], score_model, view, **kw)
        res = scorer.score_radiograph(_film(img), "cut.png")
        assert res.error_code is ErrorCode.FIELD_INCOMPLETE, res.error


class UnsureSpine(CountingSpine):
    """The oracle's reading, flagged ``level_uncertain``."""

    def predict(self, radiograph: Radiograph, anterior_side: str | None = None):  # type: ignore[no-untyped-def]
        res = super().predict(radiograph, anterior_side)
        return replace(res, flags=(*res.flags, "level_uncertain"))


def test_an_unsure_reading_of_a_film_the_view_doubts_is_refused(
    case: SimulatedCase, score_model: ScoreModel
) -> None:
    cases = {case.labels.shape: (case.labels, case.anterior_side)}
    thoracic = StubView(ViewClass.LATERAL_THORACIC, 0.6, p_lateral=0.3)
    scorer = Scorer(spine_model=UnsureSpine(cases), score_model=score_model, view_model=thoracic)  # type: ignore[arg-type]
    res = scorer.score_radiograph(_film(case.image), "film.png")
    assert res.status is Status.FAILED and res.error_code is ErrorCode.WRONG_REGION, res.error
    assert "lateral thoracic" in res.error and "unsure (level_uncertain)" in res.error
    assert res.stages is not None and res.stages.prediction is not None  # nothing computed lost
    with pytest.raises(ScoringError) as err:
        scorer.score_radiograph(_film(case.image), "film.png", raise_errors=True)
    assert err.value.code is ErrorCode.WRONG_REGION
    # the same reading with a lateral argmax, or under --ignore-view, is scored
    for view, kw in (
        (StubView(ViewClass.LATERAL_THORACIC, 0.3, p_lateral=0.4), {}),
        (thoracic, {"ignore_view": True}),
    ):
        spine = UnsureSpine(cases)
        other = Scorer(spine_model=spine, score_model=score_model, view_model=view, **kw)  # type: ignore[arg-type]
        res = other.score_radiograph(_film(case.image), "film.png")
        assert res.status is Status.WARNING and "level_uncertain" in res.qc_flags, res.error
    # a sure reading of a doubted film is scored, flagged
    sure = _scorer([(case.labels, case.anterior_side)], score_model, thoracic)
    res = sure.score_radiograph(_film(case.image), "film.png")
    assert res.status is Status.WARNING and "view_uncertain" in res.qc_flags, res.error


def _anterior_cut(case: SimulatedCase, fraction_of_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """The film with its anterior side cut off ``fraction_of_depth`` body depths in front of the
    most anterior L1-L4 corner (negative: into the bodies)."""
    pts = np.concatenate([case.vertebrae[n] for n in ("L1", "L2", "L3", "L4")])
    depth = float(np.median([np.ptp(case.vertebrae[n][:, 0]) for n in ("L1", "L2", "L3", "L4")]))
    if case.anterior_side == "left":
        x = max(0, int(pts[:, 0].min() - fraction_of_depth * depth))
        return case.image[:, x:], case.labels[:, x:]
    x = min(case.image.shape[1], int(pts[:, 0].max() + fraction_of_depth * depth))
    return case.image[:, :x], case.labels[:, :x]


def test_band_coverage_refuses_or_flags_a_cut_anterior_edge(
    case: SimulatedCase, score_model: ScoreModel
) -> None:
    fractions = {}
    codes = {}
    for f in (2.0, 0.5, 0.05):
        img, labels = _anterior_cut(case, f)
        res = _scorer([(labels, case.anterior_side)], score_model).score_radiograph(
            _film(img), "c.png"
        )
        assert res.stages is not None
        band = res.stages.band
        fractions[f] = None if band is None else band.inside_fraction
        codes[f] = (res.error_code, res.qc_flags)
        if band is not None and band.inside_fraction < 0.75:
            assert res.error_code is ErrorCode.BAND_OUTSIDE_FILM and res.stages.prediction is None
        elif band is not None and band.inside_fraction < 0.9:
            assert res.ok and "band_partly_outside" in res.qc_flags
        elif band is not None:
            assert res.ok and "band_partly_outside" not in res.qc_flags
    # the tighter the cut, the less of the band is on the film, down to a refusal
    assert fractions[2.0] is not None and fractions[2.0] >= 0.9, fractions
    assert codes[0.05][0] is ErrorCode.BAND_OUTSIDE_FILM, (fractions, codes)


def test_quality_is_measured_only_with_the_models_of_its_reference(
    case: SimulatedCase, score_model: ScoreModel
) -> None:
    from aacscore.gate.quality import QualityReference

    scorer = _scorer([(case.labels, case.anterior_side)], score_model)
    assert scorer.quality_reference is None  # the shipped reference is for the shipped model
    res = scorer.score_radiograph(_film(case.image), "film.png")
    assert res.ok and res.quality is None and "low_quality" not in res.qc_flags
    # a reference given explicitly is used, whatever the model
    ref = QualityReference.load()
    strict = replace(ref, threshold=1.01)  # everything is below it
    forced = _scorer([(case.labels, case.anterior_side)], score_model, quality_reference=strict)
    res = forced.score_radiograph(_film(case.image), "film.png")
    assert res.quality is not None and 0.0 <= res.quality <= 1.0
    assert "low_quality" in res.qc_flags and res.status is Status.WARNING
    assert res.stages is not None and res.stages.quality is not None
    assert case_document(res)["quality"]["value"] == pytest.approx(res.quality)
    off = _scorer([(case.labels, case.anterior_side)], score_model, quality_reference=False)
    assert off.quality_reference is None and "quality" not in off.models_info()


def test_a_colour_photograph_is_not_a_radiograph(
    case: SimulatedCase, score_model: ScoreModel, tmp_path: Path
) -> None:
    from PIL import Image
    from skimage.data import chelsea

    view = StubView(ViewClass.LATERAL_LUMBAR, 0.99)  # even a classifier fooled by it
    scorer = _scorer([(case.labels, case.anterior_side)], score_model, view)
    Image.fromarray(chelsea()).save(tmp_path / "cat.jpg")
    res = scorer.score(tmp_path / "cat.jpg")
    assert res.status is Status.FAILED and res.error_code is ErrorCode.NOT_RADIOGRAPH
    assert "a colour image (colourfulness" in res.error and view.calls == 0
    assert res.stages is not None and res.stages.qc is not None
    assert case_document(res)["qc"]["colourfulness"] == res.stages.qc.colourfulness
    # a film photographed under a uniform warm cast is a radiograph to this check
    grey = (case.image * 255).astype(np.float64)
    cast = np.stack([grey, grey * 0.88, grey * 0.7], axis=-1)
    Image.fromarray(cast.clip(0, 255).astype(np.uint8)).save(tmp_path / "photo_of_film.png")
    tinted = scorer.score(tmp_path / "photo_of_film.png")
    assert tinted.error_code is not ErrorCode.NOT_RADIOGRAPH, tinted.error
    assert tinted.stages is not None and tinted.stages.qc is not None
    assert tinted.stages.qc.colourfulness is not None and tinted.stages.qc.colourfulness < 10


def test_a_label_map_is_not_a_radiograph(case: SimulatedCase, score_model: ScoreModel) -> None:
    view = StubView(ViewClass.LATERAL_LUMBAR, 0.99)  # even a classifier fooled by it
    scorer = _scorer([(case.labels, case.anterior_side)], score_model, view)
    labels = case.labels.astype(np.float32) / 7.0
    res = scorer.score_radiograph(_film(labels), "case_labels.png")
    assert res.status is Status.FAILED and res.error_code is ErrorCode.NOT_RADIOGRAPH
    assert "grey levels: a label map, mask or drawing" in res.error
    assert view.calls == 0 and res.stages is not None and res.stages.qc is not None
    assert res.stages.qc.grey_levels is not None and res.stages.qc.grey_levels <= 8
    assert case_document(res)["qc"]["grey_levels"] == res.stages.qc.grey_levels
