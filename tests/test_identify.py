"""Identifiability on the email case: the rank check, contrasts, correlation flags, prior sensitivity.

The fast tests need no sampling: they check the design checks and run the post-fit tables on
draws from the Laplace approximation of the posterior (exact Gaussian algebra, shared with
nothing in poolwise). The slow tests fit the over-parameterised and the identified models.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import logit

import poolwise as pw
from poolwise.identify import check_design, dependent_terms, design, indicator_sets
from poolwise.pooling import POOLINGS
from poolwise.results import Fit

LEVELS = ["trial_control_0", "trial_control_1", "distribution_0", "distribution_1", "distribution_2"]
OVER = "p(opens, sent) ~ " + " + ".join(LEVELS)
REFERENCE = "p(opens, sent) ~ trial_control + C(distribution)"
GROUPED = "p(opens, sent) ~ trial_control + (1|distribution)"
# The analyst's priors: the control open rate is about 20% (logit -1.39), tightly; each level's
# coefficient Normal(0, 0.5). The data cannot see where a constant goes, so these decide it.
ANALYST = {"Intercept": "Normal(mu=-1.39, sigma=0.1)", **dict.fromkeys(LEVELS, "Normal(mu=0, sigma=0.5)")}
CONTRAST = logit(0.3) - logit(0.2)  # 0.539: trial minus control on the logit scale, in every distribution

OVER_MESSAGE = (
    "terms Intercept, trial_control_0, trial_control_1, distribution_0, distribution_1, distribution_2 are linearly "
    "dependent (design rank 4 for 6 columns: trial_control_0 + trial_control_1 and distribution_0 + distribution_1 + "
    "distribution_2 each add up to 1 on every row), so the priors, not the data, decide how a constant splits between "
    "them; write C(trial_control) + C(distribution) instead of the indicator columns (reference coding, the default; "
    "C(x, Sum) for sum-to-zero) or drop one indicator per set; or pass allow_unidentified=True (--allow-unidentified) "
    "to fit anyway with the priors deciding"
)
GROUP_MESSAGE = (
    "the common term C(distribution) already separates every level of distribution, so (1|distribution) cannot be told "
    "apart from it and its group sd is the prior's; drop C(distribution) from the common terms (keep (1|distribution)) "
    "or drop (1|distribution); or pass allow_unidentified=True (--allow-unidentified) to fit anyway with the priors deciding"
)


@pytest.fixture(scope="module")
def indicators(email):
    """The email data with one 0/1 column per level of each factor, as the analyst coded them."""
    return email.join(pd.get_dummies(email[["trial_control", "distribution"]].astype(str), dtype=int))


def laplace(
    data: pd.DataFrame, formula: str, priors: dict[str, tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Mean and covariance of the Gaussian approximation to the posterior of a binomial GLM with
    independent Normal priors: prior precision plus the binomial information at the observed logits.
    With 66,600 emails the approximation is accurate to well below the Monte Carlo error."""
    found = design(formula, data)
    rate = data["opens"] / data["sent"]
    information = found.matrix.T @ np.diag(data["sent"] * rate * (1 - rate)) @ found.matrix
    mu = np.array([priors[label][0] for label in found.labels])
    precision = np.diag([1 / priors[label][1] ** 2 for label in found.labels])
    cov = np.linalg.inv(precision + information)
    mean = cov @ (precision @ mu + found.matrix.T @ (data["sent"] * rate * (1 - rate) * logit(rate)))
    return mean, cov, found.labels


