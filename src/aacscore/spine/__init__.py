"""Stage 1: vertebral bodies, landmarks and Kauppila segment bounds on lateral lumbar films.

>>> from aacscore.io import read_radiograph
>>> from aacscore.spine import SpineModel
>>> result = SpineModel.load().predict(read_radiograph("film.dcm"))  # doctest: +SKIP
>>> result.anterior_side, result.bounds["L1/L2"].point  # doctest: +SKIP

Inference only (training: :mod:`aacscore.training.spine`). Modules: :mod:`.plans` (plans.json),
:mod:`.weights` (model files), :mod:`.network` (DynUNet, orientation net: the torch backend),
:mod:`.preprocess` (letterbox, z-score), :mod:`.predict` (:class:`SpineModel`), :mod:`.result`
(scores -> :class:`SpineResult`), :mod:`.geometry` (masks -> landmarks -> bounds), :mod:`.flags`
(confidence, trust flags), :mod:`.orientation`, :mod:`.classifier`, :mod:`.nnunet` (nnU-Net v2
predictor, torch only).
"""

from __future__ import annotations

from typing import Any

from aacscore.spine.flags import SpineConfidence
from aacscore.spine.geometry import SpineGeometry, geometry_from_labels
from aacscore.spine.orientation import CanonicalFrame, OrientationResult
from aacscore.spine.plans import Plans
from aacscore.spine.predict import (
    SpineModel,
    SpineModelProtocol,
    SpineResult,
    default_model_dir,
    load_spine_model,
)
from aacscore.spine.weights import WeightsError
from aacscore.vertebrae import (
    CLASS_NAMES,
    CORNER_NAMES,
    DISC_NAMES,
    LABEL_VALUES,
    LEVEL_ORDER,
    Bound,
    SpineError,
    Vertebra,
)

_LAZY = {
    "NnUNetSpineModel": "aacscore.spine.nnunet",
    "NnUNetUnavailableError": "aacscore.spine.nnunet",
}


def __getattr__(name: str) -> Any:
    """The nnU-Net model is imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aacscore.spine' has no attribute {name!r}")


__all__ = [
    "CLASS_NAMES",
    "CORNER_NAMES",
    "DISC_NAMES",
    "LABEL_VALUES",
    "LEVEL_ORDER",
    "Bound",
    "CanonicalFrame",
    "NnUNetSpineModel",
    "NnUNetUnavailableError",
    "OrientationResult",
    "Plans",
    "SpineConfidence",
    "SpineError",
    "SpineGeometry",
    "SpineModel",
    "SpineModelProtocol",
    "SpineResult",
    "Vertebra",
    "WeightsError",
    "default_model_dir",
    "geometry_from_labels",
    "load_spine_model",
]
