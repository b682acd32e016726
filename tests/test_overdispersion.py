"""The beta-binomial family and the overdispersion check: counts that vary more from row to row
than a binomial allows are flagged, and the beta-binomial is what fits them."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import logit
from typer.testing import CliRunner

import poolwise as pw
from poolwise.cli import app
from poolwise.dispersion import advice, check_fits, overdispersion
from poolwise.families import FAMILIES
from poolwise.formulas import parse_formula
from poolwise.results import Fit

FORMULA = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"


def pinned_fit(data: pd.DataFrame, rate: float, draws: int = 400) -> Fit:
    """A complete-pooling binomial fit whose posterior sits (almost) at one rate for every row."""
    rng = np.random.default_rng(0)
    posterior = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), logit(rate) + rng.normal(0, 1e-3, (1, draws))),
            "yogaStretch": (("chain", "draw"), rng.normal(0, 1e-3, (1, draws))),
        },
        coords={"chain": [0], "draw": np.arange(draws)},
    )
    spec = parse_formula(FORMULA, data)
    return Fit("complete", FORMULA, spec, {}, xr.DataTree.from_dict({"posterior": posterior}), data)


def counts(kappa: float | None, rows: int = 200, trials: int = 100, seed: int = 1) -> pd.DataFrame:
    """Rows of one rate 0.3: binomial counts, or beta-binomial ones with ``kappa``."""
    rng = np.random.default_rng(seed)
    p = np.full(rows, 0.3) if kappa is None else rng.beta(0.3 * kappa, 0.7 * kappa, rows)
    return pd.DataFrame(
        {
            "gymID": np.arange(rows) % 10 + 1,
            "yogaStretch": np.arange(rows) % 2,
            "nTrialCustomers": trials,
            "nSigned": rng.binomial(trials, p),
        }
    )


def test_binomial_counts_show_no_overdispersion():
    check = overdispersion(pinned_fit(counts(None), 0.3))
    assert 0.8 < check["ratio"] < 1.2
    assert check["p_value"] > 0.05
    assert not check["overdispersed"]


def test_beta_binomial_counts_are_flagged_at_the_dispersion_theory_predicts():
    # Beta-binomial variance is binomial's times 1 + (n - 1) / (kappa + 1): 100 trials, kappa 9 -> 10.9.
    check = overdispersion(pinned_fit(counts(9.0), 0.3))
    assert check["ratio"] == pytest.approx(1 + 99 / 10, rel=0.25)
    assert check["p_value"] == 0.0
    assert check["overdispersed"]
    assert check["instead"] == "beta_binomial"


def test_the_advice_says_what_to_write_instead():
    flagged = pd.Series(
        {
            "model": "partial",
            "family": "binomial",
            "ratio": 2.44,
            "p_value": 0.0,
            "overdispersed": True,
            "instead": "beta_binomial",
        }
    )
    assert advice(flagged, "nSigned", "Partial pooling") == (
        "Partial pooling: nSigned varies 2.4x as much from row to row as binomial allows (posterior predictive "
        "p = 0.000), so its intervals are too narrow and P(helps) overconfident; fit --family beta_binomial "
        "(family='beta_binomial') and compare the two: poolwise compare DATA 'FORMULA' 'FORMULA' --family "
        "binomial --family beta_binomial"
    )
    calm = flagged.copy()
    calm[["ratio", "p_value", "overdispersed"]] = [0.93, 0.62, False]
    assert advice(calm, "nSigned", "m1") == (
        "m1: nSigned varies 0.9x as much from row to row as binomial allows (posterior predictive p = 0.620): "
        "no sign of overdispersion"
    )


def test_only_binomial_and_poisson_fits_are_checked():
    fit = pinned_fit(counts(None), 0.3)
    gaussian = Fit(
        fit.pooling, fit.formula, fit.spec.__class__(**{**vars(fit.spec), "family": "gaussian"}), {}, None, fit.data
    )
    assert check_fits({"g": gaussian}) == []
    assert [FAMILIES[name].overdispersed for name in ("binomial", "poisson", "bernoulli", "beta_binomial")] == [
        "beta_binomial",
        "negativebinomial",
        None,
        None,
    ]


def test_beta_binomial_simulation_has_the_beta_binomial_mean_and_variance():
    family = FAMILIES["beta_binomial"]
    outcomes = family.simulate(np.random.default_rng(3), np.full(200_000, 0.3), 50, {"kappa": np.array(4.0)})
    assert outcomes.mean() == pytest.approx(15.0, rel=0.01)
    assert outcomes.var() == pytest.approx(50 * 0.3 * 0.7 * (1 + 49 / 5), rel=0.02)


def test_families_must_be_one_per_model():
    with pytest.raises(pw.PoolwiseError) as err:
        pw.compare_models([FORMULA, FORMULA], counts(None), family=["binomial", "beta_binomial", "poisson"])
    assert str(err.value) == "3 families for 2 models; give one family for all or one per model, in order"


@pytest.mark.parametrize(
    ("families", "repeated"),
    [(None, f"{FORMULA} [None]"), (["binomial", "binomial"], f"{FORMULA} [binomial]")],
)
def test_a_model_given_twice_is_refused(families, repeated):
    with pytest.raises(pw.PoolwiseError) as err:
        pw.compare_models([FORMULA, FORMULA], counts(None), family=families)
    assert str(err.value) == (
        f"model {repeated!r} is given twice; compare different formulas, or one formula with a family or link "
        "per model (family=['binomial', 'beta_binomial'], link=['logit', 'probit'])"
    )


def test_one_formula_takes_one_family_on_the_cli(tmp_path):
    path = tmp_path / "counts.csv"
    counts(None).to_csv(path, index=False)
    result = CliRunner().invoke(
        app, ["compare", str(path), FORMULA, "--family", "binomial", "--family", "beta_binomial"]
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --family is given 2 times for one formula; give it once, or repeat the formula to compare "
        "families (compare DATA 'F' 'F' --family binomial --family beta_binomial)"
    )


@pytest.mark.slow
def test_an_overdispersed_franchise_is_flagged_and_the_beta_binomial_wins_loo():
    data, _ = pw.simulate_franchise(30, 4, family="beta_binomial", seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        study = pw.compare_models(
            [FORMULA, FORMULA],
            data,
            family=["binomial", "beta_binomial"],
            draws=500,
            tune=500,
            chains=2,
            seed=3,
            fix_loo="off",
        )
    binomial, beta_binomial = (f"{FORMULA} [{name}]" for name in ("binomial", "beta_binomial"))
    assert list(study.table.index) == [beta_binomial, binomial]
    assert -study.table.loc[binomial, "elpd_diff"] > 4 * study.table.loc[binomial, "dse"]
    (note,) = study.notes  # the binomial model is checked; the beta-binomial has nothing to check
    assert note.startswith(f"{binomial}: nSigned varies ")
    assert note.endswith("P(helps) overconfident; the beta_binomial model in this comparison allows for it")
    assert overdispersion(study.fits[binomial])["ratio"] > 2


def test_the_gym_data_show_no_overdispersion(gym_study):
    check = overdispersion(gym_study.fits["partial"])
    assert not check["overdispersed"]
    assert 0.6 < check["ratio"] < 1.4
    assert any(note.startswith("Partial pooling: nSigned varies") for note in gym_study.notes)
