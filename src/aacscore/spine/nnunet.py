"""nnU-Net v2 backed spine model (optional extras ``aacscore[train,nnunet]``: PyTorch only,
whatever the backend; the backend runs its orientation classifier).

``--spine-model nnunet:RESULTS_FOLDER`` (the folder holding ``dataset.json``, ``plans.json`` and
``fold_*``) segments films with nnU-Net's predictor. nnU-Net sees pixels (spacing 999, 1, 1), so
the pixel scale must match between training and prediction: the dataset export
(:mod:`aacscore.training.nnunet_export`) records ``"aacscore": {"max_side": M, ...}`` in
``dataset.json`` and :class:`NnUNetSpineModel` downsizes larger films by the same rule before
prediction, mapping the probabilities back to the film's pixels.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from aacscore.backend.resample import resize_bilinear
from aacscore.io import Radiograph
from aacscore.spine.classifier import OrientationClassifier
from aacscore.spine.orientation import (
    OrientationResult,
    cue_only_orientation,
    decide,
    posterior_cue,
    sacrum_cue,
)
from aacscore.spine.preprocess import Letterbox
from aacscore.spine.result import SpineResult, clean_labels, result_from_label_scores
from aacscore.spine.weights import default_model_dir
from aacscore.vertebrae import CLASS_NAMES, Side

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'aacscore[nnunet]'"
#: dataset.json key (not one of nnU-Net's) holding aacscore's export settings
METADATA_KEY = "aacscore"
#: files of a results folder (and of its fold_* folders) that determine the predictions
CONFIG_FILES: tuple[str, ...] = ("dataset.json", "plans.json", "dataset_fingerprint.json")


class NnUNetUnavailableError(ImportError):
    """nnU-Net v2 is not installed."""


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


def available_folds(folder: Path, checkpoint: str) -> tuple[int, ...]:
    """The folds nnU-Net's predictor uses when given ``use_folds=None``
    (``nnUNetPredictor.auto_detect_available_folds``): the ``fold_<n>`` folders, ``fold_all``
    excepted, that hold ``checkpoint``, in name order."""
    names = sorted(d.name for d in folder.glob("fold_*") if d.is_dir())
    return tuple(
        int(n[len("fold_") :])
        for n in names
        if n[len("fold_") :].isdigit() and (folder / n / checkpoint).is_file()
    )


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
        folds: tuple[int | str, ...] | None = None,
        checkpoint: str = "checkpoint_final.pth",
    ) -> None:
        if max_side is not None and max_side < 1:
            raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
        self.predictor = predictor
        self.folder = folder
        self.orientation_model = orientation_model
        self.max_side = max_side
        self.folds = folds
        self.checkpoint = checkpoint

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

        ``max_side`` (pixels) overrides the one the dataset export recorded in the folder's
        ``dataset.json``; with neither, films are segmented at full resolution.
        """
        predictor_cls = _import_predictor()
        import torch

        path = Path(folder)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: nnU-Net results folder not found")
        used = folds
        if used is None:
            # nnU-Net finds the folds itself; with none it fails obscurely, so say so here, and
            # keep the ones it will use (for weight_files)
            used = available_folds(path, checkpoint)
            if not used:
                raise FileNotFoundError(f"{path}: no fold_* folder holds {checkpoint}")
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
        orient: OrientationClassifier | None = None
        try:
            orient = OrientationClassifier.load(default_model_dir())
        except Exception as exc:  # the orientation classifier is optional here
            logger.info("no aacscore orientation classifier (%s); using the image cue", exc)
        return cls(predictor, path, orient, max_side, used, checkpoint)

    def weight_files(self) -> list[Path]:
        """Files that determine the predictions: the checkpoints of the folds in use (those
        nnU-Net detects when no folds were given), the results folder's (and folds')
        plans/dataset json, and the orientation classifier's."""
        folds = (
            self.folds if self.folds is not None else available_folds(self.folder, self.checkpoint)
        )
        dirs = [self.folder, *(self.folder / f"fold_{f}" for f in folds)]
        files: list[Path] = []
        for d in dirs:
            files += [d / n for n in (*CONFIG_FILES, self.checkpoint) if (d / n).is_file()]
        if self.orientation_model is not None:
            files += self.orientation_model.weight_files()
        return files

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
        scores = np.asarray(probs, dtype=np.float32).reshape(len(CLASS_NAMES), *net_img.shape)
        if box is not None:
            # back to the film's pixels (pixel centres, as Letterbox maps points)
            scores = resize_bilinear(scores, shape)
            seg = scores.argmax(axis=0).astype(np.uint8)
        timings = {"network_s": time.perf_counter() - t0}
        if anterior_side is not None:
            side = Side.parse(anterior_side)
            orientation = OrientationResult(side, 1.0 if side == Side.RIGHT else 0.0, None, "given")
        else:
            labels, _ = clean_labels(np.asarray(seg).reshape(img.shape).astype(np.uint8))
            cue = posterior_cue(img, labels)
            sacrum = sacrum_cue(labels)
            if self.orientation_model is not None:
                box = Letterbox.fit(img.shape, self.orientation_model.plans.patch_size)
                p = self.orientation_model.probability_right(
                    box.pad(box.resize_image(img)), box.valid_mask()
                )
                orientation = (
                    decide(p, cue, sacrum) if p is not None else cue_only_orientation(cue, sacrum)
                )
            else:
                orientation = cue_only_orientation(cue, sacrum)
        return result_from_label_scores(radiograph, scores, orientation, check, timings)
