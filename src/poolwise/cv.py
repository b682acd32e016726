"""Grouped K-fold cross-validation: how well each pooling model predicts groups it has not seen.

Observation-level LOO asks how well a model predicts another period of a gym it already knows;
the business question is about gyms that do not exist yet. Here each fold's groups are left out,
every model is refitted on the other groups, and the held-out observations are scored by their
posterior predictive density with the held-out group's coefficients drawn as a new group's would
be: from the fitted population (partial pooling), from the prior (no pooling), or the shared
values (complete pooling). Only the pointwise log-likelihoods of the held-out rows are kept.
"""

import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from poolwise import adapter, geometry
from poolwise.errors import PoolwiseError, PoolwiseWarning
from poolwise.fitting import build_model, check_prior_terms, checked_inputs, sample
from poolwise.pooling import POOLINGS
from poolwise.pooling import pooling as find_pooling
from poolwise.priors import Priors, resolve_priors
from poolwise.results import Fit
from poolwise.spec import FormulaSpec

DEFAULT_WORKERS = 2


@dataclass
class CV:
    """Grouped cross-validation of the pooling models of one formula.

    ``table`` has one row per model: ``elpd_cv`` (sum over held-out observations of the log
    predictive density), its ``se``, ``elpd_diff`` and ``dse`` against the best model, and the
    counts. ``pointwise`` has one row per observation (its group, fold and each model's log
    predictive density); ``log_lik[model]`` the held-out log-likelihood draws (chain, draw, obs).
    """

    formula: str
    folds: list[list]
    table: pd.DataFrame
    pointwise: pd.DataFrame
    log_lik: dict[str, xr.DataArray]
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def group_folds(
    groups: Sequence, folds: int | Sequence[Sequence] | None = None, *, seed: int | None = None
) -> list[list]:
    """Partition the distinct ``groups`` into folds: each group in exactly one fold.

    ``None`` leaves one group out per fold; an integer K deals the groups, shuffled with ``seed``,
    into K folds whose sizes differ by at most one; a list of lists is checked and used as given.
    """
    labels = list(pd.unique(pd.Series(list(groups))))
    if len(labels) < 2:
        raise PoolwiseError(f"grouped cross-validation needs at least 2 groups, the data have {len(labels)}")
    if folds is None:
        return [[label] for label in labels]
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        if not 2 <= folds <= len(labels):
            raise PoolwiseError(
                f"folds must be between 2 and the number of groups ({len(labels)}), got {folds}; or None for leave-one-group-out"
            )
        order = np.random.default_rng(seed).permutation(len(labels))
        return [[labels[i] for i in part] for part in np.array_split(order, int(folds))]
    given = [list(fold) for fold in folds]
    flat = [label for fold in given for label in fold]
    known = {str(label): label for label in labels}
    unknown = [label for label in flat if str(label) not in known]
    repeated = sorted({str(label) for label in flat if [str(x) for x in flat].count(str(label)) > 1})
    missing = sorted(set(known) - {str(label) for label in flat})
    if unknown or repeated or missing or any(not fold for fold in given) or len(given) < 2:
        raise PoolwiseError(
            f"folds must split the groups into at least 2 non-empty parts with each group in exactly one "
            f"(unknown: {unknown[:5]}, repeated: {repeated[:5]}, missing: {missing[:5]}); pass an integer K or None instead"
        )
    return [[known[str(label)] for label in fold] for fold in given]


def group_cv(
    formula: str,
    data: pd.DataFrame,
    *,
    family: str | None = None,
    folds: int | Sequence[Sequence] | None = None,
    poolings: Sequence[str] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    backend: str | None = None,
    priors: Priors = None,
    allow_unidentified: bool = False,
    workers: int = DEFAULT_WORKERS,
    executor: Executor | str | None = None,
    by: str | None = None,
    parameterization: str = "auto",
) -> CV:
    """Grouped K-fold cross-validation of the pooling models of ``formula`` (default: all three).

    ``folds=None`` is leave-one-group-out; ``by`` names the grouping factor whose levels are left
    out (default: the first in the formula; the others' levels are seen in every fold). Refits run in parallel: a process pool of ``workers``
    on this machine (``workers=1`` runs them here, one after another), or ``executor``: any
    ``concurrent.futures.Executor``, or a cluster address (``ray://host:10001`` for Ray, otherwise
    a Dask scheduler such as ``tcp://host:8786``). Seeds are derived per model and fold from
    ``seed``, so serial and parallel runs give the same numbers.
    """
    spec, prepared, notes, backend = checked_inputs(
        formula,
        data,
        family=family,
        draws=draws,
        tune=tune,
        chains=chains,
        backend=backend,
        allow_unidentified=allow_unidentified,
    )
    if spec.group is None:
        raise PoolwiseError(
            f"formula {formula!r} has no group term; grouped cross-validation needs one such as (1|group)"
        )
    spec = spec.focused(by)
    check_workers(workers)
    names = [find_pooling(name).name for name in (poolings or [entry.name for entry in POOLINGS])]
    seed = int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)
    folds = group_folds(prepared[spec.group], folds, seed=seed)
    # Priors resolved once on all the data: every refit is the model the user asked for, not one
    # with priors recomputed from the training groups.
    resolved = {name: resolve_priors(priors, spec, prepared, name) for name in names}
    if priors is not None:  # a typo in a term or preset fails here, not in every worker
        check_prior_terms(priors, {name: build_model(spec, prepared, name, resolved[name]) for name in names})
    result = run_folds(
        spec,
        prepared,
        folds,
        poolings=names,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        backend=backend,
        priors=resolved,
        allow_unidentified=allow_unidentified,
        workers=workers,
        executor=executor,
        parameterization=geometry.choose(spec, prepared, parameterization),
    )
    result.notes[:0] = notes
    return result


