"""Training of both stages on one loop (:mod:`.loop`); the inference packages
(:mod:`aacscore.spine`, :mod:`aacscore.score`) never import this package.

>>> from aacscore.training import SpineTrainConfig, train_spine
>>> train_spine("data/sim", "runs/spine", SpineTrainConfig(epochs=2))  # doctest: +SKIP

Modules: :mod:`.config` (the shared config base), :mod:`.loop`, :mod:`.export`, :mod:`.card`,
:mod:`.spine` (+ :mod:`.spine_data`, :mod:`.spine_trainer`, :mod:`.spine_metrics`, :mod:`.plans`,
:mod:`.nifti`, :mod:`.nnunet_export`), :mod:`.score` (+ :mod:`.score_data`, :mod:`.augment`,
:mod:`.calibration`, :mod:`.metrics`).
"""

from __future__ import annotations

from typing import Any

from aacscore.training.config import Device, TrainConfig
from aacscore.training.errors import SpineDataError, TrainingError
from aacscore.training.loop import LoopResult, Mode, run_loop

_LAZY = {
    "SpineTrainConfig": "aacscore.training.spine",
    "train_spine": "aacscore.training.spine",
    "ScoreTrainConfig": "aacscore.training.score",
    "train_score": "aacscore.training.score",
    "export_nnunet": "aacscore.training.nnunet_export",
}


def __getattr__(name: str) -> Any:
    """The stages are imported on first use (each pulls in its networks and data code)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aacscore.training' has no attribute {name!r}")


__all__ = [
    "Device",
    "LoopResult",
    "Mode",
    "ScoreTrainConfig",
    "SpineDataError",
    "SpineTrainConfig",
    "TrainConfig",
    "TrainingError",
    "export_nnunet",
    "run_loop",
    "train_score",
    "train_spine",
]
