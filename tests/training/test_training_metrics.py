"""Agreement figures of the score benchmarks (aacscore.training.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from aacscore.training.metrics import integer_metrics, score_metrics


def test_integer_metrics_count_false_positives_on_aac0_films() -> None:
    m = integer_metrics([0, 2, 1, 5, 9], [0, 0, 0, 4, 12])
    assert m["aac0_films"] == 3
    assert m["false_positive_rate"] == pytest.approx(1 / 3)  # only the film read 2
    assert m["mae"] == pytest.approx((0 + 2 + 1 + 1 + 3) / 5)
    assert m["exact"] == pytest.approx(1 / 5) and m["within_1"] == pytest.approx(3 / 5)
    assert integer_metrics([3], [4])["false_positive_rate"] is None


def test_score_metrics_use_the_integer_grades() -> None:
    true_g = np.array([[0, 0, 0, 0, 0, 0, 0, 0], [1, 2, 3, 0, 0, 0, 0, 1]], dtype=float)
    # continuous readings: many small grades on the clean film (sum 2.4, integer 0)
    pred_g = np.array([[0.3] * 8, [0.6, 1.6, 2.4, 0.1, 0.2, 0.0, 0.0, 1.4]])
    m = score_metrics(pred_g.sum(axis=1), true_g.sum(axis=1), pred_g, true_g)
    assert m["segment_exact"]["overall"] == pytest.approx((8 + 7) / 16)  # 2.4 reads 2, not 3
    assert m["integer"]["false_positive_rate"] == 0.0
    assert m["integer"]["mae"] == pytest.approx((0 + 1) / 2)
    assert m["mae"] == pytest.approx((2.4 + abs(6.3 - 7)) / 2)


def test_a_total_only_models_integer_aac24_is_its_rounded_total() -> None:
    m = score_metrics([0.4, 1.5, 2.49, 6.6], [0, 0, 0, 7])
    assert m["integer"]["aac0_films"] == 3
    assert m["integer"]["false_positive_rate"] == pytest.approx(2 / 3)  # 1.5 -> 2; 2.49 -> 2
    assert m["integer"]["mae"] == pytest.approx((0 + 2 + 2 + 0) / 4)
