"""Stage 2: Kauppila score regression on the aortic band (MONAI ResNet, three head types).

>>> from aacscore.aorta import extract_band
>>> from aacscore.score import ScoreModel
>>> model = ScoreModel.load()  # doctest: +SKIP
>>> geo = model.band_geometry
>>> band = extract_band(image, corners, "right", spacing, geometry=geo)  # doctest: +SKIP
>>> model.predict(band, groups="lewis").aac24  # doctest: +SKIP

Inference only; training is :mod:`aacscore.training.score`.
"""

from aacscore.score.network import HEADS, Head, NetworkConfig, ScoreNet
from aacscore.score.predict import (
    PACKAGE_MODEL_DIR,
    ModelNotFoundError,
    ScoreModel,
    ScoreModelConfig,
    ScorePrediction,
    is_low_confidence,
)

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
