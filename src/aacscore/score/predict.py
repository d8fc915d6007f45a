"""Inference: :class:`ScoreModel` (load shipped or trained weights) -> :class:`ScorePrediction`.

Uncertainty: test-time augmentation (:data:`aacscore.score.augment.TTA_TRANSFORMS`: small row
and column shifts, a column zoom and gamma changes of the band) gives a spread of totals; its
standard deviation, floored and scaled by a factor calibrated on the validation set at the end
of training (95 % of validation errors inside mean +- 1.96 sd), is ``aac24_sd``. A reading is
``low_confidence`` when that 95 % interval reaches into another severity group.

Calibration: the network's raw outputs are mapped through a monotone (isotonic) calibration
fitted on held-out validation films at the end of training (:func:`fit_calibration`; per
segment grade for the segment heads, on the total for the total head). It removes the
systematic part of the error, e.g. the small positive grades a sigmoid output gives every
uncalcified segment, which add up over 8 segments. It is stored in ``config.json`` as knots of
a piecewise-linear map; models without it use the identity.

AAC-8 (segment heads only): the predicted calcified fraction of each segment is first moved
into the range of its predicted grade (0 for grade 0, (1/3, 2/3] for grade 2, ...); the
calcified length of a wall is then ``fraction x level length`` summed over L1-L4, each term
divided by that level's vertebral height (mean of anterior and posterior body heights, the
simulator's definition), and scored with :func:`aacscore.kauppila.aac8_wall_score`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aacscore.aorta.roi import Band, BandGeometry
from aacscore.backend import (
    Backend,
    Net,
    as_net,
    graph_path,
    load_onnx,
    require_torch,
    resolve_backend,
)
from aacscore.kauppila import (
    LEVELS,
    MAX_AAC24,
    SEGMENTS,
    SeverityGroups,
    aac8_wall_score,
    parse_groups,
)
from aacscore.score.augment import TTA_TRANSFORMS, TTATransform, normalize_bands, tta_bands
from aacscore.score.config import NetworkConfig, output_names

if TYPE_CHECKING:
    from aacscore.score.network import ScoreNet

logger = logging.getLogger(__name__)

MODEL_FORMAT = "aacscore-score-model"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "MODEL_CARD.md"
PACKAGE_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "score"
"""Where the shipped score model lives (``aacscore/models/score``)."""


class ModelNotFoundError(FileNotFoundError):
    """No score model weights at the given (or shipped) location."""


@dataclass(frozen=True)
class ScorePrediction:
    """Predicted Kauppila reading of one band.

    ``grades``: 8 continuous segment grades in [0, 3] (None for the total-only head), in
    :data:`aacscore.kauppila.SEGMENTS` order; ``aac24``: predicted total in [0, 24] (mean over
    test-time augmentation); ``aac24_sd``: its calibrated standard deviation; ``aac8``: AAC-8
    from predicted calcified fractions (None when the model has no fraction outputs or the
    band geometry is unknown); ``group``: severity group label of ``aac24`` (rounded half up);
    ``low_confidence``: the 95 % interval ``aac24 +- 1.96 sd`` spans more than one group.
    """

    grades: tuple[float, ...] | None
    aac24: float
    aac24_sd: float
    aac8: float | None
    group: str
    low_confidence: bool
    groups_name: str = "lewis"
    fractions: tuple[float, ...] | None = None
    features: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)
    """Penultimate features of the score network on the band (untransformed), read-only; for
    the familiarity score (:mod:`aacscore.gate.quality`). Not part of the reading."""

    @property
    def interval95(self) -> tuple[float, float]:
        """``aac24 +- 1.96 sd`` clipped to [0, 24]."""
        return confidence_interval(self.aac24, self.aac24_sd)

    def as_dict(self) -> dict[str, Any]:
        """Flat mapping: segment grades, aac24, aac24_sd, interval, aac8, group, flag."""
        out: dict[str, Any] = {}
        for j, s in enumerate(SEGMENTS):
            out[s] = None if self.grades is None else self.grades[j]
        lo, hi = self.interval95
        out.update(
            aac24=self.aac24,
            aac24_sd=self.aac24_sd,
            aac24_low=lo,
            aac24_high=hi,
            aac8=self.aac8,
            group=self.group,
            low_confidence=self.low_confidence,
        )
        return out


def confidence_interval(mean: float, sd: float, z: float = 1.96) -> tuple[float, float]:
    """``mean +- z sd`` clipped to the AAC-24 range."""
    return (max(0.0, mean - z * sd), min(float(MAX_AAC24), mean + z * sd))


def is_low_confidence(mean: float, sd: float, groups: SeverityGroups, z: float = 1.96) -> bool:
    """Whether ``mean +- z sd`` crosses a group cut-off (groups compare totals rounded half up,
    so the cut-off between ``0-1`` and ``2-5`` sits at 1.5)."""
    lo, hi = confidence_interval(mean, sd, z)
    return groups.index(lo) != groups.index(hi)


def aac8_from_fractions(
    fractions: npt.ArrayLike,
    level_length_mm: Sequence[float],
    vertebral_height_mm: Sequence[float],
) -> int:
    """AAC-8 from 8 segment fractions (SEGMENTS order) and the band's level geometry.

    Per wall: ``sum over L1-L4 of fraction x level length / vertebral height`` (height = mean
    of anterior and posterior body heights, as in :mod:`aacscore.simulate`), scored with
    :func:`aacscore.kauppila.aac8_wall_score`.
    """
    f = np.clip(np.asarray(fractions, dtype=np.float64).reshape(len(LEVELS), 2), 0.0, 1.0)
    lengths = np.asarray(level_length_mm, dtype=np.float64)
    heights = np.asarray(vertebral_height_mm, dtype=np.float64)
    if heights.shape != (len(LEVELS),) or np.any(heights <= 0):
        raise ValueError("need 4 positive vertebral heights (L1-L4)")
    total = 0
    for w in range(2):  # anterior, posterior
        total += aac8_wall_score(float(np.sum(f[:, w] * lengths / heights)))
    return total


def consistent_fractions(
    fractions: npt.ArrayLike, grades: Sequence[float]
) -> npt.NDArray[np.float64]:
    """Predicted fractions moved into the range of each segment's grade (rounded half up):
    0 for grade 0, (0, 1/3] for 1, (1/3, 2/3] for 2, (2/3, 1] for 3, so that AAC-8 agrees
    with the AAC-24 reading (a segment read as uncalcified adds no length)."""
    f = np.asarray(fractions, dtype=np.float64).copy()
    lo = np.array([0.0, 0.02, 1 / 3 + 1e-6, 2 / 3 + 1e-6])
    hi = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    g = np.clip(np.floor(np.asarray(grades, dtype=np.float64) + 0.5), 0, 3).astype(int)
    return np.clip(f, lo[g], hi[g])


@dataclass(frozen=True)
class Calibration:
    """Monotone piecewise-linear map of raw outputs: ``target`` is ``grades`` (each segment
    grade, then total = sum) or ``total``; ``x``/``y`` are the knots (``np.interp``)."""

    target: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    zero_below: float = 0.0
    """Segment grades (mean over test-time augmentation, calibrated) below this read exactly 0:
    an uncalcified segment is reported as 0, not as a small noisy value (chosen on validation
    films; 0 = off)."""

    def __post_init__(self) -> None:
        if self.target not in ("grades", "total"):
            raise ValueError(f"calibration target must be grades or total, got {self.target!r}")
        if len(self.x) != len(self.y) or len(self.x) < 2:
            raise ValueError("calibration needs matching x and y knots (at least 2)")
        if np.any(np.diff(self.x) <= 0) or np.any(np.diff(self.y) < 0):
            raise ValueError("calibration knots must be increasing in x and non-decreasing in y")

    def __call__(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.interp(np.asarray(values, dtype=np.float64), self.x, self.y)

    def zeroed(self, grades: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``grades`` with values below :attr:`zero_below` set to 0."""
        g = np.asarray(grades, dtype=np.float64)
        return np.where(g < self.zero_below, 0.0, g)

    def apply(self, out: NetworkOutputs) -> NetworkOutputs:
        """Calibrated copy of raw network outputs (per test-time transform)."""
        if self.target == "grades":
            if out.grades is None:
                raise ValueError("grade calibration on a model without segment grades")
            grades = self(out.grades)
            return NetworkOutputs(
                total=grades.sum(axis=-1),
                grades=grades,
                fractions=out.fractions,
                features=out.features,
            )
        return NetworkOutputs(
            total=self(out.total),
            grades=out.grades,
            fractions=out.fractions,
            features=out.features,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "method": "isotonic regression on validation films, sampled on a grid",
            "x": list(self.x),
            "y": list(self.y),
            "zero_below": self.zero_below,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        return cls(
            str(d["target"]),
            tuple(map(float, d["x"])),
            tuple(map(float, d["y"])),
            float(d.get("zero_below", 0.0)),
        )


def fit_calibration(
    predicted: npt.ArrayLike, truth: npt.ArrayLike, target: str, step: float | None = None
) -> Calibration:
    """Isotonic (least-squares, non-decreasing) map from raw predictions to the truth.

    ``predicted`` and ``truth`` are matching arrays (grades in [0, 3] or totals in [0, 24]);
    the fit is sampled on a regular grid (``step``: 0.05 grade or 0.25 total units) so that the
    stored map stays small.
    """
    from scipy.optimize import isotonic_regression

    top = 3.0 if target == "grades" else float(MAX_AAC24)
    step = step or (0.05 if target == "grades" else 0.25)
    x = np.asarray(predicted, dtype=np.float64).ravel()
    y = np.asarray(truth, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 10:
        raise ValueError(f"need at least 10 calibration pairs, got {len(x)}")
    order = np.argsort(x, kind="stable")
    xs, fitted = x[order], isotonic_regression(y[order]).x
    grid = np.round(np.arange(0.0, top + step / 2, step), 6)
    # mean fitted value per distinct x, then linear interpolation onto the grid
    ux, first = np.unique(xs, return_index=True)
    uy = np.maximum.accumulate(np.add.reduceat(fitted, first) / np.diff(np.append(first, len(xs))))
    gy = np.clip(np.interp(grid, ux, uy), 0.0, top)
    gy = np.maximum.accumulate(gy)
    return Calibration(target, tuple(float(v) for v in grid), tuple(float(v) for v in gy))


@dataclass(frozen=True)
class ScoreModelConfig:
    """Inference settings stored in ``config.json``."""

    network: NetworkConfig
    band: BandGeometry
    sd_scale: float = 1.0
    sd_floor: float = 0.15
    sd_scale_bins: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """(edges, scales): the scale by predicted total (``np.digitize`` bins; len(edges) + 1
    scales), so that uncalcified films are not given the spread of heavily calcified ones."""
    residual_sd: float = 1.0
    tta: tuple[TTATransform, ...] = TTA_TRANSFORMS
    dtype: str = "float32"
    weights: str = WEIGHTS_NAME
    sha256: str | None = None
    calibration: Calibration | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def scale_for(self, total: float) -> float:
        """The sd scale for a predicted total."""
        if self.sd_scale_bins is None:
            return self.sd_scale
        edges, scales = self.sd_scale_bins
        return float(scales[int(np.digitize(total, edges))])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready config (``extra`` holds training details and metrics)."""
        return {
            "format": MODEL_FORMAT,
            "version": 1,
            "head": self.network.head,
            "network": self.network.as_dict(),
            "band": self.band.as_dict(),
            "normalization": "per band: (x - median) / max(p95 - p5, 0.01)",
            "uncertainty": {
                "tta": [t.__dict__ for t in self.tta],
                "sd_scale": self.sd_scale,
                "sd_floor": self.sd_floor,
                "residual_sd": self.residual_sd,
                "scale_bins": (
                    {"edges": list(self.sd_scale_bins[0]), "scales": list(self.sd_scale_bins[1])}
                    if self.sd_scale_bins is not None
                    else None
                ),
                "rule": "sd = scale * sqrt(tta_sd^2 + sd_floor^2), scale from scale_bins by the "
                "predicted total (else sd_scale); without TTA residual_sd",
            },
            "aac8": "from predicted fractions" if self.network.has_fractions else None,
            "calibration": self.calibration.as_dict() if self.calibration is not None else None,
            "weights": self.weights,
            "dtype": self.dtype,
            "sha256": self.sha256,
            **dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScoreModelConfig:
        """Parse ``config.json`` content."""
        if d.get("format") != MODEL_FORMAT:
            raise ValueError(f"not an aacscore score model config (format={d.get('format')!r})")
        unc = d.get("uncertainty", {})
        known = {"format", "version", "head", "network", "band", "normalization", "uncertainty"}
        known |= {"aac8", "weights", "dtype", "sha256", "calibration"}
        cal = d.get("calibration")
        return cls(
            network=NetworkConfig.from_dict(d["network"]),
            band=BandGeometry.from_dict(d["band"]),
            sd_scale=float(unc.get("sd_scale", 1.0)),
            sd_scale_bins=(
                (
                    tuple(map(float, unc["scale_bins"]["edges"])),
                    tuple(map(float, unc["scale_bins"]["scales"])),
                )
                if unc.get("scale_bins")
                else None
            ),
            sd_floor=float(unc.get("sd_floor", 0.15)),
            residual_sd=float(unc.get("residual_sd", 1.0)),
            tta=tuple(TTATransform(**t) for t in unc.get("tta", [])) or TTA_TRANSFORMS,
            dtype=str(d.get("dtype", "float32")),
            weights=str(d.get("weights", WEIGHTS_NAME)),
            sha256=d.get("sha256"),
            calibration=Calibration.from_dict(cal) if cal else None,
            extra={k: v for k, v in d.items() if k not in known},
        )


@dataclass(frozen=True, eq=False)
class NetworkOutputs:
    """Raw outputs per band and transform: ``total`` (N, T), ``grades``/``fractions`` (N, T, 8)."""

    total: npt.NDArray[np.float64]
    grades: npt.NDArray[np.float64] | None
    fractions: npt.NDArray[np.float64] | None
    features: npt.NDArray[np.float32] | None = None
    """(N, F) penultimate features of the first transform (the identity), or None."""


def score_net_runner(net: ScoreNet | Net) -> Net:
    """``net`` as a :class:`~aacscore.backend.Net` with the score graph's outputs (a torch
    :class:`~aacscore.score.network.ScoreNet` is wrapped in its
    :class:`~aacscore.score.network.ScoreGraph`)."""
    if isinstance(net, Net):
        return net
    from aacscore.score.network import ScoreGraph

    graph = ScoreGraph(net)
    return as_net(graph, graph.names)


def run_network(
    net: ScoreNet | Net,
    bands: npt.ArrayLike,
    geometry: BandGeometry,
    transforms: tuple[TTATransform, ...] | None = TTA_TRANSFORMS,
    batch_size: int = 32,
) -> NetworkOutputs:
    """Evaluate raw bands (N, H, W) with each test-time transform (None: the identity only).

    ``net`` is a :class:`~aacscore.backend.Net` (ONNX Runtime or torch) or a torch
    ``ScoreNet`` (on its device; its train/eval mode is kept). The transforms and the
    normalisation are numpy on both. The penultimate features of each band's first transform
    come along (``features``) at no extra cost: they are the backbone output the heads read."""
    runner = score_net_runner(net)
    arr = np.asarray(bands)
    if arr.ndim == 2:
        arr = arr[None]
    n = arr.shape[0]
    t = len(transforms) if transforms else 1
    totals = np.zeros((n, t))
    grades: npt.NDArray[np.float64] | None = None
    fracs: npt.NDArray[np.float64] | None = None
    feats: npt.NDArray[np.float32] | None = None
    for start in range(0, n, batch_size):
        x = np.asarray(arr[start : start + batch_size], np.float32)[:, None]
        b = x.shape[0]
        if transforms:
            x = tta_bands(x, geometry, transforms)
        out = runner(normalize_bands(x))
        sl = slice(start, start + b)
        f0 = out["features"].reshape(b, t, -1)[:, 0]
        if feats is None:
            feats = np.zeros((n, f0.shape[1]), dtype=np.float32)
        feats[sl] = f0
        totals[sl] = out["total"].astype(np.float64).reshape(b, t)
        if "grades" in out:
            if grades is None:
                grades = np.zeros((n, t, len(SEGMENTS)))
            grades[sl] = out["grades"].astype(np.float64).reshape(b, t, -1)
        if "fractions" in out:
            if fracs is None:
                fracs = np.zeros((n, t, len(SEGMENTS)))
            fracs[sl] = out["fractions"].astype(np.float64).reshape(b, t, -1)
    return NetworkOutputs(total=totals, grades=grades, fractions=fracs, features=feats)


def calibrated_sd(tta_sd: npt.ArrayLike, scale: float, floor: float) -> npt.NDArray[np.float64]:
    """``scale * sqrt(tta_sd^2 + floor^2)``."""
    s = np.asarray(tta_sd, dtype=np.float64)
    return scale * np.sqrt(s**2 + floor**2)


class ScoreModel:
    """The trained score network with its band geometry and uncertainty calibration.

    ``net`` is a :class:`~aacscore.backend.Net` (the exported graph on ONNX Runtime, or torch)
    or a torch ``ScoreNet`` (run on the torch backend)."""

    def __init__(
        self,
        net: ScoreNet | Net,
        config: ScoreModelConfig,
        path: Path | None = None,
        weights_path: Path | None = None,
    ) -> None:
        self.config = config
        self.path = path
        self.weights_path = weights_path
        self._torch_net: ScoreNet | None = None
        if isinstance(net, Net):
            self.runner = net
        else:
            self._torch_net = net.eval()
            self.runner = score_net_runner(net)

    @property
    def backend(self) -> Backend:
        """The backend that runs the network (``onnx`` or ``torch``)."""
        return self.runner.backend

    @property
    def net(self) -> ScoreNet:
        """The torch ``ScoreNet`` (built from the weights on first use when the model runs on
        ONNX Runtime; needs PyTorch)."""
        if self._torch_net is None:
            weights = self.weights_path or (
                None if self.path is None else self.path / self.config.weights
            )
            if weights is None:
                raise ValueError("a score model built from a graph alone has no torch network")
            require_torch("the score model's torch network")
            self._torch_net = _load_score_net(self.config.network, weights).eval()
        return self._torch_net

    def weight_files(self) -> list[Path]:
        """Files that determine the predictions: the safetensors weights and ``config.json``
        (and the ONNX graph exported from the weights, on the onnx backend; empty for a model
        built in memory)."""
        if self.path is None:
            return []
        weights = self.weights_path or self.path / self.config.weights
        files = [weights, self.path / CONFIG_NAME]
        if self.backend == Backend.ONNX:
            files.append(graph_path(weights))
        return files

    @property
    def head(self) -> str:
        """``segments``, ``ordinal`` or ``total``."""
        return self.config.network.head

    @property
    def band_geometry(self) -> BandGeometry:
        """Geometry the bands given to :meth:`predict` must have (pass it to ``extract_band``)."""
        return self.config.band

    @classmethod
    def load(
        cls, path: str | Path | None = None, backend: str | Backend | None = None
    ) -> ScoreModel:
        """Load a model folder (``config.json`` + weights) or a weights file next to its config,
        run by ``backend`` (``onnx``: the graph exported from the weights; ``torch``;
        ``auto``/None: onnx when the graph fits the weights).

        Without ``path`` the shipped model in :data:`PACKAGE_MODEL_DIR` is loaded.

        Raises:
            ModelNotFoundError: no weights/config there.
            ValueError: the config or weights are invalid or do not match each other.
            BackendError: the backend cannot run here (package or graph missing).
        """
        p = Path(path) if path is not None else PACKAGE_MODEL_DIR
        folder = p if p.is_dir() or p.suffix != ".safetensors" else p.parent
        cfg_path = folder / CONFIG_NAME
        if not cfg_path.is_file():
            hint = (
                "no score model is shipped with this installation; train one with "
                "`aacscore train score --data DIR --install` or pass its folder"
                if path is None
                else "expected a folder with config.json and model.safetensors"
            )
            raise ModelNotFoundError(f"{folder}: score model config.json not found ({hint})")
        try:
            config = ScoreModelConfig.from_dict(json.loads(cfg_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{cfg_path}: invalid score model config ({exc})") from exc
        weights = p if p.suffix == ".safetensors" else folder / config.weights
        if not weights.is_file():
            raise ModelNotFoundError(f"{weights}: score model weights not found")
        if resolve_backend(backend, weights) == Backend.ONNX:
            graph = load_onnx(graph_path(weights), weights)
            missing = set(output_names(config.network)) - set(graph.output_names)
            if missing:
                raise ValueError(
                    f"{graph.path}: the graph lacks the outputs {', '.join(sorted(missing))} "
                    f"of a {config.network.head} head (export it again)"
                )
            return cls(graph, config, folder, weights)
        return cls(_load_score_net(config.network, weights), config, folder, weights)

    def _check(self, pixels: npt.NDArray[Any]) -> None:
        want = self.config.band.shape
        if pixels.shape[-2:] != want:
            raise ValueError(
                f"band shape {tuple(pixels.shape[-2:])} does not match the model's {want}; "
                "extract it with geometry=model.band_geometry"
            )
        if not np.all(np.isfinite(pixels)):
            raise ValueError("band contains non-finite values")

    def features(self, band: Band | npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Penultimate features (F,) of one band, untransformed (one network pass; prefer the
        prediction's). :attr:`ScorePrediction.features` with test-time augmentation comes from
        its identity transform, whose clamp and resampling move it by < 1e-3."""
        p = np.asarray(band.pixels if isinstance(band, Band) else band, dtype=np.float32)
        if p.ndim != 2:
            raise ValueError(f"a band must be a 2-D array, got shape {p.shape}")
        self._check(p)
        out = run_network(self.runner, p[None], self.config.band, None)
        assert out.features is not None
        return out.features[0]

    def predict(
        self, band: Band | npt.ArrayLike, groups: str | SeverityGroups = "lewis", tta: bool = True
    ) -> ScorePrediction:
        """Score one band (a :class:`~aacscore.aorta.Band`, or its pixel array: then no AAC-8)."""
        return self.predict_many([band], groups=groups, tta=tta)[0]

    def predict_many(
        self,
        bands: Sequence[Band | npt.ArrayLike],
        groups: str | SeverityGroups = "lewis",
        tta: bool = True,
        batch_size: int = 16,
    ) -> list[ScorePrediction]:
        """Score several bands in batches."""
        g = parse_groups(groups)
        if not len(bands):
            return []
        pix = [np.asarray(b.pixels if isinstance(b, Band) else b, dtype=np.float32) for b in bands]
        for p in pix:
            if p.ndim != 2:
                raise ValueError(f"a band must be a 2-D array, got shape {p.shape}")
            self._check(p)
        out = run_network(
            self.runner,
            np.stack(pix),
            self.config.band,
            self.config.tta if tta else None,
            batch_size=batch_size,
        )
        if self.config.calibration is not None:
            out = self.config.calibration.apply(out)
        preds = []
        for i, b in enumerate(bands):
            preds.append(self._one(out, i, b if isinstance(b, Band) else None, g, tta))
        return preds

    def _one(
        self, out: NetworkOutputs, i: int, band: Band | None, g: SeverityGroups, tta: bool
    ) -> ScorePrediction:
        totals = out.total[i]
        mean = float(np.clip(totals.mean(), 0.0, MAX_AAC24))
        grade_mean = None
        if out.grades is not None:
            grade_mean = np.clip(out.grades[i].mean(axis=0), 0.0, 3.0)
            cal = self.config.calibration
            if cal is not None and cal.zero_below > 0:
                grade_mean = cal.zeroed(grade_mean)
                mean = float(np.clip(grade_mean.sum(), 0.0, MAX_AAC24))
        if tta and len(totals) > 1:
            sd = float(
                calibrated_sd(totals.std(ddof=1), self.config.scale_for(mean), self.config.sd_floor)
            )
        else:
            sd = float(self.config.residual_sd)
        grades = None
        if grade_mean is not None:
            grades = tuple(float(v) for v in grade_mean)
        fractions = None
        aac8: float | None = None
        if out.fractions is not None:
            fm = np.clip(out.fractions[i].mean(axis=0), 0.0, 1.0)
            if grades is not None:
                fm = consistent_fractions(fm, grades)
            fractions = tuple(float(v) for v in fm)
            if band is not None:
                aac8 = float(
                    aac8_from_fractions(fm, band.level_length_mm, band.vertebral_height_mm)
                )
        feats = None
        if out.features is not None:
            feats = np.array(out.features[i], dtype=np.float32)
            feats.setflags(write=False)
        return ScorePrediction(
            grades=grades,
            aac24=mean,
            aac24_sd=sd if math.isfinite(sd) else float(self.config.residual_sd),
            aac8=aac8,
            group=g.label(mean),
            low_confidence=is_low_confidence(mean, sd, g),
            groups_name=g.name,
            fractions=fractions,
            features=feats,
        )


def _load_score_net(network: NetworkConfig, weights: Path) -> ScoreNet:
    """The torch ``ScoreNet`` of ``network`` with the safetensors ``weights`` (float32)."""
    require_torch()
    from aacscore.backend.torch_net import load_safetensors
    from aacscore.score.network import ScoreNet

    return load_safetensors(ScoreNet(network), weights, ValueError, "do not fit the config")
