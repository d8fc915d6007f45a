"""Stage 2: Kauppila score regression on the aortic band (MONAI ResNet, three head types).

>>> from aacscore.aorta import extract_band
>>> from aacscore.score import ScoreModel
>>> model = ScoreModel.load()  # doctest: +SKIP
>>> geo = model.band_geometry
>>> band = extract_band(image, corners, "right", spacing, geometry=geo)  # doctest: +SKIP
>>> model.predict(band, groups="lewis").aac24  # doctest: +SKIP
"""

from aacscore.score.data import BandSet, FilmGeometry, GeometryProvider, ScoreDataError
from aacscore.score.network import HEADS, NetworkConfig, ScoreNet
from aacscore.score.predict import (
    PACKAGE_MODEL_DIR,
    ModelNotFoundError,
    ScoreModel,
    ScoreModelConfig,
    ScorePrediction,
    is_low_confidence,
)
from aacscore.score.train import TrainConfig, TrainResult, train_score

__all__ = [
    "HEADS",
    "PACKAGE_MODEL_DIR",
    "BandSet",
    "FilmGeometry",
    "GeometryProvider",
    "ModelNotFoundError",
    "NetworkConfig",
    "ScoreDataError",
    "ScoreModel",
    "ScoreModelConfig",
    "ScoreNet",
    "ScorePrediction",
    "TrainConfig",
    "TrainResult",
    "is_low_confidence",
    "train_score",
]
