"""nnU-Net-style experiment planning: dataset fingerprint -> ``plans.json``.

The rules follow nnU-Net's 2D configuration, sized for a CPU:

* **Input size.** Each film is resized as a whole so that it *fits* the network input with its
  aspect ratio kept (the longest side fills the input), then letterboxed (zero padding).
  This rule is used whether or not the pixel spacing is known, so a film without spacing is
  treated exactly like one with it. The input's longest side is the median physical film length
  divided by ``target_spacing_mm`` (default 1.2 mm/px), clipped to ``longest_side_range``
  (256-384 px); without any known spacing it is ``default_longest_side`` (320 px). The short side
  follows the median aspect ratio. The resulting mm/px of the median film is recorded.
* **Topology.** Starting from the input size, an axis is pooled (stride 2) while its feature map
  is at least ``2 * min_feature_map`` px (nnU-Net pools until ~4-8 px), up to ``max_pools``
  times; the input size is rounded to the nearest multiple of the product of the strides of
  each axis. All kernels are 3x3 (isotropic pixels).
* **Widths.** ``base_filters`` doubling per stage, capped at ``max_filters`` (nnU-Net: 32/512;
  here 8/128 for CPU speed).
* **Normalisation.** Instance norm in the network; inputs are z-scored per image over the film
  area (nnU-Net's scheme for non-CT images); the letterbox padding is set to 0 afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aacscore.spine.plans import Plans, PlansError


@dataclass(frozen=True)
class CaseShape:
    """Size (rows, columns) and pixel spacing (mm, or None) of one training film."""

    shape: tuple[int, int]
    spacing_mm: tuple[float, float] | None


@dataclass(frozen=True)
class DatasetFingerprint:
    """Dataset properties that drive the plans (nnU-Net's ``dataset_fingerprint.json``)."""

    n_cases: int
    median_shape: tuple[int, int]
    median_spacing_mm: tuple[float, float] | None
    spacing_known_fraction: float
    median_size_mm: tuple[float, float] | None
    median_aspect: float
    intensity: dict[str, float] = field(default_factory=dict)
    class_presence: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetFingerprint:
        def tup(v: Any) -> Any:
            return None if v is None else tuple(v)

        return cls(
            n_cases=int(d["n_cases"]),
            median_shape=tuple(d["median_shape"]),
            median_spacing_mm=tup(d.get("median_spacing_mm")),
            spacing_known_fraction=float(d["spacing_known_fraction"]),
            median_size_mm=tup(d.get("median_size_mm")),
            median_aspect=float(d["median_aspect"]),
            intensity={k: float(v) for k, v in d.get("intensity", {}).items()},
            class_presence={k: float(v) for k, v in d.get("class_presence", {}).items()},
        )


def compute_fingerprint(
    shapes: Sequence[CaseShape],
    intensity_samples: Iterable[np.ndarray] | None = None,
    class_presence: dict[str, float] | None = None,
) -> DatasetFingerprint:
    """Fingerprint from the films' sizes/spacings and (optionally) foreground intensity samples."""
    if not shapes:
        raise PlansError("cannot plan from an empty dataset")
    hw = np.array([s.shape for s in shapes], dtype=np.float64)
    if np.any(hw <= 0):
        raise PlansError("image shapes must be positive")
    known = [s for s in shapes if s.spacing_mm is not None]
    med_spacing: tuple[float, float] | None = None
    med_size: tuple[float, float] | None = None
    if known:
        sp = np.array([s.spacing_mm for s in known], dtype=np.float64)
        if np.any(sp <= 0) or not np.all(np.isfinite(sp)):
            raise PlansError("pixel spacings must be positive and finite")
        med_spacing = (float(np.median(sp[:, 0])), float(np.median(sp[:, 1])))
        size = np.array([np.array(s.shape) * np.array(s.spacing_mm) for s in known])
        med_size = (float(np.median(size[:, 0])), float(np.median(size[:, 1])))
    intensity: dict[str, float] = {}
    if intensity_samples is not None:
        vals = [np.asarray(v, dtype=np.float64).ravel() for v in intensity_samples]
        vals = [v for v in vals if v.size]
        if vals:
            allv = np.concatenate(vals)
            intensity = {
                "mean": float(allv.mean()),
                "std": float(allv.std()),
                "median": float(np.median(allv)),
                "percentile_00_5": float(np.percentile(allv, 0.5)),
                "percentile_99_5": float(np.percentile(allv, 99.5)),
                "min": float(allv.min()),
                "max": float(allv.max()),
            }
    med_shape = np.median(hw, axis=0)
    return DatasetFingerprint(
        n_cases=len(shapes),
        median_shape=(round(med_shape[0]), round(med_shape[1])),
        median_spacing_mm=med_spacing,
        spacing_known_fraction=len(known) / len(shapes),
        median_size_mm=med_size,
        median_aspect=float(np.median(hw[:, 1] / hw[:, 0])),
        intensity=intensity,
        class_presence=dict(class_presence or {}),
    )


def pool_topology(
    patch_size: tuple[int, int], min_feature_map: int = 8, max_pools: int = 6
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], tuple[int, int]]:
    """nnU-Net's pooling rule: (kernel sizes, strides, patch size rounded to the strides).

    An axis is pooled while its feature map is at least ``2 * min_feature_map``; the size is then
    rounded to the nearest multiple of the product of its strides.
    """
    size = [float(patch_size[0]), float(patch_size[1])]
    strides: list[tuple[int, int]] = [(1, 1)]
    while len(strides) - 1 < max_pools:
        s = tuple(2 if size[i] >= 2 * min_feature_map else 1 for i in range(2))
        if s == (1, 1):
            break
        strides.append((s[0], s[1]))
        size = [size[i] / s[i] for i in range(2)]
    kernels = tuple((3, 3) for _ in strides)
    dy = math.prod(s[0] for s in strides)
    dx = math.prod(s[1] for s in strides)
    # nearest multiple (not the next one up: 289 px should become 288, not 320)
    rounded = (max(round(patch_size[0] / dy), 1) * dy, max(round(patch_size[1] / dx), 1) * dx)
    return kernels, tuple(strides), rounded


