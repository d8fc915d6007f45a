"""The shape shared by the stages' training configurations and the no-silent-override rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import Enum
from typing import Any, TypeVar

from aacscore._files import json_safe


class Device(str, Enum):
    """torch device kinds accepted for training (``cuda:N`` selects a GPU)."""

    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"

    @classmethod
    def check(cls, device: str) -> str:
        """``device`` when its kind is known (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
        kind = str(device).split(":", 1)[0]
        if kind not in {d.value for d in cls}:
            raise ValueError(f"unknown device {device!r}; expected cpu, cuda, cuda:N or mps")
        return str(device)


@dataclass(frozen=True)
class TrainConfig:
    """Options every stage has (each stage's subclass sets its own defaults)."""

    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-2
    weight_decay: float = 3e-5
    patience: int = 5
    """Early stopping: epochs without an improvement of the monitored validation metric."""
    min_delta: float = 1e-4
    """Smallest change of the monitored metric that counts as an improvement."""
    seed: int = 0
    val_fraction: float = 0.1
    max_cases: int | None = None
    steps_per_epoch: int | None = None
    num_threads: int | None = None
    device: str = "cpu"
    """torch device of the networks ("cpu", "cuda", "cuda:1", ...); augmentation stays on CPU."""
    max_minutes: float | None = None
    """Wall-clock budget: after the first epoch the number of epochs is cut to what fits."""
    keep_checkpoints: int = 1
    """Epoch checkpoints kept in the run folder (the newest ones)."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("epochs, batch_size and patience must be >= 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be positive, got {self.max_minutes}")
        Device.check(self.device)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        out: dict[str, Any] = json_safe(asdict(self))
        return out


C = TypeVar("C", bound=TrainConfig)


def resolve_config(cls: type[C], config: C | None, overrides: Mapping[str, Any]) -> C:
    """``config``, or ``cls(**overrides)``; both at once is an error (no silent override).

    Raises:
        TypeError: a config and keyword settings were both given, or a keyword is not a field.
    """
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no setting(s) {', '.join(unknown)}")
    if config is not None:
        if overrides:
            raise TypeError(
                f"pass either config= or keyword settings, not both (got config and "
                f"{', '.join(sorted(overrides))}); use dataclasses.replace(config, ...) instead"
            )
        if not isinstance(config, cls):
            raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}")
        return config
    return cls(**overrides)


@dataclass(frozen=True)
class ViewTrainConfig(TrainConfig):
    """Recipe of the view classifier (:func:`aacscore.training.view.train_view`)."""

    epochs: int = 12
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 4
    num_threads: int | None = 2
    label_smoothing: float = 0.05
    input_size: int = 128
    filters: tuple[int, ...] = (8, 16, 32, 64, 128)
    dropout: float = 0.2
    jobs: int = 2
    """Processes for generating the synthetic images."""
    style_prob: float = 0.0
    """Share of training images restyled in the batch (:func:`aacscore.training.style.
    restyle_intensity`: random conv nets, tone curves, CLAHE, noise, JPEG, ...; every class
    alike)."""
    max_lateral_refused: float = 0.005
    """The exported model's ``accept_p_lateral`` is the largest threshold that refuses at most
    this share of the validation lateral films."""
