import numpy as np
import pytest

from aacscore.codes import ErrorCode
from aacscore.spine.geometry import check_plausibility, cut_by_edge
from aacscore.vertebrae import SpineError, vertebrae_from_corners


def _spine(top: float) -> dict:
    boxes = {}
    for i, n in enumerate(("T12", "L1", "L2", "L3", "L4", "L5")):
        y0 = top + i * 40.0
        boxes[n] = np.array([[100, y0], [140, y0], [140, y0 + 30], [100, y0 + 30]], float)
    return vertebrae_from_corners(boxes, spacing_mm=(1.0, 1.0))


def test_a_body_touching_the_edge_is_cut() -> None:
    inside = _spine(top=20.0)
    assert cut_by_edge(inside, (400, 300)) == []
    cut = _spine(top=-39.0)  # T12 off the film, L1's top corners at y = 1
    assert cut_by_edge(cut, (400, 300)) == ["L1"]
    assert cut_by_edge(cut, (400, 300), margin_px=0.5) == []
    assert cut_by_edge(_spine(top=20.0), (212, 300)) == ["L4"]  # L4 ends at row 210 of 211


def test_plausibility_reports_a_cut_body_as_field_incomplete() -> None:
    with pytest.raises(SpineError) as err:
        check_plausibility(_spine(top=-39.0), (1.0, 1.0), "f.png", shape=(400, 300))
    assert err.value.code is ErrorCode.FIELD_INCOMPLETE
    assert str(err.value) == (
        "f.png: L1 cut by the edge of the film (L1-L4 and their discs must be on the film)"
    )
