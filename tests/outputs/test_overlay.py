"""The overlay: a header strip above the film and a legend below it, the stage results drawn on
the film (vertebrae, bounds, band, wall strips with their grades) and texts kept readable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFont

from aacscore._version import __version__
from aacscore.aorta.roi import extract_band
from aacscore.codes import ErrorCode
from aacscore.io.inputs import OUTPUT_MARK, PNG_SOFTWARE_KEY
from aacscore.io.types import Radiograph
from aacscore.kauppila import LEVELS, SEGMENTS, parse_groups
from aacscore.outputs.overlay import (
    BACKGROUND,
    BAND_COLOUR,
    BOUND_COLOUR,
    HALO,
    LEVEL_COLOURS,
    MAX_SIDE,
    MIN_WIDTH,
    RESEARCH_USE,
    STATUS_COLOURS,
    WALL_OFFSET_MM,
    Drawn,
    Label,
    LabelRole,
    Overlay,
    clamp_box,
    grade_colour,
    header_lines,
    legend_entries,
    overlay_image,
    place_box,
    render_overlay,
    save_overlay,
    segment_hits_box,
    shorten_middle,
    wrap_text,
)
from aacscore.results import Result, StageResults, Status, failed
from aacscore.spine.orientation import OrientationResult
from aacscore.spine.predict import SpineResult
from aacscore.vertebrae import (
    Bound,
    Side,
    kauppila_bounds,
    level_bound_names,
    vertebrae_from_corners,
)

ROWS, COLS = 800, 600
SPACING = (0.4, 0.4)
NAMES = ("T12", "L1", "L2", "L3", "L4", "L5")
# distinct grades, so that every grade label can be told from the others
GRADES = {s: round(3.0 * i / (len(SEGMENTS) - 1), 1) for i, s in enumerate(SEGMENTS)}


def _spine(x0: float = 250.0, y0: float = 100.0, names: tuple[str, ...] = NAMES) -> SpineResult:
    """Bodies 100 x 80 px, 100 px apart, anterior side left (x0 is the anterior margin)."""
    corners = {}
    for i, name in enumerate(NAMES):
        if name in names:
            y = y0 + 100.0 * i
            corners[name] = [[x0, y], [x0 + 100, y], [x0 + 100, y + 80], [x0, y + 80]]
    verts = vertebrae_from_corners(corners, SPACING)
    bounds, discs, _ = kauppila_bounds(verts)
    orient = OrientationResult(Side.LEFT, 0.0, None, "test")
    return SpineResult(
        "test", (ROWS, COLS), Side.LEFT, orient, verts, discs, bounds, SPACING, None,
        np.zeros((ROWS, COLS), np.uint8),
    )  # fmt: skip


def _film(rows: int = ROWS, cols: int = COLS) -> Radiograph:
    """A grey gradient film (every pixel value known, none at the background colour)."""
    y, x = np.mgrid[0:rows, 0:cols]
    px = (0.3 + 0.4 * (x + y) / (rows + cols)).astype(np.float32)
    return Radiograph(px, SPACING, "png", "MONOCHROME2", 8)


def _stages(spine: SpineResult | None, with_band: bool) -> StageResults:
    rad = _film()
    band = None
    if with_band and spine is not None:
        band = extract_band(rad.pixels, spine.vertebrae, spine.anterior_side, SPACING,
                            bounds=spine.bounds)  # fmt: skip
    return StageResults(__version__, parse_groups("lewis"), rad.info, spine=spine, band=band)


def _scored(spine: SpineResult, **kw: Any) -> Result:
    """A scored result with the grades :data:`GRADES`, its stages built on ``spine``."""
    res = Result(
        file="film.png", status=Status.OK, aac24=sum(GRADES.values()), aac24_sd=1.2,
        grades=GRADES, aac8=2.0, group="high", low_confidence=False, orientation="left",
        spacing_mm=0.4, stages=_stages(spine, with_band=True),
    )  # fmt: skip
    return replace(res, **kw)


def _film_pixels(ov: Overlay) -> np.ndarray:
    x0, y0, x1, y1 = ov.film_box
    return ov.rgb[y0:y1, x0:x1]


def _grey(rad: Radiograph) -> np.ndarray:
    g = (np.clip(rad.pixels, 0, 1) * 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _inside(box: tuple[int, int, int, int], area: tuple[int, int, int, int]) -> bool:
    return box[0] >= area[0] and box[1] >= area[1] and box[2] <= area[2] and box[3] <= area[3]


def _labels(ov: Overlay, role: LabelRole) -> list[Label]:
    return [lb for lb in ov.labels if lb.role is role]


def _header_text(result: Result) -> list[str]:
    return [line.text for line in header_lines(result)]


# -------------------------------------------------------------------------------------------
# Layout: header strip, film, legend
# -------------------------------------------------------------------------------------------


def test_the_header_strip_is_added_above_the_film_and_covers_none_of_it() -> None:
    rad = _film()
    res = Result(file="x.png", status=Status.FAILED, error="broken", error_code="unreadable")
    ov = render_overlay(rad, res)
    rgb = overlay_image(rad, res)
    np.testing.assert_array_equal(rgb, ov.rgb)
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
    x0, y0, x1, y1 = ov.film_box
    assert (y1 - y0, x1 - x0) == (ROWS, COLS) and y0 > 0 and rgb.shape[0] > ROWS
    # nothing found: the film is untouched and no legend is added below it
    np.testing.assert_array_equal(_film_pixels(ov), _grey(rad))
    assert y1 == rgb.shape[0] and ov.drawn == frozenset()
    header = rgb[:y0]
    assert (header == BACKGROUND).all(axis=2).mean() > 0.5  # a dark strip ...
    assert (header == STATUS_COLOURS[Status.FAILED]).all(axis=2).any()  # ... with the status
    assert {lb.role for lb in ov.labels} == {LabelRole.HEADER}


def test_film_pixels_change_only_where_something_is_drawn() -> None:
    rad = _film()
    ov = render_overlay(rad, _scored(_spine()))
    changed = (_film_pixels(ov) != _grey(rad)).any(axis=2)
    assert 0.01 < changed.mean() < 0.25
    # far from every drawing (the posterior corner of the film) the film is intact
    assert not changed[:, 480:].any()
    assert ov.rgb.shape[0] > ov.film_box[3]  # the legend strip lies below the film


def test_a_large_film_is_downsampled_to_max_side_and_a_narrow_one_centred() -> None:
    res = Result(file="x.png", status=Status.FAILED, error="broken", error_code="unreadable")
    big = render_overlay(_film(2000, 1000), res)
    x0, y0, x1, y1 = big.film_box
    assert (y1 - y0, x1 - x0) == (MAX_SIDE, 700) and big.scale == pytest.approx(0.7)
    assert big.rgb.shape[0] > MAX_SIDE and big.rgb.shape[1] == max(700, MIN_WIDTH)
    narrow = render_overlay(_film(600, 300), res)
    assert narrow.rgb.shape[1] == MIN_WIDTH
    assert narrow.film_box[0] == (MIN_WIDTH - 300) // 2


# -------------------------------------------------------------------------------------------
# Header text
# -------------------------------------------------------------------------------------------


def test_the_header_of_a_warning_names_score_group_status_flags_file_and_research_use() -> None:
    res = _scored(
        _spine(), status=Status.WARNING, aac24=4.5, aac24_sd=3.8, aac8=1.25, group="moderate",
        qc_flags=("view_uncertain", "low_quality"), low_confidence=True, file="dir/film.dcm",
    )  # fmt: skip
    lines = header_lines(res)
    text = [line.text for line in lines]
    assert text[0] == "AAC-24 4.5 ± 3.8   AAC-8 1.2   group moderate"
    assert any(t.startswith("low confidence") for t in text)
    status = next(line for line in lines if line.text.startswith("status"))
    assert status.text == "status warning: view_uncertain, low_quality"
    assert status.colour == STATUS_COLOURS[Status.WARNING]
    assert "anterior left · 0.400 mm/px" in "\n".join(text)
    assert "file: dir/film.dcm" in text
    assert text[-1] == f"{RESEARCH_USE} · aacscore {__version__}"
    ok = header_lines(_scored(_spine()))
    assert not any("low confidence" in line.text for line in ok)
    assert next(line for line in ok if line.text.startswith("status")).text == "status ok"


def test_the_header_of_a_failure_gives_its_code_reason_and_what_was_drawn() -> None:
    error = "scans/a.png: png: L1, L4 cut by the edge of the film"
    bare = failed("scans/a.png", error, ErrorCode.FIELD_INCOMPLETE)
    text = _header_text(bare)
    assert text[0] == "FAILED: field_incomplete"
    assert text[1] == "png: L1, L4 cut by the edge of the film"  # the file is named below
    assert "nothing drawn" in text[2] and "file: scans/a.png" in text
    assert text[-1].startswith(RESEARCH_USE)
    spine = _spine()
    found = failed("scans/a.png", error, ErrorCode.BAND_OUTSIDE_FILM,
                   stages=_stages(spine, with_band=True))  # fmt: skip
    assert "drawn: the vertebrae, bounds and band found before the failure" in _header_text(found)
    assert "anterior left" in "\n".join(_header_text(found))


def test_wrap_text_breaks_at_the_given_marks_and_fits_the_width() -> None:
    font = ImageFont.load_default(size=16)
    flags = ", ".join(f"flag_number_{i}" for i in range(12))
    lines = wrap_text(f"status warning: {flags}", font, 260, breaks=", ")
    assert len(lines) > 3 and all(font.getlength(t) <= 260 for t in lines)
    assert all(t.endswith(",") for t in lines[:-1])
    assert " ".join(lines).replace(", ", ",").replace(",", ", ") == f"status warning: {flags}"
    long_word = "x" * 80
    pieces = wrap_text(f"a {long_word} b", font, 120)
    assert all(font.getlength(t) <= 120 for t in pieces) and "".join(pieces).count("x") == 80


def test_shorten_middle_keeps_the_file_name() -> None:
    font = ImageFont.load_default(size=16)
    text = "file: /data/study/patient_0001/series_3/image_0042.dcm"
    assert shorten_middle(text, font, 2000) == text
    short = shorten_middle(text, font, 260)
    assert short.startswith("file: …/") and short.endswith("/image_0042.dcm")
    assert font.getlength(short) <= 260
    name = "file: " + "n" * 60 + "_end.dcm"
    tiny = shorten_middle(name, font, 150)
    assert font.getlength(tiny) <= 150 and "…" in tiny and tiny.endswith(".dcm")


def test_header_text_is_wrapped_not_cut_on_a_narrow_film() -> None:
    flags = ("spacing_unknown", "view_uncertain", "orientation_uncertain", "level_uncertain",
             "fracture_suspected", "band_partly_outside", "low_quality")  # fmt: skip
    name = "/very/long/folder/name/" * 4 + "film_1.2.840.113619.2.55.dcm"
    res = _scored(_spine(), status=Status.WARNING, qc_flags=flags, file=name)
    ov = render_overlay(_film(600, 300), res)
    header = _labels(ov, LabelRole.HEADER)
    assert all(_inside(lb.box, (0, 0, ov.rgb.shape[1], ov.film_box[1])) for lb in header)
    joined = " ".join(lb.text for lb in header)
    assert all(f in joined for f in flags)
    assert any(lb.text.endswith("film_1.2.840.113619.2.55.dcm") for lb in header)


# -------------------------------------------------------------------------------------------
# Placement
# -------------------------------------------------------------------------------------------


def test_place_box_puts_the_box_beside_the_point_and_inside_the_area() -> None:
    area = (0, 0, 300, 200)
    assert place_box((40, 20), (100, 100), (1, 0), area, gap=5) == (105, 90, 145, 110)
    assert place_box((40, 20), (100, 100), (-1, 0), area, gap=5) == (55, 90, 95, 110)
    assert place_box((40, 20), (100, 100), (0, -1), area, gap=5) == (80, 75, 120, 95)
    rng = np.random.default_rng(0)
    for _ in range(200):
        pt = (float(rng.uniform(-100, 400)), float(rng.uniform(-100, 300)))
        d = (float(rng.normal()), float(rng.normal()))
        box = place_box((60, 25), pt, d, area, gap=3)
        assert _inside(box, area) and (box[2] - box[0], box[3] - box[1]) == (60, 25)
    assert clamp_box((-10, 190, 30, 210), area) == (0, 180, 40, 200)


def test_every_label_lies_inside_the_picture_and_film_labels_inside_the_film() -> None:
    # the spine at the film's top-left corner: bound ends and T12's label fall off the film
    spine = _spine(x0=40.0, y0=5.0)
    ov = render_overlay(_film(), _scored(spine))
    picture = (0, 0, ov.rgb.shape[1], ov.rgb.shape[0])
    assert all(_inside(lb.box, picture) for lb in ov.labels)
    on_film = [lb for lb in ov.labels if lb.role not in (LabelRole.HEADER, LabelRole.LEGEND)]
    assert all(_inside(lb.box, ov.film_box) for lb in on_film)
    assert {lb.text for lb in _labels(ov, LabelRole.VERTEBRA)} == set(NAMES)
    assert {lb.text for lb in _labels(ov, LabelRole.BOUND)} == set(spine.bounds)
    # the T12 label is not under the header (it is on the film, behind its body)
    t12 = next(lb for lb in _labels(ov, LabelRole.VERTEBRA) if lb.text == "T12")
    assert t12.box[0] >= ov.film_box[0] + 140  # posterior (right) of the body at x 40-140


def _strips(spine: SpineResult) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    out = {}
    for lv in LEVELS:
        up, lo = (spine.bounds[n] for n in level_bound_names(lv))
        for wall, off in WALL_OFFSET_MM.items():
            t = off / SPACING[0]
            out[(lv, wall)] = (up.anterior + t * up.direction, lo.anterior + t * lo.direction)
    return out


def test_grades_are_written_beside_their_strip_on_the_anterior_side_with_a_halo() -> None:
    spine = _spine(x0=330.0)
    ov = render_overlay(_film(), _scored(spine))
    fx, fy = ov.film_box[:2]
    strips = _strips(spine)
    segs = [((a[0] + fx, a[1] + fy), (b[0] + fx, b[1] + fy)) for a, b in strips.values()]
    labels = {lb.text: lb for lb in _labels(ov, LabelRole.GRADE)}
    assert len(labels) == len(SEGMENTS)
    for (lv, wall), (a, b) in strips.items():
        g = GRADES[f"{lv}_{wall}"]
        lb = labels[f"{g:.1f}"]
        assert not any(segment_hits_box(p, q, lb.box) for p, q in segs), (lv, wall)
        # anterior (left) of its own strip, level with its middle
        assert lb.box[2] <= min(a[0], b[0]) + fx
        assert lb.box[1] < (a[1] + b[1]) / 2 + fy < lb.box[3]
        x0, y0, x1, y1 = lb.box
        patch = ov.rgb[y0:y1, x0:x1]
        assert (patch == grade_colour(g)).all(axis=2).any()  # the number in its grade colour
        assert (patch == HALO).all(axis=2).any()  # on a dark halo
    # each strip is drawn in its grade colour at its middle
    for (lv, wall), (a, b) in strips.items():
        mx, my = np.rint((a + b) / 2).astype(int)
        assert tuple(ov.rgb[my + fy, mx + fx]) == grade_colour(GRADES[f"{lv}_{wall}"])
    assert {lb.text for lb in _labels(ov, LabelRole.WALL)} == {"P", "A"}


# -------------------------------------------------------------------------------------------
# What is drawn
# -------------------------------------------------------------------------------------------


def _on_bound(ov: Overlay, b: Bound, ts: np.ndarray) -> np.ndarray:
    """Picture colours at points ``ts`` film px anterior of the bound's disc midpoint."""
    pts = np.rint(b.point[None, :] + ts[:, None] * b.direction[None, :]).astype(int)
    return ov.rgb[pts[:, 1] + ov.film_box[1], pts[:, 0] + ov.film_box[0]]


