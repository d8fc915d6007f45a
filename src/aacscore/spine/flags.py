"""The spine stage's own evidence: the network's confidence and the specific trust flags.

Both spine models (the U-Net of :mod:`aacscore.spine.predict` and the nnU-Net adapter through
:func:`aacscore.spine.result.result_from_label_scores`) call :func:`spine_confidence` where the
class scores are and :func:`spine_flags` on the final geometry; the result carries
``SpineResult.confidence`` and ``SpineResult.flags`` (keys of :data:`aacscore.codes.FLAGS`), and
each flag's reason is added to the human ``SpineResult.warnings``.

Flags (each one means the reading needs a human look):

* ``fracture_suspected``: a body of L1-L4 whose anterior height is less than
  :data:`WEDGE_RATIO` of its posterior height (Genant-style wedge), or whose posterior height is
  less than :data:`CRUSH_RATIO` of the mean posterior height of its neighbours (crush). Heights
  are corner distances (:class:`aacscore.vertebrae.Corner`: AS, PS, PI, AI); the middle height
  of a quadrilateral is the mean of the two, so it adds nothing and is not used.
* ``level_uncertain``: the labels L1-L4 rest on weak evidence: neither T12 nor the sacrum is
  found reliably (:func:`anchor_reliable`), a neighbour of L1-L4 is present but unusable for its
  bound or is spaced like a missed level, L5 is missing while the sacrum is found, or the
  network's margin between a body's level and the next likeliest level is below
  :data:`MIN_LEVEL_MARGIN`, or the network's levels disagree with the count up from the sacrum
  (:mod:`aacscore.spine.levels`, which then relabels the bodies by the count).
* ``orientation_uncertain``: the orientation decision carries a warning (an unsure classifier
  without a clear image cue, or a confident classifier that disagrees with a clear cue), unless
  the classifier is decisive (:data:`ORIENTATION_DECISIVE`).

Not flags: an irregular outline that the hull fit repairs, or a split segmentation of which the
largest part was kept (warnings only: on real films nearly every result has them).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.spine.orientation import OrientationResult
from aacscore.vertebrae import (
    KAUPPILA_LEVELS,
    LABEL_VALUES,
    LEVEL_ORDER,
    Vertebra,
    outer_disc_problem,
)

WEDGE_RATIO = 0.8
"""Anterior / posterior height below which a body is a suspected wedge (Genant grade >= 1)."""
CRUSH_RATIO = 0.8
"""Posterior height / mean posterior height of the neighbours below which a body is crushed."""
MIN_LEVEL_MARGIN = 0.5
"""Least acceptable mean (P(own level) - P(likeliest other level)) over a body's pixels."""
MIN_ANCHOR_PROBABILITY = 0.7
"""T12 or the sacrum counts as found reliably when its mean max-probability reaches this..."""
MIN_ANCHOR_SIZE = 0.4
"""... and its area is at least this share of the neighbouring body's (L1 for T12, L5 or L4
for the sacrum): a sliver at the edge of the field identifies nothing."""
STEP_RATIO_RANGE: tuple[float, float] = (0.6, 1.6)
"""Centre-to-centre distance of T12/L1, L4/L5 and L5/S1 relative to the median L1-L4 step
(as :data:`aacscore.spine.geometry.STEP_RATIO_RANGE`): outside it a level may be missed."""
CONFIDENT_PROBABILITY = 0.9
ORIENTATION_DECISIVE = 0.99
"""A classifier this sure of the side is not overruled by a disagreeing image cue: on the first
100 development films (sim_dev1000) the cue disagreed with a classifier at P >= 0.997 on 14 %
of them, and the classifier was right on every one (the cue fails on some films)."""


