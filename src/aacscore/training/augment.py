"""Training augmentation of aortic bands (row/column shifts, zoom, gamma, blur, noise and, opt-in,
style randomisation)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from aacscore.aorta.roi import BandGeometry
from aacscore.score.augment import affine
from aacscore.training.style import StyleConfig, restyle_intensity


def _gauss_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with edge padding (sigma in pixels, same for all bands).

    Small sigmas use a separable kernel; sigmas above 2.5 px three box filters of about the
    same variance (faster on CPU).
    """
    if sigma <= 0 or x.shape[0] == 0:
        return x
    if sigma > 2.5:
        w = 2 * round((math.sqrt(4.0 * sigma * sigma + 1.0) - 1.0) / 2.0) + 1
        r = w // 2
        y = x
        for _ in range(3):
            y = F.avg_pool2d(F.pad(y, (r, r, 0, 0), mode="replicate"), (1, w), stride=1)
            y = F.avg_pool2d(F.pad(y, (0, 0, r, r), mode="replicate"), (w, 1), stride=1)
        return y
    k = _gauss_kernel(sigma).to(x.dtype)
    r = (len(k) - 1) // 2
    y = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random training augmentation (shifts and blur sigmas in pixels of the
    reference band, scaled by :attr:`BandGeometry.pixel_scale`)."""

    row_shift_px: float = 1.5
    col_shift_px: float = 3.0
    col_zoom: float = 0.1
    row_zoom: float = 0.03
    gamma: float = 0.35
    noise: float = 0.03
    blur_prob: float = 0.3
    blur_sigma: float = 1.2
    sharpen_prob: float = 0.3
    sharpen_amount: float = 1.0
    ramp: float = 0.08
    style_prob: float = 0.0
    """Share of bands restyled by the intensity-only transforms of
    :func:`aacscore.training.style.restyle_intensity` (0: off, the shipped recipe)."""
    style: StyleConfig = field(default_factory=StyleConfig)


def augment(
    x: torch.Tensor, geometry: BandGeometry, gen: torch.Generator, cfg: AugmentConfig
) -> torch.Tensor:
    """Random augmentation of raw bands in [0, 1]: small shifts and zooms, gamma, processing
    (blur or unsharp masking), a smooth intensity ramp and noise."""
    b = x.shape[0]

    def u(lo: float, hi: float, n: int = b) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    row_px, col_px = geometry.pixel_scale
    y = affine(
        x,
        geometry,
        row_shift=row_px * u(-cfg.row_shift_px, cfg.row_shift_px),
        col_shift=col_px * u(-cfg.col_shift_px, cfg.col_shift_px),
        col_zoom=u(1 - cfg.col_zoom, 1 + cfg.col_zoom),
        row_zoom=u(1 - cfg.row_zoom, 1 + cfg.row_zoom),
    )
    y = y.clamp(0.0, 1.0)
    if cfg.style_prob > 0:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen)))
        y = y.clone()
        for i in range(b):
            if rng.random() < cfg.style_prob:
                band = y[i, 0].numpy().astype(np.float32)
                y[i, 0] = torch.from_numpy(restyle_intensity(band, rng, cfg.style)).to(y.dtype)
    g = torch.exp(u(-cfg.gamma, cfg.gamma))
    y = y.clamp_min(1e-4) ** g[:, None, None, None]
    # Film processing: some bands blurred, some edge-enhanced (unsharp masking).
    choice = torch.rand(b, generator=gen)
    sigma_blur = col_px * float(u(0.4, cfg.blur_sigma, 1))
    sigma_sharp = col_px * float(u(1.5, 5.0, 1))
    amount = u(0.2, cfg.sharpen_amount)[:, None, None, None]
    y = y.clone()
    sel = torch.nonzero(choice < cfg.blur_prob).flatten()
    if len(sel):
        y[sel] = blur(y[sel], sigma_blur)
    sel = torch.nonzero(choice >= 1 - cfg.sharpen_prob).flatten()
    if len(sel):
        ys = y[sel]
        y[sel] = ys + amount[sel] * (ys - blur(ys, sigma_sharp))
    # Smooth ramp (soft-tissue thickness / heel effect) in a random direction.
    if cfg.ramp > 0:
        h, w = y.shape[-2:]
        rr = torch.linspace(-1, 1, h, dtype=y.dtype)[:, None]
        cc = torch.linspace(-1, 1, w, dtype=y.dtype)[None, :]
        a_r = u(-cfg.ramp, cfg.ramp)[:, None, None, None]
        a_c = u(-cfg.ramp, cfg.ramp)[:, None, None, None]
        y = y + a_r * rr + a_c * cc
    if cfg.noise > 0:
        sd = u(0.0, cfg.noise)[:, None, None, None]
        y = y + sd * torch.randn(y.shape, generator=gen, dtype=y.dtype)
    return y
