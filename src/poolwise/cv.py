"""Grouped K-fold cross-validation: how well each pooling model predicts groups it has not seen.

Observation-level LOO asks how well a model predicts another period of a gym it already knows;
the business question is about gyms that do not exist yet. Here each fold's groups are left out,
every model is refitted on the other groups, and the held-out observations are scored by their
posterior predictive density. Refits reuse one compiled sampler per model (``poolwise.refits``):
the held-out rows get weight 0, so their group's coefficients are drawn as a new group's would be,
from the fitted population (partial pooling) or the prior (no pooling); complete pooling has
only the shared values. Only the pointwise log-likelihoods of the held-out rows are kept.
"""

import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from poolwise import geometry, seeds
from poolwise.errors import PoolwiseError, PoolwiseWarning
from poolwise.fitting import build_model, check_prior_terms, checked_inputs
from poolwise.pooling import POOLINGS
from poolwise.pooling import pooling as find_pooling
from poolwise.priors import Priors, resolve_priors
from poolwise.refits import refitter, release_memory
from poolwise.results import Fit
from poolwise.spec import FormulaSpec

# One process: each model's folds run in one batch on its compiled program. More workers take
# one model each (worth it on a cluster); the programs they trace and compile are cached on disk.
DEFAULT_WORKERS = 1


