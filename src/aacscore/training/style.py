"""Style randomisation: make the networks depend on shape, not on one renderer's textures.

Every transform takes one film (float32 H x W in [0, 1], bone bright, the film area only: no
letterbox padding) and a numpy Generator and returns the restyled film in [0, 1]; the spatial
ones (:func:`perspective_warp`, :func:`anterior_crop`) also take and return the label map
(nearest neighbour) and the film mask. Transforms:

* global intensity non-linear augmentation (GIN: a random shallow conv net mixed with the input);
* random tone curves (monotone piecewise-linear, occasionally non-monotone), log/sigmoid tone
  mapping, gamma;
* multi-scale contrast processing: unsharp masking, CLAHE;
* white, coloured and signal-dependent noise, blur, down/up-sampling, JPEG compression;
* polarity inversion;
* burned-in text, L/R markers, rulers and grid lines;
* phone photographs of a film: perspective warp, moire, glare, a colour cast collapsed to grey;
* crops that cut the anterior soft tissue (canonical orientation: anterior left).

:func:`restyle` chains them with the probabilities of a :class:`StyleConfig`;
:func:`style_batch` applies it to a torch batch of letterboxed inputs (crop to the film box,
restyle, paste back), before z-score normalisation.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

FloatImage = npt.NDArray[np.float32]
LabelMap = npt.NDArray[np.integer]
Mask = npt.NDArray[np.bool_]
Range = tuple[float, float]


@dataclass(frozen=True)
class StyleConfig:
    """Probabilities (per film) and ranges of the style transforms; several may combine."""

    p_gin: float = 0.25
    gin_layers: tuple[int, int] = (2, 4)
    gin_channels: int = 4
    gin_alpha: Range = (0.3, 0.8)
    p_tone_curve: float = 0.3
    tone_knots: tuple[int, int] = (3, 7)
    p_nonmonotone: float = 0.1
    """Share of the tone curves that are not monotone."""
    p_unsharp: float = 0.25
    unsharp_radius: Range = (1.0, 12.0)
    unsharp_amount: Range = (0.3, 1.5)
    p_clahe: float = 0.1
    clahe_clip: Range = (0.005, 0.03)
    p_tonemap: float = 0.2
    p_gamma: float = 0.25
    gamma_range: Range = (0.5, 2.0)
    p_noise: float = 0.3
    noise_sd: Range = (0.005, 0.04)
    p_blur: float = 0.15
    blur_sigma: Range = (0.5, 1.5)
    p_resample: float = 0.15
    resample_range: Range = (0.3, 0.8)
    p_jpeg: float = 0.2
    jpeg_quality: tuple[int, int] = (10, 90)
    p_invert: float = 0.05
    p_overlay: float = 0.3
    p_perspective: float = 0.1
    perspective_max: float = 0.08
    """Largest corner displacement, as a fraction of the film's size."""
    p_moire: float = 0.05
    p_glare: float = 0.08
    p_colour_cast: float = 0.08
    p_anterior_crop: float = 0.1
    anterior_crop: Range = (0.05, 0.3)
    """Share of the film's width cut from the anterior edge."""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("p_") and not 0.0 <= v <= 1.0:
                raise ValueError(f"StyleConfig.{f.name} must lie in [0, 1], got {v}")
            if isinstance(v, tuple) and not v[0] <= v[1]:
                raise ValueError(f"StyleConfig.{f.name} must be (low, high), got {v}")


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def _renorm(x: npt.NDArray[np.floating], lo_q: float = 0.5, hi_q: float = 99.5) -> FloatImage:
    """Linear map of the robust range of ``x`` to [0, 1] (clipped)."""
    lo, hi = np.percentile(x, [lo_q, hi_q])
    if not math.isfinite(float(hi - lo)) or hi - lo < 1e-6:
        return np.clip(x, 0.0, 1.0).astype(np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _out(x: npt.NDArray[np.floating]) -> FloatImage:
    return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0).astype(np.float32)


# -------------------------------------------------------------------------------------------
# Intensity transforms
# -------------------------------------------------------------------------------------------


