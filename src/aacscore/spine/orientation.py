"""Which side is anterior, and the mapping between original and canonical frames.

Canonical orientation: anterior to the LEFT, cranial up. About a third of lateral films are
mirrored (anterior to the right). Three independent cues are combined:

* the sacrum (:func:`sacrum_cue`): below the lordotic lumbar spine the sacrum slopes backwards,
  so its body lies posterior to the line through the centres of L4 and L5. It is read from the
  segmentation (the U-Net is trained on both orientations, so its bodies do not depend on the
  side decided), not from textures particular to one renderer, but it is only as good as that
  segmentation;
* a tiny classifier (:class:`aacscore.spine.network.OrientationNet`) trained on the same films
  with random mirroring; at inference its logit is made exactly antisymmetric,
  ``(f(x) - f(mirror(x))) / 2``, so a film and its mirror image always get opposite answers;
* an image cue from the body segmentation: the posterior elements (pedicles, facets, laminae)
  are bone and lie behind the bodies, the soft tissue of the abdomen lies in front, so the band
  behind the bodies is brighter than the band in front.

A confident classifier decides; an unsure one defers to a clear sacrum, else to a clear
posterior cue. A confident classifier that disagrees with a clear sacrum is reported as a warning
(always flagged ``orientation_uncertain``), one that disagrees with the posterior cue too unless
it is decisive (the posterior cue fails on some films). On the second rendering family, where
the shipped segmentation is poor, the sacrum cue was right on 14 of 18 films and the classifier
on 19 of 20, so the sacrum does not overrule a confident classifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.backend import Net, as_net
from aacscore.spine.weights import ORIENTATION_OUTPUTS
from aacscore.vertebrae import ANTERIOR_SIDES, LABEL_VALUES, REQUIRED_LEVELS, Side

CLASSIFIER_CONFIDENT = 0.9
"""Probability above which the classifier alone decides."""
CUE_CLEAR = 0.5
"""Cue magnitude (in image standard deviations) above which the image cue counts as clear."""
SACRUM_CLEAR = 0.1
"""Sacrum offset from the L4-L5 axis (in L4-L5 centre distances) above which it decides the side
(on 300 development films, sim_dev1000: 273 of the 296 with L4, L5 and the sacrum beyond it, all
right; the rest fall back to the classifier)."""


@dataclass(frozen=True)
class CanonicalFrame:
    """Mapping between a film's original pixels and its canonical (anterior-left) version.

    Mirroring is the only change (the in-plane rotation is kept); it is its own inverse.
    Points are ``(x, y)`` with pixel centres at integers: ``x' = width - 1 - x``.
    """

    shape: tuple[int, int]
    anterior_side: Side

    def __post_init__(self) -> None:
        if self.anterior_side not in ANTERIOR_SIDES:
            raise ValueError(f"anterior_side must be 'left' or 'right', got {self.anterior_side!r}")

    @property
    def mirrored(self) -> bool:
        return self.anterior_side == Side.RIGHT

    def _points(self, pts: npt.ArrayLike) -> npt.NDArray[np.float64]:
        p = np.array(pts, dtype=np.float64)
        if self.mirrored:
            p[..., 0] = (self.shape[1] - 1) - p[..., 0]
        return p

    def _dirs(self, d: npt.ArrayLike) -> npt.NDArray[np.float64]:
        v = np.array(d, dtype=np.float64)
        if self.mirrored:
            v[..., 0] = -v[..., 0]
        return v

    def to_canonical_points(self, pts: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Original ``(..., 2)`` points -> canonical frame."""
        return self._points(pts)

    def to_original_points(self, pts: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Canonical ``(..., 2)`` points -> original pixels."""
        return self._points(pts)

    def to_canonical_directions(self, d: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return self._dirs(d)

    def to_original_directions(self, d: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return self._dirs(d)

    def to_canonical_image(self, img: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Original image (rows, cols[, ...]) -> canonical (a view when no mirroring)."""
        return np.ascontiguousarray(img[:, ::-1]) if self.mirrored else img

    def to_original_image(self, img: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Canonical image -> original orientation."""
        return self.to_canonical_image(img)


@dataclass(frozen=True)
class OrientationResult:
    """Decided anterior side, the classifier's P(anterior right), the posterior cue, the sacrum
    cue (:func:`sacrum_cue`, in the original frame) and how it was decided."""

    anterior_side: Side
    probability_right: float
    cue: float | None
    method: str
    warnings: tuple[str, ...] = ()
    sacrum: float | None = None

    @property
    def disagrees_with_sacrum(self) -> bool:
        """A clear sacrum cue points to the other side than the one decided."""
        s = side_of_sacrum(self.sacrum)
        return s is not None and s != self.anterior_side

    @property
    def confidence(self) -> float:
        """Probability of the decided side according to the classifier."""
        p = self.probability_right
        return p if self.anterior_side == Side.RIGHT else 1.0 - p


def classifier_probability_right(net: Net | Any, image: npt.ArrayLike) -> float:
    """Antisymmetrised P(anterior right) for a normalised (1, 1, h, w) input; ``net`` is a
    :class:`~aacscore.backend.Net` or an :class:`~aacscore.spine.network.OrientationNet`."""
    x = np.asarray(image, dtype=np.float32)
    batch = np.concatenate([x, x[..., ::-1]], axis=0)
    logits = as_net(net, ORIENTATION_OUTPUTS)(batch)[ORIENTATION_OUTPUTS[0]].reshape(-1)
    z = 0.5 * (float(logits[0]) - float(logits[1]))
    return 1.0 / (1.0 + math.exp(-z))


def posterior_cue(
    image: npt.NDArray[np.floating[Any]],
    labels: npt.NDArray[np.integer[Any]],
    levels: tuple[str, ...] = REQUIRED_LEVELS,
    near: float = 0.1,
    far: float = 0.6,
) -> float | None:
    """Brightness right of the bodies minus left of them, in image standard deviations.

    For every row of each body, the band from ``near`` to ``far`` body depths beyond its left
    and right edges is sampled. Positive: the right side is brighter, i.e. posterior elements on
    the right, anterior on the LEFT. ``None`` when no body is labelled.
    """
    img = np.asarray(image, dtype=np.float64)
    _h, w = img.shape
    left: list[float] = []
    right: list[float] = []
    for name in levels:
        rows, cols = np.nonzero(labels == LABEL_VALUES[name])
        if rows.size == 0:
            continue
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
        uniq, start = np.unique(rows, return_index=True)
        xmin = np.minimum.reduceat(cols, start)
        xmax = np.maximum.reduceat(cols, start)
        for r, a, b in zip(uniq, xmin, xmax, strict=True):
            d = float(b - a + 1)
            if d < 3:
                continue
            la, lb = round(a - far * d), round(a - near * d)
            ra, rb = round(b + near * d), round(b + far * d)
            if la >= 0 and lb > la:
                left.extend(img[r, la:lb].tolist())
            if rb < w and rb > ra:
                right.extend(img[r, ra:rb].tolist())
    if len(left) < 10 or len(right) < 10:
        return None
    sd = float(img.std()) or 1.0
    return (float(np.mean(right)) - float(np.mean(left))) / sd


def sacrum_cue(labels: npt.NDArray[np.integer[Any]], min_pixels: int = 5) -> float | None:
    """Offset of the sacrum's centre from the line through the centres of L4 and L5, in units of
    their distance. Positive: the sacrum lies to the RIGHT of that line (looking cranio-caudally
    down the spine), i.e. posterior is on the right and anterior on the LEFT. ``None`` when L4,
    L5 or the sacrum is missing (fewer than ``min_pixels`` pixels)."""
    centres: dict[str, npt.NDArray[np.float64]] = {}
    for name in ("L4", "L5", "S1"):
        rows, cols = np.nonzero(labels == LABEL_VALUES[name])
        if rows.size < min_pixels:
            return None
        centres[name] = np.array([cols.mean(), rows.mean()], dtype=np.float64)
    d = centres["L5"] - centres["L4"]
    step = float(np.hypot(*d))
    if step == 0.0:
        return None
    d = d / step
    if d[1] < 0:  # caudal must point down the image
        return None
    right = np.array([d[1], -d[0]])  # the caudal direction turned to the image's right
    return float((centres["S1"] - centres["L5"]) @ right) / step


def side_of_sacrum(sacrum: float | None) -> Side | None:
    """The anterior side a clear sacrum cue indicates (``None`` when unclear or missing)."""
    if sacrum is None or abs(sacrum) < SACRUM_CLEAR:
        return None
    return Side.LEFT if sacrum > 0 else Side.RIGHT


def mirrored_cue(value: float | None) -> float | None:
    """A left-right cue measured on the mirrored film, in the original film's sense."""
    return None if value is None else -value


def decide(
    probability_right: float, cue: float | None, sacrum: float | None = None
) -> OrientationResult:
    """Combine the sacrum, the classifier probability and the posterior cue (see the module
    docstring)."""
    p = float(probability_right)
    cls_side = Side.RIGHT if p >= 0.5 else Side.LEFT
    sacrum_side = side_of_sacrum(sacrum)
    if sacrum_side is not None:
        if max(p, 1.0 - p) < CLASSIFIER_CONFIDENT:
            return OrientationResult(sacrum_side, p, cue, "sacrum", (), sacrum)
        found: tuple[str, ...] = ()
        if cls_side != sacrum_side:
            found = (
                f"orientation classifier (anterior {cls_side}, P={max(p, 1 - p):.2f}) and the "
                f"sacrum (anterior {sacrum_side}) disagree; check the anterior side",
            )
        return OrientationResult(cls_side, p, cue, "classifier", found, sacrum)
    return _decide_without_sacrum(p, cue, sacrum)


def _decide_without_sacrum(p: float, cue: float | None, sacrum: float | None) -> OrientationResult:
    p = float(p)
    cls_side = Side.RIGHT if p >= 0.5 else Side.LEFT
    confident = max(p, 1.0 - p) >= CLASSIFIER_CONFIDENT
    warnings: list[str] = []
    cue_side: Side | None = None
    if cue is not None and abs(cue) >= CUE_CLEAR:
        cue_side = Side.LEFT if cue > 0 else Side.RIGHT
    if confident or cue_side is None:
        side, method = cls_side, "classifier"
        if not confident:
            warnings.append(
                f"orientation uncertain (P(anterior right) = {p:.2f}, no clear image cue)"
            )
    else:
        side, method = cue_side, "posterior-elements cue"
    if cue_side is not None and confident and cue_side != cls_side:
        warnings.append(
            f"orientation classifier ({cls_side}, P={max(p, 1 - p):.2f}) and image cue "
            f"({cue_side}) disagree; check the anterior side"
        )
    return OrientationResult(side, p, cue, method, tuple(warnings), sacrum)


def cue_only_orientation(cue: float | None, sacrum: float | None = None) -> OrientationResult:
    """Decision from the image cues alone (no classifier weights): the sacrum when clear, else
    the posterior cue; unclear cues give a warning."""
    sacrum_side = side_of_sacrum(sacrum)
    if sacrum_side is not None:
        return OrientationResult(sacrum_side, 0.5, cue, "sacrum", (), sacrum)
    side = Side.LEFT if cue is None or cue >= 0 else Side.RIGHT
    warnings: tuple[str, ...] = ()
    if cue is None or abs(cue) < CUE_CLEAR:
        warnings = ("orientation uncertain (no orientation classifier and no clear image cue)",)
    return OrientationResult(side, 0.5, cue, "posterior-elements cue", warnings, sacrum)
