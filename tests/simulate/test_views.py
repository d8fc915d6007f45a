"""The procedural generators of the view classifier's classes."""

from __future__ import annotations

import numpy as np
import pytest

from aacscore.gate.view import CLASSES
from aacscore.simulate import views
from aacscore.simulate.nonradiographs import HELD_OUT_PHOTOS, PHOTOS
from aacscore.simulate.views import (
    VIEW_CLASSES,
    film_family,
    generate,
    lateral_box,
    lateral_crop,
    raw_film,
    spot_box,
    spot_crop,
)


def test_class_names_match_the_classifier() -> None:
    assert VIEW_CLASSES == tuple(c.value for c in CLASSES)


@pytest.mark.parametrize("cls", VIEW_CLASSES)
def test_every_class_is_generated_deterministically(cls: str) -> None:
    a = generate(cls, 5, 1)
    b = generate(cls, 5, 1)
    c = generate(cls, 5, 2)
    assert a.ndim == 2 and a.dtype == np.float32
    assert min(a.shape) >= 24
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert float(a.std()) > 0.01  # not blank
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_unknown_class_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown view class"):
        generate("abdomen", 0, 0)


def test_the_cat_is_held_out() -> None:
    assert "chelsea" in HELD_OUT_PHOTOS and "chelsea" not in PHOTOS


def _inside(pts: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    x0, y0, x1, y1 = box
    return bool(
        np.all((pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1))
    )


def test_spot_views_cut_off_lumbar_levels_and_lateral_crops_keep_them() -> None:
    from aacscore.simulate.case import simulate_case

    case = simulate_case(3, 0, spacing_mm=1.2)
    for i in range(12):
        box = spot_box(case, np.random.default_rng(i))
        kept = [_inside(case.vertebrae[n], box) for n in ("L1", "L2", "L3", "L4")]
        assert not all(kept)
        assert spot_crop(case, np.random.default_rng(i)).size > 0
        lat = lateral_box(case, np.random.default_rng(100 + i))
        assert all(_inside(case.vertebrae[n], lat) for n in ("L1", "L2", "L3", "L4"))
        assert lateral_crop(case, np.random.default_rng(100 + i)).size > 0


def test_lateral_and_spot_images_mix_both_simulator_families(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real_a, real_b = views.simulate_case, views.simulate_case_b

    def a(*args: object, **kw: object) -> object:
        calls.append("a")
        return real_a(*args, **kw)  # type: ignore[arg-type]

    def b(*args: object, **kw: object) -> object:
        calls.append("b")
        return real_b(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(views, "simulate_case", a)
    monkeypatch.setattr(views, "simulate_case_b", b)
    views._shared_film.cache_clear()
    for cls in ("lateral_lumbar", "lumbar_spot"):
        calls.clear()
        for i in range(8):
            generate(cls, 77, i)
        # films alternate A, B every CROPS_PER_FILM images; each film is rendered once
        assert calls == [film_family(i) for i in range(0, 8, views.CROPS_PER_FILM)]
        assert set(calls) == {"a", "b"}
    views._shared_film.cache_clear()


def test_every_radiograph_class_gets_the_same_style(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, tuple[bool, float, bool]] = {}
    real = views.style

    def spy(
        img: np.ndarray,
        rng: np.random.Generator,
        rotate: bool = True,
        strength: float = 1.0,
        crop: bool = True,
    ) -> np.ndarray:
        seen[current] = (rotate, strength, crop)
        return real(img, rng, rotate, strength, crop)

    monkeypatch.setattr(views, "style", spy)
    for current in VIEW_CLASSES[:-1]:
        generate(current, 3, 0)
    assert set(seen) == set(VIEW_CLASSES[:-1])
    assert len(set(seen.values())) == 1


def test_raw_film_refuses_non_radiograph_classes() -> None:
    with pytest.raises(ValueError, match="unknown radiograph class"):
        raw_film("not_radiograph", 0, 0)


def test_working_film_scales_the_corners_with_the_pixels() -> None:
    from aacscore.simulate.case import simulate_case
    from aacscore.simulate.views import FILM_WORKING_SPACING_MM, working_film

    case = simulate_case(4, 0, spacing_mm=0.3)
    film = working_film(case.image, case.vertebrae, 0.3, np.random.default_rng(0))
    k = film.image.shape[1] / case.image.shape[1]
    lo, hi = FILM_WORKING_SPACING_MM
    assert 0.3 / hi - 0.01 <= k <= 0.3 / lo + 0.01
    np.testing.assert_allclose(film.vertebrae["L3"][:, 0], case.vertebrae["L3"][:, 0] * k)
    # a film coarser than the working scale is never enlarged
    coarse = working_film(case.image, case.vertebrae, 3.0, np.random.default_rng(0))
    assert coarse.image.shape == case.image.shape


def test_film_images_are_deterministic_and_crop_like_the_generated_ones() -> None:
    from aacscore.simulate.case import simulate_case
    from aacscore.simulate.views import Film, film_image

    case = simulate_case(4, 1, spacing_mm=1.2)
    film = Film(case.image, case.vertebrae)
    a = film_image(film, "lateral_lumbar", np.random.default_rng(3))
    b = film_image(film, "lateral_lumbar", np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    raw = film_image(film, "lumbar_spot", np.random.default_rng(5), styled=False)
    box = spot_box(film, np.random.default_rng(5))
    assert raw.shape == spot_crop(film, np.random.default_rng(5)).shape
    assert raw.shape[0] <= box[3] - box[1] + 2
    with pytest.raises(ValueError, match="lateral_lumbar or lumbar_spot"):
        film_image(film, "chest", np.random.default_rng(0))
