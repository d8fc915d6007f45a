"""nnU-Net v2 interoperability: dataset export and an optional nnU-Net-backed spine model.

``export_nnunet`` writes the raw-dataset layout described in nnU-Net's ``dataset_format.md``::

    DatasetNNN_AACSpine/
    ├── dataset.json      # channel_names, labels (name -> int), numTraining, file_ending
    ├── imagesTr/<case>_0000.png   # 16-bit grey, bone bright
    └── labelsTr/<case>.png        # uint8 body labels 0..7

The channel is named "X-ray" so nnU-Net z-scores it per image (only "CT" gets the global CT
normalisation). Train it with ``nnUNetv2_plan_and_preprocess -d NNN`` and
``nnUNetv2_train NNN 2d FOLD``; use the result with ``--spine-model nnunet:RESULTS_FOLDER``
(the folder holding ``dataset.json``, ``plans.json`` and ``fold_*``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from aacscore.io import Radiograph
from aacscore.spine.data import (
    Letterbox,
    SpineDataError,
    discover_cases,
    load_image,
    load_labels,
)
from aacscore.spine.geometry import CLASS_NAMES
from aacscore.spine.orientation import cue_only_orientation, posterior_cue
from aacscore.spine.predict import (
    SpineResult,
    clean_labels,
    default_model_dir,
    result_from_label_scores,
)

logger = logging.getLogger(__name__)

DATASET_NAME = "AACSpine"
INSTALL_HINT = "pip install 'aacscore[nnunet]'"


class NnUNetUnavailableError(ImportError):
    """nnU-Net v2 is not installed."""


def dataset_folder_name(dataset_id: int) -> str:
    """``DatasetNNN_AACSpine`` (nnU-Net ids are 1-999)."""
    if not 1 <= int(dataset_id) <= 999:
        raise ValueError(f"nnU-Net dataset ids are 1-999, got {dataset_id}")
    return f"Dataset{int(dataset_id):03d}_{DATASET_NAME}"


def dataset_json(num_training: int) -> dict[str, Any]:
    """nnU-Net v2 ``dataset.json`` content for the spine dataset."""
    return {
        "channel_names": {"0": "X-ray"},
        "labels": {name: i for i, name in enumerate(CLASS_NAMES)},
        "numTraining": int(num_training),
        "file_ending": ".png",
        "overwrite_image_reader_writer": "NaturalImage2DIO",
        "name": DATASET_NAME,
        "description": (
            "Vertebral bodies T12-S1 on lateral lumbar radiographs (aacscore export); "
            "0 background, L1..L5 = 1..5, T12 = 6, S1 = 7"
        ),
        "reference": "aacscore",
        "licence": "see source data",
    }


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_nnunet` wrote."""

    dataset_dir: Path
    n_cases: int
    dataset_json: Path


