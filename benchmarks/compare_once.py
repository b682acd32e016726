"""One end-to-end comparison in this (fresh) process; prints a JSON line of timings.

Run by bench.py in a subprocess so import and compilation are included:
``python compare_once.py KIND BACKEND DATASET [GROUPS]`` with KIND one of poolwise (compare, LOO
terms with Pareto k > 0.7 refitted), poolwise-nofix (plain PSIS-LOO), poolwise-mm (moment matching
first), logo (leave-one-group-out CV of the three models, no full fits), kfold10 (10-fold grouped
CV of partial pooling), partial, plain, numpyro-ref (poolwise kinds use the chapter's (yogaStretch|gymID)).
"""

import json
import resource
import sys
import time
import warnings

START = time.perf_counter()

# The chapter's formula as lme4 users write it: correlated intercept and slope (issue 24).
FORMULA = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)"
PLAIN = {
    "complete": "p(nSigned, nTrialCustomers) ~ yogaStretch",
    "none": "p(nSigned, nTrialCustomers) ~ 0 + C(gymID) + C(gymID):yogaStretch",
    "partial": "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)",
}


def data(name: str, groups: int):
    import poolwise as pw

    if name == "gym":
        return pw.load_dataset("gym")
    return pw.simulate_franchise(groups=groups, periods=12, seed=1)[0]


def min_ess(idata) -> float:
    import arviz as az

    return float(az.ess(idata["posterior"].to_dataset()).to_array().min())


def max_rhat(idata) -> float:
    import arviz as az

    return float(az.rhat(idata["posterior"].to_dataset()).to_array().max())


def run_poolwise(backend: str, frame, fix_loo: str = "refit") -> dict:
    import poolwise as pw

    study = pw.compare(FORMULA, frame, seed=1, backend=backend, fix_loo=fix_loo)
    return {
        name: {
            "sampling_s": fit.idata["posterior"].attrs.get("sampling_time"),
            "min_ess": min_ess(fit.idata),
            "max_rhat": max_rhat(fit.idata),
            "elpd_loo": float(study.table.loc[name, "elpd"]),
            "bad_k": int(study.table.loc[name, "n_bad_k"]),
        }
        for name, fit in study.fits.items()
    }


def run_cv(frame, folds: int | None, poolings: list[str] | None) -> dict:
    """Grouped CV alone: every refit one compiled model per structure (sampling time not split out)."""
    import poolwise as pw

    cv = pw.group_cv(FORMULA, frame, seed=1, folds=folds, poolings=poolings)
    return {
        name: {"sampling_s": None, "min_ess": float("nan"), "elpd_loo": float(row["elpd_cv"])}
        for name, row in cv.table.iterrows()
    }


def run_partial(backend: str, frame, formula: str = FORMULA) -> dict:
    """Partial pooling alone: the model the scale benchmark (1,000 groups) is about."""
    import poolwise as pw

    fit = pw.fit(formula, frame, seed=1, backend=backend)
    return {
        "partial": {
            "sampling_s": fit.idata["posterior"].attrs.get("sampling_time"),
            "min_ess": min_ess(fit.idata),
            "max_rhat": max_rhat(fit.idata),
            "elpd_loo": float("nan"),
        }
    }


def run_plain(backend: str, frame) -> dict:
    """The script an analyst writes without poolwise: three Bambi models and arviz.compare."""
    import arviz as az
    import bambi as bmb

    fits = {}
    for name, formula in PLAIN.items():
        model = bmb.Model(formula, frame, family="binomial")
        fits[name] = model.fit(
            random_seed=1, inference_method=backend, progressbar=False, idata_kwargs={"log_likelihood": True}
        )
    table = az.compare(fits, round_to="none")
    return {
        name: {
            "sampling_s": fit["posterior"].attrs.get("sampling_time"),
            "min_ess": min_ess(fit),
            "max_rhat": max_rhat(fit),
            "elpd_loo": float(table.loc[name, "elpd"]),
        }
        for name, fit in fits.items()
    }


