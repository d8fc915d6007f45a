"""The spine stage's result and the post-processing shared by the U-Net and nnU-Net models:
class scores -> cleaned labels -> outlines -> vertebrae, discs and Kauppila bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from aacscore.backend.resample import resize_bilinear
from aacscore.io import Radiograph
from aacscore.spine.flags import SpineConfidence, spine_confidence, spine_flags
from aacscore.spine.geometry import (
    SpineGeometry,
    check_plausibility,
    contour_from_score,
    geometry_from_contours,
    largest_component,
)
from aacscore.spine.orientation import (
    CanonicalFrame,
    OrientationResult,
)
from aacscore.vertebrae import (
    CORNER_NAMES,
    LABEL_VALUES,
    Bound,
    FloatArray,
    Side,
    Vertebra,
    kauppila_bounds,
    level_bound_names,
)

FINE_FACTOR = 4
"""Upsampling of the logits around each body before tracing its outline."""


@dataclass(frozen=True, eq=False)
class SpineResult:
    """Spine geometry of one film, in ORIGINAL pixel coordinates (x = column, y = row).

    ``labels`` is the body label map at the original resolution (values as
    :data:`aacscore.spine.geometry.LABEL_VALUES`); ``frame`` maps to and from the canonical
    orientation (anterior left) in which later stages work. ``warnings`` are for people (the
    case JSON); ``flags`` are the machine-readable trust flags.
    """

    source: str
    shape: tuple[int, int]
    anterior_side: Side
    orientation: OrientationResult
    vertebrae: dict[str, Vertebra]
    discs: dict[str, FloatArray]
    bounds: dict[str, Bound]
    spacing_mm: tuple[float, float] | None
    model_mm_per_px: tuple[float, float] | None
    labels: npt.NDArray[np.uint8]
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    """Trust flags (keys of :data:`aacscore.codes.FLAGS`: ``orientation_uncertain``,
    ``level_uncertain``, ``fracture_suspected``; :mod:`aacscore.spine.flags`); their reasons are
    in ``warnings``."""
    confidence: SpineConfidence | None = None
    """The network's evidence for the labelled bodies (None for a result built by hand)."""

    @property
    def frame(self) -> CanonicalFrame:
        return CanonicalFrame(self.shape, self.anterior_side)

    def segment_bounds(self, level: str) -> tuple[Bound, Bound]:
        """(cranial, caudal) bounds of a Kauppila level L1-L4."""
        upper, lower = level_bound_names(level)
        return self.bounds[upper], self.bounds[lower]

    def canonical_geometry(self) -> SpineGeometry:
        """Vertebrae, discs and bounds mirrored into the canonical frame (anterior left)."""
        fr = self.frame
        verts = {
            n: v.transformed(fr.to_canonical_points, self.spacing_mm)
            for n, v in self.vertebrae.items()
        }
        discs = {n: fr.to_canonical_points(p) for n, p in self.discs.items()}
        bounds = {n: b.transformed(fr.to_canonical_points) for n, b in self.bounds.items()}
        return SpineGeometry(verts, discs, bounds, Side.LEFT, self.spacing_mm, self.warnings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (without the label map)."""
        return {
            "source": self.source,
            "shape": list(self.shape),
            "anterior_side": self.anterior_side,
            "orientation": {
                "probability_right": self.orientation.probability_right,
                "cue": self.orientation.cue,
                "sacrum": self.orientation.sacrum,
                "method": self.orientation.method,
            },
            "spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
            "model_mm_per_px": None if self.model_mm_per_px is None else list(self.model_mm_per_px),
            "vertebrae": {n: v.to_dict() for n, v in self.vertebrae.items()},
            "discs": {n: [float(x) for x in p] for n, p in self.discs.items()},
            "bounds": {n: b.to_dict() for n, b in self.bounds.items()},
            "warnings": list(self.warnings),
            "flags": list(self.flags),
            "confidence": None if self.confidence is None else self.confidence.to_dict(),
            "timings": dict(self.timings),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpineResult:
        """The result back from :meth:`to_dict` (e.g. a case JSON's ``spine`` section).

        Corners, discs, bounds, orientation, flags and confidence come back as written; what
        :meth:`to_dict` leaves out does not: the label map is empty (0 x 0), vertebra areas
        are NaN, the orientation has no warnings and the confidence no pixel counts."""
        spacing = _pair(d.get("spacing_mm"))
        side = Side.parse(d["anterior_side"])
        o = d["orientation"]
        orientation = OrientationResult(
            side,
            float(o["probability_right"]),
            None if o.get("cue") is None else float(o["cue"]),
            str(o["method"]),
            sacrum=None if o.get("sacrum") is None else float(o["sacrum"]),
        )
        vertebrae = {
            name: Vertebra(
                name,
                np.array([v["corners"][c] for c in CORNER_NAMES], dtype=np.float64),
                fit_rms_px=_float(v.get("fit_rms_px")),
                spacing_mm=spacing,
            )
            for name, v in d["vertebrae"].items()
        }
        bounds = {
            name: Bound(
                name,
                np.asarray(b["anterior"], dtype=np.float64),
                np.asarray(b["posterior"], dtype=np.float64),
                bool(b.get("extrapolated", False)),
            )
            for name, b in d["bounds"].items()
        }
        c = d.get("confidence")
        confidence = None
        if c is not None:
            confidence = SpineConfidence(
                float(c["mean_probability"]),
                float(c["fraction_confident"]),
                {k: float(v) for k, v in c.get("level_probability", {}).items()},
                {k: float(v) for k, v in c.get("level_margin", {}).items()},
            )
        shape = d["shape"]
        return cls(
            source=str(d["source"]),
            shape=(int(shape[0]), int(shape[1])),
            anterior_side=side,
            orientation=orientation,
            vertebrae=vertebrae,
            discs={n: np.asarray(p, dtype=np.float64) for n, p in d.get("discs", {}).items()},
            bounds=bounds,
            spacing_mm=spacing,
            model_mm_per_px=_pair(d.get("model_mm_per_px")),
            labels=np.zeros((0, 0), dtype=np.uint8),
            warnings=tuple(d.get("warnings", ())),
            timings={k: float(v) for k, v in d.get("timings", {}).items()},
            flags=tuple(d.get("flags", ())),
            confidence=confidence,
        )


def _pair(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _float(value: Any) -> float:
    """A JSON number back to float (``null``, written for NaN, back to NaN)."""
    return float("nan") if value is None else float(value)


class SpineModelProtocol(Protocol):
    """What later stages need from a spine model."""

    def predict(
        self, radiograph: Radiograph, anterior_side: str | Side | None = None
    ) -> SpineResult: ...


# -------------------------------------------------------------------------------------------
# Post-processing shared by the built-in and the nnU-Net models
# -------------------------------------------------------------------------------------------


def clean_labels(labels: npt.NDArray[np.integer[Any]]) -> tuple[npt.NDArray[np.uint8], list[str]]:
    """Keep the largest component of each body label; warn when a label is fragmented."""
    out = np.zeros(labels.shape, dtype=np.uint8)
    warnings: list[str] = []
    for name, v in LABEL_VALUES.items():
        m = labels == v
        if not m.any():
            continue
        comp, ratio = largest_component(m)
        if ratio > 0.15:
            warnings.append(f"{name}: segmentation split into several parts (kept the largest)")
        out[comp] = v
    return out, warnings


def as_scores(scores: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """(C, h, w) class scores as a float32 array (from numpy or a CPU torch tensor)."""
    a = np.asarray(scores, dtype=np.float32)
    if a.ndim != 3:
        raise ValueError(f"expected (classes, rows, cols) scores, got shape {a.shape}")
    return a


@dataclass(frozen=True, eq=False)
class UpsampledScores:
    """(C, h, w) scores upsampled bilinearly ``factor`` times over the coarse box
    ``(y0, y1, x0, x1)`` around every labelled body (``margin`` coarse pixels beyond their
    bounding box, clipped to the map): one resize that :func:`contours_from_logits` and
    :func:`fine_label_map` both cut from. A cut's values equal a resize of the cut alone, but
    for the outermost ``factor / 2`` fine pixels of a cut that does not reach the box's edge
    (there the cut alone would repeat its edge pixel); both functions mask those pixels out."""

    fine: npt.NDArray[np.float32]
    box: tuple[int, int, int, int]
    factor: int

    @classmethod
    def around(
        cls,
        logits: npt.ArrayLike,
        labels: npt.NDArray[np.uint8],
        factor: int = FINE_FACTOR,
        margin: int = 3,
    ) -> UpsampledScores | None:
        """The upsampled box around the labels (None when nothing is labelled)."""
        scores = as_scores(logits)
        box = _label_box(labels, margin)
        if box is None:
            return None
        y0, y1, x0, x1 = box
        fine = resize_bilinear(scores[:, y0:y1, x0:x1], ((y1 - y0) * factor, (x1 - x0) * factor))
        return cls(fine, box, factor)

    def cut(self, y0: int, y1: int, x0: int, x1: int) -> npt.NDArray[np.float32] | None:
        """The fine scores of coarse box ``(y0, y1, x0, x1)`` (None unless inside :attr:`box`)."""
        by0, by1, bx0, bx1 = self.box
        if y0 < by0 or y1 > by1 or x0 < bx0 or x1 > bx1:
            return None
        f = self.factor
        return self.fine[:, (y0 - by0) * f : (y1 - by0) * f, (x0 - bx0) * f : (x1 - bx0) * f]


def _label_box(
    mask: npt.NDArray[np.integer[Any]] | npt.NDArray[np.bool_], margin: int
) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` of the non-zero pixels plus ``margin``, clipped (None when empty)."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    h, w = mask.shape
    return (
        max(int(rows.min()) - margin, 0),
        min(int(rows.max()) + margin + 1, h),
        max(int(cols.min()) - margin, 0),
        min(int(cols.max()) + margin + 1, w),
    )


def _upsampled(
    logits: npt.NDArray[np.float32],
    box: tuple[int, int, int, int],
    factor: int,
    shared: UpsampledScores | None,
) -> npt.NDArray[np.float32]:
    """``logits`` over ``box`` upsampled ``factor`` times (cut from ``shared`` when it holds
    it at that factor)."""
    if shared is not None and shared.factor == factor:
        fine = shared.cut(*box)
        if fine is not None:
            return fine
    y0, y1, x0, x1 = box
    return resize_bilinear(logits[:, y0:y1, x0:x1], ((y1 - y0) * factor, (x1 - x0) * factor))


def contours_from_logits(
    logits: npt.ArrayLike,
    labels: npt.NDArray[np.uint8],
    factor: int = FINE_FACTOR,
    margin: int = 3,
    upsampled: UpsampledScores | None = None,
) -> dict[str, FloatArray]:
    """Sub-pixel outline of each labelled body from (C, h, w) logits (or probabilities).

    Around each body the scores are upsampled bilinearly ``factor`` times (cut from
    ``upsampled`` when given) and the boundary where the body's class stops being the arg-max
    is traced; other components of the same class are masked out. Returned points are in the
    logits' pixel coordinates.
    """
    logits = as_scores(logits)
    out: dict[str, FloatArray] = {}
    for name, v in LABEL_VALUES.items():
        m = labels == v
        box = _label_box(m, margin)
        if box is None:
            continue
        y0, y1, x0, x1 = box
        fine = _upsampled(logits, box, factor, upsampled)
        others = np.concatenate([fine[:v], fine[v + 1 :]], axis=0).max(axis=0)
        score = (fine[v] - others).astype(np.float64)
        keep = ndimage.binary_dilation(m[y0:y1, x0:x1], iterations=1)
        keep_f = np.kron(keep, np.ones((factor, factor), dtype=bool))
        score[~keep_f] = np.minimum(score[~keep_f], -1e-3)
        pts = contour_from_score(score, 0.0)
        if len(pts) == 0:
            continue
        pts[:, 0] = x0 + (pts[:, 0] + 0.5) / factor - 0.5
        pts[:, 1] = y0 + (pts[:, 1] + 0.5) / factor - 0.5
        out[name] = pts
    return out


def fine_label_map(
    logits: npt.ArrayLike,
    labels: npt.NDArray[np.uint8],
    factor: int = FINE_FACTOR,
    margin: int = 2,
    upsampled: UpsampledScores | None = None,
) -> npt.NDArray[np.uint8]:
    """Arg-max of the logits upsampled bilinearly ``factor`` times, (h * factor, w * factor).

    Only the region around the cleaned coarse ``labels`` is upsampled (cut from ``upsampled``
    when given); each class is kept only next to its own (largest) coarse component.
    """
    logits = as_scores(logits)
    _, h, w = logits.shape
    out = np.zeros((h * factor, w * factor), dtype=np.uint8)
    box = _label_box(labels, margin)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    fine = _upsampled(logits, box, factor, upsampled)
    arg = fine.argmax(axis=0).astype(np.uint8)
    sub = labels[y0:y1, x0:x1]
    for v in np.unique(arg):
        if v == 0:
            continue
        keep = ndimage.binary_dilation(sub == v, iterations=1)
        keep_f = np.repeat(np.repeat(keep, factor, axis=0), factor, axis=1)
        arg[(arg == v) & ~keep_f] = 0
    out[y0 * factor : y1 * factor, x0 * factor : x1 * factor] = arg
    return out


@dataclass(frozen=True, eq=False)
class TracedLogits:
    """What :func:`trace_logits` finds in (C, h, w) logits."""

    geometry: SpineGeometry
    labels: npt.NDArray[np.uint8]
    """The cleaned coarse labels (largest component per body)."""
    upsampled: UpsampledScores | None
    """The scores upsampled around the labels (None when nothing is labelled), for
    :func:`fine_label_map` to reuse."""


def trace_logits(
    logits: npt.ArrayLike,
    spacing_mm: tuple[float, float] | None,
    source: str | None = None,
    check: bool = True,
    factor: int = FINE_FACTOR,
) -> TracedLogits:
    """Canonical-frame geometry (anterior left) from (C, h, w) logits, with the cleaned labels
    and the upsampled scores its outlines were traced on."""
    logits = as_scores(logits)
    coarse = logits.argmax(axis=0).astype(np.uint8)
    labels, warnings = clean_labels(coarse)
    shared = UpsampledScores.around(logits, labels, factor)
    contours = contours_from_logits(logits, labels, factor, upsampled=shared)
    geo = geometry_from_contours(
        contours, Side.LEFT, spacing_mm, source, extra_warnings=warnings, check=check
    )
    return TracedLogits(geo, labels, shared)


def geometry_from_logits(
    logits: npt.ArrayLike,
    spacing_mm: tuple[float, float] | None,
    source: str | None = None,
    check: bool = True,
    factor: int = FINE_FACTOR,
) -> tuple[SpineGeometry, npt.NDArray[np.uint8]]:
    """Canonical-frame geometry (anterior left) from (C, h, w) logits, and the cleaned labels
    (:func:`trace_logits`)."""
    traced = trace_logits(logits, spacing_mm, source, check, factor)
    return traced.geometry, traced.labels


def _map_geometry(
    geo: SpineGeometry,
    fn: Any,
    fn_dir: Any,
    spacing_mm: tuple[float, float] | None,
    area_scale: float,
    length_scale: float,
) -> tuple[dict[str, Vertebra], dict[str, FloatArray], dict[str, Bound], list[str]]:
    verts = {
        n: v.transformed(fn, spacing_mm, area_scale, length_scale) for n, v in geo.vertebrae.items()
    }
    bounds, discs, warnings = kauppila_bounds(verts)
    return verts, discs, bounds, warnings


# -------------------------------------------------------------------------------------------
# Built-in model
# -------------------------------------------------------------------------------------------


def result_from_label_scores(
    radiograph: Radiograph,
    scores: npt.ArrayLike,
    orientation: OrientationResult,
    check: bool = True,
    timings: Mapping[str, float] | None = None,
) -> SpineResult:
    """A :class:`SpineResult` from (C, H, W) class scores at the film's ORIGINAL resolution
    (used by the nnU-Net adapter). Geometry is traced on the canonical (mirrored) scores.

    ``scores`` may be probabilities (nnU-Net's) or logits: :func:`spine_confidence` tells them
    apart."""
    scores = as_scores(scores)
    shape = (int(scores.shape[1]), int(scores.shape[2]))
    frame = CanonicalFrame(shape, orientation.anterior_side)
    canon_scores = np.ascontiguousarray(scores[:, :, ::-1]) if frame.mirrored else scores
    coarse = canon_scores.argmax(axis=0).astype(np.uint8)
    labels, warnings = clean_labels(coarse)
    confidence = spine_confidence(canon_scores, labels)
    contours = contours_from_logits(canon_scores, labels, factor=1)
    geo = geometry_from_contours(
        contours, Side.LEFT, radiograph.spacing_mm, radiograph.source, warnings, check=False
    )
    verts, discs, bounds, w = _map_geometry(
        geo, frame.to_original_points, frame.to_original_directions, radiograph.spacing_mm, 1.0, 1.0
    )
    all_warnings = [*orientation.warnings, *geo.warnings]
    if check:
        all_warnings += check_plausibility(
            verts, radiograph.spacing_mm, radiograph.source, shape=shape
        )
    all_warnings += w
    flags, reasons = spine_flags(verts, orientation, confidence)
    all_warnings += reasons
    return SpineResult(
        source=radiograph.source,
        shape=shape,
        anterior_side=orientation.anterior_side,
        orientation=orientation,
        vertebrae=verts,
        discs=discs,
        bounds=bounds,
        spacing_mm=radiograph.spacing_mm,
        model_mm_per_px=radiograph.spacing_mm,
        labels=frame.to_original_image(labels),
        warnings=tuple(dict.fromkeys(all_warnings)),
        timings=dict(timings or {}),
        flags=flags,
        confidence=confidence,
    )
