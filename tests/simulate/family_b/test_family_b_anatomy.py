"""Family B appearance: body texture and density, the fused sacrum, posterior elements, bowel gas,
heel effect and collimation, each checked on what is rendered."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from scipy import ndimage

from aacscore.simulate.family_b import FamilyBCase, simulate_case_b
from aacscore.simulate.family_b import render as rd
from aacscore.simulate.family_b.scene import sample_scene
from aacscore.simulate.family_b.shapes import LUMBAR, SACRAL, Body, sample_skeleton
from aacscore.vertebrae import LABEL_VALUES

SPACING = 0.3


@lru_cache(maxsize=24)
def case(seed: int, index: int, **kw: object) -> FamilyBCase:
    return simulate_case_b(seed, index, spacing_mm=SPACING, **kw)


def _axes(quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(anterior-posterior, cranial) unit vectors of a body from its contract corners."""
    v = (quad[0] + quad[1]) / 2 - (quad[3] + quad[2]) / 2
    v = v / np.hypot(*v)
    return np.array([-v[1], v[0]]), v


def _core(c: FamilyBCase, name: str, mm: float) -> np.ndarray:
    return np.asarray(
        ndimage.binary_erosion(c.labels == LABEL_VALUES[name], iterations=round(mm / SPACING))
    )


