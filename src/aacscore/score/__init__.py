"""Stage 2: Kauppila score regression on the aortic band (MONAI ResNet, three head types).

>>> from aacscore.aorta import extract_band
>>> from aacscore.score import ScoreModel
>>> model = ScoreModel.load()  # doctest: +SKIP
>>> geo = model.band_geometry
>>> band = extract_band(image, corners, "right", spacing, geometry=geo)  # doctest: +SKIP
>>> model.predict(band, groups="lewis").aac24  # doctest: +SKIP

Inference only; training is :mod:`aacscore.training.score`. The torch network
(:class:`~aacscore.score.network.ScoreNet`) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aacscore.score.config import HEADS, Head, NetworkConfig
from aacscore.score.predict import (
    PACKAGE_MODEL_DIR,
    ModelNotFoundError,
    ScoreModel,
    ScoreModelConfig,
    ScorePrediction,
    is_low_confidence,
)

if TYPE_CHECKING:
    from aacscore.score.network import ScoreNet


def __getattr__(name: str) -> Any:
    if name == "ScoreNet":
        from aacscore.score.network import ScoreNet

        return ScoreNet
    raise AttributeError(f"module 'aacscore.score' has no attribute {name!r}")


__all__ = [
    "HEADS",
    "PACKAGE_MODEL_DIR",
    "Head",
    "ModelNotFoundError",
    "NetworkConfig",
    "ScoreModel",
    "ScoreModelConfig",
    "ScoreNet",
    "ScorePrediction",
    "is_low_confidence",
]
