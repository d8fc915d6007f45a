"""Familiarity ("quality"): is this film like the films the models know?

The networks' own evidence, each summarised by one statistic that grows as the film gets less
familiar, is turned into an empirical upper-tail p-value against the same statistic measured
on a reference set of simulated lateral films (:class:`QualityReference`, built by
``python -m aacscore.training.quality``):

* ``spine``: ``-logit`` of the smallest per-level mean max-softmax probability of L1-L4
  (:class:`aacscore.spine.flags.SpineConfidence`);
* ``orientation``: ``-|logit P(anterior right)|`` of the orientation classifier (left out when
  the side was given or no classifier was used);
* ``geometry`` (plausibility margin): the largest ``|log|`` ratio of an L1-L4 body height,
  depth or centre step to their median;
* ``band``: ``log`` of the Mahalanobis distance of the score network's penultimate features
  (:attr:`aacscore.score.predict.ScorePrediction.features`, averaged per channel) to the
  reference features (Ledoit-Wolf shrunk covariance);
* ``view`` (optional): the view classifier's ``p_lateral`` as given by the caller, used as it is.

P-value map (:func:`upper_tail_p`): ``(1 + #{reference >= t}) / (n + 1)`` inside the reference
range; beyond its maximum ``exp(-(t - max) / scale) / (n + 1)`` (``scale``: the reference's
robust sd), so that values far outside the reference get p-values far below ``1 / (n + 1)``.
It is non-increasing in ``t``.

``quality = min(1, k x min_i p_i)``: the smallest component p-value, Bonferroni-adjusted for the
``k`` components present; in [0, 1]. Below ``reference.threshold`` (:data:`DEFAULT_THRESHOLD`,
chosen so that about 2 % of simulated lateral films fall below: see the reference's card) the
film is still scored but flagged ``low_quality``.

How the pipeline calls it (``Scorer.score_radiograph``; the reference loaded once per scorer)::

    reference = QualityReference.load()                    # once
    pred = self.score_model.predict(band, groups=..., tta=...)
    quality = assess_quality(spine, band, pred, reference, p_lateral=view.p_lateral)
    if quality.low:
        flags.append("low_quality")

It costs well under a millisecond per film: no network pass of its own (the features come from
the score pass, the confidence from the spine pass).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.aorta.roi import Band
from aacscore.score.predict import ScorePrediction
from aacscore.spine.result import SpineResult
from aacscore.vertebrae import KAUPPILA_LEVELS

REFERENCE_FORMAT = "aacscore-quality-reference"
REFERENCE_NAME = "reference.json"
PACKAGE_REFERENCE_DIR = Path(__file__).resolve().parent.parent / "models" / "quality"
"""Where the shipped reference lives (``aacscore/models/quality``)."""
DEFAULT_THRESHOLD = 0.02
"""Quality below which a film is flagged ``low_quality`` (when the reference names none)."""
COMPONENTS: tuple[str, ...] = ("spine", "orientation", "geometry", "band")
"""The components measured from the networks (``view`` is added when ``p_lateral`` is given)."""
_EPS = 1e-6

FloatArray = npt.NDArray[np.float64]


class QualityReferenceError(ValueError):
    """The quality reference file is missing or invalid."""


# -------------------------------------------------------------------------------------------
# Statistics (larger = less familiar)
# -------------------------------------------------------------------------------------------


def _logit(p: float) -> float:
    q = min(max(float(p), _EPS), 1.0 - _EPS)
    return math.log(q / (1.0 - q))


def spine_statistic(spine: SpineResult) -> float | None:
    """``-logit`` of the smallest per-level mean probability of L1-L4 (None: no confidence)."""
    if spine.confidence is None:
        return None
    return -_logit(spine.confidence.min_level_probability)


def orientation_statistic(spine: SpineResult) -> float | None:
    """``-|logit P(anterior right)|`` (None when the side was given or no classifier ran)."""
    o = spine.orientation
    if o.method == "given" or (o.probability_right == 0.5 and o.method != "classifier"):
        return None
    return -abs(_logit(o.probability_right))


def geometry_statistic(spine: SpineResult) -> float | None:
    """Largest ``|log|`` ratio of an L1-L4 height, depth or centre step to their median."""
    if not all(n in spine.vertebrae for n in KAUPPILA_LEVELS):
        return None
    vs = [spine.vertebrae[n] for n in KAUPPILA_LEVELS]
    worst = 0.0
    centers = np.stack([v.center for v in vs])
    steps = np.hypot(*np.diff(centers, axis=0).T)
    for values in ([v.height_px for v in vs], [v.depth_px for v in vs], list(steps)):
        a = np.asarray(values, dtype=np.float64)
        med = float(np.median(a))
        if med <= 0 or np.any(a <= 0):
            return math.inf
        worst = max(worst, float(np.max(np.abs(np.log(a / med)))))
    return worst


def pooled_features(features: npt.ArrayLike, channels: int) -> FloatArray:
    """Per-channel mean of the score network's penultimate features (channel-major cells)."""
    f = np.asarray(features, dtype=np.float64).ravel()
    if channels < 1 or f.size % channels:
        raise ValueError(f"{f.size} features do not split into {channels} channels")
    return f.reshape(channels, -1).mean(axis=1)


