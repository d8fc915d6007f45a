"""The numpy resampling matches the torch operations it replaces (both backends feed the
networks the same input)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aacscore.backend.resample import affine_rows_cols, resize_bilinear

SIZES = [
    ((400, 170), (288, 122)),  # a film letterboxed into the spine input: shrink
    ((100, 80), (288, 192)),  # a small film: enlarge
    ((37, 53), (17, 90)),  # shrink one axis, enlarge the other
    ((40, 30), (160, 120)),  # the x4 upsampling of the spine logits
    ((5, 7), (5, 7)),  # same size
    ((1, 5), (3, 2)),
]


@pytest.mark.parametrize(("shape", "size"), SIZES)
@pytest.mark.parametrize("antialias", [False, True])
def test_resize_matches_torch_interpolate(
    shape: tuple[int, int], size: tuple[int, int], antialias: bool
) -> None:
    img = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    ref = F.interpolate(
        torch.from_numpy(img)[None, None],
        size=size,
        mode="bilinear",
        antialias=antialias,
        align_corners=False,
    )[0, 0].numpy()
    got = resize_bilinear(img, size, antialias=antialias)
    assert got.shape == size and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)


def test_resize_handles_leading_axes_and_keeps_constants() -> None:
    rng = np.random.default_rng(1)
    stack = rng.random((3, 20, 12)).astype(np.float32)
    got = resize_bilinear(stack, (80, 48))
    for c in range(3):
        np.testing.assert_allclose(got[c], resize_bilinear(stack[c], (80, 48)), atol=1e-7)
    flat = np.full((30, 17), 0.37, np.float32)
    np.testing.assert_allclose(resize_bilinear(flat, (9, 5), antialias=True), 0.37, atol=1e-6)
    with pytest.raises(ValueError, match="output size"):
        resize_bilinear(flat, (0, 4))


@pytest.mark.parametrize(
    ("row_zoom", "row_shift", "col_zoom", "col_shift"),
    [(1.0, 1.0, 1.0, 0.0), (1.0, -2.5, 1.06, 2.0), (1.1, 0.3, 0.94, -1.7), (0.9, 40.0, 1.0, 0.0)],
)
def test_affine_matches_affine_grid_and_grid_sample(
    row_zoom: float, row_shift: float, col_zoom: float, col_shift: float
) -> None:
    h, w, c0 = 64, 48, 30.5
    img = np.random.default_rng(2).random((h, w)).astype(np.float32)
    theta = torch.zeros(1, 2, 3)
    u0 = (2 * c0 + 1) / w - 1
    theta[0, 0, 0] = col_zoom
    theta[0, 0, 2] = u0 * (1 - col_zoom) + 2 * col_shift / w
    theta[0, 1, 1] = row_zoom
    theta[0, 1, 2] = 2 * row_shift / h
    grid = F.affine_grid(theta, [1, 1, h, w], align_corners=False)
    x = torch.from_numpy(img)[None, None]
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    got = affine_rows_cols(img, row_zoom, row_shift, col_zoom, col_shift, c0)
    np.testing.assert_allclose(got, ref[0, 0].numpy(), atol=2e-5, rtol=0)
