from __future__ import annotations

import math

import pytest
import torch

from aacscore.score.network import (
    HEADS,
    NetworkConfig,
    ScoreNet,
    Targets,
    count_parameters,
    decode_ordinal,
    ordinal_targets,
    score_loss,
)


@pytest.mark.parametrize("head", HEADS)
def test_forward_shapes_each_head(head: str) -> None:
    net = ScoreNet(NetworkConfig(head=head)).eval()
    with torch.no_grad():
        out = net(torch.randn(3, 1, 128, 128))
    assert out["total"].shape == (3,)
    assert torch.all((out["total"] >= 0) & (out["total"] <= 24))
    if head == "total":
        assert "grades" not in out and "fractions" not in out
        assert out["raw"].shape == (3, 1)
    else:
        assert out["grades"].shape == (3, 8)
        assert torch.all((out["grades"] >= 0) & (out["grades"] <= 3))
        torch.testing.assert_close(out["total"], out["grades"].sum(1))
        assert out["fractions"].shape == (3, 8)
    if head == "ordinal":
        assert out["logits"].shape == (3, 8, 3)
    # Small: well under 3 MB in fp16.
    assert count_parameters(net) * 2 < 3e6


def test_network_config_round_trip_and_errors() -> None:
    cfg = NetworkConfig(head="ordinal", layers=(1, 1, 1, 1))
    assert NetworkConfig.from_dict(cfg.as_dict()) == cfg
    with pytest.raises(ValueError, match="head"):
        NetworkConfig(head="softmax")
    assert not NetworkConfig(head="total").has_fractions


def test_ordinal_thresholds_are_ordered_and_decoding() -> None:
    net = ScoreNet(NetworkConfig(head="ordinal"))
    with torch.no_grad():
        net.thresh_gaps.copy_(torch.randn(8, 2) * 3)  # type: ignore[union-attr]
    th = net.thresholds()
    assert torch.all(th[:, 1:] < th[:, :-1])
    logits = torch.tensor([[10.0, 10.0, -10.0], [-10.0, -10.0, -10.0], [0.0, 0.0, 0.0]])
    expected, rank = decode_ordinal(logits)
    torch.testing.assert_close(expected, torch.tensor([2.0, 0.0, 1.5]), atol=1e-3, rtol=0)
    assert rank.tolist() == [2, 0, 0]
    t = ordinal_targets(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert t.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]
    with pytest.raises(RuntimeError, match="ordinal"):
        ScoreNet(NetworkConfig(head="segments")).thresholds()


def _targets(b: int, grades: bool = True, fractions: bool = True) -> Targets:
    g = torch.randint(0, 4, (b, 8)).float()
    nan = torch.full((b, 8), math.nan)
    return Targets(
        grades=g if grades else nan,
        total=g.sum(1),
        fractions=g / 3 if fractions else nan,
    )


@pytest.mark.parametrize("head", HEADS)
def test_loss_is_finite_and_masks_unknown_targets(head: str) -> None:
    net = ScoreNet(NetworkConfig(head=head))
    out = net(torch.randn(2, 1, 128, 128))
    loss, parts = score_loss(out, _targets(2), head)
    assert torch.isfinite(loss) and loss > 0
    assert parts["loss"] == pytest.approx(float(loss.detach()))
    if head != "total":
        assert "fractions" in parts
        # No fractions: auxiliary term skipped, loss still defined.
        loss2, parts2 = score_loss(out, _targets(2, fractions=False), head)
        assert "fractions" not in parts2 and torch.isfinite(loss2)
        with pytest.raises(ValueError, match="only totals"):
            score_loss(out, _targets(2, grades=False), head)
    else:
        loss.backward()
