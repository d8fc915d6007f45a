"""Choosing the backend: onnx needs a graph exported from the weights beside it, auto falls
back to torch, and the errors say what to do."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from aacscore.backend import (
    Backend,
    BackendError,
    graph_path,
    onnx_problem,
    parse_backend,
    resolve_backend,
)
from aacscore.backend.onnx import META_WEIGHTS_SHA256, OnnxNet, graph_metadata
from aacscore.info import MODELS_DIR

ORIENTATION = MODELS_DIR / "spine" / "orientation.safetensors"


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    """The shipped orientation weights and their graph in a folder of their own."""
    for p in (ORIENTATION, graph_path(ORIENTATION)):
        shutil.copy2(p, tmp_path / p.name)
    return tmp_path / ORIENTATION.name


def test_parse_backend() -> None:
    assert parse_backend(None) == Backend.AUTO
    assert parse_backend("ONNX") == Backend.ONNX and parse_backend(Backend.TORCH) == "torch"
    with pytest.raises(ValueError, match=r"unknown backend 'tensorflow'.*auto, onnx, torch"):
        parse_backend("tensorflow")


def test_shipped_graphs_fit_their_weights() -> None:
    for weights in sorted(MODELS_DIR.glob("*/*.safetensors")):
        assert onnx_problem(weights) is None, weights
        assert resolve_backend("auto", weights) == Backend.ONNX
        meta = graph_metadata(graph_path(weights))
        assert meta["aacscore.weights"] == weights.name


def test_a_missing_graph_is_an_error_for_onnx_and_torch_for_auto(tmp_path: Path) -> None:
    weights = tmp_path / ORIENTATION.name
    shutil.copy2(ORIENTATION, weights)
    with pytest.raises(BackendError, match=r"orientation\.onnx: no ONNX graph.*export_onnx"):
        resolve_backend("onnx", weights)
    assert resolve_backend("auto", weights) == Backend.TORCH
    assert resolve_backend("torch", weights) == Backend.TORCH


def test_a_graph_of_other_weights_is_refused(
    copied: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert resolve_backend("onnx", copied) == Backend.ONNX
    data = bytearray(copied.read_bytes())
    data[-1] ^= 1  # the weights change after the export (a retrained model, say)
    copied.write_bytes(bytes(data))
    with pytest.raises(BackendError, match="exported from other weights than orientation"):
        resolve_backend("onnx", copied)
    with pytest.raises(BackendError, match="exported from other weights"):
        OnnxNet.load(graph_path(copied), copied)
    with caplog.at_level("WARNING", logger="aacscore.backend"):
        assert resolve_backend("auto", copied) == Backend.TORCH
    assert "exported from other weights" in caplog.text and "using the torch backend" in caplog.text


def test_a_graph_without_a_weights_record_is_refused(copied: Path) -> None:
    import onnx

    graph = graph_path(copied)
    model = onnx.load(str(graph))
    kept = [p for p in model.metadata_props if p.key != META_WEIGHTS_SHA256]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    graph.write_bytes(model.SerializeToString())
    with pytest.raises(BackendError, match="does not record which weights"):
        resolve_backend("onnx", copied)


def test_an_unreadable_graph_is_refused(copied: Path) -> None:
    graph_path(copied).write_bytes(b"not a graph")
    with pytest.raises(BackendError, match="not a readable ONNX graph"):
        resolve_backend("onnx", copied)


def test_onnx_net_runs_a_batch(copied: Path) -> None:
    net = OnnxNet.load(graph_path(copied), copied)
    assert net.backend == Backend.ONNX and net.output_names == ("logits",)
    x = np.random.default_rng(0).standard_normal((3, 1, 144, 96)).astype(np.float32)
    out = net(x)["logits"]
    assert out.shape == (3,) and out.dtype == np.float32
    np.testing.assert_allclose(net(x[1:2])["logits"], out[1:2], atol=1e-5)


def test_set_threads_reaches_new_sessions_and_torch(copied: Path) -> None:
    import torch

    from aacscore.backend import set_threads, threads

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert threads() == 1 and torch.get_num_threads() == 1
        net = OnnxNet.load(graph_path(copied), copied)
        assert net.session.get_session_options().intra_op_num_threads == 1
    finally:
        set_threads(None)
        torch.set_num_threads(before)
    assert threads() is None


def test_load_safetensors_casts_fp16_and_names_the_file_in_its_errors(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from aacscore.backend.torch_net import load_safetensors

    net = torch.nn.Linear(3, 2)
    weights = {"weight": torch.ones(2, 3, dtype=torch.float16), "bias": torch.zeros(2).half()}
    path = tmp_path / "w.safetensors"
    save_file(weights, str(path))
    loaded = load_safetensors(net, path, ValueError)
    assert loaded is net and net.weight.dtype == torch.float32
    assert torch.equal(net.weight, torch.ones(2, 3))
    with pytest.raises(KeyError, match=r"w.safetensors: weights do not fit the plans \("):
        load_safetensors(torch.nn.Linear(4, 2), path, KeyError, "do not fit the plans")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match=r"bad.safetensors: cannot read safetensors file \("):
        load_safetensors(net, bad, ValueError)
