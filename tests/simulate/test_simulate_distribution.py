"""Target distributions: population mostly low with a tail, balanced covering 0-24."""

from __future__ import annotations

import numpy as np
import pytest

from aacscore.simulate import simulate_case

N = 20
FAST = {"fov_width_mm": 150.0, "fov_height_mm": 250.0}


def _totals(distribution: str) -> list[int]:
    return [
        simulate_case(21, i, distribution=distribution, spacing_mm=0.35, **FAST).truth.aac24
        for i in range(N)
    ]


def test_population_mostly_low_and_balanced_covers_range() -> None:
    pop = np.array(_totals("population"))
    bal = np.array(_totals("balanced"))
    assert (pop == 0).mean() >= 0.25
    assert np.median(pop) <= 5
    assert np.median(bal) > np.median(pop)
    assert bal.max() >= 14 and (bal == 0).mean() <= 0.3
    assert len(set((bal // 5).tolist())) >= 4  # at least 4 of the 5 bands 0-4 .. 20-24


def test_mild_targets_the_group_cut_offs() -> None:
    from aacscore.simulate.calcification import sample_target

    rng = np.random.default_rng(0)
    targets = np.array([sample_target(rng, "mild") for _ in range(2000)])
    assert targets.min() == 0 and targets.max() == 8
    assert 0.15 < (targets == 0).mean() < 0.25
    assert 0.55 < ((targets >= 1) & (targets <= 4)).mean() < 0.65
    # rendered films follow their targets closely (truth is measured, never the target)
    mild = np.array(_totals("mild"))
    assert mild.max() <= 10 and np.median(mild) <= 5 and ((mild >= 1) & (mild <= 4)).mean() >= 0.4


@pytest.mark.parametrize("family", ["a", "b"])
def test_hard_negatives_read_zero_with_distractors_over_the_band(family: str) -> None:
    from aacscore.simulate.family_b import simulate_case_b

    sim = simulate_case if family == "a" else simulate_case_b
    for i in range(3):
        c = sim(33, i, distribution="negative", spacing_mm=0.35, **FAST)
        assert c.truth.aac24 == 0 and set(c.truth.grades) == {0}
        assert int(c.calc_mask.max()) == 0
        assert c.params["calcification"]["plaques"] == 0  # none outside the segments either
        hn = c.params["hard_negatives"]
        assert hn["gas_loops"] >= 2
        pts = np.asarray(hn["points_px"])
        walls = np.concatenate([c.walls["anterior"], c.walls["posterior"]])
        top = c.vertebrae["L1"][:, 1].min()
        bottom = c.vertebrae["L4"][:, 1].max()
        d = np.min(np.hypot(*(pts[:, None, :] - walls[None, :, :]).transpose(2, 0, 1)), axis=1)
        over = (d <= 20.0 / c.spacing_mm[0]) & (pts[:, 1] >= top) & (pts[:, 1] <= bottom)
        assert over.sum() >= 5, f"case {i}: {over.sum()} distractor points over the band"


def test_hard_negative_calcific_distractors_stay_off_the_walls() -> None:
    from aacscore.simulate.calcification import NEGATIVE_MIN_WALL_MM, plan_hard_negatives

    y = np.arange(-20.0, 200.0, 2.0)
    walls = {
        "posterior": np.stack([np.full_like(y, -5.0), y], axis=1),
        "anterior": np.stack([np.full_like(y, -30.0), y], axis=1),
    }
    wall_pts = np.concatenate(list(walls.values()))
    kinds: dict[str, int] = {}
    for seed in range(20):
        plan = plan_hard_negatives(np.random.default_rng(seed), walls, (0.0, 160.0))
        for k, v in plan.counts().items():
            kinds[k] = kinds.get(k, 0) + v
        calcific = [c for c, _, _ in (*plan.rings, *plan.dots)]
        calcific += [p for line, _, _ in plan.lines for p in line]
        for p in calcific:
            assert np.min(np.hypot(*(wall_pts - p).T)) >= NEGATIVE_MIN_WALL_MM - 1e-9
        # the gas is over the band: some colon centreline within the walls' 30 mm
        gas = np.concatenate([g[0] for g in plan.gas])
        assert np.any(np.abs(gas[:, 0] + 17.5) < 30.0)
    assert all(kinds[k] > 0 for k in kinds), kinds


def test_hard_negatives_refuse_a_nonzero_target() -> None:
    with pytest.raises(ValueError, match="AAC-24 0"):
        simulate_case(1, 0, distribution="negative", spacing_mm=0.35, target_aac24=4, **FAST)