@dataclass(frozen=True)
class SpineConfidence:
    """The spine network's evidence for the bodies it labelled (from the class scores).

    ``mean_probability``: mean max-softmax probability over the L1-L4 body pixels;
    ``fraction_confident``: the share of those pixels above :data:`CONFIDENT_PROBABILITY`;
    ``level_probability``: per labelled level (T12..S1), the mean max-probability of its pixels;
    ``level_margin``: per level, the mean of P(own level) minus P(likeliest other level);
    ``level_pixels``: per level, its pixel count on the score grid.
    """

    mean_probability: float
    fraction_confident: float
    level_probability: Mapping[str, float] = field(default_factory=dict)
    level_margin: Mapping[str, float] = field(default_factory=dict)
    level_pixels: Mapping[str, int] = field(default_factory=dict)

    @property
    def min_level_probability(self) -> float:
        """The smallest per-level mean probability of L1-L4 (0 when one is missing)."""
        return min((self.level_probability.get(n, 0.0) for n in KAUPPILA_LEVELS), default=0.0)

    @property
    def min_level_margin(self) -> float:
        """The smallest per-level margin of L1-L4 (0 when one is missing)."""
        return min((self.level_margin.get(n, 0.0) for n in KAUPPILA_LEVELS), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_probability": self.mean_probability,
            "fraction_confident": self.fraction_confident,
            "min_level_probability": self.min_level_probability,
            "min_level_margin": self.min_level_margin,
            "level_probability": dict(self.level_probability),
            "level_margin": dict(self.level_margin),
        }


