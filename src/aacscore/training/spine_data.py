"""Training data: case discovery, resizing to the network input, a cached preprocessed set and
GPU-free batch augmentation.

Dataset layouts (both read by :func:`discover_cases`):

* simulator output (``aacscore simulate``): ``case_000000.dcm`` and/or ``.png``,
  ``case_000000_labels.png``, ``case_000000.json`` (spacing, anterior side, corners);
* your own films: ``<stem>.<ext>`` (DICOM, PNG, JPEG, TIFF or 2-D NIfTI ``.nii.gz``/``.nii``)
  paired with a label map ``<stem>_labels.png`` or ``<stem>_labels.nii.gz``/``.nii`` (0
  background, L1..L5 = 1..5, T12 = 6, S1 = 7; image and label formats may be mixed) and,
  optionally, ``<stem>.json`` with ``"spacing_mm": [row, col]`` and
  ``"anterior_side": "left"|"right"``. Without a spacing in the JSON file the image header's
  spacing is used (DICOM, NIfTI: see :mod:`aacscore.training.nifti`) and without an anterior side
  it is assumed to be ``default_anterior_side`` (left, the canonical orientation). When a stem
  has several image files, DICOM is preferred, then PNG, TIFF, JPEG, NIfTI; a stem with two
  label maps is an error.

Every film is resized as a whole to fit the network input (:class:`Letterbox`), mirrored into the
canonical orientation (anterior left), and zero-padded. The preprocessed arrays are cached in a
``.npz`` file keyed by the plans and the files' sizes and times, so epochs never decode a DICOM.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image

from aacscore._files import atomic_savez
from aacscore.spine.plans import Plans
from aacscore.spine.preprocess import Letterbox, canonical_model_input
from aacscore.training.errors import MAX_LABEL, SpineDataError
from aacscore.training.nifti import nifti_image, nifti_labels
from aacscore.training.plans import CaseShape
from aacscore.training.style import StyleConfig, style_batch
from aacscore.vertebrae import ANTERIOR_SIDES, CLASS_NAMES, LABEL_VALUES, LEVEL_ORDER

logger = logging.getLogger(__name__)

NIFTI_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii")
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".dcm",
    ".dicom",
    ".png",
    ".tif",
    ".tiff",
    ".jpg",
    ".jpeg",
    *NIFTI_EXTENSIONS,
)
"""Image extensions in order of preference when a stem has several images."""
LABEL_SUFFIX = "_labels.png"
LABEL_SUFFIXES: tuple[str, ...] = (LABEL_SUFFIX, *(f"_labels{e}" for e in NIFTI_EXTENSIONS))
"""Label map names ``<stem><suffix>``; such files are never images themselves."""
_SKIP_SUFFIXES = (*LABEL_SUFFIXES, "_calc.png")
CACHE_VERSION = 1


# -------------------------------------------------------------------------------------------
# Discovery and loading
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingCase:
    """One training film: image, label map and optional annotations."""

    case_id: str
    image_path: Path
    labels_path: Path
    json_path: Path | None = None
    spacing_mm: tuple[float, float] | None = None
    anterior_side: str | None = None
    shape: tuple[int, int] | None = None
    corners: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpineDataError(path, f"cannot read annotations ({exc})") from exc
    if not isinstance(d, dict):
        raise SpineDataError(path, "annotations must be a JSON object")
    return d


def parse_annotations(path: Path) -> dict[str, Any]:
    """Spacing, anterior side, shape and corners from a simulator-style ``.json``."""
    d = _read_json(path)
    out: dict[str, Any] = {}
    sp = d.get("spacing_mm")
    if sp is not None:
        try:
            vals = [float(v) for v in (sp if isinstance(sp, list) else [sp, sp])]
        except (TypeError, ValueError) as exc:
            raise SpineDataError(path, f"invalid spacing_mm {sp!r}") from exc
        if len(vals) != 2 or not all(math.isfinite(v) and v > 0 for v in vals):
            raise SpineDataError(path, f"invalid spacing_mm {sp!r}")
        out["spacing_mm"] = (vals[0], vals[1])
    side = d.get("anterior_side")
    if side is not None:
        if side not in ANTERIOR_SIDES:
            raise SpineDataError(path, f"anterior_side must be 'left' or 'right', got {side!r}")
        out["anterior_side"] = side
    shape = d.get("shape")
    if isinstance(shape, list) and len(shape) >= 2:
        out["shape"] = (int(shape[0]), int(shape[1]))
    corners: dict[str, npt.NDArray[np.float64]] = {}
    for name, v in (d.get("vertebrae") or {}).items():
        c = v.get("corners") if isinstance(v, dict) else v
        try:
            arr = np.asarray(c, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise SpineDataError(path, f"invalid corners of {name}") from exc
        if arr.shape != (4, 2):
            raise SpineDataError(path, f"corners of {name} must be 4 [x, y] pairs")
        corners[str(name)] = arr
    out["corners"] = corners
    return out


def is_nifti(path: str | Path) -> bool:
    """True for ``.nii`` / ``.nii.gz`` file names (any case)."""
    return str(path).lower().endswith(NIFTI_EXTENSIONS)


def _label_stem(name: str) -> str | None:
    low = name.lower()
    for suffix in LABEL_SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return None


def discover_cases(data_dir: str | Path, default_anterior_side: str = "left") -> list[TrainingCase]:
    """All ``<stem>.<ext>`` + ``<stem>_labels.<png|nii.gz|nii>`` pairs in a folder (see the
    module docstring)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise SpineDataError(root, "training data folder not found")
    if default_anterior_side not in ANTERIOR_SIDES:
        raise ValueError(
            f"default_anterior_side must be left or right, got {default_anterior_side}"
        )
    label_maps: dict[str, Path] = {}
    for f in sorted(root.iterdir()):
        stem = _label_stem(f.name)
        if stem is None or not f.is_file():
            continue
        if stem in label_maps:
            raise SpineDataError(
                f, f"{stem} already has the label map {label_maps[stem].name}; keep one"
            )
        label_maps[stem] = f
    cases: list[TrainingCase] = []
    for stem, lab in label_maps.items():
        image: Path | None = None
        for ext in IMAGE_EXTENSIONS:
            for cand in (root / f"{stem}{ext}", root / f"{stem}{ext.upper()}"):
                if cand.is_file() and _label_stem(cand.name) is None:
                    image = cand
                    break
            if image is not None:
                break
        if image is None:
            raise SpineDataError(
                lab, f"no image for this label map (expected {stem}.dcm/.png/.tif/.jpg/.nii.gz)"
            )
        js = root / f"{stem}.json"
        ann = parse_annotations(js) if js.is_file() else {}
        cases.append(
            TrainingCase(
                case_id=stem,
                image_path=image,
                labels_path=lab,
                json_path=js if js.is_file() else None,
                spacing_mm=ann.get("spacing_mm"),
                anterior_side=ann.get("anterior_side", default_anterior_side),
                shape=ann.get("shape"),
                corners=ann.get("corners", {}),
            )
        )
    if not cases:
        raise SpineDataError(
            root,
            "no training cases: expected <stem>.<ext> images with "
            f"<stem>{LABEL_SUFFIX} or <stem>_labels.nii.gz label maps",
        )
    return cases


