"""Export the networks of model folders to ONNX graphs for the onnx backend.

Usage::

    python -m aacscore.training.export_onnx [FOLDER ...] [--check]

Each folder is a spine model (``plans.json`` + ``unet.safetensors`` [+ ``orientation``]), a
score model (``config.json`` + ``model.safetensors``) or a view model (``config.json`` +
``view.safetensors``); without folders the shipped ones (``aacscore/models/{spine,score,view}``).
Every ``<name>.safetensors`` gets a ``<name>.onnx`` beside it. ``--check`` exports to a
temporary folder and reports whether the graphs in place are byte-identical to a fresh export
(it writes nothing).

The export is deterministic for given versions of torch, onnxscript and onnx (recorded in the
graph): ``torch.onnx.export(dynamo=True)``, opset 18, a dynamic batch axis; the exporter's
per-node debugging metadata (stack traces with local paths) is dropped; float32 initializers
that fp16 holds exactly (the shipped weights are fp16) are stored as fp16 and cast back to
float32 in the graph, so the graph computes with exactly the safetensors' values at half the
size. The graph records the SHA-256 of its weights file: the onnx backend refuses a graph whose
weights have changed since (:mod:`aacscore.backend.onnx`). Needs ``aacscore[train]`` (torch,
onnx, onnxscript).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aacscore._files import sha256_file
from aacscore.backend import graph_path
from aacscore.backend.onnx import META_GRAPH, META_WEIGHTS, META_WEIGHTS_SHA256
from aacscore.info import MODELS_DIR

log = logging.getLogger(__name__)

OPSET = 18
EXAMPLE_BATCH = 2
"""Batch of the example input (a dynamic axis must not be traced at size 1)."""
META_EXPORTER = "aacscore.exporter"
META_INPUT = "aacscore.input"


class ExportError(RuntimeError):
    """A folder that holds no exportable model, or an export that does not match torch."""


@dataclass(frozen=True)
class GraphSpec:
    """One network to export: its module (eval mode), weights file and example input."""

    name: str
    weights: Path
    module: nn.Module
    example_shape: tuple[int, ...]
    output_names: tuple[str, ...]
    input_doc: str

    @property
    def graph(self) -> Path:
        return graph_path(self.weights)

    def example(self, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(self.example_shape, generator=g)


def _spine_specs(folder: Path) -> list[GraphSpec]:
    from aacscore.spine.network import build_orientation_net, build_unet, load_weights
    from aacscore.spine.plans import Plans
    from aacscore.spine.weights import (
        ORIENTATION_OUTPUTS,
        ORIENTATION_WEIGHTS,
        PLANS_FILE,
        UNET_OUTPUTS,
        UNET_WEIGHTS,
    )

    plans = Plans.load(folder / PLANS_FILE)
    h, w = plans.patch_size
    unet = load_weights(build_unet(plans), folder / UNET_WEIGHTS).eval()
    specs = [
        GraphSpec(
            "spine.unet",
            folder / UNET_WEIGHTS,
            unet,
            (EXAMPLE_BATCH, 1, h, w),
            UNET_OUTPUTS,
            "z-scored padded film (B, 1, rows, cols), see aacscore.spine.preprocess",
        )
    ]
    if (folder / ORIENTATION_WEIGHTS).is_file():
        orient = load_weights(build_orientation_net(plans), folder / ORIENTATION_WEIGHTS).eval()
        oh, ow = plans.orientation_size
        specs.append(
            GraphSpec(
                "spine.orientation",
                folder / ORIENTATION_WEIGHTS,
                orient,
                (EXAMPLE_BATCH, 1, oh, ow),
                ORIENTATION_OUTPUTS,
                "z-scored film average-pooled by orientation_downsample (B, 1, rows, cols)",
            )
        )
    return specs


def _score_specs(folder: Path) -> list[GraphSpec]:
    from aacscore.score.network import ScoreGraph
    from aacscore.score.predict import ScoreModel

    model = ScoreModel.load(folder, backend="torch")
    graph = ScoreGraph(model.net).eval()
    rows, cols = model.band_geometry.shape
    assert model.weights_path is not None
    return [
        GraphSpec(
            "score",
            model.weights_path,
            graph,
            (EXAMPLE_BATCH, 1, rows, cols),
            graph.names,
            "normalised aortic bands (B, 1, rows, cols), see aacscore.score.augment",
        )
    ]


def _view_specs(folder: Path) -> list[GraphSpec]:
    from aacscore.gate.view import VIEW_OUTPUTS, WEIGHTS_FILE, ViewClassifier

    clf = ViewClassifier.load(folder, backend="torch")
    s = clf.input_size
    return [
        GraphSpec(
            "view",
            folder / WEIGHTS_FILE,
            clf.net.eval(),
            (EXAMPLE_BATCH, 1, s, s),
            VIEW_OUTPUTS,
            "preprocessed film (B, 1, size, size), see aacscore.gate.view.preprocess",
        )
    ]


def graph_specs(folder: str | Path) -> list[GraphSpec]:
    """The networks of a spine, score or view model folder."""
    d = Path(folder)
    if (d / "plans.json").is_file() and (d / "unet.safetensors").is_file():
        return _spine_specs(d)
    cfg = d / "config.json"
    if cfg.is_file():
        try:
            fmt = json.loads(cfg.read_text(encoding="utf-8")).get("format")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ExportError(f"{cfg}: not a model config ({exc})") from exc
        if fmt == "aacscore-score-model":
            return _score_specs(d)
        if (d / "view.safetensors").is_file():
            return _view_specs(d)
    raise ExportError(
        f"{d}: not a spine (plans.json + unet.safetensors), score (config.json + "
        "model.safetensors) or view (config.json + view.safetensors) model folder"
    )


def exporter_versions() -> str:
    """The versions a graph's bytes depend on."""

    def v(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "none"

    return f"torch {torch.__version__}, onnxscript {v('onnxscript')}, onnx {v('onnx')}"


def _strip_debug_metadata(model: Any) -> None:
    """Drop the exporter's per-node/per-value metadata and doc strings (stack traces with
    local paths, FX node dumps): the bytes then depend on nothing but the network."""
    g = model.graph
    for seq in (g.node, g.input, g.output, g.value_info, g.initializer):
        for item in seq:
            del item.metadata_props[:]
            if hasattr(item, "doc_string"):
                item.doc_string = ""
    del g.metadata_props[:]
    g.doc_string = ""
    del model.metadata_props[:]
    model.doc_string = ""


def _pack_fp16(model: Any) -> int:
    """Store every float32 initializer that fp16 holds exactly as fp16 plus a Cast back to
    float32 (same values, half the bytes); the number converted."""
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    casts = []
    kept = []
    for init in g.initializer:
        a = numpy_helper.to_array(init)
        if (
            a.dtype == np.float32
            and a.size > 1
            and np.array_equal(a.astype(np.float16).astype(np.float32), a)
        ):
            half = numpy_helper.from_array(a.astype(np.float16), f"{init.name}__fp16")
            kept.append(half)
            casts.append(
                helper.make_node(
                    "Cast",
                    [half.name],
                    [init.name],
                    name=f"{init.name}__cast",
                    to=TensorProto.FLOAT,
                )
            )
        else:
            kept.append(init)
    del g.initializer[:]
    g.initializer.extend(kept)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend([*casts, *nodes])
    return len(casts)


def export_graph(spec: GraphSpec, out: Path | None = None) -> Path:
    """Export one network to ``out`` (default: beside its weights); returns the path."""
    import onnx

    path = out if out is not None else spec.graph
    example = spec.example()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            spec.module,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=["x"],
            output_names=list(spec.output_names),
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    if program is None:
        raise ExportError(f"{spec.weights}: torch.onnx.export returned no program")
    model = program.model_proto
    _strip_debug_metadata(model)
    n16 = _pack_fp16(model)
    meta = {
        META_GRAPH: spec.name,
        META_WEIGHTS: spec.weights.name,
        META_WEIGHTS_SHA256: sha256_file(spec.weights),
        META_EXPORTER: f"{exporter_versions()}, opset {OPSET}",
        META_INPUT: spec.input_doc,
    }
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString(deterministic=True))
    log.info("%s: %d fp16 initializers -> %s", spec.name, n16, path)
    return path


