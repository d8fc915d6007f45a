"""Inference backends: ONNX Runtime (the default; no PyTorch needed) or PyTorch.

Every network of the inference core is a :class:`Net`: one float32 input ``x`` (batch first)
-> a dict of named float32 arrays. Pre- and post-processing are numpy on both backends, so the
two differ only in the network pass (to ~1e-5). :class:`~aacscore.backend.onnx.OnnxNet` runs an
exported graph (``<weights>.onnx`` beside ``<weights>.safetensors``, made by
``python -m aacscore.training.export_onnx``); :class:`~aacscore.backend.torch_net.TorchNet`
runs the PyTorch module built from the safetensors.

Choice (:func:`resolve_backend`): ``onnx`` needs the graph and that it was exported from the
weights beside it (their SHA-256 is recorded in the graph); ``torch`` needs PyTorch
(``pip install 'aacscore[train]'``); ``auto`` takes ``onnx`` when it can, else ``torch``.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from aacscore.backend.onnx import OnnxNet

log = logging.getLogger(__name__)

TORCH_INSTALL = "pip install 'aacscore[train]'"
ONNX_INSTALL = "pip install onnxruntime"
EXPORT_COMMAND = "python -m aacscore.training.export_onnx"
GRAPH_SUFFIX = ".onnx"

_threads: int | None = None


class Backend(str, Enum):
    """Which runtime evaluates the networks (``auto``: ONNX Runtime when it can, else torch)."""

    AUTO = "auto"
    ONNX = "onnx"
    TORCH = "torch"

    def __str__(self) -> str:
        return self.value


BACKENDS: tuple[str, ...] = tuple(b.value for b in Backend)
DEFAULT_BACKEND = Backend.AUTO


class BackendError(RuntimeError):
    """The requested backend cannot run here (package missing, graph missing or stale)."""


@runtime_checkable
class Net(Protocol):
    """A network pass: float32 ``x`` (batch first) -> named float32 outputs."""

    backend: Backend

    def __call__(self, x: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]: ...


def parse_backend(value: str | Backend | None) -> Backend:
    """``"onnx"``, ``"torch"``, ``"auto"`` or None (the default) as a :class:`Backend`."""
    if value is None:
        return DEFAULT_BACKEND
    try:
        return Backend(str(value).strip().lower())
    except ValueError:
        raise ValueError(
            f"unknown backend {value!r}; expected one of {', '.join(BACKENDS)}"
        ) from None


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a blocked or half-installed package
        return False


def torch_available() -> bool:
    """Whether PyTorch can be imported (without importing it)."""
    return _importable("torch")


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime can be imported (without importing it)."""
    return _importable("onnxruntime")


def require_torch(what: str = "the torch backend") -> None:
    """Raise :class:`BackendError` naming ``what`` and the install when torch is missing."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise BackendError(f"{what} needs PyTorch: {TORCH_INSTALL}") from exc


def set_threads(n: int | None) -> None:
    """CPU threads of the networks: ONNX Runtime sessions made from now on, and torch's when
    torch is already imported (None: each runtime's default)."""
    global _threads
    _threads = None if n is None else max(1, int(n))
    torch = sys.modules.get("torch")
    if torch is not None and _threads is not None:
        torch.set_num_threads(_threads)


def threads() -> int | None:
    """The thread count set with :func:`set_threads` (None: the runtime's default)."""
    return _threads


def graph_path(weights: Path) -> Path:
    """The ONNX graph exported from a weights file: ``unet.safetensors`` -> ``unet.onnx``."""
    return weights.with_suffix(GRAPH_SUFFIX)


def resolve_backend(requested: str | Backend | None, weights: Path | None) -> Backend:
    """The backend that will run the network of ``weights`` (ONNX or TORCH, never AUTO).

    Raises:
        BackendError: ``onnx`` without ONNX Runtime or without a graph exported from these
            weights; ``torch`` without PyTorch; ``auto`` with neither usable.
    """
    want = parse_backend(requested)
    if want == Backend.TORCH:
        require_torch()
        return Backend.TORCH
    problem = onnx_problem(weights)
    if problem is None:
        return Backend.ONNX
    if want == Backend.ONNX:
        raise BackendError(problem)
    if torch_available():
        # a graph that is there but stale deserves a word; a folder without graphs is normal
        stale = weights is not None and graph_path(weights).is_file()
        log.log(logging.WARNING if stale else logging.INFO, "%s; using the torch backend", problem)
        return Backend.TORCH
    raise BackendError(f"{problem}; or install PyTorch for the torch backend: {TORCH_INSTALL}")


def onnx_problem(weights: Path | None) -> str | None:
    """Why the ONNX backend cannot run the network of ``weights`` (None: it can)."""
    if not onnxruntime_available():
        return f"the onnx backend needs ONNX Runtime: {ONNX_INSTALL}"
    if weights is None:
        return "a model built in memory has no ONNX graph"
    from aacscore.backend.onnx import graph_mismatch

    return graph_mismatch(graph_path(weights), weights)


def load_net(
    backend: Backend,
    weights: Path,
    build_torch: Any,
    output_names: Sequence[str],
) -> Net:
    """The :class:`Net` of ``weights`` on a resolved backend; ``build_torch()`` makes the
    PyTorch module (called only for the torch backend)."""
    if backend == Backend.ONNX:
        return load_onnx(graph_path(weights), weights)
    if backend != Backend.TORCH:
        raise ValueError(f"resolve the backend first (got {backend})")
    from aacscore.backend.torch_net import TorchNet

    return TorchNet(build_torch(), output_names)


def load_onnx(graph: Path, weights: Path | None = None) -> OnnxNet:
    """An :class:`~aacscore.backend.onnx.OnnxNet` (checked against ``weights`` when given)."""
    from aacscore.backend.onnx import OnnxNet

    return OnnxNet.load(graph, weights)


def as_net(obj: Any, output_names: Sequence[str]) -> Net:
    """``obj`` when it is a :class:`Net`, else a torch module wrapped as one."""
    if isinstance(obj, Net):
        return obj
    from aacscore.backend.torch_net import TorchNet

    return TorchNet(obj, output_names)


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "Backend",
    "BackendError",
    "Net",
    "as_net",
    "graph_path",
    "load_net",
    "load_onnx",
    "onnx_problem",
    "onnxruntime_available",
    "parse_backend",
    "require_torch",
    "resolve_backend",
    "set_threads",
    "threads",
    "torch_available",
]
