"""Overlay picture (RGB array or PNG) of one scored film: vertebrae, bounds, band, grades."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from aacscore.io.types import Radiograph
from aacscore.kauppila import LEVELS
from aacscore.results import Result

MAX_SIDE = 1400
_LEVEL_COLOURS = {
    "T12": (150, 150, 255),
    "L1": (0, 200, 255),
    "L2": (0, 255, 120),
    "L3": (255, 230, 0),
    "L4": (255, 140, 0),
    "L5": (255, 60, 200),
    "S1": (180, 120, 255),
}
# The two walls are drawn as strips at typical positions in front of the anterior vertebral
# margin (posterior wall ~3 mm, anterior wall ~25 mm); the model grades the band, it does not
# trace the walls, so the strips are a key to the grades, not a wall tracing.
_WALL_OFFSET_MM = {"posterior": 3.0, "anterior": 25.0}


def grade_colour(grade: float) -> tuple[int, int, int]:
    """Green (0) -> yellow (1.5) -> red (3)."""
    t = float(np.clip(grade / 3.0, 0.0, 1.0))
    if t < 0.5:
        return (int(510 * t), 200, 0)
    return (255, int(200 * (2 - 2 * t)), 0)


def render_overlay(rad: Radiograph, result: Result, path: str | Path) -> Path:
    """Draw the result on a downsampled copy of the film and save it as PNG."""
    return save_overlay(overlay_image(rad, result), path)


def save_overlay(rgb: npt.NDArray[np.uint8], path: str | Path) -> Path:
    """Save an overlay picture from :func:`overlay_image` as PNG (folders created)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(out)
    return out


def overlay_image(rad: Radiograph, result: Result) -> npt.NDArray[np.uint8]:
    """The result drawn on a downsampled copy of the film: (rows, cols, 3) RGB uint8."""
    px = np.clip(rad.pixels, 0.0, 1.0)
    scale = min(1.0, MAX_SIDE / max(px.shape))
    img = Image.fromarray((px * 255).astype(np.uint8), mode="L").convert("RGB")
    if scale < 1.0:
        img = img.resize((round(px.shape[1] * scale), round(px.shape[0] * scale)), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=max(12, img.width // 60))
    details: dict[str, Any] = dict(result.details)
    spine = details.get("spine") or {}
    band = details.get("band") or {}
    lw = max(1, img.width // 500)

    def s(p: Any) -> tuple[float, float]:
        return (float(p[0]) * scale, float(p[1]) * scale)

    def corners(v: dict[str, Any]) -> list[Any]:
        c = v["corners"]
        return list(c.values()) if isinstance(c, dict) else list(c)

    for name, v in (spine.get("vertebrae") or {}).items():
        quad = [s(c) for c in corners(v)]
        col = _LEVEL_COLOURS.get(name, (255, 255, 255))
        draw.polygon(quad, outline=col, width=lw)
        cx = sum(q[0] for q in quad) / 4
        cy = sum(q[1] for q in quad) / 4
        draw.text((cx, cy), name, fill=col, font=font, anchor="mm")
    outline = band.get("outline_film_xy")
    if outline:
        draw.polygon([s(p) for p in outline], outline=(0, 255, 255), width=lw)
    spacing = band.get("spacing_mm")
    mm_px = float(np.mean(spacing)) if spacing else None
    for bname, b in (spine.get("bounds") or {}).items():
        p = np.asarray(b["point"], dtype=float)
        d = np.asarray(b["direction"], dtype=float)
        length = (60.0 / mm_px) if mm_px else 200.0
        draw.line([s(p), s(p + d * length)], fill=(255, 255, 255), width=lw)
        draw.text(s(p + d * length), bname, fill=(255, 255, 255), font=font, anchor="lm")
    if result.grades is not None and mm_px:
        verts = spine.get("vertebrae") or {}
        bounds = spine.get("bounds") or {}
        order = ("T12", "L1", "L2", "L3", "L4", "L5")
        for lv in LEVELS:
            i = order.index(lv)
            up = bounds.get(f"{order[i - 1]}/{lv}")
            lo = bounds.get(f"{lv}/{order[i + 1]}")
            if up is None or lo is None or lv not in verts:
                continue
            for wall, off in _WALL_OFFSET_MM.items():
                g = float(result.grades[f"{lv}_{wall}"])
                a = np.asarray(up["point"]) + np.asarray(up["direction"]) * (off / mm_px)
                b = np.asarray(lo["point"]) + np.asarray(lo["direction"]) * (off / mm_px)
                # start at the anterior margin rather than the disc midpoint
                c = np.asarray(corners(verts[lv]), dtype=float)
                depth = np.hypot(*(c[0] - c[1]))
                a = a + np.asarray(up["direction"]) * depth / 2
                b = b + np.asarray(lo["direction"]) * depth / 2
                draw.line([s(a), s(b)], fill=grade_colour(g), width=3 * lw)
                mid = (s(a)[0] / 2 + s(b)[0] / 2, s(a)[1] / 2 + s(b)[1] / 2)
                draw.text(mid, f"{g:.1f}", fill=grade_colour(g), font=font, anchor="mm")
    title = _title(result)
    box = draw.textbbox((8, 8), title, font=font)
    draw.rectangle((box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4), fill=(0, 0, 0))
    draw.text((8, 8), title, fill=(255, 255, 255), font=font)
    return np.asarray(img, dtype=np.uint8)


def _title(result: Result) -> str:
    if result.aac24 is None:
        return f"{result.file}: {result.status} {result.error}"
    sd = f" ± {result.aac24_sd:.1f}" if result.aac24_sd is not None else ""
    lc = " (low confidence)" if result.low_confidence else ""
    aac8 = f"  AAC-8 {result.aac8:.1f}" if result.aac8 is not None else ""
    return f"AAC-24 {result.aac24:.1f}{sd}{aac8}  group: {result.group}{lc}"
