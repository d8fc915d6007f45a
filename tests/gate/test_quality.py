"""The familiarity score: the shipped reference, the p-value map, the combination, an
in-distribution simulated film above the threshold and far-away evidence below it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from aacscore.gate.quality import (
    PACKAGE_REFERENCE_DIR,
    REFERENCE_NAME,
    QualityReference,
    QualityReferenceError,
    ReferenceDistribution,
    assess_quality,
    combine,
    mahalanobis,
    shrunk_covariance,
    upper_tail_p,
)


@pytest.fixture(scope="module")
def reference() -> QualityReference:
    return QualityReference.load()


@pytest.fixture(scope="module")
def scored_film(simulated_film: dict[str, Path]) -> tuple:
    """The conftest's simulated film (seed 3: not the reference's seed 3000) through the
    shipped spine and score models, as the pipeline runs them."""
    from aacscore.io import read_radiograph
    from aacscore.pipeline import band_along_spine
    from aacscore.score.predict import ScoreModel
    from aacscore.spine.predict import SpineModel

    rad = read_radiograph(simulated_film["dicom"])
    spine = SpineModel.load().predict(rad)
    score = ScoreModel.load()
    band = band_along_spine(rad, spine, score.band_geometry)
    return spine, band, score.predict(band), score


def test_the_shipped_reference_loads(reference: QualityReference) -> None:
    path = PACKAGE_REFERENCE_DIR / REFERENCE_NAME
    assert path.stat().st_size < 1_000_000
    assert set(reference.distributions) == {"spine", "orientation", "geometry", "band"}
    assert all(d.values.size >= 100 for d in reference.distributions.values())
    assert 0 < reference.threshold < 0.1
    n = reference.feature_mean.size
    assert reference.feature_precision.shape == (n, n) and n == reference.feature_channels
    # the precision of a shrunk covariance is symmetric positive definite
    assert np.all(np.linalg.eigvalsh(reference.feature_precision) > 0)
    assert (PACKAGE_REFERENCE_DIR / "README.md").is_file()


def test_a_missing_or_foreign_reference_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(QualityReferenceError, match="no quality reference"):
        QualityReference.load(tmp_path)
    (tmp_path / REFERENCE_NAME).write_text('{"format": "other"}')
    with pytest.raises(QualityReferenceError, match="not a quality reference"):
        QualityReference.load(tmp_path)


def test_the_p_value_map_is_monotone_with_a_tail() -> None:
    ref = np.arange(1.0, 100.0)  # 99 values
    p = [upper_tail_p(t, ref, 2.0) for t in np.linspace(-5, 130, 400)]
    assert np.all(np.diff(p) <= 0)
    assert p[0] == 1.0 and 0 < p[-1] < 1e-5
    assert upper_tail_p(50.0, ref, 2.0) == pytest.approx(51 / 100)
    assert upper_tail_p(99.0, ref, 2.0) == pytest.approx(2 / 100)
    assert upper_tail_p(101.0, ref, 2.0) == pytest.approx(np.exp(-1) / 100)
    d = ReferenceDistribution.fit(ref.tolist())
    assert d.p_value(0.0) == 1.0 and d.p_value(200.0) < d.p_value(99.5) < d.p_value(99.0)


def test_combination_is_a_bonferroni_minimum() -> None:
    assert combine({}) == 1.0
    assert combine({"a": 0.5, "b": 0.2}) == pytest.approx(0.4)
    assert combine({"a": 0.9, "b": 0.9}) == 1.0
    assert combine({"a": 0.001, "b": 1.0, "c": 1.0}) == pytest.approx(0.003)


def test_shrunk_covariance_is_invertible_with_few_samples() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 50))  # fewer samples than dimensions
    mean, cov, shrink = shrunk_covariance(x)
    assert 0 < shrink <= 1 and np.all(np.linalg.eigvalsh(cov) > 0)
    prec = np.linalg.inv(cov)
    near = mahalanobis(mean + 0.1, mean, prec)
    far = mahalanobis(mean + 10.0, mean, prec)
    assert 0 < near < far


def test_an_in_distribution_film_is_above_the_threshold(
    scored_film: tuple, reference: QualityReference
) -> None:
    spine, band, pred, score = scored_film
    assert pred.features is not None and pred.features.size == reference.feature_channels * 16
    # the same vector up to the test-time pipeline's clamp and resampling of the identity
    np.testing.assert_allclose(score.features(band), pred.features, rtol=0, atol=1e-3)
    q = assess_quality(spine, band, pred, reference)
    assert set(q.components) == {"spine", "orientation", "geometry", "band"}
    assert not q.low and q.value >= reference.threshold and 0 <= q.value <= 1
    assert q.statistics["band_inside_fraction"] == pytest.approx(band.inside_fraction)
    # the view probability joins as a component
    q2 = assess_quality(spine, band, pred, reference, p_lateral=0.001)
    assert q2.components["view"] == 0.001 and q2.low


def test_far_away_features_or_an_unsure_network_are_below_it(
    scored_film: tuple, reference: QualityReference
) -> None:
    spine, band, pred, _ = scored_film
    rng = np.random.default_rng(1)
    far = np.asarray(pred.features) + rng.normal(0, 5.0, pred.features.shape).astype(np.float32)
    q = assess_quality(spine, band, far, reference)
    assert q.low and q.components["band"] < q.components["spine"]
    assert q.value < reference.threshold
    # an unsure spine network: every level at 0.55
    conf = spine.confidence
    weak = dataclasses.replace(conf, level_probability={n: 0.55 for n in conf.level_probability})
    q = assess_quality(dataclasses.replace(spine, confidence=weak), band, pred, reference)
    assert q.low and min(q.components, key=q.components.__getitem__) == "spine"
    # no features: the band component is left out
    assert "band" not in assess_quality(spine, band, None, reference).components


def test_quality_costs_little(scored_film: tuple, reference: QualityReference) -> None:
    import time

    spine, band, pred, _ = scored_film
    t0 = time.perf_counter()
    for _ in range(20):
        assess_quality(spine, band, pred, reference)
    assert (time.perf_counter() - t0) / 20 < 0.02
