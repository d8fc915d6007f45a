"""The corrected geometry of a re-score: corners, relabelled levels and moved bounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aacscore.serve.cases import CaseIndex
from aacscore.serve.rescore import RescoreError, corrected_spine, relabelled
from aacscore.vertebrae import CORNER_NAMES, LEVEL_ORDER
from tests.serve.conftest import Folder


@pytest.fixture
def doc(folder: Folder) -> dict[str, Any]:
    return CaseIndex(folder.out).get(folder.dicom_id).document()


def _shift_down(names: list[str]) -> dict[str, str | None]:
    order = list(LEVEL_ORDER)
    return {
        n: order[order.index(n) + 1] if order.index(n) + 1 < len(order) else None for n in names
    }


def test_shifted_labels_move_every_bound_one_disc(doc: dict[str, Any]) -> None:
    names = list(doc["spine"]["vertebrae"])
    spine = corrected_spine(doc, {}, _shift_down(names))
    assert list(spine.vertebrae) == ["L1", "L2", "L3", "L4", "L5", "S1"]  # S1 left the levels
    old = doc["spine"]["bounds"]
    # the body the model called L1 is L2 now: the old L1/L2 disc is the new L2/L3
    for before, after in (("T12/L1", "L1/L2"), ("L1/L2", "L2/L3"), ("L3/L4", "L4/L5")):
        assert spine.bounds[after].anterior == pytest.approx(old[before]["anterior"])
    model_l1 = doc["spine"]["vertebrae"]["L1"]["corners"]
    assert np.allclose(spine.vertebrae["L2"].corners, [model_l1[c] for c in CORNER_NAMES])
    assert "levels relabelled by the reviewer" in spine.warnings


def test_a_single_relabel_and_its_conflicts(doc: dict[str, Any]) -> None:
    names = list(doc["spine"]["vertebrae"])
    assert relabelled(names, {"S1": None}) == {n: n for n in names if n != "S1"}
    with pytest.raises(RescoreError, match="L2 to two bodies"):
        relabelled(names, {"L1": "L2"})
    with pytest.raises(RescoreError, match="no bound T12/L1, L1/L2"):
        corrected_spine(doc, {}, {"L1": None})


def test_moved_bounds_replace_the_recomputed_ones(doc: dict[str, Any]) -> None:
    b = doc["spine"]["bounds"]["L2/L3"]
    moved = {"anterior": [b["anterior"][0], b["anterior"][1] + 9.0], "posterior": b["posterior"]}
    spine = corrected_spine(doc, {}, None, {"L2/L3": moved})
    assert spine.bounds["L2/L3"].anterior.tolist() == moved["anterior"]
    assert spine.bounds["L2/L3"].posterior.tolist() == pytest.approx(b["posterior"])
    assert spine.bounds["L1/L2"].anterior == pytest.approx(
        doc["spine"]["bounds"]["L1/L2"]["anterior"]
    )
    swapped = {"anterior": b["posterior"], "posterior": b["anterior"]}
    with pytest.raises(RescoreError, match="swapped"):
        corrected_spine(doc, {}, None, {"L2/L3": swapped})
    with pytest.raises(RescoreError, match="unknown bound"):
        corrected_spine(doc, {}, None, {"L5/S1": moved})
    with pytest.raises(RescoreError, match="two distinct"):
        corrected_spine(doc, {}, None, {"L2/L3": {"anterior": [1, 1], "posterior": [1, 1]}})
