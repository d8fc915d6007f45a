"""Style randomisation: each transform, determinism, label alignment of the spatial ones, the
wiring into the spine and score augmentations."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from aacscore.aorta import BandGeometry
from aacscore.spine.preprocess import zscore
from aacscore.training import spine_data
from aacscore.training import style as S
from aacscore.training.augment import AugmentConfig as BandAugmentConfig
from aacscore.training.augment import augment
from aacscore.training.spine_data import NO_AUGMENTATION, AugmentConfig, augment_batch

CFG = S.StyleConfig()
OFF = S.StyleConfig(**{f.name: 0.0 for f in fields(S.StyleConfig) if f.name.startswith("p_")})


def _film(h: int = 96, w: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth background with two bright 'bodies' (label 1 and 2) and some texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = 0.2 + 0.2 * xx / w + 0.05 * np.sin(yy / 5.0) + 0.02 * rng.standard_normal((h, w))
    lab = np.zeros((h, w), dtype=np.int64)
    lab[20:40, 30:50] = 1
    lab[55:75, 28:48] = 2
    img[lab > 0] = 0.85
    return np.clip(img, 0, 1).astype(np.float32), lab


def _only(name: str, **kw: object) -> S.StyleConfig:
    return replace(OFF, **{f"p_{name}": 1.0}, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(S.INTENSITY_TRANSFORMS))
def test_each_intensity_transform_changes_the_film_within_range(name: str) -> None:
    img, _ = _film()
    f = S.INTENSITY_TRANSFORMS[name]
    out = f(img, np.random.default_rng(1), CFG)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert float(np.abs(out - img).mean()) > 1e-3, name
    again = f(img, np.random.default_rng(1), CFG)
    assert np.array_equal(out, again), name
    assert np.array_equal(img, _film()[0])  # the input is not modified


@pytest.mark.parametrize("name", sorted(set(S.INTENSITY_TRANSFORMS) - {"invert"}))
def test_intensity_transforms_depend_on_the_seed(name: str) -> None:
    img, _ = _film()
    f = S.INTENSITY_TRANSFORMS[name]
    outs = [f(img, np.random.default_rng(s), CFG) for s in range(4)]
    assert any(not np.array_equal(outs[0], o) for o in outs[1:]), name


def test_invert_and_gin_keep_the_polarity_rules() -> None:
    img, lab = _film()
    inv = S.invert(img, np.random.default_rng(0), CFG)
    assert inv[lab > 0].mean() < inv[lab == 0].mean()  # bone dark
    for s in range(5):  # GIN keeps bone brighter than the background on the whole
        g = S.gin(img, np.random.default_rng(s), CFG)
        assert np.corrcoef(g.ravel(), img.ravel())[0, 1] > 0


def test_restyle_is_deterministic_per_seed_and_stays_in_range() -> None:
    img, lab = _film()
    everything = S.StyleConfig(
        **{f.name: 1.0 for f in fields(S.StyleConfig) if f.name.startswith("p_")}
    )
    for cfg in (CFG, everything):
        a = S.restyle(img, lab, np.random.default_rng(7), cfg)
        b = S.restyle(img, lab, np.random.default_rng(7), cfg)
        c = S.restyle(img, lab, np.random.default_rng(8), cfg)
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)
        assert not np.array_equal(a[0], c[0])
        out, out_lab, m = a
        assert out.shape == img.shape and out_lab.shape == lab.shape and m.shape == img.shape
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
        assert set(np.unique(out_lab)) <= {0, 1, 2}
        assert (out[~m] == 0).all() and (out_lab[~m] == 0).all()
    off = S.restyle(img, lab, np.random.default_rng(7), OFF)
    assert np.array_equal(off[0], img) and np.array_equal(off[1], lab) and off[2].all()


def test_perspective_warp_keeps_labels_on_the_bright_square() -> None:
    h, w = 96, 64
    img = np.full((h, w), 0.2, dtype=np.float32)
    lab = np.zeros((h, w), dtype=np.int64)
    img[30:60, 20:44] = 1.0
    lab[30:60, 20:44] = 1
    mask = np.ones((h, w), dtype=bool)
    cfg = replace(OFF, perspective_max=0.15)
    moved = 0
    for s in range(6):
        out, out_lab, m = S.perspective_warp(img, lab, mask, np.random.default_rng(s), cfg)
        assert out_lab.dtype == lab.dtype and set(np.unique(out_lab)) <= {0, 1}
        bright = out > 0.9
        on = out_lab == 1
        # the warped label covers the warped square, up to the 1-px interpolation edge
        assert (bright & ~on).sum() <= 0.02 * bright.sum()
        assert (on & ~bright).sum() <= 0.1 * on.sum()
        assert (out[on] > 0.5).mean() > 0.95
        assert m.all()  # uncovered corners show background: still film, label 0
        moved += int((on != (lab == 1)).sum())
    assert moved > 100  # the square did move


def test_anterior_crop_blanks_the_left_band_and_its_labels() -> None:
    img, lab = _film()
    lab[:, :10] = 3  # labels touching the anterior (left) edge
    mask = np.ones(img.shape, dtype=bool)
    out, out_lab, m = S.anterior_crop(img, lab, mask, np.random.default_rng(0), CFG)
    cut = int(np.argmax(m[0]))  # first film column
    lo, hi = CFG.anterior_crop
    assert int(lo * img.shape[1]) <= cut <= int(hi * img.shape[1]) + 1
    assert (out[:, :cut] == 0).all() and (out_lab[:, :cut] == 0).all()
    assert not m[:, :cut].any() and m[:, cut:].all()
    assert np.array_equal(out[:, cut:], img[:, cut:])
    assert np.array_equal(out_lab[:, cut:], lab[:, cut:])


def _letterboxed(b: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Films of 96 x 64 centred in a 96 x 96 input (zero padding left and right)."""
    img = torch.zeros(b, 1, 96, 96)
    lab = torch.zeros(b, 1, 96, 96, dtype=torch.int64)
    val = torch.zeros(b, 1, 96, 96)
    for i in range(b):
        f, lb = _film(seed=i)
        img[i, 0, :, 16:80] = torch.from_numpy(f)
        lab[i, 0, :, 16:80] = torch.from_numpy(lb)
        val[i, 0, :, 16:80] = 1.0
    return img, lab, val


