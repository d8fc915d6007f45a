"""Agreement statistics for validating AAC-24 scores against a reference reading.

* :mod:`aacscore.stats.agreement`: MAE, RMSE, bias, Pearson, Spearman, Lin's CCC, Bland-Altman.
* :mod:`aacscore.stats.icc`: the six Shrout & Fleiss intraclass correlations.
* :mod:`aacscore.stats.categorical`: confusion matrix, Wilson intervals, one-vs-rest
  sensitivity/specificity/PPV/NPV, Cohen's kappa (unweighted, linear, quadratic).
* :mod:`aacscore.stats.bootstrap`: seeded percentile/BCa bootstrap intervals.
* :mod:`aacscore.stats.validate`: the ``aacscore validate`` command (CSV join, metrics.json,
  report); :mod:`aacscore.stats.plots`: its figures.

All results are frozen dataclasses; every interval is two-sided (95 % unless asked otherwise).
"""

from __future__ import annotations

from aacscore.stats._common import Estimate
from aacscore.stats.agreement import (
    BlandAltman,
    ConcordanceCorrelation,
    ContinuousAgreement,
    Correlation,
    bland_altman,
    continuous_agreement,
    lins_ccc,
    mae,
    pearson,
    rmse,
    spearman,
)
from aacscore.stats.bootstrap import BootstrapCI, bootstrap_ci
from aacscore.stats.categorical import (
    CategoricalAgreement,
    CategoryMetrics,
    ConfusionMatrix,
    Kappa,
    Proportion,
    categorical_agreement,
    cohens_kappa,
    confusion_matrix,
    one_vs_rest,
    wilson_ci,
)
from aacscore.stats.icc import ICC_FORMS, ICCForm, ICCResult, icc
from aacscore.stats.validate import (
    ValidationInputError,
    ValidationResult,
    ValidationSettings,
    run_validation,
)

__all__ = [
    "ICC_FORMS",
    "BlandAltman",
    "BootstrapCI",
    "CategoricalAgreement",
    "CategoryMetrics",
    "ConcordanceCorrelation",
    "ConfusionMatrix",
    "ContinuousAgreement",
    "Correlation",
    "Estimate",
    "ICCForm",
    "ICCResult",
    "Kappa",
    "Proportion",
    "ValidationInputError",
    "ValidationResult",
    "ValidationSettings",
    "bland_altman",
    "bootstrap_ci",
    "categorical_agreement",
    "cohens_kappa",
    "confusion_matrix",
    "continuous_agreement",
    "icc",
    "lins_ccc",
    "mae",
    "one_vs_rest",
    "pearson",
    "rmse",
    "run_validation",
    "spearman",
    "wilson_ci",
]
