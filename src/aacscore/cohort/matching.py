"""Propensity-score matching (1:k nearest neighbour, caliper, exact) and covariate balance.

The propensity score is the fitted probability of exposure from a logistic model on the chosen
covariates, fitted by Newton-Raphson (IRLS) with step halving. Matching is greedy nearest
neighbour on the logit of the propensity score without replacement: exposed patients are taken
in descending order of propensity score (the hardest to match first); in round ``r = 1..k`` each
still-matched exposed patient takes the nearest unused unexposed patient with the same values of
the exact-matching columns whose logit differs by at most the caliper. Exposed patients without a
first match are dropped; the rest keep the controls they found (usually exactly ``k``). The
default caliper is 0.2 of the pooled SD of the logit (Austin, Pharm Stat 2011;10:150-161).

Standardised mean differences (Austin, Stat Med 2009;28:3083-3107): for continuous covariates
``(m1 - m0) / sqrt((s1^2 + s0^2) / 2)``; for binary ones (and each dummy of a categorical one)
``(p1 - p0) / sqrt((p1 (1 - p1) + p0 (1 - p0)) / 2)``. After matching, controls are weighted
``1 / (number of controls in their matched set)`` so that variable-ratio sets count equally.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from aacscore.cohort.design import check_collinearity, encode_columns, is_binary
from aacscore.cohort.errors import CohortInputError

log = logging.getLogger(__name__)

MATCH_ID = "match_id"
"""Column of the matched table holding the 1-based matched-set number."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LogisticFit:
    """A fitted logistic regression: intercept first, then one coefficient per column."""

    names: tuple[str, ...]
    coef: tuple[float, ...]
    converged: bool
    iterations: int

    def linear_predictor(self, x: FloatArray) -> FloatArray:
        """``intercept + x @ beta`` for a design without the intercept column."""
        b = np.asarray(self.coef, dtype=np.float64)
        out: FloatArray = b[0] + x @ b[1:]
        return out


