"""The spine stage's resize and post-processing shortcuts give the plain implementations'
results bit for bit: the blocked film resize, the one-pass label map (mirroring folded in) and
the vectorised hull and rectangle fits, each against the loop it replaced, and the whole spine
stage on a simulated film with the shortcuts against the same stage with the plain ones."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial import ConvexHull

from aacscore.backend.resample import resize_bilinear
from aacscore.io import read_radiograph
from aacscore.spine import geometry
from aacscore.spine.predict import SpineModel
from aacscore.spine.preprocess import BLOCK, Letterbox, resize_film
from aacscore.spine.result import SpineResult


def _shoelace_area(p: np.ndarray) -> float:
    return float(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1)))


def plain_min_area_rectangle(points: npt.ArrayLike) -> np.ndarray:
    """The loop over hull-edge angles that :func:`geometry.min_area_rectangle` replaced."""
    p = np.asarray(points, dtype=np.float64)
    hull = p[ConvexHull(p).vertices]
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    best: tuple[float, np.ndarray] | None = None
    for a in angles:
        c, s = math.cos(a), math.sin(a)
        rot = np.array([[c, s], [-s, c]])
        q = hull @ rot.T
        lo, hi = q.min(axis=0), q.max(axis=0)
        area = float(np.prod(hi - lo))
        if best is None or area < best[0]:
            box = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
            best = (area, box @ rot)
    assert best is not None
    return best[1]


def plain_convex_outline(points: npt.ArrayLike, step: float = 0.25) -> np.ndarray:
    """The per-edge loop that :func:`geometry.convex_outline` replaced."""
    p = np.asarray(points, dtype=np.float64)
    hull = p[ConvexHull(p).vertices]
    if _shoelace_area(p) < 0:
        hull = hull[::-1]
    parts = []
    for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        n = max(math.ceil(float(np.hypot(*(b - a))) / step), 1)
        parts.append(a + (b - a) * (np.arange(n)[:, None] / n))
    return np.concatenate(parts)


def plain_labels_to_image(
    box: Letterbox, labels: np.ndarray, factor: int = 1, mirrored: bool = False
) -> np.ndarray:
    """Fancy indexing on both axes, then the mirror as a second step (as before)."""
    h, w = box.in_shape
    sy, sx = box.scale
    ys = (np.arange(h) + 0.5) * sy + box.offset[0]
    xs = (np.arange(w) + 0.5) * sx + box.offset[1]
    ri = np.clip(np.floor(ys * factor).astype(np.int64), 0, labels.shape[0] - 1)
    ci = np.clip(np.floor(xs * factor).astype(np.int64), 0, labels.shape[1] - 1)
    out = labels[np.ix_(ri, ci)]
    return np.ascontiguousarray(out[:, ::-1]) if mirrored else out


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((2962, 2075), (274, 192)),  # portrait, rows shrink most: blocks of columns
        ((1360, 2252), (174, 288)),  # landscape, columns first: blocks of rows
        ((700, 192), (288, 192)),  # one axis unchanged, the other upsampled
        ((BLOCK + 3, 97), (40, 97)),  # a partial last block
    ],
)
def test_resize_film_is_resize_bilinear_bit_for_bit(
    shape: tuple[int, int], size: tuple[int, int]
) -> None:
    a = np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)
    got = resize_film(a, size)
    assert got.dtype == np.float32 and got.shape == size
    np.testing.assert_array_equal(got, resize_bilinear(a, size, antialias=True))
    with pytest.raises(ValueError, match="invalid output size"):
        resize_film(a, (0, 4))


def test_letterbox_resize_uses_the_film_path_for_2d_and_keeps_stacks() -> None:
    box = Letterbox.fit((600, 410), (288, 192))
    a = np.random.default_rng(1).random((600, 410), dtype=np.float32)
    np.testing.assert_array_equal(box.resize_image(a), resize_bilinear(a, box.resized, True))
    stack = np.stack([a, 1 - a])
    np.testing.assert_array_equal(
        box.resize_image(stack), resize_bilinear(stack, box.resized, True)
    )


@pytest.mark.parametrize("mirrored", [False, True])
def test_labels_to_image_with_the_mirror_folded_in(mirrored: bool) -> None:
    box = Letterbox.fit((1031, 707), (288, 192))
    fine = np.random.default_rng(2).integers(0, 8, size=(288 * 4, 192 * 4), dtype=np.uint8)
    got = box.labels_to_image(fine, factor=4, mirrored=mirrored)
    assert got.shape == (1031, 707) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, plain_labels_to_image(box, fine, 4, mirrored))


def test_vectorised_hull_and_rectangle_match_their_loops() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(8, 80))
        t = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(20, 40, n)
        pts = np.stack([r * np.cos(t) * rng.uniform(0.5, 2), r * np.sin(t)], axis=1)
        pts = pts @ np.array([[0.8, 0.6], [-0.6, 0.8]]) + rng.uniform(-100, 100, 2)
        for p in (pts, pts[::-1]):
            np.testing.assert_allclose(
                geometry.convex_outline(p), plain_convex_outline(p), rtol=0, atol=1e-12
            )
        np.testing.assert_allclose(
            geometry.min_area_rectangle(pts), plain_min_area_rectangle(pts), rtol=0, atol=1e-9
        )


def _fields(res: SpineResult) -> dict[str, Any]:
    out = {f.name: getattr(res, f.name) for f in dataclasses.fields(res) if f.name != "timings"}
    out["vertebrae"] = {n: (v.corners, v.area_px, v.fit_rms_px) for n, v in res.vertebrae.items()}
    return out


def _assert_same(a: Any, b: Any, tol: float) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k], tol)
    elif isinstance(a, (tuple, list)) and not isinstance(a, str):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y, tol)
    elif isinstance(a, np.ndarray):
        if a.dtype.kind in "iub":
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=tol, nan_ok=True)
    elif dataclasses.is_dataclass(a):
        _assert_same(dataclasses.asdict(a), dataclasses.asdict(b), tol)  # type: ignore[arg-type]
    else:
        assert a == b


@pytest.mark.parametrize("side", [None, "right"])
def test_spine_stage_on_a_simulated_film_as_with_the_plain_implementations(
    simulated_film: dict[str, Path], monkeypatch: pytest.MonkeyPatch, side: str | None
) -> None:
    rad = read_radiograph(simulated_film["dicom"])
    model = SpineModel.load(backend="onnx")
    fast = model.predict(rad, anterior_side=side)
    with monkeypatch.context() as m:
        m.setattr(
            Letterbox,
            "resize_image",
            lambda self, img: resize_bilinear(np.asarray(img, np.float32), self.resized, True),
        )
        m.setattr(Letterbox, "labels_to_image", plain_labels_to_image)
        m.setattr(geometry, "min_area_rectangle", plain_min_area_rectangle)
        m.setattr(geometry, "convex_outline", plain_convex_outline)
        plain = model.predict(rad, anterior_side=side)
    assert len(fast.vertebrae) >= 5  # the film's spine is found
    if side == "right":
        assert fast.anterior_side == "right"  # the mirrored path is taken
    _assert_same(_fields(fast), _fields(plain), 1e-9)
