"""The ``plans.json`` of a spine model: network input, topology, normalisation (loaded at
inference; :mod:`aacscore.training.plans` makes them from a dataset fingerprint)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aacscore.vertebrae import CLASS_NAMES

PLANS_VERSION = 1
RESIZE_RULE = (
    "fit_longest_side: the whole film is resized (antialiased, aspect ratio kept) so that it fits "
    "the input, then centred and zero-padded; the same rule applies with or without known pixel "
    "spacing; mm/px in the input = spacing_mm / scale"
)


class PlansError(ValueError):
    """Invalid fingerprint or plans file."""


@dataclass(frozen=True)
class Plans:
    """Everything needed to rebuild the network and its pre/post-processing."""

    patch_size: tuple[int, int]
    kernel_sizes: tuple[tuple[int, int], ...]
    strides: tuple[tuple[int, int], ...]
    filters: tuple[int, ...]
    n_classes: int = len(CLASS_NAMES)
    class_names: tuple[str, ...] = CLASS_NAMES
    resize_rule: str = RESIZE_RULE
    target_spacing_mm: float | None = None
    median_mm_per_px: float | None = None
    normalization: str = "zscore_per_image_over_film_area"
    norm: str = "instance"
    deep_supervision: bool = False
    deep_supr_num: int = 1
    orientation_downsample: int = 2
    orientation_filters: tuple[int, ...] = (8, 16, 32, 48, 64)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    version: int = PLANS_VERSION

    def __post_init__(self) -> None:
        if len(self.kernel_sizes) != len(self.strides) or len(self.filters) != len(self.strides):
            raise PlansError("kernel_sizes, strides and filters must have one entry per stage")
        div = self.divisor
        if self.patch_size[0] % div[0] or self.patch_size[1] % div[1]:
            raise PlansError(f"patch size {self.patch_size} not divisible by strides {div}")
        if self.n_classes != len(self.class_names):
            raise PlansError("n_classes must equal the number of class names")
        # JSON-normalise the free-form parts so that a saved and reloaded plan compares equal
        object.__setattr__(self, "fingerprint", json.loads(json.dumps(self.fingerprint)))
        object.__setattr__(self, "notes", json.loads(json.dumps(self.notes)))

    @property
    def divisor(self) -> tuple[int, int]:
        """Product of the strides of each axis: the input must be a multiple of it."""
        dy = math.prod(s[0] for s in self.strides)
        dx = math.prod(s[1] for s in self.strides)
        return (dy, dx)

    @property
    def orientation_size(self) -> tuple[int, int]:
        f = self.orientation_downsample
        return (self.patch_size[0] // f, self.patch_size[1] // f)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["patch_size"] = list(self.patch_size)
        d["kernel_sizes"] = [list(k) for k in self.kernel_sizes]
        d["strides"] = [list(s) for s in self.strides]
        return d

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return p

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plans:
        try:
            version = int(d.get("version", PLANS_VERSION))
            if version > PLANS_VERSION:
                raise PlansError(f"plans version {version} is newer than supported {PLANS_VERSION}")
            return cls(
                patch_size=(int(d["patch_size"][0]), int(d["patch_size"][1])),
                kernel_sizes=tuple((int(k[0]), int(k[1])) for k in d["kernel_sizes"]),
                strides=tuple((int(s[0]), int(s[1])) for s in d["strides"]),
                filters=tuple(int(f) for f in d["filters"]),
                n_classes=int(d.get("n_classes", len(CLASS_NAMES))),
                class_names=tuple(d.get("class_names", CLASS_NAMES)),
                resize_rule=str(d.get("resize_rule", RESIZE_RULE)),
                target_spacing_mm=(
                    None if d.get("target_spacing_mm") is None else float(d["target_spacing_mm"])
                ),
                median_mm_per_px=(
                    None if d.get("median_mm_per_px") is None else float(d["median_mm_per_px"])
                ),
                normalization=str(d.get("normalization", "zscore_per_image_over_film_area")),
                norm=str(d.get("norm", "instance")),
                deep_supervision=bool(d.get("deep_supervision", False)),
                deep_supr_num=int(d.get("deep_supr_num", 1)),
                orientation_downsample=int(d.get("orientation_downsample", 2)),
                orientation_filters=tuple(
                    int(f) for f in d.get("orientation_filters", (8, 16, 32, 48, 64))
                ),
                fingerprint=dict(d.get("fingerprint", {})),
                notes=dict(d.get("notes", {})),
                version=version,
            )
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            if isinstance(exc, PlansError):
                raise
            raise PlansError(f"invalid plans: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Plans:
        p = Path(path)
        if not p.is_file():
            raise PlansError(f"{p}: plans file not found")
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise PlansError(f"{p}: not valid JSON ({exc})") from exc
        try:
            return cls.from_dict(d)
        except PlansError as exc:
            raise PlansError(f"{p}: {exc}") from exc