def analyst_laplace(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    return laplace(data, OVER, {"Intercept": (-1.39, 0.1), **{level: (0.0, 0.5) for level in LEVELS}})


def indexed(table: pd.DataFrame) -> pd.DataFrame:
    """Rows addressable by (set, kind, name); sorted so that partial keys select without a warning."""
    return table.set_index(["set", "kind", "name"]).sort_index()


def fake_fit(data: pd.DataFrame, formula: str, mean: np.ndarray, cov: np.ndarray, labels: list[str]) -> Fit:
    """A complete-pooling Fit whose posterior is 2 x 1000 draws from N(mean, cov): no sampler involved."""
    draws = np.random.default_rng(5).multivariate_normal(mean, cov, size=(2, 1000))
    posterior = xr.Dataset(
        {label: (("chain", "draw"), draws[..., i]) for i, label in enumerate(labels)},
        coords={"chain": [0, 1], "draw": np.arange(1000)},
    )
    spec = pw.parse_formula(formula, data)
    return Fit("complete", POOLINGS[0].build(spec), spec, {}, xr.DataTree.from_dict({"posterior": posterior}), data)


def test_rank_check_names_the_indicator_sets(indicators):
    report = pw.check(OVER, indicators)
    assert report[["check", "status"]].values.tolist() == [["common terms", "error"]]
    assert report.loc[0, "message"] == OVER_MESSAGE
    with pytest.raises(pw.PoolwiseError, match=f"^{re.escape(OVER_MESSAGE)}$"):
        pw.fit(OVER, indicators, pooling="complete", priors=ANALYST)


def test_rank_check_one_indicator_set_offers_dropping_the_intercept(indicators):
    message = pw.check(
        "p(opens, sent) ~ trial_control + distribution_0 + distribution_1 + distribution_2", indicators
    ).loc[0, "message"]
    assert message.startswith(
        "terms Intercept, distribution_0, distribution_1, distribution_2 are linearly dependent "
        "(design rank 4 for 5 columns: distribution_0 + distribution_1 + distribution_2 adds up to 1 on every row)"
    )
    assert "write C(distribution) instead of the indicator columns" in message
    assert "or drop the intercept with 0 + ...;" in message
    assert (
        pw.check("p(opens, sent) ~ 0 + trial_control + distribution_0 + distribution_1 + distribution_2", indicators)[
            "status"
        ]
        == "ok"
    ).all()


def test_rank_check_without_indicator_sets(email):
    data = email.assign(double=2 * email["trial_control"])
    message = pw.check("p(opens, sent) ~ trial_control + double", data).loc[0, "message"]
    assert message.startswith(
        "terms trial_control, double are linearly dependent (design rank 2 for 3 columns), so the priors"
    )
    assert "drop or recode one of them" in message


def test_group_factor_confounded_with_common_terms(email):
    formula = "p(opens, sent) ~ trial_control + C(distribution) + (1|distribution)"
    report = pw.check(formula, email).set_index("check")
    assert report.loc["common terms", "status"] == "ok"
    assert report.loc["group levels", "status"] == "error"
    assert report.loc["group levels", "message"] == GROUP_MESSAGE
    with pytest.raises(pw.PoolwiseError, match=f"^{re.escape(GROUP_MESSAGE)}$"):
        pw.fit(formula, email, pooling="partial")
    # The no-pooling template writes C(distribution) once, so only partial pooling is refused.
    spec = pw.parse_formula(formula, email)
    check_design(spec, email, POOLINGS[0].build(spec), pooling="none")


@pytest.mark.parametrize(
    "formula",
    [
        REFERENCE,
        GROUPED,
        "p(opens, sent) ~ C(trial_control) + C(distribution, Sum)",
        "p(opens, sent) ~ 0 + C(trial_control) + C(distribution)",
    ],
)
def test_identified_formulas_pass(email, formula):
    report = pw.check(formula, email)
    assert (report["status"] == "ok").all(), report["message"].tolist()


def test_group_level_predictor_is_refused_for_no_pooling_only(gym):
    data = gym.assign(region=gym["gymID"] % 3)
    formula = "p(nSigned, nTrialCustomers) ~ yogaStretch + region + (yogaStretch||gymID)"
    report = pw.check(formula, data).set_index("check")
    assert report.loc["no-pooling intercepts", "status"] == "error"
    assert report.loc["no-pooling intercepts", "message"].startswith(
        "region takes one value per gymID, so the no-pooling model's per-gymID intercepts absorb it; fit partial pooling alone"
    )
    assert report.loc["group levels", "status"] == "ok"
    spec = pw.parse_formula(formula, data)
    check_design(spec, data, POOLINGS[0].build(spec), pooling="partial")
    with pytest.raises(pw.PoolwiseError, match="^region takes one value per gymID"):
        check_design(spec, data, POOLINGS[0].build(spec))
    with pytest.raises(pw.PoolwiseError, match="^region takes one value per gymID"):
        pw.fit(formula, data, pooling="none")
    with pytest.raises(pw.PoolwiseError, match="^region takes one value per gymID"):
        pw.compare(formula, data)


def test_check_reports_no_pooling_prior_only_slopes(gym):
    report = pw.check("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", gym)
    assert report["status"].tolist() == ["ok", "ok", "ok", "warning", "warning"]
    assert report["message"].iloc[3] == (
        "no pooling: gymID 2, 8, 11, 12 never had yogaStretch != 0, so their yogaStretch slopes are the prior, "
        "not data; partial pooling borrows them from the population instead"
    )


def test_dependent_terms_and_indicator_sets(indicators):
    x = np.arange(4.0)
    assert dependent_terms(np.column_stack([np.ones(4), x, 2 * x]), ["Intercept", "x", "double"]) == ["x", "double"]
    assert dependent_terms(np.column_stack([np.ones(4), x]), ["Intercept", "x"]) == []
    found = design(OVER, indicators)
    assert [[found.labels[i] for i in members] for members in indicator_sets(found)] == [LEVELS[:2], LEVELS[2:]]


def test_contrasts_and_flags_on_laplace_draws(indicators):
    """The post-fit tables on draws from the analytic posterior: raw level coefficients carry the
    prior-made constant and are marked unidentified; their differences are identified."""
    mean, cov, labels = analyst_laplace(indicators)
    raw = pw.contrasts(fake_fit(indicators, OVER, mean, cov, labels))
    assert raw["set"].unique().tolist() == ["trial_control", "distribution"]
    table = indexed(raw)
    coefficients = table.xs("coefficient", level="kind")
    assert not coefficients["identified"].any()
    assert table.xs("contrast", level="kind")["identified"].all()
    assert table.loc[("distribution", "contrast"), :].index.tolist() == ["1 - 0", "2 - 0", "2 - 1"]
    assert abs(table.loc[("trial_control", "contrast", "1 - 0"), "mean"] - CONTRAST) < 0.01
    pairs = pw.correlated_pairs(fake_fit(indicators, OVER, mean, cov, labels))
    assert {"trial_control_0", "trial_control_1"} in [
        set(pair) for pair in pairs[["parameter_1", "parameter_2"]].values
    ]
    assert not pairs["identified"].any()


def test_confounded_group_marks_what_the_priors_decide(email):
    """Forced partial pooling of C(distribution) + (1|distribution): the group deviations, the
    group sd, the intercept and the C(distribution) coefficients trade off; trial_control does not.
    Identification comes from the design, so random draws in the right shapes are enough."""
    formula = "p(opens, sent) ~ trial_control + C(distribution) + (1|distribution)"
    spec = pw.parse_formula(formula, email)
    rng = np.random.default_rng(2)
    posterior = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), rng.normal(size=(2, 50))),
            "trial_control": (("chain", "draw"), rng.normal(size=(2, 50))),
            "C(distribution)": (("chain", "draw", "C(distribution)_dim"), rng.normal(size=(2, 50, 2))),
            "1|distribution_sigma": (("chain", "draw"), rng.gamma(2.0, size=(2, 50))),
            "1|distribution": (("chain", "draw", "distribution__factor_dim"), rng.normal(size=(2, 50, 3))),
        },
        coords={"C(distribution)_dim": ["1", "2"], "distribution__factor_dim": ["0", "1", "2"]},
    )
    fit = Fit("partial", POOLINGS[2].build(spec), spec, {}, xr.DataTree.from_dict({"posterior": posterior}), email)
    from poolwise.identify import estimates

    identified = {f"{row['set']}: {row['name']}": row["identified"] for row in estimates(fit, parameters=True)}
    assert {name for name, ok in identified.items() if ok} == {"trial_control: trial_control", "trial_control: 1 - 0"}
    assert len(identified) == 2 + 2 + (2 + 3) + (
        3 + 3
    )  # Intercept, sd; trial_control; C(d), 1|d: coefficients + contrasts


