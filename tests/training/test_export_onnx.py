"""``python -m aacscore.training.export_onnx`` reproduces the shipped graphs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from aacscore.backend.onnx import META_WEIGHTS_SHA256, OnnxNet, graph_metadata
from aacscore.info import MODELS_DIR
from aacscore.training.export_onnx import (
    META_EXPORTER,
    ExportError,
    export_graph,
    exporter_versions,
    graph_specs,
    main,
)


def test_export_reproduces_the_shipped_orientation_graph(tmp_path: Path) -> None:
    spec = next(s for s in graph_specs(MODELS_DIR / "spine") if s.name == "spine.orientation")
    out = export_graph(spec, tmp_path / "orientation.onnx")
    shipped = spec.graph
    meta = graph_metadata(out)
    assert meta[META_WEIGHTS_SHA256] == graph_metadata(shipped)[META_WEIGHTS_SHA256]
    data = out.read_bytes()
    assert b"site-packages" not in data and str(Path.cwd()).encode() not in data  # no paths
    if graph_metadata(shipped)[META_EXPORTER] == meta[META_EXPORTER]:
        assert data == shipped.read_bytes()  # same exporter versions: the same bytes
    else:  # another torch/onnxscript/onnx: the same function
        assert exporter_versions() in meta[META_EXPORTER]
        x = spec.example(3).numpy()
        a = OnnxNet.load(out, spec.weights)(x)["logits"]
        b = OnnxNet.load(shipped, spec.weights)(x)["logits"]
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_every_model_folder_is_recognised() -> None:
    names = {s.name for d in ("spine", "score", "view") for s in graph_specs(MODELS_DIR / d)}
    assert names == {"spine.unet", "spine.orientation", "score", "view"}
    for spec in graph_specs(MODELS_DIR / "score"):
        assert spec.output_names == ("features", "total", "grades", "fractions")


def test_a_folder_without_a_model_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ExportError, match="not a spine"):
        graph_specs(tmp_path)
    shutil.copy2(MODELS_DIR / "view" / "config.json", tmp_path / "config.json")
    with pytest.raises(ExportError, match="not a spine"):
        graph_specs(tmp_path)  # a config without weights
    assert main([str(tmp_path)]) == 2
    assert "not a spine" in capsys.readouterr().err
