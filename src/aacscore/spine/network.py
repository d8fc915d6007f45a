"""The networks: nnU-Net's 2D U-Net as MONAI ``DynUNet`` and a tiny orientation classifier
(PyTorch: the torch backend, training and the ONNX export).

Weights are stored as safetensors (optionally fp16) next to ``plans.json``; the file names and
:class:`WeightsError` live in :mod:`aacscore.spine.weights` (no torch needed).
"""

from __future__ import annotations

from pathlib import Path

import torch
from monai.networks.nets import DynUNet
from torch import nn

from aacscore.backend.torch_net import load_safetensors
from aacscore.spine.plans import Plans
from aacscore.spine.weights import (
    MODEL_CARD,
    ORIENTATION_WEIGHTS,
    PLANS_FILE,
    UNET_WEIGHTS,
    WeightsError,
    default_model_dir,
)

__all__ = [
    "MODEL_CARD",
    "ORIENTATION_WEIGHTS",
    "PLANS_FILE",
    "UNET_WEIGHTS",
    "OrientationNet",
    "WeightsError",
    "build_orientation_net",
    "build_unet",
    "default_model_dir",
    "load_weights",
]


def build_unet(plans: Plans) -> DynUNet:
    """nnU-Net's 2D U-Net (conv-norm-lrelu x2 per stage, strided-conv pooling, transposed-conv
    upsampling, instance norm, leaky ReLU 0.01) with the plan's topology and widths."""
    strides = [list(s) for s in plans.strides]
    return DynUNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=plans.n_classes,
        kernel_size=[list(k) for k in plans.kernel_sizes],
        strides=strides,
        upsample_kernel_size=strides[1:],
        filters=list(plans.filters),
        norm_name=("INSTANCE", {"affine": True}),
        act_name=("leakyrelu", {"negative_slope": 0.01, "inplace": True}),
        deep_supervision=plans.deep_supervision,
        deep_supr_num=plans.deep_supr_num,
        res_block=False,
        trans_bias=True,
    )


class OrientationNet(nn.Module):
    """Tiny CNN: a downsampled film -> logit that the anterior side is on the RIGHT.

    Strided conv blocks (conv-batch norm-leaky ReLU) and global average pooling; the logit is
    made antisymmetric under horizontal mirroring at inference (see ``orientation.py``). Batch
    norm, not instance norm: after per-image normalisation every channel's spatial mean is a
    constant, so a pooled head would see (almost) nothing.
    """

    def __init__(self, filters: tuple[int, ...] = (8, 16, 32, 48, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for f in filters:
            layers += [
                nn.Conv2d(cin, f, 3, stride=2, padding=1),
                nn.BatchNorm2d(f),
                nn.LeakyReLU(0.01, inplace=True),
                nn.Conv2d(f, f, 3, padding=1),
                nn.BatchNorm2d(f),
                nn.LeakyReLU(0.01, inplace=True),
            ]
            cin = f
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.head(h.mean(dim=(2, 3))).squeeze(1)


def build_orientation_net(plans: Plans) -> OrientationNet:
    return OrientationNet(tuple(plans.orientation_filters))


def load_weights(module: nn.Module, path: Path) -> nn.Module:
    """Load safetensors weights into ``module`` (fp16 tensors are cast to the module's dtype)."""
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    return load_safetensors(module, path, WeightsError, "do not match the plans")