def test_sensitivity_argument_errors(email, indicators):
    import bambi as bmb

    from poolwise.fitting import build_model
    from poolwise.prior_sensitivity import prior_text, widened_priors

    assert (
        prior_text(bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=2.5)), 10)
        == "Normal(mu=0.0, sigma=HalfNormal(sigma=25.0))"
    )
    assert prior_text(bmb.Prior("Exponential", lam=1.0), 10) == "Exponential(lam=0.1)"
    spec = pw.parse_formula(GROUPED, email)
    model, formula, strings = build_model(spec, email, "partial", {"trial_control": "Normal(mu=0, sigma=1)"})
    fit = Fit("partial", formula, spec, strings, None, email, {}, model)
    assert widened_priors(fit, ["Intercept"], "flat") == {
        "trial_control": "Normal(mu=0, sigma=1)",
        "Intercept": "Flat()",
    }
    assert widened_priors(fit)["trial_control"] == "Normal(mu=0.0, sigma=10.0)"
    assert widened_priors(fit, ["1|distribution"], 2)["1|distribution"].startswith(
        "Normal(mu=0.0, sigma=HalfNormal(sigma="
    )
    with pytest.raises(
        pw.PoolwiseError, match=r"^a flat prior on group term 1\|distribution leaves its group sd undefined"
    ):
        widened_priors(fit, ["1|distribution"], "flat")
    with pytest.raises(
        pw.PoolwiseError,
        match=r"^unknown term 'distribution'; the partial model's terms are: 1\|distribution, Intercept, trial_control$",
    ):
        widened_priors(fit, ["distribution"])
    with pytest.raises(pw.PoolwiseError, match="^widen must be a positive factor"):
        widened_priors(fit, None, 0)
    # A formula is fitted first, so an unidentified one is refused before any sampling.
    with pytest.raises(pw.PoolwiseError, match="^terms Intercept, trial_control_0"):
        pw.sensitivity(OVER, indicators, pooling="complete", terms=["Intercept"], widen="flat")


