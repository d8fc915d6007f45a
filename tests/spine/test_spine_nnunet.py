"""nnU-Net v2 export layout (checked against dataset_format.md) and the optional predictor."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from spine_synth import write_dataset
from typer.testing import CliRunner

from aacscore.cli import app
from aacscore.spine.nnunet import (
    NnUNetSpineModel,
    NnUNetUnavailableError,
    dataset_folder_name,
    export_nnunet,
)
from aacscore.spine.predict import load_spine_model

# nnU-Net v2 documentation (dataset_format.md): required dataset.json keys and their meaning
REQUIRED_KEYS = {"channel_names", "labels", "numTraining", "file_ending"}


def _check_layout(root: Path, n: int) -> dict[str, Any]:
    ds = json.loads((root / "dataset.json").read_text())
    assert REQUIRED_KEYS <= set(ds)
    assert ds["channel_names"] == {"0": "X-ray"}  # not "CT": per-image z-scoring
    labels = ds["labels"]
    assert labels["background"] == 0
    # consecutive integers starting at 0, names matching the simulator's label values
    assert sorted(labels.values()) == list(range(len(labels)))
    assert {k: labels[k] for k in ("L1", "L2", "L3", "L4", "L5", "T12", "S1")} == {
        "L1": 1,
        "L2": 2,
        "L3": 3,
        "L4": 4,
        "L5": 5,
        "T12": 6,
        "S1": 7,
    }
    assert ds["numTraining"] == n
    assert ds["file_ending"] == ".png"
    images = sorted((root / "imagesTr").iterdir())
    segs = sorted((root / "labelsTr").iterdir())
    assert len(images) == len(segs) == n
    for img, seg in zip(images, segs, strict=True):
        # case_identifier_XXXX.png with channel 0000; segmentation case_identifier.png
        assert img.name.endswith("_0000.png")
        assert seg.name == img.name[: -len("_0000.png")] + ".png"
        a, b = np.asarray(Image.open(img)), np.asarray(Image.open(seg))
        assert a.shape == b.shape and a.dtype == np.uint16 and b.dtype == np.uint8
        assert int(b.max()) <= 7
    return ds


def test_export_layout(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "sim", 3)
    summary = export_nnunet(data, tmp_path / "raw", 501)
    assert summary.dataset_dir == tmp_path / "raw" / "Dataset501_AACSpine"
    _check_layout(summary.dataset_dir, 3)
    with pytest.raises(ValueError, match="1-999"):
        dataset_folder_name(1000)


def test_export_downsizes_and_canonicalises(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "sim", 3)
    summary = export_nnunet(data, tmp_path / "raw", 7, max_side=48, canonical=True)
    assert summary.dataset_dir.name == "Dataset007_AACSpine"
    seg = np.asarray(Image.open(summary.dataset_dir / "labelsTr" / "case_000002.png"))
    assert max(seg.shape) == 48
    # case 2 is mirrored in the source; canonical export puts the bodies' anterior side left:
    # the (bright, unlabelled) posterior elements are right of L3
    img = np.asarray(Image.open(summary.dataset_dir / "imagesTr" / "case_000002_0000.png"))
    cols = np.nonzero((seg == 3).any(axis=0))[0]
    rows = np.nonzero((seg == 3).any(axis=1))[0]
    band = img[rows.min() : rows.max() + 1].astype(float)
    assert (
        band[:, cols.max() + 1 : cols.max() + 5].mean()
        > band[:, max(cols.min() - 5, 0) : cols.min()].mean()
    )


def test_cli_export_nnunet(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "sim", 2)
    res = CliRunner().invoke(app, ["export-nnunet", str(data), str(tmp_path / "raw"), "--id", "12"])
    assert res.exit_code == 0, res.output
    _check_layout(tmp_path / "raw" / "Dataset012_AACSpine", 2)
    bad = CliRunner().invoke(
        app, ["export-nnunet", str(tmp_path / "nope"), str(tmp_path / "raw"), "--id", "12"]
    )
    assert bad.exit_code == 1


def test_nnunet_model_without_nnunet_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("nnunetv2"):
            raise ImportError("No module named 'nnunetv2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(NnUNetUnavailableError, match=r"pip install 'aacscore\[nnunet\]'"):
        load_spine_model(f"nnunet:{tmp_path}")
    with pytest.raises(ImportError):
        NnUNetSpineModel.load(tmp_path)
