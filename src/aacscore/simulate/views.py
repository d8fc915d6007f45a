"""Images of every class of the view classifier (:mod:`aacscore.gate.view`).

We have no labelled real films, so the input gate learns from images we make ourselves:

* ``lateral_lumbar``: films of both simulator families (A: :func:`aacscore.simulate.case.
  simulate_case`, B: :func:`aacscore.simulate.family_b.case.simulate_case_b`, alternating,
  rendered coarse, two crops per film), whole or cropped so that L1-L4 with the T12/L1 and
  L4/L5 discs stay on the film;
* ``lumbar_spot``: crops of the same kind of films keeping only L4-S1 or only T12-L2 (from the
  simulated vertebra corners);
* ``ap_lumbar``, ``chest`` (PA and lateral), ``lateral_thoracic``, ``cervical`` (lateral and
  AP), ``pelvis_hip``, ``other_body_part`` (limb joints, hands/feet, skulls): projection
  phantoms of that anatomy sent through the same imaging chains as the lateral films
  (:mod:`.views_chain`: family A's or family B's exposure, noise and vendor processing);
* ``not_radiograph`` (:mod:`.nonradiographs`): photographs, textures, gradients, drawings,
  screenshots, label maps and aacscore-style overlays.

Every radiograph, of whatever class, then goes through the same :func:`style` (gamma, window,
inversion, noise, blur, rotation, vignetting, grid lines, collimation borders, burned-in markers)
with the same strength, so that neither the rendering nor the style tells the classes apart.
Image ``index`` of class ``c`` and seed ``seed`` draws from
``default_rng(SeedSequence([seed, c, index]))``: deterministic whatever the number of jobs.

Not modelled: real anatomy variation beyond a few parameters, implants, contrast media,
pathology, paediatric films, CT/MR scout images.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw
from scipy import ndimage

from aacscore.backend.resample import resize_bilinear
from aacscore.simulate.case import SimulatedCase, simulate_case
from aacscore.simulate.family_b.case import simulate_case_b
from aacscore.simulate.geometry import F32
from aacscore.simulate.nonradiographs import font, not_radiograph
from aacscore.simulate.views_chain import PHANTOMS, render_class, texture

VIEW_CLASSES: tuple[str, ...] = (
    "lateral_lumbar",
    "ap_lumbar",
    "chest",
    "lateral_thoracic",
    "cervical",
    "pelvis_hip",
    "lumbar_spot",
    "other_body_part",
    "not_radiograph",
)
"""Class names in label order (the same order as :class:`aacscore.gate.view.ViewClass`)."""

SIM_SPACING_MM: tuple[float, float] = (0.8, 1.6)
"""Pixel spacing range of the family A lateral films (coarse: the classifier sees ~128 px)."""
SIM_SPACING_B_MM: tuple[float, float] = (1.5, 2.0)
"""Pixel spacing range of the family B lateral films (coarser: family B renders slower)."""
STYLE_STRENGTH = 0.6
"""Strength of :func:`style` for every radiograph class."""

_TEXTS = ("L", "R", "LAT", "AP", "PA", "SUPINE", "ERECT", "STANDING", "PORTABLE", "LT", "RT")


def rng_for(seed: int, cls: int, index: int) -> np.random.Generator:
    """The random generator of image ``index`` of class number ``cls``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(cls), int(index)]))


# -------------------------------------------------------------------------------------------
# Style randomisation (every radiograph class)


def burn_text(img: F32, rng: np.random.Generator, n: int) -> F32:
    """Burn ``n`` markers/labels ("L", "R", dates, view names) into an image in [0, 1]."""
    h, w = img.shape
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(n):
        if rng.random() < 0.3:
            text = f"20{rng.integers(10, 27)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        else:
            text = str(rng.choice(_TEXTS))
        size = int(min(h, w) * rng.uniform(0.04, 0.1))
        fx, fy = (
            rng.choice([0.03, 0.75]) + rng.uniform(0, 0.15),
            rng.choice([0.03, 0.85]) + rng.uniform(0, 0.08),
        )
        draw.text((fx * w, fy * h), text, fill=int(rng.choice([255, 230, 0])), font=font(size))
    return (np.asarray(pil, dtype=np.float32) / 255.0).astype(np.float32)