def _sample(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(ndimage.map_coordinates(img, [pts[:, 1], pts[:, 0]], order=1))


def test_vertical_trabecular_texture() -> None:
    """Inside the bodies, intensity changes faster across the body's v axis than along it."""
    ratios = []
    for index in range(5):
        c = case(7, index)
        img = ndimage.gaussian_filter(c.image.astype(np.float64), 0.5)
        gy, gx = np.gradient(img)
        per_body = []
        for name in ("L2", "L3", "L4"):
            core = _core(c, name, 4.0)
            u, v = _axes(c.vertebrae[name])
            gu, gv = gx * u[0] + gy * u[1], gx * v[0] + gy * v[1]
            per_body.append(float((gu[core] ** 2).mean() / (gv[core] ** 2).mean()))
        ratios.append(float(np.median(per_body)))
    assert sum(r > 1.2 for r in ratios) >= 4, ratios


def test_texture_is_anisotropic_along_v() -> None:
    u, v = np.meshgrid(np.linspace(-15, 15, 240), np.linspace(-12, 12, 200))
    tex = rd.trabecular_texture(3, 4.0, u, v, (16.0, 13.0))
    gy, gx = np.gradient(tex.astype(np.float64))  # rows follow v, columns follow u
    assert (gx**2).mean() > 2.0 * (gy**2).mean()
    assert abs(float(tex.mean())) < 0.3 and 0.7 < float(tex.std()) < 1.3
    iso = rd.trabecular_texture(3, 1.0, u, v, (16.0, 13.0))
    gy, gx = np.gradient(iso.astype(np.float64))
    assert (gx**2).mean() < 2.0 * (gy**2).mean()


def _body_contrast(c: FamilyBCase) -> float:
    """Median body core minus the disc space below it (L2/L3 and L3/L4), display units."""
    out = []
    for up, lo in (("L2", "L3"), ("L3", "L4")):
        a, b = c.vertebrae[up], c.vertebrae[lo]
        mid = (a[2] + a[3] + b[0] + b[1]) / 4
        r = round(2.0 / SPACING)
        x, y = mid.astype(int)
        disc = c.image[y - r : y + r, x - r : x + r]
        out.append(float(np.median(c.image[_core(c, lo, 5.0)]) - np.median(disc)))
    return float(np.mean(out))


@pytest.mark.parametrize("index", [1, 3, 4])
def test_osteoporotic_bodies_have_lower_contrast(index: int) -> None:
    normal, poro = case(7, index, bmd=1.2), case(7, index, bmd=0.45)
    assert poro.params["anatomy"]["osteoporosis"] > 0.9 > normal.params["anatomy"]["osteoporosis"]
    assert _body_contrast(poro) < 0.8 * _body_contrast(normal)
    assert normal.truth == poro.truth and np.array_equal(normal.labels, poro.labels)
    with pytest.raises(ValueError, match="bmd"):
        simulate_case_b(7, index, bmd=5.0)


def _canvas(b: Body, sp: float) -> rd.Canvas:
    shape = (round(60 / sp), round(60 / sp))
    m = np.eye(2) / sp
    t = np.array([shape[1] / 2, shape[0] / 2]) - b.centre / sp
    return rd.Canvas(shape, m, t)


def test_double_end_plate_contour() -> None:
    body = Body(
        "L3", np.zeros(2), 0.0, 36.0, 26.0, 26.0, 1.0, 1.0, 1.0, 2.0, 1.0, 0.16, blur_mm=0.3
    )
    sp = 0.1
    cv = _canvas(body, sp)
    profiles = {}
    for dbl in (0.0, 2.5):
        trab = np.zeros(cv.shape, np.float32)
        cort = np.zeros(cv.shape, np.float32)
        labels = np.zeros(cv.shape, np.uint8)
        b = replace(body, double_mm=dbl)
        rd.render_body(cv, b, trab, cort, labels, 3)
        col = cv.shape[1] // 2  # u = 0: the end-plates' concave middle
        profiles[dbl] = cort[:, col]
        assert (labels == 3).sum() > 0
        if dbl == 0:
            labels0 = labels.copy()
        else:
            assert np.array_equal(labels, labels0)  # the outline, hence the label, is unchanged
    top = int(np.argmax(profiles[0.0][: cv.shape[0] // 2]))
    shift = round(2.5 / sp)
    ghost = profiles[2.5][top + shift - 3 : top + shift + 4].max()
    plain = profiles[0.0][top + shift - 3 : top + shift + 4].max()
    assert ghost > 1.5 * plain  # a second contour 2.5 mm inside the first


def test_end_plates_denser_than_anterior_wall() -> None:
    body = Body("L3", np.zeros(2), 0.0, 36.0, 26.0, 26.0, 0.0, 0.0, 0.0, 2.0, 1.0, 0.16)
    cv = _canvas(body, 0.1)
    trab = np.zeros(cv.shape, np.float32)
    cort = np.zeros(cv.shape, np.float32)
    rd.render_body(cv, body, trab, cort, None, 0)
    cy, cx = cv.shape[0] // 2, cv.shape[1] // 2
    plate = cort[:cy, cx - 20 : cx + 20].max()  # superior end-plate, middle third
    wall = cort[cy - 20 : cy + 20, :].max()  # anterior / posterior walls, mid height
    assert plate > 1.1 * wall


def test_rim_brightness_varies_around_the_outline() -> None:
    body = Body("L3", np.zeros(2), 0.0, 36.0, 26.0, 26.0, 0.0, 0.0, 0.0, 2.0, 1.0, 0.16, rim_seed=5)
    cv = _canvas(body, 0.1)
    trab = np.zeros(cv.shape, np.float32)
    cort = np.zeros(cv.shape, np.float32)
    rd.render_body(cv, body, trab, cort, None, 0)
    cy, cx = cv.shape[0] // 2, cv.shape[1] // 2
    wall_ant = cort[cy - 20 : cy + 20, cx:].max(axis=1)  # anterior wall peak per row
    wall_post = cort[cy - 20 : cy + 20, :cx].max(axis=1)
    assert abs(float(wall_ant.mean()) - float(wall_post.mean())) > 0.05 * float(wall_ant.mean())


def test_sacrum_is_one_fused_bone() -> None:
    """The sacral outline holds S1-S5, S1's inferior end-plate lies deep inside it (no gap
    between S1 and S2) and its top follows S1's superior corners (the promontory)."""
    for seed in range(5):
        sk = sample_skeleton(np.random.default_rng(seed), {})
        assert sk.sacrum is not None
        path = MplPath(sk.sacrum)
        for name in SACRAL:
            assert path.contains_point(sk.bodies[name].centre), (seed, name)
        s1 = sk.bodies["S1"]
        d = np.hypot(*(sk.sacrum - s1.inf_mid()).T).min()
        assert d > 8.0, seed
        c = s1.corners()
        assert np.hypot(*(sk.sacrum - c[0]).T).min() < 2.5
        assert np.hypot(*(sk.sacrum - c[1]).T).min() < 2.5
        widths = [sk.bodies[n].depth for n in SACRAL]
        assert widths == sorted(widths, reverse=True)  # tapering


def test_s1_continues_into_the_sacrum_on_the_film() -> None:
    """Below S1's label the image stays bone-bright (fused S2), unlike the soft tissue in front."""
    checked, gaps = 0, []
    for index in range(8):
        c = case(12, index, rotation_deg=0.0)
        if "S1" not in c.vertebrae:
            continue
        s1 = c.vertebrae["S1"]
        _, v = _axes(s1)
        inf = (s1[2] + s1[3]) / 2
        h, w = c.image.shape
        below = inf - v[None, :] * np.linspace(1.5, 6.0, 10)[:, None] / SPACING
        if below.min() < 0 or below[:, 0].max() > w - 1 or below[:, 1].max() > h - 1:
            continue
        core_s1 = float(np.median(c.image[_core(c, "S1", 4.0)]))
        sacrum = float(np.median(_sample(c.image, below))) / core_s1
        ant = (s1[0] + s1[3]) / 2 - (s1[1] + s1[2]) / 2
        front_pt = ((s1[0] + s1[3]) / 2 + ant / np.hypot(*ant) * 10.0 / SPACING)[None, :]
        front = float(_sample(c.image, front_pt)[0]) / core_s1
        if max(sacrum, front) * core_s1 > 0.97:
            continue  # saturated (electronic shutter or clipped pelvis)
        assert sacrum > 0.75, (index, sacrum)
        gaps.append(sacrum - front)
        # S1's label touches bone below it: no background between S1 and the sacrum
        lab = c.labels == LABEL_VALUES["S1"]
        ring = ndimage.binary_dilation(lab, iterations=3) & ~lab
        assert float(np.median(c.image[ring])) > 0.6 * core_s1
        checked += 1
    assert checked >= 3
    assert float(np.mean(gaps)) > 0.1, gaps  # brighter than the soft tissue in front, on average


def test_pedicles_overlap_the_posterior_third_of_the_bodies() -> None:
    sk = sample_skeleton(np.random.default_rng(4), {})
    for name in LUMBAR:
        b = sk.bodies[name]
        parts = [s for n, s, _ in sk.slabs if n == name]
        ped = parts[0]  # pedicle first, as drawn
        assert ped.u + ped.hu > -b.depth / 2 + 0.1 * b.depth, name
        assert ped.u + ped.hu < -b.depth / 6, name  # posterior third only
        assert any(s.facet_v is not None for s in parts), name


def _gas_over_bodies(seed: int) -> float:
    """Fraction of L1-L5 label pixels under more than 3 mm of gas (1 mm grid)."""
    rng = np.random.default_rng(seed)
    sk = sample_skeleton(rng, {})
    sc = sample_scene(rng, sk, {})
    c = sk.bodies["L3"].centre
    sp = 1.0
    shape = (400, 300)
    cv = rd.Canvas(shape, np.eye(2) / sp, np.array([150.0, 200.0]) - c / sp)
    labels = np.zeros(shape, np.uint8)
    junk = np.zeros(shape, np.float32)
    for name in ("L1", "L2", "L3", "L4", "L5"):
        rd.render_body(cv, sk.bodies[name], junk, junk.copy(), labels, LABEL_VALUES[name])
    _, gas = rd.soft_tissue(cv, sc, np.random.default_rng(0))
    body = labels > 0
    return float((gas[body] > 3.0).mean())


def test_bowel_gas_overlaps_bodies_in_some_films() -> None:
    over = [_gas_over_bodies(seed) for seed in range(10)]
    assert sum(f > 0.01 for f in over) >= 3, over
    assert sum(f < 0.5 for f in over) >= 5, over  # not every film is buried in gas


def test_heel_effect_direction() -> None:
    rng = np.random.default_rng(0)
    chain = rd.sample_chain(rng, 0.5, {})
    shape = (300, 200)
    bone = np.zeros(shape, np.float32)
    soft = np.full(shape, 250.0, np.float32)
    coll = np.ones(shape, np.float32)
    means = {}
    for heel in (-0.3, 0.0, 0.3):
        p = {**chain, "heel": heel, "heel_axis": "rows", "quanta_per_0p2mm": 1e6}
        logs = rd.expose(bone, soft, p, 0.5, (150, 100), coll, np.random.default_rng(1))
        means[heel] = float(logs[:30].mean() - logs[-30:].mean())
    # less fluence where the ramp is low (top) when heel > 0: larger log attenuation there
    assert means[0.3] > means[0.0] + 0.05 > means[-0.3] + 0.1
    assert abs(means[0.0]) < 0.05


def test_collimation_tilted_with_penumbra_and_clear_of_roi() -> None:
    p = {
        "collimation": [True, True, True, True],
        "collimation_depth": [1.0, 1.0, 1.0, 1.0],
        "collimation_tilt_deg": 2.0,
        "penumbra_mm": 2.0,
    }
    shape, roi = (1000, 800), (300, 700, 250, 550)
    m = rd.collimation(shape, p, roi, 0.2)
    assert (m[300:700, 250:550] == 1.0).all()
    assert m[0, 400] == 0.0 and m[-1, 400] == 0.0 and m[500, 0] == 0.0 and m[500, -1] == 0.0
    soft = (m > 0.05) & (m < 0.95)
    assert soft.any()  # a penumbra, not a hard step
    top_edge = [int(np.argmax(m[:, x] > 0.5)) for x in (260, 540)]
    assert top_edge[0] != top_edge[1]  # tilted blade
    slope = (top_edge[1] - top_edge[0]) / 280
    assert slope == pytest.approx(math.tan(math.radians(2.0)), abs=0.01)
