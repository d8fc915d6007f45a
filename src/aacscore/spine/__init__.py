"""Stage 1: vertebral bodies, landmarks and Kauppila segment bounds on lateral lumbar films.

>>> from aacscore.io import read_radiograph
>>> from aacscore.spine import SpineModel
>>> result = SpineModel.load().predict(read_radiograph("film.dcm"))  # doctest: +SKIP
>>> result.anterior_side, result.bounds["L1/L2"].point  # doctest: +SKIP

Modules: :mod:`.plans` (fingerprint -> plans.json), :mod:`.network` (DynUNet, orientation net),
:mod:`.data` (datasets, letterbox, cache, augmentation), :mod:`.train`, :mod:`.predict`,
:mod:`.geometry` (masks -> landmarks -> bounds), :mod:`.orientation`, :mod:`.nnunet`.
"""

from __future__ import annotations

from typing import Any

from aacscore.spine.geometry import SpineGeometry, geometry_from_labels
from aacscore.spine.network import WeightsError
from aacscore.spine.orientation import CanonicalFrame, OrientationResult
from aacscore.spine.plans import Plans
from aacscore.spine.predict import (
    SpineModel,
    SpineModelProtocol,
    SpineResult,
    default_model_dir,
    load_spine_model,
)
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
    "TrainConfig": "aacscore.spine.train",
    "TrainResult": "aacscore.spine.train",
    "train_spine": "aacscore.spine.train",
    "write_model_card": "aacscore.spine.train",
    "export_nnunet": "aacscore.spine.nnunet",
    "NnUNetSpineModel": "aacscore.spine.nnunet",
    "NnUNetUnavailableError": "aacscore.spine.nnunet",
}


def __getattr__(name: str) -> Any:
    """Training and nnU-Net helpers are imported on first use (they pull in more modules)."""
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
    "SpineError",
    "SpineGeometry",
    "SpineModel",
    "SpineModelProtocol",
    "SpineResult",
    "TrainConfig",
    "TrainResult",
    "Vertebra",
    "WeightsError",
    "default_model_dir",
    "export_nnunet",
    "geometry_from_labels",
    "load_spine_model",
    "train_spine",
    "write_model_card",
]
