"""Grouped cross-validation: folds, the new-group scores against integrals done another way, and
the gym comparison run in parallel and serially."""

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logsumexp
from scipy.stats import binom, norm

import poolwise as pw
from poolwise.cv import cv_table, group_cv, group_folds, new_group_log_lik, pointwise_elpd

GYM_FORMULA = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"


def test_leave_one_group_out_is_the_default():
    assert group_folds([3, 1, 3, 2, 1]) == [[3], [1], [2]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=2, max_size=60).filter(lambda g: len(set(g)) >= 2), st.data())
def test_k_folds_partition_the_groups_exactly(groups, data):
    labels = set(groups)
    k = data.draw(st.integers(2, len(labels)))
    folds = group_folds(groups, k, seed=data.draw(st.integers(0, 10)))
    flat = [g for fold in folds for g in fold]
    assert len(folds) == k and all(folds)
    assert sorted(flat) == sorted(labels)  # every group once, none twice
    assert max(map(len, folds)) - min(map(len, folds)) <= 1


def test_k_folds_are_seeded():
    groups = list(range(12))
    assert group_folds(groups, 3, seed=1) == group_folds(groups, 3, seed=1)
    assert group_folds(groups, 3, seed=1) != group_folds(groups, 3, seed=2)


def test_given_folds_are_used_as_a_partition():
    assert group_folds(["a", "b", "c"], [["c"], ["a", "b"]]) == [["c"], ["a", "b"]]
    assert group_folds([1, 2, 3], [["1", "2"], ["3"]]) == [[1, 2], [3]]  # labels as the CLI reads them


@pytest.mark.parametrize(
    "folds, message",
    [
        (1, r"^folds must be between 2 and the number of groups \(3\), got 1"),
        (4, r"^folds must be between 2 and the number of groups \(3\), got 4"),
        ([["a", "b"], ["b", "c"]], r"repeated: \['b'\]"),
        ([["a"], ["b"]], r"missing: \['c'\]"),
        ([["a", "b", "c", "d"], []], r"unknown: \['d'\]"),
    ],
)
def test_bad_folds(folds, message):
    with pytest.raises(pw.PoolwiseError, match=message):
        group_folds(["a", "b", "c"], folds)


def test_bad_cv_settings_fail_before_sampling(gym):
    with pytest.raises(pw.PoolwiseError, match=r"^unknown cv 'loo'; use cv='group'"):
        pw.compare(GYM_FORMULA, gym, cv="loo")
    with pytest.raises(pw.PoolwiseError, match=r"^workers must be a whole number >= 1"):
        pw.compare(GYM_FORMULA, gym, cv="group", workers=0)
    with pytest.raises(pw.PoolwiseError, match=r"^folds must be between 2 and the number of groups \(12\), got 13"):
        group_cv(GYM_FORMULA, gym, folds=13)
    with pytest.raises(pw.PoolwiseError, match=r"has no group term"):
        group_cv("p(nSigned, nTrialCustomers) ~ yogaStretch", gym)


