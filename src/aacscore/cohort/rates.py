"""Event rates per 1000 person-years, overall, by AAC group and by exposure."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aacscore.cohort.inputs import GROUP_BY, CohortData
from aacscore.cohort.options import TIME_UNITS, CohortOptions
from aacscore.cohort.survival import poisson_rate


def person_years(frame: pd.DataFrame, options: CohortOptions) -> float:
    """Total follow-up of ``frame`` in years."""
    return float(frame[options.time].sum()) * TIME_UNITS[options.time_unit]


def event_rates(
    frame: pd.DataFrame, options: CohortOptions, data: CohortData
) -> list[dict[str, Any]]:
    """Rates with exact Poisson 95 % CIs (``rates`` of ``cohort.json``)."""
    out: list[dict[str, Any]] = []
    strata: list[tuple[str, str, pd.Series]] = [
        ("overall", "all", pd.Series(True, index=frame.index))
    ]
    for lv in data.groups.labels:
        strata.append((GROUP_BY, lv, frame[data.group_column] == lv))
    if options.exposure:
        for code in (0, 1):
            strata.append((options.exposure, str(code), frame[options.exposure] == code))
    for by, lv, m in strata:
        sub = frame[m]
        if sub.empty:
            continue
        py = person_years(sub, options)
        events = int(sub[options.event].sum())
        rec: dict[str, Any] = {
            "by": by,
            "level": lv,
            "n": len(sub),
            "events": events,
            "person_years": py,
            "per": 1000.0,
        }
        if py > 0:
            r = poisson_rate(events, py, per=1000.0)
            rec.update(rate=r.rate, ci_low=r.ci_low, ci_high=r.ci_high)
        else:
            rec.update(rate=None, ci_low=None, ci_high=None)
        out.append(rec)
    return out