def fit_logistic(
    x: FloatArray,
    y: npt.ArrayLike,
    names: Sequence[str] | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
    ridge: float = 1e-8,
) -> LogisticFit:
    """Maximum-likelihood logistic regression by Newton-Raphson with step halving.

    ``x`` has no intercept column (one is added). Columns are standardised internally for
    numerical stability and the coefficients returned on the original scale. A tiny ridge
    keeps the Hessian invertible under (quasi-)separation; ``converged`` reports success.
    """
    x = np.asarray(x, dtype=np.float64)
    yv = np.asarray(y, dtype=np.float64)
    n, p = x.shape
    if names is None:
        names = [f"x{j}" for j in range(p)]
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    z = np.column_stack([np.ones(n), (x - mu) / sd])
    beta = np.zeros(p + 1)
    ybar = float(np.clip(yv.mean(), 1e-6, 1 - 1e-6))
    beta[0] = math.log(ybar / (1 - ybar))
    penalty = np.full(p + 1, ridge)
    penalty[0] = 0.0

    def loglik(b: FloatArray) -> float:
        eta = z @ b
        return float(np.sum(yv * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(penalty * b * b))

    ll = loglik(beta)
    converged = False
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        eta = z @ beta
        prob = 1.0 / (1.0 + np.exp(-eta))
        w = prob * (1.0 - prob)
        grad = z.T @ (yv - prob) - penalty * beta
        hess = (z * w[:, None]).T @ z + np.diag(penalty + 1e-12)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while True:
            cand = beta + t * step
            ll_new = loglik(cand)
            if ll_new >= ll - 1e-12 or t < 1e-8:
                break
            t /= 2.0
        beta, ll_old, ll = cand, ll, ll_new
        if abs(ll - ll_old) < tol * (abs(ll) + 1.0) and float(np.max(np.abs(t * step))) < 1e-6:
            converged = True
            break
    coef = beta[1:] / sd
    intercept = beta[0] - float(np.sum(coef * mu))
    return LogisticFit(
        names=tuple(names),
        coef=(float(intercept), *(float(c) for c in coef)),
        converged=converged,
        iterations=iterations,
    )


@dataclass(frozen=True)
class BalanceRow:
    """Balance of one covariate term between exposed (1) and unexposed (0)."""

    covariate: str
    kind: str  # "binary" or "continuous"
    mean_exposed_before: float
    mean_unexposed_before: float
    smd_before: float
    mean_exposed_after: float | None = None
    mean_unexposed_after: float | None = None
    smd_after: float | None = None


def _wmean_var(x: FloatArray, w: FloatArray) -> tuple[float, float]:
    v1 = float(w.sum())
    m = float(np.sum(w * x) / v1)
    v2 = float(np.sum(w * w))
    denom = v1 - v2 / v1
    var = float(np.sum(w * (x - m) ** 2) / denom) if denom > 0 else 0.0
    return m, var


def standardized_difference(
    x: FloatArray,
    exposed: npt.NDArray[np.bool_],
    weights: FloatArray | None = None,
    binary: bool | None = None,
) -> tuple[float, float, float]:
    """(mean exposed, mean unexposed, SMD) with the continuous or binary formula."""
    x = np.asarray(x, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    if binary is None:
        binary = is_binary(x)
    m1, v1 = _wmean_var(x[exposed], w[exposed])
    m0, v0 = _wmean_var(x[~exposed], w[~exposed])
    if binary:
        v1, v0 = m1 * (1 - m1), m0 * (1 - m0)
    pooled = math.sqrt((v1 + v0) / 2.0)
    if pooled == 0:
        smd = 0.0 if m1 == m0 else math.copysign(math.inf, m1 - m0)
    else:
        smd = (m1 - m0) / pooled
    return m1, m0, smd


def balance_table(
    design: pd.DataFrame,
    exposed: pd.Series,
    matched_index: pd.Index | None = None,
    matched_weights: pd.Series | None = None,
) -> list[BalanceRow]:
    """SMD of every design column before matching and (when given) in the matched set."""
    e = exposed.to_numpy().astype(bool)
    rows: list[BalanceRow] = []
    for col in design.columns:
        x = design[col].to_numpy(dtype=np.float64)
        binary = is_binary(x)
        m1, m0, smd = standardized_difference(x, e, binary=binary)
        after: tuple[float | None, float | None, float | None] = (None, None, None)
        if matched_index is not None:
            xm = design.loc[matched_index, col].to_numpy(dtype=np.float64)
            em = exposed.loc[matched_index].to_numpy().astype(bool)
            wm = None if matched_weights is None else matched_weights.loc[matched_index].to_numpy()
            after = standardized_difference(xm, em, weights=wm, binary=binary)
        rows.append(
            BalanceRow(
                covariate=str(col),
                kind="binary" if binary else "continuous",
                mean_exposed_before=m1,
                mean_unexposed_before=m0,
                smd_before=smd,
                mean_exposed_after=after[0],
                mean_unexposed_after=after[1],
                smd_after=after[2],
            )
        )
    return rows


@dataclass(frozen=True, eq=False)
class MatchResult:
    """A matched set and how it was obtained.

    ``matched`` holds the matched rows of the input (original index) with the added columns
    ``match_id`` (1-based matched-set number), ``propensity_score``, ``ps_logit`` and
    ``match_weight`` (1 for exposed, 1/number of controls in the set for unexposed).
    """

    matched: pd.DataFrame
    propensity_model: LogisticFit
    ratio: int
    caliper_sd: float | None
    caliper_width: float | None
    exact_on: tuple[str, ...]
    covariates: tuple[str, ...]
    n_exposed: int
    n_unexposed: int
    n_exposed_matched: int
    n_unexposed_matched: int
    n_incomplete_sets: int
    balance: tuple[BalanceRow, ...]

    @property
    def n(self) -> int:
        """Number of matched patients."""
        return len(self.matched)


def propensity_match(
    df: pd.DataFrame,
    exposure: str,
    covariates: Sequence[str],
    *,
    ratio: int = 1,
    caliper: float | None = 0.2,
    exact_on: Sequence[str] = (),
    balance_columns: Sequence[str] | None = None,
    file: str | Path | None = None,
) -> MatchResult:
    """1:``ratio`` nearest-neighbour propensity-score matching without replacement.

    ``df[exposure]`` must be 0/1. ``caliper`` is in SDs of the logit of the propensity score
    (None or 0: no caliper). ``balance_columns`` (default: covariates + exact_on) are the
    covariates of the balance table.
    """
    if ratio < 1:
        raise CohortInputError(f"matching ratio must be >= 1, got {ratio}", file=file)
    if not covariates:
        raise CohortInputError("propensity matching needs at least one covariate", file=file)
    df = df.reset_index(drop=True)
    exposed = df[exposure].astype(int)
    if not set(exposed.unique()) <= {0, 1}:
        raise CohortInputError("exposure must be coded 0/1", file=file, column=exposure)
    n1 = int(exposed.sum())
    n0 = len(exposed) - n1
    if n1 == 0 or n0 == 0:
        raise CohortInputError(
            f"matching needs both exposure groups; found {n1} exposed and {n0} unexposed",
            file=file,
            column=exposure,
        )
    if n0 < n1 * ratio:
        log.warning(
            "only %d unexposed for %d exposed at 1:%d; some exposed will stay unmatched",
            n0,
            n1,
            ratio,
        )
    design, _ = encode_columns(df, covariates, file=file)
    check_collinearity(design, file=file)
    fit = fit_logistic(
        design.to_numpy(dtype=np.float64),
        exposed.to_numpy(dtype=np.float64),
        names=list(design.columns),
    )
    if not fit.converged:
        log.warning("propensity model did not converge (possible separation)")
    logit = fit.linear_predictor(design.to_numpy())
    logit = np.clip(logit, -30.0, 30.0)
    ps = 1.0 / (1.0 + np.exp(-logit))
    e = exposed.to_numpy().astype(bool)
    width: float | None = None
    if caliper is not None and caliper > 0:
        pooled_sd = math.sqrt((np.var(logit[e], ddof=1) + np.var(logit[~e], ddof=1)) / 2.0)
        width = float(caliper * pooled_sd)
    exact_cols = list(exact_on)
    for col in exact_cols:
        if col not in df.columns:
            raise CohortInputError("exact-matching column not found", file=file, column=col)
        if df[col].isna().any():
            row = int(np.flatnonzero(df[col].isna().to_numpy())[0]) + 1
            raise CohortInputError("missing value", file=file, row=row, column=col)
    keys = (
        list(zip(*(df[c].astype(str).tolist() for c in exact_cols), strict=True))
        if exact_cols
        else [()] * len(df)
    )
    key_codes = pd.factorize(pd.Series([str(k) for k in keys]))[0]

    treated = np.flatnonzero(e)
    order = treated[np.lexsort((treated, -ps[treated]))]
    available = ~e
    sets: dict[int, list[int]] = {int(t): [] for t in order}
    for rnd in range(ratio):
        for t in order:
            t = int(t)
            if rnd > 0 and not sets[t]:
                continue
            cand = np.flatnonzero(available & (key_codes == key_codes[t]))
            if cand.size == 0:
                continue
            dist = np.abs(logit[cand] - logit[t])
            j = int(np.argmin(dist))
            if width is not None and dist[j] > width:
                continue
            c = int(cand[j])
            sets[t].append(c)
            available[c] = False

    positions: list[int] = []
    match_ids: list[int] = []
    weights: list[float] = []
    mid = 0
    incomplete = 0
    for t in order:
        ctrls = sets[int(t)]
        if not ctrls:
            continue
        mid += 1
        incomplete += int(len(ctrls) < ratio)
        positions.append(int(t))
        match_ids.append(mid)
        weights.append(1.0)
        for c in ctrls:
            positions.append(c)
            match_ids.append(mid)
            weights.append(1.0 / len(ctrls))
    if mid == 0:
        raise CohortInputError(
            "no exposed patient found a match within the caliper / exact strata; "
            "widen --caliper or drop --exact-on columns",
            file=file,
        )
    matched = df.iloc[positions].copy()
    matched[MATCH_ID] = match_ids
    matched["propensity_score"] = ps[positions]
    matched["ps_logit"] = logit[positions]
    matched["match_weight"] = weights
    bal_cols = (
        list(balance_columns)
        if balance_columns is not None
        else list(dict.fromkeys([*covariates, *exact_cols]))
    )
    bal_design, _ = encode_columns(df, bal_cols, file=file)
    balance = balance_table(
        bal_design, exposed, matched_index=matched.index, matched_weights=matched["match_weight"]
    )
    n1m = int(matched[exposure].astype(int).sum())
    if n1m < n1:
        log.info("%d of %d exposed patients left unmatched", n1 - n1m, n1)
    return MatchResult(
        matched=matched,
        propensity_model=fit,
        ratio=ratio,
        caliper_sd=caliper if caliper else None,
        caliper_width=width,
        exact_on=tuple(exact_cols),
        covariates=tuple(covariates),
        n_exposed=n1,
        n_unexposed=n0,
        n_exposed_matched=n1m,
        n_unexposed_matched=len(matched) - n1m,
        n_incomplete_sets=incomplete,
        balance=tuple(balance),
    )