def test_cluster_addresses_need_their_packages(gym, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(
        pw.PoolwiseError, match=r"^cluster address 'tcp://127.0.0.1:8786' needs Dask: pip install distributed"
    ):
        group_cv(GYM_FORMULA, gym, folds=2, executor="tcp://127.0.0.1:8786")
    with pytest.raises(pw.PoolwiseError, match=r"^a ray:// address needs Ray: pip install 'ray\[default\]'$"):
        group_cv(GYM_FORMULA, gym, folds=2, executor="ray://127.0.0.1:10001")
    with pytest.raises(
        pw.PoolwiseError, match=r"^executor must be a concurrent.futures.Executor or a cluster address, got int$"
    ):
        group_cv(GYM_FORMULA, gym, folds=2, executor=4)


def test_pointwise_elpd_is_the_log_mean_likelihood():
    rng = np.random.default_rng(0)
    log_lik = rng.normal(-3, 1, size=(2, 50, 4))
    expected = np.log(np.exp(log_lik).reshape(100, 4).mean(axis=0))
    np.testing.assert_allclose(pointwise_elpd(log_lik), expected, rtol=1e-12)
    # Likelihoods of e^-1000 underflow to 0 in float64; the log-sum-exp keeps them.
    np.testing.assert_allclose(pointwise_elpd(log_lik - 1000), expected - 1000, rtol=1e-12)


def test_cv_table_sums_and_se():
    pointwise = pd.DataFrame({"a": [-1.0, -2.0, -3.0, -2.0], "b": [-1.5, -2.0, -4.0, -2.5]})
    table = cv_table(pointwise, n_folds=2)
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "elpd_cv"] == -8.0 and table.loc["b", "elpd_cv"] == -10.0
    assert table.loc["a", "se"] == pytest.approx(np.sqrt(4 * np.var([-1, -2, -3, -2])))
    assert table.loc["b", "elpd_diff"] == -2.0
    assert table.loc["b", "dse"] == pytest.approx(np.sqrt(4 * np.var([-0.5, 0, -1, -0.5])))
    assert table.loc["a", "dse"] == 0.0


def _exact_lpd(k: int, n: int, mean: np.ndarray, sd: np.ndarray) -> float:
    """log mean over draws of the integral of Binomial(k | n, expit(mean + sd z)) over z ~ N(0, 1),
    by a fine grid in z: the same quantity the sampler estimates with one z per draw."""
    z = np.linspace(-8, 8, 1601)
    weights = norm.pdf(z) / norm.pdf(z).sum()
    log_like = binom.logpmf(k, n, expit(mean[:, None] + sd[:, None] * z[None, :]))
    per_draw = logsumexp(log_like + np.log(weights), axis=1)
    return float(logsumexp(per_draw) - np.log(len(per_draw)))


def _mc_se(log_lik: np.ndarray) -> float:
    """Monte Carlo se of a log-mean-exp estimate (delta method)."""
    like = np.exp(log_lik - log_lik.max())
    return float(like.std() / like.mean() / np.sqrt(like.size))


def _new_gyms(gym: pd.DataFrame) -> pd.DataFrame:
    """Gyms 1 and 8 again, relabelled as gyms no fit has seen (x = 1 and x = 0 rows)."""
    rows = gym[gym["gymID"].isin([1, 8])].copy()
    rows["gymID"] = rows["gymID"].map({1: 101, 8: 108})
    return rows.reset_index(drop=True)


@pytest.mark.slow
def test_complete_pooling_scores_new_groups_with_the_shared_rate(gym_study, gym):
    fit, new = gym_study.fits["complete"], _new_gyms(gym)
    post = fit.posterior
    eta = (
        post["Intercept"].to_numpy()[..., None]
        + post["yogaStretch"].to_numpy()[..., None] * new["yogaStretch"].to_numpy()
    )
    expected = binom.logpmf(new["nSigned"].to_numpy(), new["nTrialCustomers"].to_numpy(), expit(eta))
    np.testing.assert_allclose(new_group_log_lik(fit, new, seed=1), expected, rtol=1e-8)


@pytest.mark.slow
def test_partial_pooling_scores_new_groups_from_the_population(gym_study, gym):
    """A new gym's intercept and slope deviations are N(0, sigma) per posterior draw, so its logit
    rate at x is N(alpha + beta x, sqrt(sigma_a^2 + x^2 sigma_b^2)): integrate that on a grid."""
    fit, new = gym_study.fits["partial"], _new_gyms(gym)
    post = {
        name: fit.posterior[name].to_numpy().reshape(-1)
        for name in ("Intercept", "yogaStretch", "1|gymID_sigma", "yogaStretch|gymID_sigma")
    }
    log_lik = new_group_log_lik(fit, new, seed=2).reshape(-1, len(new))
    for i, (k, n, x) in enumerate(new[["nSigned", "nTrialCustomers", "yogaStretch"]].itertuples(index=False)):
        mean = post["Intercept"] + post["yogaStretch"] * x
        sd = np.sqrt(post["1|gymID_sigma"] ** 2 + x**2 * post["yogaStretch|gymID_sigma"] ** 2)
        exact = _exact_lpd(k, n, mean, sd)
        assert abs(pointwise_elpd(log_lik[:, [i]])[0] - exact) < 4 * _mc_se(log_lik[:, i]) + 0.01, (i, k, n, x)