def test_style_batch_cuts_the_anterior_side_of_the_film_box_not_the_padding() -> None:
    img, lab, val = _letterboxed()
    lab[:, 0, :, 16:26] = 3
    cfg = _only("anterior_crop")
    i2, l2, v2 = S.style_batch(img, lab, val, np.random.default_rng(0), 1.0, cfg)
    for i in range(2):
        cols = torch.nonzero(v2[i, 0].any(dim=0)).flatten()
        x0 = int(cols[0])
        assert 16 < x0 < 16 + 64 // 2 and int(cols[-1]) == 79  # posterior edge kept
        assert (l2[i, 0, :, :x0] == 0).all() and (i2[i, 0, :, :x0] == 0).all()
        assert torch.equal(i2[i, 0, :, x0:], img[i, 0, :, x0:])
    assert (i2[..., 80:] == 0).all() and (v2[..., 80:] == 0).all()  # padding untouched
    assert torch.equal(img, _letterboxed()[0])  # inputs not modified in place


def test_style_batch_keeps_the_padding_zero_and_is_seeded() -> None:
    img, lab, val = _letterboxed()
    a = S.style_batch(img, lab, val, np.random.default_rng(3), 1.0, CFG)
    b = S.style_batch(img, lab, val, np.random.default_rng(3), 1.0, CFG)
    for x, y in zip(a, b, strict=True):
        assert x is not None and y is not None and torch.equal(x, y)
    i2, _, v2 = a
    assert not torch.equal(i2, img)
    assert (i2[v2 < 0.5] == 0).all() and (i2[..., :16] == 0).all()
    assert float(i2.min()) >= 0 and float(i2.max()) <= 1
    none = S.style_batch(img, lab, val, np.random.default_rng(3), 0.0, CFG)
    assert torch.equal(none[0], img) and none[1] is not None and torch.equal(none[1], lab)
    with pytest.raises(ValueError, match="labels"):
        S.style_batch(img, None, val, np.random.default_rng(3), 1.0, CFG)