@dataclass
class CV:
    """Grouped cross-validation of the pooling models of one formula.

    Parameters
    ----------
    formula : str
        The user's formula.
    folds : list of list
        The group labels left out in each fold.
    table : pandas.DataFrame
        One row per model, best first (``cv_table``): ``elpd_cv`` (sum over held-out observations of
        the log predictive density), its ``se``, ``elpd_diff`` and ``dse`` against the best model,
        and the counts.
    pointwise : pandas.DataFrame
        One row per observation: its group, fold and each model's log predictive density.
    log_lik : dict of str to xarray.DataArray
        Model -> the held-out log-likelihood draws (chain, draw, obs).
    settings : dict
        Sampler settings, seed, counts of folds and refits, seconds taken and where the refits ran.
    notes : list of str
        What the data stage changed and which models' refits warned.

    Examples
    --------
    >>> cv = group_cv("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", gym)  # doctest: +SKIP
    >>> cv.table[["elpd_cv", "se"]]  # doctest: +SKIP
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

    Parameters
    ----------
    groups : sequence
        The group of each row (repeats are fine) or the distinct groups.
    folds : int, list of lists or None
        ``None`` leaves one group out per fold; an integer K deals the groups, shuffled with
        ``seed``, into K folds whose sizes differ by at most one; a list of lists is checked and
        used as given, its labels matched to the groups by their text (``"3"`` finds group 3).
    seed : int, optional
        Seed of the shuffle for an integer ``folds``.

    Returns
    -------
    list of list
        The groups of each fold, as labelled in ``groups``.

    Raises
    ------
    PoolwiseError
        Fewer than 2 groups, an integer outside 2 to the number of groups, or lists that are not a
        partition of the groups into at least 2 non-empty folds.

    Examples
    --------
    >>> group_folds(["a", "a", "b", "c"])
    [['a'], ['b'], ['c']]
    >>> group_folds(["a", "b", "c", "d"], [["a", "c"], ["b", "d"]])
    [['a', 'c'], ['b', 'd']]
    >>> [len(fold) for fold in group_folds(range(5), 2, seed=1)]
    [3, 2]
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
    priors: Priors = None,
    allow_unidentified: bool = False,
    workers: int = DEFAULT_WORKERS,
    executor: Executor | str | None = None,
    by: str | None = None,
    parameterization: str = "auto",
    missing: str = "drop",
    link: str | None = None,
) -> CV:
    """Grouped K-fold cross-validation of the pooling models of ``formula`` (default: all three).

    Each fold's groups are left out, each model refitted on the rest (one compiled sampler per model,
    ``poolwise.refits``) and the held-out observations scored. Priors are resolved once on all the
    data, so every refit is the model the user asked for. Seeds are derived per model and fold from
    ``seed``, so serial and parallel runs give the same numbers.

    Parameters
    ----------
    formula : str
        An lme4/brms-style formula with a group term.
    data : pandas.DataFrame
        The data.
    family : str, optional
        One of ``poolwise.families.NAMES``; without it the formula and data decide.
    folds : int, list of lists or None
        As ``group_folds``: None is leave-one-group-out.
    poolings : sequence of str, optional
        The models (names or aliases); default all three.
    draws, tune, chains : int
        Sampler settings of every refit.
    seed : int, optional
        Seeds the folds and every refit; None draws one, stored in ``settings``.
    priors : str or mapping, optional
        A preset name or term -> distribution strings, as ``fit`` takes them.
    allow_unidentified : bool, default False
        Run even when the design does not identify every coefficient.
    workers : int, default 1
        Processes on this machine; 1 runs the refits here, each model's folds in one batch on
        its compiled program; more take one model each.
    executor : concurrent.futures.Executor or str, optional
        Where to map the refits instead: any ``Executor``, or a cluster address (``ray://host:10001``
        for Ray, otherwise a Dask scheduler such as ``tcp://host:8786``).
    by : str, optional
        The grouping factor whose levels are left out (default: the first in the formula; the
        others' levels are seen in every fold).
    parameterization : str, default "auto"
        Partial pooling's group terms, as ``fit`` takes it; chosen once on all the data.
    missing : {"drop", "error"}, default "drop"
        Rows missing a value in a column the formula reads: dropped with a warning, or refused.
    link : str, optional
        The link, where the family has several (bernoulli, binomial, beta_binomial: logit,
        probit, cloglog); default: the family's own (logit).

    Returns
    -------
    CV

    Raises
    ------
    PoolwiseError
        Bad input (as ``fit``), a formula without a group term, bad ``folds``, ``workers`` or
        ``executor``, or a prior naming a term none of the models has.

    Warns
    -----
    PoolwiseWarning
        One line per model whose refits had divergent transitions.

    Examples
    --------
    >>> formula = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"
    >>> cv = group_cv(formula, load_dataset("gym"), folds=4, seed=1)  # doctest: +SKIP
    >>> cv.table  # doctest: +SKIP
    """
    spec, prepared, notes, _ = checked_inputs(
        formula,
        data,
        family=family,
        draws=draws,
        tune=tune,
        chains=chains,
        backend=None,
        allow_unidentified=allow_unidentified,
        missing=missing,
        link=link,
    )
    if spec.group is None:
        raise PoolwiseError(
            f"formula {formula!r} has no group term; grouped cross-validation needs one such as (1|group)"
        )
    spec = spec.focused(by)
    check_workers(workers)
    names = [find_pooling(name).name for name in (poolings or [entry.name for entry in POOLINGS])]
    seed = seeds.base(seed)
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
        priors=resolved,
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
    priors: dict[str, dict[str, str]],
    workers: int = DEFAULT_WORKERS,
    executor: Executor | str | None = None,
    parameterization: dict | None = None,
) -> CV:
    """Refit every model without each fold's groups and score the held-out rows (inputs already checked).

    Each task carries the whole DataFrame and the held-out row numbers, so the parent holds one copy
    of the data however many refits are queued.

    Parameters
    ----------
    spec : FormulaSpec
        The formula as ``prepare_data`` returns it, its group in focus.
    data : pandas.DataFrame
        The prepared data.
    folds : list of list
        A partition of the groups (``group_folds``).
    poolings : sequence of str
        Canonical pooling names.
    draws, tune, chains, seed : int
        Sampler settings; each refit's seed is derived from ``seed``, its model and fold.
    priors : dict of str to dict of str to str
        Model -> its resolved prior strings.
    workers : int, default 1
        Processes on this machine, as in ``group_cv``.
    executor : concurrent.futures.Executor or str, optional
        As in ``group_cv``.
    parameterization : dict, optional
        The group terms' layout chosen on all the data (``geometry.choose``).

    Returns
    -------
    CV

    Raises
    ------
    PoolwiseError
        A bad ``workers`` or ``executor``, or a worker process that died.

    Warns
    -----
    PoolwiseWarning
        One line per model whose refits had divergent transitions.

    Examples
    --------
    >>> run_folds(spec, prepared, group_folds(prepared[spec.group]), poolings=["partial"], draws=1000,
    ...           tune=1000, chains=4, seed=1, priors=resolved)  # doctest: +SKIP
    """
    canonical = [entry.name for entry in POOLINGS]
    models = {
        name: {
            "spec": spec,
            "data": data,
            "pooling": name,
            "priors": priors[name],
            "parameterization": parameterization,
            "index": canonical.index(name),
        }
        for name in poolings
    }
    settings = {"draws": draws, "tune": tune, "chains": chains, "seed": seed}
    return _run_models(spec.formula, models, data[spec.group], folds, settings, workers=workers, executor=executor)


def fits_cv(
    fits: Mapping[str, Fit],
    *,
    folds: int | Sequence[Sequence] | None = None,
    by: str | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    workers: int = DEFAULT_WORKERS,
    executor: Executor | str | None = None,
) -> CV:
    """Grouped K-fold cross-validation of fitted models of the same observations, as the analyst
    wrote them (``compare_models(cv="group")``): each model refitted without each fold's groups
    on its own compiled program, with its own priors and layout, and scored on the held-out rows.

    Parameters
    ----------
    fits : mapping of str to Fit
        Model name -> fit; the fits describe the same rows in the same order
        (``comparison.check_same_observations``).
    folds : int, list of lists or None
        As ``group_folds``: None is leave-one-group-out.
    by : str, optional
        The grouping factor whose groups are left out (default: the first model's group factor).
    draws, tune, chains : int
        Sampler settings of every refit.
    seed : int, optional
        Seeds the folds and every refit (model k, fold f: ``seeds.of_fold(seed, k, f)``).
    workers : int, default 1
        As in ``group_cv``.
    executor : concurrent.futures.Executor or str, optional
        As in ``group_cv``.

    Returns
    -------
    CV

    Raises
    ------
    PoolwiseError
        No model is grouped (or none by ``by``), or a bad ``workers``.

    Examples
    --------
    >>> fits_cv(study.fits, seed=1).table  # doctest: +SKIP
    """
    factor = by or next((fit.spec.group for fit in fits.values() if fit.spec.group), None)
    source = next((fit for fit in fits.values() if factor and factor in fit.data.columns), None)
    if source is None:
        raise PoolwiseError(
            "grouped cross-validation needs a group factor to leave out; none of the models has "
            + (f"{factor!r}" if factor else "a group term such as (1|group)")
        )
    # Rows are matched by position: every column two models keep must agree row by row.
    for name, fit in fits.items():
        shared = [column for column in fit.data.columns if column in source.data.columns]
        if any(
            not np.array_equal(fit.data[column].astype(str).to_numpy(), source.data[column].astype(str).to_numpy())
            for column in shared
        ):
            raise PoolwiseError(
                f"grouped cross-validation matches the models' rows by position, and {name}'s rows are not in the "
                "same order as the others' (each formula aggregated them by its own predictors); compare them by "
                "LOO, without --cv"
            )
    seed = seeds.base(seed)
    groups = source.data[factor].reset_index(drop=True)
    models = {
        name: {
            "spec": fit.spec,
            "data": fit.data,
            "pooling": fit.pooling,
            "priors": fit.priors,
            "parameterization": fit.settings.get("parameterization") or None,
            "index": index,
        }
        for index, (name, fit) in enumerate(fits.items())
    }
    formula = " vs ".join(fit.spec.formula for fit in fits.values())
    settings = {"draws": draws, "tune": tune, "chains": chains, "seed": seed}
    return _run_models(
        formula, models, groups, group_folds(groups, folds, seed=seed), settings, workers=workers, executor=executor
    )


def _run_models(
    formula: str,
    models: dict[str, dict],
    groups: pd.Series,
    folds: list[list],
    settings: dict,
    *,
    workers: int,
    executor: Executor | str | None,
) -> CV:
    """Refit every model of ``models`` (name -> spec, data, pooling, priors, parameterization and
    its seed index) without each fold's groups, rows matched by position, and score them."""
    check_workers(workers)
    draws, tune, chains, seed = (settings[key] for key in ("draws", "tune", "chains", "seed"))
    fold_of = np.empty(len(groups), dtype=int)
    in_group = groups.astype(str).to_numpy()
    for number, fold in enumerate(folds):
        fold_of[np.isin(in_group, [str(label) for label in fold])] = number
    # One task per model: its folds are refitted in one batch on one compiled program. Seeds
    # depend on the model and fold only, not on the run order or the models asked for. Every
    # task refers to the same DataFrame, so the parent holds one copy of the data.
    tasks = [
        {
            "name": name,
            **{key: model[key] for key in ("spec", "data", "pooling", "priors", "parameterization")},
            "rows": [np.flatnonzero(fold_of == number) for number in range(len(folds))],
            "seeds": [seeds.of_fold(seed, model["index"], number) for number in range(len(folds))],
            "draws": draws,
            "tune": tune,
            "chains": chains,
        }
        for name, model in models.items()
    ]
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
    for task, result in zip(tasks, results):
        values = np.empty((chains, draws, len(groups)))
        for rows, fold_log_lik in zip(task["rows"], result["log_lik"]):
            values[..., rows] = fold_log_lik
        log_lik[task["name"]] = xr.DataArray(
            values,
            dims=("chain", "draw", "obs"),
            coords={"obs": np.arange(len(groups)), "group": ("obs", groups.to_numpy())},
        )
    pointwise = pd.DataFrame({"group": groups.to_numpy(), "fold": fold_of})
    for name, values in log_lik.items():
        pointwise[name] = pointwise_elpd(values.to_numpy())
    notes = _sampling_notes(results)
    for note in notes:
        warnings.warn(PoolwiseWarning(note), stacklevel=4)
    recorded = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "folds": len(folds),
        "refits": len(tasks) * len(folds),
        "seconds": round(time.perf_counter() - started, 1),
        "executor": _describe(executor, workers),
        "sampler": "numpyro, each model's folds in one batch on one compiled program",
    }
    return CV(
        formula, folds, cv_table(pointwise[list(models)], n_folds=len(folds)), pointwise, log_lik, recorded, notes
    )


def check_workers(workers: int) -> None:
    """Refuse a worker count that is not a whole number >= 1 before any sampling.

    Parameters
    ----------
    workers : int
        The number of worker processes.

    Raises
    ------
    PoolwiseError
        ``workers`` is not a whole number (``True`` is not one) or is below 1.

    Examples
    --------
    >>> check_workers(2)
    >>> check_workers(0)
    Traceback (most recent call last):
        ...
    poolwise.errors.PoolwiseError: workers must be a whole number >= 1 (1 runs the refits one after another), got 0
    """
    if not isinstance(workers, (int, np.integer)) or isinstance(workers, bool) or workers < 1:
        raise PoolwiseError(
            f"workers must be a whole number >= 1 (1 runs the refits one after another), got {workers!r}"
        )


def pointwise_elpd(log_lik: np.ndarray) -> np.ndarray:
    """Log predictive density of each observation: the log of its likelihood's mean over the draws.

    It is computed as a log-sum-exp, so tiny likelihoods do not underflow.

    Parameters
    ----------
    log_lik : numpy.ndarray
        Log-likelihood draws, (chain, draw, obs).

    Returns
    -------
    numpy.ndarray
        One value per observation.

    Examples
    --------
    >>> import numpy as np
    >>> pointwise_elpd(np.log([[[0.2], [0.6]]]))  # log(0.4)
    array([-0.91629073])
    """
    flat = log_lik.reshape(-1, log_lik.shape[-1])
    return logsumexp(flat, axis=0) - np.log(flat.shape[0])


def cv_table(pointwise: pd.DataFrame, *, n_folds: int | None = None) -> pd.DataFrame:
    """The cross-validation table: one row per model (column of ``pointwise``), best first.

    ``elpd_cv`` is the sum of a column and ``se = sqrt(n var)``; ``elpd_diff`` is the paired
    difference to the best model (0 for the best, negative otherwise) and ``dse`` its se, computed
    the same way from the pointwise differences.

    Parameters
    ----------
    pointwise : pandas.DataFrame
        One column per model, one row per observation: its log predictive density.
    n_folds : int, optional
        The number of folds, recorded in the table.

    Returns
    -------
    pandas.DataFrame
        Indexed by model: ``elpd_cv``, ``se``, ``elpd_diff``, ``dse``, ``n_obs``, ``n_folds``.

    Examples
    --------
    >>> import pandas as pd
    >>> table = cv_table(pd.DataFrame({"complete": [-1.0, -2.0], "partial": [-0.5, -1.0]}), n_folds=2)
    >>> table.index.tolist(), float(table.loc["complete", "elpd_diff"])
    (['partial', 'complete'], -1.5)
    """
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


def _refit_and_score(task: dict) -> dict:
    """One model's refits, one per fold (its rows weighted 0), scored on those rows (runs in a worker)."""
    data = task["data"]
    refit = refitter(task["spec"], data, task["pooling"], task["priors"], task["parameterization"])
    results = refit.refit(task["rows"], task["seeds"], draws=task["draws"], tune=task["tune"], chains=task["chains"])
    release_memory()
    return {
        "name": task["name"],
        "log_lik": [log_lik for log_lik, _ in results],
        "messages": [
            (fold, f"{divergences} divergent transitions after warm-up")
            for fold, (_, divergences) in enumerate(results)
            if divergences
        ],
        "folds": len(results),
    }


def _sampling_notes(results: list[dict]) -> list[str]:
    """One line per model whose refits warned, instead of one warning per refit."""
    notes = []
    for result in results:
        if result["messages"]:
            fold, first = result["messages"][0]
            names = {entry.name for entry in POOLINGS}
            label = find_pooling(result["name"]).label.lower() if result["name"] in names else result["name"]
            notes.append(
                f"grouped CV, {label}: {len(result['messages'])} of "
                f"{result['folds']} refits warned, e.g. fold {fold + 1}: {first}"
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
