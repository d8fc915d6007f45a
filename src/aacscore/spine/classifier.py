"""The orientation classifier on its own (P(anterior right)), as the nnU-Net model uses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from aacscore.spine.network import (
    ORIENTATION_WEIGHTS,
    PLANS_FILE,
    OrientationNet,
    WeightsError,
    build_orientation_net,
    load_weights,
)
from aacscore.spine.orientation import classifier_probability_right
from aacscore.spine.plans import Plans
from aacscore.spine.preprocess import zscore


@torch.inference_mode()
def probability_right(
    net: OrientationNet,
    plans: Plans,
    image: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
) -> float:
    """Antisymmetrised P(anterior right) of a raw padded model-size input."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    v = torch.from_numpy(valid.astype(np.float32))[None, None]
    z = F.avg_pool2d(zscore(x, v), plans.orientation_downsample)
    return classifier_probability_right(net, z)


class OrientationClassifier:
    """``plans.json`` + ``orientation.safetensors`` of a spine model folder."""

    def __init__(self, plans: Plans, net: OrientationNet, model_dir: Path) -> None:
        self.plans = plans
        self.net = net.eval()
        self.model_dir = model_dir

    @classmethod
    def load(cls, model_dir: str | Path) -> OrientationClassifier:
        """Raises WeightsError when the folder has no orientation weights."""
        d = Path(model_dir)
        if not (d / PLANS_FILE).is_file() or not (d / ORIENTATION_WEIGHTS).is_file():
            raise WeightsError(f"{d}: no {PLANS_FILE} + {ORIENTATION_WEIGHTS} here")
        plans = Plans.load(d / PLANS_FILE)
        net = build_orientation_net(plans)
        load_weights(net, d / ORIENTATION_WEIGHTS)
        return cls(plans, net, d)

    def probability_right(
        self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
    ) -> float:
        """P(anterior right) of a raw padded model-size input."""
        return probability_right(self.net, self.plans, image, valid)

    def weight_files(self) -> list[Path]:
        """The plans and weights that determine the classifier's output."""
        return [self.model_dir / PLANS_FILE, self.model_dir / ORIENTATION_WEIGHTS]
