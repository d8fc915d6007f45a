"""Inference: a radiograph -> :class:`SpineResult` (vertebrae, disc midpoints, Kauppila bounds).

Steps: resize the whole film to the plan's input (letterbox), decide the anterior side (the
sacrum's position, the classifier, the posterior-elements cue), mirror into the canonical
orientation, run the U-Net, count the bodies up from the sacrum and relabel them by the count
when it overrides the network (:mod:`aacscore.spine.levels`), take each body's largest
component, upsample its logits bilinearly (x4) around the body and trace the sub-pixel arg-max
boundary, fit the corners, check plausibility, and map everything back to the ORIGINAL pixels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore._timing import timed
from aacscore.backend import Backend, Net, as_net, graph_path, load_net, resolve_backend
from aacscore.io import Radiograph
from aacscore.spine.classifier import load_orientation_net, probability_right
from aacscore.spine.fallback import FallbackSpineModel, fallback_folder
from aacscore.spine.flags import spine_confidence, spine_flags
from aacscore.spine.geometry import (
    check_plausibility,
)
from aacscore.spine.levels import anchor_levels
from aacscore.spine.orientation import (
    CanonicalFrame,
    OrientationResult,
    cue_only_orientation,
    decide,
    mirrored_cue,
    posterior_cue,
    sacrum_cue,
)
from aacscore.spine.plans import Plans
from aacscore.spine.preprocess import Letterbox, zscore_array
from aacscore.spine.result import (
    FINE_FACTOR,
    SpineModelProtocol,
    SpineResult,
    _map_geometry,
    clean_labels,
    contours_from_logits,
    fine_label_map,
    geometry_from_logits,
    result_from_label_scores,
    trace_logits,
)
from aacscore.spine.weights import (
    MODEL_CARD,
    ORIENTATION_OUTPUTS,
    ORIENTATION_WEIGHTS,
    PLANS_FILE,
    UNET_OUTPUTS,
    UNET_WEIGHTS,
    WeightsError,
    default_model_dir,
)
from aacscore.vertebrae import (
    CLASS_NAMES,
    FloatArray,
    Side,
    SpineError,
)

logger = logging.getLogger(__name__)


class SpineModel:
    """The CPU U-Net spine model: ``SpineModel.load(dir).predict(radiograph)``.

    ``unet`` and ``orientation_net`` are :class:`~aacscore.backend.Net` objects (ONNX Runtime or
    torch) or torch modules (run on the torch backend)."""

    def __init__(
        self,
        plans: Plans,
        unet: Net | Any,
        orientation_net: Net | Any | None,
        model_dir: Path | None = None,
    ) -> None:
        self.plans = plans
        self.unet = unet if isinstance(unet, Net) else unet.eval()
        self.orientation_net = (
            orientation_net
            if orientation_net is None or isinstance(orientation_net, Net)
            else orientation_net.eval()
        )
        self._unet = as_net(self.unet, UNET_OUTPUTS)
        self._orientation = (
            None
            if self.orientation_net is None
            else as_net(self.orientation_net, ORIENTATION_OUTPUTS)
        )
        self.model_dir = model_dir

    @property
    def backend(self) -> Backend:
        """The backend that runs the U-Net (``onnx`` or ``torch``)."""
        return self._unet.backend

    @classmethod
    def load(
        cls, dir: str | Path | None = None, backend: str | Backend | None = None
    ) -> SpineModel:
        """Load ``plans.json``, ``unet.safetensors`` and ``orientation.safetensors`` from ``dir``
        (default: the weights shipped under ``aacscore/models/spine``), run by ``backend``
        (``onnx``: their exported graphs; ``torch``; ``auto``/None: onnx when the graphs fit
        the weights)."""
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
        orient_path = d / ORIENTATION_WEIGHTS
        which = resolve_backend(backend, unet_path)
        if which == Backend.ONNX and orient_path.is_file():
            # one backend for both networks (auto: torch for both when this graph is missing)
            which = resolve_backend(backend, orient_path)

        def build_unet() -> Any:
            from aacscore.spine.network import build_unet, load_weights

            return load_weights(build_unet(plans), unet_path)

        unet = load_net(which, unet_path, build_unet, UNET_OUTPUTS)
        orient: Net | None = None
        if orient_path.is_file():
            orient = load_orientation_net(plans, orient_path, which)
        else:
            logger.warning("%s: no orientation weights; using the image cue only", d)
        return cls(plans, unet, orient, d)

    def logits(
        self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.float32]:
        """(C, h, w) logits for a raw padded model-size input."""
        x = zscore_array(image, valid)[None, None]
        return self._unet(x)[UNET_OUTPUTS[0]][0]

    def probability_right(
        self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
    ) -> float | None:
        """Antisymmetrised classifier P(anterior right) for a raw padded model-size input."""
        if self._orientation is None:
            return None
        return probability_right(self._orientation, self.plans, image, valid)

    def weight_files(self) -> list[Path]:
        """Files that determine the predictions: ``plans.json`` and the safetensors weights
        (and, on the onnx backend, the graphs exported from them)."""
        d = self.model_dir if self.model_dir is not None else default_model_dir()
        names = [PLANS_FILE, UNET_WEIGHTS]
        if self.orientation_net is not None:
            names.append(ORIENTATION_WEIGHTS)
        files = [d / n for n in names]
        if self.backend == Backend.ONNX:
            files += [graph_path(d / n) for n in names[1:]]
        return files

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
        with timed(timings, "resize_s"):
            pixels = np.asarray(radiograph.pixels, dtype=np.float32)
            if pixels.ndim != 2:
                raise SpineError(
                    f"expected a 2-D film, got shape {pixels.shape}", radiograph.source
                )
            shape = (int(pixels.shape[0]), int(pixels.shape[1]))
            box = Letterbox.fit(shape, self.plans.patch_size)
            resized = box.resize_image(pixels)
            valid = box.valid_mask()

        with timed(timings, "orientation_s"):
            p_right: float | None = None
            if anterior_side is None:
                p_right = self.probability_right(box.pad(resized), valid)
                side = Side.RIGHT if (p_right is not None and p_right >= 0.5) else Side.LEFT
            else:
                side = Side.parse(anterior_side)

        def run(side: Side) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
            canon = box.pad(
                np.ascontiguousarray(resized[:, ::-1] if side == Side.RIGHT else resized)
            )
            return canon, self.logits(canon, valid)

        with timed(timings, "network_s"):
            canon, logits = run(side)
        with timed(timings, "orientation_check_s"):
            if anterior_side is None:
                coarse = clean_labels(logits.argmax(axis=0).astype(np.uint8))[0]
                # both cues are measured on the canonicalised film: convert to the original
                flip = mirrored_cue if side == Side.RIGHT else (lambda v: v)
                cue = flip(posterior_cue(canon, coarse))
                sacrum = flip(sacrum_cue(coarse))
                if p_right is None:
                    orientation = cue_only_orientation(cue, sacrum)
                else:
                    orientation = decide(p_right, cue, sacrum)
                if orientation.anterior_side != side:
                    side = orientation.anterior_side
                    canon, logits = run(side)
            else:
                orientation = OrientationResult(
                    side, 1.0 if side == Side.RIGHT else 0.0, None, "given"
                )

        with timed(timings, "levels_s"):
            logits, count = anchor_levels(logits)
            level_note = count.note()
        with timed(timings, "geometry_s"):
            model_spacing = box.model_spacing(radiograph.spacing_mm)
            traced = trace_logits(logits, model_spacing, radiograph.source, check=False)
            geo, labels_model = traced.geometry, traced.labels
            confidence = spine_confidence(logits, labels_model)
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
                margin = max(2.0, 1.5 / min(sy, sx))  # 1.5 pixels of the network's input
                warnings += check_plausibility(
                    verts,
                    radiograph.spacing_mm,
                    radiograph.source,
                    shape=shape,
                    edge_margin_px=margin,
                )
            warnings += w
            flags, reasons = spine_flags(
                verts, orientation, confidence, () if level_note is None else (level_note,)
            )
            warnings += reasons

        with timed(timings, "labels_s"):
            fine = fine_label_map(logits, labels_model, FINE_FACTOR, upsampled=traced.upsampled)
            labels = box.labels_to_image(fine, factor=FINE_FACTOR, mirrored=frame.mirrored)
        timings["total_s"] = sum(timings.values())
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
            flags=flags,
            confidence=confidence,
        )


def load_spine_model(
    spec: str | os.PathLike[str] | None = None, backend: str | Backend | None = None
) -> SpineModelProtocol:
    """A spine model from a folder of aacscore weights (default: shipped) or ``nnunet:FOLDER``.

    A folder holding a ``fallback/`` spine model folder gives a
    :class:`~aacscore.spine.fallback.FallbackSpineModel` (the shipped folder does).

    ``nnunet:RESULTS_FOLDER`` uses nnU-Net v2's predictor on a trained nnU-Net model folder
    (needs PyTorch and nnU-Net: ``pip install 'aacscore[train,nnunet]'``; ``backend`` then
    applies to its orientation classifier only).
    """
    if spec is not None and str(spec).startswith("nnunet:"):
        from aacscore.backend import torch_available

        if not torch_available():
            from aacscore.spine.nnunet import NnUNetUnavailableError

            raise NnUNetUnavailableError(
                f"--spine-model {spec}: the nnU-Net spine model runs on PyTorch only, which is "
                "not installed: pip install 'aacscore[train,nnunet]' (or score with the shipped "
                "spine model on the onnx backend)"
            )
        from aacscore.spine.nnunet import NnUNetSpineModel

        return NnUNetSpineModel.load(str(spec)[len("nnunet:") :])
    model = SpineModel.load(None if spec is None else Path(spec), backend=backend)
    second = fallback_folder(model.model_dir or default_model_dir())
    if second is None:
        return model
    return FallbackSpineModel(model, SpineModel.load(second, backend=backend))


__all__ = [
    "CLASS_NAMES",
    "MODEL_CARD",
    "PLANS_FILE",
    "SpineModel",
    "SpineModelProtocol",
    "SpineResult",
    "clean_labels",
    "contours_from_logits",
    "default_model_dir",
    "fine_label_map",
    "geometry_from_logits",
    "load_spine_model",
    "result_from_label_scores",
    "trace_logits",
]
