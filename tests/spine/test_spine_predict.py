"""Orientation (mirrored films), canonical-frame mapping and the prediction pipeline with a
stand-in network that outputs the true labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aacscore.io import Radiograph
from aacscore.spine.flags import orientation_findings
from aacscore.spine.network import OrientationNet, WeightsError
from aacscore.spine.orientation import (
    CanonicalFrame,
    classifier_probability_right,
    decide,
    posterior_cue,
)
from aacscore.spine.predict import SpineModel, SpineResult, load_spine_model
from aacscore.spine.preprocess import Letterbox, zscore
from aacscore.training.plans import CaseShape, compute_fingerprint, plan_from_fingerprint
from aacscore.vertebrae import DISC_NAMES, LABEL_VALUES, SpineError
from tests.spine.spine_synth import make_film

SHAPE = (240, 160)


class TruthNet(nn.Module):
    """Returns the true labels as logits, mirrored when the input is the mirrored film (like a
    network trained with mirroring)."""

    def __init__(self, logits: torch.Tensor, reference: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.reference = reference

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        same = float(((x[0, 0] - self.reference) ** 2).mean())
        mirrored = float(((x[0, 0] - torch.flip(self.reference, dims=[1])) ** 2).mean())
        out = self.logits if same <= mirrored else torch.flip(self.logits, dims=[2])
        return out[None].expand(x.shape[0], -1, -1, -1)


def _model_for(film: dict, orientation_net: OrientationNet | None = None) -> SpineModel:
    plans = plan_from_fingerprint(
        compute_fingerprint([CaseShape(SHAPE, film["spacing_mm"])]), patch_size=(192, 128)
    )
    box = Letterbox.fit(SHAPE, plans.patch_size)
    mirrored = film["anterior_side"] == "right"
    lab = box.resize_labels(film["labels"])
    img = box.resize_image(film["image"])
    if mirrored:
        lab, img = lab[:, ::-1], img[:, ::-1]
    lab, img = box.pad(np.ascontiguousarray(lab)), box.pad(np.ascontiguousarray(img))
    logits = torch.from_numpy(np.eye(8, dtype=np.float32)[lab].transpose(2, 0, 1) * 8.0)
    valid = torch.from_numpy(box.valid_mask().astype(np.float32))[None, None]
    ref = zscore(torch.from_numpy(img)[None, None], valid)[0, 0]
    return SpineModel(plans, TruthNet(logits, ref), orientation_net)


def _radiograph(film: dict) -> Radiograph:
    return Radiograph(film["image"], film["spacing_mm"], "synthetic.png", "MONOCHROME2", 16)


def test_canonical_frame_is_an_involution() -> None:
    fr = CanonicalFrame((10, 20), "right")
    pts = np.array([[0.0, 1.0], [19.0, 5.0], [7.5, 3.0]])
    assert np.allclose(fr.to_canonical_points(pts)[:, 0], [19.0, 0.0, 11.5])
    assert np.allclose(fr.to_original_points(fr.to_canonical_points(pts)), pts)
    img = np.arange(200).reshape(10, 20)
    assert np.array_equal(fr.to_original_image(fr.to_canonical_image(img)), img)
    # a pixel value and its point move together
    p = np.array([[3.0, 4.0]])
    c = fr.to_canonical_points(p)[0]
    assert fr.to_canonical_image(img)[4, int(c[0])] == img[4, 3]
    assert np.array_equal(CanonicalFrame((10, 20), "left").to_canonical_image(img), img)
    with pytest.raises(ValueError):
        CanonicalFrame((10, 20), "up")


def test_classifier_is_antisymmetric_under_mirroring() -> None:
    torch.manual_seed(0)
    net = OrientationNet((8, 16))
    x = torch.randn(1, 1, 32, 24)
    p = classifier_probability_right(net, x)
    q = classifier_probability_right(net, torch.flip(x, dims=[3]))
    assert p + q == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("side", ["left", "right"])
def test_posterior_cue_on_mirrored_films(side: str) -> None:
    film = make_film(5, shape=SHAPE, anterior_side=side)
    cue = posterior_cue(film["image"], film["labels"])
    assert cue is not None
    assert (cue > 0) == (side == "left")
    assert abs(cue) > 0.5


def test_decide_rules() -> None:
    assert decide(0.97, -1.0).anterior_side == "right"  # confident classifier wins
    r = decide(0.97, 2.0)
    assert r.anterior_side == "right" and any("disagree" in w for w in r.warnings)
    r = decide(0.6, 1.0)  # unsure classifier, clear cue
    assert r.anterior_side == "left" and r.method == "posterior-elements cue"
    r = decide(0.55, None)
    assert r.anterior_side == "right" and any("uncertain" in w for w in r.warnings)


@pytest.mark.parametrize(("side", "rotation"), [("left", 0.0), ("right", 7.0), ("right", -9.0)])
def test_predict_maps_geometry_back_to_original_pixels(side: str, rotation: float) -> None:
    film = make_film(11, shape=SHAPE, anterior_side=side, rotation_deg=rotation)
    model = _model_for(film)
    res = model.predict(_radiograph(film), anterior_side=side)
    assert isinstance(res, SpineResult)
    assert res.anterior_side == side and res.shape == SHAPE
    assert res.labels.shape == SHAPE
    for name, truth in film["corners"].items():
        err = np.hypot(*(res.vertebrae[name].corners - truth).T)
        assert err.max() < 2.0, (name, err)  # model grid is 0.8x the film: ~1.5 px
    # label map at original resolution overlaps the truth
    for name in ("L1", "L4"):
        v = LABEL_VALUES[name]
        a, b = res.labels == v, film["labels"] == v
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.9
    assert set(res.bounds) == set(DISC_NAMES)
    sign = -1 if side == "left" else 1
    assert all(sign * b.direction[0] > 0.9 for b in res.bounds.values())
    up, low = res.segment_bounds("L2")
    assert up.name == "L1/L2" and low.name == "L2/L3"
    canon = res.canonical_geometry()
    assert all(b.direction[0] < -0.9 for b in canon.bounds.values())
    assert {"network_s", "geometry_s", "total_s"} <= set(res.timings)
    assert res.to_dict()["vertebrae"]["L3"]["height_mm"] > 15


@pytest.mark.parametrize("side", ["left", "right"])
def test_predict_detects_mirrored_films_without_classifier(side: str) -> None:
    film = make_film(21, shape=SHAPE, anterior_side=side)
    res = _model_for(film).predict(_radiograph(film))
    assert res.anterior_side == side
    assert res.orientation.method == "posterior-elements cue"


def test_predict_raises_typed_error_on_implausible_spine() -> None:
    film = make_film(4, shape=SHAPE, levels=("T12", "L1", "L3", "L4", "L5", "S1"))
    with pytest.raises(SpineError, match=r"synthetic\.png: vertebrae not found: L2"):
        _model_for(film).predict(_radiograph(film), anterior_side="left")


def test_missing_weights_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="aacscore train spine"):
        SpineModel.load(tmp_path)
    with pytest.raises(WeightsError, match="no spine model"):
        load_spine_model(tmp_path)


def test_band_is_cut_on_the_spine_results_bounds_an_unusable_t12_extrapolated() -> None:
    from aacscore.aorta import extract_band
    from aacscore.spine.orientation import OrientationResult
    from aacscore.vertebrae import Vertebra, kauppila_bounds

    corners = {}
    y = 40.0
    for n in ("T12", "L1", "L2", "L3", "L4", "L5"):
        corners[n] = np.array([[165.0, y], [235.0, y], [235.0, y + 50], [165.0, y + 50]])
        y += 70.0
    corners["T12"] = corners["T12"] - np.array([0.0, 90.0])  # partly segmented, far above L1
    verts = {n: Vertebra(n, c) for n, c in corners.items()}
    bounds, discs, warnings = kauppila_bounds(verts)
    res = SpineResult(
        source="x",
        shape=(600, 400),
        anterior_side="left",
        orientation=OrientationResult("left", 0.0, None, "given"),
        vertebrae=verts,
        discs=discs,
        bounds=bounds,
        spacing_mm=(0.5, 0.5),
        model_mm_per_px=None,
        labels=np.zeros((600, 400), dtype=np.uint8),
        warnings=tuple(warnings),
    )
    assert res.bounds["T12/L1"].extrapolated and "T12/L1" not in res.discs
    img = np.zeros((600, 400), np.float32)
    band = extract_band(img, res.vertebrae, "left", (0.5, 0.5), bounds=res.bounds)
    assert band.extrapolated_bounds == ("T12/L1",)
    # the corners alone give the same band: one rule for the bounds
    same = extract_band(img, corners, "left", (0.5, 0.5))
    np.testing.assert_allclose(same.grid_x, band.grid_x)
    np.testing.assert_allclose(same.grid_y, band.grid_y)
    # the band's level boundaries run along the reported bounds
    for i, name in enumerate(("T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5")):
        r = min(i * band.geometry.rows_per_level, band.geometry.n_rows) - 0.5
        x, y = band.to_film(np.full(5, r), np.linspace(0, band.geometry.n_cols - 1, 5))
        b = res.bounds[name]
        off = (np.stack([x, y], axis=1) - b.point) @ np.array([-b.direction[1], b.direction[0]])
        assert np.max(np.abs(off)) < 0.05, name


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_spine_model_weight_files_are_plans_and_safetensors(backend: str) -> None:
    from aacscore.spine.network import default_model_dir

    model = SpineModel.load(backend=backend)
    assert model.backend == backend
    files = model.weight_files()
    names = {"plans.json", "unet.safetensors", "orientation.safetensors"}
    if backend == "onnx":  # the graphs that run in place of the weights are named too
        names |= {"unet.onnx", "orientation.onnx"}
    assert {p.name for p in files} == names
    assert all(p.parent == default_model_dir() and p.is_file() for p in files)


def test_predict_recounts_slipped_levels_from_the_sacrum() -> None:
    film = make_film(12, shape=SHAPE)
    truth = film["labels"]
    slipped = truth.copy()
    slipped[truth == LABEL_VALUES["T12"]] = 0
    slipped[truth == LABEL_VALUES["L1"]] = LABEL_VALUES["T12"]
    slipped[truth == LABEL_VALUES["L2"]] = LABEL_VALUES["L1"]
    model = _model_for({**film, "labels": slipped})
    res = model.predict(_radiograph(film), anterior_side="left")
    assert "level_uncertain" in res.flags
    assert any("count from the sacrum" in w for w in res.warnings)
    for name in ("L1", "L2", "L3", "L4"):
        err = np.hypot(*(res.vertebrae[name].corners - film["corners"][name]).T)
        assert err.max() < 2.0, (name, err)
    assert (
        "T12" not in res.vertebrae
        or np.hypot(*(res.vertebrae["T12"].center - film["corners"]["L1"].mean(axis=0))) > 5
    )


def _sacrum_labels(offset: float, mirror: bool = False) -> np.ndarray:
    """L4, L5 stacked and the sacrum shifted sideways by ``offset`` of the L4-L5 distance."""
    lab = np.zeros((120, 80), dtype=np.uint8)
    for name, y in (("L4", 30), ("L5", 55)):
        lab[y - 8 : y + 8, 30:50] = LABEL_VALUES[name]
    dx = round(offset * 25)
    lab[72:88, 30 + dx : 50 + dx] = LABEL_VALUES["S1"]
    return np.ascontiguousarray(lab[:, ::-1]) if mirror else lab


def test_sacrum_cue_measures_the_offset_and_mirrors() -> None:
    from aacscore.spine.orientation import mirrored_cue, sacrum_cue

    assert sacrum_cue(_sacrum_labels(0.4)) == pytest.approx(0.4, abs=0.03)
    assert sacrum_cue(_sacrum_labels(0.4, mirror=True)) == pytest.approx(-0.4, abs=0.03)
    assert mirrored_cue(sacrum_cue(_sacrum_labels(0.4))) == pytest.approx(-0.4, abs=0.03)
    no_s1 = _sacrum_labels(0.4)
    no_s1[no_s1 == LABEL_VALUES["S1"]] = 0
    assert sacrum_cue(no_s1) is None


def test_decide_with_the_sacrum() -> None:
    # an unsure classifier defers to a clear sacrum
    r = decide(0.7, 0.8, sacrum=0.3)
    assert r.anterior_side == "left" and r.method == "sacrum" and r.sacrum == 0.3
    assert r.warnings == () and not r.disagrees_with_sacrum
    # a confident classifier decides; disagreeing with the sacrum is a warning and a flag
    r = decide(0.999, None, sacrum=0.3)
    assert r.anterior_side == "right" and r.method == "classifier"
    assert r.disagrees_with_sacrum and any("disagree" in w for w in r.warnings)
    assert orientation_findings(r) == list(r.warnings)
    agree = decide(0.001, None, sacrum=0.3)
    assert agree.anterior_side == "left" and agree.warnings == ()
    # a sacrum in line with L4-L5 says nothing: the classifier (then the posterior cue) decides
    weak = decide(0.7, 0.8, sacrum=0.05)
    assert weak.anterior_side == "left" and weak.method == "posterior-elements cue"