def style(
    img: F32,
    rng: np.random.Generator,
    rotate: bool = True,
    strength: float = 1.0,
    crop: bool = True,
) -> F32:
    """Random rendering style: exposure/log, window, gamma, blur, noise, grid, vignetting,
    rotation, partial crop (with ``crop``), collimation, burned-in text, inversion; output in
    [0, 1]."""
    a = np.asarray(img, dtype=np.float32)
    h, w = a.shape
    p = strength
    if rotate and rng.random() < 0.6:
        a = ndimage.rotate(a, rng.uniform(-15, 15), reshape=False, order=1, mode="nearest")
    if rng.random() < 0.5 * p and crop:  # partial crop
        fh, fw = rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)
        ch, cw = max(32, int(h * fh)), max(32, int(w * fw))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        a = a[y0 : y0 + ch, x0 : x0 + cw]
        h, w = a.shape
    if rng.random() < 0.6:
        a = a + 0.15 * rng.uniform(0, 1) * texture(rng, a.shape, max(h, w) * rng.uniform(0.05, 0.2))
    if rng.random() < 0.7:
        a = ndimage.gaussian_filter(a, rng.uniform(0.3, 1.5))
    lo, hi = np.percentile(a, [rng.uniform(0, 5), rng.uniform(95, 100)])
    a = (a - lo) / max(float(hi - lo), 1e-6)
    a = np.clip(a, 0, 1)
    if rng.random() < 0.4:  # unsharp masking, vendor style
        a = a + rng.uniform(0.3, 1.5) * (a - ndimage.gaussian_filter(a, max(h, w) * 0.03))
    a = np.clip(a, 0, 1) ** float(np.exp(rng.uniform(-0.7, 0.7)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.3 * p:  # vignetting / heel effect
        r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
        a = a * (1 - rng.uniform(0.1, 0.6) * r2 * 2) + rng.uniform(-0.1, 0.1) * (yy / h - 0.5)
    if rng.random() < 0.15 * p:  # grid lines
        period = rng.uniform(2.2, 5.0)
        a = a + rng.uniform(0.01, 0.05) * np.sin(
            2 * math.pi * (xx if rng.random() < 0.7 else yy) / period
        )
    a = a + rng.uniform(0, 0.05) * rng.standard_normal(a.shape).astype(np.float32)
    if rng.random() < 0.4 * p:  # collimation borders
        val = float(rng.choice([0.0, 0.05, 0.9, 1.0]))
        m = np.ones((h, w), bool)
        for side in range(4):
            if rng.random() < 0.5:
                k = rng.uniform(0.02, 0.15)
                if side == 0:
                    m &= yy >= k * h
                elif side == 1:
                    m &= yy < (1 - k) * h
                elif side == 2:
                    m &= xx >= k * w
                else:
                    m &= xx < (1 - k) * w
        a = np.where(m, a, val)
    a = np.clip(a, 0, 1).astype(np.float32)
    if rng.random() < 0.6 * p:
        a = burn_text(a, rng, int(rng.integers(1, 4)))
    if rng.random() < 0.08:
        a = 1.0 - a
    return a.astype(np.float32)


# -------------------------------------------------------------------------------------------
# Simulated lateral films: whole, cropped keeping L1-L4, and spot crops


class LateralFilm(Protocol):
    """A lateral film and its vertebra corners (a :class:`SimulatedCase`, or a film read from
    disk with its annotations): what the crop boxes need."""

    @property
    def image(self) -> F32: ...

    @property
    def vertebrae(self) -> Mapping[str, np.ndarray]: ...


def sim_film(
    seed: int, index: int, rng: np.random.Generator, family: str | None = None
) -> SimulatedCase:
    """A coarse simulated lateral film (case ``index`` of ``seed``) of family ``"a"`` or
    ``"b"`` (None: either, at random)."""
    fam = family if family is not None else str(rng.choice(["a", "b"]))
    if fam == "a":
        return simulate_case(seed, index, spacing_mm=float(rng.uniform(*SIM_SPACING_MM)))
    if fam == "b":
        return simulate_case_b(seed, index, spacing_mm=float(rng.uniform(*SIM_SPACING_B_MM)))
    raise ValueError(f"unknown simulator family {fam!r}; expected 'a' or 'b'")


def _bbox(case: LateralFilm, names: tuple[str, ...]) -> tuple[float, float, float, float]:
    pts = np.concatenate([case.vertebrae[n] for n in names if n in case.vertebrae], axis=0)
    return (
        float(pts[:, 0].min()),
        float(pts[:, 1].min()),
        float(pts[:, 0].max()),
        float(pts[:, 1].max()),
    )


def _crop(img: F32, x0: float, y0: float, x1: float, y1: float) -> F32:
    h, w = img.shape
    a, b = max(0, math.floor(x0)), min(w, math.ceil(x1))
    c, d = max(0, math.floor(y0)), min(h, math.ceil(y1))
    return img[c:d, a:b]


def lateral_box(case: LateralFilm, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """The ``(x0, y0, x1, y1)`` window of a lateral training image: the whole film, or a random
    crop that keeps L1-L4, the T12/L1 and L4/L5 discs and the aorta in front of the spine."""
    h, w = case.image.shape
    if rng.random() < 0.35:
        return 0.0, 0.0, float(w), float(h)
    x0, y0, x1, y1 = _bbox(case, ("L1", "L2", "L3", "L4"))
    bh = (y1 - y0) / 4
    bx0, bx1 = x0 - 0.8 * (x1 - x0), x1 + 0.5 * (x1 - x0)
    by0, by1 = y0 - 0.35 * bh, y1 + 0.35 * bh
    cx0 = rng.uniform(0, max(0.0, bx0))
    cx1 = rng.uniform(min(w, bx1), w)
    cy0 = rng.uniform(0, max(0.0, by0))
    cy1 = rng.uniform(min(h, by1), h)
    return cx0, cy0, cx1, cy1


def lateral_crop(case: LateralFilm, rng: np.random.Generator) -> F32:
    """A lateral training image of a simulated film (see :func:`lateral_box`)."""
    return _crop(case.image, *lateral_box(case, rng))


def spot_box(case: LateralFilm, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """The ``(x0, y0, x1, y1)`` window of a spot view: only L4-S1 (L1-L2 cut off) or only
    T12-L2 (L3-L5 cut off)."""
    h, w = case.image.shape
    x0, _, x1, _ = _bbox(case, ("L1", "L2", "L3", "L4"))
    dx = x1 - x0
    cx0 = rng.uniform(max(0.0, x0 - 1.5 * dx), max(0.0, x0 - 0.3 * dx))
    cx1 = rng.uniform(min(w, x1 + 0.3 * dx), min(w, x1 + 1.5 * dx))
    if rng.random() < 0.65 or "T12" not in case.vertebrae:
        _, l3y0, _, l3y1 = _bbox(case, ("L3",))
        _, _, _, sy1 = _bbox(case, ("L5", "S1"))
        top = rng.uniform(l3y0, (l3y0 + l3y1) / 2 + 0.4 * (l3y1 - l3y0))
        bot = rng.uniform(min(h, sy1), h)
    else:
        _, ty0, _, _ = _bbox(case, ("T12",))
        _, l3y0, _, l3y1 = _bbox(case, ("L3",))
        top = rng.uniform(0, max(0.0, ty0))
        bot = rng.uniform(l3y0 - 0.2 * (l3y1 - l3y0), (l3y0 + l3y1) / 2)
    return cx0, top, cx1, bot


def spot_crop(case: LateralFilm, rng: np.random.Generator) -> F32:
    """A spot view of a simulated film (see :func:`spot_box`)."""
    return _crop(case.image, *spot_box(case, rng))


# -------------------------------------------------------------------------------------------
# Full-size films read from disk (the pipeline's input) as lateral and spot images

FILM_WORKING_SPACING_MM: tuple[float, float] = (0.8, 2.0)
"""Spacing a full-size film is resampled to before it is cut and styled: the scale at which
the phantoms and the coarse simulated films are drawn, so that :func:`style` acts alike."""


@dataclass(frozen=True)
class Film:
    """A lateral film (bone bright, [0, 1]) with its vertebra corners ((4, 2) pixel x, y)."""

    image: F32
    vertebrae: Mapping[str, np.ndarray]


def working_film(
    pixels: npt.ArrayLike,
    vertebrae: Mapping[str, npt.ArrayLike],
    spacing_mm: float,
    rng: np.random.Generator,
) -> Film:
    """A full-size film resampled (antialiased) to a random spacing of
    :data:`FILM_WORKING_SPACING_MM`, with its corners scaled alike (never enlarged)."""
    a = np.asarray(pixels, dtype=np.float32)
    target = float(rng.uniform(*FILM_WORKING_SPACING_MM))
    k = min(1.0, float(spacing_mm) / target)
    h, w = a.shape
    size = (max(8, round(h * k)), max(8, round(w * k)))
    if size != (h, w):
        a = resize_bilinear(a, size, antialias=True)
    sy, sx = size[0] / h, size[1] / w
    corners = {
        n: np.asarray(c, dtype=np.float64).reshape(4, 2) * np.array([sx, sy])
        for n, c in vertebrae.items()
    }
    return Film(np.ascontiguousarray(a, dtype=np.float32), corners)


def film_image(film: LateralFilm, cls: str, rng: np.random.Generator, styled: bool = True) -> F32:
    """A ``lateral_lumbar`` or ``lumbar_spot`` image of a lateral film: the crop of
    :func:`lateral_crop` / :func:`spot_crop`, mirrored half the time and, with ``styled``, under
    the same :func:`style` as every generated radiograph."""
    if cls == "lateral_lumbar":
        img = lateral_crop(film, rng)
    elif cls == "lumbar_spot":
        img = spot_crop(film, rng)
    else:
        raise ValueError(f"a lateral film gives lateral_lumbar or lumbar_spot images, not {cls!r}")
    if rng.random() < 0.5:
        img = img[:, ::-1]
    img = np.ascontiguousarray(img, dtype=np.float32)
    if not styled:
        return img
    return style(img, rng, rotate=True, strength=STYLE_STRENGTH, crop=False)


# -------------------------------------------------------------------------------------------
# Generation


RENDERED: tuple[str, ...] = tuple(PHANTOMS)
"""The classes drawn as projection phantoms (:mod:`.views_chain`)."""


CROPS_PER_FILM = 2
"""Lateral and spot images cut from each simulated film (consecutive indices share a film)."""


def film_family(index: int) -> str:
    """The simulator family of the film under lateral/spot image ``index``: films alternate
    between A and B."""
    return ("a", "b")[(index // CROPS_PER_FILM) % 2]


@functools.lru_cache(maxsize=4)
def _shared_film(seed: int, cls: int, film: int) -> SimulatedCase:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(cls), int(film), 1]))
    # film seeds: class number in the upper digits, so the two classes use other films
    return sim_film(seed * 1000 + cls, film, rng, ("a", "b")[film % 2])


def raw_film(cls: str, seed: int, index: int) -> tuple[F32, np.random.Generator]:
    """The film of image ``index`` of radiograph class ``cls`` before :func:`style`, and the
    generator to style it with."""
    if cls not in VIEW_CLASSES or cls == "not_radiograph":
        raise ValueError(f"unknown radiograph class {cls!r}; expected one of {VIEW_CLASSES[:-1]}")
    c = VIEW_CLASSES.index(cls)
    rng = rng_for(seed, c, index)
    if cls in ("lateral_lumbar", "lumbar_spot"):
        case = _shared_film(seed, c, index // CROPS_PER_FILM)
        img = lateral_crop(case, rng) if cls == "lateral_lumbar" else spot_crop(case, rng)
    else:
        img = render_class(cls, rng)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return np.ascontiguousarray(img, dtype=np.float32), rng


def generate(cls: str, seed: int, index: int) -> F32:
    """Image ``index`` of class ``cls`` for ``seed``: 2-D float32 in [0, 1], any size."""
    if cls not in VIEW_CLASSES:
        raise ValueError(f"unknown view class {cls!r}; expected one of {VIEW_CLASSES}")
    if cls == "not_radiograph":
        rng = rng_for(seed, VIEW_CLASSES.index(cls), index)
        return not_radiograph(rng, seed, index)
    img, rng = raw_film(cls, seed, index)
    return style(img, rng, rotate=True, strength=STYLE_STRENGTH, crop=False)
