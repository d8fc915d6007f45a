"""Kauppila AAC-24 and Schousboe AAC-8 rules, and severity groups.

This is the single place where the scoring protocol lives; every other part of aacscore
(simulator ground truth, model heads, reports, statistics) imports it.

AAC-24 (Kauppila et al., Atherosclerosis 1997): the anterior and posterior aortic walls in front
of L1-L4 give 8 segments, each bounded by the midpoints of the intervertebral spaces above and
below the vertebra. Each segment is graded from the calcified fraction ``f`` of its wall length:
0 if ``f == 0``, 1 if ``0 < f <= 1/3``, 2 if ``1/3 < f <= 2/3``, 3 if ``f > 2/3``.
The total is 0-24.

AAC-8 (Schousboe et al., J Bone Miner Res 2007): per wall, the total calcified length along
L1-L4 in units of vertebral height is scored 0 (none), 1 (<= 1), 2 (<= 2), 3 (<= 3), 4 (> 3);
the sum over both walls is 0-8.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

LEVELS: tuple[str, ...] = ("L1", "L2", "L3", "L4")
WALLS: tuple[str, ...] = ("anterior", "posterior")
SEGMENTS: tuple[str, ...] = tuple(f"{lv}_{w}" for lv in LEVELS for w in WALLS)
"""The 8 Kauppila segments in canonical order: L1_anterior, L1_posterior, ..., L4_posterior."""

MAX_GRADE = 3
MAX_AAC24 = 3 * len(SEGMENTS)
MAX_AAC8 = 8

_ONE_THIRD = Fraction(1, 3)
_TWO_THIRDS = Fraction(2, 3)


def grade_from_fraction(fraction: float) -> int:
    """Kauppila grade (0-3) of one segment from its calcified fraction of wall length.

    Boundaries are inclusive on the upper side: exactly 1/3 is grade 1, exactly 2/3 is grade 2.
    Comparison is exact for values given as :class:`fractions.Fraction` and uses a tolerance of
    1e-9 for floats so that ``1/3`` computed in floating point still counts as one third.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, Fraction)):
        raise TypeError(f"fraction must be a number, got {type(fraction).__name__}")
    if isinstance(fraction, float) and not math.isfinite(fraction):
        raise ValueError(f"fraction must be finite, got {fraction}")
    if fraction < 0 or fraction > 1 + 1e-9:
        raise ValueError(f"calcified fraction must lie in [0, 1], got {fraction}")
    if fraction == 0:
        return 0
    eps = 0 if isinstance(fraction, (int, Fraction)) else 1e-9
    if fraction <= _ONE_THIRD + eps:
        return 1
    if fraction <= _TWO_THIRDS + eps:
        return 2
    return 3


def aac8_wall_score(length_in_vertebral_heights: float) -> int:
    """Schousboe AAC-8 score (0-4) of one wall from its calcified length in vertebral heights."""
    x = float(length_in_vertebral_heights)
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"calcified length must be a finite non-negative number, got {x}")
    if x == 0:
        return 0
    for score, upper in ((1, 1.0), (2, 2.0), (3, 3.0)):
        if x <= upper + 1e-9:
            return score
    return 4


def aac24_total(grades: Mapping[str, float] | Sequence[float]) -> float:
    """Sum of the 8 segment grades (ints give the AAC-24 score; floats a continuous total)."""
    values = _segment_values(grades)
    return sum(values)


def _segment_values(grades: Mapping[str, float] | Sequence[float]) -> list[float]:
    if isinstance(grades, Mapping):
        missing = [s for s in SEGMENTS if s not in grades]
        if missing:
            raise ValueError(f"missing segment grades: {', '.join(missing)}")
        values = [grades[s] for s in SEGMENTS]
    else:
        values = list(grades)
        if len(values) != len(SEGMENTS):
            raise ValueError(f"expected {len(SEGMENTS)} segment grades, got {len(values)}")
    for s, v in zip(SEGMENTS, values, strict=True):
        if not (0 <= v <= MAX_GRADE):
            raise ValueError(f"grade of {s} must lie in [0, {MAX_GRADE}], got {v}")
    return values


