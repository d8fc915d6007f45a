"""nnU-Net v2 dataset export (the model trained on it is used by :mod:`aacscore.spine.nnunet`).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aacscore._version import __version__
from aacscore.spine.nnunet import METADATA_KEY, downsize_box
from aacscore.training.errors import SpineDataError
from aacscore.training.spine_data import discover_cases, load_image, load_labels
from aacscore.vertebrae import CLASS_NAMES

DATASET_NAME = "AACSpine"


def dataset_folder_name(dataset_id: int) -> str:
    """``DatasetNNN_AACSpine`` (nnU-Net ids are 1-999)."""
    if not 1 <= int(dataset_id) <= 999:
        raise ValueError(f"nnU-Net dataset ids are 1-999, got {dataset_id}")
    return f"Dataset{int(dataset_id):03d}_{DATASET_NAME}"


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
