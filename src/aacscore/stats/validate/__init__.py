"""``aacscore validate``: agreement of aacscore predictions with a reference reading.

* :mod:`~aacscore.stats.validate.inputs`: reading the prediction and reference CSVs (input
  format, :class:`ValidationInputError`); :mod:`~aacscore.stats.validate.join`: the case join.
* :mod:`~aacscore.stats.validate.settings`, :mod:`~aacscore.stats.validate.compute` and
  :mod:`~aacscore.stats.validate.segments`: the statistics.
* :mod:`~aacscore.stats.validate.metrics_json` and :mod:`~aacscore.stats.validate.report`:
  ``metrics.json`` and the Markdown/HTML report; :mod:`~aacscore.stats.validate.run`: the entry
  points :func:`run_validation` and :func:`validate`.

``metrics.json``
----------------
NaN/undefined values are written as ``null``. Intervals are two-sided at ``confidence`` (0.95).
An *estimate* object is ``{"value", "ci_low", "ci_high"}``; a *proportion* adds ``"successes"``
and ``"n"``; a *kappa* adds ``"se"`` and ``"weights"``.

=====================  ====================================================================
key                    meaning
=====================  ====================================================================
``aacscore_version``   version that wrote the file
``n``                  matched cases used in all statistics
``mae``, ``mae_ci``    mean absolute error of predicted vs reference AAC-24; ``[low, high]``
                       paired bootstrap CI (BCa, seeded; see ``settings``)
``rmse``, ``rmse_ci``  root mean squared error, bootstrap CI
``bias``, ``bias_ci``  mean of predicted - reference, t-based CI
``sd_diff``            SD of the differences
``pearson_r``,         Pearson r, Fisher-z CI, two-sided P
``pearson_ci``,
``pearson_p``
``spearman_rho``,      Spearman rho, CI by Fisher z with the Bonett-Wright variance, P (t
``spearman_ci``,       approximation, scipy)
``spearman_p``
``ccc``, ``ccc_ci``    Lin's concordance correlation coefficient, z-transform CI (Lin 1989)
``ccc_precision``,     Pearson r and bias-correction factor C_b (ccc = precision x accuracy)
``ccc_accuracy``
``bland_altman``       ``{n, bias, bias_ci_low, bias_ci_high, sd, multiplier, loa_low,
                       loa_low_ci_low, loa_low_ci_high, loa_high, loa_high_ci_low,
                       loa_high_ci_high, loa_ci_method, proportional_bias_slope (+ _ci_low,
                       _ci_high), proportional_bias_intercept (+ _ci_low, _ci_high),
                       proportional_bias_p}``; differences are predicted - reference
``icc``                ``{"ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)",
                       "ICC(3,k)"}`` -> ``{value, ci_low, ci_high, f, df1, df2, p}`` over the
                       raters in ``icc_raters`` (the reference or every reader, plus the model)
``icc_raters``         rater names of ``icc`` (``"model"`` last)
``icc_readers``        same mapping over the readers only (``null`` with fewer than 2 readers)
``readers``            reader column names (``[]`` without reader columns)
``pairwise_mae``       ``[{"a", "b", "mae"}]`` between all raters of ``icc``
``groups_definition``  ``{name, labels, ranges, description}`` of the severity groups
``kappa``              ``{"unweighted", "linear", "quadratic"}`` -> kappa object, Cohen's
                       kappa of the severity groups (Fleiss-Cohen-Everitt SE, CI clipped to
                       [-1, 1])
``accuracy``           proportion of cases in the same severity group (Wilson CI)
``groups``             group label -> ``{n_reference, n_predicted, tp, fp, fn, tn,
                       sensitivity, specificity, ppv, npv}`` (one-vs-rest, proportions with
                       Wilson CIs)
``confusion_matrix``   ``{labels, matrix, rows: "reference", columns: "predicted"}``
``segments``           ``null`` unless both files have the 8 grades; else segment name (and
                       ``"all"``: the 8 segments pooled) -> ``{n, mae, mae_ci, bias,
                       accuracy, kappa_linear, kappa_quadratic}``: MAE of the grades
                       (predicted grades as given), exact-grade accuracy and weighted kappa
                       on grades 0-3 (predicted grades rounded half up). Per segment: bootstrap
                       CI for MAE, Wilson for accuracy, Fleiss-Cohen-Everitt for kappa;
                       ``"all"``: every CI by a case-level (cluster) bootstrap
``unmatched``          ``{n_pred_only, n_ref_only, pred_only: [keys], ref_only: [keys]}``:
                       prediction rows without a reference row and vice versa
``failed``             ``{n, cases: [{key, file, status, error, row, in_reference}]}``:
                       prediction rows not ``ok``/``warning`` (``key`` is ``""`` when
                       the row has no value of the ``key_from`` UID column)
``n_pred_rows``,       data rows in each file; ``n_warning`` and ``n_low_confidence``: matched
``n_ref_rows``,        cases whose prediction has status ``warning`` / ``low_confidence``
``n_warning``,         true (they are used)
``n_low_confidence``
``reference_source``   ``"aac24"``, ``"segments"`` or ``"readers_mean"``
``warnings``           human-readable warnings (also logged)
``settings``           inputs, key columns (``pred_key``, ``ref_key``), the case key
                       (``key_from``: name, relpath, sop_uid, study_uid or accession;
                       ``root``: the absolute ``--root`` of relpath, else ``null``),
                       confidence, bootstrap settings, LoA CI method
=====================  ====================================================================
"""

from __future__ import annotations

from aacscore.stats.validate.compute import ValidationResult, compute_metrics
from aacscore.stats.validate.inputs import (
    FailedCase,
    PredictionTable,
    ReferenceTable,
    ValidationInputError,
    load_predictions,
    load_reference,
)
from aacscore.stats.validate.join import MatchedData, match_tables
from aacscore.stats.validate.metrics_json import metrics_dict
from aacscore.stats.validate.report import build_report
from aacscore.stats.validate.run import run_validation, validate, write_outputs
from aacscore.stats.validate.segments import SegmentAgreement
from aacscore.stats.validate.settings import ValidationSettings

__all__ = [
    "FailedCase",
    "MatchedData",
    "PredictionTable",
    "ReferenceTable",
    "SegmentAgreement",
    "ValidationInputError",
    "ValidationResult",
    "ValidationSettings",
    "build_report",
    "compute_metrics",
    "load_predictions",
    "load_reference",
    "match_tables",
    "metrics_dict",
    "run_validation",
    "validate",
    "write_outputs",
]
