from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from aacscore.kauppila import parse_groups
from aacscore.score import (
    ModelNotFoundError,
    NetworkConfig,
    ScoreModel,
    ScoreModelConfig,
    ScoreNet,
    ScorePrediction,
    is_low_confidence,
)
from aacscore.score.predict import aac8_from_fractions, confidence_interval
from aacscore.training.card import replace_comparison, write_model_card
from tests.score.score_synth import TINY_GEOMETRY, TINY_NET, tiny_band

LEWIS = parse_groups("lewis")


@pytest.mark.parametrize(
    ("mean", "sd", "groups", "low"),
    [
        (0.3, 0.1, "lewis", False),  # 0.10-0.50: all "low"
        (1.3, 0.1, "lewis", False),  # 1.104-1.496: all round to 1
        (1.32, 0.1, "lewis", True),  # 1.124-1.516: 1.5 rounds up into "moderate"
        (1.2, 0.1, "lewis", False),  # 1.00-1.40
        (3.5, 1.0, "lewis", False),  # 1.54-5.46: inside 2-5 after rounding
        (3.5, 1.03, "lewis", True),  # 1.48-5.52: crosses both cut-offs
        (20.0, 3.0, "lewis", False),  # clipped at 24, all "high"
        (5.0, 0.3, "ckd", True),  # 4.41-5.59 crosses 4.5
        (10.0, 2.0, "ckd", False),
        (0.5, 0.2, "0,4,15", True),  # custom: group "0" vs "1-4"
        (1.0, 0.2, "0,4,15", False),  # 0.61-1.39: all "1-4"
        (2.0, 0.0, "lewis", False),
    ],
)
def test_low_confidence_at_cutoffs(mean: float, sd: float, groups: str, low: bool) -> None:
    assert is_low_confidence(mean, sd, parse_groups(groups)) is low


def test_confidence_interval_is_clipped() -> None:
    assert confidence_interval(0.5, 1.0) == (0.0, pytest.approx(2.46))
    assert confidence_interval(23.0, 1.0)[1] == 24.0


def test_aac8_from_fractions() -> None:
    lengths = [37.0] * 4
    heights = [28.0] * 4
    assert aac8_from_fractions(np.zeros(8), lengths, heights) == 0
    # Anterior wall fully calcified over 4 levels: 4 x 37 / 28 = 5.3 heights -> 4; posterior 0.
    f = np.zeros(8)
    f[0::2] = 1.0
    assert aac8_from_fractions(f, lengths, heights) == 4
    # Posterior wall 0.5 of L4 only: 18.5 / 28 = 0.66 heights -> 1.
    f = np.zeros(8)
    f[7] = 0.5
    assert aac8_from_fractions(f, lengths, heights) == 1


def _save_model(folder: Path, net_cfg: NetworkConfig, seed: int = 0) -> ScoreModelConfig:
    torch.manual_seed(seed)
    net = ScoreNet(net_cfg)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors")
    )
    cfg = ScoreModelConfig(network=net_cfg, band=TINY_GEOMETRY, sd_scale=1.5, residual_sd=0.8)
    (folder / "config.json").write_text(json.dumps(cfg.as_dict()))
    return cfg


