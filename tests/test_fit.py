"""Posterior numbers against independent truths: raw counts, a grid integral, a simulation."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import expit
from scipy.stats import binom, norm

import poolwise as pw
from poolwise.estimates import summarise

pytestmark = pytest.mark.slow


def _mcse(draws) -> float:
    import arviz as az

    return float(az.mcse(np.asarray(draws)[None, ...].reshape(draws.sizes["chain"], -1)))


def grid_posterior_means(data: pd.DataFrame, prior_alpha: tuple, prior_beta: tuple) -> tuple[float, float]:
    """Exact posterior means of the two complete-pooling rates by integrating on a grid: an
    independent reference that shares nothing with PyMC."""
    a = np.linspace(-3, 1, 801)[:, None]
    b = np.linspace(-2, 3, 801)[None, :]
    logp = norm.logpdf(a, *prior_alpha) + norm.logpdf(b, *prior_beta)
    for k, n, x in data[["nSigned", "nTrialCustomers", "yogaStretch"]].itertuples(index=False):
        logp = logp + binom.logpmf(k, n, expit(a + b * x))
    w = np.exp(logp - logp.max())
    w /= w.sum()
    return float((w * expit(a)).sum()), float((w * expit(a + b)).sum())


def test_complete_pooling_recovers_raw_rates(gym_study, gym):
    fit = pw.coefficients(gym_study.fits["complete"]).query("group == '1'").set_index("quantity")
    draws = pw.group_draws(gym_study.fits["complete"]).sel(group="1")
    without, with_ = expit(draws["alpha"]), expit(draws["alpha"] + draws["beta"])
    model = gym_study.fits["complete"].model
    prior = {name: model.parameters["p"].terms[name].prior.args for name in ("Intercept", "yogaStretch")}
    ref_without, ref_with = grid_posterior_means(
        gym,
        (prior["Intercept"]["mu"], prior["Intercept"]["sigma"]),
        (prior["yogaStretch"]["mu"], prior["yogaStretch"]["sigma"]),
    )
    assert abs(fit.loc["rate_without", "mean"] - ref_without) < 4 * _mcse(without)
    assert abs(fit.loc["rate_with", "mean"] - ref_with) < 4 * _mcse(with_)
    assert abs(fit.loc["rate_without", "mean"] - 400 / 1675) < 0.003
    assert abs(fit.loc["rate_with", "mean"] - 219 / 630) < 0.004


def test_partial_pooling_slope_and_tables(gym_study):
    partial = gym_study.fits["partial"]
    slope = summarise(pw.population_draws(partial)["beta"])
    assert 0.35 < slope["mean"] < 0.75
    assert summarise(pw.population_draws(partial)["beta"], 0.89)["lower"] > 0
    for name, fit in gym_study.fits.items():
        table = pw.coefficients(fit)
        assert table.groupby("quantity").size().to_dict() == {
            "alpha": 12,
            "beta": 12,
            "rate_with": 12,
            "rate_without": 12,
        }, name
        assert (table["lower"] <= table["mean"]).all() and (table["mean"] <= table["upper"]).all()
        assert table["group"].unique().tolist() == [str(g) for g in range(1, 13)]


def test_loo_table(gym_study):
    table = gym_study.table
    assert list(table.columns) == [
        "elpd",
        "se",
        "elpd_diff",
        "dse",
        "p",
        "weight",
        "n_bad_k",
        "n_moment_matched",
        "n_refitted",
        "n_obs",
    ]
    assert table.index[-1] == "complete"
    assert -300 < table.loc["complete", "elpd"] < -265
    assert -118 < table.loc["partial", "elpd"] < -104
    assert table.loc["partial", "elpd"] - table.loc["complete", "elpd"] > 100
    assert gym_study.verdict().startswith(f"{'Partial' if table.index[0] == 'partial' else 'No'} pooling predicts best")


def test_no_pooling_warns_about_prior_only_gyms(gym):
    with pytest.warns(pw.PoolwiseWarning) as record:
        pw.fit(
            "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)",
            gym,
            pooling="unpooled",
            draws=100,
            tune=100,
            chains=1,
            seed=1,
        )
    messages = [str(w.message) for w in record if issubclass(w.category, pw.PoolwiseWarning)]
    assert (
        "no pooling: gymID 2, 8, 11, 12 never had yogaStretch != 0, so their yogaStretch slopes are the prior, not data; partial pooling borrows them from the population instead"
        in messages
    )
    assert any(m.startswith("no pooling: gymID 10 only ever had one value of yogaStretch") for m in messages)


def test_parameter_recovery_on_simulated_franchise():
    data, truth = pw.simulate_franchise(groups=30, periods=4, trials=(5, 15), sigma_alpha=0.5, sigma_beta=0.2, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        study = pw.compare(truth["formula"], data, draws=500, tune=500, chains=2, seed=3)
    slope = summarise(pw.population_draws(study.fits["partial"])["beta"], 0.94)
    assert slope["lower"] < truth["population"]["beta"] < slope["upper"]
    assert study.table.loc["partial", "elpd"] > study.table.loc["none", "elpd"]


def test_chapter_priors_are_set(gym):
    bad = {"yogaStretch": "Normal(mu=0, sigma=0.75)", "gym": "Normal(mu=0, sigma=1)"}
    with pytest.raises(
        pw.PoolwiseError,
        match=r"^unknown prior term 'gym' for the partial model; its terms are: 1\|gymID, Intercept, yogaStretch, yogaStretch\|gymID$",
    ):
        pw.fit("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", gym, priors=bad)
    with pytest.raises(
        pw.PoolwiseError, match=r"^unknown prior distribution 'Normall' in 'Normall\(mu=0\)'; use a PyMC distribution"
    ):
        pw.fit(
            "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)",
            gym,
            priors={"yogaStretch": "Normall(mu=0)"},
        )
    with pytest.raises(
        pw.PoolwiseError, match=r"^unknown prior preset 'textbook'; use one of: chapter, or term=distribution strings$"
    ):
        pw.fit("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", gym, priors="textbook")
    from poolwise.fitting import build_model
    from poolwise.priors import resolve_priors

    spec = pw.parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", gym)
    model, _, strings = build_model(spec, gym, "partial", resolve_priors("chapter", spec, gym, "partial"))
    assert strings["Intercept"] == "Normal(mu=-1, sigma=1.5)"
    assert model.parameters["p"].terms["Intercept"].prior.args == {"mu": -1, "sigma": 1.5}


def test_sum_coding_falls_back_from_nutpie(email):
    with pytest.warns(pw.PoolwiseWarning, match="sampled with pymc: nutpie cannot handle the comma"):
        fit = pw.fit(
            "p(opens, sent) ~ trial_control + C(distribution, Sum)",
            email,
            pooling="complete",
            draws=100,
            tune=100,
            chains=1,
            seed=1,
            backend="nutpie",
        )
    assert fit.settings["backend"] == "pymc"
    assert fit.posterior["C(distribution, Sum)"].shape[-1] == 2


@pytest.mark.parametrize("backend", ["nutpie", "pymc"])
def test_backends_agree_within_monte_carlo_error(gym_study, gym, backend):
    """nutpie and PyMC's own NUTS sample the same posterior of the partial model as NumPyro (the
    default), and the log-likelihood NumPyro's run computes in JAX equals Bambi's own."""
    import arviz as az

    default = gym_study.fits["partial"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        other = pw.fit(
            "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)",
            gym,
            backend=backend,
            draws=500,
            tune=500,
            chains=2,
            seed=5,
        )
    assert (default.settings["backend"], other.settings["backend"]) == ("numpyro", backend)
    for name in ("Intercept", "yogaStretch", "1|gymID_sigma", "yogaStretch|gymID_sigma"):
        a, b = default.posterior[name], other.posterior[name]
        error = np.hypot(float(az.mcse(a)), float(az.mcse(b)))
        assert abs(float(a.mean()) - float(b.mean())) < 4 * error, name
    from_jax = default.idata["log_likelihood"].to_dataset()
    recomputed = default.model.compute_log_likelihood(default.idata, inplace=False)["log_likelihood"].to_dataset()
    xr.testing.assert_allclose(from_jax, recomputed, rtol=1e-9)


def test_compare_without_seed_records_one_base_seed(gym):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        study = pw.compare(
            "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", gym, draws=50, tune=50, chains=1
        )
    seeds = [study.fits[name].settings["seed"] for name in ("complete", "none", "partial")]
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
