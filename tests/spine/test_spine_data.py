"""Case discovery, letterboxing, the preprocessed cache and augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from spine_synth import make_film, write_case, write_dataset

from aacscore.spine.data import (
    NO_AUGMENTATION,
    AugmentConfig,
    Letterbox,
    SpineDataError,
    augment_batch,
    batch_tensors,
    discover_cases,
    load_or_build_cache,
    zscore,
)
from aacscore.spine.geometry import LABEL_VALUES, LEVEL_ORDER
from aacscore.spine.plans import CaseShape, Plans, compute_fingerprint, plan_from_fingerprint


def _plans(spacing: tuple[float, float] | None) -> Plans:
    fp = compute_fingerprint([CaseShape((96, 64), spacing)])
    return plan_from_fingerprint(fp, patch_size=(64, 48))


def test_discover_simulator_layout(tmp_path: Path) -> None:
    write_dataset(tmp_path, 3)
    (tmp_path / "case_000000_calc.png").write_bytes(b"")  # ignored
    cases = discover_cases(tmp_path)
    assert [c.case_id for c in cases] == ["case_000000", "case_000001", "case_000002"]
    c = cases[2]
    assert c.anterior_side == "right" and c.spacing_mm == (1.5, 1.5) and c.shape == (96, 64)
    assert set(c.corners) == set(LEVEL_ORDER)


def test_discover_user_layout_pairing_and_errors(tmp_path: Path) -> None:
    film = make_film(1, shape=(96, 64))
    write_case(tmp_path, "patient_a", film, with_json=False)
    # a DICOM with the same stem would be preferred; a JPEG is used when alone
    Image.fromarray((film["image"] * 255).astype(np.uint8)).save(tmp_path / "patient_b.jpg")
    Image.fromarray(film["labels"]).save(tmp_path / "patient_b_labels.png")
    cases = discover_cases(tmp_path, default_anterior_side="left")
    assert [c.image_path.name for c in cases] == ["patient_a.png", "patient_b.jpg"]
    assert all(c.anterior_side == "left" and c.spacing_mm is None for c in cases)
    Image.fromarray(film["labels"]).save(tmp_path / "orphan_labels.png")
    with pytest.raises(SpineDataError, match=r"orphan_labels\.png: no image"):
        discover_cases(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpineDataError, match="no training cases"):
        discover_cases(tmp_path / "empty")
    with pytest.raises(SpineDataError, match="not found"):
        discover_cases(tmp_path / "nope")


def test_bad_annotations_and_labels(tmp_path: Path) -> None:
    film = make_film(2, shape=(96, 64))
    write_case(tmp_path, "c1", film)
    (tmp_path / "c1.json").write_text(json.dumps({"anterior_side": "up"}))
    with pytest.raises(SpineDataError, match=r"c1\.json: anterior_side"):
        discover_cases(tmp_path)
    (tmp_path / "c1.json").write_text(json.dumps({"spacing_mm": [-1, 0.2]}))
    with pytest.raises(SpineDataError, match="spacing_mm"):
        discover_cases(tmp_path)
    (tmp_path / "c1.json").unlink()
    lab = film["labels"].copy()
    lab[0, 0] = 9
    Image.fromarray(lab).save(tmp_path / "c1_labels.png")
    plans = plan_from_fingerprint(
        compute_fingerprint([CaseShape((96, 64), None)]), patch_size=(64, 48)
    )
    with pytest.raises(SpineDataError, match=r"label values must be 0\.\.7"):
        load_or_build_cache(discover_cases(tmp_path), plans, tmp_path / "cache.npz")
    Image.fromarray(film["labels"][:50]).save(tmp_path / "c1_labels.png")
    with pytest.raises(SpineDataError, match="differs from the image"):
        load_or_build_cache(discover_cases(tmp_path), plans, tmp_path / "cache.npz")


def test_letterbox_mapping_round_trip() -> None:
    box = Letterbox.fit((2000, 1500), (288, 192))
    assert box.resized[0] <= 288 and box.resized[1] <= 192
    assert max(abs(box.resized[0] / 2000 - box.resized[1] / 1500), 0) < 0.002
    pts = np.array([[0.0, 0.0], [1499.0, 1999.0], [700.3, 1200.7]])
    assert np.allclose(box.to_image(box.to_model(pts)), pts)
    # pixel-centre convention: the film's outer edges map to the resized box edges
    edges = box.to_model(np.array([[-0.5, -0.5], [1499.5, 1999.5]]))
    y0, y1, x0, x1 = box.box
    assert np.allclose(edges, [[x0 - 0.5, y0 - 0.5], [x1 - 0.5, y1 - 0.5]])
    # a model-grid label map maps back onto the film at the right place
    lab = np.zeros((2000, 1500), dtype=np.uint8)
    lab[600:900, 500:800] = 3
    model = box.pad(box.resize_labels(lab))
    back = box.labels_to_image(model)
    inter = np.logical_and(back == 3, lab == 3).sum()
    assert 2 * inter / ((back == 3).sum() + (lab == 3).sum()) > 0.97


def test_cache_is_built_once_and_canonical(tmp_path: Path) -> None:
    write_dataset(tmp_path / "d", 3)
    cases = discover_cases(tmp_path / "d")
    plans = plan_from_fingerprint(
        compute_fingerprint([CaseShape((96, 64), (1.5, 1.5))]), patch_size=(64, 48)
    )
    data, built = load_or_build_cache(cases, plans, tmp_path / "cache.npz")
    assert built and data.images.shape == (3, 64, 48) and data.images.dtype == np.float16
    again, built2 = load_or_build_cache(cases, plans, tmp_path / "cache.npz")
    assert not built2 and again.key == data.key
    assert np.array_equal(again.labels, data.labels)
    assert data.mirrored.tolist() == [False, False, True]
    # canonical: in every case the posterior elements (bright, no label) are right of the bodies
    for i in range(3):
        img, lab = data.images[i].astype(np.float32), data.labels[i]
        cols = np.nonzero((lab == LABEL_VALUES["L3"]).any(axis=0))[0]
        rows = np.nonzero((lab == LABEL_VALUES["L3"]).any(axis=1))[0]
        band = img[rows.min() : rows.max() + 1]
        right = band[:, cols.max() + 2 : cols.max() + 8].mean()
        left = band[:, max(cols.min() - 8, 0) : cols.min() - 2].mean()
        assert right > left
        # corners follow the canonical image: AS is anterior (left of PS)
        c = data.corners[i, LEVEL_ORDER.index("L3")]
        assert c[0, 0] < c[1, 0]
    assert np.allclose(data.mm_per_px, 1.5 * 96 / 64, rtol=0.01)


def test_augmentation_flip_and_identity(tmp_path: Path) -> None:
    write_dataset(tmp_path / "d", 2)
    plans = plan_from_fingerprint(
        compute_fingerprint([CaseShape((96, 64), (1.5, 1.5))]), patch_size=(64, 48)
    )
    data, _ = load_or_build_cache(discover_cases(tmp_path / "d"), plans, tmp_path / "c.npz")
    img, lab, val = batch_tensors(data, [0, 1])
    gen = torch.Generator().manual_seed(0)
    i2, l2, _, flip = augment_batch(img.clone(), lab.clone(), val.clone(), gen, NO_AUGMENTATION)
    assert not flip.any() and torch.equal(i2, img) and torch.equal(l2, lab)
    only_flip = AugmentConfig(**{**NO_AUGMENTATION.__dict__, "p_flip": 1.0})
    i3, l3, _, flip = augment_batch(img.clone(), lab.clone(), val.clone(), gen, only_flip)
    assert flip.all()
    # mirroring keeps the level labels (a mirrored film shows the same vertebrae)
    assert torch.equal(l3, torch.flip(lab, dims=[3]))
    assert torch.allclose(i3, torch.flip(img, dims=[3]), atol=1e-5)
    full = AugmentConfig(
        p_rotate=1.0,
        p_scale=1.0,
        p_elastic=1.0,
        p_cut=1.0,
        p_noise=1.0,
        p_blur=1.0,
        p_gamma=1.0,
        p_lowres=1.0,
    )
    i4, l4, v4, _ = augment_batch(img.clone(), lab.clone(), val.clone(), gen, full)
    assert i4.shape == img.shape and l4.dtype == torch.int64
    assert set(torch.unique(l4).tolist()) <= set(range(8))
    assert torch.isfinite(i4).all()
    z = zscore(i4, v4)
    m = v4 > 0.5
    assert abs(float(z[m].mean())) < 1e-3 and float(z[~m].abs().max()) == 0.0
