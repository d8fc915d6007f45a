"""Images that are not radiographs, for the ``not_radiograph`` class of the view classifier.

Kinds (drawn with fixed weights): scikit-image's bundled photographs (never ``chelsea``, the
cat, held out for measurement), random textures and noise, smooth gradients, geometric
drawings, screenshots with text and tables, label maps (flat grey levels 0..7 like a
``_labels.png`` of the simulator, or random flat regions), and aacscore-style overlays (a
simulated film with coloured outlines, boxes and text, turned grey the way
:mod:`aacscore.io.image` turns RGB into grey).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from aacscore.io._common import to_grey
from aacscore.simulate.case import simulate_case
from aacscore.simulate.geometry import F32

PHOTOS: tuple[str, ...] = (
    "astronaut",
    "camera",
    "coffee",
    "rocket",
    "coins",
    "page",
    "text",
    "moon",
    "horse",
    "brick",
    "grass",
    "gravel",
    "clock",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "retina",
    "cell",
    "checkerboard",
    "colorwheel",
    "microaneurysms",
    "shepp_logan_phantom",
)
"""scikit-image photographs used for training (``chelsea`` is held out)."""

HELD_OUT_PHOTOS: tuple[str, ...] = ("chelsea",)

KINDS: dict[str, float] = {
    "photo": 0.3,
    "texture": 0.1,
    "gradient": 0.06,
    "drawing": 0.12,
    "screenshot": 0.14,
    "labelmap": 0.14,
    "overlay": 0.14,
}
"""Kinds of non-radiograph images and their shares."""

_WORDS = (
    "aacscore",
    "AAC-24",
    "L1",
    "L2",
    "L3",
    "L4",
    "total",
    "score",
    "patient",
    "result",
    "0.36",
    "12.5",
    "report",
    "File",
    "Edit",
    "View",
    "Help",
    "OK",
    "Cancel",
    "warning",
)


@functools.cache
def photo(name: str) -> F32:
    """A scikit-image photograph as grey float32 in [0, 1]."""
    import skimage.data

    a = np.asarray(getattr(skimage.data, name)())
    if a.dtype == bool:
        a = a.astype(np.float64)
    a = a.astype(np.float64)
    if a.ndim == 3:
        a = to_grey(a[..., :3])
    a = (a - a.min()) / max(float(a.max() - a.min()), 1e-6)
    return a.astype(np.float32)


def font(size: int) -> Any:
    """Pillow's default font at ``size`` px (a fixed bitmap font on old Pillow)."""
    try:
        return ImageFont.load_default(size=max(8, int(size)))
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _size(rng: np.random.Generator) -> tuple[int, int]:
    long_side = int(rng.integers(150, 300))
    a = float(np.exp(rng.uniform(-0.5, 0.5)))
    return (
        (long_side, max(48, int(long_side / a)))
        if a > 1
        else (max(48, int(long_side * a)), long_side)
    )


def _photo(rng: np.random.Generator) -> F32:
    a = photo(str(rng.choice(PHOTOS)))
    h, w = a.shape
    fh, fw = rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)
    ch, cw = max(24, int(h * fh)), max(24, int(w * fw))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    a = a[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        a = a[:, ::-1]
    if rng.random() < 0.2:
        a = 1 - a
    return np.clip(a ** float(np.exp(rng.uniform(-0.5, 0.5))), 0, 1).astype(np.float32)


def _texture(rng: np.random.Generator) -> F32:
    h, w = _size(rng)
    a = rng.standard_normal((h, w)).astype(np.float32)
    kind = rng.integers(0, 4)
    if kind == 0:
        a = ndimage.gaussian_filter(a, rng.uniform(0.5, 10))
    elif kind == 1:
        a = (ndimage.gaussian_filter(a, rng.uniform(2, 8)) > 0).astype(np.float32)
    elif kind == 2:
        yy, xx = np.mgrid[0:h, 0:w]
        f = rng.uniform(0.05, 0.5)
        a = np.sin(f * xx + rng.uniform(0, 6)) * np.sin(f * rng.uniform(0.2, 1.5) * yy) + 0.2 * a
    else:
        a = rng.random((h, w)).astype(np.float32)
    a = a - a.min()
    return (a / max(float(a.max()), 1e-6)).astype(np.float32)


def _gradient(rng: np.random.Generator) -> F32:
    h, w = _size(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        t = rng.uniform(0, math.pi)
        a = xx * math.cos(t) + yy * math.sin(t)
    else:
        a = np.hypot(xx - rng.uniform(0, w), yy - rng.uniform(0, h))
    a = a - a.min()
    a = a / max(float(a.max()), 1e-6)
    return np.clip(a + rng.uniform(0, 0.03) * rng.standard_normal((h, w)), 0, 1).astype(np.float32)


def _drawing(rng: np.random.Generator) -> F32:
    h, w = _size(rng)
    img = Image.new("L", (w, h), int(rng.integers(0, 256)))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 25))):
        x0, x1 = sorted(rng.integers(0, w, 2).tolist())
        y0, y1 = sorted(rng.integers(0, h, 2).tolist())
        fill = int(rng.integers(0, 256))
        k = rng.integers(0, 4)
        if k == 0:
            d.rectangle(
                (x0, y0, x1, y1),
                fill=fill if rng.random() < 0.6 else None,
                outline=fill,
                width=int(rng.integers(1, 5)),
            )
        elif k == 1:
            d.ellipse(
                (x0, y0, x1, y1),
                fill=fill if rng.random() < 0.6 else None,
                outline=fill,
                width=int(rng.integers(1, 5)),
            )
        elif k == 2:
            d.line((x0, y0, x1, y1), fill=fill, width=int(rng.integers(1, 6)))
        else:
            pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(3)]
            d.polygon(pts, fill=fill)
    return (np.asarray(img, dtype=np.float32) / 255).astype(np.float32)


