"""The ``metrics.json`` content of a validation (keys in :mod:`aacscore.stats.validate`)."""

from __future__ import annotations

from typing import Any

from aacscore._files import json_safe
from aacscore._version import __version__
from aacscore.stats.bootstrap import BootstrapCI
from aacscore.stats.validate.compute import ValidationResult


def _ci_pair(b: BootstrapCI) -> list[float]:
    return [b.ci_low, b.ci_high]


def metrics_dict(result: ValidationResult) -> dict[str, Any]:
    """The ``metrics.json`` content (keys documented in :mod:`aacscore.stats.validate`)."""
    c = result.continuous
    d = result.data
    cat = result.categorical
    s = result.settings
    out: dict[str, Any] = {
        "aacscore_version": __version__,
        "n": d.n,
        "mae": c.mae.estimate,
        "mae_ci": _ci_pair(c.mae),
        "rmse": c.rmse.estimate,
        "rmse_ci": _ci_pair(c.rmse),
        "bias": c.bias.value,
        "bias_ci": [c.bias.ci_low, c.bias.ci_high],
        "sd_diff": c.sd_diff,
        "pearson_r": c.pearson.value,
        "pearson_ci": [c.pearson.ci_low, c.pearson.ci_high],
        "pearson_p": c.pearson.p,
        "spearman_rho": c.spearman.value,
        "spearman_ci": [c.spearman.ci_low, c.spearman.ci_high],
        "spearman_p": c.spearman.p,
        "ccc": c.ccc.value,
        "ccc_ci": [c.ccc.ci_low, c.ccc.ci_high],
        "ccc_precision": c.ccc.precision,
        "ccc_accuracy": c.ccc.accuracy,
        "bland_altman": c.bland_altman.as_dict(),
        "icc": result.icc.as_dict(),
        "icc_raters": list(result.icc.raters),
        "icc_readers": None if result.icc_readers is None else result.icc_readers.as_dict(),
        "readers": list(d.readers),
        "pairwise_mae": [{"a": a, "b": b, "mae": m} for a, b, m in result.pairwise_mae],
        "groups_definition": {
            "name": result.groups.name,
            "labels": list(result.groups.labels),
            "ranges": [list(r) for r in result.groups.ranges],
            "description": result.groups.describe(),
        },
        "kappa": {
            "unweighted": cat.kappa_unweighted.as_dict(),
            "linear": cat.kappa_linear.as_dict(),
            "quadratic": cat.kappa_quadratic.as_dict(),
        },
        "accuracy": cat.accuracy.as_dict(),
        "groups": {g.label: g.as_dict() for g in cat.categories},
        "confusion_matrix": cat.confusion.as_dict(),
        "segments": None
        if result.segments is None
        else {
            sa.segment: {
                "n": sa.n,
                "mae": sa.mae.estimate,
                "mae_ci": _ci_pair(sa.mae),
                "bias": sa.bias,
                "accuracy": sa.accuracy.as_dict(),
                "kappa_linear": sa.kappa_linear.as_dict(),
                "kappa_quadratic": sa.kappa_quadratic.as_dict(),
            }
            for sa in result.segments
        },
        "unmatched": {
            "n_pred_only": len(d.pred_only),
            "n_ref_only": len(d.ref_only),
            "pred_only": list(d.pred_only),
            "ref_only": list(d.ref_only),
        },
        "failed": {
            "n": len(d.failed),
            "cases": [
                {
                    "key": f.key,
                    "file": f.file,
                    "status": f.status,
                    "error": f.error,
                    "row": f.row,
                    "in_reference": inref,
                }
                for f, inref in zip(d.failed, d.failed_in_reference, strict=True)
            ],
        },
        "n_pred_rows": d.n_pred_rows,
        "n_ref_rows": d.n_ref_rows,
        "n_warning": d.n_warning,
        "n_low_confidence": d.n_low_confidence,
        "reference_source": d.reference_source,
        "warnings": list(result.warnings),
        "settings": {
            **result.inputs,
            "groups": result.groups.name,
            "confidence": s.confidence,
            "bootstrap_resamples": s.n_resamples,
            "bootstrap_method": str(s.ci_method),
            "bootstrap_seed": s.seed,
            "loa_ci_method": str(s.loa_ci_method),
            "loa_multiplier": c.bland_altman.multiplier,
        },
    }
    cleaned: dict[str, Any] = json_safe(out)
    return cleaned
