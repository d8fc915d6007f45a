"""Building the familiarity reference from measured films (no models needed)."""

from __future__ import annotations

import numpy as np
import pytest

from aacscore.gate.quality import QualityReference
from aacscore.training.quality import (
    FilmMeasurement,
    build_reference,
    cross_validated_distances,
    in_sample_rates,
)


def _films(n: int, seed: int = 0) -> list[FilmMeasurement]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        stats = {
            "spine": float(rng.normal(-4, 0.3)),
            "orientation": float(rng.normal(-12, 1)),
            "geometry": float(abs(rng.normal(0, 0.05))),
        }
        feats = rng.normal(0, 1, (8, 16)).astype(np.float32)
        out.append(FilmMeasurement(f"f{i}", stats, feats.ravel()))
    return out


def test_cross_validated_distances_exceed_in_sample_ones() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 10))
    cv = cross_validated_distances(x, folds=5)
    assert cv.shape == (60,) and np.all(cv > 0)
    from aacscore.gate.quality import mahalanobis, shrunk_covariance

    mean, cov, _ = shrunk_covariance(x)
    prec = np.linalg.inv(cov)
    ins = np.array([mahalanobis(r, mean, prec) for r in x])
    assert np.median(cv) > np.median(ins)


def test_build_reference_round_trips_and_flags_few_reference_films() -> None:
    films = _films(80)
    ref = build_reference(films, channels=8, info={"data": "synthetic"})
    assert set(ref.distributions) == {"spine", "orientation", "geometry", "band"}
    assert ref.feature_mean.shape == (8,) and ref.info["data"] == "synthetic"
    again = QualityReference.from_dict(ref.to_dict())
    np.testing.assert_allclose(again.feature_precision, ref.feature_precision, rtol=1e-5)
    assert again.threshold == ref.threshold
    rates = in_sample_rates(ref, films)
    assert rates["n"] == 80 and rates["low_quality_rate"] <= 0.05
    with pytest.raises(ValueError, match="at least 10"):
        build_reference(films[:5], channels=8)
