"""The view classifier on ONNX Runtime: its numpy preprocessing gives the torch input (to
1e-4) and its probabilities equal torch's (to 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aacscore.gate.view import PERCENTILES, ViewClassifier, preprocess


def _torch_preprocess(pixels: np.ndarray, size: int = 128) -> np.ndarray:
    """The torch preprocessing the numpy one replaces (resize with F.interpolate)."""
    a = np.where(np.isfinite(pixels), pixels, 0.0).astype(np.float32)
    h, w = a.shape
    scale = size / max(h, w)
    nh, nw = max(1, min(size, round(h * scale))), max(1, min(size, round(w * scale)))
    t = torch.from_numpy(np.ascontiguousarray(a))[None, None]
    if (nh, nw) != (h, w):
        t = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=nh < h, align_corners=False)
    r = t[0, 0].numpy().astype(np.float64)
    lo, hi = np.percentile(r, PERCENTILES)
    r = np.clip((r - lo) / (hi - lo), 0.0, 1.0)
    out = np.zeros((size, size), dtype=np.float32)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = r
    return out


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    from aacscore.simulate import simulate_case
    from aacscore.simulate.views import VIEW_CLASSES, generate

    out = [generate(cls, 21, 10_000) for cls in VIEW_CLASSES]
    out.append(simulate_case(3, 0, spacing_mm=0.3).image)
    rng = np.random.default_rng(0)
    out += [rng.random((90, 60)).astype(np.float32), rng.random((60, 200)).astype(np.float32)]
    return out


def test_numpy_preprocess_matches_the_torch_one(images: list[np.ndarray]) -> None:
    for img in images:  # films larger (antialiased) and smaller (enlarged) than the input
        np.testing.assert_allclose(preprocess(img), _torch_preprocess(img), atol=1e-4)


def test_probabilities_match_torch(images: list[np.ndarray]) -> None:
    clf = {b: ViewClassifier.load(backend=b) for b in ("torch", "onnx")}
    assert clf["onnx"].backend == "onnx" and clf["torch"].backend == "torch"
    x = np.stack([preprocess(img) for img in images])
    logits = {b: c.runner(x[:, None])["logits"] for b, c in clf.items()}
    np.testing.assert_allclose(logits["onnx"], logits["torch"], atol=1e-4, rtol=0)
    for a, b in zip(clf["torch"].predict_inputs(x), clf["onnx"].predict_inputs(x), strict=True):
        assert a.label == b.label
        for k, v in a.probabilities.items():
            assert b.probabilities[k] == pytest.approx(v, abs=1e-4)
    weights = {p.name for p in clf["onnx"].weight_files()}
    assert weights == {"config.json", "view.safetensors", "view.onnx"}


def test_the_torch_network_module_agrees_with_the_view_module() -> None:
    from aacscore.gate import view, view_net

    assert view_net.FILTERS == view.FILTERS and view_net.N_CLASSES == len(view.CLASSES)
    assert view.ViewNet is view_net.ViewNet  # training imports it from aacscore.gate.view
    assert view.mirrored_probabilities is view_net.mirrored_probabilities