def max_difference(spec: GraphSpec, graph: Path, seeds: Sequence[int] = (0, 1)) -> float:
    """Largest absolute difference between the torch module and the graph on ONNX Runtime
    over every output, for random inputs (batch 1 and the example batch)."""
    from aacscore.backend.onnx import OnnxNet

    net = OnnxNet.load(graph, spec.weights)
    worst = 0.0
    for seed in seeds:
        x = spec.example(seed)
        for batch in (x[:1], x):
            with torch.inference_mode():
                ref = spec.module(batch)
            refs = (ref,) if isinstance(ref, torch.Tensor) else tuple(ref)
            got = net(batch.numpy())
            for name, r in zip(spec.output_names, refs, strict=True):
                worst = max(worst, float(np.abs(got[name] - r.float().numpy()).max()))
    return worst


def export_checked(folder: str | Path, tolerance: float) -> list[Path]:
    """Export every network of a model folder beside its weights and check each graph against
    torch (:func:`max_difference` at most ``tolerance``); the graphs written. A graph that
    fails the check is removed.

    Raises:
        ExportError: not a model folder, or a graph differs from torch by more than
            ``tolerance``.
    """
    written: list[Path] = []
    for spec in graph_specs(folder):
        path = export_graph(spec)
        diff = max_difference(spec, path)
        if not diff <= tolerance:
            path.unlink(missing_ok=True)
            raise ExportError(
                f"{spec.weights}: the exported graph differs from torch by {diff:.2e} "
                f"(more than {tolerance:.0e}); nothing installed"
            )
        log.info("%s: max |onnx - torch| %.1e", path, diff)
        written.append(path)
    return written


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    ap = argparse.ArgumentParser(
        prog="python -m aacscore.training.export_onnx", description=doc.split("\n\n")[0]
    )
    ap.add_argument("folders", nargs="*", type=Path, help="model folders (default: shipped)")
    ap.add_argument(
        "--check",
        action="store_true",
        help="export to a temporary folder and compare with the graphs in place (writes nothing)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    folders = args.folders or [MODELS_DIR / n for n in ("spine", "score", "view")]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for folder in folders:
            try:
                specs = graph_specs(folder)
            except (ExportError, OSError, ValueError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            for spec in specs:
                out = Path(tmp) / f"{spec.name}.onnx" if args.check else spec.graph
                export_graph(spec, out)
                diff = max_difference(spec, out)
                line = (
                    f"{spec.graph}  sha256 {_sha(out)}  {out.stat().st_size / 1e6:.2f} MB  "
                    f"max |onnx - torch| {diff:.1e}"
                )
                if args.check:
                    same = spec.graph.is_file() and _sha(spec.graph) == _sha(out)
                    line += "  identical" if same else "  DIFFERS from the graph in place"
                    failed |= not same
                print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
