"""Level identification anchored on anatomy: count the bodies up from the sacrum.

The U-Net labels every body with its level directly, which on unfamiliar films can slip by a
level at the top of the spine (two labels on one body, T12 on L1) while the bodies themselves are
found well. The sacrum is the anatomical anchor a reader counts from: the first free body above
it is L5, the next L4, and so on. :func:`count_from_sacrum` finds the bodies as the connected
components of the union of the body classes (T12-L5), orders them along the spine, and names them
from the sacrum upwards. When the count is trustworthy (a sacrum found reliably, bodies of
similar size, regular steps) and it disagrees with the network's own labels, the network's class
scores are relabelled by the count (:func:`relabel_scores`: the body-versus-background boundary is
kept, only which level a body is changes) and the disagreement is reported, so the reading is
flagged ``level_uncertain`` (transitional vertebrae make the two counts differ on real spines).

Everything here works on canonical-frame class scores (C, h, w) at the network's resolution.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from aacscore.vertebrae import LABEL_VALUES

BODY_NAMES_CAUDAL_FIRST: tuple[str, ...] = ("L5", "L4", "L3", "L2", "L1", "T12")
"""Names given to the bodies above the sacrum, nearest first."""
MIN_COMPONENT_SHARE = 0.25
"""A component smaller than this share of the median body is a fragment, not a body."""
AREA_RANGE: tuple[float, float] = (0.5, 1.5)
"""Every counted body's area relative to the median body (outside: merged or split bodies)."""
STEP_RANGE: tuple[float, float] = (0.7, 1.4)
"""Every step between consecutive centres relative to the median step (outside: a body missed)."""
MIN_SACRUM_PROBABILITY = 0.7
"""Mean probability of the sacrum class over its component for the sacrum to anchor the count."""
MIN_SACRUM_SHARE = 0.4
"""Sacrum component area relative to the median body for it to anchor the count."""
_BODY_VALUES = tuple(LABEL_VALUES[n] for n in BODY_NAMES_CAUDAL_FIRST)
_S1 = LABEL_VALUES["S1"]


@dataclass(frozen=True)
class LevelCount:
    """Outcome of counting the bodies up from the sacrum.

    ``counted``: whether the count was trustworthy enough to use; ``reason`` why not, if not.
    ``network``: the network's majority level of each counted body (caudal first, at most six);
    ``anchored``: the names the count gives them; ``agrees``: whether the two are the same;
    ``above_t12``: further bodies above the sixth (T11...: not a segmented class, dropped when
    the count overrides the network).
    """

    counted: bool
    reason: str | None = None
    network: tuple[str, ...] = ()
    anchored: tuple[str, ...] = ()
    above_t12: int = 0

    @property
    def agrees(self) -> bool:
        return self.network == self.anchored

    @property
    def relabelled(self) -> bool:
        """Whether the count overrides the network's labels."""
        return self.counted and not self.agrees

    def note(self) -> str | None:
        """The human reason for ``level_uncertain`` when the count overrides the network."""
        if not self.relabelled:
            return None
        changes = [f"{n}->{a}" for n, a in zip(self.network, self.anchored, strict=True) if n != a]
        return (
            "level labels uncertain: the network's levels disagree with the count from the "
            f"sacrum (relabelled {', '.join(reversed(changes))}); check the levels"
        )


def _mean_probability(
    scores: npt.NDArray[np.float32], value: int, mask: npt.NDArray[np.bool_]
) -> float:
    s = scores[:, mask].astype(np.float64)
    e = np.exp(s - s.max(axis=0, keepdims=True))
    return float((e[value] / e.sum(axis=0)).mean())


