"""ONNX Runtime networks: an exported graph as a :class:`~aacscore.backend.Net`.

A graph made by ``python -m aacscore.training.export_onnx`` records in its metadata the weights
file it was exported from and that file's SHA-256 (:data:`META_WEIGHTS_SHA256`); a graph whose
weights have since changed is refused (:func:`graph_mismatch`), so a retrained model never runs
with a stale graph.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore._files import sha256_file
from aacscore.backend import EXPORT_COMMAND, ONNX_INSTALL, Backend, BackendError, threads

log = logging.getLogger(__name__)

META_WEIGHTS = "aacscore.weights"
"""Graph metadata: the name of the safetensors file the graph was exported from."""
META_WEIGHTS_SHA256 = "aacscore.weights_sha256"
"""Graph metadata: the SHA-256 of that file."""
META_GRAPH = "aacscore.graph"
"""Graph metadata: which network (``spine.unet``, ``spine.orientation``, ``score``, ``view``)."""


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError(f"the onnx backend needs ONNX Runtime: {ONNX_INSTALL}") from exc
    return onnxruntime


def graph_metadata(graph: Path) -> dict[str, str]:
    """The custom metadata of a graph file (empty when it has none)."""
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(graph), so, providers=["CPUExecutionProvider"])
    return dict(sess.get_modelmeta().custom_metadata_map)


def graph_mismatch(graph: Path, weights: Path | None) -> str | None:
    """Why ``graph`` cannot stand in for ``weights`` (None: it was exported from them)."""
    hint = f"export it with `{EXPORT_COMMAND} {graph.parent}` or use the torch backend"
    if not graph.is_file():
        return f"{graph}: no ONNX graph here ({hint})"
    if weights is None:
        return None
    try:
        meta = _metadata_cached(graph)
    except BackendError:  # ONNX Runtime missing
        raise
    except Exception as exc:  # onnxruntime raises its own error types
        return f"{graph}: not a readable ONNX graph ({exc})"
    recorded = meta.get(META_WEIGHTS_SHA256)
    if recorded is None:
        return f"{graph}: the graph does not record which weights it holds ({hint})"
    if not weights.is_file():
        return f"{weights}: weights file not found"
    if recorded != _sha256_cached(weights):
        return f"{graph}: exported from other weights than {weights.name} ({hint})"
    return None


_META: dict[tuple[str, int, int], dict[str, str]] = {}
_SHA: dict[tuple[str, int, int], str] = {}


def _key(p: Path) -> tuple[str, int, int]:
    st = p.stat()
    return (str(p.resolve()), st.st_size, st.st_mtime_ns)


def _metadata_cached(graph: Path) -> dict[str, str]:
    k = _key(graph)
    if k not in _META:
        _META[k] = graph_metadata(graph)
    return _META[k]


def _sha256_cached(p: Path) -> str:
    k = _key(p)
    if k not in _SHA:
        _SHA[k] = sha256_file(p)
    return _SHA[k]


class OnnxNet:
    """An ONNX Runtime session on the CPU with the :class:`~aacscore.backend.Net` interface."""

    backend = Backend.ONNX

    def __init__(self, session: Any, path: Path) -> None:
        self.session = session
        self.path = path
        self.input_name: str = session.get_inputs()[0].name
        self.output_names: tuple[str, ...] = tuple(o.name for o in session.get_outputs())

    @classmethod
    def load(cls, graph: str | Path, weights: Path | None = None) -> OnnxNet:
        """Open ``graph``; with ``weights``, refuse a graph not exported from them.

        Raises:
            BackendError: ONNX Runtime missing, no graph, a stale or unreadable graph.
        """
        path = Path(graph)
        problem = graph_mismatch(path, weights)
        if problem is not None:
            raise BackendError(problem)
        ort = _ort()
        so = ort.SessionOptions()
        so.log_severity_level = 3
        n = threads()
        if n is not None:
            so.intra_op_num_threads = n
        so.inter_op_num_threads = 1
        # no busy-waiting between runs: the pipeline does numpy work between network passes,
        # and spinning threads would take the CPU from it (and from other processes)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own error types
            raise BackendError(f"{path}: cannot load the ONNX graph ({exc})") from exc
        return cls(session, path)

    def __call__(self, x: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        feed = {self.input_name: np.ascontiguousarray(x, dtype=np.float32)}
        outs = self.session.run(None, feed)
        return {
            n: np.asarray(o, dtype=np.float32) for n, o in zip(self.output_names, outs, strict=True)
        }

    def __repr__(self) -> str:
        return f"OnnxNet({self.path})"
