"""Tiny synthetic bands, band sets and simulator-like folders for the score tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image
from skimage.draw import line_aa, polygon

from aacscore.aorta import BandGeometry
from aacscore.kauppila import SEGMENTS, grade_from_fraction
from aacscore.score.network import NetworkConfig
from aacscore.training.score_data import BandSet

TINY_GEOMETRY = BandGeometry(rows_per_level=8, behind_mm=8.0, front_mm=24.0, mm_per_col=1.0)
TINY_NET = NetworkConfig(layers=(1, 1, 1, 1), block_inplanes=(4, 8, 8, 8), dropout=0.0)


def tiny_band(fractions: npt.ArrayLike, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """A 32 x 32 band: noise, a bright body on the left, wall plaques as bright stripes."""
    h, w = TINY_GEOMETRY.shape
    band = 0.3 + 0.02 * rng.standard_normal((h, w))
    band[:, :6] += 0.3
    f = np.asarray(fractions, dtype=np.float64).reshape(4, 2)
    rpl = TINY_GEOMETRY.rows_per_level
    for lv in range(4):
        for wall, col in ((0, 26), (1, 11)):  # anterior wall further out
            n = round(f[lv, wall] * rpl)
            if n:
                r0 = lv * rpl + int(rng.integers(0, rpl - n + 1))
                band[r0 : r0 + n, col : col + 2] += 0.5
    return np.clip(band, 0, 1).astype(np.float32)


def tiny_bandset(n: int, seed: int = 0) -> BandSet:
    """``n`` tiny bands with random fractions and their exact grades."""
    rng = np.random.default_rng(seed)
    fr = rng.choice([0.0, 0.25, 0.5, 0.9], size=(n, 8), p=[0.4, 0.2, 0.2, 0.2])
    grades = np.vectorize(grade_from_fraction)(fr).astype(np.float32)
    bands = np.stack([tiny_band(fr[i], rng) for i in range(n)]).astype(np.float16)
    return BandSet(
        bands=bands,
        grades=grades,
        fractions=fr.astype(np.float32),
        totals=grades.sum(axis=1),
        level_length_mm=np.full((n, 4), 37.0, dtype=np.float32),
        vertebral_height_mm=np.full((n, 4), 28.0, dtype=np.float32),
        case_ids=tuple(f"case_{i:03d}" for i in range(n)),
        copy_index=np.zeros(n, dtype=np.int16),
        geometry=TINY_GEOMETRY,
        meta={"source": "test"},
    )


def write_fake_simulator_folder(
    root: Path, n: int, seed: int = 0, spacing: float = 0.4
) -> list[tuple[int, ...]]:
    """Simulator-like folder: case_XXXXXX.png/.json + truth.csv; returns the grades."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (520, 420)
    rows = []
    all_grades = []
    for i in range(n):
        side = "right" if i % 2 == 0 else "left"
        img = np.full(shape, 0.25, dtype=np.float64) + 0.02 * rng.standard_normal(shape)
        corners: dict[str, list[list[float]]] = {}
        y = 60.0
        x_ant = 200.0
        h_px = 28.0 / spacing
        d_px = 35.0 / spacing
        gap = 9.0 / spacing
        for name in ("T12", "L1", "L2", "L3", "L4", "L5"):
            c = np.array(
                [[x_ant, y], [x_ant - d_px, y], [x_ant - d_px, y + h_px], [x_ant, y + h_px]]
            )
            rr, cc = polygon(c[:, 1], c[:, 0], shape=shape)
            img[rr, cc] = 0.55
            if side == "left":
                c[:, 0] = shape[1] - 1 - c[:, 0]
            corners[name] = c.tolist()
            y += h_px + gap
        fractions = rng.choice([0.0, 0.3, 0.6, 0.9], size=8, p=[0.5, 0.2, 0.15, 0.15])
        segs = {}
        for j, s in enumerate(SEGMENTS):
            lv = j // 2
            wall_x = x_ant + (4.0 if s.endswith("posterior") else 18.0) / spacing
            top = corners[f"L{lv + 1}"][0][1] - gap / 2
            length = (h_px + gap) * fractions[j]
            if length > 0:
                r0, c0, r1, c1 = int(top), int(wall_x), int(top + length), int(wall_x)
                rr, cc, val = line_aa(r0, c0, r1, c1)
                ok = (rr < shape[0]) & (cc < shape[1])
                img[rr[ok], cc[ok]] = np.maximum(img[rr[ok], cc[ok]], 0.9 * val[ok])
                img[rr[ok], cc[ok] + 1] = np.maximum(img[rr[ok], cc[ok] + 1], 0.9 * val[ok])
            segs[s] = {"fraction": float(fractions[j]), "grade": grade_from_fraction(fractions[j])}
        if side == "left":
            img = img[:, ::-1]
        name = f"case_{i:06d}"
        png = (np.clip(img, 0, 1) * 65535).astype(np.uint16)
        Image.fromarray(png).save(root / f"{name}.png")
        (root / f"{name}.json").write_text(
            json.dumps(
                {
                    "case": name,
                    "file": f"{name}.png",
                    "spacing_mm": [spacing, spacing],
                    "anterior_side": side,
                    "vertebrae": {k: {"corners": v} for k, v in corners.items()},
                    "segments": segs,
                }
            )
        )
        grades = tuple(segs[s]["grade"] for s in SEGMENTS)
        all_grades.append(grades)
        rows.append(f"{name},{name}.png," + ",".join(map(str, grades)) + f",{sum(grades)},0,x")
    header = "case,file," + ",".join(SEGMENTS) + ",aac24,aac8,group"
    (root / "truth.csv").write_text("\n".join([header, *rows]) + "\n")
    return all_grades


def approx_equal_history(a: list[dict[str, float]], b: list[dict[str, float]]) -> bool:
    """Histories equal except for timings."""
    for ra, rb in zip(a, b, strict=True):
        for k, v in ra.items():
            if k == "seconds":
                continue
            w = rb[k]
            if isinstance(v, float) and isinstance(w, float):
                if not math.isclose(v, w, rel_tol=1e-6, abs_tol=1e-9):
                    return False
            elif v != w:
                return False
    return True
