"""Imaging chain: field of view, exposure, scatter, detector, vendor processing, overlays.

Modelled (ranges per case):

* Geometry: pixel spacing 0.10-0.35 mm (or fixed), field of view 150-300 mm wide and 250-430 mm
  tall (enlarged if needed to hold L1-L4 and the aorta in front of them), not centred on the spine
  (offsets of several cm), in-plane rotation +-10 deg (mostly small), mirroring (~30%, anterior
  to the right).
* Primary exposure ``N = n_roi * exp(-(L - L_roi))`` with 150-3000 quanta per 0.2 mm pixel behind
  the lumbar spine (dose and spacing vary noise), heel effect (+-10% gradient), Poisson noise
  (Gaussian approximation) plus electronic noise.
* Scatter: scatter-to-primary ratio 0.2-2.5 behind the spine (grows with habitus, lower with a
  grid) times a 25-70 mm Gaussian low-pass of a scatter source ``path x transmitted fluence``
  (capped, so direct exposure outside the body adds little).
* Collimation: blank borders on 0-4 sides (lead: heavily attenuated, or an electronic shutter set
  to black or white after processing), slightly rotated.
* Detector blur (Gaussian MTF, sigma 0.4-1.2 pixel); occasional anti-scatter grid line pattern.
* Processing: log, multi-scale contrast equalisation (dynamic range compression 0.6-0.95 of a
  15-50 mm band, mid-band gain 1-2.2, fine-band gain 1-2.5), percentile window (0.3-5% to
  99-99.95%) on the anatomy around the lumbar spine and aorta, tone curve (gamma 0.65-1.5 or
  sigmoid), 10-16-bit quantisation.
* Burnt-in overlays: lead L/R side marker, text (view name, date, synthetic labels) in corners
  away from the scored region.

Not modelled: heel-effect energy dependence, lag/ghosting, stitched images, JPEG artefacts,
vendor-specific non-linear LUTs beyond gamma/sigmoid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from aacscore.simulate.geometry import F32, F64, Frame, block_mean, lowpass, upsample_bilinear

SPACINGS_MM: tuple[float, ...] = (
    0.1,
    0.125,
    0.139,
    0.143,
    0.148,
    0.15,
    0.16,
    0.168,
    0.175,
    0.2,
    0.25,
    0.3,
    0.35,
)


@dataclass(frozen=True)
class Geometry:
    """Sampled acquisition geometry of one image."""

    frame: Frame
    mirror: bool
    fov_mm: tuple[float, float]


def sample_geometry(
    rng: np.random.Generator,
    ov: dict[str, Any],
    roi_mm: F64,
    spine_centre: F64,
    spacing_mm: float | None,
    p: dict[str, Any],
) -> Geometry:
    """Spacing, field of view, rotation, centring and mirroring (ROI always inside)."""
    sp = float(rng.choice(SPACINGS_MM))
    if spacing_mm is not None:
        sp = float(spacing_mm)
    if not (0.02 <= sp <= 2.0):
        raise ValueError(f"pixel spacing must lie in [0.02, 2] mm, got {sp}")
    rot = float(np.clip(rng.normal(0, 3.5), -10, 10))
    rot = float(ov.get("rotation_deg", rot))
    w_mm = float(rng.uniform(150, 300))
    h_mm = float(rng.uniform(250, 430))
    w_mm, h_mm = float(ov.get("fov_width_mm", w_mm)), float(ov.get("fov_height_mm", h_mm))
    mirror = bool(rng.random() < 0.3)
    mirror = bool(ov.get("mirror", mirror))
    ox, oy = float(rng.uniform(-30, 45)), float(rng.uniform(-50, 70))
    t = math.radians(rot)
    r = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    q = roi_mm @ r.T
    margin = 12.0
    lo = q.min(axis=0) - margin
    hi = q.max(axis=0) + margin
    w_mm = max(w_mm, float(hi[0] - lo[0]) + 2.0)
    h_mm = max(h_mm, float(hi[1] - lo[1]) + 2.0)
    target = r @ spine_centre + np.array([ox, oy])
    cx = float(np.clip(target[0], hi[0] - w_mm / 2, lo[0] + w_mm / 2))
    cy = float(np.clip(target[1], hi[1] - h_mm / 2, lo[1] + h_mm / 2))
    centre = r.T @ np.array([cx, cy])
    shape = (round(h_mm / sp), round(w_mm / sp))
    frame = Frame.make(shape, sp, (float(centre[0]), float(centre[1])), rot)
    p.update(
        spacing_mm=sp,
        rotation_deg=round(rot, 3),
        fov_mm=[round(w_mm, 1), round(h_mm, 1)],
        mirror=mirror,
        shape=list(shape),
    )
    return Geometry(frame, mirror, (w_mm, h_mm))


def sample_imaging(rng: np.random.Generator, ov: dict[str, Any], habitus: float) -> dict[str, Any]:
    """Exposure, detector, processing and output-format parameters."""
    grid = bool(rng.random() < 0.7)
    spr = float(
        np.clip((0.5 + 1.8 * habitus) * (0.45 if grid else 1.0) * rng.uniform(0.7, 1.3), 0.2, 2.5)
    )
    p: dict[str, Any] = {
        "n_roi_per_0p2mm": float(math.exp(rng.uniform(math.log(150), math.log(3000)))),
        "electronic_noise": float(rng.uniform(0.5, 4.0)),
        "heel": float(rng.uniform(-0.1, 0.1)),
        "heel_axis": int(rng.integers(0, 2)),
        "grid": grid,
        "grid_lines": bool(rng.random() < 0.12),
        "grid_period_px": float(rng.uniform(2.2, 6.0)),
        "grid_amp": float(rng.uniform(0.004, 0.02)),
        "spr": spr,
        "scatter_sigma_mm": float(rng.uniform(25, 70)),
        "mtf_sigma_px": float(rng.uniform(0.4, 1.2)),
        "mu_scale": float(rng.uniform(0.85, 1.15)),
        "drc": float(rng.uniform(0.6, 0.95)),
        "drc_sigma_mm": float(rng.uniform(15, 50)),
        "mid_gain": float(rng.uniform(1.0, 2.2)),
        "mid_sigma_mm": float(rng.uniform(1.5, 5.0)),
        "fine_gain": float(rng.uniform(1.0, 2.5)),
        "fine_sigma_mm": float(rng.uniform(0.4, 1.2)),
        "lo_pct": float(rng.uniform(0.3, 5.0)),
        "hi_pct": float(rng.uniform(99.0, 99.95)),
        "tone": str(rng.choice(["gamma", "sigmoid"])),
        "gamma": float(rng.uniform(0.65, 1.5)),
        "sigmoid_gain": float(rng.uniform(3.0, 8.0)),
        "sigmoid_centre": float(rng.uniform(0.4, 0.6)),
        "bits_stored": int(rng.choice([10, 12, 12, 12, 14, 15, 16])),
        "photometric": str(rng.choice(["MONOCHROME2", "MONOCHROME1"], p=[0.65, 0.35])),
        "modality": str(rng.choice(["CR", "DX"], p=[0.4, 0.6])),
        "collimation": [bool(rng.random() < 0.35) for _ in range(4)],
        "collimation_frac": [float(rng.uniform(0.2, 1.0)) for _ in range(4)],
        "collimation_tilt_deg": float(rng.normal(0, 1.0)),
        "shutter": str(rng.choice(["lead", "black", "white"], p=[0.6, 0.25, 0.15])),
        "marker": bool(rng.random() < 0.75),
        "marker_side": str(rng.choice(["L", "R"])),
        "text": bool(rng.random() < 0.6),
    }
    for key in ("photometric", "modality", "bits_stored", "grid_lines"):
        if key in ov:
            p[key] = ov[key]
    if p["photometric"] not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(
            f"photometric must be MONOCHROME1 or MONOCHROME2, got {p['photometric']!r}"
        )
    if p["modality"] not in ("CR", "DX"):
        raise ValueError(f"modality must be CR or DX, got {p['modality']!r}")
    if not (8 <= int(p["bits_stored"]) <= 16):
        raise ValueError(f"bits_stored must lie in 8..16, got {p['bits_stored']}")
    return p


def collimation_mask(
    shape: tuple[int, int],
    roi_box: tuple[float, float, float, float],
    ip: dict[str, Any],
    sp: float,
) -> F32:
    """Soft mask (1 = exposed) of the collimated field; never cuts the ROI box (x0, y0, x1, y1)."""
    h, w = shape
    x0, y0, x1, y1 = roi_box
    inset = []
    avail = [x0, y0, w - 1 - x1, h - 1 - y1]  # left, top, right, bottom
    for k in range(4):
        inset.append(avail[k] * ip["collimation_frac"][k] * 0.9 if ip["collimation"][k] else -5.0)
    f = max(1, round(1.0 / sp))
    ys = (np.arange(-(-h // f)) * f + (f - 1) / 2.0)[:, None]
    xs = (np.arange(-(-w // f)) * f + (f - 1) / 2.0)[None, :]
    t = math.radians(ip["collimation_tilt_deg"])
    xr = (xs - w / 2) * math.cos(t) + (ys - h / 2) * math.sin(t) + w / 2
    yr = -(xs - w / 2) * math.sin(t) + (ys - h / 2) * math.cos(t) + h / 2
    pen = 1.5 / sp
    m = (
        np.clip((xr - inset[0]) / pen, 0, 1)
        * np.clip((yr - inset[1]) / pen, 0, 1)
        * np.clip((w - 1 - inset[2] - xr) / pen, 0, 1)
        * np.clip((h - 1 - inset[3] - yr) / pen, 0, 1)
    ).astype(np.float32)
    return upsample_bilinear(m, f, shape)


def expose(
    l_fine: F32,
    l_med: F32,
    med_factor: int,
    frame: Frame,
    ip: dict[str, Any],
    roi_box: tuple[float, float, float, float],
    rng: np.random.Generator,
) -> tuple[F32, F32]:
    """Detected log signal (line-integral estimate) and the collimation mask."""
    shape = frame.shape
    sp = frame.spacing
    ls = np.float32(ip["mu_scale"])
    lint = upsample_bilinear(l_med, med_factor, shape)
    lint += l_fine
    lint *= ls
    # line integrals are non-negative (gas only removes tissue); clamping also keeps the
    # scatter source and the Poisson variance below non-negative
    np.maximum(lint, np.float32(0.0), out=lint)
    x0, y0, x1, y1 = (int(v) for v in roi_box)
    l_roi = float(np.median(lint[y0:y1:4, x0:x1:4]))
    n_roi = ip["n_roi_per_0p2mm"] * (sp / 0.2) ** 2
    coll = collimation_mask(shape, roi_box, ip, sp)
    # primary (expected counts), heel effect and collimation
    heel_ax = np.linspace(-1, 1, shape[ip["heel_axis"]], dtype=np.float32)
    heel = 1.0 + np.float32(ip["heel"]) * heel_ax
    heel2 = heel[:, None] if ip["heel_axis"] == 0 else heel[None, :]
    prim = np.exp(np.clip(np.float32(l_roi) - lint, -30, 12)) * np.float32(n_roi)
    prim *= heel2
    cm = coll if ip["shutter"] == "lead" else np.ones_like(coll)
    att = np.float32(0.02) + np.float32(0.98) * cm
    prim *= att
    # scatter is generated in the patient: source ~ path x transmitted fluence, capped so that
    # thin regions and direct exposure do not flood the body (grid / air gap)
    src = np.minimum(lint / np.float32(max(l_roi, 1e-3)) * prim, np.float32(3.0 * n_roi))
    sc = lowpass(src, ip["scatter_sigma_mm"] / sp)
    total = prim + np.float32(ip["spr"]) * sc * (np.float32(0.3) + np.float32(0.7) * att)
    if ip["grid_lines"]:
        ax = np.arange(shape[1], dtype=np.float32)
        total *= (
            1.0
            + np.float32(ip["grid_amp"])
            * np.sin(np.float32(2 * math.pi / ip["grid_period_px"]) * ax)[None, :]
        )
    np.maximum(total, np.float32(0.0), out=total)
    noise = rng.standard_normal(shape, dtype=np.float32)
    noisy = total + noise * np.sqrt(total + np.float32(ip["electronic_noise"] ** 2))
    noisy = ndimage.gaussian_filter(noisy, ip["mtf_sigma_px"], mode="nearest", truncate=3.0)
    sig = np.float32(l_roi) - np.log(np.maximum(noisy, np.float32(0.5)) / np.float32(n_roi))
    return sig.astype(np.float32), coll


def process(
    sig: F32,
    coll: F32,
    ip: dict[str, Any],
    sp: float,
    roi_box: tuple[float, float, float, float],
) -> F32:
    """Vendor-style processing to a displayed image in [0, 1], bone bright."""
    fine = lowpass(sig, ip["fine_sigma_mm"] / sp)
    mid = lowpass(fine, ip["mid_sigma_mm"] / sp)
    big = lowpass(mid, ip["drc_sigma_mm"] / sp)
    enh = (
        big * np.float32(1.0 - ip["drc"])
        + (mid - big) * np.float32(ip["mid_gain"])
        + (fine - mid) * np.float32(ip["mid_gain"] * 0.5 + 0.5)
        + (sig - fine) * np.float32(ip["fine_gain"])
    )
    stride = max(1, round(1.0 / sp))
    h, w = sig.shape
    x0, y0, x1, y1 = roi_box
    mx, my = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
    ys = slice(max(int(y0 - my), 0), min(int(y1 + my) + 1, h), stride)
    xs = slice(max(int(x0 - mx), 0), min(int(x1 + mx) + 1, w), stride)
    samp = enh[ys, xs]
    body = (sig[ys, xs] > np.float32(1.5)) & (coll[ys, xs] > 0.9)
    vals = samp[body] if body.sum() > 100 else samp.ravel()
    lo, hi = np.percentile(vals, [ip["lo_pct"], ip["hi_pct"]])
    v = np.clip((enh - np.float32(lo)) / np.float32(max(hi - lo, 1e-6)), 0, 1)
    if ip["tone"] == "gamma":
        out = v ** np.float32(ip["gamma"])
    else:
        g, c = ip["sigmoid_gain"], ip["sigmoid_centre"]
        s0 = 1 / (1 + math.exp(g * c))
        s1 = 1 / (1 + math.exp(-g * (1 - c)))
        out = (
            1 / (1 + np.exp(-np.float32(g) * (v - np.float32(c)))) - np.float32(s0)
        ) / np.float32(s1 - s0)
    if ip["shutter"] in ("black", "white"):
        fill = np.float32(0.0 if ip["shutter"] == "black" else 1.0)
        out = out * coll + fill * (1 - coll)
    return np.clip(out, 0, 1).astype(np.float32)


_TEXTS = (
    "LAT",
    "L-SPINE LAT",
    "LSPINE",
    "STANDING",
    "SIM",
    "LUMBAR LAT",
    "ERECT",
    "FLEX",
    "NEUTRAL",
)


def overlays(
    img: F32,
    ip: dict[str, Any],
    roi_box: tuple[float, float, float, float],
    rng: np.random.Generator,
    anterior_right: bool,
) -> list[str]:
    """Burn side marker and text into ``img`` (in place), away from the ROI box."""
    h, w = img.shape
    x0, y0, x1, y1 = roi_box
    drawn: list[str] = []
    size = max(12, int(min(h, w) * rng.uniform(0.025, 0.05)))
    corners = [(0.04, 0.03), (0.7, 0.03), (0.04, 0.88), (0.7, 0.88)]
    order = rng.permutation(len(corners))
    free = []
    for k in order:
        fx, fy = corners[int(k)]
        bx0, by0 = int(fx * w), int(fy * h)
        bx1, by1 = bx0 + int(0.26 * w), by0 + int(size * 1.5)
        if bx1 < x0 or bx0 > x1 or by1 < y0 or by0 > y1:
            free.append((bx0, by0))
    texts: list[tuple[str, int]] = []
    if ip["marker"]:
        texts.append((ip["marker_side"], int(size * 1.6)))
    if ip["text"]:
        texts.append((str(rng.choice(_TEXTS)), size))
        if rng.random() < 0.5:
            texts.append(
                (
                    f"20{rng.integers(10, 25)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}",
                    int(size * 0.7),
                )
            )
    value = float(rng.uniform(0.85, 1.0))
    for (text, sz), (bx, by) in zip(texts, free, strict=False):
        font = ImageFont.load_default(size=sz)
        canvas = Image.new("L", (int(sz * (len(text) + 1)), int(sz * 1.6)), 0)
        ImageDraw.Draw(canvas).text((2, 2), text, fill=255, font=font)
        arr = np.asarray(canvas, dtype=np.float32) / 255.0
        hh, ww = min(arr.shape[0], h - by), min(arr.shape[1], w - bx)
        if hh <= 0 or ww <= 0:
            continue
        reg = img[by : by + hh, bx : bx + ww]
        a = arr[:hh, :ww]
        reg[...] = reg * (1 - a) + np.float32(value) * a
        drawn.append(text)
    del anterior_right
    return drawn


def quantise(img: F32, bits: int, photometric: str) -> tuple[npt.NDArray[np.uint16], F32]:
    """Stored pixel values and the displayed image they decode to (bone bright, [0, 1])."""
    maxv = (1 << bits) - 1
    q = np.rint(img * np.float32(maxv)).astype(np.uint16)
    shown = (q.astype(np.float32) / np.float32(maxv)).astype(np.float32)
    stored = (np.uint16(maxv) - q) if photometric == "MONOCHROME1" else q
    return stored.astype(np.uint16), shown


__all__ = [
    "SPACINGS_MM",
    "Geometry",
    "block_mean",
    "expose",
    "overlays",
    "process",
    "quantise",
    "sample_geometry",
    "sample_imaging",
]
