"""Correlated group effects, lme4's (1 + x|g): a simulated strong correlation is recovered and
(x||g) estimates none (slow), and the correlation's LKJ prior is stored and checked."""

import warnings

import numpy as np
import pandas as pd
import pytest

import poolwise as pw

RHO = -0.7


def correlated_groups(seed: int, groups: int = 60) -> pd.DataFrame:
    """60 groups x 8 rows of y = a_g + b_g x + noise, (a_g, b_g) bivariate normal with correlation -0.7."""
    rng = np.random.default_rng(seed)
    sd = np.array([1.0, 0.6])
    cov = np.outer(sd, sd) * np.array([[1.0, RHO], [RHO, 1.0]])
    effects = rng.multivariate_normal([2.0, 0.5], cov, size=groups)
    rows = [
        (g, x, effects[g, 0] + effects[g, 1] * x + rng.normal(0, 0.5))
        for g in range(groups)
        for x in np.linspace(-1.5, 1.5, 8)
    ]
    return pd.DataFrame(rows, columns=["g", "x", "y"])


@pytest.mark.slow
def test_a_strong_correlation_is_recovered_and_independence_reports_none():
    covered = 0
    for seed in (1, 2, 3):
        data = correlated_groups(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pw.PoolwiseWarning)
            fit = pw.fit("y ~ x + (x|g)", data, draws=500, tune=500, chains=2, seed=seed)
        values = fit.posterior["cor(Intercept,x)|g"].values.ravel()
        low, high = np.quantile(values, [0.055, 0.945])
        covered += low <= RHO <= high
        assert values.mean() < -0.3, values.mean()
    assert covered >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        independent = pw.fit("y ~ x + (x||g)", correlated_groups(1), draws=200, tune=200, chains=1, seed=1)
    assert not [name for name in independent.posterior.data_vars if name.startswith("cor(")]
    assert pw.summary(independent).independent == ["g"]
    assert "cor(Intercept,x)" not in pw.summary(independent).group_sds.index


@pytest.mark.parametrize(
    ("prior", "expected"),
    [
        (None, "LKJCorr(eta=1)"),
        ("LKJCorr(eta=2)", "LKJCorr(eta=2)"),
        ("Normal(mu=0, sigma=1)", "the prior of cor|g must be LKJCorr(eta=...), not Normal(mu=0, sigma=1)"),
    ],
)
def test_the_correlation_prior_is_stored_and_checked(prior, expected):
    from poolwise.fitting import build_model
    from poolwise.priors import resolve_priors

    data = correlated_groups(1, groups=6)
    spec = pw.parse_formula("y ~ x + (x|g)", data)
    priors = resolve_priors(None if prior is None else {"cor|g": prior}, spec, data, "partial")
    if expected.startswith("LKJ"):
        model, _, strings = build_model(spec, data, "partial", priors)
        assert strings["cor|g"] == expected and "cor(Intercept,x)|g" in model.backend.model.named_vars
    else:
        with pytest.raises(pw.PoolwiseError) as err:
            build_model(spec, data, "partial", priors)
        assert str(err.value) == expected
