"""Installing trained weights re-exports the ONNX graphs beside them (checked against torch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aacscore._files import sha256_file
from aacscore.backend import Backend
from aacscore.backend.onnx import META_WEIGHTS_SHA256, OnnxNet, graph_metadata
from aacscore.gate.view import CLASSES, CONFIG_FILE, WEIGHTS_FILE, ViewClassifier
from aacscore.gate.view_net import ViewNet
from aacscore.info import MODELS_DIR
from aacscore.training import export_onnx
from aacscore.training.export import ONNX_TOLERANCE, install_model, save_weights
from aacscore.training.export_onnx import ExportError

FILTERS = (4, 8, 8, 8, 8)
GRAPH = "view.onnx"


def _tiny_view_model(folder: Path, seed: int) -> ViewNet:
    """A freshly initialised tiny view classifier written as a model folder."""
    torch.manual_seed(seed)
    net = ViewNet(FILTERS, len(CLASSES)).eval()
    save_weights(net, folder / WEIGHTS_FILE, fp16=False)
    config = {"classes": [c.value for c in CLASSES], "input_size": 128, "filters": list(FILTERS)}
    (folder / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    return net


def test_install_rewrites_a_stale_graph_and_it_matches_torch(tmp_path: Path) -> None:
    model_dir, dest = tmp_path / "run" / "model", tmp_path / "installed"
    model_dir.mkdir(parents=True)
    dest.mkdir()
    net = _tiny_view_model(model_dir, seed=0)
    # what an earlier install left: the shipped weights' graph, stale for the new weights
    shutil.copy2(MODELS_DIR / "view" / GRAPH, dest / GRAPH)
    stale = (dest / GRAPH).read_bytes()

    install_model(model_dir, (WEIGHTS_FILE, CONFIG_FILE), dest)

    graph = dest / GRAPH
    assert graph.read_bytes() != stale
    assert graph.read_bytes() == (model_dir / GRAPH).read_bytes()
    assert graph_metadata(graph)[META_WEIGHTS_SHA256] == sha256_file(dest / WEIGHTS_FILE)
    x = np.random.default_rng(1).standard_normal((3, 1, 128, 128)).astype(np.float32)
    got = OnnxNet.load(graph, dest / WEIGHTS_FILE)(x)
    with torch.inference_mode():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(next(iter(got.values())), ref, atol=ONNX_TOLERANCE, rtol=0)
    clf = ViewClassifier.load(dest, backend="auto")
    assert clf.backend == Backend.ONNX  # the graph fits the installed weights


def test_a_graph_that_differs_from_torch_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir, dest = tmp_path / "model", tmp_path / "installed"
    model_dir.mkdir()
    _tiny_view_model(model_dir, seed=2)
    monkeypatch.setattr(export_onnx, "max_difference", lambda spec, graph: 0.5)
    with pytest.raises(ExportError, match=r"differs from torch by 5\.00e-01"):
        install_model(model_dir, (WEIGHTS_FILE, CONFIG_FILE), dest)
    assert not dest.exists()
    assert not (model_dir / GRAPH).exists()


def test_install_without_export_copies_only_the_names(tmp_path: Path) -> None:
    model_dir, dest = tmp_path / "model", tmp_path / "installed"
    model_dir.mkdir()
    _tiny_view_model(model_dir, seed=3)
    install_model(model_dir, (WEIGHTS_FILE, CONFIG_FILE), dest, export_onnx=False)
    assert sorted(p.name for p in dest.iterdir()) == sorted([WEIGHTS_FILE, CONFIG_FILE])
