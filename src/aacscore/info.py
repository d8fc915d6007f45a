"""Environment description used by ``aacscore info`` and run records."""

from __future__ import annotations

import importlib.metadata
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


def device_description() -> str:
    """``cuda (<name>)`` when a GPU is visible to torch, else ``cpu (<n> threads)``."""
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def environment_info() -> dict[str, Any]:
    """Versions of aacscore and key dependencies, the compute device and the weights folder."""
    weights = (
        sorted(p.name for p in MODELS_DIR.glob("*/*.safetensors")) if MODELS_DIR.is_dir() else []
    )
    return {
        "aacscore": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            d: _version(d)
            for d in ("torch", "monai", "pydicom", "highdicom", "numpy", "scipy", "lifelines")
        },
        "device": device_description(),
        "weights_dir": str(MODELS_DIR),
        "weights": weights,
    }
