from __future__ import annotations

import pytest
import torch

from aacscore.aorta import BandGeometry
from aacscore.score.augment import TTATransform, tta_batch
from aacscore.training.augment import AugmentConfig, augment

REF = BandGeometry()
FINE = BandGeometry(rows_per_level=64, mm_per_col=0.25)


def test_pixel_scale_relative_to_reference() -> None:
    assert REF.pixel_scale == (1.0, 1.0)
    assert FINE.pixel_scale == (2.0, 2.0)
    assert FINE.shape == (256, 256)


def _line_band(geo: BandGeometry, col_mm: float) -> tuple[torch.Tensor, int]:
    h, w = geo.shape
    x = torch.full((1, 1, h, w), 0.2)
    c = round((col_mm + geo.behind_mm) / geo.mm_per_col)
    x[..., c] = 0.9
    return x, c


@pytest.mark.parametrize("geo", [REF, FINE])
def test_tta_column_shift_is_the_same_in_mm(geo: BandGeometry) -> None:
    x, c = _line_band(geo, 20.0)
    y = tta_batch(x, geo, (TTATransform(col_shift=2.0),))
    peak = int(y[0, 0, 10].argmax())
    # 2 reference pixels = 1 mm whatever the column width: output column c takes input c + shift.
    assert (c - peak) * geo.mm_per_col == pytest.approx(1.0)


@pytest.mark.parametrize("geo", [REF, FINE])
def test_tta_row_shift_is_the_same_fraction_of_a_level(geo: BandGeometry) -> None:
    h, w = geo.shape
    x = torch.full((1, 1, h, w), 0.2)
    r = geo.rows_per_level
    x[:, :, r, :] = 0.9
    y = tta_batch(x, geo, (TTATransform(row_shift=1.0),))
    peak = int(y[0, 0, :, 5].argmax())
    assert (r - peak) / geo.rows_per_level == pytest.approx(1.0 / 32)


def test_augment_keeps_shape_and_is_seeded() -> None:
    x = torch.rand(3, 1, *FINE.shape)
    a = augment(x, FINE, torch.Generator().manual_seed(3), AugmentConfig())
    b = augment(x, FINE, torch.Generator().manual_seed(3), AugmentConfig())
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
