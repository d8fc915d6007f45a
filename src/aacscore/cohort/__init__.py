"""Cohort outcome analysis: AAC and events (e.g. MACE) with matching, KM, log-rank and Cox.

- :mod:`aacscore.cohort.simulate`: synthetic cohort with known hazard ratios.
- :mod:`aacscore.cohort.matching`: propensity-score matching and covariate balance.
- :mod:`aacscore.cohort.survival`: rates, Kaplan-Meier, log-rank, Aalen-Johansen, Cox.
- :mod:`aacscore.cohort.options` and :mod:`aacscore.cohort.inputs`: the command's options and
  the cohort table (loading, validation, the ``--results`` join).
- :mod:`aacscore.cohort.analysis`: the analysis run (``cohort.json`` keys documented there),
  with :mod:`aacscore.cohort.cox_models`, :mod:`aacscore.cohort.rates` and
  :mod:`aacscore.cohort.summary`.
- :mod:`aacscore.cohort.report` and :mod:`aacscore.cohort.plots`: the report and its figures;
  :mod:`aacscore.cohort.run`: the entry points :func:`run_cohort` and :func:`write_outputs`.
"""

from __future__ import annotations

from aacscore.cohort.analysis import CohortResult, analyse_cohort
from aacscore.cohort.cox_models import CoxCoding
from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.inputs import CohortData, load_cohort
from aacscore.cohort.matching import MatchResult, fit_logistic, propensity_match
from aacscore.cohort.options import CohortOptions, MatchedModel
from aacscore.cohort.report import build_report
from aacscore.cohort.run import run_cohort, write_outputs
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
    "CoxCoding",
    "CoxModel",
    "CoxTerm",
    "MatchResult",
    "MatchedModel",
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
