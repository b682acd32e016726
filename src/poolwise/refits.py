"""Exact refits on the fit's own compiled program: every refit is the same program with other weights.

A refit (a grouped cross-validation fold, an exact leave-one-out refit) used to build a new Bambi
model on fewer rows, and a new sampler was compiled for it, because the data are baked into the
program. Here each model's log density takes a weight per observation (``poolwise.program``):
a refit sets the weights of the rows it leaves out to 0. That is exact, not an approximation:
the masked posterior is the posterior of the model refitted without those rows
(``tests/test_refits.py`` checks the log density at random points). It also makes scoring
simple: in the masked posterior a held-out group's coefficients are draws of a new group's,
from the population (partial pooling) or their prior (no pooling). All refits of a model run
in one call, their chains side by side, on the program the fit compiled (or, in another
process, the one JAX's caches on disk hold).

The priors must be resolved on all the data first and passed in (as ``compare`` and ``group_cv``
do), so every refit is the model the user asked for rather than one whose automatic priors moved
with the training rows. Built models are kept per process, keyed by everything that defines
the program.
"""

import copy
import ctypes
import gc
import json
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.loo import SamplingWrapper

from poolwise import adapter, program, progress, seeds
from poolwise.data import data_hash
from poolwise.fitting import build_model, target_accept, use_compile_cache
from poolwise.pooling import pooling as find_pooling
from poolwise.results import Fit
from poolwise.spec import FormulaSpec

REFITS = "loo_refits"  # the fit's group of exact LOO refits: held-out log-likelihood draws per row
CACHE_SIZE = 6  # built models kept per process: the three pooling models of two formulas

_built: OrderedDict[str, "Refitter"] = OrderedDict()


@dataclass
class Refitter:
    """One model built on all the data; ``refit`` reweights its rows on the model's JAX program.

    Made by ``refitter`` (one per model and data in each process) or from a fit's own model
    (``of_fit``), whose program already holds the fit's sampler state to start refits from.

    Parameters
    ----------
    pooling : str
        The pooling model ("complete", "none" or "partial").
    model : bambi.Model
        The built Bambi model.
    target_accept : float or None
        The step-size target of the model's fits (``fitting.target_accept``).

    Examples
    --------
    >>> refit = refitter(spec, data, "partial", priors, None)  # doctest: +SKIP
    >>> [(log_lik, divergences)] = refit.refit([rows], [1], draws=1000, tune=1000, chains=4)  # doctest: +SKIP
    >>> log_lik.shape  # doctest: +SKIP
    (4, 1000, 12)
    """

    pooling: str
    model: object
    target_accept: float | None

    def refit(
        self, held_out: list[np.ndarray], seeds: list[int], *, draws: int, tune: int, chains: int
    ) -> list[tuple[np.ndarray, int]]:
        """Refit the model once per entry of ``held_out`` (those rows weighted 0), all in one call.

        Parameters
        ----------
        held_out : list of numpy.ndarray
            The row numbers each refit leaves out.
        seeds : list of int
            One seed per refit.
        draws, tune, chains : int
            Sampler settings (``tune``: the fit's warm-up; ``program.refit`` says when refits
            need less).

        Returns
        -------
        list of (numpy.ndarray, int)
            Per refit: the held-out rows' log-likelihood draws (chain, draw, row) and the
            divergent transitions after warm-up.

        Examples
        --------
        >>> [(log_lik, divergences)] = refit.refit([np.array([3])], [7], draws=1000, tune=1000, chains=4)  # doctest: +SKIP
        """
        use_compile_cache()
        with progress.task(f"{find_pooling(self.pooling).label}: {len(held_out)} refits"):
            return program.refit(
                program.program(self.model),
                held_out,
                seeds,
                draws=draws,
                tune=tune,
                chains=chains,
                target_accept=self.target_accept,
            )


def of_fit(fit: Fit) -> Refitter:
    """The refitter of ``fit``: its own model (and program) where the fit holds one, else one
    built from what the fit records.

    Parameters
    ----------
    fit : Fit
        A fit made by ``fit`` or ``compare``, or loaded from disk.

    Returns
    -------
    Refitter

    Examples
    --------
    >>> of_fit(study.fits["partial"]).pooling  # doctest: +SKIP
    'partial'
    """
    if fit.model is not None:
        return Refitter(fit.pooling, fit.model, fit.settings.get("target_accept"))
    found = refitter(fit.spec, fit.data, fit.pooling, fit.priors, fit.settings.get("parameterization") or None)
    # A fit that poolwise sampled again with a higher target acceptance refits at that one.
    accept = fit.settings.get("target_accept", found.target_accept)
    return found if accept == found.target_accept else Refitter(found.pooling, found.model, accept)


