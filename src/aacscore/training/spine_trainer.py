"""The spine networks in training: U-Net + orientation classifier, their optimisers (AdamW,
nnU-Net's polynomial decay) and one training step."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss

from aacscore.spine.network import build_orientation_net, build_unet
from aacscore.spine.plans import Plans
from aacscore.spine.preprocess import zscore


def poly_lr(initial: float, step: int, total: int, exponent: float = 0.9) -> float:
    """nnU-Net's polynomial decay."""
    return initial * (1.0 - min(step, total) / max(total, 1)) ** exponent


class SegmentationTrainer:
    """U-Net + orientation classifier, their optimisers and one training/evaluation step."""

    def __init__(
        self,
        plans: Plans,
        lr: float = 1e-2,
        weight_decay: float = 3e-5,
        total_steps: int = 1000,
        seed: int = 0,
        orientation_lr: float = 1e-3,
        device: str | torch.device = "cpu",
    ) -> None:
        torch.manual_seed(seed)
        self.plans = plans
        self.device = torch.device(device)
        self.unet = build_unet(plans).to(self.device)
        self.orient = build_orientation_net(plans).to(self.device)
        self.lr = lr
        self.orientation_lr = orientation_lr
        self.total_steps = total_steps
        self.step = 0
        self.opt = torch.optim.AdamW(self.unet.parameters(), lr=lr, weight_decay=weight_decay)
        self.opt_orient = torch.optim.AdamW(
            self.orient.parameters(), lr=orientation_lr, weight_decay=weight_decay
        )
        self.loss_fn = DiceCELoss(
            to_onehot_y=True,
            softmax=True,
            include_background=False,
            batch=True,
            smooth_nr=1e-5,
            smooth_dr=1e-5,
        )

    def seg_loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if out.dim() == 5:  # deep supervision: (B, heads, C, H, W), weights 1/2^i normalised
            w = torch.tensor([0.5**i for i in range(out.shape[1])], device=out.device)
            w = w / w.sum()
            return sum(w[i] * self.loss_fn(out[:, i], labels) for i in range(out.shape[1]))
        return self.loss_fn(out, labels)

    def train_step(
        self, images: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, flipped: torch.Tensor
    ) -> tuple[float, float]:
        """One optimisation step on raw (un-normalised) augmented inputs; returns the losses."""
        dev = self.device
        images, labels, valid = images.to(dev), labels.to(dev), valid.to(dev)
        flipped = flipped.to(dev)
        self.unet.train()
        self.orient.train()
        for opt, lr0 in ((self.opt, self.lr), (self.opt_orient, self.orientation_lr)):
            for g in opt.param_groups:
                g["lr"] = poly_lr(lr0, self.step, self.total_steps)
        x = zscore(images, valid)
        out = self.unet(x)
        loss = self.seg_loss(out, labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 12.0)
        self.opt.step()
        xo = F.avg_pool2d(x, self.plans.orientation_downsample)
        logit = self.orient(xo)
        oloss = F.binary_cross_entropy_with_logits(logit, flipped.float())
        self.opt_orient.zero_grad(set_to_none=True)
        oloss.backward()
        self.opt_orient.step()
        self.step += 1
        return float(loss.detach()), float(oloss.detach())

    @torch.inference_mode()
    def predict_logits(self, images: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Logits on the CPU (the network runs on ``self.device``)."""
        self.unet.eval()
        x = zscore(images.to(self.device), valid.to(self.device))
        return self.unet(x).float().cpu()

    @torch.inference_mode()
    def orientation_logits(self, images: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Antisymmetrised logits (positive: anterior right)."""
        self.orient.eval()
        x = zscore(images.to(self.device), valid.to(self.device))
        x = F.avg_pool2d(x, self.plans.orientation_downsample)
        return (0.5 * (self.orient(x) - self.orient(torch.flip(x, dims=[3])))).float().cpu()

    def state_dict(self) -> dict[str, Any]:
        return {
            "unet": self.unet.state_dict(),
            "orient": self.orient.state_dict(),
            "opt": self.opt.state_dict(),
            "opt_orient": self.opt_orient.state_dict(),
            "step": self.step,
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.unet.load_state_dict(state["unet"])
        self.orient.load_state_dict(state["orient"])
        self.opt.load_state_dict(state["opt"])
        self.opt_orient.load_state_dict(state["opt_orient"])
        self.step = int(state["step"])
        self.total_steps = int(state.get("total_steps", self.total_steps))


# -------------------------------------------------------------------------------------------
# Metrics