# ---- fits ---------------------------------------------------------------------------------------


def _quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        return pw.fit(*args, draws=1000, tune=1000, chains=2, seed=6, **kwargs)


@pytest.fixture(scope="module")
def over_fit(indicators):
    """The analyst's model, forced past the rank check."""
    return _quiet_fit(OVER, indicators, pooling="complete", priors=ANALYST, allow_unidentified=True)


@pytest.mark.slow
def test_forced_fit_reproduces_the_leak(over_fit, indicators):
    import arviz as az

    mean, _, labels = analyst_laplace(indicators)
    table = indexed(pw.contrasts(over_fit))
    for level in LEVELS[2:]:
        draws = over_fit.posterior[level]
        fitted = table.loc[("distribution", "coefficient", level), "mean"]
        # ~0.1, not 0: the constant the priors push into the distribution coefficients.
        assert 0.05 < fitted < 0.16
        assert abs(fitted - mean[labels.index(level)]) < 4 * float(az.mcse(draws.values))
    assert abs(table.loc[("trial_control", "contrast", "1 - 0"), "mean"] - CONTRAST) < 0.03
    for name in ["1 - 0", "2 - 0", "2 - 1"]:
        row = table.loc[("distribution", "contrast", name)]
        assert row["lower"] < 0 < row["upper"]


@pytest.mark.slow
def test_correlation_flags_fire_on_the_over_parameterised_fit(over_fit):
    pairs = pw.correlated_pairs(over_fit)
    flagged = [set(pair) for pair in pairs.loc[~pairs["identified"], ["parameter_1", "parameter_2"]].values]
    assert {"trial_control_0", "trial_control_1"} in flagged
    assert {"distribution_1", "distribution_2"} in flagged


@pytest.mark.slow
def test_flat_intercept_moves_the_levels_not_the_contrasts(over_fit):
    table = pw.sensitivity(over_fit, terms=["Intercept"], widen="flat")
    assert table.attrs["priors"]["Intercept"] == "Flat()"
    levels = table[(table["set"] == "distribution") & (table["kind"] == "coefficient")]
    assert len(levels) == 3 and levels["moved"].all(), levels
    assert (levels["mean_wide"].abs() < 0.06).all()  # the flat intercept takes the constant back
    contrasts = table[table["kind"] == "contrast"]
    assert len(contrasts) == 4 and not contrasts["moved"].any(), contrasts
    trial = contrasts[contrasts["set"] == "trial_control"].iloc[0]
    assert abs(trial["mean_wide"] - CONTRAST) < 0.03
    # ArviZ's power-scaling sees the same split without a refit.
    assert (table.loc[table["kind"] == "coefficient", "psense_prior"] > 0.05).all()
    assert (contrasts["psense_prior"] < 0.05).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    "formula, pooling, effects", [(REFERENCE, "complete", "distribution"), (GROUPED, "partial", "1|distribution")]
)
def test_identified_models_give_no_distribution_effect(email, formula, pooling, effects):
    fit = _quiet_fit(formula, email, pooling=pooling)
    table = indexed(pw.contrasts(fit))
    distribution = table.loc[effects]
    assert distribution["identified"].all()
    assert ((distribution["lower"] < 0) & (0 < distribution["upper"])).all(), distribution
    assert (distribution["mean"].abs() < 0.05).all()
    assert abs(table.loc[("trial_control", "contrast", "1 - 0"), "mean"] - CONTRAST) < 0.03
    pairs = pw.correlated_pairs(fit)
    # Reference coding correlates the intercept with the contrasts of a small reference level
    # (600 emails in distribution 0), but every coefficient stays identified.
    assert pairs["identified"].all(), pairs
    if pooling == "partial":
        # Three distributions leave the group sd wide, so the intercept trades against the group
        # deviations (the ridge of a small hierarchy); the treatment's coefficient never does.
        names = set(pairs["parameter_1"]) | set(pairs["parameter_2"])
        assert names <= {"Intercept", *(f"1|distribution[{level}]" for level in range(3))}, pairs


def test_design_check_scales_to_a_thousand_groups():
    """Rank checks work on distinct rows (QR then SVD), not a rows x rows SVD: 12,000 rows stay cheap."""
    import time

    data, _ = pw.simulate_franchise(groups=1000, periods=12, seed=1)
    started = time.perf_counter()
    report = pw.check("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", data)
    assert report["status"].tolist() == ["ok", "ok", "ok", "warning"]
    assert time.perf_counter() - started < 60