def load_image(
    path: Path, spacing_mm: tuple[float, float] | None = None
) -> tuple[npt.NDArray[np.float32], tuple[float, float] | None]:
    """Pixels (float32 [0, 1], bone bright) and spacing via :func:`aacscore.io.read_radiograph`
    (NIfTI: :func:`aacscore.training.nifti.nifti_image`).

    ``spacing_mm`` overrides the header spacing.
    """
    if is_nifti(path):
        pixels, header_spacing = nifti_image(path)
        return pixels, spacing_mm if spacing_mm is not None else header_spacing
    from aacscore.io import read_radiograph

    rad = read_radiograph(path, spacing_mm=spacing_mm, min_size=8)
    return np.asarray(rad.pixels, dtype=np.float32), rad.spacing_mm


def load_labels(path: Path, shape: tuple[int, int] | None = None) -> npt.NDArray[np.uint8]:
    """A uint8 label map (values 0..7, PNG or NIfTI); checks the shape against the image when
    given."""
    if is_nifti(path):
        arr = nifti_labels(path)
    else:
        try:
            with Image.open(path) as im:
                arr = np.asarray(im)
        except (OSError, ValueError) as exc:
            raise SpineDataError(path, f"cannot read label map ({exc})") from exc
    if arr.ndim != 2:
        raise SpineDataError(path, f"label map must be single-channel, got shape {arr.shape}")
    if arr.size and int(arr.max()) > MAX_LABEL:
        raise SpineDataError(
            path,
            f"label values must be 0..{MAX_LABEL} ({', '.join(CLASS_NAMES)}), found {arr.max()}",
        )
    if shape is not None and arr.shape != tuple(shape):
        raise SpineDataError(path, f"label map shape {arr.shape} differs from the image {shape}")
    return arr.astype(np.uint8)