def run_folds(
    spec: FormulaSpec,
    data: pd.DataFrame,
    folds: list[list],
    *,
    poolings: Sequence[str],
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    backend: str,
    priors: dict[str, dict[str, str]],
    allow_unidentified: bool,
    workers: int = DEFAULT_WORKERS,
    executor: Executor | str | None = None,
    parameterization: dict | None = None,
) -> CV:
    """Refit every model without each fold's groups and score the held-out rows (inputs already
    checked: ``data`` and ``spec`` as ``prepare_data`` returns them, ``folds`` a partition,
    ``priors`` each model's resolved prior strings, ``parameterization`` the group terms' layout
    chosen on all the data)."""
    check_workers(workers)
    fold_of = np.empty(len(data), dtype=int)
    in_group = data[spec.group].astype(str).to_numpy()
    for number, fold in enumerate(folds):
        fold_of[np.isin(in_group, [str(label) for label in fold])] = number
    settings = {"draws": draws, "tune": tune, "chains": chains, "backend": backend}
    tasks = []
    canonical = [entry.name for entry in POOLINGS]
    for name in poolings:
        for number in range(len(folds)):
            held_out = fold_of == number
            # Seeds depend on the model and fold only, not on the run order or the models asked for.
            fit_seed, score_seed = np.random.SeedSequence([seed, canonical.index(name), number]).generate_state(2)
            # Every task refers to the same DataFrame and slices it in the worker, so the parent
            # holds one copy of the data however many refits are queued.
            tasks.append(
                {
                    "spec": spec,
                    "pooling": name,
                    "fold": number,
                    "priors": priors[name],
                    "parameterization": parameterization,
                    "data": data,
                    "rows": np.flatnonzero(held_out),
                    "seed": int(fit_seed),
                    "score_seed": int(score_seed),
                    "allow_unidentified": allow_unidentified,
                    **settings,
                }
            )
    started = time.perf_counter()
    with _executor(executor, workers) as pool:
        try:
            results = (
                list(pool.map(_refit_and_score, tasks)) if pool is not None else [_refit_and_score(t) for t in tasks]
            )
        except BrokenProcessPool:
            raise PoolwiseError(
                "a cross-validation worker process died: in a script, put the code that calls poolwise under "
                '`if __name__ == "__main__":` (worker processes re-import it); if memory ran out, use fewer workers'
            ) from None
    log_lik = {}
    for name in poolings:
        values = np.empty((chains, draws, len(data)))
        for task, result in zip(tasks, results):
            if task["pooling"] == name:
                values[..., task["rows"]] = result["log_lik"]
        log_lik[name] = xr.DataArray(
            values,
            dims=("chain", "draw", "obs"),
            coords={"obs": np.arange(len(data)), "group": ("obs", data[spec.group].to_numpy())},
        )
    pointwise = pd.DataFrame({"group": data[spec.group].to_numpy(), "fold": fold_of})
    for name, values in log_lik.items():
        pointwise[name] = pointwise_elpd(values.to_numpy())
    notes = _sampling_notes(results)
    for note in notes:
        warnings.warn(PoolwiseWarning(note), stacklevel=3)
    settings.update(
        seed=seed,
        folds=len(folds),
        refits=len(tasks),
        seconds=round(time.perf_counter() - started, 1),
        executor=_describe(executor, workers),
    )
    return CV(
        spec.formula,
        folds,
        cv_table(pointwise[list(poolings)], n_folds=len(folds)),
        pointwise,
        log_lik,
        settings,
        notes,
    )


