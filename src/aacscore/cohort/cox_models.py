"""The Cox models of a cohort analysis: their design, codings and fits."""

from __future__ import annotations

import logging
from enum import Enum

import numpy as np
import pandas as pd

from aacscore.cohort.design import check_collinearity, constant_within_strata, encode_columns
from aacscore.cohort.errors import CohortInputError
from aacscore.cohort.inputs import CohortData
from aacscore.cohort.options import CohortOptions, MatchedModel
from aacscore.cohort.survival import CoxModel, fit_cox, rescale_term

log = logging.getLogger(__name__)


class CoxCoding(str, Enum):
    """How a Cox model codes its key term: AAC per point, per SD, in groups, or the exposure."""

    PER_POINT = "per_point"
    PER_SD = "per_sd"
    GROUPS = "groups"
    EXPOSURE = "exposure"

    def __str__(self) -> str:
        return str(self.value)


ModelSpec = tuple[str, CoxCoding, list[str], list[str]]
"""Model name, coding, terms and the adjustment terms among them."""


def _cox_specs(
    options: CohortOptions, data: CohortData, frame: pd.DataFrame
) -> tuple[pd.DataFrame, list[ModelSpec]]:
    """The model design (numeric columns) and specs (name, coding, terms, adjusted_for)."""
    aac = options.aac
    labels = [lv for lv in data.groups.labels if (frame[data.group_column] == lv).any()]
    design = pd.DataFrame(index=frame.index)
    design[aac] = frame[aac].astype(np.float64)
    sd = float(frame[aac].std(ddof=1))
    per_sd = f"{aac} (per SD)"
    design[per_sd] = design[aac] / sd if sd > 0 else np.nan
    group_terms = []
    for lv in labels[1:]:
        t = f"{aac}[{lv}]"
        design[t] = (frame[data.group_column] == lv).astype(np.float64)
        group_terms.append(t)
    if options.exposure:
        design[options.exposure] = frame[options.exposure].astype(np.float64)
    adj_cols = [c for c in options.adjust if c != options.exposure]
    adj_design, _ = encode_columns(frame, adj_cols, file=data.file)
    adj_terms = list(adj_design.columns)
    if options.exposure and options.exposure in options.adjust:
        adj_terms = [options.exposure, *adj_terms]
    for c in adj_design.columns:
        design[c] = adj_design[c]
    specs: list[ModelSpec] = []
    codings = [
        ("AAC per point", CoxCoding.PER_POINT, [aac]),
        ("AAC per SD", CoxCoding.PER_SD, [per_sd]),
    ]
    if len(group_terms) >= 1:
        codings.append((f"AAC groups (vs {labels[0]})", CoxCoding.GROUPS, group_terms))
    for label, coding, terms in codings:
        specs.append((label, coding, terms, []))
        if adj_terms:
            specs.append((f"{label}, adjusted", coding, [*terms, *adj_terms], adj_terms))
    if options.exposure:
        e = options.exposure
        others = [t for t in adj_terms if t != e]
        specs.append((f"Exposure {e}", CoxCoding.EXPOSURE, [e], []))
        if others:
            specs.append((f"Exposure {e}, adjusted", CoxCoding.EXPOSURE, [e, *others], others))
    return design, specs


def fit_models(
    options: CohortOptions,
    data: CohortData,
    frame: pd.DataFrame,
    cohort: str,
    matched_sets: str | None,
    suffix: str,
    warnings_out: list[str],
) -> tuple[list[CoxModel], list[dict[str, str]]]:
    """Fit every model of :func:`_cox_specs` on ``frame``; return the fits and the skipped.

    ``matched_sets`` names the matched-set column (stratum or cluster, by
    ``options.matched_model``); ``suffix`` is appended to the model names; warnings (dropped
    covariates) are appended to ``warnings_out``.
    """
    design, specs = _cox_specs(options, data, frame)
    design["__time"] = frame[options.time].to_numpy()
    design["__event"] = frame[options.event].to_numpy()
    strata = matched_sets if options.matched_model == MatchedModel.STRATIFIED else None
    cluster = matched_sets if options.matched_model == MatchedModel.ROBUST else None
    if matched_sets:
        design[matched_sets] = frame[matched_sets].to_numpy()
    adj_all = [t for t in dict.fromkeys(t for spec in specs for t in spec[3])]
    dropped: list[str] = []
    if strata and adj_all:
        dropped = constant_within_strata(design[adj_all], design[strata])
        if dropped:
            msg = (
                f"{', '.join(dropped)}: constant within every matched set, so removed from "
                "the stratified models (already controlled by the matching)"
            )
            warnings_out.append(msg)
            log.info(msg)
    models: list[CoxModel] = []
    skipped: list[dict[str, str]] = []
    for name, coding, terms, adjusted in specs:
        terms = [t for t in terms if t not in dropped]
        adjusted = [t for t in adjusted if t not in dropped]
        if not terms or (coding == CoxCoding.EXPOSURE and options.exposure not in terms):
            continue
        full_name = f"{name}{suffix}"
        if coding == CoxCoding.PER_SD:
            # exp(beta * SD): identical to refitting on AAC / SD, without the refit.
            base = next(
                (
                    m
                    for m in models
                    if m.coding == CoxCoding.PER_POINT and list(m.adjusted_for) == adjusted
                ),
                None,
            )
            sd = float(frame[options.aac].std(ddof=1))
            if base is not None and sd > 0:
                models.append(
                    rescale_term(base, options.aac, sd, terms[0], name=full_name, coding=coding)
                )
            else:
                why = "its per-point model was not estimated" if sd > 0 else "AAC has SD 0"
                reason = f"model {full_name!r} not estimated: {why}"
                skipped.append({"name": full_name, "reason": reason})
            continue
        # Collinear covariates are an input error (raised); non-estimable fits are skipped.
        group_prefix = f"{options.aac}["
        check_collinearity(
            design[[t for t in terms if not t.startswith(group_prefix)]],
            strata=design[strata] if strata else None,
            file=data.file,
        )
        try:
            m = fit_cox(
                design,
                "__time",
                "__event",
                terms,
                name=full_name,
                strata=strata,
                cluster=cluster,
                file=data.file,
                cohort=cohort,
                coding=coding,
                adjusted_for=adjusted,
            )
        except CohortInputError as exc:
            skipped.append({"name": full_name, "reason": exc.problem})
            log.info("Cox model skipped: %s", exc.problem)
            continue
        models.append(m)
    return models, skipped


def is_key_term(model: CoxModel, term: str, options: CohortOptions) -> bool:
    """True for the AAC terms of AAC models and the exposure term of exposure models."""
    if model.coding == CoxCoding.EXPOSURE:
        return term == options.exposure
    a = options.aac
    return term in (a, f"{a} (per SD)") or term.startswith(f"{a}[")
