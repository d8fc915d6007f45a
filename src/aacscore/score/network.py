"""ResNet score network on the aortic band, with three interchangeable heads.

Backbone: MONAI ``ResNet`` (2-D, one input channel, BasicBlock, first convolution with stride 2).
Its global average pool is replaced by a pool to ``(4, col_bins)`` cells: one cell row per
Kauppila level (the band has the same number of rows per level and the backbone downsamples by
32), ``col_bins`` cells from posterior to anterior, so the linear head knows where a plaque is.

Heads (``NetworkConfig.head``):

* ``segments``: 8 grades, ``3 * sigmoid`` each (regression); total = sum.
* ``ordinal``: CORAL-style cumulative logits, one score per segment plus 3 ordered thresholds
  (``P(grade > k)``, k = 0, 1, 2); the grade is the expected value ``sum_k P(grade > k)``.
* ``total``: the paper-faithful baseline, one output ``24 * sigmoid`` for the AAC-24 total.

The two segment heads can also predict the calcified fraction of wall length of each segment
(``sigmoid``), used for AAC-8 and as an auxiliary target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets import ResNet
from torch import nn

from aacscore.kauppila import LEVELS, MAX_AAC24, MAX_GRADE
from aacscore.score.config import (
    HEADS,
    N_SEG,
    N_THRESH,
    Head,
    NetworkConfig,
    output_names,
)

__all__ = [
    "HEADS",
    "N_SEG",
    "N_THRESH",
    "Head",
    "NetworkConfig",
    "ScoreGraph",
    "ScoreNet",
    "Targets",
    "count_parameters",
    "decode_ordinal",
    "ordinal_targets",
    "output_names",
    "score_loss",
]


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


class ScoreNet(nn.Module):
    """Band (B, 1, H, W) -> dict of ``grades`` (B, 8) | None, ``total`` (B,), ``fractions``,
    ``logits`` (ordinal, B x 8 x 3) and ``raw`` (B, n_out)."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ResNet(
            block="basic",
            layers=list(config.layers),
            block_inplanes=list(config.block_inplanes),
            spatial_dims=2,
            n_input_channels=1,
            conv1_t_size=7,
            conv1_t_stride=config.conv1_stride,
            feed_forward=False,
        )
        self.backbone.avgpool = nn.AdaptiveAvgPool2d((len(LEVELS), config.col_bins))
        n_feat = config.block_inplanes[-1] * len(LEVELS) * config.col_bins
        self.dropout = nn.Dropout(config.dropout)
        n_main = 1 if config.head == Head.TOTAL else N_SEG
        self.n_main = n_main
        n_out = n_main + (N_SEG if config.has_fractions else 0)
        self.fc = nn.Linear(n_feat, n_out)
        nn.init.normal_(self.fc.weight, std=0.01)
        with torch.no_grad():
            bias = torch.zeros(n_out)
            if config.head == Head.TOTAL:
                bias[0] = _logit(3.0 / MAX_AAC24)
            elif config.head == Head.SEGMENTS:
                bias[:N_SEG] = _logit(0.4 / MAX_GRADE)
            if config.has_fractions:
                bias[n_main:] = _logit(0.08)
            self.fc.bias.copy_(bias)
        # Ordinal thresholds: b0 free, b1 = b0 - softplus(d1), b2 = b1 - softplus(d2).
        self.thresh_first: nn.Parameter | None = None
        self.thresh_gaps: nn.Parameter | None = None
        if config.head == Head.ORDINAL:
            self.thresh_first = nn.Parameter(torch.full((N_SEG,), -1.0))
            self.thresh_gaps = nn.Parameter(torch.full((N_SEG, N_THRESH - 1), 0.5))

    def thresholds(self) -> torch.Tensor:
        """Ordered (decreasing) threshold biases of the ordinal head, shape (8, 3)."""
        if self.thresh_first is None or self.thresh_gaps is None:
            raise RuntimeError("thresholds exist only for the ordinal head")
        gaps = F.softplus(self.thresh_gaps)
        steps = torch.cat([self.thresh_first[:, None], -gaps], dim=1)
        return torch.cumsum(steps, dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predictions of a batch of normalised bands."""
        return self.heads(self.backbone(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, channels x 4 levels x col_bins) of normalised bands: the
        pooled backbone output the linear head reads (channel-major cells)."""
        out: torch.Tensor = self.backbone(x)
        return out

    def heads(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """The outputs of :meth:`forward` from the penultimate :meth:`features`."""
        raw = self.fc(self.dropout(feats))
        main = raw[:, : self.n_main]
        out: dict[str, torch.Tensor] = {"raw": raw}
        head = self.config.head
        if head == Head.TOTAL:
            out["total"] = MAX_AAC24 * torch.sigmoid(main[:, 0])
        elif head == Head.SEGMENTS:
            grades = MAX_GRADE * torch.sigmoid(main)
            out["grades"] = grades
            out["total"] = grades.sum(dim=1)
        else:
            logits = main[:, :, None] + self.thresholds()[None]
            out["logits"] = logits
            grades = torch.sigmoid(logits).sum(dim=2)
            out["grades"] = grades
            out["total"] = grades.sum(dim=1)
        if self.config.has_fractions:
            out["fractions"] = torch.sigmoid(raw[:, self.n_main :])
        return out


class ScoreGraph(nn.Module):
    """What the exported graph computes (and the torch backend runs): normalised bands
    (B, 1, H, W) -> the tuple of :func:`~aacscore.score.config.output_names` (penultimate
    ``features``, ``total``, ``grades`` and ``fractions`` where the head has them)."""

    def __init__(self, net: ScoreNet) -> None:
        super().__init__()
        self.net = net
        self.names = output_names(net.config)
        self.train(net.training)  # a wrapper of a network in eval mode is in eval mode

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.net.features(x)
        out = self.net.heads(feats)
        return tuple(feats if n == "features" else out[n] for n in self.names)


@dataclass(frozen=True)
class Targets:
    """Training targets of a batch; NaN marks an unknown value."""

    grades: torch.Tensor  # (B, 8) float, NaN unknown
    total: torch.Tensor  # (B,) float, NaN unknown
    fractions: torch.Tensor  # (B, 8) float, NaN unknown
    fraction_weight: float = field(default=1.0)


def ordinal_targets(grades: torch.Tensor) -> torch.Tensor:
    """Cumulative binary targets ``grade > k`` for k = 0, 1, 2; shape (..., 3)."""
    ks = torch.arange(N_THRESH, device=grades.device, dtype=grades.dtype)
    return (grades[..., None] > ks).to(grades.dtype)


def decode_ordinal(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(expected grade, integer rank) from cumulative logits (..., 3).

    The rank is the number of thresholds passed with probability > 0.5, which is consistent
    because the thresholds are ordered.
    """
    p = torch.sigmoid(logits)
    return p.sum(dim=-1), (p > 0.5).sum(dim=-1)


def score_loss(
    out: dict[str, torch.Tensor], targets: Targets, head: str
) -> tuple[torch.Tensor, dict[str, float]]:
    """Training loss of a batch and its parts (per-sample means; unknown targets masked)."""
    parts: dict[str, float] = {}
    zero = out["raw"].sum() * 0.0
    if head == Head.TOTAL:
        m = torch.isfinite(targets.total)
        if not bool(m.any()):
            return zero, {"total": 0.0}
        # Squared error of the total, divided by 8 to match the per-segment scale.
        loss = ((out["total"][m] - targets.total[m]) ** 2).mean() / N_SEG
        parts["total"] = float(loss.detach())
    else:
        m = torch.isfinite(targets.grades)
        if not bool(m.any()):
            raise ValueError("the segment heads need per-segment grades; only totals were given")
        y = torch.where(m, targets.grades, torch.zeros_like(targets.grades))
        if head == Head.SEGMENTS:
            per = (out["grades"] - y) ** 2
        else:
            cum = ordinal_targets(y)
            per = F.binary_cross_entropy_with_logits(out["logits"], cum, reduction="none").sum(2)
        loss = (per * m).sum() / m.sum()
        parts[head] = float(loss.detach())
    if "fractions" in out:
        mf = torch.isfinite(targets.fractions)
        if bool(mf.any()):
            yf = torch.where(mf, targets.fractions, torch.zeros_like(targets.fractions))
            # Fractions in grade units (x3) so the auxiliary term has the main term's scale.
            lf = (((out["fractions"] - yf) * MAX_GRADE) ** 2 * mf).sum() / mf.sum()
            loss = loss + targets.fraction_weight * lf
            parts["fractions"] = float(lf.detach())
    parts["loss"] = float(loss.detach())
    return loss, parts


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(int(p.numel()) for p in model.parameters() if p.requires_grad)
