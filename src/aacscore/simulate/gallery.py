"""Contact sheet of simulated cases (``gallery.png``) for eyeballing realism and variety."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from aacscore.simulate.case import SimulatedCase, simulate_case


def _tile(case: SimulatedCase, height: int, overlay: bool) -> Image.Image:
    img = Image.fromarray(np.rint(case.image * 255).astype(np.uint8)).convert("RGB")
    if overlay:
        draw = ImageDraw.Draw(img)
        for wall, colour in (("anterior", (255, 80, 80)), ("posterior", (80, 160, 255))):
            pts = [tuple(p) for p in case.walls[wall].tolist()]
            draw.line(pts, fill=colour, width=max(1, img.height // 600))
        calc = case.calc_mask > 0
        arr = np.asarray(img).copy()
        arr[calc] = (arr[calc] * 0.3 + np.array([255, 255, 0]) * 0.7).astype(np.uint8)
        img = Image.fromarray(arr)
    scale = height / img.height
    return img.resize((max(1, round(img.width * scale)), height), Image.Resampling.LANCZOS)


def write_gallery(
    out_dir: str | Path,
    seed: int = 0,
    n: int = 12,
    distribution: str = "balanced",
    tile_height: int = 420,
    spacing_mm: float | None = 0.3,
    overlay: bool = False,
) -> Path:
    """Render ``n`` cases and write ``gallery.png`` (AAC-24 written under each tile)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tiles: list[tuple[Image.Image, str]] = []
    for i in range(n):
        case = simulate_case(seed, i, distribution=distribution, spacing_mm=spacing_mm)
        label = f"#{i} AAC-24 {case.truth.aac24}  AAC-8 {case.truth.aac8}  {case.anterior_side}"
        tiles.append((_tile(case, tile_height, overlay), label))
    cols = min(n, 6)
    rows = math.ceil(n / cols)
    cell_w = max(t.width for t, _ in tiles) + 8
    cell_h = tile_height + 30
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    for k, (tile, label) in enumerate(tiles):
        x, y = (k % cols) * cell_w + 4, (k // cols) * cell_h + 2
        sheet.paste(tile, (x, y))
        draw.text((x, y + tile_height + 4), label, fill=(255, 255, 255), font=font)
    path = out / "gallery.png"
    sheet.save(path)
    return path