def check_workers(workers: int) -> None:
    """Refuse a worker count that is not a whole number >= 1 before any sampling."""
    if not isinstance(workers, (int, np.integer)) or isinstance(workers, bool) or workers < 1:
        raise PoolwiseError(
            f"workers must be a whole number >= 1 (1 runs the refits one after another), got {workers!r}"
        )


def pointwise_elpd(log_lik: np.ndarray) -> np.ndarray:
    """Log predictive density of each observation: log of the mean over draws of its likelihood,
    computed as a log-sum-exp so tiny likelihoods do not underflow. ``log_lik`` is (chain, draw, obs)."""
    flat = log_lik.reshape(-1, log_lik.shape[-1])
    return logsumexp(flat, axis=0) - np.log(flat.shape[0])


def cv_table(pointwise: pd.DataFrame, *, n_folds: int | None = None) -> pd.DataFrame:
    """elpd (sum of the pointwise columns), se = sqrt(n var), and the paired difference to the best
    model with its se, one row per model (column), best first."""
    n = len(pointwise)
    elpd = pointwise.sum()
    best = elpd.idxmax()
    rows = []
    for name in pointwise.columns:
        diff = pointwise[name] - pointwise[best]
        rows.append(
            {
                "model": name,
                "elpd_cv": float(elpd[name]),
                "se": float(np.sqrt(n * np.var(pointwise[name].to_numpy()))),
                "elpd_diff": float(diff.sum()),
                "dse": float(np.sqrt(n * np.var(diff.to_numpy()))),
                "n_obs": n,
                "n_folds": n_folds,
            }
        )
    return pd.DataFrame(rows).sort_values("elpd_cv", ascending=False).set_index("model")


def new_group_log_lik(fit: Fit, data: pd.DataFrame, *, seed: int | None = None) -> np.ndarray:
    """Pointwise log-likelihood draws (chain, draw, row) of count rows from groups ``fit`` never saw.

    Each new group gets coefficients drawn as a new group's: partial pooling draws them from the
    population (mean plus the group sd times a standard normal, per posterior draw), no pooling
    from their prior, complete pooling has none. Rows of the same new group share the draws.
    """
    spec, posterior = fit.spec, fit.posterior
    posterior = posterior.drop_dims([d for d in ("__obs__",) if d in posterior.dims])
    rng = np.random.default_rng(seed)
    variables = _group_variables(fit)
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    if not variables:
        return adapter.log_likelihood(fit.model, posterior, data)
    slots = [str(label) for label in posterior[next(iter(variables.values()))].values]
    value_of = {str(value): value for value in fit.data[spec.group].unique()}
    new_groups = list(pd.unique(data[spec.group]))
    out = np.empty((*shape, len(data)))
    # Each new group borrows one fitted group's slot, its coefficients overwritten; groups beyond
    # the number of slots go in further rounds.
    for start in range(0, len(new_groups), len(slots)):
        chunk = new_groups[start : start + len(slots)]
        modified = posterior.copy()
        prior = (
            _prior_draws(fit, list(variables), shape[0] * shape[1] * len(chunk), rng) if fit.pooling == "none" else None
        )
        population = [_population_draws(fit, posterior, list(variables), rng) for _ in chunk] if prior is None else None
        for var, dim in variables.items():
            values = posterior[var]
            order = [d for d in values.dims if d != dim] + [dim]
            array = values.transpose(*order).to_numpy().copy()
            labels = [str(label) for label in values[dim].values]
            for k in range(len(chunk)):
                slot = labels.index(slots[k])
                if prior is None:
                    array[..., slot] = population[k][var]
                else:
                    block = prior[var].to_numpy()[0, k * shape[0] * shape[1] : (k + 1) * shape[0] * shape[1]]
                    array[..., slot] = block[..., slot].reshape(shape + array.shape[2:-1])
            modified[var] = (order, array)
        rows = data[spec.group].isin(chunk).to_numpy()
        mapped = data[rows].assign(
            **{spec.group: data.loc[rows, spec.group].map({g: value_of[slots[k]] for k, g in enumerate(chunk)})}
        )
        out[..., rows] = adapter.log_likelihood(fit.model, modified, mapped)
    return out


def _group_variables(fit: Fit) -> dict[str, str]:
    """Posterior variables holding per-group coefficients, each with its group dimension."""
    if fit.pooling == "complete" or fit.spec.group is None:
        return {}
    return adapter.group_variables(fit.model, fit.pooling, fit.spec.group, fit.posterior)