def plan_from_fingerprint(
    fp: DatasetFingerprint,
    target_spacing_mm: float = 1.2,
    longest_side_range: tuple[int, int] = (256, 384),
    default_longest_side: int = 320,
    base_filters: int = 8,
    max_filters: int = 128,
    min_feature_map: int = 8,
    max_pools: int = 6,
    deep_supervision: bool = False,
    patch_size: tuple[int, int] | None = None,
) -> Plans:
    """Plans from a fingerprint (see the module docstring for the rules).

    ``patch_size`` overrides the input size (used by tests and for experiments).
    """
    notes: dict[str, Any] = {}
    if patch_size is None:
        lo, hi = longest_side_range
        if fp.median_size_mm is not None:
            longest_mm = max(fp.median_size_mm)
            longest = int(np.clip(round(longest_mm / target_spacing_mm), lo, hi))
            notes["longest_side_rule"] = (
                f"median film {fp.median_size_mm[0]:.0f} x {fp.median_size_mm[1]:.0f} mm / "
                f"{target_spacing_mm} mm/px, clipped to {lo}-{hi} px"
            )
        else:
            longest = default_longest_side
            notes["longest_side_rule"] = (
                f"no pixel spacing known: default {default_longest_side} px"
            )
        aspect = fp.median_aspect  # columns / rows
        if aspect <= 1.0:
            want = (longest, max(round(longest * aspect), 2 * min_feature_map))
        else:
            want = (max(round(longest / aspect), 2 * min_feature_map), longest)
    else:
        want = (int(patch_size[0]), int(patch_size[1]))
        notes["longest_side_rule"] = f"patch size given explicitly: {want}"
    kernels, strides, rounded = pool_topology(want, min_feature_map, max_pools)
    filters = tuple(min(base_filters * 2**i, max_filters) for i in range(len(strides)))
    mm_per_px: float | None = None
    if fp.median_size_mm is not None:
        # fit rule: the median film's scale is limited by the tighter axis
        scale = min(rounded[0] / fp.median_shape[0], rounded[1] / fp.median_shape[1])
        assert fp.median_spacing_mm is not None
        mm_per_px = float(np.mean(fp.median_spacing_mm) / scale)
        notes["median_film_mm_per_px"] = round(mm_per_px, 3)
    orient_filters = _orientation_filters((rounded[0] // 2, rounded[1] // 2))
    return Plans(
        patch_size=rounded,
        orientation_filters=orient_filters,
        kernel_sizes=kernels,
        strides=strides,
        filters=filters,
        target_spacing_mm=target_spacing_mm if fp.median_size_mm is not None else None,
        median_mm_per_px=mm_per_px,
        deep_supervision=deep_supervision,
        deep_supr_num=1,
        fingerprint=fp.to_dict(),
        notes=notes,
    )


def _orientation_filters(
    size: tuple[int, int], widths: tuple[int, ...] = (8, 16, 32, 48, 64), min_size: int = 4
) -> tuple[int, ...]:
    """Widths of the orientation classifier: one stride-2 stage per width while the feature
    map stays at least ``min_size`` px."""
    n, s = 0, min(size)
    while n < len(widths) and s // 2 >= min_size:
        s //= 2
        n += 1
    return widths[: max(n, 1)]