# -------------------------------------------------------------------------------------------
# Letterboxing
# -------------------------------------------------------------------------------------------


# -------------------------------------------------------------------------------------------
# Preprocessed cache
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PreprocessedSet:
    """Canonical (anterior-left) model-size arrays of a dataset.

    ``corners`` is (N, 7, 4, 2) in canonical model coordinates, NaN where unknown, levels in
    :data:`LEVEL_ORDER` order; ``mm_per_px`` the mean model-pixel size (NaN when unknown).
    """

    case_ids: tuple[str, ...]
    images: npt.NDArray[np.float16]
    labels: npt.NDArray[np.uint8]
    boxes: npt.NDArray[np.int32]
    mirrored: npt.NDArray[np.bool_]
    mm_per_px: npt.NDArray[np.float64]
    corners: npt.NDArray[np.float32]
    shapes: npt.NDArray[np.int32]
    spacings: npt.NDArray[np.float64]
    intensity_samples: npt.NDArray[np.float32]
    key: str = ""

    def __len__(self) -> int:
        return len(self.case_ids)

    def valid(self, idx: npt.NDArray[np.int64] | Sequence[int]) -> npt.NDArray[np.bool_]:
        """Film-area masks of the given cases, (len(idx), h, w)."""
        h, w = self.images.shape[1:]
        out = np.zeros((len(idx), h, w), dtype=bool)
        for j, i in enumerate(idx):
            y0, y1, x0, x1 = self.boxes[i]
            out[j, y0:y1, x0:x1] = True
        return out

    def save(self, path: Path) -> Path:
        atomic_savez(
            path,
            case_ids=np.array(self.case_ids),
            images=self.images,
            labels=self.labels,
            boxes=self.boxes,
            mirrored=self.mirrored,
            mm_per_px=self.mm_per_px,
            corners=self.corners,
            shapes=self.shapes,
            spacings=self.spacings,
            intensity_samples=self.intensity_samples,
            key=np.array(self.key),
            version=np.array(CACHE_VERSION),
        )
        return path

    @classmethod
    def load(cls, path: Path) -> PreprocessedSet:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION:
                raise SpineDataError(path, "cache written by another version")
            return cls(
                case_ids=tuple(str(s) for s in z["case_ids"]),
                images=z["images"],
                labels=z["labels"],
                boxes=z["boxes"],
                mirrored=z["mirrored"],
                mm_per_px=z["mm_per_px"],
                corners=z["corners"],
                shapes=z["shapes"],
                spacings=z["spacings"],
                intensity_samples=z["intensity_samples"],
                key=str(z["key"]),
            )


def case_shapes(
    cases: Sequence[TrainingCase], progress: Callable[[int], None] | None = None
) -> list[CaseShape]:
    """Size and spacing of each case, from its annotations when they give both, else by decoding
    it (the header spacing)."""
    out: list[CaseShape] = []
    for c in cases:
        if c.shape is not None and c.json_path is not None and c.spacing_mm is not None:
            out.append(CaseShape(c.shape, c.spacing_mm))
        else:
            px, sp = load_image(c.image_path, c.spacing_mm)
            out.append(CaseShape((int(px.shape[0]), int(px.shape[1])), sp))
        if progress is not None:
            progress(1)
    return out