def _population_draws(
    fit: Fit, posterior: xr.Dataset, variables: list[str], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One new group's deviation per group-specific variable: mu + sigma * z per posterior draw,
    the z's correlated as the model's group terms are (lme4's ``(1 + x|g)``), else independent."""
    sigmas, mus = {}, {}
    for var in variables:
        prior = adapter.term_prior(fit.model, var)
        if prior.name != "Normal":
            raise PoolwiseError(
                f"cannot draw new groups for {var} with a {prior.name} prior; use Normal(mu=0, sigma=...) for group terms"
            )
        sd = adapter.sd_of(var)
        sigma = (
            posterior[sd]
            if sd in posterior
            else xr.full_like(posterior["chain"] * posterior["draw"], prior.args["sigma"], dtype=float)
        )
        sigmas[var], mus[var] = sigma.transpose("chain", "draw", ...).to_numpy(), float(prior.args.get("mu", 0.0))
    z = {var: rng.standard_normal(sigmas[var].shape) for var in variables}
    factor = fit.spec.factor
    matrix = adapter.correlation_matrix(posterior, factor.names, factor.name) if factor is not None else None
    if matrix is not None:
        names = [adapter.group_term(term, factor.name) for term in factor.names]
        stacked = np.stack([z[name] for name in names], axis=-1)
        mixed = np.einsum("cdij,cdj->cdi", np.linalg.cholesky(matrix), stacked)
        z.update({name: mixed[..., k] for k, name in enumerate(names)})
    return {var: mus[var] + sigmas[var] * z[var] for var in variables}


def _prior_draws(fit: Fit, variables: list[str], count: int, rng: np.random.Generator) -> xr.Dataset:
    """``count`` prior draws of the given coefficients (no pooling scores new groups by its prior)."""
    return adapter.prior_draws(fit.model, variables, count, int(rng.integers(2**31)))


def _refit_and_score(task: dict) -> dict:
    """One refit: fit ``pooling`` to the training groups, score the held-out rows (runs in a worker)."""
    started = time.perf_counter()
    data = task["data"]
    held_out = np.zeros(len(data), dtype=bool)
    held_out[task["rows"]] = True
    train, test = data[~held_out].reset_index(drop=True), data[held_out].reset_index(drop=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PoolwiseWarning)
        built = build_model(
            task["spec"], train, task["pooling"], task["priors"], parameterization=task["parameterization"]
        )
        fit = sample(
            task["spec"],
            train,
            task["pooling"],
            built,
            notes=[],
            draws=task["draws"],
            tune=task["tune"],
            chains=task["chains"],
            seed=task["seed"],
            backend=task["backend"],
            allow_unidentified=task["allow_unidentified"],
            progress=False,
            log_likelihood=False,
        )
        log_lik = new_group_log_lik(fit, test, seed=task["score_seed"])
    messages = [str(w.message) for w in caught if issubclass(w.category, PoolwiseWarning)]
    return {
        "pooling": task["pooling"],
        "fold": task["fold"],
        "log_lik": log_lik,
        "messages": messages,
        "seconds": time.perf_counter() - started,
    }


def _sampling_notes(results: list[dict]) -> list[str]:
    """One line per model whose refits warned, instead of one warning per refit."""
    notes = []
    for name in dict.fromkeys(r["pooling"] for r in results):
        warned = [r for r in results if r["pooling"] == name and r["messages"]]
        if warned:
            first = warned[0]["messages"][0]
            notes.append(
                f"grouped CV, {find_pooling(name).label.lower()}: {len(warned)} of "
                f"{sum(r['pooling'] == name for r in results)} refits warned, e.g. fold {warned[0]['fold'] + 1}: {first}"
            )
    return notes


@contextmanager
def _executor(executor: Executor | str | None, workers: int):
    """The executor the refits are mapped over (None: run them here, one after another)."""
    if isinstance(executor, Executor):
        yield executor
    elif isinstance(executor, str) and executor.startswith("ray://"):
        try:
            from ray.util.multiprocessing import Pool
        except ImportError:
            raise PoolwiseError("a ray:// address needs Ray: pip install 'ray[default]'") from None
        pool = Pool(ray_address=executor)
        try:
            yield pool
        finally:
            pool.close()
    elif isinstance(executor, str):
        try:
            from distributed import Client
        except ImportError:
            raise PoolwiseError(
                f"cluster address {executor!r} needs Dask: pip install distributed (or use ray://... for Ray)"
            ) from None
        with Client(executor) as client:
            yield client.get_executor()
    elif executor is not None:
        raise PoolwiseError(
            f"executor must be a concurrent.futures.Executor or a cluster address, got {type(executor).__name__}"
        )
    elif workers == 1:
        yield None
    else:
        # spawn, not fork: the parent may hold sampler threads, and forking those can deadlock.
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            yield pool


def _describe(executor: Executor | str | None, workers: int) -> str:
    if executor is None:
        return "serial" if workers == 1 else f"process pool ({workers} workers)"
    return executor if isinstance(executor, str) else type(executor).__name__
