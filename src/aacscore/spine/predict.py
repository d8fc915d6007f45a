"""Inference: a radiograph -> :class:`SpineResult` (vertebrae, disc midpoints, Kauppila bounds).

Steps: resize the whole film to the plan's input (letterbox), decide the anterior side
(classifier + posterior-elements cue), mirror into the canonical orientation, run the U-Net,
take each body's largest component, upsample its logits bilinearly (x4) around the body and
trace the sub-pixel arg-max boundary, fit the corners, check plausibility, and map everything
back to the ORIGINAL pixels.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from scipy import ndimage

from aacscore.io import Radiograph
from aacscore.spine.data import Letterbox, zscore
from aacscore.spine.geometry import (
    SpineGeometry,
    check_plausibility,
    contour_from_score,
    geometry_from_contours,
    largest_component,
)
from aacscore.spine.network import (
    ORIENTATION_WEIGHTS,
    UNET_WEIGHTS,
    OrientationNet,
    WeightsError,
    build_orientation_net,
    build_unet,
    load_weights,
)
from aacscore.spine.orientation import (
    CanonicalFrame,
    OrientationResult,
    classifier_probability_right,
    cue_only_orientation,
    decide,
    posterior_cue,
)
from aacscore.spine.plans import Plans
from aacscore.vertebrae import (
    CLASS_NAMES,
    LABEL_VALUES,
    Bound,
    FloatArray,
    Side,
    SpineError,
    Vertebra,
    kauppila_bounds,
    level_bound_names,
)

logger = logging.getLogger(__name__)

PLANS_FILE = "plans.json"
MODEL_CARD = "MODEL_CARD.md"
FINE_FACTOR = 4
"""Upsampling of the logits around each body before tracing its outline."""


def default_model_dir() -> Path:
    """``aacscore/models/spine`` inside the installed package."""
    from aacscore.info import MODELS_DIR

    return MODELS_DIR / "spine"


@dataclass(frozen=True, eq=False)
class SpineResult:
    """Spine geometry of one film, in ORIGINAL pixel coordinates (x = column, y = row).

    ``labels`` is the body label map at the original resolution (values as
    :data:`aacscore.spine.geometry.LABEL_VALUES`); ``frame`` maps to and from the canonical
    orientation (anterior left) in which later stages work.
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
                "method": self.orientation.method,
            },
            "spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
            "model_mm_per_px": None if self.model_mm_per_px is None else list(self.model_mm_per_px),
            "vertebrae": {n: v.to_dict() for n, v in self.vertebrae.items()},
            "discs": {n: [float(x) for x in p] for n, p in self.discs.items()},
            "bounds": {n: b.to_dict() for n, b in self.bounds.items()},
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
        }


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


def contours_from_logits(
    logits: torch.Tensor, labels: npt.NDArray[np.uint8], factor: int = FINE_FACTOR, margin: int = 3
) -> dict[str, FloatArray]:
    """Sub-pixel outline of each labelled body from (C, h, w) logits (or probabilities).

    Around each body the scores are upsampled bilinearly ``factor`` times and the boundary where
    the body's class stops being the arg-max is traced; other components of the same class are
    masked out. Returned points are in the logits' pixel coordinates.
    """
    _c, h, w = logits.shape
    out: dict[str, FloatArray] = {}
    for name, v in LABEL_VALUES.items():
        m = labels == v
        if not m.any():
            continue
        rows, cols = np.nonzero(m)
        y0, y1 = max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, h)
        x0, x1 = max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin + 1, w)
        crop = logits[:, y0:y1, x0:x1][None].float()
        size = ((y1 - y0) * factor, (x1 - x0) * factor)
        fine = F.interpolate(crop, size=size, mode="bilinear", align_corners=False)[0]
        others = torch.cat([fine[:v], fine[v + 1 :]], dim=0).amax(dim=0)
        score = (fine[v] - others).numpy().astype(np.float64)
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
    logits: torch.Tensor, labels: npt.NDArray[np.uint8], factor: int = FINE_FACTOR, margin: int = 2
) -> npt.NDArray[np.uint8]:
    """Arg-max of the logits upsampled bilinearly ``factor`` times, (h * factor, w * factor).

    Only the region around the cleaned coarse ``labels`` is upsampled; each class is kept only
    next to its own (largest) coarse component.
    """
    _, h, w = logits.shape
    out = np.zeros((h * factor, w * factor), dtype=np.uint8)
    rows, cols = np.nonzero(labels)
    if rows.size == 0:
        return out
    y0, y1 = max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, h)
    x0, x1 = max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin + 1, w)
    crop = logits[:, y0:y1, x0:x1][None].float()
    size = ((y1 - y0) * factor, (x1 - x0) * factor)
    fine = F.interpolate(crop, size=size, mode="bilinear", align_corners=False)[0]
    arg = fine.argmax(dim=0).numpy().astype(np.uint8)
    sub = labels[y0:y1, x0:x1]
    for v in np.unique(arg):
        if v == 0:
            continue
        keep = ndimage.binary_dilation(sub == v, iterations=1)
        keep_f = np.repeat(np.repeat(keep, factor, axis=0), factor, axis=1)
        arg[(arg == v) & ~keep_f] = 0
    out[y0 * factor : y1 * factor, x0 * factor : x1 * factor] = arg
    return out


