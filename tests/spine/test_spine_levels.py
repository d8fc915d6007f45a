"""Counting the bodies up from the sacrum (aacscore.spine.levels) on synthetic label maps."""

from __future__ import annotations

import numpy as np
import pytest

from aacscore.spine.levels import anchor_levels, count_from_sacrum, relabel_scores
from aacscore.vertebrae import LABEL_VALUES
from tests.spine.spine_synth import make_film

SHAPE = (240, 160)


def _logits(labels: np.ndarray) -> np.ndarray:
    return (np.eye(8, dtype=np.float32)[labels].transpose(2, 0, 1) * 8.0).astype(np.float32)


def _shift_up(labels: np.ndarray) -> np.ndarray:
    """The network's slip on a real flexion film: every body above L3 named one level too high
    (L2 called L1, L1 called T12) and T12 left out."""
    out = labels.copy()
    out[labels == LABEL_VALUES["T12"]] = 0
    out[labels == LABEL_VALUES["L1"]] = LABEL_VALUES["T12"]
    out[labels == LABEL_VALUES["L2"]] = LABEL_VALUES["L1"]
    return out


def test_correct_labels_are_counted_and_kept() -> None:
    film = make_film(3, shape=SHAPE)
    scores = _logits(film["labels"])
    count, _comp, bodies = count_from_sacrum(scores)
    assert count.counted and count.agrees and not count.relabelled
    assert count.anchored == ("L5", "L4", "L3", "L2", "L1", "T12") and len(bodies) == 6
    out, c2 = anchor_levels(scores)
    assert c2 == count and np.array_equal(out, scores)
    assert count.note() is None


@pytest.mark.parametrize("rotation", [0.0, 8.0, -8.0])
def test_a_slipped_labelling_is_recounted_from_the_sacrum(rotation: float) -> None:
    film = make_film(4, shape=SHAPE, rotation_deg=rotation)
    truth = film["labels"]
    scores = _logits(_shift_up(truth))
    out, count = anchor_levels(scores)
    assert count.counted and count.relabelled
    assert count.network[:4] == ("L5", "L4", "L3", "L1")
    note = count.note()
    assert note is not None and "L1->L2" in note and "T12->L1" in note
    arg = out.argmax(axis=0)
    for name in ("L1", "L2", "L3", "L4", "L5", "S1"):
        v = LABEL_VALUES[name]
        assert np.array_equal(arg == v, truth == v), name
    # the body-versus-background boundary is untouched
    assert np.array_equal(arg > 0, (scores.argmax(axis=0) > 0))


def test_mixed_labels_on_one_body_take_its_count() -> None:
    film = make_film(5, shape=SHAPE)
    lab = film["labels"].copy()
    l2 = np.nonzero(lab == LABEL_VALUES["L2"])
    top = l2[0] < np.percentile(l2[0], 70)
    lab[l2[0][top], l2[1][top]] = LABEL_VALUES["L1"]  # upper 70 % of L2 called L1
    out, count = anchor_levels(_logits(lab))
    assert count.relabelled and count.network[3] == "L1"
    arg = out.argmax(axis=0)
    for name in ("L1", "L2"):
        v = LABEL_VALUES[name]
        assert np.array_equal(arg == v, film["labels"] == v), name


def test_no_sacrum_means_no_count() -> None:
    film = make_film(6, shape=SHAPE, levels=("T12", "L1", "L2", "L3", "L4", "L5"))
    count, _, _ = count_from_sacrum(_logits(_shift_up(film["labels"])))
    assert not count.counted and count.reason == "no sacrum"
    out, _ = anchor_levels(_logits(_shift_up(film["labels"])))
    assert np.array_equal(out.argmax(axis=0), _shift_up(film["labels"]))


def test_merged_bodies_are_not_counted() -> None:
    film = make_film(7, shape=SHAPE)
    lab = _shift_up(film["labels"])
    # fill the L3/L4 disc: two bodies become one component twice the size
    rows = np.nonzero(np.isin(film["labels"], (LABEL_VALUES["L3"], LABEL_VALUES["L4"])))
    r0, r1 = rows[0].min(), rows[0].max()
    c0, c1 = np.percentile(rows[1], 20), np.percentile(rows[1], 80)
    sub = lab[r0 : r1 + 1, int(c0) : int(c1)]
    sub[sub == 0] = LABEL_VALUES["L3"]
    count, _, _ = count_from_sacrum(_logits(lab))
    assert not count.counted
    assert count.reason in (
        "bodies of irregular size (merged or split)",
        "irregular steps between bodies",
    )


def test_a_small_sacrum_does_not_anchor() -> None:
    film = make_film(8, shape=SHAPE)
    lab = _shift_up(film["labels"])
    s1 = np.nonzero(lab == LABEL_VALUES["S1"])
    keep = s1[0] < s1[0].min() + 2  # a two-row sliver
    lab[s1[0][~keep], s1[1][~keep]] = 0
    count, _, _ = count_from_sacrum(_logits(lab))
    assert not count.counted and count.reason == "sacrum too small"


def test_an_extra_body_above_t12_is_dropped_when_recounting() -> None:
    film = make_film(9, shape=SHAPE)
    truth = film["labels"]
    lab = _shift_up(truth)
    lab[truth == LABEL_VALUES["T12"]] = LABEL_VALUES["T12"]  # T12 kept, L1 also called T12
    # a seventh body above T12 (T11) labelled T12 as well
    rows, cols = np.nonzero(truth == LABEL_VALUES["T12"])
    h = rows.max() - rows.min() + 1
    gap = 5
    ok = rows - h - gap >= 0
    lab[rows[ok] - h - gap, cols[ok]] = LABEL_VALUES["T12"]
    out, count = anchor_levels(_logits(lab))
    assert count.relabelled and count.above_t12 == 1
    arg = out.argmax(axis=0)
    for name in ("T12", "L1", "L2"):
        v = LABEL_VALUES[name]
        assert np.array_equal(arg == v, truth == v), name


def test_relabel_checks_its_arguments() -> None:
    scores = _logits(make_film(2, shape=SHAPE)["labels"])
    with pytest.raises(ValueError, match="2 bodies but 1 names"):
        relabel_scores(scores, np.zeros(SHAPE, np.int32), [1, 2], ("L5",))
