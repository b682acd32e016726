"""Refits that compile once: every refit of a model is the same compiled sampler with other weights.

A refit (a grouped cross-validation fold, an exact leave-one-out refit) used to build a new Bambi
model on fewer rows, and PyMC compiled a new sampler for it, because the data are baked into the
program. Here the model is built once on all the data with a weight per observation
(``adapter.reweightable``) and compiled once; a refit sets the weights of the rows it leaves out
to 0. That is exact, not an approximation: the masked posterior is the posterior of the model
refitted without those rows (``tests/test_refits.py`` checks the log density at random points).
It also makes scoring simple: in the masked posterior a held-out group's coefficients are draws
of a new group's, from the population (partial pooling) or their prior (no pooling).

The priors must be resolved on all the data first and passed in (as ``compare`` and ``group_cv``
do), so every refit is the model the user asked for rather than one whose automatic priors moved
with the training rows. Compiled samplers are kept per process, keyed by everything that defines
the program, so a worker that gets many folds of one model compiles it once.
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

from poolwise import adapter
from poolwise.data import data_hash
from poolwise.fitting import build_model, target_accept
from poolwise.results import Fit
from poolwise.spec import FormulaSpec

REFITS = "loo_refits"  # the fit's group of exact LOO refits: held-out log-likelihood draws per row
CACHE_SIZE = 6  # compiled models kept per process: the three pooling models of two formulas

_compiled: OrderedDict[str, "Refitter"] = OrderedDict()


@dataclass
class Refitter:
    """One model structure built on all the data and compiled once; ``refit`` reweights rows.

    Made by ``refitter``, which keeps one per model and data in each process.

    Parameters
    ----------
    pooling : str
        The pooling model ("complete", "none" or "partial").
    model : bambi.Model
        The Bambi model, its PyMC graph made reweightable (``adapter.reweightable``).
    compiled : object
        nutpie's compiled model (None: PyMC's sampler takes the refits).
    target_accept : float or None
        The step-size target of the model's fits (``fitting.target_accept``).

    Examples
    --------
    >>> refit = refitter(spec, data, "partial", priors, None)  # doctest: +SKIP
    >>> weights = np.ones(len(data))  # doctest: +SKIP
    >>> weights[rows] = 0.0  # doctest: +SKIP
    >>> posterior, divergences = refit.refit(weights, draws=1000, tune=1000, chains=4, seed=1)  # doctest: +SKIP
    >>> refit.log_lik(posterior, data.iloc[rows]).shape  # doctest: +SKIP
    (4, 1000, 12)
    """

    pooling: str
    model: object
    compiled: object
    target_accept: float | None

    def refit(self, weights: np.ndarray, *, draws: int, tune: int, chains: int, seed: int) -> tuple[xr.Dataset, int]:
        """Sample the model with observation ``weights`` (0 leaves a row out).

        Parameters
        ----------
        weights : numpy.ndarray
            One weight per row of the data the model was built on.
        draws, tune, chains, seed : int
            Sampler settings.

        Returns
        -------
        posterior : xarray.Dataset
            The draws, (chain, draw, ...), with Bambi's variable names.
        divergences : int
            Divergent transitions after warm-up.

        Examples
        --------
        >>> posterior, divergences = refit.refit(weights, draws=1000, tune=1000, chains=4, seed=1)  # doctest: +SKIP
        """
        return adapter.sample_reweighted(
            self.model,
            self.compiled,
            np.asarray(weights, dtype=float),
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=self.target_accept,
        )

    def log_lik(self, posterior: xr.Dataset, data: pd.DataFrame) -> np.ndarray:
        """Log density of each row of ``data`` under ``posterior``, (chain, draw, row).

        Parameters
        ----------
        posterior : xarray.Dataset
            Draws from ``refit``.
        data : pandas.DataFrame
            Rows of the data the model was built on (e.g. a fold's held-out rows).

        Returns
        -------
        numpy.ndarray
            The pointwise log-likelihood draws.

        Examples
        --------
        >>> refit.log_lik(posterior, data.iloc[rows])  # doctest: +SKIP
        """
        return adapter.log_likelihood(self.model, posterior, data)


def refitter(
    spec: FormulaSpec,
    data: pd.DataFrame,
    pooling: str,
    priors: dict[str, str],
    parameterization: dict | None,
) -> Refitter:
    """The compiled, reweightable model of ``pooling`` on ``data``: built and compiled on first
    use in this process, then reused.

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
    if key in _compiled:
        _compiled.move_to_end(key)
        return _compiled[key]
    model = build_model(spec, data, pooling, priors, parameterization=parameterization)[0]
    adapter.reweightable(model)
    compiled = adapter.compile_reweightable(model)
    found = Refitter(pooling, model, compiled, target_accept(model, spec, pooling))
    _compiled[key] = found
    while len(_compiled) > CACHE_SIZE:
        _compiled.popitem(last=False)
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
    """ArviZ's refit interface for ``reloo``: leaving row i out sets its weight to 0.

    ``saved`` maps a row to its held-out log-likelihood draws (chain, draw) from an earlier
    refit, kept in the fit (``REFITS``), so a reloaded fit replays them instead of sampling;
    the compiled model is only built when a row has none.
    """

    def __init__(self, fit: Fit, idata, seed: int, saved: dict[int, np.ndarray]):
        super().__init__(model=None, idata_orig=idata)
        self.fit, self.seed, self.saved, self.left_out = fit, seed, saved, None

    def sel_observations(self, idx):
        weights = np.ones(len(self.fit.data))
        weights[int(idx)] = 0.0
        self.left_out = int(idx)
        return weights, int(idx)

    def sample(self, modified_observed_data):
        if self.left_out in self.saved:
            return None
        fit = self.fit
        self.model = self.model or refitter(
            fit.spec, fit.data, fit.pooling, fit.priors, fit.settings.get("parameterization") or None
        )
        (seed,) = np.random.SeedSequence([self.seed, self.left_out]).generate_state(1)
        settings = fit.settings
        return self.model.refit(
            modified_observed_data,
            draws=settings["draws"],
            tune=settings["tune"],
            chains=settings["chains"],
            seed=int(seed),
        )[0]

    def get_inference_data(self, fitted_model):
        return fitted_model

    def log_likelihood__i(self, excluded_obs, idata__i):
        if excluded_obs not in self.saved:
            self.saved[excluded_obs] = self.model.log_lik(idata__i, self.fit.data.iloc[[excluded_obs]])[..., 0]
        return xr.DataArray(self.saved[excluded_obs][..., None], dims=("chain", "draw", "left_out"))


def exact_loo(fit: Fit, loo, *, threshold: float):
    """``loo`` with the terms whose Pareto k exceeds ``threshold`` replaced by exact refits
    (ArviZ's ``reloo``), each the fit's compiled model with that row's weight set to 0.

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
    # reloo stacks the observation dimensions into one named "__obs__", Bambi's own name for
    # them: rename it for the call and back.
    idata = fit.idata.copy()
    idata["log_likelihood"] = _renamed(idata["log_likelihood"].to_dataset(), adapter.OBS_DIM, "row")
    wrapper = _LeaveOneOut(fit, idata, int(fit.settings["seed"]), saved)
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
