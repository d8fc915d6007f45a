"""Shared helpers of the simulator tests: cached small cases and an independent truth check."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

import numpy as np

from aacscore.kauppila import LEVELS, SEGMENTS, WALLS, aac8_wall_score, grade_from_fraction
from aacscore.simulate import SimulatedCase, simulate_case

SPACING = 0.35
CODES = {"anterior": 1, "posterior": 2}


@lru_cache(maxsize=64)
def case(seed: int, index: int, distribution: str = "balanced", **kw: object) -> SimulatedCase:
    """A small simulated case (0.35 mm spacing), cached across tests."""
    return simulate_case(seed, index, distribution=distribution, spacing_mm=SPACING, **kw)


def digest(c: SimulatedCase) -> str:
    """sha256 of a case's stored pixels, labels, calcification mask and annotation JSON."""
    h = hashlib.sha256()
    for a in (c.stored, c.labels, c.calc_mask):
        h.update(a.tobytes())
    h.update(json.dumps(c.annotations(), sort_keys=True).encode())
    return h.hexdigest()


def population_digests(
    cases: list[tuple[int, int, float, str | None]],
) -> list[tuple[str, bool]]:
    """(digest, whether the anatomy records a variety) of ``(seed, index, spacing, variety)``
    population films (variety None: the default)."""
    out = []
    for seed, index, spacing, variety in cases:
        kw = {} if variety is None else {"variety": variety}
        c = simulate_case(seed, index, "population", spacing, **kw)
        out.append((digest(c), "variety" in c.params["anatomy"]))
    return out


def brute_projection(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Arc length of the nearest point on the polyline, brute force over every segment."""
    seg = np.diff(poly, axis=0)
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(seg, axis=1))])
    out = np.empty(len(pts))
    for k, p in enumerate(pts):
        rel = p - poly[:-1]
        t = np.clip((rel * seg).sum(1) / (seg * seg).sum(1), 0, 1)
        foot = poly[:-1] + t[:, None] * seg
        d = np.linalg.norm(foot - p, axis=1)
        j = int(np.argmin(d))
        out[k] = cum[j] + t[j] * np.linalg.norm(seg[j])
    return out


def arc_of_point(point: np.ndarray, poly: np.ndarray) -> tuple[float, float]:
    """(arc length, distance) of a point's projection onto the polyline."""
    s = brute_projection(point[None, :], poly)[0]
    seg = np.diff(poly, axis=0)
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(seg, axis=1))])
    j = min(np.searchsorted(cum, s, side="right") - 1, len(seg) - 1)
    t = (s - cum[j]) / np.linalg.norm(seg[j])
    foot = poly[j] + t * seg[j]
    return float(s), float(np.linalg.norm(foot - point))


def recompute(
    calc: np.ndarray,
    walls: dict[str, np.ndarray],
    bounds: dict[str, np.ndarray],
    corners: dict[str, np.ndarray],
) -> tuple[dict[str, float], dict[str, int], int]:
    """Fractions, grades and AAC-8 recomputed from mask, walls, bounds and corners."""
    fractions: dict[str, float] = {}
    grades: dict[str, int] = {}
    calcified: dict[str, float] = {}
    for w in WALLS:
        ys, xs = np.nonzero(calc == CODES[w])
        s = brute_projection(np.stack([xs, ys], 1).astype(float), walls[w])
        covered = set(np.floor(s).astype(int).tolist())
        for lv in LEVELS:
            seg = f"{lv}_{w}"
            a, _ = arc_of_point(bounds[seg][0], walls[w])
            b, _ = arc_of_point(bounds[seg][1], walls[w])
            lo, hi = min(a, b), max(a, b)
            length = sum(max(0.0, min(k + 1, hi) - max(k, lo)) for k in covered)
            calcified[seg] = length
            fractions[seg] = length / (hi - lo)
            grades[seg] = grade_from_fraction(min(fractions[seg], 1.0))
    aac8 = 0
    for w in WALLS:
        total = 0.0
        for lv in LEVELS:
            c = corners[lv]
            h = (np.linalg.norm(c[0] - c[3]) + np.linalg.norm(c[1] - c[2])) / 2
            total += calcified[f"{lv}_{w}"] / h
        aac8 += aac8_wall_score(total)
    return fractions, grades, aac8


__all__ = ["SEGMENTS", "case", "recompute"]