def shrunk_covariance(x: npt.ArrayLike) -> tuple[FloatArray, FloatArray, float]:
    """(mean, Ledoit-Wolf shrunk covariance, shrinkage) of the rows of ``x`` (n, p)."""
    a = np.asarray(x, dtype=np.float64)
    n, p = a.shape
    if n < 2:
        raise ValueError(f"need at least 2 feature vectors, got {n}")
    mean = a.mean(axis=0)
    xc = a - mean
    s = xc.T @ xc / n
    mu = float(np.trace(s)) / p
    delta = float(np.sum((s - mu * np.eye(p)) ** 2))
    beta = (float(np.sum(np.sum(xc**2, axis=1) ** 2)) - n * float(np.sum(s**2))) / n**2
    shrink = 1.0 if delta <= 0 else min(max(beta / delta, 0.0), 1.0)
    return mean, shrink * mu * np.eye(p) + (1.0 - shrink) * s, shrink


def mahalanobis(x: npt.ArrayLike, mean: npt.ArrayLike, precision: npt.ArrayLike) -> float:
    d = np.asarray(x, dtype=np.float64) - np.asarray(mean, dtype=np.float64)
    return float(math.sqrt(max(float(d @ np.asarray(precision, dtype=np.float64) @ d), 0.0)))


# -------------------------------------------------------------------------------------------
# Reference and p-values
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ReferenceDistribution:
    """Sorted reference values of one statistic and the scale of the tail beyond them."""

    values: FloatArray
    scale: float

    def __post_init__(self) -> None:
        v = np.sort(np.asarray(self.values, dtype=np.float64))
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise QualityReferenceError("a reference distribution needs finite values")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise QualityReferenceError(f"tail scale must be positive, got {self.scale}")
        v.setflags(write=False)
        object.__setattr__(self, "values", v)

    @classmethod
    def fit(cls, values: Sequence[float]) -> ReferenceDistribution:
        """From raw values; the tail scale is the robust sd (IQR / 1.349, else sd, else 1e-3)."""
        v = np.asarray(values, dtype=np.float64)
        q75, q25 = np.percentile(v, [75, 25])
        scale = float((q75 - q25) / 1.349) or float(v.std()) or 1e-3
        return cls(v, scale)

    def p_value(self, t: float) -> float:
        """:func:`upper_tail_p` against this distribution."""
        return upper_tail_p(t, self.values, self.scale)


def upper_tail_p(t: float, reference: npt.ArrayLike, scale: float) -> float:
    """Empirical upper-tail p-value of ``t`` with an exponential tail beyond the reference."""
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    n = ref.size
    if math.isnan(t):
        return 1.0 / (n + 1)
    if t <= ref[-1]:
        ge = n - int(np.searchsorted(ref, t, side="left"))
        return (1.0 + ge) / (n + 1.0)
    if math.isinf(t):
        return 0.0
    return math.exp(-(t - float(ref[-1])) / scale) / (n + 1.0)


