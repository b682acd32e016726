"""The sampler's geometry chosen from the data: which group terms are centred, and that the
choice changes how the posterior is sampled, not what it is."""

import warnings

import numpy as np
import pytest

import poolwise as pw
from poolwise.data import prepare_data
from poolwise.geometry import choose

from helpers import GYM_FORMULA


def layout(formula, data, parameterization="auto"):
    spec = pw.parse_formula(formula, data)
    prepared, spec, _ = prepare_data(spec, data)
    return choose(spec, prepared, parameterization)


def test_few_groups_stay_non_centred_and_many_data_rich_groups_are_centred(gym):
    assert layout(GYM_FORMULA, gym) == {"gymID": {"Intercept": "noncentered", "yogaStretch": "noncentered"}}
    many, _ = pw.simulate_franchise(groups=200, periods=12, seed=1)
    assert layout(GYM_FORMULA, many) == {"gymID": {"Intercept": "centered", "yogaStretch": "centered"}}
    # One trial customer per gym and period, two periods: each gym says little, so the terms stay non-centred.
    thin, _ = pw.simulate_franchise(groups=200, periods=2, trials=(1, 1), seed=1)
    assert layout(GYM_FORMULA, thin) == {"gymID": {"Intercept": "noncentered", "yogaStretch": "noncentered"}}


def test_ordinal_ratings_are_centred_where_each_group_rates_often():
    formula = "rating ~ yogaStretch + (yogaStretch||gymID)"
    few, _ = pw.simulate_franchise(groups=12, family="cumulative", seed=1)
    rich, _ = pw.simulate_franchise(groups=60, periods=8, trials=(40, 60), family="cumulative", seed=1)
    thin, _ = pw.simulate_franchise(groups=60, periods=2, trials=(1, 2), family="cumulative", seed=1)
    for data, expected in ((few, "noncentered"), (rich, "centered"), (thin, "noncentered")):
        spec = pw.parse_formula(formula, data, family="cumulative")
        prepared, spec, _ = prepare_data(spec, data)
        assert choose(spec, prepared)["gymID"]["Intercept"] == expected


def test_correlated_blocks_are_centred_as_one_where_the_groups_are_data_rich(gym):
    correlated = GYM_FORMULA.replace("||", "|")
    assert layout(correlated, gym) == {"gymID": {"Intercept": "noncentered", "yogaStretch": "noncentered"}}
    many, _ = pw.simulate_franchise(groups=200, periods=12, seed=1)
    assert layout(correlated, many) == {"gymID": {"Intercept": "centered", "yogaStretch": "centered"}}
    # Data-rich intercepts but slopes the data barely inform: the block stays non-centred as one.
    few_treated = many.assign(yogaStretch=(many["timePeriod"] == 12) & (many["gymID"] % 10 == 0)).astype(
        {"yogaStretch": int}
    )
    assert layout(GYM_FORMULA, few_treated)["gymID"] == {"Intercept": "centered", "yogaStretch": "noncentered"}
    assert layout(correlated, few_treated)["gymID"] == {"Intercept": "noncentered", "yogaStretch": "noncentered"}


def test_the_choice_can_be_forced(gym):
    assert layout(GYM_FORMULA, gym, "centered") == {"gymID": {"Intercept": "centered", "yogaStretch": "centered"}}
    correlated = GYM_FORMULA.replace("||", "|")
    assert layout(correlated, gym, "centered") == {"gymID": {"Intercept": "centered", "yogaStretch": "centered"}}
    with pytest.raises(pw.PoolwiseError) as err:
        layout(GYM_FORMULA, gym, "funnel")
    assert str(err.value) == "unknown parameterization 'funnel'; use one of: auto, centered, noncentered"


@pytest.mark.slow
def test_centred_and_non_centred_fits_agree_within_monte_carlo_error(gym):
    import arviz as az

    fits = {}
    for how in ("centered", "noncentered"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pw.PoolwiseWarning)
            fits[how] = pw.fit(GYM_FORMULA, gym, parameterization=how, draws=1000, tune=1000, chains=4, seed=3)
    assert fits["centered"].settings["parameterization"]["gymID"]["Intercept"] == "centered"
    assert fits["noncentered"].settings["target_accept"] == 0.95
    for name in ("Intercept", "yogaStretch", "1|gymID_sigma", "yogaStretch|gymID_sigma"):
        a, b = (fits[how].posterior[name] for how in ("centered", "noncentered"))
        mcse = float(np.hypot(az.mcse(a.to_dataset(name="v"))["v"], az.mcse(b.to_dataset(name="v"))["v"]))
        assert abs(float(a.mean()) - float(b.mean())) < 4 * mcse + 0.02, name


@pytest.mark.slow
def test_centred_and_non_centred_correlated_blocks_agree_within_monte_carlo_error():
    import arviz as az

    data, _ = pw.simulate_franchise(groups=60, periods=6, seed=2)
    formula = GYM_FORMULA.replace("||", "|")
    fits = {}
    for how in ("centered", "noncentered"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pw.PoolwiseWarning)
            fits[how] = pw.fit(formula, data, parameterization=how, draws=500, tune=500, chains=4, seed=3)
    assert fits["centered"].settings["parameterization"]["gymID"] == {
        "Intercept": "centered",
        "yogaStretch": "centered",
    }
    assert "block|gymID_centered" in fits["centered"].posterior
    names = ("Intercept", "yogaStretch", "1|gymID_sigma", "yogaStretch|gymID_sigma", "cor(Intercept,yogaStretch)|gymID")
    for name in names:
        a, b = (fits[how].posterior[name] for how in ("centered", "noncentered"))
        mcse = float(np.hypot(az.mcse(a.to_dataset(name="v"))["v"], az.mcse(b.to_dataset(name="v"))["v"]))
        assert abs(float(a.mean()) - float(b.mean())) < 4 * mcse + 0.02, name
    # The groups' own coefficients, the quantity the block draws directly when centred.
    a, b = (fits[how].posterior["1|gymID"].mean(("chain", "draw")) for how in ("centered", "noncentered"))
    assert float(np.abs(a - b).max()) < 0.1