def refitter(
    spec: FormulaSpec,
    data: pd.DataFrame,
    pooling: str,
    priors: dict[str, str],
    parameterization: dict | None,
) -> Refitter:
    """The model of ``pooling`` on ``data``, ready for refits: built on first use in this process,
    then reused.

    Parameters
    ----------
    spec : FormulaSpec
        The formula as ``prepare_data`` returns it.
    data : pandas.DataFrame
        All the rows (prepared); refits leave some out by weight.
    pooling : str
        "complete", "none" or "partial".
    priors : dict
        The model's resolved prior strings (``priors.resolve_priors`` on all the data).
    parameterization : dict or None
        The group terms' layout (``geometry.choose`` on all the data).

    Returns
    -------
    Refitter

    Examples
    --------
    >>> refitter(spec, data, "partial", priors, geometry.choose(spec, data))  # doctest: +SKIP
    """
    parameterization = parameterization if pooling == "partial" else None  # only partial pooling has group terms
    key = json.dumps(
        [spec.formula, spec.family, spec.level, spec.trials, spec.exposure, [f.name for f in spec.factors], pooling]
        + [sorted(priors.items()), parameterization, data_hash(data)],
        default=str,
    )
    if key in _built:
        _built.move_to_end(key)
        return _built[key]
    model = build_model(spec, data, pooling, priors, parameterization=parameterization)[0]
    found = Refitter(pooling, model, target_accept(model, spec, pooling))
    _built[key] = found
    while len(_built) > CACHE_SIZE:
        _built.popitem(last=False)
    return found


def release_memory() -> None:
    """Free a refit's draws now and hand the heap back to the operating system.

    A refit's draws are hundreds of MB on a large model. The DataTree that holds them is a cycle
    (parents and children refer to each other), so only the cyclic garbage collector frees it,
    and only now and then; glibc then keeps the freed fragments. Resident memory grew by
    several posteriors per fold, to 8-10 GB over a 10-fold CV of 1,000 groups. ``gc.collect``
    frees them and ``malloc_trim`` (glibc only; elsewhere skipped) returns the memory.

    Examples
    --------
    >>> release_memory()
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _LeaveOneOut(SamplingWrapper):
    """ArviZ's refit interface for ``reloo``, replaying refits already made.

    ``saved`` maps a row to its held-out log-likelihood draws (chain, draw): ``exact_loo`` runs
    every refit ``reloo`` will ask for in one batch first, and a reloaded fit brings its own
    (``REFITS``), so ``reloo`` only combines them.
    """

    def __init__(self, idata, saved: dict[int, np.ndarray]):
        super().__init__(model=None, idata_orig=idata)
        self.saved = saved

    def sel_observations(self, idx):
        return None, int(idx)

    def sample(self, modified_observed_data):
        return None

    def get_inference_data(self, fitted_model):
        return fitted_model

    def log_likelihood__i(self, excluded_obs, idata__i):
        return xr.DataArray(self.saved[excluded_obs][..., None], dims=("chain", "draw", "left_out"))


def exact_loo(fit: Fit, loo, *, threshold: float):
    """``loo`` with the terms whose Pareto k exceeds ``threshold`` replaced by exact refits
    (ArviZ's ``reloo``), each the fit's compiled program with that row's weight set to 0, all
    of a fit's refits in one batch.

    The held-out draws of every refit are kept in the fit (group ``REFITS`` of ``fit.idata``,
    saved with it), so the same call on a reloaded fit gives the same numbers without sampling.

    Parameters
    ----------
    fit : Fit
        A fit with its pointwise log-likelihood, made by ``fit`` or ``compare``.
    loo : ELPDData
        Its PSIS-LOO (pointwise), possibly already moment matched.
    threshold : float
        Pareto k above which a term is refitted.

    Returns
    -------
    ELPDData
        The LOO estimate with the refitted terms (their Pareto k set to 0).

    Examples
    --------
    >>> exact_loo(study.fits["none"], study.loo["none"], threshold=0.7)  # doctest: +SKIP
    """
    from arviz_stats import reloo

    saved = {}
    if REFITS in fit.idata.children:
        draws = fit.idata[REFITS].to_dataset()["log_lik"]
        saved = {int(row): draws.sel(row=row).transpose("chain", "draw").to_numpy() for row in draws["row"].values}
    flagged = [int(row) for row in np.flatnonzero(np.asarray(loo.pareto_k) > threshold) if int(row) not in saved]
    if flagged:
        settings = fit.settings
        row_seeds = [seeds.of_row(settings["seed"], row) for row in flagged]
        refitted = of_fit(fit).refit(
            [np.array([row]) for row in flagged],
            row_seeds,
            draws=settings["draws"],
            tune=settings["tune"],
            chains=settings["chains"],
        )
        saved.update({row: log_lik[..., 0] for row, (log_lik, _) in zip(flagged, refitted)})
    # reloo stacks the observation dimensions into one named "__obs__", Bambi's own name for
    # them: rename it for the call and back.
    idata = fit.idata.copy()
    idata["log_likelihood"] = _renamed(idata["log_likelihood"].to_dataset(), adapter.OBS_DIM, "row")
    wrapper = _LeaveOneOut(idata, saved)
    fixed = reloo(wrapper, loo_orig=_renamed_loo(loo, adapter.OBS_DIM, "row"), k_threshold=threshold)
    if saved:
        rows = sorted(saved)
        fit.idata[REFITS] = xr.Dataset(
            {"log_lik": (("chain", "draw", "row"), np.stack([saved[row] for row in rows], axis=-1))},
            coords={"row": rows},
        )
    return _renamed_loo(fixed, "row", adapter.OBS_DIM)


def _renamed(value, old: str, new: str):
    return value.rename({old: new}) if isinstance(value, (xr.DataArray, xr.Dataset)) and old in value.dims else value


def _renamed_loo(loo, old: str, new: str):
    renamed = copy.copy(loo)
    for attr in ("elpd_i", "pareto_k", "p_loo_i", "log_weights"):
        if hasattr(renamed, attr):
            setattr(renamed, attr, _renamed(getattr(renamed, attr), old, new))
    return renamed