@dataclass(frozen=True, eq=False)
class QualityReference:
    """The reference distributions of the statistics and the reference band features."""

    distributions: Mapping[str, ReferenceDistribution]
    feature_mean: FloatArray
    feature_precision: FloatArray
    feature_channels: int
    threshold: float = DEFAULT_THRESHOLD
    info: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None
    """The ``reference.json`` it was loaded from (None: built in memory)."""

    def weight_files(self) -> list[Path]:
        """The file that determines the quality scores (for the run record's hashes)."""
        return [] if self.path is None else [self.path]

    @classmethod
    def load(cls, dir: str | Path | None = None) -> QualityReference:
        """Load ``reference.json`` from ``dir`` (a folder or the file; default: shipped)."""
        p = Path(dir) if dir is not None else PACKAGE_REFERENCE_DIR
        path = p / REFERENCE_NAME if p.is_dir() or p.suffix != ".json" else p
        if not path.is_file():
            raise QualityReferenceError(
                f"{path}: no quality reference (build one with `python -m "
                "aacscore.training.quality --data DIR --out FOLDER`)"
            )
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return dataclasses.replace(cls.from_dict(d), path=path)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise QualityReferenceError(f"{path}: invalid quality reference ({exc})") from exc

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityReference:
        if d.get("format") != REFERENCE_FORMAT:
            raise QualityReferenceError(f"not a quality reference (format={d.get('format')!r})")
        dists = {
            k: ReferenceDistribution(np.asarray(v["values"], dtype=np.float64), float(v["scale"]))
            for k, v in d["components"].items()
        }
        feats = d["band_features"]
        mean = np.asarray(feats["mean"], dtype=np.float64)
        prec = np.asarray(feats["precision"], dtype=np.float64)
        if prec.shape != (mean.size, mean.size):
            raise QualityReferenceError(f"precision {prec.shape} does not match mean {mean.shape}")
        known = {"format", "version", "components", "band_features", "threshold"}
        return cls(
            dists,
            mean,
            prec,
            int(feats["channels"]),
            float(d.get("threshold", DEFAULT_THRESHOLD)),
            {k: v for k, v in d.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        def r(a: npt.ArrayLike) -> Any:
            return np.round(np.asarray(a, dtype=np.float64), 6).tolist()

        return {
            "format": REFERENCE_FORMAT,
            "version": 1,
            "threshold": self.threshold,
            **dict(self.info),
            "components": {
                k: {"values": r(v.values), "scale": round(v.scale, 6)}
                for k, v in self.distributions.items()
            },
            "band_features": {
                "pool": "per-channel mean of the penultimate features",
                "channels": self.feature_channels,
                "mean": r(self.feature_mean),
                "precision": [[float(f"{x:.6g}") for x in row] for row in self.feature_precision],
            },
        }

    def band_distance(self, features: npt.ArrayLike) -> float:
        """Mahalanobis distance of a film's penultimate features to the reference mean."""
        x = pooled_features(features, self.feature_channels)
        if x.size != self.feature_mean.size:
            raise ValueError(
                f"{x.size} pooled features, the reference has {self.feature_mean.size}: "
                "a reference built for another score model?"
            )
        return mahalanobis(x, self.feature_mean, self.feature_precision)


# -------------------------------------------------------------------------------------------
# Assessment
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    """The familiarity of one film: ``value`` in [0, 1] (see the module docstring), the
    component p-values, the ``threshold`` and whether the film is ``low`` (below it)."""

    value: float
    components: Mapping[str, float]
    threshold: float
    low: bool
    statistics: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "threshold": self.threshold,
            "low": self.low,
            "components": dict(self.components),
            "statistics": dict(self.statistics),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Quality:
        """Inverse of :meth:`to_dict`."""
        return cls(
            float(d["value"]),
            {k: _number(v) for k, v in d.get("components", {}).items()},
            float(d["threshold"]),
            bool(d["low"]),
            {k: _number(v) for k, v in d.get("statistics", {}).items()},
        )


def _number(value: Any) -> float:
    """A JSON number back to float (``null``, written for NaN, back to NaN)."""
    return float("nan") if value is None else float(value)


def film_statistics(
    spine: SpineResult,
    features: npt.ArrayLike | None,
    reference: QualityReference | None = None,
) -> dict[str, float]:
    """The statistics of one film (those that can be measured); ``band`` needs a reference
    (for its mean and precision); ``band_pooled`` is not a statistic: see the training."""
    out: dict[str, float] = {}
    for name, fn in (
        ("spine", spine_statistic),
        ("orientation", orientation_statistic),
        ("geometry", geometry_statistic),
    ):
        v = fn(spine)
        if v is not None:
            out[name] = float(v)
    if features is not None and reference is not None:
        out["band"] = math.log(max(reference.band_distance(features), 1e-12))
    return out


def combine(p_values: Mapping[str, float]) -> float:
    """``min(1, k x min p)`` over the ``k`` components (1 when there are none)."""
    if not p_values:
        return 1.0
    return float(min(1.0, len(p_values) * min(p_values.values())))


def assess_quality(
    spine: SpineResult,
    band: Band | None,
    prediction_or_features: ScorePrediction | npt.ArrayLike | None,
    reference: QualityReference,
    p_lateral: float | None = None,
) -> Quality:
    """The familiarity of a scored film (see the module docstring).

    ``prediction_or_features``: the score model's prediction on ``band`` (its ``features``) or
    the feature vector itself; None leaves the band component out. ``band`` is not a component
    (its coverage is :func:`aacscore.gate.field.check_band_coverage`); its inside fraction is
    recorded with the statistics.
    """
    feats: npt.ArrayLike | None
    if isinstance(prediction_or_features, ScorePrediction):
        feats = prediction_or_features.features
    else:
        feats = prediction_or_features
    stats = film_statistics(spine, feats, reference)
    comps: dict[str, float] = {}
    for name, t in stats.items():
        dist = reference.distributions.get(name)
        if dist is not None:
            comps[name] = dist.p_value(t)
    if p_lateral is not None:
        if not 0.0 <= p_lateral <= 1.0:
            raise ValueError(f"p_lateral must be a probability, got {p_lateral}")
        comps["view"] = float(p_lateral)
    value = combine(comps)
    recorded = dict(stats)
    if band is not None:
        recorded["band_inside_fraction"] = float(band.inside_fraction)
    return Quality(value, comps, reference.threshold, value < reference.threshold, recorded)