def test_bounds_are_drawn_where_the_spine_result_has_them() -> None:
    spine = _spine(x0=330.0)
    res = _scored(spine, grades=None)
    ov = render_overlay(_film(), res)
    ts = np.arange(60.0, 110.0)  # in front of the body, short of the label at the line's end
    for b in spine.bounds.values():
        assert (_on_bound(ov, b, ts) == BOUND_COLOUR).all(), b.name
    moved = _spine(x0=330.0, y0=107.0)
    ov2 = render_overlay(_film(), _scored(moved, grades=None))
    for old, new in zip(spine.bounds.values(), moved.bounds.values(), strict=True):
        assert (_on_bound(ov2, new, ts) == BOUND_COLOUR).all()
        assert not (_on_bound(ov2, old, ts) == BOUND_COLOUR).all(axis=1).any()


def test_the_band_is_outlined_in_front_of_the_bodies_not_through_them() -> None:
    spine = _spine(x0=330.0)
    res = _scored(spine, grades=None)
    assert res.stages is not None and res.stages.band is not None
    band = res.stages.band
    ov = render_overlay(_film(), res)
    film = _film_pixels(ov)
    is_band = (film == BAND_COLOUR).all(axis=2)
    n_rows, n_cols = band.geometry.shape
    x, y = band.to_film(np.arange(n_rows), np.full(n_rows, n_cols - 1.0))
    inside = (x >= 0) & (x < COLS) & (y >= 0) & (y < ROWS)
    assert inside.mean() > 0.9 and is_band[np.rint(y[inside]).astype(int),
                                           np.rint(x[inside]).astype(int)].mean() > 0.8  # fmt: skip
    # nothing of the band inside the bodies (the band starts 8 mm behind their front)
    for v in spine.vertebrae.values():
        (x0, y0), (x1, y1) = v.corners.min(axis=0).astype(int), v.corners.max(axis=0).astype(int)
        assert not is_band[y0 + 4 : y1 - 3, x0 + 4 : x1 - 3].any(), v.name
    assert Drawn.BAND in ov.drawn


