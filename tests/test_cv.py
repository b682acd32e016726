"""Grouped cross-validation: folds, the table, and the gym comparison run in parallel and serially
(the refits themselves, masked against true refits, are checked in test_refits.py)."""

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poolwise as pw
from poolwise.cv import cv_table, group_cv, group_folds, pointwise_elpd

from helpers import GYM_FORMULA


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
    assert (study["elpd_cv"] < study["elpd"]).all()
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


def test_own_models_whose_rows_are_in_another_order_are_refused_before_refitting():
    from dataclasses import replace

    from poolwise.cv import fits_cv

    from helpers import TINY

    fit = pw.load_fit(TINY / "partial.nc")
    reordered = replace(fit, data=fit.data.iloc[::-1].reset_index(drop=True))
    with pytest.raises(pw.PoolwiseError) as err:
        fits_cv({"m1": fit, "m2": reordered}, folds=2, seed=1)
    assert str(err.value) == (
        "grouped cross-validation matches the models' rows by position, and m2's rows are not in the same order as "
        "the others' (each formula aggregated them by its own predictors); compare them by LOO, without --cv"
    )
