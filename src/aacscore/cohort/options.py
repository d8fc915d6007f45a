"""Column names and analysis choices of ``aacscore cohort``, and parsers of its list options."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from aacscore.keys import JoinKey, KeyFrom

TIME_UNITS: dict[str, float] = {
    "years": 1.0,
    "months": 1.0 / 12.0,
    "weeks": 7.0 / 365.25,
    "days": 1.0 / 365.25,
}
"""Years per unit of the follow-up time."""


class MatchedModel(str, Enum):
    """Cox models in a matched cohort: stratified by matched set, or a clustered variance."""

    STRATIFIED = "stratified"
    ROBUST = "robust"

    def __str__(self) -> str:
        return str(self.value)


MATCHED_MODELS: tuple[str, ...] = tuple(m.value for m in MatchedModel)


@dataclass(frozen=True)
class CohortOptions:
    """Column names and analysis choices of :func:`aacscore.cohort.run_cohort`.

    ``matched_model`` accepts a :class:`MatchedModel` or its value and is stored as the member.
    ``key_from`` and ``root`` choose how ``results`` is joined on ``key``
    (:class:`aacscore.keys.JoinKey`, built into ``join``; a bad choice raises
    :class:`aacscore.keys.CaseKeyError`, a ``ValueError``).
    """

    time: str
    event: str
    aac: str = "aac24"
    key: str | None = None
    results: str | Path | None = None
    exposure: str | None = None
    match_on: tuple[str, ...] = ()
    exact_on: tuple[str, ...] = ()
    ratio: int = 1
    caliper: float | None = 0.2
    adjust: tuple[str, ...] = ()
    groups: str = "lewis"
    competing: str | None = None
    time_unit: str = "years"
    horizons: tuple[float, ...] = ()
    matched_model: str | MatchedModel = MatchedModel.STRATIFIED
    key_from: str | KeyFrom = KeyFrom.NAME
    root: str | Path | None = None
    join: JoinKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        join = JoinKey(self.key_from, self.root)
        object.__setattr__(self, "key_from", join.kind)
        object.__setattr__(self, "join", join)
        try:
            object.__setattr__(self, "matched_model", MatchedModel(self.matched_model))
        except ValueError:
            raise ValueError(
                f"matched_model must be one of {', '.join(MATCHED_MODELS)}, "
                f"got {self.matched_model!r}"
            ) from None


def parse_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Comma-separated column names as a tuple (order kept, duplicates dropped)."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(dict.fromkeys(s.strip() for s in items if s.strip()))


def parse_horizons(value: str | None) -> tuple[float, ...]:
    """Comma-separated positive horizons (``"1,3,5"``)."""
    out = []
    for s in parse_list(value):
        try:
            h = float(s)
        except ValueError:
            raise ValueError(f"horizon {s!r} is not a number") from None
        if not h > 0:
            raise ValueError(f"horizons must be positive, got {s}")
        out.append(h)
    return tuple(out)