def _as_probabilities(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Class probabilities from (C, ...) scores: kept when they already are probabilities
    (in [0, 1], summing to 1 over the classes, as nnU-Net's), else a softmax of the logits."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size and float(s.min()) >= 0.0 and float(s.max()) <= 1.0:
        if np.allclose(s.sum(axis=0), 1.0, atol=1e-3):
            return s
    e = np.exp(s - s.max(axis=0, keepdims=True))
    out: npt.NDArray[np.float64] = e / e.sum(axis=0, keepdims=True)
    return out


def spine_confidence(
    scores: npt.ArrayLike, labels: npt.NDArray[np.integer[Any]]
) -> SpineConfidence:
    """:class:`SpineConfidence` from (C, h, w) logits or probabilities (numpy or a CPU torch
    tensor) and the cleaned labels on the same grid (the largest component of each body)."""
    flat = np.ascontiguousarray(labels).reshape(-1)
    idx = np.flatnonzero(flat)
    if idx.size == 0:
        return SpineConfidence(0.0, 0.0)
    arr = np.asarray(scores, dtype=np.float32)
    c = int(arr.shape[0])
    prob = _as_probabilities(arr.reshape(c, -1)[:, idx])  # (C, n) over body pixels only
    own_lab = flat[idx].astype(np.int64)
    cols = np.arange(idx.size)
    pmax = prob.max(axis=0)
    own = prob[own_lab, cols]
    others = prob[1:].copy()  # vertebra classes only: the margin is against another level
    others[own_lab - 1, cols] = -1.0
    margin = own - others.max(axis=0)
    level_p: dict[str, float] = {}
    level_m: dict[str, float] = {}
    level_n: dict[str, int] = {}
    core = np.zeros(own_lab.shape, dtype=bool)
    for name in LEVEL_ORDER:
        m = own_lab == LABEL_VALUES[name]
        n = int(m.sum())
        if n == 0:
            continue
        level_p[name] = float(pmax[m].mean())
        level_m[name] = float(margin[m].mean())
        level_n[name] = n
        if name in KAUPPILA_LEVELS:
            core |= m
    if not bool(core.any()):
        return SpineConfidence(0.0, 0.0, level_p, level_m, level_n)
    pc = pmax[core]
    return SpineConfidence(
        float(pc.mean()),
        float((pc > CONFIDENT_PROBABILITY).mean()),
        level_p,
        level_m,
        level_n,
    )


def fracture_findings(vertebrae: Mapping[str, Vertebra]) -> list[str]:
    """Why a body of L1-L4 looks fractured (see the module docstring); empty when none does."""
    out: list[str] = []
    present = [n for n in LEVEL_ORDER if n in vertebrae and n != "S1"]
    for name in KAUPPILA_LEVELS:
        if name not in vertebrae:
            continue
        v = vertebrae[name]
        post = v.posterior_height
        if post <= 0:
            continue
        ratio = v.anterior_height / post
        if ratio < WEDGE_RATIO:
            out.append(
                f"{name}: anterior height {ratio:.0%} of the posterior height "
                f"(< {WEDGE_RATIO:.0%}: wedge deformity, possible fracture)"
            )
            continue
        i = present.index(name)
        neighbours = [vertebrae[present[j]] for j in (i - 1, i + 1) if 0 <= j < len(present)]
        if neighbours:
            ref = float(np.mean([n.posterior_height for n in neighbours]))
            if ref > 0 and post / ref < CRUSH_RATIO:
                out.append(
                    f"{name}: posterior height {post / ref:.0%} of its neighbours' "
                    f"(< {CRUSH_RATIO:.0%}: crush deformity, possible fracture)"
                )
    return out


def anchor_reliable(
    name: str, vertebrae: Mapping[str, Vertebra], confidence: SpineConfidence | None
) -> bool:
    """Whether T12 or S1 is found reliably enough to identify the levels."""
    if name not in vertebrae:
        return False
    if confidence is not None and name in confidence.level_probability:
        if confidence.level_probability[name] < MIN_ANCHOR_PROBABILITY:
            return False
    ref_names = ("L1",) if name == "T12" else ("L5", "L4")
    ref = next((vertebrae[n] for n in ref_names if n in vertebrae), None)
    if ref is None:
        return True
    a, r = vertebrae[name].area_px, ref.area_px
    if math.isfinite(a) and math.isfinite(r) and r > 0:
        return a >= MIN_ANCHOR_SIZE * r
    if confidence is not None and name in confidence.level_pixels:
        ref_n = next(
            (confidence.level_pixels[n] for n in ref_names if n in confidence.level_pixels), 0
        )
        if ref_n > 0:
            return confidence.level_pixels[name] >= MIN_ANCHOR_SIZE * ref_n
    return True


def level_findings(
    vertebrae: Mapping[str, Vertebra], confidence: SpineConfidence | None = None
) -> list[str]:
    """Why the level labels L1-L4 are uncertain (see the module docstring)."""
    out: list[str] = []
    if not any(anchor_reliable(n, vertebrae, confidence) for n in ("T12", "S1")):
        out.append("level labels uncertain: neither T12 nor the sacrum is found reliably")
    if "S1" in vertebrae and "L5" not in vertebrae:
        out.append("level labels uncertain: the sacrum is found but not L5")
    for name in ("T12/L1", "L4/L5"):
        problem = outer_disc_problem(vertebrae, name)
        if problem is not None:
            out.append(f"level labels uncertain: {problem}")
    core = [vertebrae[n].center for n in KAUPPILA_LEVELS if n in vertebrae]
    if len(core) >= 2:
        med = float(np.median([np.hypot(*(b - a)) for a, b in itertools.pairwise(core)]))
        for a, b in (("T12", "L1"), ("L4", "L5"), ("L5", "S1")):
            if a in vertebrae and b in vertebrae and med > 0:
                r = float(np.hypot(*(vertebrae[b].center - vertebrae[a].center))) / med
                if not STEP_RATIO_RANGE[0] <= r <= STEP_RATIO_RANGE[1]:
                    out.append(
                        f"level labels uncertain: {a}/{b} centre distance x{r:.2f} of the "
                        "median L1-L4 step (a level may be missed)"
                    )
    if confidence is not None:
        for name in KAUPPILA_LEVELS:
            m = confidence.level_margin.get(name)
            if m is not None and m < MIN_LEVEL_MARGIN:
                out.append(
                    f"level labels uncertain: {name} margin {m:.2f} over the next likeliest "
                    f"level (< {MIN_LEVEL_MARGIN:g})"
                )
    return out


def orientation_findings(orientation: OrientationResult) -> list[str]:
    """The orientation decision's warnings (none for a side given by the caller, and for a
    classifier at least :data:`ORIENTATION_DECISIVE` sure only its disagreement with the sacrum:
    its disagreement with the posterior cue is the cue's failure, see there)."""
    if orientation.method == "given":
        return []
    p = orientation.probability_right
    if orientation.method == "classifier" and max(p, 1.0 - p) >= ORIENTATION_DECISIVE:
        return list(orientation.warnings) if orientation.disagrees_with_sacrum else []
    return list(orientation.warnings)


def spine_flags(
    vertebrae: Mapping[str, Vertebra],
    orientation: OrientationResult,
    confidence: SpineConfidence | None = None,
    level_notes: Sequence[str] = (),
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(flags, their reasons) of a spine reading; flags are keys of :data:`aacscore.codes.FLAGS`.

    ``level_notes``: further ``level_uncertain`` reasons found upstream (the count from the
    sacrum overriding the network, :mod:`aacscore.spine.levels`)."""
    flags: list[str] = []
    reasons: list[str] = []
    for flag, found in (
        ("orientation_uncertain", orientation_findings(orientation)),
        ("level_uncertain", [*level_notes, *level_findings(vertebrae, confidence)]),
        ("fracture_suspected", fracture_findings(vertebrae)),
    ):
        if found:
            flags.append(flag)
            reasons += found
    return tuple(flags), tuple(reasons)
