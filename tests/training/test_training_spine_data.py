"""Case discovery, letterboxing, the preprocessed cache and augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from aacscore.spine.plans import Plans
from aacscore.spine.preprocess import Letterbox, zscore
from aacscore.training.errors import SpineDataError
from aacscore.training.nifti import read_nifti_2d
from aacscore.training.nnunet_export import export_nnunet
from aacscore.training.plans import CaseShape, compute_fingerprint, plan_from_fingerprint
from aacscore.training.spine import SpineTrainConfig, train_spine
from aacscore.training.spine_data import (
    NO_AUGMENTATION,
    AugmentConfig,
    PreprocessedSet,
    augment_batch,
    batch_tensors,
    case_shapes,
    discover_cases,
    load_image,
    load_labels,
    load_or_build_cache,
)
from aacscore.vertebrae import LABEL_VALUES, LEVEL_ORDER
from tests.spine.spine_synth import make_film, write_case, write_dataset


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


# -------------------------------------------------------------------------------------------
# NIfTI images and label maps
# -------------------------------------------------------------------------------------------


def _write_nifti(
    path: Path,
    arr: np.ndarray,
    zooms: tuple[float, float] | None = None,
    unit: str = "mm",
    slice_axis: bool = True,
) -> Path:
    """Write a (rows, cols) array as NIfTI the way SimpleITK stores 2-D images: data (x, y)."""
    data = arr.T[..., None] if slice_axis else arr.T
    img = nib.Nifti1Image(np.ascontiguousarray(data), np.eye(4))
    if zooms is not None:  # zooms given as (x, y) = (column, row) spacing
        img.header.set_zooms((*zooms, 1.0)[: data.ndim])
        img.header.set_xyzt_units(xyz=unit)
    nib.save(img, path)
    return path


def _nifti_copy(src: Path, dst: Path, nifti_labels: bool = True, spacing_mm: float = 1.5) -> Path:
    """NIfTI copy of a ``write_dataset`` folder: the same uint16 pixels, spacing only in the
    header (the JSON files keep anterior side, shape and corners)."""
    dst.mkdir(parents=True, exist_ok=True)
    for png in sorted(src.glob("case_*[0-9].png")):
        stem = png.stem
        pixels = np.asarray(Image.open(png)).astype(np.uint16)
        _write_nifti(dst / f"{stem}.nii.gz", pixels, (spacing_mm, spacing_mm))
        labels = np.asarray(Image.open(src / f"{stem}_labels.png"))
        if nifti_labels:
            _write_nifti(dst / f"{stem}_labels.nii.gz", labels.astype(np.uint8))
        else:
            Image.fromarray(labels).save(dst / f"{stem}_labels.png")
        d = json.loads((src / f"{stem}.json").read_text())
        del d["spacing_mm"]
        (dst / f"{stem}.json").write_text(json.dumps(d))
    return dst


def test_read_nifti_2d_order_and_spacing(tmp_path: Path) -> None:
    arr = np.arange(12 * 9, dtype=np.int16).reshape(12, 9)
    # zooms (x, y) = (0.7, 0.5): columns 0.7 mm, rows 0.5 mm
    got, sp = read_nifti_2d(_write_nifti(tmp_path / "a.nii.gz", arr, (0.7, 0.5)))
    assert got.shape == (12, 9) and np.array_equal(got, arr)
    assert sp == pytest.approx((0.5, 0.7))
    got, sp = read_nifti_2d(_write_nifti(tmp_path / "b.nii", arr, (0.7, 0.5), slice_axis=False))
    assert np.array_equal(got, arr) and sp == pytest.approx((0.5, 0.7))
    # no unit: default zooms mean "no spacing", others are taken as mm
    assert read_nifti_2d(_write_nifti(tmp_path / "c.nii.gz", arr))[1] is None
    path = _write_nifti(tmp_path / "d.nii.gz", arr, (1.0, 1.0), unit="unknown")
    assert read_nifti_2d(path)[1] is None
    path = _write_nifti(tmp_path / "e.nii.gz", arr, (0.2, 0.3), unit="unknown")
    assert read_nifti_2d(path)[1] == pytest.approx((0.3, 0.2))
    # mm units: 1 mm is trusted; other units converted; implausible spacing is unknown
    assert read_nifti_2d(_write_nifti(tmp_path / "f.nii.gz", arr, (1.0, 1.0)))[1] == (1.0, 1.0)
    path = _write_nifti(tmp_path / "g.nii.gz", arr, (0.0002, 0.0002), unit="meter")
    assert read_nifti_2d(path)[1] == pytest.approx((0.2, 0.2))
    assert read_nifti_2d(_write_nifti(tmp_path / "h.nii.gz", arr, (999.0, 1.0)))[1] is None


def test_nifti_dataset_preprocesses_like_png(tmp_path: Path) -> None:
    png_dir = write_dataset(tmp_path / "png", 4)
    nii_dir = _nifti_copy(png_dir, tmp_path / "nii", spacing_mm=1.5)
    (nii_dir / "ignored_calc.png").write_bytes(b"")
    png_cases, nii_cases = discover_cases(png_dir), discover_cases(nii_dir)
    assert [c.case_id for c in nii_cases] == [c.case_id for c in png_cases]
    assert all(c.image_path.name.endswith(".nii.gz") for c in nii_cases)
    assert all(c.labels_path.name.endswith("_labels.nii.gz") for c in nii_cases)
    assert all(c.spacing_mm is None for c in nii_cases)  # not in the JSON files
    assert case_shapes(nii_cases) == case_shapes(png_cases)  # spacing from the header
    plans = _plans((1.5, 1.5))
    a, _ = load_or_build_cache(png_cases, plans, tmp_path / "png.npz")
    b, _ = load_or_build_cache(nii_cases, plans, tmp_path / "nii.npz")
    np.testing.assert_allclose(b.images.astype(np.float32), a.images.astype(np.float32), atol=1e-3)
    for name in ("labels", "boxes", "mirrored", "shapes", "spacings", "mm_per_px"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)
    np.testing.assert_allclose(b.corners, a.corners)
    assert (b.labels > 0).any() and b.mirrored.any()


def test_mixed_nifti_and_png(tmp_path: Path) -> None:
    film = make_film(4, shape=(96, 64))
    img16 = np.round(film["image"] * 65535).astype(np.uint16)
    # NIfTI image (float, [0, 1]) + PNG labels, no JSON: header spacing
    _write_nifti(tmp_path / "a.nii", film["image"], (0.4, 0.6))
    Image.fromarray(film["labels"]).save(tmp_path / "a_labels.png")
    # PNG image + NIfTI labels stored as whole-number floats
    Image.fromarray(img16).save(tmp_path / "b.png")
    _write_nifti(tmp_path / "b_labels.nii.gz", film["labels"].astype(np.float32))
    # NIfTI image with values outside [0, 1] (min-max) + NIfTI labels
    _write_nifti(tmp_path / "c.nii.gz", film["image"] * 4000.0 - 1000.0, (0.5, 0.5))
    _write_nifti(tmp_path / "c_labels.nii", film["labels"])
    cases = discover_cases(tmp_path)
    assert [(c.image_path.name, c.labels_path.name) for c in cases] == [
        ("a.nii", "a_labels.png"),
        ("b.png", "b_labels.nii.gz"),
        ("c.nii.gz", "c_labels.nii"),
    ]
    pixels, spacing = load_image(cases[0].image_path)
    np.testing.assert_allclose(pixels, film["image"], atol=1e-6)
    assert spacing == pytest.approx((0.6, 0.4))
    assert load_image(cases[0].image_path, (0.2, 0.2))[1] == (0.2, 0.2)  # JSON wins
    pixels, _ = load_image(cases[2].image_path)
    lo, hi = film["image"].min(), film["image"].max()
    np.testing.assert_allclose(pixels, (film["image"] - lo) / (hi - lo), atol=1e-5)
    for c in cases:
        np.testing.assert_array_equal(load_labels(c.labels_path, (96, 64)), film["labels"])
    data, _ = load_or_build_cache(cases, _plans(None), tmp_path / "cache.npz")
    assert data.spacings[0] == pytest.approx((0.6, 0.4)) and np.isnan(data.spacings[1]).all()
    assert np.array_equal(data.labels[0], data.labels[1])


def test_nifti_errors_name_the_file(tmp_path: Path) -> None:
    film = make_film(5, shape=(96, 64))
    img, lab = film["image"], film["labels"]
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti file" * 8)
    with pytest.raises(SpineDataError, match=r"broken\.nii\.gz: cannot read NIfTI"):
        load_image(bad)
    vol = nib.Nifti1Image(np.zeros((64, 96, 3), dtype=np.float32), np.eye(4))
    nib.save(vol, tmp_path / "vol.nii.gz")
    with pytest.raises(SpineDataError, match=r"vol\.nii\.gz: 3-D volume .*3 slices"):
        load_image(tmp_path / "vol.nii.gz")
    frac = lab.astype(np.float32)
    frac[10, 10] = 1.5
    with pytest.raises(SpineDataError, match=r"frac_labels\.nii\.gz: .*whole numbers.*1\.5"):
        load_labels(_write_nifti(tmp_path / "frac_labels.nii.gz", frac))
    for name, value in (("high", 8), ("neg", -1)):
        out = lab.astype(np.int16)
        out[0, 0] = value
        path = _write_nifti(tmp_path / f"{name}_labels.nii.gz", out)
        with pytest.raises(SpineDataError, match=rf"{name}_labels\.nii\.gz: .*0\.\.7.*{value}"):
            load_labels(path)
    small = _write_nifti(tmp_path / "small_labels.nii.gz", lab[:90])
    with pytest.raises(SpineDataError, match=r"small_labels\.nii\.gz: .*shape \(90, 64\)"):
        load_labels(small, (96, 64))
    # end to end: a mismatching label map fails preprocessing, naming the label file
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    _write_nifti(case_dir / "p.nii.gz", img, (0.5, 0.5))
    _write_nifti(case_dir / "p_labels.nii.gz", lab[:, :60])
    with pytest.raises(SpineDataError, match=r"p_labels\.nii\.gz: label map shape"):
        load_or_build_cache(discover_cases(case_dir), _plans(None), tmp_path / "c.npz")


def test_nifti_label_map_is_not_an_image(tmp_path: Path) -> None:
    lab = make_film(6, shape=(96, 64))["labels"]
    # "x_labels.nii.gz" is x's label map, never the image of a stem "x_labels"
    _write_nifti(tmp_path / "x_labels.nii.gz", lab)
    Image.fromarray(lab).save(tmp_path / "x_labels_labels.png")
    with pytest.raises(SpineDataError, match=r"x_labels\.nii\.gz: no image"):
        discover_cases(tmp_path)
    for f in tmp_path.iterdir():
        f.unlink()
    _write_nifti(tmp_path / "y.nii.gz", lab)
    _write_nifti(tmp_path / "y_labels.nii.gz", lab)
    Image.fromarray(lab).save(tmp_path / "y_labels.png")
    with pytest.raises(SpineDataError, match=r"y_labels\.png: y already has the label map"):
        discover_cases(tmp_path)


def test_export_nnunet_from_nifti_matches_png(tmp_path: Path) -> None:
    png_dir = write_dataset(tmp_path / "png", 3)
    nii_dir = _nifti_copy(png_dir, tmp_path / "nii")
    a = export_nnunet(png_dir, tmp_path / "raw_png", 11, max_side=80, canonical=True)
    b = export_nnunet(nii_dir, tmp_path / "raw_nii", 11, max_side=80, canonical=True)
    assert a.n_cases == b.n_cases == 3
    files = sorted(p.relative_to(a.dataset_dir) for p in a.dataset_dir.rglob("*.png"))
    assert files == sorted(p.relative_to(b.dataset_dir) for p in b.dataset_dir.rglob("*.png"))
    assert len(files) == 6
    for rel in files:
        x = np.asarray(Image.open(a.dataset_dir / rel)).astype(np.int64)
        y = np.asarray(Image.open(b.dataset_dir / rel)).astype(np.int64)
        assert x.dtype == y.dtype and np.abs(x - y).max() <= 1, rel


def test_train_spine_on_nifti_folder(tmp_path: Path) -> None:
    nii_dir = _nifti_copy(write_dataset(tmp_path / "png", 8), tmp_path / "nii")
    config = SpineTrainConfig(
        epochs=1,
        steps_per_epoch=2,
        batch_size=4,
        patch_size=(64, 48),
        val_fraction=0.25,
        jobs=1,
        num_threads=2,
    )
    result = train_spine(nii_dir, tmp_path / "run", config)
    assert result.epochs_run == 1
    assert (tmp_path / "run" / "model" / "unet.safetensors").is_file()
    cache = PreprocessedSet.load(tmp_path / "run" / "cache.npz")
    assert len(cache) == 8 and np.allclose(cache.spacings, 1.5)
