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
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from aacscore._timing import timed
from aacscore.io import Radiograph
from aacscore.spine.classifier import probability_right
from aacscore.spine.flags import spine_confidence, spine_flags
from aacscore.spine.geometry import (
    check_plausibility,
)
from aacscore.spine.network import (
    MODEL_CARD,
    ORIENTATION_WEIGHTS,
    PLANS_FILE,
    UNET_WEIGHTS,
    OrientationNet,
    WeightsError,
    build_orientation_net,
    build_unet,
    default_model_dir,
    load_weights,
)
from aacscore.spine.orientation import (
    CanonicalFrame,
    OrientationResult,
    cue_only_orientation,
    decide,
    posterior_cue,
)
from aacscore.spine.plans import Plans
from aacscore.spine.preprocess import Letterbox, zscore
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
)
from aacscore.vertebrae import (
    CLASS_NAMES,
    FloatArray,
    Side,
    SpineError,
)

logger = logging.getLogger(__name__)


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
        return probability_right(self.orientation_net, self.plans, image, valid)

    def weight_files(self) -> list[Path]:
        """Files that determine the predictions: ``plans.json`` and the safetensors weights."""
        d = self.model_dir if self.model_dir is not None else default_model_dir()
        names = [PLANS_FILE, UNET_WEIGHTS]
        if self.orientation_net is not None:
            names.append(ORIENTATION_WEIGHTS)
        return [d / n for n in names]

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

        def run(side: Side) -> tuple[npt.NDArray[np.float32], torch.Tensor]:
            canon = box.pad(
                np.ascontiguousarray(resized[:, ::-1] if side == Side.RIGHT else resized)
            )
            return canon, self.logits(canon, valid)

        with timed(timings, "network_s"):
            canon, logits = run(side)
        with timed(timings, "orientation_check_s"):
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
                orientation = OrientationResult(
                    side, 1.0 if side == Side.RIGHT else 0.0, None, "given"
                )

        with timed(timings, "geometry_s"):
            model_spacing = box.model_spacing(radiograph.spacing_mm)
            geo, labels_model = geometry_from_logits(
                logits, model_spacing, radiograph.source, check=False
            )
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
            flags, reasons = spine_flags(verts, orientation, confidence)
            warnings += reasons

        with timed(timings, "labels_s"):
            fine = fine_label_map(logits, labels_model, FINE_FACTOR)
            labels_canon = box.labels_to_image(fine, factor=FINE_FACTOR)
            labels = frame.to_original_image(labels_canon)
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


def load_spine_model(spec: str | os.PathLike[str] | None = None) -> SpineModelProtocol:
    """A spine model from a folder of aacscore weights (default: shipped) or ``nnunet:FOLDER``.

    ``nnunet:RESULTS_FOLDER`` uses nnU-Net v2's predictor on a trained nnU-Net model folder
    (needs ``pip install 'aacscore[nnunet]'``).
    """
    if spec is not None and str(spec).startswith("nnunet:"):
        from aacscore.spine.nnunet import NnUNetSpineModel

        return NnUNetSpineModel.load(str(spec)[len("nnunet:") :])
    return SpineModel.load(None if spec is None else Path(spec))


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
]