def geometry_from_logits(
    logits: torch.Tensor,
    spacing_mm: tuple[float, float] | None,
    source: str | None = None,
    check: bool = True,
    factor: int = FINE_FACTOR,
) -> tuple[SpineGeometry, npt.NDArray[np.uint8]]:
    """Canonical-frame geometry (anterior left) from (C, h, w) logits, and the cleaned labels."""
    coarse = logits.argmax(dim=0).numpy().astype(np.uint8)
    labels, warnings = clean_labels(coarse)
    contours = contours_from_logits(logits, labels, factor)
    geo = geometry_from_contours(
        contours, Side.LEFT, spacing_mm, source, extra_warnings=warnings, check=check
    )
    return geo, labels


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


class SpineModel:
    """The CPU U-Net spine model: ``SpineModel.load(dir).predict(radiograph)``."""

    def __init__(
        self,
        plans: Plans,
        unet: torch.nn.Module,
        orientation_net: OrientationNet | None,
        model_dir: Path | None = None,
    ) -> None:
        self.plans = plans
        self.unet = unet.eval()
        self.orientation_net = orientation_net.eval() if orientation_net is not None else None
        self.model_dir = model_dir

    @classmethod
    def load(cls, dir: str | Path | None = None) -> SpineModel:
        """Load ``plans.json``, ``unet.safetensors`` and ``orientation.safetensors`` from ``dir``
        (default: the weights shipped under ``aacscore/models/spine``)."""
        d = Path(dir) if dir is not None else default_model_dir()
        plans_path, unet_path = d / PLANS_FILE, d / UNET_WEIGHTS
        if not plans_path.is_file() or not unet_path.is_file():
            missing = [p.name for p in (plans_path, unet_path) if not p.is_file()]
            raise WeightsError(
                f"{d}: no spine model here (missing {', '.join(missing)}). Train one with "
                "`aacscore train spine --data DIR` (writes the weights to "
                f"{default_model_dir()}) or pass another model folder / 'nnunet:RESULTS_FOLDER'."
            )
        plans = Plans.load(plans_path)
        unet = build_unet(plans)
        load_weights(unet, unet_path)
        orient: OrientationNet | None = None
        if (d / ORIENTATION_WEIGHTS).is_file():
            orient = build_orientation_net(plans)
            load_weights(orient, d / ORIENTATION_WEIGHTS)
        else:
            logger.warning("%s: no orientation weights; using the image cue only", d)
        return cls(plans, unet, orient, d)

    @torch.inference_mode()
    def logits(self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]) -> torch.Tensor:
        """(C, h, w) logits for a raw padded model-size input."""
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
        v = torch.from_numpy(valid.astype(np.float32))[None, None]
        out = self.unet(zscore(x, v))
        return out[0]

    @torch.inference_mode()
    def probability_right(
        self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
    ) -> float | None:
        """Antisymmetrised classifier P(anterior right) for a raw padded model-size input."""
        if self.orientation_net is None:
            return None
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
        v = torch.from_numpy(valid.astype(np.float32))[None, None]
        z = F.avg_pool2d(zscore(x, v), self.plans.orientation_downsample)
        return classifier_probability_right(self.orientation_net, z)

    def predict(
        self,
        radiograph: Radiograph,
        anterior_side: str | Side | None = None,
        check: bool = True,
    ) -> SpineResult:
        """Spine geometry of a film. ``anterior_side`` skips orientation detection when given.

        Raises:
            SpineError: the spine cannot be measured reliably (levels missing, out of order,
                implausible sizes or spacing); the message names the film.
        """
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        pixels = np.asarray(radiograph.pixels, dtype=np.float32)
        if pixels.ndim != 2:
            raise SpineError(f"expected a 2-D film, got shape {pixels.shape}", radiograph.source)
        shape = (int(pixels.shape[0]), int(pixels.shape[1]))
        box = Letterbox.fit(shape, self.plans.patch_size)
        resized = box.resize_image(pixels)
        valid = box.valid_mask()
        timings["resize_s"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        p_right: float | None = None
        if anterior_side is None:
            p_right = self.probability_right(box.pad(resized), valid)
            side = Side.RIGHT if (p_right is not None and p_right >= 0.5) else Side.LEFT
        else:
            side = Side.parse(anterior_side)
        timings["orientation_s"] = time.perf_counter() - t1

        def run(side: Side) -> tuple[npt.NDArray[np.float32], torch.Tensor]:
            canon = box.pad(
                np.ascontiguousarray(resized[:, ::-1] if side == Side.RIGHT else resized)
            )
            return canon, self.logits(canon, valid)

        t2 = time.perf_counter()
        canon, logits = run(side)
        timings["network_s"] = time.perf_counter() - t2
        if anterior_side is None:
            coarse = clean_labels(logits.argmax(dim=0).numpy().astype(np.uint8))[0]
            cue = posterior_cue(canon, coarse)
            if p_right is None:
                orientation = cue_only_orientation(cue)
            else:
                # the cue was measured on the canonicalised film: convert it to the original
                cue_orig = None if cue is None else (-cue if side == Side.RIGHT else cue)
                orientation = decide(p_right, cue_orig)
            if orientation.anterior_side != side:
                side = orientation.anterior_side
                canon, logits = run(side)
        else:
            orientation = OrientationResult(side, 1.0 if side == Side.RIGHT else 0.0, None, "given")

        t3 = time.perf_counter()
        model_spacing = box.model_spacing(radiograph.spacing_mm)
        geo, labels_model = geometry_from_logits(
            logits, model_spacing, radiograph.source, check=False
        )
        frame = CanonicalFrame(shape, side)

        def to_orig(p: FloatArray) -> FloatArray:
            return frame.to_original_points(box.to_image(p))

        def dir_to_orig(d: FloatArray) -> FloatArray:
            return frame.to_original_directions(d)

        sy, sx = box.scale
        warnings = [*orientation.warnings, *geo.warnings]
        verts, discs, bounds, w = _map_geometry(
            geo, to_orig, dir_to_orig, radiograph.spacing_mm, 1.0 / (sy * sx), 1.0 / sx
        )
        if check:
            warnings += check_plausibility(verts, radiograph.spacing_mm, radiograph.source)
        warnings += w
        timings["geometry_s"] = time.perf_counter() - t3

        t4 = time.perf_counter()
        fine = fine_label_map(logits, labels_model, FINE_FACTOR)
        labels_canon = box.labels_to_image(fine, factor=FINE_FACTOR)
        labels = frame.to_original_image(labels_canon)
        timings["labels_s"] = time.perf_counter() - t4
        timings["total_s"] = time.perf_counter() - t0
        return SpineResult(
            source=radiograph.source,
            shape=shape,
            anterior_side=side,
            orientation=orientation,
            vertebrae=verts,
            discs=discs,
            bounds=bounds,
            spacing_mm=radiograph.spacing_mm,
            model_mm_per_px=model_spacing,
            labels=np.ascontiguousarray(labels, dtype=np.uint8),
            warnings=tuple(dict.fromkeys(warnings)),
            timings=timings,
        )


def load_spine_model(spec: str | os.PathLike[str] | None = None) -> SpineModelProtocol:
    """A spine model from a folder of aacscore weights (default: shipped) or ``nnunet:FOLDER``.

    ``nnunet:RESULTS_FOLDER`` uses nnU-Net v2's predictor on a trained nnU-Net model folder
    (needs ``pip install 'aacscore[nnunet]'``).
    """
    if spec is not None and str(spec).startswith("nnunet:"):
        from aacscore.spine.nnunet import NnUNetSpineModel

        return NnUNetSpineModel.load(str(spec)[len("nnunet:") :])
    return SpineModel.load(None if spec is None else Path(spec))


def result_from_label_scores(
    radiograph: Radiograph,
    scores: torch.Tensor,
    orientation: OrientationResult,
    check: bool = True,
    timings: Mapping[str, float] | None = None,
) -> SpineResult:
    """A :class:`SpineResult` from (C, H, W) class scores at the film's ORIGINAL resolution
    (used by the nnU-Net adapter). Geometry is traced on the canonical (mirrored) scores."""
    shape = (int(scores.shape[1]), int(scores.shape[2]))
    frame = CanonicalFrame(shape, orientation.anterior_side)
    canon_scores = torch.flip(scores, dims=[2]) if frame.mirrored else scores
    coarse = canon_scores.argmax(dim=0).numpy().astype(np.uint8)
    labels, warnings = clean_labels(coarse)
    contours = contours_from_logits(canon_scores, labels, factor=1)
    geo = geometry_from_contours(
        contours, Side.LEFT, radiograph.spacing_mm, radiograph.source, warnings, check=False
    )
    verts, discs, bounds, w = _map_geometry(
        geo, frame.to_original_points, frame.to_original_directions, radiograph.spacing_mm, 1.0, 1.0
    )
    all_warnings = [*orientation.warnings, *geo.warnings]
    if check:
        all_warnings += check_plausibility(verts, radiograph.spacing_mm, radiograph.source)
    all_warnings += w
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
    )


__all__ = [
    "CLASS_NAMES",
    "SpineModel",
    "SpineModelProtocol",
    "SpineResult",
    "default_model_dir",
    "geometry_from_logits",
    "load_spine_model",
]
