"""Isotonic output calibration: fitting, storage, application at prediction, cross-fitting."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from aacscore.score import ScoreModel
from aacscore.score.network import ScoreNet
from aacscore.score.predict import (
    Calibration,
    NetworkOutputs,
    ScoreModelConfig,
    fit_calibration,
)
from aacscore.training.calibration import cross_fitted, fit_output_calibration
from tests.score.score_synth import TINY_GEOMETRY, TINY_NET, tiny_band, tiny_bandset


def test_fit_removes_a_systematic_bias() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, size=4000).astype(float)
    # a network that over-reads uncalcified segments and compresses the top of the range
    pred = np.clip(0.15 + 0.8 * truth + rng.normal(0, 0.1, truth.shape), 0, 3)
    cal = fit_calibration(pred, truth, "grades")
    assert cal.x[0] == 0.0 and cal.x[-1] == pytest.approx(3.0)
    assert np.all(np.diff(cal.y) >= 0) and 0.0 <= cal.y[0] and cal.y[-1] <= 3.0
    before = np.abs(pred - truth).mean()
    after = np.abs(cal(pred) - truth).mean()
    assert after < 0.5 * before
    assert cal(np.array([0.15]))[0] < 0.05  # an uncalcified segment reads ~0 again


def test_total_calibration_and_validation_errors() -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(0, 24, 500)
    cal = fit_calibration(truth + 2.0, truth, "total")
    assert cal.x[-1] == pytest.approx(24.0) and len(cal.x) == 97  # 0.25 steps
    assert float(cal(np.array([12.0]))[0]) == pytest.approx(10.0, abs=0.5)
    with pytest.raises(ValueError, match="at least 10"):
        fit_calibration([0.1, 0.2], [0, 0], "grades")
    with pytest.raises(ValueError, match="target"):
        Calibration("fractions", (0.0, 1.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="non-decreasing"):
        Calibration("grades", (0.0, 1.0), (1.0, 0.0))


def test_apply_recomputes_the_total_from_calibrated_grades() -> None:
    cal = Calibration("grades", (0.0, 0.5, 3.0), (0.0, 0.0, 3.0))
    grades = np.full((2, 3, 8), 0.25)
    out = cal.apply(NetworkOutputs(total=grades.sum(-1), grades=grades, fractions=None))
    assert out.grades is not None and np.all(out.grades == 0.0) and np.all(out.total == 0.0)
    with pytest.raises(ValueError, match="without segment grades"):
        cal.apply(NetworkOutputs(total=np.zeros((1, 1)), grades=None, fractions=None))


def _model(folder: Path, calibration: Calibration | None) -> ScoreModel:
    torch.manual_seed(0)
    net = ScoreNet(TINY_NET)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors")
    )
    cfg = ScoreModelConfig(network=TINY_NET, band=TINY_GEOMETRY, calibration=calibration)
    (folder / "config.json").write_text(json.dumps(cfg.as_dict()))
    return ScoreModel.load(folder)


def test_stored_calibration_is_applied_at_prediction(tmp_path: Path) -> None:
    band = tiny_band(np.zeros(8), np.random.default_rng(0))
    raw = _model(tmp_path / "raw", None)
    # everything below 3 reads as 0: the prediction must become exactly 0
    zero = Calibration("grades", (0.0, 2.999, 3.0), (0.0, 0.0, 3.0))
    cal = _model(tmp_path / "cal", zero)
    assert cal.config.calibration == zero  # round trip through config.json
    p_raw, p_cal = raw.predict(band), cal.predict(band)
    assert p_raw.aac24 > 0.0
    assert p_cal.aac24 == 0.0 and p_cal.grades == (0.0,) * 8
    assert json.loads((tmp_path / "raw" / "config.json").read_text())["calibration"] is None


def test_cross_fitting_is_out_of_sample() -> None:
    bs = tiny_bandset(40, seed=2)
    idx = np.arange(len(bs))
    rng = np.random.default_rng(3)
    grades = np.clip(bs.grades[:, None, :] * 0.7 + 0.3 + rng.normal(0, 0.05, (40, 4, 8)), 0, 3)
    out = NetworkOutputs(total=grades.sum(-1), grades=grades, fractions=None)
    cf = cross_fitted(out, bs, idx, "segments", seed=0)
    full = fit_output_calibration(out, bs, idx, "segments").apply(out)
    assert cf.grades is not None and full.grades is not None
    assert not np.allclose(cf.grades, full.grades)  # not the in-sample map
    err = lambda o: np.abs(o.total.mean(1) - bs.totals).mean()  # noqa: E731
    assert err(cf) < err(out)
    assert np.allclose(cf.total, cf.grades.sum(-1))
    total_only = dataclasses.replace(out, grades=None)
    cft = cross_fitted(total_only, bs, idx, "total", seed=0)
    assert cft.grades is None and err(cft) < err(out)


def test_group_metrics_use_wilson_intervals() -> None:
    from aacscore.kauppila import parse_groups
    from aacscore.training.metrics import group_metrics

    true = [0, 0, 0, 0, 2, 2, 8, 8, 8, 8]
    pred = [0, 0, 0, 2, 2, 6, 8, 8, 8, 3]
    m = group_metrics(pred, true, parse_groups("lewis"))
    low, mod, high = (m["per_group"][k] for k in ("low", "moderate", "high"))
    assert low["n"] == 4 and low["sensitivity"] == pytest.approx(0.75)
    assert low["specificity"] == pytest.approx(1.0) and low["specificity_ci"][1] == 1.0
    assert mod["sensitivity"] == pytest.approx(0.5) and mod["specificity"] == pytest.approx(0.75)
    assert high["sensitivity"] == pytest.approx(0.75)
    lo, hi = low["sensitivity_ci"]
    assert 0.0 < lo < 0.75 < hi < 1.0
    assert m["confusion"] == [[3, 1, 0], [0, 1, 1], [0, 1, 3]]


def test_uncertainty_scale_by_predicted_total() -> None:
    from aacscore.training.calibration import SD_BIN_EDGES, scale_bins

    rng = np.random.default_rng(4)
    mean = np.concatenate([np.full(200, 0.1), np.full(200, 12.0), np.full(5, 3.0)])
    # errors (in units of the unscaled sd) ten times larger for the calcified films
    z = np.abs(np.concatenate([rng.normal(0, 0.3, 200), rng.normal(0, 3.0, 200), np.ones(5)]))
    bins = scale_bins(mean, z, overall=2.0)
    assert bins is not None and bins[0] == SD_BIN_EDGES
    scales = bins[1]
    assert scales[0] < 0.5 < 2.0 < scales[4]  # uncalcified vs severe bin
    assert scales[2] == 2.0  # too few films (5 < 20): the overall scale
    assert scale_bins(np.full(5, 1.0), np.ones(5), overall=1.5) is None
    cfg = ScoreModelConfig(network=TINY_NET, band=TINY_GEOMETRY, sd_scale=2.0, sd_scale_bins=bins)
    back = ScoreModelConfig.from_dict(json.loads(json.dumps(cfg.as_dict())))
    assert back.sd_scale_bins == bins
    assert back.scale_for(0.0) == scales[0] and back.scale_for(30.0) == scales[4]
    assert dataclasses.replace(back, sd_scale_bins=None).scale_for(0.0) == 2.0


def test_zero_threshold_is_chosen_on_validation_and_applied(tmp_path: Path) -> None:
    from aacscore.training.calibration import choose_zero_threshold

    rng = np.random.default_rng(5)
    truth = rng.choice([0.0, 1.0, 3.0], size=(300, 8), p=[0.7, 0.1, 0.2])
    # uncalcified segments read small positive values, calcified ones are accurate
    grades = np.where(truth == 0, rng.uniform(0.0, 0.12, truth.shape), truth)
    tau = choose_zero_threshold(grades, truth.sum(1))
    assert 0.1 < tau <= 0.3
    assert choose_zero_threshold(truth.astype(float), truth.sum(1)) == 0.0  # nothing to gain
    cal = Calibration("grades", (0.0, 3.0), (0.0, 3.0), zero_below=0.5)
    assert Calibration.from_dict(json.loads(json.dumps(cal.as_dict()))) == cal
    assert Calibration.from_dict({"target": "grades", "x": [0, 3], "y": [0, 3]}).zero_below == 0
    np.testing.assert_array_equal(cal.zeroed([0.2, 0.5, 2.0]), [0.0, 0.5, 2.0])
    # in a model: every raw grade of this untrained net is below 3, so all read 0
    model = _model(tmp_path / "z", Calibration("grades", (0.0, 3.0), (0.0, 3.0), 2.99))
    p = model.predict(tiny_band(np.zeros(8), np.random.default_rng(0)))
    assert p.grades == (0.0,) * 8 and p.aac24 == 0.0 and p.group == "low"


def test_calibration_is_fitted_on_mixed_families(tmp_path: Path) -> None:
    from aacscore.training.score import ScoreTrainConfig, train_score
    from tests.score.score_synth import write_fake_simulator_folder
    from tests.training.test_training_score import _tag_cases

    write_fake_simulator_folder(tmp_path / "a", 24, seed=1)
    write_fake_simulator_folder(tmp_path / "b", 24, seed=2)
    _tag_cases(tmp_path / "a", negative=(0, 1, 2, 3))
    _tag_cases(tmp_path / "b", family="b", negative=(0, 1, 2, 3))
    cfg = ScoreTrainConfig(
        network=TINY_NET,
        geometry=TINY_GEOMETRY,
        batch_size=8,
        warmup_epochs=0.0,
        augment=False,
        num_threads=1,
        n_jitter=1,
        val_fraction=0.5,
        epochs=1,
        steps_per_epoch=2,
        negative_weight=3.0,
    )
    res = train_score([tmp_path / "a", tmp_path / "b"], tmp_path / "run", cfg)
    conf = json.loads((res.model_dir / "config.json").read_text())
    fit = conf["calibration_fit"]["strata"]
    # both families (and both families' hard negatives) are in the calibration's fit set
    assert fit == {"a": 10, "a_negative": 2, "b": 10, "b_negative": 2}
    assert conf["calibration"] is not None and conf["calibration"]["target"] == "grades"
    by = conf["metrics"]["validation_tta_by_stratum"]
    assert set(by) == set(fit) and all(by[k]["n"] == fit[k] for k in fit)
    assert by["a_negative"]["integer"]["aac0_films"] == 2
    assert conf["training"]["config"]["negative_weight"] == 3.0
    card = (res.model_dir / "MODEL_CARD.md").read_text()
    assert "## Validation by family" in card and "| b_negative | 2 |" in card