def export_nnunet(
    data_dir: str | Path,
    out_dir: str | Path,
    dataset_id: int,
    max_side: int | None = None,
    canonical: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write simulator output or your own films + label maps as an nnU-Net v2 raw dataset.

    ``max_side`` downsizes films whose longest side exceeds it (labels by area majority);
    ``canonical`` mirrors films with the anterior on the right into the canonical orientation.
    """
    cases = discover_cases(data_dir)
    root = Path(out_dir) / dataset_folder_name(dataset_id)
    images_tr, labels_tr = root / "imagesTr", root / "labelsTr"
    images_tr.mkdir(parents=True, exist_ok=True)
    labels_tr.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for case in cases:
        ident = case.case_id
        if ident in seen:
            raise SpineDataError(case.image_path, f"duplicate case identifier {ident}")
        seen.add(ident)
        pixels, _ = load_image(case.image_path, case.spacing_mm)
        labels = load_labels(case.labels_path, (int(pixels.shape[0]), int(pixels.shape[1])))
        if max_side is not None and max(pixels.shape) > max_side:
            s = max_side / max(pixels.shape)
            target = (max(1, round(pixels.shape[0] * s)), max(1, round(pixels.shape[1] * s)))
            box = Letterbox.fit((int(pixels.shape[0]), int(pixels.shape[1])), target)
            pixels = box.resize_image(pixels)
            labels = box.resize_labels(labels)
        if canonical and case.anterior_side == "right":
            pixels, labels = pixels[:, ::-1], labels[:, ::-1]
        img16 = np.clip(np.round(np.asarray(pixels) * 65535.0), 0, 65535).astype(np.uint16)
        Image.fromarray(np.ascontiguousarray(img16)).save(images_tr / f"{ident}_0000.png")
        Image.fromarray(np.ascontiguousarray(labels.astype(np.uint8))).save(
            labels_tr / f"{ident}.png"
        )
        if progress is not None:
            progress(1)
    js = root / "dataset.json"
    js.write_text(json.dumps(dataset_json(len(cases)), indent=2) + "\n")
    return ExportSummary(root, len(cases), js)


def _import_predictor() -> Any:
    try:
        from nnunetv2.inference.predict_from_raw_data import (
            nnUNetPredictor,
        )
    except ImportError as exc:
        raise NnUNetUnavailableError(
            f"the 'nnunet:' spine model needs nnU-Net v2, which is not installed: {INSTALL_HINT}"
        ) from exc
    return nnUNetPredictor


class NnUNetSpineModel:
    """Spine model backed by a trained nnU-Net v2 2D model (optional extra ``aacscore[nnunet]``).

    nnU-Net segments the film as it is (it is trained with mirroring); the anterior side comes
    from aacscore's orientation classifier when shipped weights exist, else from the image cue.
    """

    def __init__(self, predictor: Any, folder: Path, orientation_model: Any | None) -> None:
        self.predictor = predictor
        self.folder = folder
        self.orientation_model = orientation_model

    @classmethod
    def load(
        cls,
        folder: str | Path,
        folds: tuple[int | str, ...] | None = None,
        checkpoint: str = "checkpoint_final.pth",
        device: str = "cpu",
    ) -> NnUNetSpineModel:
        predictor_cls = _import_predictor()
        path = Path(folder)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: nnU-Net results folder not found")
        predictor = predictor_cls(
            tile_step_size=0.5,
            use_gaussian=True,
            use_mirroring=True,
            perform_everything_on_device=device != "cpu",
            device=torch.device(device),
            verbose=False,
            verbose_preprocessing=False,
            allow_tqdm=False,
        )
        predictor.initialize_from_trained_model_folder(
            str(path), use_folds=folds, checkpoint_name=checkpoint
        )
        orient = None
        try:
            from aacscore.spine.predict import SpineModel

            if (default_model_dir() / "orientation.safetensors").is_file():
                orient = SpineModel.load(default_model_dir())
        except Exception as exc:  # the orientation classifier is optional here
            logger.info("no aacscore orientation classifier (%s); using the image cue", exc)
        return cls(predictor, path, orient)

    def predict(
        self, radiograph: Radiograph, anterior_side: str | None = None, check: bool = True
    ) -> SpineResult:
        t0 = time.perf_counter()
        img = np.asarray(radiograph.pixels, dtype=np.float32)
        # NaturalImage2DIO convention: (channels, 1, rows, cols), spacing (999, 1, 1)
        seg, probs = self.predictor.predict_single_npy_array(
            img[None, None], {"spacing": [999.0, 1.0, 1.0]}, None, None, True
        )
        scores = torch.from_numpy(
            np.asarray(probs, dtype=np.float32).reshape(len(CLASS_NAMES), *img.shape)
        )
        timings = {"network_s": time.perf_counter() - t0}
        if anterior_side is not None:
            from aacscore.spine.orientation import OrientationResult

            orientation = OrientationResult(
                anterior_side, 1.0 if anterior_side == "right" else 0.0, None, "given"
            )
        else:
            labels, _ = clean_labels(np.asarray(seg).reshape(img.shape).astype(np.uint8))
            cue = posterior_cue(img, labels)
            if self.orientation_model is not None:
                from aacscore.spine.orientation import decide

                box = Letterbox.fit(img.shape, self.orientation_model.plans.patch_size)
                p = self.orientation_model.probability_right(
                    box.pad(box.resize_image(img)), box.valid_mask()
                )
                orientation = decide(p, cue) if p is not None else cue_only_orientation(cue)
            else:
                orientation = cue_only_orientation(cue)
        return result_from_label_scores(radiograph, scores, orientation, check, timings)
