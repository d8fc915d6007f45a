"""The shipped ONNX graphs: recorded in their model cards, exported from the shipped weights,
and the model files within their size budget."""

from __future__ import annotations

import hashlib

import pytest

from aacscore.backend import graph_path
from aacscore.backend.onnx import META_WEIGHTS, META_WEIGHTS_SHA256, graph_metadata
from aacscore.info import MODELS_DIR

MODELS_BUDGET_BYTES = 30_000_000
"""All model files together (the wheel carries them)."""


@pytest.mark.parametrize("stage", ["spine", "score", "view"])
def test_every_weights_file_has_its_graph_recorded_in_the_card(stage: str) -> None:
    folder = MODELS_DIR / stage
    card = (folder / "MODEL_CARD.md").read_text()
    weights = sorted(folder.glob("*.safetensors"))
    assert {graph_path(w) for w in weights} == set(folder.glob("*.onnx"))
    for w in weights:
        g = graph_path(w)
        assert hashlib.sha256(g.read_bytes()).hexdigest() in card, f"{g.name}: not in the card"
        meta = graph_metadata(g)
        assert meta[META_WEIGHTS] == w.name
        assert meta[META_WEIGHTS_SHA256] == hashlib.sha256(w.read_bytes()).hexdigest()


def test_model_files_fit_the_budget() -> None:
    total = sum(p.stat().st_size for p in MODELS_DIR.rglob("*") if p.is_file())
    assert total < MODELS_BUDGET_BYTES, f"{total / 1e6:.1f} MB of model files"