@pytest.mark.slow
def test_no_pooling_scores_new_groups_with_the_prior(gym_study, gym):
    fit, new = gym_study.fits["none"], _new_gyms(gym)
    terms = fit.model.components["p"].common_terms
    alpha, beta = terms["C(gymID)"].prior.args, terms["C(gymID):yogaStretch"].prior.args
    log_lik = new_group_log_lik(fit, new, seed=3).reshape(-1, len(new))
    for i, (k, n, x) in enumerate(new[["nSigned", "nTrialCustomers", "yogaStretch"]].itertuples(index=False)):
        first = {
            name: np.atleast_1d(value)[0]
            for name, value in (
                ("a_mu", alpha["mu"]),
                ("a_sd", alpha["sigma"]),
                ("b_mu", beta["mu"]),
                ("b_sd", beta["sigma"]),
            )
        }
        mean = np.array([first["a_mu"] + first["b_mu"] * x])
        sd = np.array([np.sqrt(first["a_sd"] ** 2 + x**2 * first["b_sd"] ** 2)])
        exact = _exact_lpd(k, n, mean, sd)
        assert abs(pointwise_elpd(log_lik[:, [i]])[0] - exact) < 4 * _mc_se(log_lik[:, i]) + 0.01, (i, k, n, x)


CV_SETTINGS = {"draws": 200, "tune": 200, "chains": 2, "seed": 3, "folds": 3}


@pytest.fixture(scope="module")
def gym_cv_study(gym):
    """compare(cv='group') on gym: 3 folds of 4 gyms, refits in a pool of 2 worker processes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        return pw.compare(GYM_FORMULA, gym, cv="group", workers=2, **CV_SETTINGS)


@pytest.mark.slow
def test_partial_pooling_predicts_new_gyms_better_than_complete_pooling(gym_cv_study, gym):
    cv = gym_cv_study.cv
    assert cv.settings["executor"] == "process pool (2 workers)" and cv.settings["refits"] == 9
    assert sorted(g for fold in cv.folds for g in fold) == list(range(1, 13))
    assert (cv.pointwise.groupby("group")["fold"].nunique() == 1).all()  # a gym's rows stay in one fold
    table = cv.table
    assert table.index[0] == "partial"
    assert -(table.loc["complete", "elpd_diff"]) > 2 * table.loc["complete", "dse"]
    assert -175 < table.loc["partial", "elpd_cv"] < -145  # brms kfold(group = "gymID"): about -159 (se 5.5)
    # Next to LOO: leaving whole gyms out costs more than leaving single periods out.
    study = gym_cv_study.table
    assert {"elpd_cv", "se_cv"} <= set(study.columns)
    assert (study["elpd_cv"] < study["elpd_loo"]).all()
    assert cv.log_lik["partial"].shape == (2, 200, len(gym))


@pytest.mark.slow
def test_serial_and_parallel_cv_give_the_same_numbers(gym_cv_study, gym):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        serial = group_cv(GYM_FORMULA, gym, poolings=["partial"], workers=1, **CV_SETTINGS)
    assert serial.settings["executor"] == "serial"
    assert serial.folds == gym_cv_study.cv.folds
    np.testing.assert_array_equal(serial.pointwise["partial"], gym_cv_study.cv.pointwise["partial"])
    assert serial.table.loc["partial", "elpd_cv"] == gym_cv_study.cv.table.loc["partial", "elpd_cv"]
