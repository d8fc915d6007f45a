"""Synthetic dialysis cohort with known hazard ratios, to demonstrate and test the analysis.

Each patient gets age, sex, diabetes, hypertension and smoking; dialysis depends on age,
diabetes and hypertension (confounding, so matching matters); the AAC-24 total is
Binomial(24, p) with ``logit p`` rising with age, dialysis, diabetes, smoking and hypertension
plus a patient-level random effect (so AAC is correlated with dialysis and age).

MACE times follow a Weibull proportional-hazards model drawn by inverse transform::

    h(t | x) = scale * shape * t**(shape - 1) * exp(x' beta)
    T = (-log U / (scale * exp(x' beta))) ** (1 / shape),  U ~ Uniform(0, 1)

with ``x = (aac24, dialysis, age - age_center, sex[M], diabetes, hypertension, smoking)``, so
``exp(beta)`` are the true (conditional, cause-specific) hazard ratios: per AAC point, dialysis vs
not, per year of age, male vs female, and per risk factor. Non-cardiovascular death is an
independent competing event (exponential, depends on age and dialysis). Censoring is independent:
exponential loss to follow-up plus administrative censoring at a uniformly staggered end of
study. The true parameters go to a sidecar JSON ``<table>.truth.json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aacscore._files import write_json
from aacscore.kauppila import MAX_AAC24


@dataclass(frozen=True)
class CohortTruth:
    """True parameters of :func:`simulate_cohort` (hazard ratios keyed like the model terms)."""

    hr: dict[str, float] = field(
        default_factory=lambda: {
            "aac24": 1.06,
            "dialysis": 1.8,
            "age": 1.03,
            "sex[M]": 1.3,
            "diabetes": 1.5,
            "hypertension": 1.25,
            "smoking": 1.4,
        }
    )
    weibull_shape: float = 1.2
    baseline_scale: float = 0.03
    age_center: float = 62.0
    competing_rate: float = 0.02
    competing_log_hr: dict[str, float] = field(
        default_factory=lambda: {"age": 0.05, "dialysis": math.log(2.0)}
    )
    loss_to_follow_up_rate: float = 0.05
    study_end_years: tuple[float, float] = (3.0, 6.0)

    def log_hr(self) -> dict[str, float]:
        """Natural log of each true hazard ratio (the Cox coefficients)."""
        return {k: math.log(v) for k, v in self.hr.items()}


COLUMNS: dict[str, str] = {
    "patient_id": "patient key",
    "age": "age in years",
    "sex": "'F' or 'M'",
    "diabetes": "0/1",
    "hypertension": "0/1",
    "smoking": "0/1 (current or former)",
    "dialysis": "0/1 exposure (dialysis-dependent)",
    "aac24": "Kauppila AAC-24 total, 0-24",
    "time_years": "follow-up time in years to MACE, competing death or censoring",
    "mace": "1 if a major adverse cardiovascular event ended follow-up, else 0",
    "death": "1 if non-cardiovascular death (competing event) ended follow-up, else 0",
}


def _expit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def simulate_cohort(
    n: int = 200, seed: int | None = 0, truth: CohortTruth | None = None
) -> tuple[pd.DataFrame, CohortTruth]:
    """A synthetic cohort of ``n`` patients (columns in :data:`COLUMNS`) and its truth."""
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    tr = truth or CohortTruth()
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(tr.age_center, 11.0, n), 30.0, 90.0).round(0)
    ac = age - tr.age_center
    male = rng.binomial(1, 0.55, n)
    diabetes = rng.binomial(1, _expit(-1.0 + 0.03 * ac))
    hypertension = rng.binomial(1, _expit(0.3 + 0.04 * ac))
    smoking = rng.binomial(1, np.full(n, 0.25))
    dialysis = rng.binomial(1, _expit(-1.4 + 0.04 * ac + 0.9 * diabetes + 0.7 * hypertension))
    aac_lin = (
        -2.6
        + 0.07 * ac
        + 1.2 * dialysis
        + 0.5 * diabetes
        + 0.4 * smoking
        + 0.3 * hypertension
        + rng.normal(0.0, 0.9, n)
    )
    aac = rng.binomial(MAX_AAC24, _expit(aac_lin))

    b = tr.log_hr()
    lin = (
        b["aac24"] * aac
        + b["dialysis"] * dialysis
        + b["age"] * ac
        + b["sex[M]"] * male
        + b["diabetes"] * diabetes
        + b["hypertension"] * hypertension
        + b["smoking"] * smoking
    )
    u = rng.uniform(size=n)
    t_event = (-np.log(u) / (tr.baseline_scale * np.exp(lin))) ** (1.0 / tr.weibull_shape)
    comp_lin = tr.competing_log_hr["age"] * ac + tr.competing_log_hr["dialysis"] * dialysis
    t_comp = rng.exponential(1.0 / (tr.competing_rate * np.exp(comp_lin)))
    t_loss = rng.exponential(1.0 / tr.loss_to_follow_up_rate, n)
    t_end = rng.uniform(*tr.study_end_years, n)
    t_cens = np.minimum(t_loss, t_end)
    time = np.minimum.reduce([t_event, t_comp, t_cens])
    mace = (t_event <= np.minimum(t_comp, t_cens)).astype(int)
    death = ((t_comp < t_event) & (t_comp <= t_cens)).astype(int)
    df = pd.DataFrame(
        {
            "patient_id": [f"P{i + 1:05d}" for i in range(n)],
            "age": age.astype(int),
            "sex": np.where(male == 1, "M", "F"),
            "diabetes": diabetes,
            "hypertension": hypertension,
            "smoking": smoking,
            "dialysis": dialysis,
            "aac24": aac,
            "time_years": np.round(time, 4),
            "mace": mace,
            "death": death,
        }
    )
    # Rounding could make a tiny time zero; keep strictly positive follow-up.
    df.loc[df["time_years"] <= 0, "time_years"] = 1e-4
    return df, tr


def truth_path_for(table: str | Path) -> Path:
    """Sidecar path ``<table stem>.truth.json`` beside the table."""
    p = Path(table)
    return p.with_name(f"{p.stem}.truth.json")


def write_simulated_cohort(
    path: str | Path, n: int = 200, seed: int | None = 0, truth: CohortTruth | None = None
) -> tuple[Path, Path]:
    """Write a synthetic cohort CSV and its ``.truth.json``; return both paths."""
    df, tr = simulate_cohort(n=n, seed=seed, truth=truth)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    info: dict[str, Any] = {
        "n": n,
        "seed": seed,
        "time_unit": "years",
        "columns": COLUMNS,
        "true_hazard_ratios": tr.hr,
        "true_log_hazard_ratios": tr.log_hr(),
        "hazard_ratio_notes": (
            "Conditional cause-specific hazard ratios of MACE in a Weibull proportional-hazards "
            "model with all covariates: aac24 per AAC-24 point, age per year, dialysis/diabetes/"
            "hypertension/smoking yes vs no, sex[M] male vs female. Non-cardiovascular death is "
            "an independent competing event; censoring is independent."
        ),
        "parameters": asdict(tr),
        "observed": {
            "mace_events": int(df["mace"].sum()),
            "competing_deaths": int(df["death"].sum()),
            "dialysis": int(df["dialysis"].sum()),
            "aac24_mean": float(df["aac24"].mean()),
            "aac24_sd": float(df["aac24"].std(ddof=1)) if n > 1 else float("nan"),
        },
        "example_command": (
            f"aacscore cohort {out.name} --time time_years --event mace --aac aac24 "
            "--key patient_id --exposure dialysis --match-on age,sex,diabetes,hypertension "
            "--adjust dialysis,age,sex,diabetes,hypertension,smoking --competing death "
            "--horizons 1,3,5 -o cohort_out"
        ),
    }
    tpath = truth_path_for(out)
    write_json(tpath, info)
    return out, tpath
