"""The files of a spine model folder (``plans.json``, the U-Net and orientation weights, their
ONNX graphs) and the error for missing or incompatible weights; no PyTorch needed."""

from __future__ import annotations

from pathlib import Path

UNET_WEIGHTS = "unet.safetensors"
ORIENTATION_WEIGHTS = "orientation.safetensors"
PLANS_FILE = "plans.json"
MODEL_CARD = "MODEL_CARD.md"
UNET_OUTPUTS: tuple[str, ...] = ("logits",)
"""Output of the U-Net graph: (B, classes, h, w) logits of z-scored (B, 1, h, w) inputs."""
ORIENTATION_OUTPUTS: tuple[str, ...] = ("logits",)
"""Output of the orientation graph: (B,) logits that the anterior side is on the right."""


def default_model_dir() -> Path:
    """``aacscore/models/spine`` inside the installed package."""
    from aacscore.info import MODELS_DIR

    return MODELS_DIR / "spine"


class WeightsError(RuntimeError):
    """Missing or incompatible model weights."""
