"""The overlay is drawn from the typed stage results: vertebrae, the spine result's bounds, the
band outline and the grades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from aacscore.aorta.roi import extract_band
from aacscore.io.types import Radiograph
from aacscore.kauppila import SEGMENTS, parse_groups
from aacscore.outputs.case_json import band_outline
from aacscore.outputs.overlay import BOUND_COLOUR, overlay_image, save_overlay
from aacscore.results import Result, StageResults, Status
from aacscore.spine.orientation import OrientationResult
from aacscore.spine.predict import SpineResult
from aacscore.vertebrae import Bound, Side, kauppila_bounds, vertebrae_from_corners

ROWS, COLS = 800, 600
SPACING = (0.4, 0.4)


def _spine(shift_rows: float = 0.0) -> SpineResult:
    corners = {}
    for i, name in enumerate(("T12", "L1", "L2", "L3", "L4", "L5")):
        y = 100.0 + 100.0 * i + shift_rows
        corners[name] = [[250, y], [350, y], [350, y + 80], [250, y + 80]]
    verts = vertebrae_from_corners(corners, SPACING)
    bounds, discs, _ = kauppila_bounds(verts)
    orient = OrientationResult(Side.LEFT, 0.0, None, "test")
    return SpineResult(
        "test", (ROWS, COLS), Side.LEFT, orient, verts, discs, bounds, SPACING, None,
        np.zeros((ROWS, COLS), np.uint8),
    )  # fmt: skip


def _film() -> Radiograph:
    return Radiograph(np.zeros((ROWS, COLS), np.float32), SPACING, "png", "MONOCHROME2", 8)


def _result(spine: SpineResult, with_band: bool = False) -> Result:
    rad = _film()
    band = None
    if with_band:
        band = extract_band(rad.pixels, spine.vertebrae, spine.anterior_side, SPACING,
                            bounds=spine.bounds)  # fmt: skip
    stages = StageResults("0", parse_groups("lewis"), rad.info, spine=spine, band=band)
    grades = dict.fromkeys(SEGMENTS, 3.0) if with_band else None
    return Result(file="film.png", status=Status.OK, grades=grades, stages=stages)


def _on_bound(rgb: np.ndarray, b: Bound, ts: np.ndarray) -> np.ndarray:
    """Colours of the overlay at points ``ts`` px anterior of the bound's disc midpoint."""
    pts = np.rint(b.point[None, :] + ts[:, None] * b.direction[None, :]).astype(int)
    return rgb[pts[:, 1], pts[:, 0]]


def test_bounds_are_drawn_where_the_spine_result_has_them() -> None:
    spine = _spine()
    rgb = overlay_image(_film(), _result(spine))
    assert rgb.shape == (ROWS, COLS, 3) and rgb.dtype == np.uint8
    ts = np.arange(60.0, 190.0)  # beyond the body, short of the label at the line's end
    for b in spine.bounds.values():
        assert (_on_bound(rgb, b, ts) == BOUND_COLOUR).all(), b.name
    # move the bounds: the lines move with them
    moved = _spine(shift_rows=7.0)
    rgb2 = overlay_image(_film(), _result(moved))
    for old, new in zip(spine.bounds.values(), moved.bounds.values(), strict=True):
        assert (_on_bound(rgb2, new, ts) == BOUND_COLOUR).all()
        assert not (_on_bound(rgb2, old, ts) == BOUND_COLOUR).all(axis=1).any()


def test_band_outline_and_grades_are_drawn(tmp_path: Path) -> None:
    res = _result(_spine(), with_band=True)
    assert res.stages is not None and res.stages.band is not None
    rgb = overlay_image(_film(), res)
    outline = np.rint(np.asarray(band_outline(res.stages.band))).astype(int)
    inside = (outline[:, 0] >= 0) & (outline[:, 0] < COLS) & (outline[:, 1] < ROWS)
    colours = rgb[outline[inside, 1], outline[inside, 0]]
    # cyan band border (partly drawn over by the bounds, bodies and strips)
    assert (colours == (0, 255, 255)).all(axis=1).mean() > 0.3
    assert ((rgb == (255, 0, 0)).all(axis=2)).sum() > 100  # grade 3 strips are red
    png = save_overlay(rgb, tmp_path / "o" / "x.png")
    np.testing.assert_array_equal(np.asarray(Image.open(png)), rgb)


def test_a_result_without_stages_gets_only_its_title() -> None:
    res = Result(file="x.png", status=Status.FAILED, error="broken", error_code="unreadable")
    rgb = overlay_image(_film(), res)
    assert rgb[100:, :].max() == 0
    assert rgb[:40, :].max() == 255


def test_the_title_names_the_flags_of_a_warning() -> None:
    from aacscore.outputs.overlay import _title

    res = Result(
        file="x.png", status=Status.WARNING, aac24=4.5, aac24_sd=3.8, group="moderate",
        qc_flags=("view_uncertain", "low_quality"),
    )  # fmt: skip
    assert _title(res).endswith("group: moderate  [warning: view_uncertain, low_quality]")
    ok = Result(file="x.png", status=Status.OK, aac24=1.0, group="low")
    assert "[" not in _title(ok)