def test_augment_batch_without_style_is_the_old_augmentation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    img, lab, val = _letterboxed(4)
    base = AugmentConfig(p_style=0.0)
    loud = replace(base, style=replace(CFG, p_gin=1.0, p_invert=1.0, p_anterior_crop=1.0))

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("style_batch called with p_style 0")

    out0 = augment_batch(
        img.clone(), lab.clone(), val.clone(), torch.Generator().manual_seed(5), base
    )
    with monkeypatch.context() as mp:
        mp.setattr(spine_data, "style_batch", boom)
        out1 = augment_batch(
            img.clone(), lab.clone(), val.clone(), torch.Generator().manual_seed(5), loud
        )
        none = augment_batch(
            img.clone(), lab.clone(), val.clone(), torch.Generator().manual_seed(5), NO_AUGMENTATION
        )
    for x, y in zip(out0, out1, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(none[0], img) and torch.equal(none[1], lab)
    assert NO_AUGMENTATION.p_style == 0.0 and AugmentConfig().p_style > 0


def test_augment_batch_with_style_changes_films_deterministically() -> None:
    img, lab, val = _letterboxed(4)
    cfg = replace(NO_AUGMENTATION, p_style=1.0)
    a = augment_batch(img.clone(), lab.clone(), val.clone(), torch.Generator().manual_seed(2), cfg)
    b = augment_batch(img.clone(), lab.clone(), val.clone(), torch.Generator().manual_seed(2), cfg)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    i2, l2, v2, flip = a
    assert not flip.any() and not torch.equal(i2, img)
    assert set(torch.unique(l2).tolist()) <= {0, 1, 2}
    z = zscore(i2, v2)
    m = v2 > 0.5
    assert torch.isfinite(z).all() and float(z[~m].abs().max()) == 0.0
    # the full recipe (style + nnU-Net augmentation) serialises into the model card's dict
    from aacscore.training.spine import SpineTrainConfig

    d = SpineTrainConfig().as_dict()["augment"]
    assert d["p_style"] == AugmentConfig().p_style and d["style"]["p_gin"] == CFG.p_gin


GEO = BandGeometry()


def test_band_style_is_opt_in_and_seeded() -> None:
    x = torch.rand(4, 1, *GEO.shape) * 0.5 + 0.25

    def run(cfg: BandAugmentConfig, seed: int = 3) -> torch.Tensor:
        return augment(x.clone(), GEO, torch.Generator().manual_seed(seed), cfg)

    plain = run(BandAugmentConfig())
    assert BandAugmentConfig().style_prob == 0.0
    # style_prob 0: the style settings are ignored and nothing extra is drawn
    assert torch.equal(plain, run(BandAugmentConfig(style=replace(CFG, p_invert=1.0))))
    styled_cfg = BandAugmentConfig(style_prob=1.0, style=replace(CFG, p_invert=1.0))
    styled = run(styled_cfg)
    # the same draws from the generator with every style transform off: only the style differs
    assert not torch.equal(styled, run(BandAugmentConfig(style_prob=1.0, style=OFF)))
    assert torch.equal(styled, run(styled_cfg))
    assert not torch.equal(styled, run(styled_cfg, seed=4))
    assert styled.shape == x.shape and torch.isfinite(styled).all()


def test_style_config_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="p_jpeg must lie in"):
        S.StyleConfig(p_jpeg=1.5)
    with pytest.raises(ValueError, match="gamma_range must be"):
        S.StyleConfig(gamma_range=(2.0, 0.5))
