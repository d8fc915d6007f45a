"""The shipped spine networks on ONNX Runtime give torch's outputs (to 1e-4) on fixed inputs,
and the whole spine stage gives the same result on both backends.

The U-Net's logits reach +-80 through 23 float32 convolutions: on the film torch and ONNX
Runtime differ from a float64 evaluation by 6e-5 and 2.1e-4, so the logits are compared
relative to their range (1e-4 of it) and the class probabilities, what the pipeline reads,
absolutely (1e-4; measured 3.3e-5). The inputs are films: on white noise, far from anything the
network was trained on, ONNX Runtime's logits drift by 1.7e-3 (probabilities 2e-4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aacscore.io import read_radiograph
from aacscore.spine.classifier import OrientationClassifier, orientation_input
from aacscore.spine.network import default_model_dir
from aacscore.spine.predict import SpineModel
from aacscore.spine.preprocess import Letterbox, zscore_array


@pytest.fixture(scope="module")
def models() -> dict[str, SpineModel]:
    return {b: SpineModel.load(backend=b) for b in ("torch", "onnx")}


@pytest.fixture(scope="module")
def film_input(simulated_film: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """The simulated film as the U-Net sees it: letterboxed, padded (raw) and its valid mask."""
    rad = read_radiograph(simulated_film["dicom"])
    box = Letterbox.fit(rad.shape, SpineModel.load(backend="torch").plans.patch_size)
    return box.pad(box.resize_image(rad.pixels)), box.valid_mask()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def test_models_load_on_the_backend_asked_for(models: dict[str, SpineModel]) -> None:
    assert models["torch"].backend == "torch" and models["onnx"].backend == "onnx"
    assert type(models["onnx"].unet).__name__ == "OnnxNet"


def test_unet_logits_match_torch(
    models: dict[str, SpineModel], film_input: tuple[np.ndarray, np.ndarray]
) -> None:
    image, valid = film_input
    noise = np.random.default_rng(0).standard_normal(image.shape).astype(np.float32)
    for x in (image, np.ascontiguousarray(image[:, ::-1]), image + 0.02 * noise):
        ref = models["torch"].logits(x, valid)
        got = models["onnx"].logits(x, valid)
        assert got.shape == ref.shape == (8, *image.shape)
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
        np.testing.assert_allclose(_softmax(got), _softmax(ref), atol=1e-4)
    assert np.mean(ref.argmax(axis=0) > 0) > 0.02  # the film's bodies are found


def test_orientation_matches_torch(
    models: dict[str, SpineModel], film_input: tuple[np.ndarray, np.ndarray]
) -> None:
    image, valid = film_input
    mirrored = np.ascontiguousarray(image[:, ::-1])
    for x in (image, mirrored):
        p_torch = models["torch"].probability_right(x, valid)
        p_onnx = models["onnx"].probability_right(x, valid)
        assert p_torch is not None and p_onnx is not None
        assert p_onnx == pytest.approx(p_torch, abs=1e-4)
    # the classifier as the nnU-Net model uses it
    clf = {b: OrientationClassifier.load(default_model_dir(), backend=b) for b in ("torch", "onnx")}
    z = orientation_input(clf["torch"].plans, image, valid)
    logits = {b: c.net(np.concatenate([z, z[..., ::-1]]))["logits"] for b, c in clf.items()}
    np.testing.assert_allclose(logits["onnx"], logits["torch"], rtol=1e-4, atol=1e-4)
    assert clf["onnx"].probability_right(image, valid) == pytest.approx(
        clf["torch"].probability_right(image, valid), abs=1e-4
    )


def test_zscore_array_matches_torch_zscore(film_input: tuple[np.ndarray, np.ndarray]) -> None:
    import torch

    from aacscore.spine.preprocess import zscore

    image, valid = film_input
    v = torch.from_numpy(valid.astype(np.float32))[None, None]
    ref = zscore(torch.from_numpy(image)[None, None], v)
    np.testing.assert_allclose(zscore_array(image, valid), ref[0, 0].numpy(), atol=1e-5)
    assert np.all(zscore_array(image, valid)[~valid] == 0)


def test_spine_stage_gives_the_same_result_on_both_backends(
    models: dict[str, SpineModel], simulated_film: dict[str, Path]
) -> None:
    rad = read_radiograph(simulated_film["dicom"])
    a, b = (models[k].predict(rad) for k in ("torch", "onnx"))
    assert a.anterior_side == b.anterior_side and a.flags == b.flags
    assert a.orientation.probability_right == pytest.approx(
        b.orientation.probability_right, abs=1e-4
    )
    assert set(a.vertebrae) == set(b.vertebrae)
    for name, v in a.vertebrae.items():
        np.testing.assert_allclose(b.vertebrae[name].corners, v.corners, atol=1e-2)
    assert a.confidence is not None and b.confidence is not None
    assert b.confidence.mean_probability == pytest.approx(a.confidence.mean_probability, abs=1e-4)
    assert np.mean(a.labels != b.labels) < 1e-4
