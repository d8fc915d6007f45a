"""The score network's architecture (``config.json``'s ``network``) and its graph outputs; no
PyTorch needed (the network itself is :mod:`aacscore.score.network`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from aacscore.kauppila import MAX_GRADE, SEGMENTS


class Head(str, Enum):
    """The score network's head."""

    SEGMENTS = "segments"
    ORDINAL = "ordinal"
    TOTAL = "total"

    def __str__(self) -> str:
        return self.value


HEADS: tuple[str, ...] = tuple(h.value for h in Head)
N_SEG = len(SEGMENTS)
N_THRESH = MAX_GRADE


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of the score network (stored in ``config.json``)."""

    head: str = "segments"
    layers: tuple[int, ...] = (2, 2, 2, 2)
    block_inplanes: tuple[int, ...] = (16, 32, 64, 128)
    conv1_stride: int = 2
    col_bins: int = 4
    dropout: float = 0.2
    predict_fractions: bool = True

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; expected one of {', '.join(HEADS)}")
        object.__setattr__(self, "head", Head(self.head).value)
        if len(self.layers) != 4 or len(self.block_inplanes) != 4:
            raise ValueError("layers and block_inplanes need 4 entries each")

    @property
    def has_fractions(self) -> bool:
        """Whether the network outputs segment fractions (never for the total head)."""
        return self.predict_fractions and self.head != Head.TOTAL

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        d = asdict(self)
        d["layers"] = list(self.layers)
        d["block_inplanes"] = list(self.block_inplanes)
        d["backbone"] = "monai.networks.nets.ResNet(block='basic', spatial_dims=2)"
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetworkConfig:
        """Inverse of :meth:`as_dict`."""
        return cls(
            head=str(d["head"]),
            layers=tuple(int(x) for x in d["layers"]),
            block_inplanes=tuple(int(x) for x in d["block_inplanes"]),
            conv1_stride=int(d.get("conv1_stride", 2)),
            col_bins=int(d.get("col_bins", 4)),
            dropout=float(d.get("dropout", 0.0)),
            predict_fractions=bool(d.get("predict_fractions", False)),
        )


def output_names(config: NetworkConfig) -> tuple[str, ...]:
    """Outputs of the score graph: ``features`` (B, channels x 4 levels x col_bins), ``total``
    (B,), then ``grades`` (B, 8) for the segment heads and ``fractions`` (B, 8) when predicted."""
    names = ["features", "total"]
    if config.head != Head.TOTAL:
        names.append("grades")
    if config.has_fractions:
        names.append("fractions")
    return tuple(names)
