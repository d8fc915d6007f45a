"""Cohort outcome analysis: AAC and events (e.g. MACE) with matching, KM, log-rank and Cox.

- :mod:`aacscore.cohort.simulate`: synthetic cohort with known hazard ratios.
- :mod:`aacscore.cohort.matching`: propensity-score matching and covariate balance.
- :mod:`aacscore.cohort.survival`: rates, Kaplan-Meier, log-rank, Aalen-Johansen, Cox.
- :mod:`aacscore.cohort.analysis`: the ``aacscore cohort`` command's logic, ``cohort.json``
  (keys documented there) and the report.
- :mod:`aacscore.cohort.plots`: figures.
"""

from __future__ import annotations

from aacscore.cohort.analysis import (
    CohortData,
    CohortOptions,
    CohortResult,
    analyse_cohort,
    build_report,
    load_cohort,
    run_cohort,
    write_outputs,
)
from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.matching import MatchResult, fit_logistic, propensity_match
from aacscore.cohort.simulate import CohortTruth, simulate_cohort, write_simulated_cohort
from aacscore.cohort.survival import (
    CoxModel,
    CoxTerm,
    Rate,
    fit_cox,
    kaplan_meier,
    logrank_tests,
    poisson_rate,
)

__all__ = [
    "CohortData",
    "CohortInputError",
    "CohortOptions",
    "CohortResult",
    "CohortTruth",
    "CoxModel",
    "CoxTerm",
    "MatchResult",
    "Rate",
    "analyse_cohort",
    "build_report",
    "fit_cox",
    "fit_logistic",
    "kaplan_meier",
    "load_cohort",
    "logrank_tests",
    "poisson_rate",
    "propensity_match",
    "run_cohort",
    "simulate_cohort",
    "write_outputs",
    "write_simulated_cohort",
]