def cache_key(cases: Sequence[TrainingCase], plans: Plans) -> str:
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}|{plans.patch_size}".encode())
    for c in cases:
        for p in (c.image_path, c.labels_path, c.json_path):
            if p is None:
                continue
            st = p.stat()
            h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _preprocess_one(
    args: tuple[TrainingCase, tuple[int, int], int],
) -> dict[str, Any]:
    case, out_shape, seed = args
    pixels, spacing = load_image(case.image_path, case.spacing_mm)
    labels = load_labels(case.labels_path, (int(pixels.shape[0]), int(pixels.shape[1])))
    box = Letterbox.fit((int(pixels.shape[0]), int(pixels.shape[1])), out_shape)
    mirrored = case.anterior_side == "right"
    img = canonical_model_input(pixels, box, mirrored)
    lab_r = box.resize_labels(labels)
    if mirrored:
        lab_r = np.ascontiguousarray(lab_r[:, ::-1])
    lab = box.pad(lab_r, 0)
    corners = np.full((len(LEVEL_ORDER), 4, 2), np.nan, dtype=np.float32)
    for i, name in enumerate(LEVEL_ORDER):
        if name in case.corners:
            c = np.array(case.corners[name], dtype=np.float64)
            if mirrored:
                c[:, 0] = (pixels.shape[1] - 1) - c[:, 0]
            corners[i] = box.to_model(c)
    msp = box.model_spacing(spacing)
    fg = img[lab > 0]
    rng = np.random.default_rng(seed)
    sample = rng.choice(fg, size=min(2000, fg.size), replace=False) if fg.size else fg
    return {
        "image": img.astype(np.float16),
        "labels": lab,
        "box": box.box,  # the resized film is mirrored in place: same box
        "mirrored": mirrored,
        "mm_per_px": float(np.mean(msp)) if msp is not None else float("nan"),
        "corners": corners,
        "shape": pixels.shape,
        "spacing": spacing if spacing is not None else (float("nan"), float("nan")),
        "sample": sample.astype(np.float32),
    }


def _worker_init() -> None:
    torch.set_num_threads(1)


def preprocess_cases(
    cases: Sequence[TrainingCase],
    plans: Plans,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> PreprocessedSet:
    """Decode, resize, canonicalise and pad every case (in ``jobs`` processes)."""
    args = [(c, plans.patch_size, i) for i, c in enumerate(cases)]
    results: list[dict[str, Any]] = []
    if jobs > 1 and len(cases) > 1:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init) as ex:
            for r in ex.map(_preprocess_one, args, chunksize=4):
                results.append(r)
                if progress is not None:
                    progress(1)
    else:
        for a in args:
            results.append(_preprocess_one(a))
            if progress is not None:
                progress(1)
    for c, r in zip(cases, results, strict=True):
        if (r["labels"] > 0).sum() == 0:
            logger.warning("%s: label map is empty", c.labels_path)
    return PreprocessedSet(
        case_ids=tuple(c.case_id for c in cases),
        images=np.stack([r["image"] for r in results]),
        labels=np.stack([r["labels"] for r in results]),
        boxes=np.array([r["box"] for r in results], dtype=np.int32),
        mirrored=np.array([r["mirrored"] for r in results], dtype=bool),
        mm_per_px=np.array([r["mm_per_px"] for r in results], dtype=np.float64),
        corners=np.stack([r["corners"] for r in results]),
        shapes=np.array([r["shape"] for r in results], dtype=np.int32),
        spacings=np.array([r["spacing"] for r in results], dtype=np.float64),
        intensity_samples=np.concatenate([r["sample"] for r in results]),
        key=cache_key(cases, plans),
    )


