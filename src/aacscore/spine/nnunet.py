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

nnU-Net sees pixels (spacing 999, 1, 1), so the pixel scale must match between training and
prediction. ``export_nnunet(max_side=M)`` records ``"aacscore": {"max_side": M, ...}`` in
``dataset.json`` (a key nnU-Net ignores; planning copies the raw dataset.json and training saves
it into the results folder); :class:`NnUNetSpineModel` reads it back and downsizes larger films
by the same rule before prediction, mapping the probabilities back to the film's pixels.
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
import torch.nn.functional as F
from PIL import Image

from aacscore import __version__
from aacscore.io import Radiograph
from aacscore.spine.data import (
    Letterbox,
    SpineDataError,
    discover_cases,
    load_image,
    load_labels,
)
from aacscore.spine.orientation import cue_only_orientation, posterior_cue
from aacscore.spine.predict import (
    SpineResult,
    clean_labels,
    default_model_dir,
    result_from_label_scores,
)
from aacscore.vertebrae import CLASS_NAMES, Side

logger = logging.getLogger(__name__)

DATASET_NAME = "AACSpine"
INSTALL_HINT = "pip install 'aacscore[nnunet]'"
#: dataset.json key (not one of nnU-Net's) holding aacscore's export settings
METADATA_KEY = "aacscore"


class NnUNetUnavailableError(ImportError):
    """nnU-Net v2 is not installed."""


def dataset_folder_name(dataset_id: int) -> str:
    """``DatasetNNN_AACSpine`` (nnU-Net ids are 1-999)."""
    if not 1 <= int(dataset_id) <= 999:
        raise ValueError(f"nnU-Net dataset ids are 1-999, got {dataset_id}")
    return f"Dataset{int(dataset_id):03d}_{DATASET_NAME}"


def downsize_box(shape: tuple[int, int], max_side: int | None) -> Letterbox | None:
    """The export's resize rule: a film whose longest side exceeds ``max_side`` is scaled (aspect
    kept, sides rounded) so that its longest side is ``max_side``; ``None`` when it is not resized.
    """
    if max_side is None:
        return None
    if max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
    h, w = int(shape[0]), int(shape[1])
    if max(h, w) <= max_side:
        return None
    s = max_side / max(h, w)
    target = (max(1, round(h * s)), max(1, round(w * s)))
    return Letterbox((h, w), target, target, (0, 0))


def dataset_json(num_training: int, max_side: int | None = None) -> dict[str, Any]:
    """nnU-Net v2 ``dataset.json`` content for the spine dataset.

    Besides nnU-Net's keys it records the export's ``max_side`` under ``"aacscore"``, which
    nnU-Net ignores and carries into the trained model's results folder.
    """
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
        METADATA_KEY: {
            "version": __version__,
            "max_side": None if max_side is None else int(max_side),
        },
    }


def recorded_max_side(dataset_json_path: Path) -> int | None:
    """The ``max_side`` :func:`export_nnunet` recorded in a ``dataset.json`` (``None`` when the
    file, the ``"aacscore"`` entry or the value is absent)."""
    if not dataset_json_path.is_file():
        return None
    try:
        content = json.loads(dataset_json_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{dataset_json_path}: cannot read dataset.json ({exc})") from exc
    meta = content.get(METADATA_KEY) if isinstance(content, dict) else None
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise ValueError(f"{dataset_json_path}: {METADATA_KEY!r} must be a JSON object")
    value = meta.get("max_side")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{dataset_json_path}: {METADATA_KEY}.max_side must be a positive integer, "
            f"got {value!r}"
        )
    return value


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

    ``max_side`` downsizes films whose longest side exceeds it to that longest side (antialiased
    bilinear image, labels by area majority; :func:`downsize_box`) and records it in
    ``dataset.json`` so that :class:`NnUNetSpineModel` downsizes films the same way;
    ``canonical`` mirrors films with the anterior on the right into the canonical orientation.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
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
        box = downsize_box((int(pixels.shape[0]), int(pixels.shape[1])), max_side)
        if box is not None:
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
    js.write_text(json.dumps(dataset_json(len(cases), max_side), indent=2) + "\n")
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

    nnU-Net segments the film as it is (it is trained with mirroring), after downsizing it like
    the export when ``max_side`` is set (films whose longest side exceeds it); the class
    probabilities are mapped back to the film's pixels. The anterior side comes from aacscore's
    orientation classifier when shipped weights exist, else from the image cue.
    """

    def __init__(
        self,
        predictor: Any,
        folder: Path,
        orientation_model: Any | None,
        max_side: int | None = None,
    ) -> None:
        if max_side is not None and max_side < 1:
            raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
        self.predictor = predictor
        self.folder = folder
        self.orientation_model = orientation_model
        self.max_side = max_side

    @classmethod
    def load(
        cls,
        folder: str | Path,
        folds: tuple[int | str, ...] | None = None,
        checkpoint: str = "checkpoint_final.pth",
        device: str = "cpu",
        max_side: int | None = None,
    ) -> NnUNetSpineModel:
        """Load a trained nnU-Net v2 results folder.

        ``max_side`` (pixels) overrides the one :func:`export_nnunet` recorded in the folder's
        ``dataset.json``; with neither, films are segmented at full resolution.
        """
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
        recorded = recorded_max_side(path / "dataset.json")
        if max_side is None:
            max_side = recorded
        elif recorded is not None and recorded != max_side:
            logger.warning(
                "%s: trained on films downsized to max_side %d; predicting with max_side %d",
                path / "dataset.json",
                recorded,
                max_side,
            )
        if max_side is not None:
            logger.info(
                "films whose longest side exceeds %d px are downsized for nnU-Net", max_side
            )
        orient = None
        try:
            from aacscore.spine.predict import SpineModel

            if (default_model_dir() / "orientation.safetensors").is_file():
                orient = SpineModel.load(default_model_dir())
        except Exception as exc:  # the orientation classifier is optional here
            logger.info("no aacscore orientation classifier (%s); using the image cue", exc)
        return cls(predictor, path, orient, max_side)

    def predict(
        self, radiograph: Radiograph, anterior_side: str | Side | None = None, check: bool = True
    ) -> SpineResult:
        """Segment the film with nnU-Net and trace the vertebrae (in the film's own pixels)."""
        t0 = time.perf_counter()
        img = np.asarray(radiograph.pixels, dtype=np.float32)
        shape = (int(img.shape[0]), int(img.shape[1]))
        box = downsize_box(shape, self.max_side)
        net_img = box.resize_image(img) if box is not None else img
        # NaturalImage2DIO convention: (channels, 1, rows, cols), spacing (999, 1, 1)
        seg, probs = self.predictor.predict_single_npy_array(
            net_img[None, None], {"spacing": [999.0, 1.0, 1.0]}, None, None, True
        )
        scores = torch.from_numpy(
            np.asarray(probs, dtype=np.float32).reshape(len(CLASS_NAMES), *net_img.shape)
        )
        if box is not None:
            # back to the film's pixels (pixel centres, as Letterbox maps points)
            up = F.interpolate(scores[None], size=shape, mode="bilinear", align_corners=False)
            scores = up[0]
            seg = scores.argmax(dim=0).numpy().astype(np.uint8)
        timings = {"network_s": time.perf_counter() - t0}
        if anterior_side is not None:
            from aacscore.spine.orientation import OrientationResult

            side = Side.parse(anterior_side)
            orientation = OrientationResult(side, 1.0 if side == Side.RIGHT else 0.0, None, "given")
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
