"""The view classifier's network (PyTorch: the torch backend, training and the ONNX export);
everything else is :mod:`aacscore.gate.view`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

FILTERS: tuple[int, ...] = (8, 16, 32, 64, 128)
"""As :data:`aacscore.gate.view.FILTERS` (not imported from there: that module imports this one
on first use of its torch names)."""
N_CLASSES = 9
"""``len(aacscore.gate.view.CLASSES)``."""


class ViewNet(nn.Module):
    """Strided CNN: per block a stride-2 3x3 conv (+ a 3x3 conv from the second block on),
    batch norm and ReLU; global average and max pooling; a linear head over the classes."""

    def __init__(
        self, filters: Sequence[int] = FILTERS, n_classes: int = N_CLASSES, dropout: float = 0.2
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for i, f in enumerate(filters):
            layers += [nn.Conv2d(cin, f, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(f)]
            layers.append(nn.ReLU(inplace=True))
            if i > 0:
                layers += [nn.Conv2d(f, f, 3, padding=1, bias=False), nn.BatchNorm2d(f)]
                layers.append(nn.ReLU(inplace=True))
            cin = f
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * cin, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        out: torch.Tensor = self.head(self.dropout(pooled))
        return out


@torch.inference_mode()
def mirrored_probabilities(net: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Class probabilities of ``(n, 1, s, s)`` inputs, averaged with their mirror images."""
    net.eval()
    n = batch.shape[0]
    logits = net(torch.cat([batch, torch.flip(batch, dims=[3])], dim=0))
    p = torch.softmax(logits.float(), dim=1)
    return 0.5 * (p[:n] + p[n:])
