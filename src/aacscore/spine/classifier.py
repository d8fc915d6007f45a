"""The orientation classifier on its own (P(anterior right)), as the nnU-Net model uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.backend import Backend, Net, as_net, graph_path, load_net, resolve_backend
from aacscore.spine.orientation import classifier_probability_right
from aacscore.spine.plans import Plans
from aacscore.spine.preprocess import zscore_array
from aacscore.spine.weights import (
    ORIENTATION_OUTPUTS,
    ORIENTATION_WEIGHTS,
    PLANS_FILE,
    WeightsError,
)


def orientation_input(
    plans: Plans, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float32]:
    """The classifier's (1, 1, h/f, w/f) input of a raw padded model-size film: z-scored over
    the film area, then average-pooled by ``plans.orientation_downsample``."""
    z = zscore_array(image, valid)
    f = plans.orientation_downsample
    h, w = (z.shape[0] // f) * f, (z.shape[1] // f) * f
    pooled = z[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3), dtype=np.float64)
    return pooled.astype(np.float32)[None, None]


def probability_right(
    net: Net | Any,
    plans: Plans,
    image: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
) -> float:
    """Antisymmetrised P(anterior right) of a raw padded model-size input."""
    return classifier_probability_right(net, orientation_input(plans, image, valid))


def load_orientation_net(plans: Plans, weights: Path, backend: Backend) -> Net:
    """The orientation network of ``weights`` on a resolved backend."""

    def build() -> Any:
        from aacscore.spine.network import build_orientation_net, load_weights

        return load_weights(build_orientation_net(plans), weights).eval()

    return load_net(backend, weights, build, ORIENTATION_OUTPUTS)


class OrientationClassifier:
    """``plans.json`` + ``orientation.safetensors`` (or its ONNX graph) of a spine model
    folder; ``net`` is a :class:`~aacscore.backend.Net` or an ``OrientationNet``."""

    def __init__(self, plans: Plans, net: Net | Any, model_dir: Path) -> None:
        self.plans = plans
        self.net = as_net(net, ORIENTATION_OUTPUTS)
        self.model_dir = model_dir

    @property
    def backend(self) -> Backend:
        return self.net.backend

    @classmethod
    def load(
        cls, model_dir: str | Path, backend: str | Backend | None = None
    ) -> OrientationClassifier:
        """Raises WeightsError when the folder has no orientation weights (BackendError when
        the backend cannot run them)."""
        d = Path(model_dir)
        if not (d / PLANS_FILE).is_file() or not (d / ORIENTATION_WEIGHTS).is_file():
            raise WeightsError(f"{d}: no {PLANS_FILE} + {ORIENTATION_WEIGHTS} here")
        plans = Plans.load(d / PLANS_FILE)
        weights = d / ORIENTATION_WEIGHTS
        net = load_orientation_net(plans, weights, resolve_backend(backend, weights))
        return cls(plans, net, d)

    def probability_right(
        self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
    ) -> float:
        """P(anterior right) of a raw padded model-size input."""
        return probability_right(self.net, self.plans, image, valid)

    def weight_files(self) -> list[Path]:
        """The plans and weights that determine the classifier's output (and the ONNX graph
        run in their place on the onnx backend)."""
        files = [self.model_dir / PLANS_FILE, self.model_dir / ORIENTATION_WEIGHTS]
        if self.backend == Backend.ONNX:
            files.append(graph_path(self.model_dir / ORIENTATION_WEIGHTS))
        return files
