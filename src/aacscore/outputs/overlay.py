"""Overlay picture (RGB array or PNG) of one scored film: vertebrae, bounds, band, grades."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from aacscore._files import atomic_write_bytes
from aacscore._version import __version__
from aacscore.io.inputs import OUTPUT_MARK, PNG_SOFTWARE_KEY
from aacscore.io.types import Radiograph
from aacscore.kauppila import LEVELS
from aacscore.outputs.case_json import band_outline
from aacscore.results import Result
from aacscore.vertebrae import level_bound_names

MAX_SIDE = 1400
"""Longest side of the overlay picture in pixels (the film is downsampled to it)."""
BOUND_COLOUR = (255, 255, 255)
BOUND_LENGTH_MM = 60.0
"""Drawn length of each bound anterior of the disc midpoint (when the scale is known)."""
BOUND_LENGTH_PX = 200.0
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


def save_overlay(rgb: npt.NDArray[np.uint8], path: str | Path) -> Path:
    """Save an overlay picture from :func:`overlay_image` as PNG (atomically, folders created).

    The PNG carries the text chunk ``Software=aacscore <version>``: collecting inputs skips it
    (an overlay is never scored as a film)."""
    buf = io.BytesIO()
    info = PngInfo()
    info.add_text(PNG_SOFTWARE_KEY, f"{OUTPUT_MARK} {__version__}")
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG", pnginfo=info)
    return atomic_write_bytes(path, buf.getvalue())


def overlay_image(rad: Radiograph, result: Result) -> npt.NDArray[np.uint8]:
    """The result drawn on a downsampled copy of the film: (rows, cols, 3) RGB uint8.

    Draws the vertebrae and the Kauppila bounds of ``result.stages.spine`` (the bounds the band
    was cut along), the band outline, the segment grades and a title.
    """
    px = np.clip(rad.pixels, 0.0, 1.0)
    scale = min(1.0, MAX_SIDE / max(px.shape))
    img = Image.fromarray((px * 255).astype(np.uint8), mode="L").convert("RGB")
    if scale < 1.0:
        img = img.resize((round(px.shape[1] * scale), round(px.shape[0] * scale)), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=max(12, img.width // 60))
    lw = max(1, img.width // 500)
    stages = result.stages
    spine = stages.spine if stages is not None else None
    band = stages.band if stages is not None else None

    def s(p: npt.ArrayLike) -> tuple[float, float]:
        q = np.asarray(p, dtype=float)
        return (float(q[0]) * scale, float(q[1]) * scale)

    vertebrae = spine.vertebrae if spine is not None else {}
    bounds = spine.bounds if spine is not None else {}
    for name, v in vertebrae.items():
        quad = [s(c) for c in v.corners]
        col = _LEVEL_COLOURS.get(name, (255, 255, 255))
        draw.polygon(quad, outline=col, width=lw)
        cx = sum(q[0] for q in quad) / 4
        cy = sum(q[1] for q in quad) / 4
        draw.text((cx, cy), name, fill=col, font=font, anchor="mm")
    if band is not None:
        draw.polygon([s(p) for p in band_outline(band)], outline=(0, 255, 255), width=lw)
    mm_px = float(np.mean(band.spacing_mm)) if band is not None else None
    length = (BOUND_LENGTH_MM / mm_px) if mm_px else BOUND_LENGTH_PX
    for bname, b in bounds.items():
        end = b.at(length)
        draw.line([s(b.point), s(end)], fill=BOUND_COLOUR, width=lw)
        draw.text(s(end), bname, fill=BOUND_COLOUR, font=font, anchor="lm")
    if result.grades is not None and mm_px:
        for lv in LEVELS:
            up_name, lo_name = level_bound_names(lv)
            up, lo = bounds.get(up_name), bounds.get(lo_name)
            if up is None or lo is None or lv not in vertebrae:
                continue
            # start at the anterior margin rather than the disc midpoint
            v = vertebrae[lv]
            depth = float(np.linalg.norm(v.anterior_superior - v.posterior_superior))
            for wall, off in _WALL_OFFSET_MM.items():
                g = float(result.grades[f"{lv}_{wall}"])
                top = s(up.at(off / mm_px + depth / 2))
                bottom = s(lo.at(off / mm_px + depth / 2))
                draw.line([top, bottom], fill=grade_colour(g), width=3 * lw)
                mid = ((top[0] + bottom[0]) / 2, (top[1] + bottom[1]) / 2)
                draw.text(mid, f"{g:.1f}", fill=grade_colour(g), font=font, anchor="mm")
    title = _title(result)
    box = draw.textbbox((8, 8), title, font=font)
    draw.rectangle((box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4), fill=(0, 0, 0))
    draw.text((8, 8), title, fill=(255, 255, 255), font=font)
    return np.asarray(img, dtype=np.uint8)


def _title(result: Result) -> str:
    if result.aac24 is None:
        return f"{result.file}: {result.status.value} {result.error}"
    sd = f" ± {result.aac24_sd:.1f}" if result.aac24_sd is not None else ""
    lc = " (low confidence)" if result.low_confidence else ""
    aac8 = f"  AAC-8 {result.aac8:.1f}" if result.aac8 is not None else ""
    flags = f"  [{result.status.value}: {', '.join(result.qc_flags)}]" if result.qc_flags else ""
    return f"AAC-24 {result.aac24:.1f}{sd}{aac8}  group: {result.group}{lc}{flags}"
