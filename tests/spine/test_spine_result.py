"""Post-processing of the spine network's scores (``aacscore.spine.result``): the outlines and the
fine label map cut from one shared upsampling equal those of per-body upsamplings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from aacscore.spine import result
from aacscore.spine.result import (
    FINE_FACTOR,
    UpsampledScores,
    clean_labels,
    contours_from_logits,
    fine_label_map,
    geometry_from_logits,
    trace_logits,
)
from tests.spine.spine_synth import make_film


def noisy_logits(seed: int, shape: tuple[int, int] = (192, 128)) -> np.ndarray:
    """(8, h, w) logits of a synthetic film's labels, blurred and noisy like a network's (soft
    boundaries, stray maxima), cropped at the top."""
    rng = np.random.default_rng(seed)
    film = make_film(seed=seed, shape=shape)
    onehot = np.eye(8, dtype=np.float32)[film["labels"]].transpose(2, 0, 1)
    soft = np.stack([ndimage.gaussian_filter(c, 1.5) for c in onehot])
    logits = 6.0 * soft + rng.normal(0.0, 0.4, soft.shape).astype(np.float32)
    return np.ascontiguousarray(logits[:, 10:, :], dtype=np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_upsampling_gives_the_same_outlines_and_labels(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    logits = noisy_logits(seed)
    labels, _ = clean_labels(logits.argmax(axis=0).astype(np.uint8))
    shared = UpsampledScores.around(logits, labels, FINE_FACTOR)
    assert shared is not None
    alone = contours_from_logits(logits, labels, FINE_FACTOR)
    calls: list[tuple[int, int]] = []
    resize = result.resize_bilinear

    def counted(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        calls.append(size)
        return resize(arr, size)

    monkeypatch.setattr(result, "resize_bilinear", counted)
    cut = contours_from_logits(logits, labels, FINE_FACTOR, upsampled=shared)
    assert calls == []  # every body's scores cut from the shared upsampling
    assert sorted(alone) == sorted(cut) and len(alone) >= 5
    for name, pts in alone.items():
        np.testing.assert_array_equal(cut[name], pts)
    shared_map = fine_label_map(logits, labels, FINE_FACTOR, upsampled=shared)
    assert calls == []
    np.testing.assert_array_equal(shared_map, fine_label_map(logits, labels, FINE_FACTOR))
    traced = trace_logits(logits, (1.5, 1.5), check=False)
    geo, lab = geometry_from_logits(logits, (1.5, 1.5), check=False)
    np.testing.assert_array_equal(traced.labels, lab)
    assert sorted(traced.geometry.vertebrae) == sorted(geo.vertebrae)
    for name, v in geo.vertebrae.items():
        np.testing.assert_array_equal(traced.geometry.vertebrae[name].corners, v.corners)


def test_upsampled_scores_cut_only_inside_their_box() -> None:
    logits = noisy_logits(0)
    labels, _ = clean_labels(logits.argmax(axis=0).astype(np.uint8))
    shared = UpsampledScores.around(logits, labels, 2, margin=1)
    assert shared is not None
    y0, y1, x0, x1 = shared.box
    assert shared.fine.shape == (8, (y1 - y0) * 2, (x1 - x0) * 2)
    inner = shared.cut(y0 + 1, y0 + 4, x0 + 2, x0 + 5)
    assert inner is not None and inner.shape == (8, 6, 6)
    np.testing.assert_array_equal(inner, shared.fine[:, 2:8, 4:10])
    assert shared.cut(y0, y1, x0, x1 + 1) is None and shared.cut(y0 - 1, y1, x0, x1) is None
    # a cut it cannot give, or another factor: the functions upsample on their own
    other = UpsampledScores.around(logits, labels, 2)
    assert other is not None
    np.testing.assert_array_equal(
        fine_label_map(logits, labels, FINE_FACTOR, upsampled=other),
        fine_label_map(logits, labels, FINE_FACTOR),
    )
    assert UpsampledScores.around(logits, np.zeros_like(labels)) is None
