"""The extended anatomical variety of family A: each feature with its truth, standard untouched."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.kauppila import SEGMENTS
from aacscore.simulate import SimulatedCase, simulate_case, simulate_dataset
from aacscore.simulate.anatomy import (
    LEVEL_CONVENTION,
    VARIETY_PROBABILITIES,
    Dish,
    Listhesis,
    Posture,
    Scoliosis,
    Transitional,
    Variety,
    lordosis_deg,
    resolve_variety,
    sample_anatomy,
)
from aacscore.simulate.implants import FilterPlan, ProsthesisPlan, ScrewPlan, StentPlan
from aacscore.spine.levels import count_from_sacrum
from aacscore.vertebrae import LABEL_VALUES
from tests.simulate.simulate_helpers import case, population_digests, recompute

# sha256 of stored pixels, labels, calcification mask and annotation JSON of standard films,
# rendered by the simulator before the extended variety existed, on numpy's AVX2 (X86_V3)
# kernels: its AVX-512 kernels round transcendental functions differently, so on a CPU that has
# them the films are rendered in a subprocess with those kernels disabled (_digests). Regenerate
# only with a deliberate change to the standard simulator.
STANDARD_DIGESTS = [
    (0, 0, 0.35, "40327c0dfaaf39715681a262f00242cf4f9fc4686b9a33be3f191b7570cba698"),
    (3, 5, 0.35, "1791408f9c7ef7c4a3e79b869a186962d25a5a77c0b52db58dae3d5f798cead7"),
    (11, 2, 0.35, "5b71275233f3aff4f828d0b19e15c4a4d87fbfb85502c2cbad3a58ed5aee8b30"),
    (42, 7, 0.3, "4ce637e511c388e29f985c7ff67c9f4b934124e64d0159b70ece4ee8c3bf315d"),
]
PATIENTS = [(11, 4), (11, 5)]  # (11, 4) is mirrored and rotated 6.8 deg; (11, 5) is not


def _beyond_avx2() -> list[str]:
    """numpy's CPU dispatch targets above X86_V3 (AVX2) that this machine would use."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [t for t in __cpu_dispatch__ if t != "X86_V3" and __cpu_features__.get(t, False)]


_DIGEST_SCRIPT = (
    "import json, sys; from tests.simulate.simulate_helpers import population_digests; "
    "print(json.dumps(population_digests(json.loads(sys.argv[1]))))"
)


