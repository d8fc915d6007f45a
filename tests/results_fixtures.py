"""A fully populated scored result shared by the results and CSV-writer tests."""

from __future__ import annotations

from aacscore.kauppila import SEGMENTS
from aacscore.results import Result, Status


def ok_result(name: str, status: Status = Status.OK) -> Result:
    """A scored result with every column set (grades 0.40625, AAC-24 3.25, two QC flags)."""
    return Result(
        file=name,
        status=status,
        aac24=3.25,
        aac24_sd=0.4,
        grades=dict.fromkeys(SEGMENTS, 0.40625),
        aac8=1.0,
        group="moderate",
        low_confidence=False,
        orientation="left",
        spacing_mm=0.2,
        qc_flags=("a", "b"),
    )
