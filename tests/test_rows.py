"""Row-level data: streaming aggregation of big files, and Bernoulli rows versus binomial counts."""

import warnings

import numpy as np
import pandas as pd
import pytest

import poolwise as pw
from poolwise import rows as rows_module
from poolwise.data import aggregate
from poolwise.rows import aggregate_file, read_rows

ROW_FORMULA = "signed ~ yogaStretch + (yogaStretch||gymID)"


def one_row_per_trial(groups: int, seed: int) -> pd.DataFrame:
    """The simulated franchise expanded to one 0/1 row per trial customer, shuffled."""
    counts, _ = pw.simulate_franchise(groups, 4, trials=(15, 30), seed=seed)
    trials = counts.loc[counts.index.repeat(counts["nTrialCustomers"])].reset_index(drop=True)
    position = trials.groupby(["gymID", "timePeriod"]).cumcount()
    trials["signed"] = (position < trials["nSigned"]).astype("int64")
    trials["customer"] = [f"c{i:07d}" for i in range(len(trials))]  # a column the formula never reads
    return trials[["customer", "gymID", "timePeriod", "yogaStretch", "signed"]].sample(frac=1, random_state=seed)


@pytest.fixture(scope="module")
def trial_rows():
    return one_row_per_trial(12, seed=4)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_streamed_counts_equal_pandas_counts(trial_rows, tmp_path, monkeypatch, suffix):
    path = tmp_path / f"rows{suffix}"
    trial_rows.to_parquet(path) if suffix == ".parquet" else trial_rows.to_csv(path, index=False)
    monkeypatch.setattr(rows_module, "MERGE_EVERY", 3)  # small batches and merges exercise the re-aggregation
    counts = aggregate_file(path, "signed", ["gymID", "yogaStretch"], batch_rows=97)
    expected = aggregate(trial_rows, "signed", ["gymID", "yogaStretch"])
    pd.testing.assert_frame_equal(counts, expected, check_dtype=False)
    assert counts["signed_n"].sum() == len(trial_rows)


def test_only_the_formula_columns_are_read(trial_rows, tmp_path, monkeypatch):
    path = tmp_path / "rows.parquet"
    trial_rows.to_parquet(path)
    asked = []
    dataset = rows_module._dataset

    class Recording:
        def __init__(self, inner):
            self.inner, self.schema = inner, inner.schema

        def to_batches(self, columns, **kwargs):
            asked.append(columns)
            return self.inner.to_batches(columns=columns, **kwargs)

    monkeypatch.setattr(rows_module, "_dataset", lambda p: Recording(dataset(p)))
    counts, formula, notes = read_rows(path, ROW_FORMULA)
    assert asked == [["signed", "gymID", "yogaStretch"]]
    assert formula == "p(signed, signed_n) ~ yogaStretch + (yogaStretch||gymID)"
    assert notes == [
        f"aggregated {len(trial_rows)} rows of 0/1 signed into {len(counts)} binomial rows while reading "
        f"{path} (exact: same likelihood up to a constant)"
    ]
    assert pw.parse_formula(formula, counts).trials == "signed_n"


def test_read_rows_of_counts_reads_their_columns(tmp_path, gym):
    path = tmp_path / "gym.parquet"
    gym.to_parquet(path)
    frame, formula, _ = read_rows(path, "p(nSigned, nTrialCustomers) ~ yogaStretch + (1|gymID)")
    assert list(frame.columns) == ["gymID", "nSigned", "nTrialCustomers", "yogaStretch"]
    assert formula == "p(nSigned, nTrialCustomers) ~ yogaStretch + (1|gymID)"


@pytest.mark.parametrize(
    "frame, message",
    [
        (
            pd.DataFrame({"g": [1, None, 2], "signed": [0, 1, 1]}),
            r"^g is missing in row 2 \(and maybe others\); fill or drop those rows$",
        ),
        (pd.DataFrame({"g": [1, 2, 2], "signed": [0, 1, 2]}), r"^signed is missing or not 0/1 in row 3"),
        (pd.DataFrame({"g": [1, 2, 2], "signed": [True, None, False]}), r"^signed is missing or not 0/1 in row 2"),
        (
            pd.DataFrame({"h": [1, 2, 2], "signed": [0, 1, 1]}),
            r"^column 'g' is not in .*; its columns are: h, signed\. Fix the formula or the data$",
        ),
    ],
)
def test_bad_rows(tmp_path, frame, message):
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    with pytest.raises(pw.PoolwiseError, match=message):
        aggregate_file(path, "signed", ["g"])


def test_missing_or_unsupported_file(tmp_path):
    with pytest.raises(pw.PoolwiseError, match=r"^file not found"):
        aggregate_file(tmp_path / "none.parquet", "signed", ["g"])
    (tmp_path / "rows.json").write_text("{}")
    with pytest.raises(pw.PoolwiseError, match=r"use a \.parquet or \.csv file$"):
        aggregate_file(tmp_path / "rows.json", "signed", ["g"])


@pytest.mark.slow
def test_bernoulli_rows_and_binomial_counts_give_the_same_posterior():
    """Fitting ~1,100 rows of one Bernoulli trial each and their 22 binomial counts (per gym and
    yogaStretch) must agree within Monte Carlo error: the likelihoods differ by a constant."""
    import bambi as bmb

    from poolwise.priors import chapter_priors, parse_prior

    trials = one_row_per_trial(12, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counted = pw.fit(ROW_FORMULA, trials, priors="chapter", draws=1000, tune=1000, chains=2, seed=5)
        # Bambi's own (x|g) is independent, poolwise's (x||g); Bambi cannot read the double bar.
        model = bmb.Model(ROW_FORMULA.replace("||", "|"), trials, family="bernoulli", center_predictors=False)
        spec = pw.parse_formula(ROW_FORMULA, trials)
        model.set_priors({term: parse_prior(text) for term, text in chapter_priors(spec, "partial").items()})
        rows = model.fit(draws=1000, tune=1000, chains=2, random_seed=5, inference_method="nutpie", progressbar=False)
    cells = len(aggregate(trials, "signed", ["gymID", "yogaStretch"]))
    assert counted.settings["notes"][0].startswith(
        f"aggregated {len(trials)} rows of signed (success: signed = 1) into {cells} binomial rows"
    )
    import arviz as az

    names = ["Intercept", "yogaStretch", "1|gymID_sigma", "yogaStretch|gymID_sigma", "1|gymID"]
    mine, theirs = counted.posterior[names], rows["posterior"].to_dataset()[names]
    mcse = np.sqrt(az.mcse(mine).to_array() ** 2 + az.mcse(theirs).to_array() ** 2)
    gap = abs(mine.mean(("chain", "draw")).to_array() - theirs.mean(("chain", "draw")).to_array())
    assert (gap < 4 * mcse).all(), (gap / mcse).to_pandas()