def load_or_build_cache(
    cases: Sequence[TrainingCase],
    plans: Plans,
    path: Path,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> tuple[PreprocessedSet, bool]:
    """The cached set at ``path`` if its key matches, else a freshly built (and saved) one.

    Returns (set, built_now).
    """
    key = cache_key(cases, plans)
    if path.is_file():
        try:
            cached = PreprocessedSet.load(path)
            if cached.key == key:
                return cached, False
            logger.info("%s: cache is stale, rebuilding", path)
        except (SpineDataError, OSError, KeyError, ValueError) as exc:
            logger.warning("%s: unreadable cache (%s), rebuilding", path, exc)
    data = preprocess_cases(cases, plans, jobs=jobs, progress=progress)
    data.save(path)
    return data, True


def class_presence(labels: npt.NDArray[np.uint8]) -> dict[str, float]:
    """Fraction of cases in which each body label occurs."""
    n = max(len(labels), 1)
    return {
        name: float(sum(bool((lab == v).any()) for lab in labels) / n)
        for name, v in LABEL_VALUES.items()
    }


# -------------------------------------------------------------------------------------------
# Augmentation (batched, torch, CPU)
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """nnU-Net-like augmentation probabilities and ranges (per sample)."""

    p_rotate: float = 0.5
    max_rotation_deg: float = 15.0
    p_scale: float = 0.5
    scale_range: tuple[float, float] = (0.8, 1.25)
    max_translation: float = 0.08
    p_elastic: float = 0.2
    elastic_px: float = 4.0
    p_flip: float = 0.5
    p_cut: float = 0.25
    max_cut: float = 0.3
    p_brightness: float = 0.15
    p_contrast: float = 0.15
    p_gamma: float = 0.3
    gamma_range: tuple[float, float] = (0.7, 1.5)
    p_invert_gamma: float = 0.1
    p_noise: float = 0.15
    max_noise: float = 0.04
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.5, 1.0)
    p_lowres: float = 0.2
    lowres_range: tuple[float, float] = (0.5, 1.0)
    p_style: float = 0.7
    """Share of films restyled by :func:`aacscore.training.style.style_batch` (other renderers,
    vendors, phone photographs; applied to the canonical film before the spatial transforms)."""
    style: StyleConfig = field(default_factory=StyleConfig)


NO_AUGMENTATION = AugmentConfig(
    p_rotate=0.0,
    p_scale=0.0,
    max_translation=0.0,
    p_elastic=0.0,
    p_flip=0.0,
    p_cut=0.0,
    p_brightness=0.0,
    p_contrast=0.0,
    p_gamma=0.0,
    p_noise=0.0,
    p_blur=0.0,
    p_lowres=0.0,
    p_style=0.0,
)


