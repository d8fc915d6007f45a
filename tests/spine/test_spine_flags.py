"""Specific spine flags (fracture, level, orientation), the network confidence, and both model
paths carrying them; SPINE_NOT_FOUND."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aacscore.codes import FLAGS, ErrorCode
from aacscore.io import Radiograph
from aacscore.spine.flags import (
    SpineConfidence,
    fracture_findings,
    level_findings,
    spine_confidence,
    spine_flags,
)
from aacscore.spine.orientation import OrientationResult, decide
from aacscore.spine.result import result_from_label_scores
from aacscore.vertebrae import LABEL_VALUES, SpineError, vertebrae_from_corners
from tests.spine.spine_synth import make_film
from tests.spine.test_spine_predict import SHAPE, _model_for, _radiograph

LEVELS = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
GIVEN = OrientationResult("left", 0.0, None, "given")


def _column(
    anterior: dict[str, float] | None = None,
    posterior: dict[str, float] | None = None,
    levels: tuple[str, ...] = LEVELS,
) -> dict:
    """Bodies 50 px tall (posterior), 70 deep, anterior LEFT; corners AS, PS, PI, AI."""
    corners = {}
    y = 40.0
    for n in LEVELS:
        hp = (posterior or {}).get(n, 50.0)
        ha = (anterior or {}).get(n, hp)
        # the superior end-plate tilts when the anterior height differs (a wedge)
        c = np.array([[165.0, y + hp - ha], [235.0, y], [235.0, y + hp], [165.0, y + hp]])
        if n in levels:
            corners[n] = c
        y += hp + 20.0
    return vertebrae_from_corners(corners)


def test_corner_order_is_as_ps_pi_ai() -> None:
    v = _column(anterior={"L2": 35.0})["L2"]
    assert v.anterior_height == pytest.approx(35.0) and v.posterior_height == pytest.approx(50.0)


def test_a_wedge_vertebra_is_a_suspected_fracture_a_normal_one_is_not() -> None:
    assert fracture_findings(_column()) == []
    assert fracture_findings(_column(anterior={"L2": 42.0})) == []  # 84 %: no flag
    found = fracture_findings(_column(anterior={"L2": 35.0}))  # 70 %
    assert len(found) == 1 and found[0].startswith("L2: anterior height 70%")
    flags, reasons = spine_flags(_column(anterior={"L2": 35.0}), GIVEN)
    assert flags == ("fracture_suspected",) and "L2" in reasons[0]
    assert fracture_findings(_column(anterior={"T12": 30.0})) == []  # only L1-L4 count


def test_a_crushed_vertebra_is_a_suspected_fracture() -> None:
    found = fracture_findings(_column(posterior={"L3": 36.0}))  # 72 % of its neighbours
    assert len(found) == 1 and found[0].startswith("L3: posterior height 72%")
    assert fracture_findings(_column(posterior={"L3": 42.0})) == []


def test_level_uncertain_without_t12_and_sacrum() -> None:
    assert level_findings(_column()) == []
    assert level_findings(_column(levels=LEVELS[1:])) == []  # the sacrum suffices
    found = level_findings(_column(levels=LEVELS[1:-1]))
    assert found and "neither T12 nor the sacrum" in found[0]
    flags, _ = spine_flags(_column(levels=LEVELS[1:-1]), GIVEN)
    assert flags == ("level_uncertain",)
    # the sacrum without L5: the count from the sacrum is off
    assert any("not L5" in f for f in level_findings(_column(levels=(*LEVELS[:5], "S1"))))


def test_level_uncertain_from_weak_network_evidence() -> None:
    verts = _column()
    good = {n: 0.98 for n in LEVELS}
    conf = SpineConfidence(0.98, 0.95, good, good)
    assert level_findings(verts, conf) == []
    weak = SpineConfidence(0.9, 0.8, {**good, "T12": 0.5, "S1": 0.6}, {**good, "L3": 0.3})
    found = level_findings(verts, weak)
    assert any("neither T12 nor the sacrum" in f for f in found)
    assert any("L3 margin 0.30" in f for f in found)


def test_orientation_uncertain_from_the_orientation_result() -> None:
    flags, _ = spine_flags(_column(), decide(0.55, None))
    assert flags == ("orientation_uncertain",)
    flags, _ = spine_flags(_column(), decide(0.97, 2.0))  # classifier and cue disagree
    assert flags == ("orientation_uncertain",)
    assert spine_flags(_column(), decide(0.999, 2.0))[0] == ()  # a decisive classifier
    assert spine_flags(_column(), decide(0.99, -1.0))[0] == ()
    assert spine_flags(_column(), GIVEN)[0] == ()


def test_all_flags_are_documented() -> None:
    for f in ("orientation_uncertain", "level_uncertain", "fracture_suspected"):
        assert f in FLAGS


def test_confidence_from_logits_and_from_probabilities() -> None:
    lab = np.zeros((20, 10), np.uint8)
    lab[2:6, 2:8] = LABEL_VALUES["L1"]
    lab[8:12, 2:8] = LABEL_VALUES["L2"]
    onehot = torch.from_numpy(np.eye(8, dtype=np.float32)[lab].transpose(2, 0, 1))
    c = spine_confidence(onehot, lab)  # probabilities: used as they are
    assert c.mean_probability == pytest.approx(1.0) and c.fraction_confident == 1.0
    assert c.level_margin["L1"] == pytest.approx(1.0) and c.level_pixels["L2"] == 24
    # logits: softmax; an L2 that the network nearly calls L3 has a small margin
    logits = onehot * 6.0
    logits[LABEL_VALUES["L3"], 8:12, 2:8] = 5.5
    c = spine_confidence(logits, lab)
    assert c.level_margin["L2"] < 0.3 < c.level_margin["L1"]
    assert c.min_level_probability == 0.0  # L3, L4 missing
    assert spine_confidence(onehot, np.zeros_like(lab)).mean_probability == 0.0


def test_unet_predict_carries_flags_and_confidence() -> None:
    film = make_film(11, shape=SHAPE)
    res = _model_for(film).predict(_radiograph(film), anterior_side="left")
    assert res.flags == ()
    assert res.confidence is not None and res.confidence.mean_probability > 0.99
    assert res.to_dict()["flags"] == [] and "confidence" in res.to_dict()
    film = make_film(11, shape=SHAPE, levels=("L1", "L2", "L3", "L4", "L5"))
    res = _model_for(film).predict(_radiograph(film), anterior_side="left")
    assert res.flags == ("level_uncertain",)
    assert any("neither T12 nor the sacrum" in w for w in res.warnings)


def test_nnunet_path_carries_flags_and_confidence() -> None:
    film = make_film(12, shape=SHAPE, levels=("L1", "L2", "L3", "L4", "L5"))
    probs = torch.from_numpy(np.eye(8, dtype=np.float32)[film["labels"]].transpose(2, 0, 1))
    res = result_from_label_scores(_radiograph(film), probs, decide(0.6, None))
    assert set(res.flags) == {"level_uncertain", "orientation_uncertain"}
    assert res.confidence is not None and res.confidence.mean_probability == pytest.approx(1.0)


def test_shipped_model_flags_on_a_simulated_film(simulated_film: dict) -> None:
    from aacscore.io import read_radiograph
    from aacscore.spine.predict import SpineModel

    res = SpineModel.load().predict(read_radiograph(simulated_film["dicom"]))
    assert set(res.flags) <= set(FLAGS)
    assert res.confidence is not None and res.confidence.min_level_probability > 0.9
    assert "level_uncertain" not in res.flags and "orientation_uncertain" not in res.flags


def test_spine_not_found_on_a_blank_image() -> None:
    # a network that finds nothing on a blank film (all background)
    film = make_film(4, shape=SHAPE)
    model = _model_for(film)
    model.unet.logits = torch.zeros_like(model.unet.logits)
    model.unet.logits[0] = 8.0
    blank = Radiograph(np.zeros(SHAPE, np.float32), (1.5, 1.5), "blank.png", "MONOCHROME2", 16)
    with pytest.raises(SpineError, match=r"blank\.png: vertebrae not found: L1, L2, L3, L4") as e:
        model.predict(blank, anterior_side="left")
    assert e.value.code == ErrorCode.SPINE_NOT_FOUND
    # levels missing: not found; the shipped U-Net on a blank film: refused either way
    film = make_film(4, shape=SHAPE, levels=("T12", "L1", "L3", "L4", "L5", "S1"))
    with pytest.raises(SpineError) as e:
        _model_for(film).predict(_radiograph(film), anterior_side="left")
    assert e.value.code == ErrorCode.SPINE_NOT_FOUND


def test_the_shipped_model_refuses_a_blank_film() -> None:
    from aacscore.spine.predict import SpineModel

    rad = Radiograph(np.zeros((400, 300), np.float32), (0.3, 0.3), "blank.png", "MONOCHROME2", 16)
    with pytest.raises(SpineError, match=r"blank\.png") as e:
        SpineModel.load().predict(rad)
    assert e.value.code in (ErrorCode.SPINE_NOT_FOUND, ErrorCode.IMPLAUSIBLE_SPINE)
