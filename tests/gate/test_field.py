"""The field check on synthetic spine geometry: bodies off the film, missing anchors, band
coverage thresholds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aacscore.aorta import extract_band
from aacscore.codes import ErrorCode, ScoringError
from aacscore.gate.field import (
    NO_ANCHOR_PROBLEM,
    FieldCheck,
    check_band_coverage,
    check_field,
)
from aacscore.spine.orientation import OrientationResult
from aacscore.spine.result import SpineResult
from aacscore.vertebrae import LABEL_VALUES, kauppila_bounds, vertebrae_from_corners

LEVELS = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")


def _spine(
    shape: tuple[int, int] = (600, 400),
    top: float = 40.0,
    levels: tuple[str, ...] = LEVELS,
    labels: np.ndarray | None = None,
) -> SpineResult:
    """Bodies 50 px tall, 70 px deep, 20 px apart, anterior left, from ``top`` down."""
    corners = {}
    y = top
    for n in LEVELS:
        if n in levels:
            corners[n] = np.array([[165.0, y], [235.0, y], [235.0, y + 50], [165.0, y + 50]])
        y += 70.0
    verts = vertebrae_from_corners(corners)
    bounds, discs, warnings = kauppila_bounds(verts)
    return SpineResult(
        source="synthetic",
        shape=shape,
        anterior_side="left",
        orientation=OrientationResult("left", 0.0, None, "given"),
        vertebrae=verts,
        discs=discs,
        bounds=bounds,
        spacing_mm=(0.5, 0.5),
        model_mm_per_px=None,
        labels=np.zeros(shape, np.uint8) if labels is None else labels,
        warnings=tuple(warnings),
    )


def test_a_complete_field_passes() -> None:
    fc = check_field(_spine())
    assert fc.ok and fc.code is None and fc.problem == "" and fc.flags == ()
    assert fc.measurements["t12_found"] and fc.measurements["sacrum_found"]
    fc.raise_if_refused("x")  # no error


def test_a_body_off_the_top_of_the_film_is_named() -> None:
    # L1 starts at row 40 - 70 - 50 = -80: off the top (T12 is gone entirely)
    fc = check_field(_spine(top=-110.0, levels=LEVELS[1:]))
    assert fc.code == ErrorCode.FIELD_INCOMPLETE
    assert "L1" in fc.problem and "cut by the edge" in fc.problem
    assert "L2" not in fc.measurements["bodies_at_edge"]
    with pytest.raises(ScoringError, match=r"film\.dcm: L1-L4 are not all on the film") as e:
        fc.raise_if_refused("film.dcm")
    assert e.value.code == ErrorCode.FIELD_INCOMPLETE


def test_a_body_off_the_bottom_and_an_outer_bound_off_the_film() -> None:
    # rows: L4 spans 320..370; a 350-row film cuts L4 and loses L4/L5
    fc = check_field(_spine(shape=(350, 400), levels=LEVELS[:5]))
    assert fc.code == ErrorCode.FIELD_INCOMPLETE
    assert "L4 cut by the edge" in fc.problem
    assert "L4/L5" in fc.measurements["bounds_outside"]
    # L4 fully inside but its extrapolated L4/L5 bound off the film: still incomplete
    fc = check_field(_spine(shape=(375, 400), levels=LEVELS[:5]))
    assert fc.code == ErrorCode.FIELD_INCOMPLETE
    assert fc.measurements["bodies_at_edge"] == {}
    assert "L4/L5 bound off the film" in fc.problem


def test_a_body_touching_the_edge_in_the_label_map_is_cut() -> None:
    lab = np.zeros((600, 400), np.uint8)
    lab[0:20, 170:230] = LABEL_VALUES["L2"]
    fc = check_field(_spine(labels=lab))
    assert fc.code == ErrorCode.FIELD_INCOMPLETE and "L2" in fc.problem


def test_levels_need_t12_or_the_sacrum() -> None:
    fc = check_field(_spine(levels=("L1", "L2", "L3", "L4", "L5")))
    assert fc.code == ErrorCode.FIELD_INCOMPLETE and fc.problem == NO_ANCHOR_PROBLEM
    assert check_field(_spine(levels=LEVELS[1:])).ok  # the sacrum suffices
    assert check_field(_spine(levels=LEVELS[:-1])).ok  # T12 suffices


def test_missing_lumbar_levels_are_spine_not_found() -> None:
    fc = check_field(_spine(levels=("T12", "L1", "L3", "L4", "L5", "S1")))
    assert fc.code == ErrorCode.SPINE_NOT_FOUND and "L2" in fc.problem


@pytest.mark.parametrize(
    ("fraction", "code", "flags"),
    [
        (0.74, ErrorCode.BAND_OUTSIDE_FILM, ()),
        (0.7496, ErrorCode.BAND_OUTSIDE_FILM, ()),
        (0.75, None, ("band_partly_outside",)),
        (0.8, None, ("band_partly_outside",)),
        (0.95, None, ()),
    ],
)
def test_band_coverage_thresholds(
    fraction: float, code: ErrorCode | None, flags: tuple[str, ...]
) -> None:
    spine = _spine()
    band = extract_band(np.zeros((600, 400), np.float32), spine.vertebrae, "left", (0.5, 0.5))
    fc = check_band_coverage(dataclasses.replace(band, inside_fraction=fraction))
    assert isinstance(fc, FieldCheck)
    assert fc.code == code and fc.flags == flags
    assert fc.measurements["band_inside_fraction"] == pytest.approx(fraction)
    if code is not None:  # never "75% ... (at least 75% needed)"
        assert f"only {fraction:.1%} of the aortic band" in fc.problem
        assert "(at least 75% needed)" in fc.problem


def test_a_band_cut_by_the_film_edge_is_measured() -> None:
    # a narrow film: the band in front of the bodies runs off its left edge
    spine = _spine()
    img = np.zeros((600, 400), np.float32)
    band = extract_band(img, spine.vertebrae, "left", (0.5, 0.5))
    assert band.inside_fraction > 0.9 and check_band_coverage(band).ok
    narrow = _spine()
    verts = {
        n: v.transformed(lambda p: p - np.array([120.0, 0.0]), None)
        for n, v in narrow.vertebrae.items()
    }
    band2 = extract_band(img, verts, "left", (0.5, 0.5))
    assert band2.inside_fraction < 0.75
    assert check_band_coverage(band2).code == ErrorCode.BAND_OUTSIDE_FILM