@pytest.mark.parametrize("head", ["segments", "ordinal", "total"])
def test_predict_fields_and_ranges(tmp_path: Path, head: str) -> None:
    _save_model(tmp_path / "m", dataclasses.replace(TINY_NET, head=head))
    model = ScoreModel.load(tmp_path / "m")
    band = tiny_band(np.zeros(8), np.random.default_rng(0))
    p = model.predict(band, groups="ckd")
    assert isinstance(p, ScorePrediction)
    assert 0.0 <= p.aac24 <= 24.0 and p.aac24_sd > 0
    assert p.groups_name == "ckd" and p.group in parse_groups("ckd").labels
    assert p.low_confidence == is_low_confidence(p.aac24, p.aac24_sd, parse_groups("ckd"))
    if head == "total":
        assert p.grades is None and p.fractions is None
    else:
        assert p.grades is not None and len(p.grades) == 8
        assert all(0.0 <= g <= 3.0 for g in p.grades)
        assert sum(p.grades) == pytest.approx(p.aac24, abs=1e-6)
    assert p.aac8 is None  # a bare array carries no level geometry
    no_tta = model.predict(band, tta=False)
    assert no_tta.aac24_sd == pytest.approx(0.8)  # the validation residual sd
    # Batch prediction agrees with single prediction; frozen result.
    many = model.predict_many([band, band])
    assert many[0].aac24 == pytest.approx(model.predict(band).aac24, abs=1e-5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.aac24 = 3.0  # type: ignore[misc]
    d = p.as_dict()
    assert set(d) >= {"L1_anterior", "aac24", "aac24_sd", "aac24_low", "aac24_high", "group"}


def test_predict_rejects_wrong_band_shape(tmp_path: Path) -> None:
    _save_model(tmp_path / "m", TINY_NET)
    model = ScoreModel.load(tmp_path / "m" / "model.safetensors")
    with pytest.raises(ValueError, match="band_geometry"):
        model.predict(np.zeros((128, 128), dtype=np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        model.predict(np.full(TINY_GEOMETRY.shape, np.nan, dtype=np.float32))


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        ScoreModel.load(tmp_path / "nothing")
    _save_model(tmp_path / "m", TINY_NET)
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="weights"):
        ScoreModel.load(tmp_path / "m")
    # Weights of another architecture.
    _save_model(tmp_path / "x", TINY_NET)
    cfg = json.loads((tmp_path / "x" / "config.json").read_text())
    cfg["network"]["block_inplanes"] = [8, 8, 8, 8]
    (tmp_path / "x" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not fit"):
        ScoreModel.load(tmp_path / "x")
    (tmp_path / "x" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="invalid score model config"):
        ScoreModel.load(tmp_path / "x")


def test_model_card_comparison_section(tmp_path: Path) -> None:
    cfg = _save_model(tmp_path, TINY_NET)
    card = write_model_card(tmp_path / "MODEL_CARD.md", cfg, [])
    replace_comparison(card, "| head | MAE |\n|---|---|\n| segments | 0.5 |")
    replace_comparison(card, "| head | MAE |\n|---|---|\n| segments | 0.4 |")
    text = card.read_text()
    assert "| segments | 0.4 |" in text and "| segments | 0.5 |" not in text
    assert text.count("## Head comparison") == 1


def test_consistent_fractions_follow_the_grades() -> None:
    from aacscore.score.predict import consistent_fractions

    f = consistent_fractions(
        [0.05, 0.5, 0.1, 0.9, 0.2, 0.5, 0.0, 0.7], [0.4, 0.6, 1.6, 2.4, 3.0, 2.0, 1.0, 2.6]
    )
    # grades round to 0, 1, 2, 2, 3, 2, 1, 3
    np.testing.assert_allclose(
        f, [0.0, 1 / 3, 1 / 3 + 1e-6, 2 / 3, 2 / 3 + 1e-6, 0.5, 0.02, 0.7], atol=1e-9
    )


def test_predict_band_object_gives_aac8(tmp_path: Path) -> None:
    from aacscore.aorta import extract_band
    from aacscore.io import read_radiograph
    from aacscore.training.score_data import read_case_json
    from tests.score.score_synth import write_fake_simulator_folder

    write_fake_simulator_folder(tmp_path / "sim", 1)
    case = read_case_json(tmp_path / "sim" / "case_000000.json")
    image = read_radiograph(case.film).pixels
    band = extract_band(
        image, case.corners, case.anterior_side, case.spacing_mm, geometry=TINY_GEOMETRY
    )
    _save_model(tmp_path / "m", TINY_NET)
    p = ScoreModel.load(tmp_path / "m").predict(band)
    assert p.aac8 is not None and 0 <= p.aac8 <= 8 and float(p.aac8).is_integer()
    assert p.fractions is not None and p.grades is not None
    rounded = [int(np.floor(g + 0.5)) for g in p.grades]
    assert all((f == 0.0) == (g == 0) for f, g in zip(p.fractions, rounded, strict=True))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_score_model_weight_files_are_weights_and_config(backend: str) -> None:
    model = ScoreModel.load(backend=backend)
    assert model.backend == backend
    files = model.weight_files()
    graph = ["model.onnx"] if backend == "onnx" else []  # the graph run in place of the weights
    assert [p.name for p in files] == ["model.safetensors", "config.json", *graph]
    assert all(p.is_file() for p in files)
    assert ScoreModel(model.net, model.config).weight_files() == []
