"""The score network on ONNX Runtime gives torch's outputs (to 1e-4), including the features
the familiarity score reads, and the numpy test-time augmentation equals the torch one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aacscore.aorta import Band, extract_band
from aacscore.backend import BackendError
from aacscore.score.augment import (
    TTA_TRANSFORMS,
    normalize,
    normalize_bands,
    tta_bands,
    tta_batch,
)
from aacscore.score.predict import PACKAGE_MODEL_DIR, ScoreModel, run_network
from aacscore.simulate import simulate_case


@pytest.fixture(scope="module")
def models() -> dict[str, ScoreModel]:
    return {b: ScoreModel.load(backend=b) for b in ("torch", "onnx")}


@pytest.fixture(scope="module")
def bands(models: dict[str, ScoreModel]) -> list[Band]:
    """Bands cut along the simulator's true corners: uncalcified (the fixture film) and two
    calcified films."""
    geo = models["torch"].band_geometry
    out = []
    for seed, index, dist in ((3, 0, "population"), (90210, 1, "balanced"), (90210, 4, "balanced")):
        c = simulate_case(seed, index, distribution=dist, spacing_mm=0.3)
        out.append(extract_band(c.image, c.vertebrae, c.anterior_side, c.spacing_mm, geometry=geo))
    return out


def test_models_load_on_the_backend_asked_for(models: dict[str, ScoreModel]) -> None:
    assert models["torch"].backend == "torch" and models["onnx"].backend == "onnx"
    assert type(models["onnx"].runner).__name__ == "OnnxNet"


def test_graph_outputs_match_torch(models: dict[str, ScoreModel], bands: list[Band]) -> None:
    x = np.stack([b.pixels for b in bands]).astype(np.float32)[:, None]
    rng = np.random.default_rng(0)
    for inp in (normalize_bands(tta_bands(x, bands[0].geometry)), rng.standard_normal(x.shape)):
        inp = inp.astype(np.float32)
        ref = models["torch"].runner(inp)
        got = models["onnx"].runner(inp)
        assert set(got) == set(ref) == {"features", "total", "grades", "fractions"}
        for name, r in ref.items():
            assert got[name].shape == r.shape, name
            np.testing.assert_allclose(got[name], r, atol=1e-4, rtol=0, err_msg=name)


def test_predictions_match_torch(models: dict[str, ScoreModel], bands: list[Band]) -> None:
    for tta in (True, False):
        a = models["torch"].predict_many(bands, tta=tta)
        b = models["onnx"].predict_many(bands, tta=tta)
        for pa, pb in zip(a, b, strict=True):
            assert pb.aac24 == pytest.approx(pa.aac24, abs=1e-4)
            assert pb.aac24_sd == pytest.approx(pa.aac24_sd, abs=1e-4)
            assert pb.group == pa.group and pb.low_confidence == pa.low_confidence
            assert pb.aac8 == pa.aac8
            np.testing.assert_allclose(pb.grades, pa.grades, atol=1e-4)
            np.testing.assert_allclose(pb.fractions, pa.fractions, atol=1e-4)
            np.testing.assert_allclose(pb.features, pa.features, atol=1e-4)
    assert max(p.aac24 for p in a) > 2  # calcified films among the inputs
    # the raw outputs of every transform, before calibration and rounding to zero
    pix = np.stack([b.pixels for b in bands])
    ra = run_network(models["torch"].runner, pix, bands[0].geometry)
    rb = run_network(models["onnx"].runner, pix, bands[0].geometry)
    np.testing.assert_allclose(rb.total, ra.total, atol=1e-4)
    assert ra.grades is not None and rb.grades is not None
    np.testing.assert_allclose(rb.grades, ra.grades, atol=1e-4)


def test_numpy_augmentation_matches_torch(bands: list[Band]) -> None:
    geo = bands[0].geometry
    x = np.stack([b.pixels for b in bands]).astype(np.float32)[:, None]
    ref = tta_batch(torch.from_numpy(x), geo, TTA_TRANSFORMS).numpy()
    got = tta_bands(x, geo, TTA_TRANSFORMS)
    assert got.shape == (len(bands) * len(TTA_TRANSFORMS), 1, *geo.shape)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(
        normalize_bands(got), normalize(torch.from_numpy(got)).numpy(), atol=1e-5
    )
    assert not np.allclose(got[1], got[0], atol=1e-3)  # the transforms do something


def test_run_network_takes_a_torch_score_net_and_keeps_its_mode(
    models: dict[str, ScoreModel], bands: list[Band]
) -> None:
    net = models["torch"].net
    pix = np.stack([b.pixels for b in bands[:1]])
    ref = run_network(models["onnx"].runner, pix, bands[0].geometry, None)
    for training in (True, False):
        net.train(training)
        out = run_network(net, pix, bands[0].geometry, None)  # evaluated in eval mode
        assert net.training is training  # and its mode restored
        np.testing.assert_allclose(out.total, ref.total, atol=1e-4)
    models["torch"].predict(bands[0])
    assert not net.training


def test_the_torch_network_of_an_onnx_model_is_built_on_demand(
    models: dict[str, ScoreModel],
) -> None:
    net = models["onnx"].net  # e.g. to fine-tune from the shipped model
    ref = models["torch"].net.state_dict()
    state = net.state_dict()
    assert set(state) == set(ref)
    assert all(torch.equal(state[k], ref[k]) for k in ref)


def test_onnx_backend_needs_the_graph(tmp_path: Path) -> None:
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(PACKAGE_MODEL_DIR / name, tmp_path / name)
    with pytest.raises(BackendError, match=r"model\.onnx: no ONNX graph here.*export_onnx"):
        ScoreModel.load(tmp_path, backend="onnx")
    assert ScoreModel.load(tmp_path).backend == "torch"  # auto falls back
    shutil.copy2(PACKAGE_MODEL_DIR / "model.onnx", tmp_path / "model.onnx")
    assert ScoreModel.load(tmp_path, backend="onnx").backend == "onnx"