def _rand(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor,
    gen: torch.Generator,
    cfg: AugmentConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment a canonical batch; returns (images, labels, valid, mirrored flags).

    ``images`` float (B,1,h,w) raw [0, 1]; ``labels`` int64 (B,1,h,w); ``valid`` float film mask.
    Mirroring flips the film left-right with its labels unchanged (a mirrored film shows the
    same levels), so the returned flag is also the orientation target (anterior right). The
    style randomisation (``p_style``) runs first, on the canonical (anterior-left) film; with
    ``p_style`` 0 it draws nothing from ``gen``.
    """
    b, _, h, w = images.shape
    # --- style: other renderers, vendors, phone photographs (canonical films) ------------
    if cfg.p_style > 0:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen)))
        images, styled_labels, valid = style_batch(
            images, labels, valid, rng, cfg.p_style, cfg.style
        )
        assert styled_labels is not None
        labels = styled_labels
    # --- spatial: one sampling grid per sample ---------------------------------------------
    ang = torch.where(
        _rand(b, gen) < cfg.p_rotate,
        _uniform(b, -cfg.max_rotation_deg, cfg.max_rotation_deg, gen),
        torch.zeros(b),
    ) * (math.pi / 180.0)
    lo, hi = math.log(cfg.scale_range[0]), math.log(cfg.scale_range[1])
    scale = torch.where(
        _rand(b, gen) < cfg.p_scale, torch.exp(_uniform(b, lo, hi, gen)), torch.ones(b)
    )
    flip = _rand(b, gen) < cfg.p_flip
    tx = _uniform(b, -cfg.max_translation, cfg.max_translation, gen) * 2
    ty = _uniform(b, -cfg.max_translation, cfg.max_translation, gen) * 2
    spatial = bool((ang != 0).any() or (scale != 1).any() or flip.any() or (tx != 0).any())
    elastic = _rand(b, gen) < cfg.p_elastic
    if spatial or bool(elastic.any()):
        cos, sin = torch.cos(ang), torch.sin(ang)
        # pixel-space rotation/scale mapped to normalised coordinates (non-square inputs)
        a11 = cos / scale
        a12 = -sin / scale * (h / w)
        a21 = sin / scale * (w / h)
        a22 = cos / scale
        fx = torch.where(flip, -torch.ones(b), torch.ones(b))
        theta = torch.stack(
            [torch.stack([a11 * fx, a12, tx], 1), torch.stack([a21 * fx, a22, ty], 1)], 1
        )
        grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
        if bool(elastic.any()):
            coarse = torch.randn(b, 2, max(2, h // 16), max(2, w // 16), generator=gen)
            disp = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
            disp = disp * cfg.elastic_px * elastic.view(b, 1, 1, 1).float()
            disp = torch.stack([disp[:, 0] * 2 / w, disp[:, 1] * 2 / h], dim=-1)
            grid = grid + disp
        images = F.grid_sample(
            images, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        valid = F.grid_sample(
            valid, grid, mode="nearest", padding_mode="zeros", align_corners=False
        )
        labels = (
            F.grid_sample(
                labels.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
            )
            .round()
            .long()
        )
    # --- field-of-view cuts --------------------------------------------------------------
    cut = _rand(b, gen) < cfg.p_cut
    for i in torch.nonzero(cut).flatten().tolist():
        side = float(_rand(1, gen))
        frac = float(_uniform(1, 0.05, cfg.max_cut, gen))
        m = torch.zeros(h, w, dtype=torch.bool)
        if side < 0.4:
            m[: int(frac * h)] = True
        elif side < 0.8:
            m[h - int(frac * h) :] = True
        elif side < 0.9:
            m[:, : int(frac * w)] = True
        else:
            m[:, w - int(frac * w) :] = True
        images[i, 0][m] = 0.0
        valid[i, 0][m] = 0.0
        labels[i, 0][m] = 0
    # --- intensity -------------------------------------------------------------------------
    images = images.clamp_min(0.0)
    for i in range(b):
        x = images[i : i + 1]
        if float(_rand(1, gen)) < cfg.p_gamma:
            g = float(_uniform(1, *cfg.gamma_range, gen))
            if float(_rand(1, gen)) < cfg.p_invert_gamma:
                x = 1.0 - (1.0 - x.clamp(0, 1)) ** g
            else:
                x = x.clamp(0, 1) ** g
        if float(_rand(1, gen)) < cfg.p_brightness:
            x = x * float(_uniform(1, 0.75, 1.25, gen))
        if float(_rand(1, gen)) < cfg.p_contrast:
            mu = x.mean()
            x = (x - mu) * float(_uniform(1, 0.75, 1.25, gen)) + mu
        if float(_rand(1, gen)) < cfg.p_lowres:
            f = float(_uniform(1, *cfg.lowres_range, gen))
            small = F.interpolate(x, scale_factor=f, mode="nearest")
            x = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
        if float(_rand(1, gen)) < cfg.p_blur:
            x = _gaussian_blur(x, float(_uniform(1, *cfg.blur_sigma, gen)))
        if float(_rand(1, gen)) < cfg.p_noise:
            x = x + torch.randn(x.shape, generator=gen) * float(_uniform(1, 0, cfg.max_noise, gen))
        images[i : i + 1] = x
    return images, labels, valid, flip


def batch_tensors(
    data: PreprocessedSet, idx: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images float, labels int64, valid float), each (B,1,h,w), for cached cases ``idx``."""
    ii = np.asarray(idx, dtype=np.int64)
    img = torch.from_numpy(data.images[ii].astype(np.float32))[:, None]
    lab = torch.from_numpy(data.labels[ii].astype(np.int64))[:, None]
    val = torch.from_numpy(data.valid(ii).astype(np.float32))[:, None]
    return img, lab, val