def _screenshot(rng: np.random.Generator) -> F32:
    h, w = _size(rng)
    dark = rng.random() < 0.35
    bg, fg = (
        (int(rng.integers(0, 60)), int(rng.integers(180, 256)))
        if dark
        else (int(rng.integers(200, 256)), int(rng.integers(0, 80)))
    )
    img = Image.new("L", (w, h), bg)
    d = ImageDraw.Draw(img)
    if rng.random() < 0.5:
        d.rectangle((0, 0, w, int(h * rng.uniform(0.04, 0.1))), fill=int(rng.integers(60, 200)))
    size = int(rng.integers(7, 16))
    fnt = font(size)
    table = rng.random() < 0.4
    y = int(h * 0.12)
    cols = int(rng.integers(2, 6))
    while y < h - size:
        if table:
            for c in range(cols):
                d.text((int(c * w / cols) + 3, y), str(rng.choice(_WORDS)), fill=fg, font=fnt)
            d.line((0, y + size + 2, w, y + size + 2), fill=fg, width=1)
        else:
            words = " ".join(str(rng.choice(_WORDS)) for _ in range(int(rng.integers(2, 10))))
            d.text((int(w * 0.05), y), words, fill=fg, font=fnt)
        y += int(size * rng.uniform(1.3, 2.0))
    if table:
        for c in range(1, cols):
            d.line((int(c * w / cols), int(h * 0.12), int(c * w / cols), h), fill=fg, width=1)
    return (np.asarray(img, dtype=np.float32) / 255).astype(np.float32)


def _labelmap(rng: np.random.Generator, seed: int, index: int) -> F32:
    if rng.random() < 0.6:
        case = simulate_case(seed * 1000 + 99, index, spacing_mm=float(rng.uniform(1.0, 2.0)))
        lab = case.labels.astype(np.float32)
    else:
        h, w = _size(rng)
        n = int(rng.integers(3, 20))
        pts = rng.uniform(0, 1, (n, 2)) * [w, h]
        yy, xx = np.mgrid[0:h, 0:w]
        dist = (xx[..., None] - pts[:, 0]) ** 2 + (yy[..., None] - pts[:, 1]) ** 2
        lab = rng.integers(0, 8, n)[np.argmin(dist, axis=-1)].astype(np.float32)
    scale = float(rng.choice([1.0, 30.0, 36.0, 255.0 / 7]))
    return (lab * scale / 255.0).clip(0, 1).astype(np.float32)


def _overlay(rng: np.random.Generator, seed: int, index: int) -> F32:
    case = simulate_case(seed * 1000 + 98, index, spacing_mm=float(rng.uniform(0.8, 1.6)))
    grey = (np.clip(case.image, 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(grey).convert("RGB")
    d = ImageDraw.Draw(img, "RGBA")
    colours = [(255, 0, 0), (0, 255, 0), (0, 128, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
    width = int(rng.integers(1, 4))
    for name, c in case.vertebrae.items():
        col = colours[int(rng.integers(0, len(colours)))]
        pts = [tuple(p) for p in np.asarray(c, dtype=float).tolist()]
        alpha = int(rng.choice([0, 90, 140]))
        d.polygon(pts, fill=(*col, alpha) if alpha else None, outline=(*col, 255), width=width)
        if rng.random() < 0.5:
            d.text(pts[0], name, fill=(*col, 255))
    for wall in case.walls.values():
        col = colours[int(rng.integers(0, len(colours)))]
        d.line(
            [tuple(p) for p in np.asarray(wall, dtype=float).tolist()],
            fill=(*col, 255),
            width=width + 1,
        )
    if rng.random() < 0.7:
        d.rectangle((2, 2, img.width * 0.6, 18), fill=(0, 0, 0, 200))
        d.text((4, 4), f"AAC-24 {rng.uniform(0, 24):.1f}", fill=(255, 255, 0, 255))
    rgb = np.asarray(img, dtype=np.float64)
    return (to_grey(rgb) / 255.0).astype(np.float32)


def not_radiograph(rng: np.random.Generator, seed: int, index: int) -> F32:
    """One non-radiograph image (2-D float32 in [0, 1])."""
    kinds = list(KINDS)
    kind = kinds[
        int(rng.choice(len(kinds), p=np.array(list(KINDS.values())) / sum(KINDS.values())))
    ]
    if kind == "photo":
        a = _photo(rng)
    elif kind == "texture":
        a = _texture(rng)
    elif kind == "gradient":
        a = _gradient(rng)
    elif kind == "drawing":
        a = _drawing(rng)
    elif kind == "screenshot":
        a = _screenshot(rng)
    elif kind == "labelmap":
        a = _labelmap(rng, seed, index)
    else:
        a = _overlay(rng, seed, index)
    if rng.random() < 0.3:
        a = a + rng.uniform(0, 0.03) * rng.standard_normal(a.shape).astype(np.float32)
    return np.clip(a, 0, 1).astype(np.float32)
