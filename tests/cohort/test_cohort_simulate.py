import json

import numpy as np
import pandas as pd

from aacscore.cohort.design import encode_columns
from aacscore.cohort.simulate import COLUMNS, simulate_cohort, write_simulated_cohort
from aacscore.cohort.survival import fit_cox

TERMS = ["aac24", "dialysis", "age", "sex", "diabetes", "hypertension", "smoking"]


def test_simulated_table_and_truth(tmp_path):
    csv, truth = write_simulated_cohort(tmp_path / "cohort.csv", n=120, seed=3)
    assert truth.name == "cohort.truth.json"
    df = pd.read_csv(csv)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 120
    assert df["aac24"].between(0, 24).all()
    assert (df["time_years"] > 0).all()
    assert not ((df["mace"] == 1) & (df["death"] == 1)).any()
    info = json.loads(truth.read_text())
    assert info["true_hazard_ratios"]["aac24"] > 1
    assert info["observed"]["mace_events"] == int(df["mace"].sum())
    again, _ = simulate_cohort(120, seed=3)
    assert np.allclose(again["time_years"], df["time_years"])


def test_aac_correlated_with_dialysis_and_age():
    df, _ = simulate_cohort(2000, seed=0)
    assert df.loc[df.dialysis == 1, "aac24"].mean() > df.loc[df.dialysis == 0, "aac24"].mean() + 3
    assert np.corrcoef(df["age"], df["aac24"])[0, 1] > 0.2


def test_cox_recovers_true_hazard_ratios():
    """True HR inside the 95 % CI in >= 17 of 20 seeded repetitions, per term."""
    hits: dict[str, int] = {}
    for seed in range(20):
        df, truth = simulate_cohort(800, seed=seed)
        x, _ = encode_columns(df, TERMS)
        x["t"], x["e"] = df["time_years"], df["mace"]
        m = fit_cox(x, "t", "e", [c for c in x.columns if c not in ("t", "e")], ph_test=False)
        for t in m.terms:
            hits[t.term] = hits.get(t.term, 0) + int(t.ci_low <= truth.hr[t.term] <= t.ci_high)
    assert set(hits) == set(truth.hr)
    assert all(h >= 17 for h in hits.values()), hits
