"""Environment description used by ``aacscore info`` and run records."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
from pathlib import Path
from typing import Any

from aacscore._version import __version__

MODELS_DIR = Path(__file__).resolve().parent / "models"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # blocked or half-installed
        return False


def device_description() -> str:
    """``cuda (<name>)`` when a GPU is visible to torch, else ``cpu (<n> threads)`` (torch's
    threads; without torch the CPUs ONNX Runtime may use)."""
    if not _importable("torch"):
        return f"cpu ({os.cpu_count() or 1} threads)"
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def backends_info() -> dict[str, Any]:
    """Which inference backends can run here and the one ``auto`` picks for the shipped
    models: ``onnx`` (ONNX Runtime, the shipped graphs present) or ``torch``."""
    onnx = _importable("onnxruntime")
    torch = _importable("torch")
    graphs = sorted(p.name for p in MODELS_DIR.glob("*/*.onnx")) if MODELS_DIR.is_dir() else []
    default = "onnx" if onnx and graphs else "torch" if torch else None
    return {"onnx": onnx, "torch": torch, "default": default, "graphs": graphs}


def environment_info() -> dict[str, Any]:
    """Versions of aacscore and key dependencies, the compute device, the inference backends
    and the weights folder."""
    weights = (
        sorted(p.name for p in MODELS_DIR.glob("*/*.safetensors")) if MODELS_DIR.is_dir() else []
    )
    deps = ("torch", "monai", "onnxruntime", "pydicom", "highdicom", "numpy", "scipy", "lifelines")
    return {
        "aacscore": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {d: _version(d) for d in deps},
        "device": device_description(),
        "backends": backends_info(),
        "weights_dir": str(MODELS_DIR),
        "weights": weights,
    }