def _digests(cases: list[tuple[int, int, float, str | None]]) -> list[tuple[str, bool]]:
    """:func:`population_digests` on numpy's AVX2 kernels: in a subprocess with the faster ones
    disabled when this CPU has them."""
    faster = _beyond_avx2()
    if not faster:
        return population_digests(cases)
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(faster)}
    run = subprocess.run(
        [sys.executable, "-c", _DIGEST_SCRIPT, json.dumps(cases)],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    return [(d, bool(v)) for d, v in json.loads(run.stdout)]


def _variety(c: SimulatedCase) -> dict:
    rec: dict = c.params["anatomy"]["variety"]
    return rec


def _lordosis(c: SimulatedCase) -> float:
    """L1-S1 lordosis (deg) from the truth corners, whatever the film's side."""
    sign = 1.0 if c.anterior_side == "left" else -1.0
    return sign * lordosis_deg(c.vertebrae["L1"], c.vertebrae["S1"])


def _disc_angle(c: SimulatedCase, upper: str, lower: str) -> float:
    """Wedge of a disc (deg): positive when it opens anteriorly (lordotic)."""
    u, lo = c.vertebrae[upper], c.vertebrae[lower]
    a = math.atan2(*(u[2] - u[3])[::-1]) - math.atan2(*(lo[1] - lo[0])[::-1])
    a = (a + math.pi) % (2 * math.pi) - math.pi
    return math.degrees(a) * (1.0 if c.anterior_side == "left" else -1.0)


def _disc_heights(c: SimulatedCase, upper: str, lower: str) -> tuple[float, float]:
    """(anterior, posterior) disc heights in mm from the truth corners."""
    u, lo = c.vertebrae[upper], c.vertebrae[lower]
    sp = c.spacing_mm[0]
    return float(np.hypot(*(u[3] - lo[0])) * sp), float(np.hypot(*(u[2] - lo[1])) * sp)


def _at(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Image values at (x, y) points (nearest pixel)."""
    p = np.rint(np.atleast_2d(pts)).astype(int)
    return img[p[:, 1], p[:, 0]]


# --- the standard simulator is untouched -------------------------------------------------


def test_standard_films_are_bit_identical() -> None:
    cases = [(seed, index, spacing, None) for seed, index, spacing, _ in STANDARD_DIGESTS]
    seed, index, spacing, _ = STANDARD_DIGESTS[0]
    got = _digests([*cases, (seed, index, spacing, "standard")])
    expected = [d for *_, d in STANDARD_DIGESTS]
    assert [d for d, _ in got[:-1]] == expected
    assert not any(v for _, v in got)
    assert got[-1][0] == expected[0]  # an explicit "standard" is the default


def test_extended_film_without_features_renders_the_standard_film() -> None:
    """The variety has its own stream: with nothing drawn, the pixels are the standard ones."""
    assert resolve_variety("extended", 11, 0) == Variety()
    std, ext = case(11, 0), case(11, 0, variety="extended")
    assert np.array_equal(std.stored, ext.stored)
    assert np.array_equal(std.labels, ext.labels)
    assert np.array_equal(std.calc_mask, ext.calc_mask)
    rec = _variety(ext)
    assert rec["mode"] == "extended" and rec["features"] == []
    assert rec["level_convention"] == LEVEL_CONVENTION


def test_variety_draws_follow_the_documented_probabilities() -> None:
    n = 4000
    counts = dict.fromkeys(VARIETY_PROBABILITIES, 0)
    for i in range(n):
        v = resolve_variety("extended", 5, i)
        assert v == resolve_variety("extended", 5, i)
        assert not {"flexion", "extension"} <= set(v.features)
        for f in v.features:
            counts[f] += 1
    for f, p in VARIETY_PROBABILITIES.items():
        tol = 4.5 * math.sqrt(p * (1 - p) / n)
        assert abs(counts[f] / n - p) < tol, (f, counts[f] / n, p)


def test_extended_films_are_reproducible_and_varied() -> None:
    a = simulate_case(11, 1, "balanced", 0.35, variety="extended")
    b = simulate_case(11, 1, "balanced", 0.35, variety="extended")
    assert np.array_equal(a.stored, b.stored) and np.array_equal(a.labels, b.labels)
    assert _variety(a) == _variety(b) and _variety(a)["features"] == ["spondylolisthesis"]
    assert not np.array_equal(a.labels, case(11, 1).labels)


def test_the_implants_variety_puts_metal_over_the_band_on_half_the_films() -> None:
    plans = [resolve_variety("implants", 5, i) for i in range(60)]
    same = [resolve_variety("extended", 5, i) for i in range(60)]
    ivc = sum(p is not None and p.ivc_filter is not None for p in plans)
    stent = sum(p is not None and p.stent_graft is not None for p in plans)
    assert 18 <= ivc <= 42 and 18 <= stent <= 42  # 0.5 each (binomial, 60 films)
    assert sum(p is not None and p.ivc_filter is not None for p in same) <= 6
    for p, q in zip(plans, same, strict=True):  # the same parameters, only more implants on
        assert p is not None and q is not None
        assert (p.posture, p.listhesis, p.transitional, p.dish) == (
            q.posture,
            q.listhesis,
            q.transitional,
            q.dish,
        )
        if q.ivc_filter is not None:
            assert p.ivc_filter == q.ivc_filter
    first = next(i for i, p in enumerate(plans) if p is not None and p.stent_graft is not None)
    c = simulate_case(5, first, "population", 0.5, variety="implants")
    assert "stent_graft" in _variety(c)["features"]


def test_unknown_variety_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown variety 'wild'"):
        simulate_case(0, 0, variety="wild")
    with pytest.raises(ValueError, match="unknown variety"):
        simulate_dataset(tmp_path, 1, 0, variety="wild", progress=False)
    with pytest.raises(ValueError, match="family a option"):
        simulate_dataset(tmp_path, 1, 0, family="b", variety="extended", progress=False)


# --- flexion / extension --------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "index"), PATIENTS)
def test_flexion_reverses_the_lordosis_of_the_truth_corners(seed: int, index: int) -> None:
    std = case(seed, index)
    flex = case(seed, index, variety=Variety(posture=Posture("flexion", -12.0)))
    rec = _variety(flex)["posture"]
    neutral = _lordosis(std)
    assert rec["kind"] == "flexion"
    assert rec["lordosis_neutral_deg"] == pytest.approx(neutral, abs=2e-3)
    assert _lordosis(flex) == pytest.approx(rec["lordosis_deg"], abs=2e-3)
    assert _lordosis(flex) == pytest.approx(max(-12.0, neutral - 65.0), abs=0.01)
    assert neutral > 10.0 and _lordosis(flex) < 0.0
    # upper lumbar discs kyphotic (wedged open posteriorly), more than in the neutral film
    for up, lo in (("L1", "L2"), ("L2", "L3")):
        assert _disc_angle(flex, up, lo) < 0.0
        assert _disc_angle(flex, up, lo) < _disc_angle(std, up, lo) - 2.0
    for up, lo in (("L1", "L2"), ("L2", "L3"), ("L3", "L4"), ("L4", "L5"), ("L5", "S1")):
        assert min(_disc_heights(flex, up, lo)) > 1.0  # bodies never overlap
    assert _disc_angle(flex, "L5", "S1") > _disc_angle(flex, "L1", "L2")  # L5/S1 least flexed


@pytest.mark.parametrize(("seed", "index"), PATIENTS)
def test_extension_increases_the_lordosis(seed: int, index: int) -> None:
    std = case(seed, index)
    ext = case(seed, index, variety=Variety(posture=Posture("extension", 15.0)))
    neutral = _lordosis(std)
    assert _lordosis(ext) == pytest.approx(min(neutral + 15.0, 85.0), abs=0.01)
    assert _lordosis(ext) == pytest.approx(_variety(ext)["posture"]["lordosis_deg"], abs=2e-3)
    for up, lo in (("L3", "L4"), ("L4", "L5"), ("L5", "S1")):
        assert _disc_angle(ext, up, lo) > _disc_angle(std, up, lo)
        assert min(_disc_heights(ext, up, lo)) > 0.9


# --- spondylolisthesis ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "lower", "kind", "fraction"),
    [("L4", "L5", "degenerative", 0.2), ("L5", "S1", "isthmic", 0.28)],
)
def test_slipped_body_corners_move_by_the_recorded_slip(
    level: str, lower: str, kind: str, fraction: float
) -> None:
    std = case(11, 5)
    sl = case(11, 5, variety=Variety(listhesis=Listhesis(level, fraction, kind)))
    rec = _variety(sl)["spondylolisthesis"]
    assert rec["level"] == f"{level}/{lower}" and rec["kind"] == kind
    sp = sl.spacing_mm[0]
    lo = sl.vertebrae[lower]
    depth_mm = np.hypot(*(lo[1] - lo[0])) * sp
    assert rec["slip_mm"] == pytest.approx(fraction * depth_mm, rel=0.03)
    # every corner of the slipped body and of those above it moves by one vector relative to
    # the body below: the recorded slip, anteriorly along the lower superior end-plate
    forward = (lo[0] - lo[1]) / np.hypot(*(lo[1] - lo[0]))

    def rel(c: SimulatedCase, name: str) -> np.ndarray:
        out: np.ndarray = c.vertebrae[name] - c.vertebrae[lower]
        return out

    for name in (level, "L3", "L1", "T12"):
        d = rel(sl, name) - rel(std, name)
        assert np.ptp(d, axis=0).max() < 1e-6
        assert np.hypot(*d[0]) * sp == pytest.approx(rec["slip_mm"], abs=2e-3)
        assert d[0] @ forward / np.hypot(*d[0]) > 0.9999
    below = {"L5": ("S1",), "S1": ()}[lower]
    for name in below:
        assert np.abs(rel(sl, name) - rel(std, name)).max() < 1e-6

    # the label map follows: the slipped body's label moves with its corners
    def centroid(c: SimulatedCase, name: str) -> np.ndarray:
        ys, xs = np.nonzero(c.labels == LABEL_VALUES[name])
        return np.array([xs.mean(), ys.mean()])

    moved = (centroid(sl, level) - centroid(sl, lower)) - (
        centroid(std, level) - centroid(std, lower)
    )
    assert np.hypot(*moved) * sp == pytest.approx(rec["slip_mm"], abs=0.5)


def test_isthmic_slip_leaves_the_arch_behind() -> None:
    plan = Variety(listhesis=Listhesis("L5", 0.25, "isthmic"))
    anat = sample_anatomy(np.random.default_rng(np.random.SeedSequence([11, 5])), {}, plan)
    slip = anat.params["variety"]["spondylolisthesis"]["slip_mm"]
    assert anat.body("L5").arch_shift == pytest.approx(slip, abs=1e-3)
    assert anat.body("L4").arch_shift == 0.0 and anat.body("S1").arch_shift == 0.0


# --- transitional vertebrae -------------------------------------------------------------------


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return np.stack([labels == v for v in range(8)]).astype(np.float32) * 10.0


@pytest.mark.parametrize(("kind", "disc"), [("lumbarised_S1", 6.0), ("sacralised_L5", 1.0)])
def test_transitional_labels_follow_the_count_from_the_sacrum(kind: str, disc: float) -> None:
    plan = Variety(transitional=Transitional(kind, disc, 3.0, 0.2, 2.5))
    c = case(11, 5, variety=plan)
    rec = _variety(c)["transitional"]
    lumb = kind == "lumbarised_S1"
    assert rec["kind"] == kind and rec["free_lumbar_bodies"] == (6 if lumb else 4)
    assert rec["anatomical"]["L5"] == ("S1" if lumb else "L4")
    assert rec["anatomical"]["S1"] == ("S2" if lumb else "L5")
    assert rec["anatomical"]["L1"] == ("L2" if lumb else "T12")
    # the anatomical T12 bears the lowest ribs: T11 by the count (lumbarised), L1 (sacralised)
    assert rec["lowest_rib"] in (("T11", "T10") if lumb else ("L1", "T12"))
    assert _variety(c)["level_convention"] == LEVEL_CONVENTION
    # the spine stage's count up from the sacrum, run on the label map, names every body as
    # the label map does: L5 is the first free body above the sacrum
    count, _, _ = count_from_sacrum(_one_hot(c.labels))
    assert count.counted, count.reason
    assert count.network == count.anchored == ("L5", "L4", "L3", "L2", "L1", "T12")
    assert min(_disc_heights(c, "L5", "S1")) > 2.5  # L5 is free
    # anatomy: the body named S1 is fused to the one below (sacralised) or is sacral itself
    anat = sample_anatomy(np.random.default_rng(np.random.SeedSequence([11, 5])), {}, plan)
    s1, s2, l5 = anat.body("S1"), anat.body("S2"), anat.body("L5")
    assert l5.anatomical == ("S1" if lumb else "L4")
    if lumb:
        assert s1.sacral and s1.anatomical == "S2"
        gap = np.hypot(*(l5.corners_mm()[2] - s1.corners_mm()[1]))
        assert gap == pytest.approx(disc, abs=0.5)
    else:
        assert s1.anatomical == "L5" and not s1.sacral
        gap = np.hypot(*(s1.corners_mm()[2] - s2.corners_mm()[1]))
        assert gap == pytest.approx(disc, abs=0.3)
        assert len(anat.bone_tubes) == 2  # anterior bridge, transverse process on the ala


# --- scoliosis, DISH --------------------------------------------------------------------------


def test_scoliosis_doubles_the_endplates_of_its_levels_only() -> None:
    std = case(11, 5)
    sc = case(11, 5, variety=Variety(scoliosis=Scoliosis("L2", 3, 6.0, 90.0, 3.0)))
    shifts = _variety(sc)["scoliosis"]["shift_mm"]
    assert set(shifts) == {"L2", "L3", "L4"}
    assert all(4.5 - 1e-9 <= m <= 6.0 + 1e-9 for m in shifts.values())
    for name in std.vertebrae:  # the truth is the mid-plane: unchanged
        assert np.array_equal(sc.vertebrae[name], std.vertebrae[name])
    assert np.array_equal(sc.labels, std.labels)
    diff = np.abs(sc.image - std.image)
    inside = {n: float(diff[std.labels == LABEL_VALUES[n]].mean()) for n in ("L1", "L3", "L5")}
    assert inside["L3"] > 3.0 * max(inside["L1"], inside["L5"])


def test_dish_is_bone_bridging_the_discs_not_calcification() -> None:
    std = case(11, 5, target_aac24=0)
    plan = Variety(dish=Dish("T12", 5, 3.0, 7.0, 22.0))
    dh = case(11, 5, target_aac24=0, variety=plan)
    rec = _variety(dh)["dish"]
    assert rec["levels"] == ["T12", "L1", "L2", "L3", "L4"] and rec["discs_bridged"] == 4
    assert np.array_equal(dh.labels, std.labels)
    assert dh.truth.aac24 == 0 and not dh.calc_mask.any()
    sp = dh.spacing_mm[0]
    for up, lo in (("T12", "L1"), ("L1", "L2"), ("L2", "L3"), ("L3", "L4")):
        u, lw = dh.vertebrae[up], dh.vertebrae[lo]
        fwd = (lw[0] - lw[1]) / np.hypot(*(lw[0] - lw[1]))
        front = (u[3] + lw[0]) / 2 + fwd * (2.5 / sp)
        assert _at(dh.image, front) - _at(std.image, front) > 0.05, (up, lo)


# --- implants -----------------------------------------------------------------------------


def _bone_p99(c: SimulatedCase, names: tuple[str, ...] = ("L1", "L2")) -> float:
    mask = np.isin(c.labels, [LABEL_VALUES[n] for n in names])
    return float(np.percentile(c.image[mask], 99))


def test_pedicle_screws_are_metal_brighter_than_bone() -> None:
    std = case(11, 5)
    c = case(11, 5, variety=Variety(screws=ScrewPlan("L5", 2, 0.2, 0.0, 1.5)))
    (rec,) = _variety(c)["implants"]
    assert rec["kind"] == "pedicle_screws" and rec["levels"] == ["L4", "L5"]
    assert len(rec["screws_points"]) == 4 and len(rec["rods_points"]) == 2
    bone = _bone_p99(c)
    for entry, tip in np.asarray(rec["screws_points"]):
        shaft = entry + np.linspace(0.3, 0.8, 12)[:, None] * (tip - entry)
        assert np.median(_at(c.image, shaft)) > bone
        assert not _at(c.calc_mask, shaft).any()
    assert np.array_equal(c.labels, std.labels)  # metal is not a body


def test_disc_prosthesis_restores_the_disc_with_dense_plates() -> None:
    plan = Variety(disc_prosthesis=ProsthesisPlan("L4", 9.0, 2.0, 30.0, 5.0))
    c = case(11, 5, variety=plan)
    (rec,) = _variety(c)["implants"]
    assert rec["kind"] == "disc_prosthesis" and rec["disc"] == "L4/L5"
    assert _disc_heights(c, "L4", "L5")[1] == pytest.approx(9.0, abs=0.3)
    assert np.all(_at(c.image, np.asarray(rec["plates_points"])) > _bone_p99(c))


def _band(c: SimulatedCase) -> MplPath:
    """Polygon between the aortic walls from the T12/L1 to the L4/L5 bound."""
    top = c.segment_bounds["L1_posterior"][0][1], c.segment_bounds["L1_anterior"][0][1]
    bot = c.segment_bounds["L4_posterior"][1][1], c.segment_bounds["L4_anterior"][1][1]
    y0, y1 = min(top) - 20, max(bot) + 20
    post, ant = c.walls["posterior"], c.walls["anterior"]
    post = post[(post[:, 1] > y0) & (post[:, 1] < y1)]
    ant = ant[(ant[:, 1] > y0) & (ant[:, 1] < y1)]
    return MplPath(np.concatenate([post, ant[::-1]]))


@pytest.mark.parametrize("kind", ["ivc_filter", "stent_graft"])
def test_filter_and_stent_overlap_the_band_and_are_not_calcification(kind: str) -> None:
    std = case(11, 5, target_aac24=0)
    plan = (
        Variety(ivc_filter=FilterPlan("conical", 48.0, 13.0, 5.0, 0.3, 0.5))
        if kind == "ivc_filter"
        else Variety(stent_graft=StentPlan(6, 6.5, 3.0, 0.45, 3))
    )
    c = case(11, 5, target_aac24=0, variety=plan)
    (rec,) = _variety(c)["implants"]
    assert rec["kind"] == kind
    pts = np.asarray(rec["apex_base_points" if kind == "ivc_filter" else "axis_points"])
    assert _band(c).contains_points(pts).all()
    assert c.truth.aac24 == 0 and not c.calc_mask.any()
    band = _band(c)
    ys, xs = np.mgrid[0 : c.image.shape[0] : 2, 0 : c.image.shape[1] : 2]
    inside = band.contains_points(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(xs.shape)
    brighter = (c.image[::2, ::2] - std.image[::2, ::2])[inside]
    assert np.percentile(brighter, 99.5) > 0.1  # the wires show over the band


def test_all_features_at_once_keep_the_truth_consistent() -> None:
    plan = Variety(
        posture=Posture("flexion", -5.0),
        listhesis=Listhesis("L4", 0.15, "degenerative"),
        transitional=Transitional("lumbarised_S1", 6.0, 3.0, 0.2, 2.5),
        scoliosis=Scoliosis("L2", 3, 5.0, 80.0, 2.0),
        dish=Dish("T11", 4, 3.0, 6.0, 20.0),
        screws=ScrewPlan("S1", 3, 0.2, 0.0, 1.5),
        disc_prosthesis=ProsthesisPlan("L3", 9.0, 2.0, 30.0, 5.0),
        ivc_filter=FilterPlan("tulip", 48.0, 13.0, 5.0, 0.3, 0.5),
        stent_graft=StentPlan(6, 6.5, 3.0, 0.45, 3),
    )
    c = case(11, 4, variety=plan)
    assert _variety(c)["features"] == list(plan.features) and len(plan.features) == 9
    fr, grades, aac8 = recompute(c.calc_mask, c.walls, c.segment_bounds, c.vertebrae)
    for k, seg in enumerate(SEGMENTS):
        assert fr[seg] == pytest.approx(c.fractions[seg], abs=1e-6)
        assert grades[seg] == c.truth.grades[k]
    assert c.truth.aac8 == aac8
    count, _, _ = count_from_sacrum(_one_hot(c.labels))
    assert count.counted and count.agrees, count.reason
    assert _lordosis(c) == pytest.approx(_variety(c)["posture"]["lordosis_deg"], abs=2e-3)


# --- dataset writer and command line ------------------------------------------------------


def test_dataset_and_cli_write_the_variety_record(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    simulate_dataset(out, 2, 11, variety="extended", fmt="png", progress=False, spacing_mm=0.5)
    rec = json.loads((out / "case_000001.json").read_text())["params"]["anatomy"]["variety"]
    assert rec["features"] == ["spondylolisthesis"] and "slip_mm" in rec["spondylolisthesis"]
    runner = CliRunner()
    cli_out = tmp_path / "cli"
    args = ["simulate", "-n", "1", "-o", str(cli_out), "--seed", "11", "--format", "png"]
    res = runner.invoke(app, [*args, "--spacing", "0.5", "--variety", "extended"])
    assert res.exit_code == 0, res.output
    data = json.loads((cli_out / "case_000000.json").read_text())
    assert data["params"]["anatomy"]["variety"]["mode"] == "extended"
    res = runner.invoke(app, [*args, "--variety", "wild"])
    assert res.exit_code == 2 and "unknown variety" in res.output
    assert "standard, extended, implants" in res.output
    res = runner.invoke(
        app, [*args, "--spacing", "0.5", "--variety", "implants", "-o", str(tmp_path / "imp")]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*args, "--family", "b", "--variety", "extended"])
    assert res.exit_code == 2