def test_a_failed_result_with_spine_stages_draws_what_was_found() -> None:
    spine = _spine(x0=330.0)
    res = failed("f.png", "f.png: only 50% of the band inside", ErrorCode.BAND_OUTSIDE_FILM,
                 stages=_stages(spine, with_band=False))  # fmt: skip
    ov = render_overlay(_film(), res)
    film = _film_pixels(ov)
    for name, v in spine.vertebrae.items():
        # the middle of the body's superior endplate is on its outline
        x, y = np.rint(v.superior_midpoint).astype(int)
        assert tuple(film[y, x]) == LEVEL_COLOURS[name], name
    assert {lb.text for lb in _labels(ov, LabelRole.VERTEBRA)} == set(NAMES)
    assert ov.drawn == {Drawn.VERTEBRAE, Drawn.BOUNDS}
    assert not _labels(ov, LabelRole.GRADE)
    header = " ".join(lb.text for lb in _labels(ov, LabelRole.HEADER))
    assert "FAILED: band_outside_film" in header and "only 50% of the band inside" in header


def test_the_legend_explains_what_was_drawn_and_only_that() -> None:
    ov = render_overlay(_film(), _scored(_spine(x0=330.0)))
    assert ov.drawn == {Drawn.VERTEBRAE, Drawn.BOUNDS, Drawn.BAND, Drawn.WALL_STRIPS}
    entries = legend_entries(ov.drawn)
    assert entries[0] == "vertebrae " + " ".join(LEVEL_COLOURS)
    assert any("Kauppila bounds" in e for e in entries)
    assert any("aortic band" in e for e in entries)
    assert any(e.startswith("P A posterior / anterior wall strips") for e in entries)
    legend = [lb for lb in ov.labels if lb.role is LabelRole.LEGEND]
    assert all(lb.box[1] >= ov.film_box[3] for lb in legend)  # below the film
    assert {"T12", "S1", "0", "3"} <= {lb.text for lb in legend}
    strip = ov.rgb[ov.film_box[3] :]
    for g in (0.0, 3.0):  # the grade colour scale runs green -> red
        assert (strip == grade_colour(g)).all(axis=2).any()
    # no band, no grades, T12 missing: the bound T12/L1 is extrapolated (dashed)
    spine = _spine(x0=330.0, names=NAMES[1:])
    partial = render_overlay(_film(), _scored(spine, grades=None,
                                              stages=_stages(spine, with_band=False)))  # fmt: skip
    assert partial.drawn == {Drawn.VERTEBRAE, Drawn.BOUNDS, Drawn.EXTRAPOLATED_BOUNDS}
    assert not any("band" in e or "wall" in e for e in legend_entries(partial.drawn))
    assert "T12/L1 (extrapolated)" in {lb.text for lb in _labels(partial, LabelRole.BOUND)}