def count_from_sacrum(
    scores: npt.NDArray[np.float32],
) -> tuple[LevelCount, npt.NDArray[np.int32], list[int]]:
    """Count the bodies up from the sacrum on (C, h, w) logits (canonical frame, cranial up).

    Returns the :class:`LevelCount`, the component label image and the component index (into
    that image) of each counted body, caudal first.
    """
    arg = scores.argmax(axis=0)
    body = np.isin(arg, _BODY_VALUES)
    comp, n = ndimage.label(body)
    empty: tuple[LevelCount, npt.NDArray[np.int32], list[int]] = (
        LevelCount(False, "no bodies"),
        comp.astype(np.int32),
        [],
    )
    if n == 0:
        return empty
    idx = np.arange(1, n + 1)
    areas = np.asarray(ndimage.sum(body, comp, idx), dtype=np.float64)
    big = np.sort(areas)[::-1][:5]
    ref = float(np.median(big))
    keep = [int(i) for i, a in zip(idx, areas, strict=True) if a >= MIN_COMPONENT_SHARE * ref]
    s1 = arg == _S1
    if not s1.any():
        return LevelCount(False, "no sacrum"), comp.astype(np.int32), []
    s1_comp, ns = ndimage.label(s1)
    s1_areas = np.asarray(ndimage.sum(s1, s1_comp, np.arange(1, ns + 1)), dtype=np.float64)
    s1_mask = s1_comp == int(np.argmax(s1_areas)) + 1
    if s1_areas.max() < MIN_SACRUM_SHARE * ref:
        return LevelCount(False, "sacrum too small"), comp.astype(np.int32), []
    if _mean_probability(scores, _S1, s1_mask) < MIN_SACRUM_PROBABILITY:
        return LevelCount(False, "sacrum not found reliably"), comp.astype(np.int32), []
    centres = {
        i: np.array(ndimage.center_of_mass(body, comp, i), dtype=np.float64)[::-1] for i in keep
    }
    s1_c = np.array(ndimage.center_of_mass(s1_mask), dtype=np.float64)[::-1]
    # spine axis through the body centres, pointing cranially (up, y decreasing)
    pts = np.array([centres[i] for i in keep])
    if len(pts) >= 2:
        d = np.linalg.svd(pts - pts.mean(axis=0), full_matrices=False)[2][0]
    else:
        d = np.array([0.0, -1.0])
    if d[1] > 0:
        d = -d
    proj = {i: float((centres[i] - s1_c) @ d) for i in keep}
    above = sorted((i for i in keep if proj[i] > 0), key=proj.__getitem__)
    if len(above) < 4:
        return LevelCount(False, "fewer than four bodies above the sacrum"), comp, []
    extra = above[len(BODY_NAMES_CAUDAL_FIRST) :]
    above = above[: len(BODY_NAMES_CAUDAL_FIRST)]
    rel = areas[np.array(above) - 1] / float(np.median(areas[np.array(above) - 1]))
    if rel.min() < AREA_RANGE[0] or rel.max() > AREA_RANGE[1]:
        return LevelCount(False, "bodies of irregular size (merged or split)"), comp, []
    chain = [s1_c, *(centres[i] for i in above)]
    steps = np.array([np.hypot(*(b - a)) for a, b in itertools.pairwise(chain)])
    med = float(np.median(steps[1:]))
    if med <= 0 or (steps / med).min() < STEP_RANGE[0] or (steps / med).max() > STEP_RANGE[1]:
        return LevelCount(False, "irregular steps between bodies"), comp, []
    names = {v: n for n, v in LABEL_VALUES.items()}
    network: list[str] = []
    for i in above:
        vals, counts = np.unique(arg[comp == i], return_counts=True)
        network.append(names[int(vals[int(np.argmax(counts))])])
    anchored = BODY_NAMES_CAUDAL_FIRST[: len(above)]
    return (
        LevelCount(True, None, tuple(network), tuple(anchored), len(extra)),
        comp.astype(np.int32),
        above + extra,
    )


def relabel_scores(
    scores: npt.NDArray[np.float32],
    comp: npt.NDArray[np.int32],
    bodies: list[int],
    names: tuple[str, ...],
    reach: int = 3,
) -> npt.NDArray[np.float32]:
    """Scores in which body ``bodies[k]`` (a component of ``comp``) is level ``names[k]``.

    Within ``reach`` pixels of each body (nearest body wins) the named level's score becomes the
    largest body-class score and every other body class drops below the lowest score, so the
    body-versus-background boundary is unchanged; a body named ``"background"`` loses all its
    body-class scores. Bodies of ``comp`` not listed keep their scores.
    """
    if len(bodies) != len(names):
        raise ValueError(f"{len(bodies)} bodies but {len(names)} names")
    out = np.array(scores, dtype=np.float32, copy=True)
    counted = np.zeros(comp.shape, dtype=np.int32)
    for k, i in enumerate(bodies, start=1):
        counted[comp == i] = k
    dist, (iy, ix) = ndimage.distance_transform_edt(counted == 0, return_indices=True)
    owner = counted[iy, ix]
    owner[dist > reach] = 0
    chans = list(_BODY_VALUES)
    best = out[chans].max(axis=0)
    low = out.min(axis=0) - 10.0
    for k, name in enumerate(names, start=1):
        region = owner == k
        if not region.any():
            continue
        v = LABEL_VALUES.get(name, -1)
        for c in chans:
            out[c][region] = best[region] if c == v else low[region]
    return out


def anchor_levels(
    scores: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], LevelCount]:
    """The scores relabelled by the count from the sacrum when it overrides the network (else
    the scores unchanged), and the count."""
    scores = np.asarray(scores, dtype=np.float32)
    count, comp, bodies = count_from_sacrum(scores)
    if not count.relabelled:
        return scores, count
    names = (*count.anchored, *(["background"] * count.above_t12))
    return relabel_scores(scores, comp, bodies, names), count


__all__ = [
    "BODY_NAMES_CAUDAL_FIRST",
    "LevelCount",
    "anchor_levels",
    "count_from_sacrum",
    "relabel_scores",
]
