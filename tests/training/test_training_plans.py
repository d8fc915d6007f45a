"""Plans from a dataset fingerprint, and the networks built from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aacscore.spine.network import (
    WeightsError,
    build_orientation_net,
    build_unet,
    load_weights,
)
from aacscore.spine.plans import Plans, PlansError
from aacscore.training.export import save_weights
from aacscore.training.plans import (
    CaseShape,
    compute_fingerprint,
    plan_from_fingerprint,
    pool_topology,
)


def _films(n: int = 9) -> list[CaseShape]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        sp = float(rng.uniform(0.12, 0.3))
        rows_mm, cols_mm = rng.uniform(300, 380), rng.uniform(200, 260)
        out.append(CaseShape((round(rows_mm / sp), round(cols_mm / sp)), (sp, sp)))
    return out


def test_fingerprint_medians_and_intensity() -> None:
    shapes = [
        CaseShape((1000, 800), (0.2, 0.2)),
        CaseShape((2000, 1000), (0.15, 0.15)),
        CaseShape((1500, 900), None),
    ]
    fp = compute_fingerprint(shapes, intensity_samples=[np.array([0.2, 0.4, 0.6])])
    assert fp.n_cases == 3
    assert fp.median_shape == (1500, 900)
    assert fp.spacing_known_fraction == pytest.approx(2 / 3)
    assert fp.median_spacing_mm == pytest.approx((0.175, 0.175))
    assert fp.median_size_mm == pytest.approx((250.0, 155.0))
    assert fp.intensity["mean"] == pytest.approx(0.4)
    with pytest.raises(PlansError):
        compute_fingerprint([])


def test_plans_from_fingerprint_follow_the_rules() -> None:
    fp = compute_fingerprint(_films())
    plans = plan_from_fingerprint(fp)
    h, w = plans.patch_size
    # longest side = median film length / 1.2 mm, within 256-384, portrait like the films
    assert 256 <= h <= 384 and w < h
    assert abs(h - max(fp.median_size_mm or (0, 0)) / 1.2) <= 32
    dy, dx = plans.divisor
    assert h % dy == 0 and w % dx == 0
    # pooled until the smallest feature map is below 2 x 8 px on each axis
    assert h // dy < 16 and w // dx < 16 and h // dy >= 8 and w // dx >= 8
    assert plans.filters[0] == 8 and max(plans.filters) <= 128
    assert all(k == (3, 3) for k in plans.kernel_sizes)
    assert plans.median_mm_per_px is not None and 0.9 < plans.median_mm_per_px < 1.5
    assert "fit_longest_side" in plans.resize_rule


def test_unknown_spacing_uses_default_size() -> None:
    fp = compute_fingerprint([CaseShape((2000, 1500), None)] * 3)
    plans = plan_from_fingerprint(fp)
    assert plans.patch_size[0] == 320
    assert plans.median_mm_per_px is None
    assert "no pixel spacing" in plans.notes["longest_side_rule"]


def test_longest_side_is_clipped() -> None:
    tiny = compute_fingerprint([CaseShape((500, 400), (0.2, 0.2))])  # 100 mm film
    assert plan_from_fingerprint(tiny).patch_size[0] == 256
    huge = compute_fingerprint([CaseShape((5000, 4000), (0.2, 0.2))])  # 1 m film
    assert plan_from_fingerprint(huge).patch_size[0] == 384


def test_pool_topology_anisotropic_axes() -> None:
    kernels, strides, size = pool_topology((288, 100))
    assert strides[0] == (1, 1)
    assert (2, 1) in strides  # the short axis stops pooling first
    assert size[0] % 2 ** sum(s[0] == 2 for s in strides) == 0
    assert len(kernels) == len(strides)


def test_plans_roundtrip_and_errors(tmp_path: Path) -> None:
    plans = plan_from_fingerprint(compute_fingerprint(_films()))
    path = plans.save(tmp_path / "plans.json")
    assert Plans.load(path) == plans
    d = json.loads(path.read_text())
    d["patch_size"] = [289, 192]
    path.write_text(json.dumps(d))
    with pytest.raises(PlansError, match="divisible"):
        Plans.load(path)
    path.write_text("{not json")
    with pytest.raises(PlansError, match="JSON"):
        Plans.load(path)
    with pytest.raises(PlansError, match="not found"):
        Plans.load(tmp_path / "missing.json")


def test_networks_from_plans(tmp_path: Path) -> None:
    plans = plan_from_fingerprint(compute_fingerprint(_films()), patch_size=(96, 64))
    unet = build_unet(plans).eval()
    with torch.inference_mode():
        out = unet(torch.randn(1, 1, *plans.patch_size))
    assert tuple(out.shape) == (1, 8, *plans.patch_size)
    orient = build_orientation_net(plans).eval()
    with torch.inference_mode():
        assert tuple(orient(torch.randn(2, 1, *plans.orientation_size)).shape) == (2,)
    # safetensors round trip in fp16
    path = save_weights(unet, tmp_path / "unet.safetensors", fp16=True)
    other = build_unet(plans)
    load_weights(other, path)
    a = dict(unet.state_dict())
    b = dict(other.state_dict())
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-2, rtol=1e-3) for k in a)
    wider = plan_from_fingerprint(
        compute_fingerprint(_films()), patch_size=(96, 64), base_filters=16
    )
    with pytest.raises(WeightsError, match="do not match"):
        load_weights(build_unet(wider), path)
    with pytest.raises(WeightsError, match="not found"):
        load_weights(unet, tmp_path / "none.safetensors")
