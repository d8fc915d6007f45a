"""Validation figures render headless and handle undefined values."""

from __future__ import annotations

import numpy as np
import pytest

from aacscore.report import figure_from_matplotlib
from aacscore.stats.agreement import bland_altman
from aacscore.stats.categorical import confusion_matrix
from aacscore.stats.plots import (
    bland_altman_plot,
    confusion_matrix_plot,
    scatter_plot,
    segment_bars,
)


def test_figures_render_to_png() -> None:
    ref = np.array([0, 1, 2, 2, 5, 8, 13, 20], dtype=float)
    pred = ref + np.array([0.2, -0.1, 0.0, 0.0, 1.0, -0.5, 0.3, -2.0])
    figs = [
        scatter_plot(ref, pred),
        bland_altman_plot(pred, ref, bland_altman(pred, ref)),
        confusion_matrix_plot(confusion_matrix(["a", "b", "b"], ["a", "a", "b"], ["a", "b"])),
        segment_bars(
            ["L1_anterior", "L1_posterior"],
            [(0.2, 0.1, 0.3), (0.1, 0.05, 0.2)],
            [(0.9, 0.8, 0.95), (1.0, 0.9, 1.0)],
            [(0.8, 0.6, 0.9), (float("nan"), float("nan"), float("nan"))],
        ),
    ]
    for i, fig in enumerate(figs):
        png = figure_from_matplotlib(fig, f"f{i}", "caption").png
        assert png.startswith(b"\x89PNG") and len(png) > 2000
    # the undefined kappa is labelled, not drawn
    texts = [t.get_text() for t in figs[3].axes[2].texts]
    assert "n/a" in texts


def test_segment_bars_needs_one_value_per_segment() -> None:
    with pytest.raises(ValueError, match="one"):
        segment_bars(["a", "b"], [(1, 0, 2)], [(1, 0, 2)], [(1, 0, 2)])