def test_save_overlay_marks_the_png_as_an_aacscore_output(tmp_path: Path) -> None:
    rgb = overlay_image(_film(), _scored(_spine()))
    png = save_overlay(rgb, tmp_path / "o" / "x.png")
    with Image.open(png) as im:
        np.testing.assert_array_equal(np.asarray(im), rgb)
        assert im.info[PNG_SOFTWARE_KEY] == f"{OUTPUT_MARK} {__version__}"


@pytest.mark.slow
def test_an_ok_simulated_film_scored_with_the_shipped_models(
    simulated_film: dict[str, Path],
) -> None:
    from aacscore import Scorer
    from aacscore.io import read_radiograph

    rad = read_radiograph(simulated_film["png"])
    res = Scorer(tta=False).score_radiograph(rad, "sim.png")
    assert res.ok and res.grades is not None
    ov = render_overlay(rad, res)
    assert ov.drawn >= {Drawn.VERTEBRAE, Drawn.BOUNDS, Drawn.BAND, Drawn.WALL_STRIPS}
    assert len(_labels(ov, LabelRole.GRADE)) == len(SEGMENTS)
    on_film = [lb for lb in ov.labels if lb.role not in (LabelRole.HEADER, LabelRole.LEGEND)]
    assert all(_inside(lb.box, ov.film_box) for lb in on_film)
    assert _labels(ov, LabelRole.HEADER)[0].text.startswith(f"AAC-24 {res.aac24:.1f}")
