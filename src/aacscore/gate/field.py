"""The field check: are L1-L4, their outer discs and the aortic band on the film?

Two checks, each returning a frozen :class:`FieldCheck` (``code`` None: scorable; its
``flags`` are keys of :data:`aacscore.codes.FLAGS`):

* :func:`check_field` on the spine result, before the band is cut: every corner of L1-L4 lies
  inside the image and at least :data:`EDGE_MARGIN_PX` from its edge, no L1-L4 body of the label
  map touches the edge (a body cut by the edge of the film is traced as a smaller body whose
  corners sit on the edge), and the anterior and posterior anchors of the T12/L1 and L4/L5
  Kauppila bounds are inside the image; and T12 or the sacrum (S1) is among the vertebrae, as
  the levels are identified by counting from one of them. Otherwise ``FIELD_INCOMPLETE``,
  naming what is off the film (spot views, films cut at L1 or L4). A spine result without all
  of L1-L4 (only possible from a model run with ``check=False``) is ``SPINE_NOT_FOUND``.
* :func:`check_band_coverage` on the band: less than :data:`BAND_REFUSE_BELOW` of the band
  inside the image is ``BAND_OUTSIDE_FILM``; below :data:`BAND_FLAG_BELOW` the flag
  ``band_partly_outside``.

How the pipeline calls it (``Scorer.score_radiograph``)::

    spine, rad, _ = self._read_spine(rad, name)  # spine model (spacing_inconsistent)
    field = check_field(spine)
    field.raise_if_refused(name)          # ScoringError(FIELD_INCOMPLETE, ...)
    band = self._band(rad, spine)
    coverage = check_band_coverage(band)
    coverage.raise_if_refused(name)       # ScoringError(BAND_OUTSIDE_FILM, ...)
    flags += [*spine.flags, *field.flags, *coverage.flags]

``measurements`` (JSON-ready) belong in the case JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aacscore.aorta.roi import Band
from aacscore.codes import ErrorCode, ScoringError
from aacscore.spine.result import SpineResult
from aacscore.vertebrae import CORNER_NAMES, KAUPPILA_LEVELS, LABEL_VALUES

EDGE_MARGIN_PX = 1.0
"""A corner of L1-L4 closer than this to the edge of the image belongs to a body cut by it."""
OUTER_BOUNDS: tuple[str, str] = ("T12/L1", "L4/L5")
BAND_REFUSE_BELOW = 0.75
"""Less than this share of the band inside the image: refused (``BAND_OUTSIDE_FILM``)."""
BAND_FLAG_BELOW = 0.90
"""Less than this share (and at least :data:`BAND_REFUSE_BELOW`): flag ``band_partly_outside``."""
NO_ANCHOR_PROBLEM = "neither the sacrum nor T12 is on the film: the levels cannot be identified"


@dataclass(frozen=True)
class FieldCheck:
    """The outcome of a field check: ``code`` (None when the film may be scored), the human
    ``problem`` ("" when none), ``flags`` for a scorable film and JSON-ready ``measurements``."""

    code: ErrorCode | None
    problem: str = ""
    flags: tuple[str, ...] = ()
    measurements: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the film passes (it may still carry flags)."""
        return self.code is None

    def raise_if_refused(self, source: str | None = None) -> None:
        """Raise :class:`aacscore.codes.ScoringError` with this check's code and problem."""
        if self.code is not None:
            raise ScoringError(self.code, self.problem, source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": None if self.code is None else self.code.value,
            "problem": self.problem,
            "flags": list(self.flags),
            "measurements": dict(self.measurements),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FieldCheck:
        """Inverse of :meth:`to_dict`."""
        code = d.get("code")
        return cls(
            None if code is None else ErrorCode(code),
            str(d.get("problem", "")),
            tuple(d.get("flags", ())),
            dict(d.get("measurements", {})),
        )


def _edge_distance(p: np.ndarray, shape: tuple[int, int]) -> float:
    """Signed distance of ``(x, y)`` to the nearest image edge (negative outside)."""
    h, w = shape
    x, y = float(p[0]), float(p[1])
    return min(x, y, (w - 1) - x, (h - 1) - y)


def _touching_labels(spine: SpineResult) -> list[str]:
    lab = np.asarray(spine.labels)
    if lab.ndim != 2 or lab.shape != tuple(spine.shape) or lab.size == 0:
        return []
    edge = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    present = set(np.unique(edge).tolist())
    return [n for n in KAUPPILA_LEVELS if LABEL_VALUES[n] in present]


def check_field(spine: SpineResult) -> FieldCheck:
    """Whether L1-L4, the T12/L1 and L4/L5 bounds and a level anchor are on the film."""
    shape = (int(spine.shape[0]), int(spine.shape[1]))
    missing = [n for n in KAUPPILA_LEVELS if n not in spine.vertebrae]
    if missing:
        return FieldCheck(
            ErrorCode.SPINE_NOT_FOUND,
            f"vertebrae not found: {', '.join(missing)} (L1-L4 are required)",
            measurements={"missing_levels": missing},
        )
    cut: dict[str, list[str]] = {}
    edge_px: dict[str, float] = {}
    for name in KAUPPILA_LEVELS:
        v = spine.vertebrae[name]
        d = [_edge_distance(c, shape) for c in v.corners]
        edge_px[name] = round(min(d), 2)
        near = [CORNER_NAMES[i] for i, di in enumerate(d) if di < EDGE_MARGIN_PX]
        if near:
            cut[name] = near
    for name in _touching_labels(spine):
        cut.setdefault(name, ["outline"])
    outside: list[str] = []
    for b in OUTER_BOUNDS:
        bound = spine.bounds.get(b)
        if bound is None:
            outside.append(b)
        elif min(_edge_distance(bound.anterior, shape), _edge_distance(bound.posterior, shape)) < 0:
            outside.append(b)
    anchors = {n: n in spine.vertebrae for n in ("T12", "S1")}
    m: dict[str, Any] = {
        "bodies_at_edge": {n: c for n, c in cut.items()},
        "bounds_outside": outside,
        "edge_distance_px": edge_px,
        "t12_found": anchors["T12"],
        "sacrum_found": anchors["S1"],
    }
    parts: list[str] = []
    if cut:
        parts.append(f"{', '.join(cut)} cut by the edge of the film")
    if outside:
        parts.append(
            f"the {' and '.join(outside)} bound{'s' if len(outside) > 1 else ''} off the film"
        )
    if parts:
        return FieldCheck(
            ErrorCode.FIELD_INCOMPLETE,
            f"L1-L4 are not all on the film: {'; '.join(parts)}",
            measurements=m,
        )
    if not any(anchors.values()):
        return FieldCheck(ErrorCode.FIELD_INCOMPLETE, NO_ANCHOR_PROBLEM, measurements=m)
    return FieldCheck(None, measurements=m)


def check_band_coverage(band: Band) -> FieldCheck:
    """Refuse (< 75 %) or flag (< 90 %) a band that is partly outside the image."""
    f = float(band.inside_fraction)
    m = {"band_inside_fraction": round(f, 4)}
    if f < BAND_REFUSE_BELOW:
        return FieldCheck(
            ErrorCode.BAND_OUTSIDE_FILM,
            f"only {f:.1%} of the aortic band in front of L1-L4 is inside the image "
            f"(at least {BAND_REFUSE_BELOW:.0%} needed)",
            measurements=m,
        )
    if f < BAND_FLAG_BELOW:
        return FieldCheck(None, flags=("band_partly_outside",), measurements=m)
    return FieldCheck(None, measurements=m)