def gin(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """Global intensity non-linear augmentation: a random 2-4 layer conv net (1x1/3x3 kernels,
    leaky ReLU) whose output is mixed with the input by a random alpha and renormalised."""
    n_layers = int(rng.integers(cfg.gin_layers[0], cfg.gin_layers[1] + 1))
    c = cfg.gin_channels
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    with torch.no_grad():
        h = x
        for i in range(n_layers):
            cin = 1 if i == 0 else c
            cout = 1 if i == n_layers - 1 else c
            k = int(rng.choice([1, 3]))
            w = rng.normal(0.0, 1.0, (cout, cin, k, k)) / math.sqrt(cin * k * k)
            b = rng.normal(0.0, 0.1, cout)
            h = F.conv2d(
                F.pad(h, (k // 2,) * 4, mode="replicate") if k > 1 else h,
                torch.from_numpy(w.astype(np.float32)),
                torch.from_numpy(b.astype(np.float32)),
            )
            if i < n_layers - 1:
                h = F.leaky_relu(h, 0.2)
        raw = h[0, 0].numpy().astype(np.float64)
    g = _renorm(raw)
    if np.corrcoef(g.ravel(), image.ravel())[0, 1] < 0:  # keep bone bright on the whole
        g = 1.0 - g
    a = _u(rng, cfg.gin_alpha)
    return _renorm(a * g + (1.0 - a) * image, 0.0, 100.0)


def tone_curve(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """A random piecewise-linear tone curve: monotone, or (``p_nonmonotone``) not."""
    k = int(rng.integers(cfg.tone_knots[0], cfg.tone_knots[1] + 1))
    xs = np.linspace(0.0, 1.0, k + 1)
    if rng.random() < cfg.p_nonmonotone:
        ys = rng.uniform(0.0, 1.0, k + 1)
        ys[-1] = max(ys[-1], 0.7)  # dense bone stays brightish
    else:
        ys = np.concatenate([[0.0], np.cumsum(rng.dirichlet(np.full(k, 1.5)))])
    return _out(np.interp(image, xs, ys))


def unsharp(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """Unsharp masking (edge / multi-scale contrast enhancement) at a random radius."""
    sigma = math.exp(_u(rng, (math.log(cfg.unsharp_radius[0]), math.log(cfg.unsharp_radius[1]))))
    amount = _u(rng, cfg.unsharp_amount)
    smooth = ndimage.gaussian_filter(image.astype(np.float64), sigma, mode="nearest")
    return _out(image + amount * (image - smooth))


def clahe(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """Contrast-limited adaptive histogram equalisation (skimage)."""
    from skimage.exposure import equalize_adapthist

    size = max(8, int(min(image.shape) * rng.uniform(0.1, 0.3)))
    out = equalize_adapthist(_out(image), kernel_size=size, clip_limit=_u(rng, cfg.clahe_clip))
    return _out(out)


def tonemap(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """Vendor-like tone mapping: a log or a sigmoid curve."""
    x = image.astype(np.float64)
    if rng.random() < 0.5:
        k = math.exp(rng.uniform(math.log(2.0), math.log(50.0)))
        y = np.log1p(k * x) / math.log1p(k)
    else:
        gain = rng.uniform(4.0, 12.0)
        centre = rng.uniform(0.3, 0.7)
        s0, s1 = 1 / (1 + math.exp(gain * centre)), 1 / (1 + math.exp(-gain * (1 - centre)))
        y = (1 / (1 + np.exp(-gain * (x - centre))) - s0) / (s1 - s0)
    return _out(y)


def gamma(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """``image ** g`` with a log-uniform ``g``."""
    g = math.exp(_u(rng, (math.log(cfg.gamma_range[0]), math.log(cfg.gamma_range[1]))))
    return _out(np.clip(image, 0.0, 1.0) ** g)


def noise(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """White, coloured (low-pass correlated) or signal-dependent (Poisson-like) noise."""
    sd = _u(rng, cfg.noise_sd)
    n = rng.standard_normal(image.shape)
    kind = rng.random()
    if kind < 1 / 3:
        return _out(image + sd * n)
    if kind < 2 / 3:
        c = ndimage.gaussian_filter(n, rng.uniform(0.7, 3.0))
        return _out(image + sd * c / max(float(c.std()), 1e-6))
    # quantum noise after the log transform: strongest where few photons arrive (bright, dense)
    return _out(image + 2.0 * sd * np.sqrt(np.clip(image, 0.0, 1.0)) * n)


def blur(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """Gaussian blur."""
    return _out(ndimage.gaussian_filter(image, _u(rng, cfg.blur_sigma), mode="nearest"))


def resample(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """Down-sampling then up-sampling back (low resolution)."""
    h, w = image.shape
    f = _u(rng, cfg.resample_range)
    small = (max(2, round(w * f)), max(2, round(h * f)))
    down = Image.fromarray(image, mode="F").resize(small, Image.Resampling.BILINEAR)
    up = down.resize((w, h), rng.choice([Image.Resampling.NEAREST, Image.Resampling.BICUBIC]))
    return _out(np.asarray(up, dtype=np.float32))


def jpeg(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """JPEG compression at a random quality (in memory)."""
    q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    buf = io.BytesIO()
    Image.fromarray(np.round(_out(image) * 255).astype(np.uint8)).save(buf, "JPEG", quality=q)
    buf.seek(0)
    with Image.open(buf) as im:
        return (np.asarray(im.convert("L"), dtype=np.float32) / 255.0).astype(np.float32)


def invert(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """Polarity inversion (bone dark)."""
    return _out(1.0 - image)


_WORDS = ("L", "R", "LAT", "LT", "RT", "STANDING", "L-SPINE", "AP", "PORTABLE", "SUPINE")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow without FreeType
        return ImageFont.load_default()


def _random_text(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.4:
        return str(rng.choice(_WORDS))
    if r < 0.7:
        return (
            f"{rng.integers(1990, 2030)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d} "
            f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}"
        )
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(rng.choice(list(letters), int(rng.integers(4, 12))))


def overlay(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """Burned-in text, L/R markers, a ruler and/or grid lines (PIL drawing, anywhere)."""
    h, w = image.shape
    ink = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(ink)
    n_items = int(rng.integers(1, 4))
    for _ in range(n_items):
        kind = rng.random()
        if kind < 0.5:  # text or marker
            size = int(rng.integers(max(6, h // 40), max(8, h // 12) + 1))
            x0, y0 = int(rng.integers(0, max(1, w - size))), int(rng.integers(0, max(1, h - size)))
            draw.text((x0, y0), _random_text(rng), fill=255, font=_font(size))
        elif kind < 0.8:  # ruler with ticks
            vertical = rng.random() < 0.6
            length = int((h if vertical else w) * rng.uniform(0.3, 0.9))
            step = int(rng.integers(4, 12))
            if vertical:
                x, y0 = int(rng.integers(0, w)), int(rng.integers(0, max(1, h - length)))
                draw.line([(x, y0), (x, y0 + length)], fill=255)
                for t in range(0, length, step):
                    tick = 4 if (t // step) % 5 == 0 else 2
                    draw.line([(x, y0 + t), (x + tick, y0 + t)], fill=255)
            else:
                y, x0 = int(rng.integers(0, h)), int(rng.integers(0, max(1, w - length)))
                draw.line([(x0, y), (x0 + length, y)], fill=255)
                for t in range(0, length, step):
                    tick = 4 if (t // step) % 5 == 0 else 2
                    draw.line([(x0 + t, y), (x0 + t, y - tick)], fill=255)
        else:  # grid lines (anti-scatter grid / calibration grid)
            spacing = int(rng.integers(6, 24))
            grey = int(rng.integers(60, 200))
            if rng.random() < 0.5:
                for x in range(int(rng.integers(0, spacing)), w, spacing):
                    draw.line([(x, 0), (x, h)], fill=grey)
            else:
                for y in range(int(rng.integers(0, spacing)), h, spacing):
                    draw.line([(0, y), (w, y)], fill=grey)
    a = np.asarray(ink, dtype=np.float32) / 255.0 * rng.uniform(0.5, 1.0)
    value = 1.0 if rng.random() < 0.8 else 0.0
    return _out(image * (1.0 - a) + value * a)


def moire(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """Moire: the beat of two fine gratings at slightly different angles and periods."""
    h, w = image.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t1 = rng.uniform(0, math.pi)
    t2 = t1 + rng.uniform(0.02, 0.15)
    p1 = rng.uniform(2.0, 4.0)
    p2 = p1 * rng.uniform(1.02, 1.15)
    g1 = np.cos(2 * math.pi * (xx * math.cos(t1) + yy * math.sin(t1)) / p1)
    g2 = np.cos(2 * math.pi * (xx * math.cos(t2) + yy * math.sin(t2)) / p2)
    return _out(image + rng.uniform(0.02, 0.08) * g1 * g2)


def glare(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """A bright blob (a lamp's reflection on the film)."""
    h, w = image.shape
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    s = rng.uniform(0.05, 0.3) * min(h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return _out(image + rng.uniform(0.2, 0.8) * blob * (1.0 - image))


def colour_cast(image: FloatImage, rng: np.random.Generator, cfg: StyleConfig) -> FloatImage:
    """A tinted photograph collapsed to grey: per-channel gain/gamma/offset, then a random
    channel mix."""
    x = np.clip(image, 0.0, 1.0).astype(np.float64)
    chans = [
        np.clip(
            rng.uniform(0.0, 0.1) + rng.uniform(0.7, 1.0) * x ** rng.uniform(0.6, 1.6), 0.0, 1.0
        )
        for _ in range(3)
    ]
    mix = rng.dirichlet(np.ones(3) * 2.0)
    return _out(sum(m * c for m, c in zip(mix, chans, strict=True)))


IntensityTransform = Callable[[FloatImage, np.random.Generator, StyleConfig], FloatImage]

INTENSITY_TRANSFORMS: dict[str, IntensityTransform] = {
    "gin": gin,
    "tone_curve": tone_curve,
    "unsharp": unsharp,
    "clahe": clahe,
    "tonemap": tonemap,
    "gamma": gamma,
    "noise": noise,
    "blur": blur,
    "resample": resample,
    "jpeg": jpeg,
    "invert": invert,
    "overlay": overlay,
    "moire": moire,
    "glare": glare,
    "colour_cast": colour_cast,
}
"""The intensity-only transforms by name (the order of :func:`restyle` is its own)."""


# -------------------------------------------------------------------------------------------
# Spatial transforms
# -------------------------------------------------------------------------------------------


def _homography(src: npt.NDArray[np.float64], dst: npt.NDArray[np.float64]) -> npt.NDArray:
    """The 3x3 projective matrix taking 4 ``src`` points [x, y] to ``dst``."""
    a = np.zeros((8, 8))
    rhs = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst, strict=True)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        rhs[2 * i], rhs[2 * i + 1] = u, v
    return np.append(np.linalg.solve(a, rhs), 1.0).reshape(3, 3)


def perspective_warp(
    image: FloatImage,
    labels: LabelMap,
    mask: Mask,
    rng: np.random.Generator,
    cfg: StyleConfig,
) -> tuple[FloatImage, LabelMap, Mask]:
    """A random perspective warp (phone photograph of a film): image bilinear, labels nearest
    neighbour; uncovered corners show a dark background (still film area, label 0)."""
    from skimage.transform import ProjectiveTransform, warp

    h, w = image.shape
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    jitter = rng.uniform(-cfg.perspective_max, cfg.perspective_max, (4, 2)) * [w, h]
    inv = ProjectiveTransform(matrix=_homography(src + jitter, src))  # output -> input
    background = float(rng.uniform(0.0, 0.25))
    img = warp(image, inv, order=1, mode="constant", cval=background, preserve_range=True)
    lab = warp(labels, inv, order=0, mode="constant", cval=0, preserve_range=True)
    covered = warp(mask.astype(np.float64), inv, order=0, mode="constant", cval=0.0) > 0.5
    frame = warp(np.ones((h, w)), inv, order=0, mode="constant", cval=0.0) > 0.5
    return _out(img), lab.round().astype(labels.dtype), covered | ~frame


def anterior_crop(
    image: FloatImage,
    labels: LabelMap,
    mask: Mask,
    rng: np.random.Generator,
    cfg: StyleConfig,
) -> tuple[FloatImage, LabelMap, Mask]:
    """Cut a band from the anterior (left, canonical) edge: image and labels 0, no film area."""
    w = image.shape[1]
    cut = max(1, int(_u(rng, cfg.anterior_crop) * w))
    img, lab, m = image.copy(), labels.copy(), mask.copy()
    img[:, :cut] = 0.0
    lab[:, :cut] = 0
    m[:, :cut] = False
    return img, lab, m


# -------------------------------------------------------------------------------------------
# Chains
# -------------------------------------------------------------------------------------------


def _chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p) if p > 0 else False


def restyle_intensity(
    image: FloatImage, rng: np.random.Generator, cfg: StyleConfig = StyleConfig()
) -> FloatImage:
    """The intensity-only transforms of :func:`restyle`, each with its probability."""
    x = _out(image)
    # acquisition / vendor processing
    for name, p in (
        ("gin", cfg.p_gin),
        ("tone_curve", cfg.p_tone_curve),
        ("tonemap", cfg.p_tonemap),
        ("gamma", cfg.p_gamma),
        ("unsharp", cfg.p_unsharp),
        ("clahe", cfg.p_clahe),
        ("overlay", cfg.p_overlay),
        ("invert", cfg.p_invert),
        # photograph of the film / transfer
        ("glare", cfg.p_glare),
        ("moire", cfg.p_moire),
        ("colour_cast", cfg.p_colour_cast),
        ("blur", cfg.p_blur),
        ("resample", cfg.p_resample),
        ("noise", cfg.p_noise),
        ("jpeg", cfg.p_jpeg),
    ):
        if _chance(rng, p):
            x = INTENSITY_TRANSFORMS[name](x, rng, cfg)
    return x


def restyle(
    image: FloatImage,
    labels: LabelMap,
    rng: np.random.Generator,
    cfg: StyleConfig = StyleConfig(),
    mask: Mask | None = None,
) -> tuple[FloatImage, LabelMap, Mask]:
    """All transforms (spatial ones included) on one canonical film; returns (image, labels,
    film mask). ``mask`` (default: all film) marks the film area; outside it the result is 0."""
    if image.shape != labels.shape:
        raise ValueError(f"image {image.shape} and labels {labels.shape} differ in shape")
    m = np.ones(image.shape, dtype=bool) if mask is None else mask.astype(bool)
    img, lab = _out(image), labels
    if _chance(rng, cfg.p_anterior_crop):
        img, lab, m = anterior_crop(img, lab, m, rng, cfg)
    img = restyle_intensity(img, rng, cfg)
    if _chance(rng, cfg.p_perspective):  # the photograph is taken of the processed film
        img, lab, m = perspective_warp(img, lab, m, rng, cfg)
    return np.where(m, img, 0.0).astype(np.float32), np.where(m, lab, 0).astype(lab.dtype), m


def _box(valid: torch.Tensor) -> tuple[int, int, int, int] | None:
    rows = torch.nonzero(valid.any(dim=1)).flatten()
    cols = torch.nonzero(valid.any(dim=0)).flatten()
    if len(rows) < 4 or len(cols) < 4:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def style_batch(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    valid: torch.Tensor,
    rng: np.random.Generator,
    p: float,
    cfg: StyleConfig = StyleConfig(),
    spatial: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Restyle each film of a (B,1,h,w) batch with probability ``p``: the film box (bounding
    box of ``valid`` > 0.5) is cut out, restyled and pasted back; outside the film stays 0.

    ``images`` raw [0, 1] (before z-scoring); ``labels`` int (or None with ``spatial`` False);
    returns new (images, labels, valid) tensors.
    """
    if spatial and labels is None:
        raise ValueError("spatial style transforms need the labels")
    images = images.clone()
    labels = labels.clone() if labels is not None else None
    valid = valid.clone()
    for i in range(images.shape[0]):
        if not _chance(rng, p):
            continue
        v = valid[i, 0] > 0.5
        box = _box(v)
        if box is None:
            continue
        y0, y1, x0, x1 = box
        img = images[i, 0, y0:y1, x0:x1].numpy().astype(np.float32)
        m = v[y0:y1, x0:x1].numpy()
        if spatial:
            assert labels is not None
            lab = labels[i, 0, y0:y1, x0:x1].numpy()
            img, lab, m = restyle(img, lab, rng, cfg, mask=m)
            labels[i, 0, y0:y1, x0:x1] = torch.from_numpy(lab.astype(np.int64))
        else:
            img = np.where(m, restyle_intensity(img, rng, cfg), 0.0).astype(np.float32)
        images[i, 0, y0:y1, x0:x1] = torch.from_numpy(img).to(images.dtype)
        valid[i, 0, y0:y1, x0:x1] = torch.from_numpy(m.astype(np.float32)).to(valid.dtype)
    return images, labels, valid


__all__ = [
    "INTENSITY_TRANSFORMS",
    "StyleConfig",
    "anterior_crop",
    "perspective_warp",
    "restyle",
    "restyle_intensity",
    "style_batch",
]