def run_numpyro_reference(backend: str, frame) -> dict:
    """The three models written directly in NumPyro (no Bambi, no PyMC), as a reference point.

    Same likelihood and structure as poolwise's templates (uncentred yogaStretch, non-centred
    group deviations); weakly informative Normal(0, 2.5) / HalfNormal(2.5) priors. The JAX
    compile cache is the one bench.py points poolwise at, so cold and warm mean the same here.
    """
    import os

    import arviz as az
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS, log_likelihood

    numpyro.set_host_device_count(4)  # four chains in parallel, as PyMC arranges for poolwise
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_compilation_cache_dir", os.path.join(os.environ["POOLWISE_CACHE_DIR"], "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    group = jnp.asarray(frame["gymID"].astype("category").cat.codes.to_numpy())
    n_groups = int(group.max()) + 1
    x = jnp.asarray(frame["yogaStretch"].to_numpy(), dtype=float)
    trials = jnp.asarray(frame["nTrialCustomers"].to_numpy())
    signed = jnp.asarray(frame["nSigned"].to_numpy())

    def complete(signed=None):
        alpha = numpyro.sample("alpha", dist.Normal(0, 2.5))
        beta = numpyro.sample("beta", dist.Normal(0, 2.5))
        numpyro.sample("y", dist.Binomial(trials, logits=alpha + beta * x), obs=signed)

    def none(signed=None):
        with numpyro.plate("groups", n_groups):
            alpha = numpyro.sample("alpha", dist.Normal(0, 2.5))
            beta = numpyro.sample("beta", dist.Normal(0, 2.5))
        numpyro.sample("y", dist.Binomial(trials, logits=alpha[group] + beta[group] * x), obs=signed)

    def partial(signed=None):
        mu_a = numpyro.sample("mu_alpha", dist.Normal(0, 2.5))
        mu_b = numpyro.sample("mu_beta", dist.Normal(0, 2.5))
        sd_a = numpyro.sample("sd_alpha", dist.HalfNormal(2.5))
        sd_b = numpyro.sample("sd_beta", dist.HalfNormal(2.5))
        with numpyro.plate("groups", n_groups):
            z_a = numpyro.sample("z_alpha", dist.Normal(0, 1))
            z_b = numpyro.sample("z_beta", dist.Normal(0, 1))
        logits = mu_a + sd_a * z_a[group] + (mu_b + sd_b * z_b[group]) * x
        numpyro.sample("y", dist.Binomial(trials, logits=logits), obs=signed)

    fits, seconds = {}, {}
    for offset, (name, model) in enumerate({"complete": complete, "none": none, "partial": partial}.items()):
        start = time.perf_counter()
        mcmc = MCMC(NUTS(model), num_warmup=1000, num_samples=1000, num_chains=4, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(1 + offset), signed=signed)
        loglik = log_likelihood(model, mcmc.get_samples(), signed=signed)
        fits[name] = az.from_numpyro(mcmc, log_likelihood=loglik)
        seconds[name] = time.perf_counter() - start
    table = az.compare(fits, round_to="none")
    return {
        name: {
            "sampling_s": seconds[name],
            "min_ess": min_ess(fit),
            "max_rhat": max_rhat(fit),
            "elpd_loo": float(table.loc[name, "elpd"]),
        }
        for name, fit in fits.items()
    }


def main() -> None:
    kind, backend, dataset = sys.argv[1:4]
    groups = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    warnings.filterwarnings("ignore")
    frame = data(dataset, groups)
    imported = time.perf_counter() - START
    runs = {
        "poolwise": run_poolwise,
        "poolwise-nofix": lambda backend, frame: run_poolwise(backend, frame, "off"),
        "poolwise-mm": lambda backend, frame: run_poolwise(backend, frame, "moment_match"),
        "logo": lambda backend, frame: run_cv(frame, None, None),
        "kfold10": lambda backend, frame: run_cv(frame, 10, ["partial"]),
        "partial": run_partial,
        "plain": run_plain,
        "numpyro-ref": run_numpyro_reference,
    }
    models = runs[kind](backend, frame)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"import_s": imported, "models": models, "peak_mb": peak_mb}))


if __name__ == "__main__":
    main()
