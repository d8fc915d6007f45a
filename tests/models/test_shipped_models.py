"""The shipped weights reproduce their model cards' figures on a small fixed simulated set.

This guards against silently broken weights (a bad export, a corrupt file, an architecture
change that still loads). The set is small, so the tolerances are wide, but a broken model
(random or mismatched weights) lands far outside them.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from aacscore.info import MODELS_DIR
from aacscore.io.types import Radiograph
from aacscore.kauppila import SEGMENTS
from aacscore.simulate import simulate_case

SEED = 90210
N = 6


@pytest.fixture(scope="module")
def cases() -> list:
    return [simulate_case(SEED, i, distribution="balanced", spacing_mm=0.3) for i in range(N)]


def _rad(case) -> Radiograph:  # type: ignore[no-untyped-def]
    return Radiograph(
        pixels=case.image,
        spacing_mm=case.spacing_mm,
        source="simulated",
        photometric="MONOCHROME2",
        bits_stored=16,
    )


@pytest.mark.parametrize("stage", ["spine", "score"])
def test_weights_match_their_recorded_sha256(stage: str) -> None:
    folder = MODELS_DIR / stage
    card = (folder / "MODEL_CARD.md").read_text()
    weights = sorted(folder.glob("*.safetensors"))
    assert weights, f"no weights in {folder}"
    for w in weights:
        digest = hashlib.sha256(w.read_bytes()).hexdigest()
        assert digest in card, f"{w.name}: sha256 not in its model card"


def test_spine_model_reproduces_card_dice(cases: list) -> None:
    from aacscore.spine import SpineModel

    card = json.loads((MODELS_DIR / "spine" / "metrics.json").read_text())
    model = SpineModel.load()
    dices, sides = [], []
    for c in cases:
        res = model.predict(_rad(c), check=False)
        sides.append(res.anterior_side == c.anterior_side)
        for v in range(1, 6):  # L1..L5
            t = c.labels == v
            p = res.labels == v
            dices.append(2 * np.sum(t & p) / max(1, t.sum() + p.sum()))
    assert sum(sides) >= N - 1
    assert np.mean(dices) >= card["dice_l1_l5"] - 0.15


def test_pipeline_reproduces_score_card_mae(cases: list) -> None:
    from aacscore.pipeline import Scorer

    cfg = json.loads((MODELS_DIR / "score" / "config.json").read_text())
    card_mae = cfg["metrics"]["validation_tta"]["mae"]
    scorer = Scorer()
    errs = []
    for c in cases:
        res = scorer.score_radiograph(_rad(c), f"case{c.index}")
        if res.status == "failed":
            continue
        assert res.grades is not None and set(res.grades) == set(SEGMENTS)
        errs.append(abs(res.aac24 - c.truth.aac24))
    assert len(errs) >= N - 1, "the pipeline failed on more than one of the fixed cases"
    assert np.mean(errs) <= max(3.0, 2.5 * card_mae)
