import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import poolwise as pw
from poolwise.data import aggregate, example_path, validate_counts, write_example

ROOT = Path(__file__).resolve().parents[1]


def test_gym_raw_rates(gym):
    assert gym.shape == (44, 5)
    assert gym["gymID"].nunique() == 12
    by = gym.groupby("yogaStretch")[["nSigned", "nTrialCustomers"]].sum()
    assert by.loc[0].tolist() == [400, 1675] and by.loc[1].tolist() == [219, 630]


def test_load_dataset_reads_local_home(monkeypatch, tmp_path, gym):
    gym.head(3).to_csv(tmp_path / "gym.csv", index=False)
    monkeypatch.setenv("POOLWISE_DATA", str(tmp_path))
    assert len(pw.load_dataset("gym")) == 3


def test_unknown_dataset():
    with pytest.raises(
        pw.PoolwiseError, match=r"^unknown dataset 'gyms'; use one of: franchise, gym, visits, or a CSV/Parquet path$"
    ):
        pw.load_dataset("gyms")


COUNTS = [
    (
        {"k": [1, 5], "n": [3, 4]},
        "k > n in row 2; k counts successes out of n; check the column order in p(successes, trials)",
    ),
    ({"k": [1, -1], "n": [3, 4]}, "k is negative in row 2; counts must be >= 0"),
    ({"k": [1, 1.5], "n": [3, 4]}, "k is not a whole number in row 2; counts must be integers"),
    ({"k": [1, np.nan, np.nan], "n": [3, 4, 5]}, "k is missing (NaN) in rows 2, 3; fill or drop those rows"),
    ({"k": [1, 0], "n": [3, 0]}, "n is 0 in row 2; drop rows with no trials"),
    ({"k": [1, "two"], "n": [3, 4]}, "k is not a number in row 2; fix or drop those rows"),
]


@pytest.mark.parametrize(("columns", "message"), COUNTS)
def test_count_errors(columns, message):
    with pytest.raises(pw.PoolwiseError) as err:
        validate_counts(pd.DataFrame(columns), "k", "n")
    assert str(err.value) == message


def test_bundled_example_is_reproducible(tmp_path):
    write_example(tmp_path)
    assert (tmp_path / "franchise.csv").read_text() == example_path().read_text()
    truth = json.loads((ROOT / "data" / "franchise_truth.json").read_text())
    assert truth == json.loads((tmp_path / "franchise_truth.json").read_text())
    assert truth["population"]["beta"] == 0.5 and len(truth["groups"]) == 12


def test_simulation_matches_its_truth():
    frame, truth = pw.simulate_franchise(
        groups=400,
        periods=2,
        treated_share=1.0,
        sigma_alpha=0.0,
        sigma_beta=0.0,
        alpha=-1.0,
        beta=0.0,
        trials=(50, 50),
        seed=3,
    )
    rate = frame["nSigned"].sum() / frame["nTrialCustomers"].sum()
    assert abs(rate - 1 / (1 + np.exp(1.0))) < 0.01  # 40,000 trials: se 0.0023
    assert set(truth["groups"]) == {str(g) for g in range(1, 401)}


def test_aggregate_rows_to_counts():
    rows = pd.DataFrame({"signed": [1, 0, 1, 1, 0], "gym": [1, 1, 1, 2, 2], "yoga": [0, 0, 1, 1, 1]})
    counts = aggregate(rows, "signed", ["gym", "yoga"])
    assert counts.to_dict("list") == {"gym": [1, 1, 2], "yoga": [0, 1, 1], "signed": [1, 1, 1], "signed_n": [2, 1, 2]}
    with pytest.raises(pw.PoolwiseError, match=r"^signed is not 0/1 in row 1; a row-level outcome must be 0 or 1$"):
        aggregate(rows.assign(signed=[2, 0, 1, 1, 0]), "signed", ["gym"])


def test_missing_file():
    with pytest.raises(
        pw.PoolwiseError,
        match=r"^file not found: nowhere.csv; pass an existing CSV/Parquet path or a dataset name \(gym\)$",
    ):
        pw.read_data("nowhere.csv")


def test_rows_missing_a_formula_value_are_dropped_and_counted():
    """As lme4's na.omit and brms: rows missing a value the formula reads are dropped, with one
    warning naming how many per column; other columns' gaps do not matter; missing='error' refuses."""
    import warnings

    from poolwise.fitting import checked_inputs

    gym = pw.load_dataset("franchise")
    holes = gym.assign(note="", yogaStretch=gym["yogaStretch"].astype(float))
    holes.loc[[0, 3], "yogaStretch"] = np.nan
    holes.loc[[3, 7], "nSigned"] = np.nan
    holes.loc[5, "note"] = None
    settings = dict(family=None, draws=10, tune=10, chains=1, backend=None, allow_unidentified=False)
    formula = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec, prepared, notes, _ = checked_inputs(formula, holes, **settings)
    note = (
        f"dropped 3 of {len(gym)} rows with a missing value (nSigned: 2, yogaStretch: 2), as lme4 and brms do; "
        "missing='error' (--strict) refuses them instead"
    )
    assert notes[0] == note and [str(w.message) for w in caught if isinstance(w.message, pw.PoolwiseWarning)] == [note]
    assert len(prepared) == len(gym) - 3 and 5 in prepared.index and "note" in prepared.columns
    with pytest.raises(
        pw.PoolwiseError, match=r"^yogaStretch is missing \(NaN\) in rows 1, 4; fill or drop those rows$"
    ):
        checked_inputs(formula, holes, missing="error", **settings)
    with pytest.raises(pw.PoolwiseError, match=r"^unknown missing 'omit'; use one of: drop, error$"):
        checked_inputs(formula, holes, missing="omit", **settings)


def test_aggregated_rows_are_counted_as_the_users_rows():
    """19,819 customer rows fitted as 116 counts are reported as such, not as "116 rows"."""
    from poolwise.fitting import checked_inputs
    from poolwise.summaries import source_rows

    rng = np.random.default_rng(2)
    rows = pd.DataFrame(
        {"bought": rng.integers(0, 2, 500), "x": rng.integers(0, 2, 500), "store": rng.integers(0, 9, 500)}
    )
    settings = dict(family=None, draws=10, tune=10, chains=1, backend=None, allow_unidentified=False)
    spec, prepared, _, _ = checked_inputs("bought ~ x + (1|store)", rows, **settings)
    fit = pw.Fit("partial", spec.formula, spec, {}, None, prepared)
    assert len(prepared) == 18 and source_rows(fit) == 500
    spec, prepared, _, _ = checked_inputs(
        "p(nSigned, nTrialCustomers) ~ yogaStretch", pw.load_dataset("franchise"), **settings
    )
    assert source_rows(pw.Fit("complete", spec.formula, spec, {}, None, prepared)) == len(prepared) == 48
