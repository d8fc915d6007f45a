"""Hand-built synthetic lateral films for the spine tests: quadrilateral bodies on a noisy
background, posterior elements behind the bodies, optional rotation and mirroring."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from skimage.draw import ellipse, polygon

from aacscore.vertebrae import LABEL_VALUES

ORDER = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")


def rotate(pts: np.ndarray, deg: float, center: tuple[float, float]) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    p = np.asarray(pts, dtype=np.float64) - center
    return np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], 1) + center


def make_film(
    seed: int = 0,
    shape: tuple[int, int] = (192, 128),
    spacing_mm: float = 1.5,
    anterior_side: str = "left",
    rotation_deg: float = 0.0,
    levels: tuple[str, ...] = ORDER,
    body_px: tuple[float, float] = (16.0, 22.0),
    noise: float = 0.03,
) -> dict[str, Any]:
    """A film with labelled bodies; corners (AS, PS, PI, AI) in the returned image's pixels."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.full(shape, 0.15, dtype=np.float64)
    img += np.linspace(0, 0.1, w)[None, :] * rng.uniform(-1, 1)
    labels = np.zeros(shape, dtype=np.uint8)
    x0 = 0.45 * w + rng.uniform(-3, 3)
    scale = h / 192.0
    bh, bd = body_px[0] * scale, body_px[1] * min(scale, w / 128.0)
    gap = 5.0 * scale
    total = len(ORDER) * bh + (len(ORDER) - 1) * gap
    y = (h - total) / 2.0 + rng.uniform(-2, 2)
    center = (w / 2.0, h / 2.0)
    corners: dict[str, np.ndarray] = {}
    posts = []
    for name in ORDER:
        hh = bh * rng.uniform(0.92, 1.08)
        dd = bd * rng.uniform(0.92, 1.08)
        wedge = rng.uniform(-1.0, 1.0)
        c = np.array(
            [
                [x0 - dd / 2, y + wedge],
                [x0 + dd / 2, y],
                [x0 + dd / 2, y + hh],
                [x0 - dd / 2, y + hh - wedge],
            ]
        )
        c = rotate(c, rotation_deg, center)
        if name in levels:
            corners[name] = c
        posts.append(
            rotate(np.array([[x0 + dd / 2 + 0.45 * dd, y + hh / 2]]), rotation_deg, center)[0]
        )
        y += hh + gap
    for name, c in corners.items():
        rr, cc = polygon(c[:, 1], c[:, 0], shape)
        labels[rr, cc] = LABEL_VALUES[name]
        img[rr, cc] = 0.7
    for p in posts:  # posterior elements: fainter bone behind each body
        rr, cc = ellipse(p[1], p[0], 0.35 * bh, 0.3 * bd, shape)
        img[rr, cc] = np.maximum(img[rr, cc], 0.45)
    img += rng.normal(0, noise, shape)
    img = np.clip(img, 0, 1).astype(np.float32)
    if anterior_side == "right":
        img = np.ascontiguousarray(img[:, ::-1])
        labels = np.ascontiguousarray(labels[:, ::-1])
        for name, c in corners.items():
            c = c.copy()
            c[:, 0] = (w - 1) - c[:, 0]
            corners[name] = c
    return {
        "image": img,
        "labels": labels,
        "corners": corners,
        "spacing_mm": (spacing_mm, spacing_mm),
        "anterior_side": anterior_side,
    }


def write_case(out: Path, stem: str, film: dict[str, Any], with_json: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    img16 = np.round(film["image"] * 65535).astype(np.uint16)
    Image.fromarray(img16).save(out / f"{stem}.png")
    Image.fromarray(film["labels"]).save(out / f"{stem}_labels.png")
    if with_json:
        d = {
            "case": stem,
            "shape": list(film["image"].shape),
            "spacing_mm": list(film["spacing_mm"]),
            "anterior_side": film["anterior_side"],
            "vertebrae": {n: {"corners": c.tolist()} for n, c in film["corners"].items()},
        }
        (out / f"{stem}.json").write_text(json.dumps(d))


def write_dataset(out: Path, n: int, seed: int = 0, shape: tuple[int, int] = (96, 64)) -> Path:
    for i in range(n):
        side = "right" if i % 3 == 2 else "left"
        film = make_film(seed + i, shape=shape, anterior_side=side, rotation_deg=(i % 5 - 2) * 3)
        write_case(out, f"case_{i:06d}", film)
    return out