INTEGER_THRESHOLDS: tuple[float, float, float] = (0.5, 1.5, 2.5)
"""Continuous segment grade at or above which the integer grade is 1, 2, 3 (the rule chosen on
the development films, see :func:`integer_grade`)."""


def integer_grade(grade: float, thresholds: Sequence[float] = INTEGER_THRESHOLDS) -> int:
    """The integer Kauppila grade (0-3) of a continuous segment grade: the number of
    ``thresholds`` it reaches."""
    if not (0 <= grade <= MAX_GRADE):
        raise ValueError(f"grade must lie in [0, {MAX_GRADE}], got {grade}")
    if len(thresholds) != MAX_GRADE or list(thresholds) != sorted(thresholds):
        raise ValueError(f"expected {MAX_GRADE} increasing thresholds, got {tuple(thresholds)}")
    return sum(1 for t in thresholds if grade >= t)


def integer_grades(
    grades: Mapping[str, float] | Sequence[float], thresholds: Sequence[float] = INTEGER_THRESHOLDS
) -> tuple[int, ...]:
    """Integer grades of the 8 segments (:data:`SEGMENTS` order); their sum is the integer
    AAC-24 that readers compare."""
    return tuple(integer_grade(v, thresholds) for v in _segment_values(grades))


def round_half_up(x: float) -> int:
    """Round to the nearest integer with halves going up (2.5 -> 3), unlike Python's round()."""
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class SeverityGroups:
    """Severity groups of the AAC-24 total, defined by inclusive upper bounds.

    ``upper_bounds=(1, 5)`` means groups 0-1, 2-5 and >= 6. A continuous predicted total is first
    rounded half up (1.5 -> 2), then placed in its group.
    """

    name: str
    upper_bounds: tuple[int, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        b = self.upper_bounds
        if not b:
            raise ValueError("severity groups need at least one cut-off")
        if any(not isinstance(x, int) for x in b):
            raise ValueError(f"cut-offs must be integers, got {b}")
        if any(x < 0 or x >= MAX_AAC24 for x in b):
            raise ValueError(f"cut-offs must lie in 0..{MAX_AAC24 - 1}, got {b}")
        if any(b2 <= b1 for b1, b2 in itertools.pairwise(b)):
            raise ValueError(f"cut-offs must be strictly increasing, got {b}")
        if len(self.labels) != len(b) + 1:
            raise ValueError(f"need {len(b) + 1} labels for {len(b)} cut-offs, got {self.labels}")

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        """Inclusive (low, high) integer range of each group."""
        lows = (0, *(x + 1 for x in self.upper_bounds))
        highs = (*self.upper_bounds, MAX_AAC24)
        return tuple(zip(lows, highs, strict=True))

    def index(self, total: float) -> int:
        """Index of the group holding ``total`` (continuous totals rounded half up first)."""
        t = float(total)
        if not math.isfinite(t):
            raise ValueError(f"total must be finite, got {total}")
        r = min(max(round_half_up(t), 0), MAX_AAC24)
        for i, upper in enumerate(self.upper_bounds):
            if r <= upper:
                return i
        return len(self.upper_bounds)

    def label(self, total: float) -> str:
        """Name of the group holding ``total``."""
        return self.labels[self.index(total)]

    def describe(self) -> str:
        """Human-readable description, e.g. ``low 0-1, moderate 2-5, high >=6``."""
        parts = []
        for lab, (lo, hi) in zip(self.labels, self.ranges, strict=True):
            rng = f">={lo}" if hi == MAX_AAC24 else (f"{lo}" if lo == hi else f"{lo}-{hi}")
            parts.append(f"{lab} {rng}")
        return ", ".join(parts)


PRESET_GROUPS: dict[str, SeverityGroups] = {
    # Lewis et al. 2015 (and NHANES, UK Biobank ML-AAC24): low 0-1, moderate 2-5, high >= 6.
    "lewis": SeverityGroups("lewis", (1, 5), ("low", "moderate", "high")),
    # Common in CKD / dialysis cohorts: none/mild 0-4, moderate 5-15, severe >= 16.
    "ckd": SeverityGroups("ckd", (4, 15), ("none/mild", "moderate", "severe")),
}
DEFAULT_GROUPS = "lewis"


def parse_groups(spec: str | SeverityGroups | None = None) -> SeverityGroups:
    """Severity groups from a preset name (``lewis``, ``ckd``) or cut-offs like ``"0,4,15"``.

    Custom cut-offs are the inclusive upper bounds of every group but the last; the groups are
    labelled by their ranges (``"0"``, ``"1-4"``, ``"5-15"``, ``">=16"``).
    """
    if spec is None:
        spec = DEFAULT_GROUPS
    if isinstance(spec, SeverityGroups):
        return spec
    key = spec.strip().lower()
    if key in PRESET_GROUPS:
        return PRESET_GROUPS[key]
    try:
        bounds = tuple(int(p) for p in key.split(",") if p.strip() != "")
    except ValueError:
        raise ValueError(
            f"invalid severity groups {spec!r}: use a preset ({', '.join(PRESET_GROUPS)}) "
            "or comma-separated integer cut-offs such as 0,4,15"
        ) from None
    lows = (0, *(x + 1 for x in bounds))
    highs = (*bounds, MAX_AAC24)
    labels = tuple(
        f">={lo}" if hi == MAX_AAC24 else (f"{lo}" if lo == hi else f"{lo}-{hi}")
        for lo, hi in zip(lows, highs, strict=True)
    )
    return SeverityGroups(f"custom:{','.join(map(str, bounds))}", bounds, labels)


@dataclass(frozen=True)
class KauppilaScore:
    """A complete Kauppila reading: 8 segment grades, AAC-24, AAC-8 and the severity group."""

    grades: tuple[int, ...]
    aac8: int | None
    group: str
    groups_name: str = DEFAULT_GROUPS

    def __post_init__(self) -> None:
        _segment_values(list(self.grades))
        if any(not isinstance(g, int) for g in self.grades):
            raise ValueError(f"Kauppila grades must be integers, got {self.grades}")
        if self.aac8 is not None and not (0 <= self.aac8 <= MAX_AAC8):
            raise ValueError(f"AAC-8 must lie in 0..{MAX_AAC8}, got {self.aac8}")

    @property
    def aac24(self) -> int:
        """AAC-24 total, 0-24."""
        return sum(self.grades)

    def as_dict(self) -> dict[str, int | str | None]:
        """Flat mapping of segment names, ``aac24``, ``aac8`` and ``group``."""
        out: dict[str, int | str | None] = dict(zip(SEGMENTS, self.grades, strict=True))
        out["aac24"] = self.aac24
        out["aac8"] = self.aac8
        out["group"] = self.group
        return out


def score_from_measurements(
    fractions: Mapping[str, float],
    wall_lengths_in_vertebral_heights: Mapping[str, float] | None = None,
    groups: str | SeverityGroups | None = None,
) -> KauppilaScore:
    """Full Kauppila reading from measured calcified fractions of the 8 segments.

    ``wall_lengths_in_vertebral_heights`` maps ``"anterior"`` and ``"posterior"`` to the total
    calcified length along L1-L4 of that wall in vertebral-height units (for AAC-8).
    """
    missing = [s for s in SEGMENTS if s not in fractions]
    if missing:
        raise ValueError(f"missing segment fractions: {', '.join(missing)}")
    grades = tuple(grade_from_fraction(fractions[s]) for s in SEGMENTS)
    aac8: int | None = None
    if wall_lengths_in_vertebral_heights is not None:
        aac8 = sum(aac8_wall_score(wall_lengths_in_vertebral_heights[w]) for w in WALLS)
    g = parse_groups(groups)
    return KauppilaScore(grades=grades, aac8=aac8, group=g.label(sum(grades)), groups_name=g.name)


def segment(level: str, wall: str) -> str:
    """Segment name for a level (L1-L4) and wall (anterior/posterior)."""
    name = f"{level}_{wall}"
    if name not in SEGMENTS:
        raise ValueError(f"unknown Kauppila segment {name!r}")
    return name
