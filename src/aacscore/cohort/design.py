"""Design matrices for the cohort models: binary coercion, dummy coding, collinearity checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from aacscore.cohort.errors import CohortInputError

_TRUE = {"1", "1.0", "yes", "y", "true", "t"}
_FALSE = {"0", "0.0", "no", "n", "false", "f"}


def first_missing_row(values: pd.Series) -> int | None:
    """1-based data row of the first missing value of ``values``, or None."""
    miss = np.flatnonzero(values.isna().to_numpy())
    return None if miss.size == 0 else int(miss[0]) + 1


def coerce_binary(values: pd.Series, column: str, file: str | Path | None = None) -> pd.Series:
    """0/1 integers from 0/1, booleans or yes/no / true/false / y/n strings (case-insensitive).

    Raises :class:`CohortInputError` naming the first row that is missing or not binary.
    """
    row = first_missing_row(values)
    if row is not None:
        raise CohortInputError("missing value (expected 0 or 1)", file=file, row=row, column=column)
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values.tolist()):
        key = str(v).strip().lower()
        if isinstance(v, (bool, np.bool_)):
            out[i] = int(bool(v))
        elif key in _TRUE:
            out[i] = 1
        elif key in _FALSE:
            out[i] = 0
        else:
            raise CohortInputError(
                f"value {v!r} is not binary (expected 0/1, yes/no or true/false)",
                file=file,
                row=i + 1,
                column=column,
            )
    return pd.Series(out, index=values.index, name=column)


def is_binary(x: npt.NDArray[np.float64]) -> bool:
    """True when every value is 0 or 1."""
    return bool(np.all((x == 0) | (x == 1)))


def encode_columns(
    df: pd.DataFrame, columns: Sequence[str], file: str | Path | None = None
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Numeric design columns for ``columns`` of ``df``.

    Numeric and boolean columns pass through (booleans as 0/1); text / categorical columns are
    dummy-coded against their first level in sorted order, the terms named ``col[level]``.
    Returns the design (float64, same index as ``df``) and a map from column to its terms.
    Missing values raise :class:`CohortInputError` naming the row and column.
    """
    parts: dict[str, pd.Series] = {}
    terms: dict[str, list[str]] = {}
    for col in columns:
        if col not in df.columns:
            raise CohortInputError(
                f"column not found; available: {', '.join(map(str, df.columns))}",
                file=file,
                column=col,
            )
        s = df[col]
        row = first_missing_row(s)
        if row is not None:
            raise CohortInputError(
                "missing value (impute or drop the row first)", file=file, row=row, column=col
            )
        if pd.api.types.is_bool_dtype(s):
            parts[col] = s.astype(np.float64)
            terms[col] = [col]
        elif pd.api.types.is_numeric_dtype(s):
            arr = s.to_numpy(dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise CohortInputError(
                    f"non-finite value {arr[bad[0]]}", file=file, row=int(bad[0]) + 1, column=col
                )
            parts[col] = pd.Series(arr, index=df.index)
            terms[col] = [col]
        else:
            text = s.astype(str).str.strip()
            levels = sorted(text.unique())
            if len(levels) < 2:
                raise CohortInputError(
                    f"categorical column has a single level {levels[0]!r}; it cannot be a "
                    "covariate",
                    file=file,
                    column=col,
                )
            terms[col] = []
            for lev in levels[1:]:
                name = f"{col}[{lev}]"
                parts[name] = (text == lev).astype(np.float64)
                terms[col].append(name)
    design = pd.DataFrame(parts, index=df.index)
    return design, terms


def check_collinearity(
    design: pd.DataFrame,
    strata: pd.Series | None = None,
    file: str | Path | None = None,
    tol: float = 1e-8,
) -> None:
    """Raise :class:`CohortInputError` naming the columns if the design is not of full rank.

    Columns are centred (within strata when given, because a stratified Cox model compares
    patients only within a stratum), so constant columns and columns that are constant within
    every stratum are reported as well as exact linear combinations of other columns.
    """
    if design.shape[1] == 0:
        return
    x = design.to_numpy(dtype=np.float64)
    if strata is None:
        xc = x - x.mean(axis=0)
        where = ""
    else:
        codes = pd.factorize(strata.to_numpy())[0]
        means = pd.DataFrame(x).groupby(codes).transform("mean").to_numpy()
        xc = x - means
        where = " within strata (matched sets)"
    names = [str(c) for c in design.columns]
    scale = np.sqrt((xc**2).mean(axis=0))
    for j, name in enumerate(names):
        if scale[j] <= tol * max(1.0, float(np.abs(x[:, j]).max(initial=0.0))):
            raise CohortInputError(
                f"covariate {name!r} does not vary{where}; its effect cannot be estimated — "
                "remove it from the model",
                file=file,
                column=name,
            )
    xs = xc / scale
    kept: list[int] = []
    for j in range(xs.shape[1]):
        cand = [*kept, j]
        if np.linalg.matrix_rank(xs[:, cand], tol=1e-7 * np.sqrt(len(xs))) == len(cand):
            kept.append(j)
            continue
        coef, *_ = np.linalg.lstsq(xs[:, kept], xs[:, j], rcond=None)
        involved = [names[kept[i]] for i in np.flatnonzero(np.abs(coef) > 1e-6)]
        raise CohortInputError(
            f"collinear covariates: {names[j]!r} is a linear combination of "
            f"{', '.join(repr(n) for n in involved)}{where}; drop one of them",
            file=file,
            column=names[j],
        )


def constant_within_strata(
    design: pd.DataFrame, strata: pd.Series, tol: float = 1e-12
) -> list[str]:
    """Columns of ``design`` that take a single value inside every stratum."""
    codes = pd.factorize(strata.to_numpy())[0]
    grouped = design.groupby(codes)
    spread = (grouped.max() - grouped.min()).max(axis=0)
    return [str(c) for c in design.columns if float(spread[c]) <= tol]
