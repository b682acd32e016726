"""Prior sensitivity: refit with wider or flat priors on chosen terms and see which estimates move.

Estimates the data identify stay put; estimates only the priors decide (the raw coefficients of
an over-parameterised design) move. ArviZ's power-scaling diagnostic (``psense``) is reported
next to the refit: it needs no refit, but it perturbs the priors only locally (by 1%), so it
cannot say how far an estimate goes when a prior is made flat; the refit can.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from poolwise import adapter
from poolwise.errors import PoolwiseError
from poolwise.estimates import interval_prob, summarise
from poolwise.fitting import fit as fit_model
from poolwise.identify import estimates
from poolwise.results import Fit

THRESHOLD = 0.25  # an estimate "moves" when its mean shifts by more than this many posterior sds
_SCALE_ARGS = {"sigma": 1, "beta": 1, "lam": -1}  # scale arguments (lam is a rate: divided)


def _number(value) -> str:
    array = np.asarray(value, dtype=float)
    return repr(float(array)) if array.ndim == 0 else repr([float(v) for v in array.reshape(-1)])


def prior_text(prior, factor: float = 1.0) -> str:
    """A Bambi prior as poolwise's prior string, with every scale argument multiplied by ``factor``.

    Scale arguments (``sigma``, ``beta``; ``lam`` is a rate, so it is divided) are scaled at every
    level of nesting.

    Parameters
    ----------
    prior : bambi.Prior
        A prior.
    factor : float
        How many times wider.

    Returns
    -------
    str
        E.g. ``Normal(mu=0.0, sigma=HalfNormal(sigma=10.0))``.

    Examples
    --------
    >>> from poolwise.priors import parse_prior  # doctest: +SKIP
    >>> prior_text(parse_prior("Normal(mu=0, sigma=HalfNormal(sigma=1))"), 10)  # doctest: +SKIP
    'Normal(mu=0.0, sigma=HalfNormal(sigma=10.0))'
    """
    args = []
    for key, value in prior.args.items():
        if hasattr(value, "args"):
            args.append(f"{key}={prior_text(value, factor)}")
        elif key in _SCALE_ARGS:
            args.append(f"{key}={_number(np.asarray(value, dtype=float) * factor ** _SCALE_ARGS[key])}")
        else:
            args.append(f"{key}={_number(value)}")
    return f"{prior.name}({', '.join(args)})"


def widened_priors(fit: Fit, terms: Sequence[str] | None = None, widen: float | str = 10.0) -> dict[str, str]:
    """The fit's priors with those of ``terms`` made wider, or flat.

    Parameters
    ----------
    fit : Fit
        A fit with its Bambi model.
    terms : sequence of str, optional
        Model terms (default: every common term).
    widen : float or "flat"
        How many times wider; ``"flat"`` for flat priors (common terms only: a flat group term has
        no group sd).

    Returns
    -------
    dict of str to str
        Term -> distribution string for the refit.

    Raises
    ------
    PoolwiseError
        The fit has no model, a term is unknown, a group term is made flat, or ``widen`` is not a
        positive factor.

    Examples
    --------
    >>> widened_priors(fit, ["yogaStretch"], widen=10)  # doctest: +SKIP
    """
    if fit.model is None:
        raise PoolwiseError(
            "this fit has no Bambi model (it was loaded from disk); pass the formula and data to refit it"
        )
    model_terms = adapter.model_terms(fit.model)
    terms = list(terms) if terms is not None else [name for name in model_terms if "|" not in name]
    unknown = [term for term in terms if term not in model_terms]
    if unknown:
        raise PoolwiseError(
            f"unknown term {unknown[0]!r}; the {fit.pooling} model's terms are: {', '.join(sorted(model_terms))}"
        )
    if widen == "flat":
        grouped = [term for term in terms if "|" in term]
        if grouped:
            raise PoolwiseError(
                f"a flat prior on group term {grouped[0]} leaves its group sd undefined; widen it by a factor instead (widen=10)"
            )
        return dict(fit.priors) | dict.fromkeys(terms, "Flat()")
    if isinstance(widen, str) or not widen > 0:
        raise PoolwiseError(f"widen must be a positive factor such as 10, or 'flat', got {widen!r}")
    return dict(fit.priors) | {term: prior_text(adapter.term_prior(fit.model, term), float(widen)) for term in terms}


def _table(rows: list[dict], prob: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "set": row["set"],
                "kind": row["kind"],
                "name": row["name"],
                "identified": row["identified"],
                **summarise(row["draws"], prob),
            }
            for row in rows
        ]
    )


def power_scaling(fit: Fit, rows: list[dict]) -> pd.DataFrame:
    """ArviZ's power-scaling sensitivity of each estimate to the whole prior and to the likelihood.

    Bambi computes the log prior of the parameters in the posterior; the deviations of group terms
    are deterministic there, so their prior is left out of a partial-pooling fit's scaling.

    Parameters
    ----------
    fit : Fit
        A fit with its Bambi model.
    rows : list of dict
        Estimates with their draws (from ``poolwise.identify.estimates``).

    Returns
    -------
    pandas.DataFrame
        psense_prior and psense_likelihood, one row per estimate.

    Examples
    --------
    >>> power_scaling(fit, estimates(fit, parameters=True))  # doctest: +SKIP
    """
    from arviz_stats import psense

    with_prior = fit.model.compute_log_prior(fit.idata, inplace=False)
    keys = [f"{row['set']}: {row['name']}" for row in rows]
    draws = xr.concat([row["draws"] for row in rows], dim="estimate").assign_coords(estimate=keys)
    tree = xr.DataTree.from_dict(
        {
            # The variable must not share its dimension's name, or xarray turns it into a coordinate.
            "posterior": xr.Dataset({"value": draws.transpose("chain", "draw", "estimate")}),
            "log_prior": with_prior["log_prior"].to_dataset(),
            "log_likelihood": fit.idata["log_likelihood"].to_dataset(),
        }
    )
    return pd.DataFrame(
        {
            "psense_prior": psense(tree, group="prior")["value"].to_numpy(),
            "psense_likelihood": psense(tree, group="likelihood")["value"].to_numpy(),
        }
    )


def sensitivity(
    fit: Fit | str,
    data: pd.DataFrame | None = None,
    *,
    terms: Sequence[str] | None = None,
    widen: float | str = 10.0,
    threshold: float = THRESHOLD,
    prob: float | None = None,
    **fit_options,
) -> pd.DataFrame:
    """Refit with wider (or flat) priors on ``terms`` and report which estimates move.

    The refit keeps every other prior and the sampler settings. Estimates the data identify stay put;
    estimates only the priors decide move. ArviZ's power-scaling sensitivity is reported beside it
    (prior above 0.05 with likelihood below it: the prior, not the data, decides the estimate).

    Parameters
    ----------
    fit : Fit or str
        A fit, or a formula fitted first on ``data`` with ``fit_options``.
    data : pandas.DataFrame, optional
        The data, when ``fit`` is a formula.
    terms : sequence of str, optional
        The terms whose priors are widened (default: every common term).
    widen : float or "flat"
        How many times wider, or flat.
    threshold : float
        An estimate moves when its mean shifts by more than this many original posterior sds.
    prob : float, optional
        The interval probability (default: ArviZ's ``rcParams["stats.ci_prob"]``, 0.89).
    **fit_options
        ``poolwise.fit``'s options (pooling, priors, draws, seed, ...) when ``fit`` is a formula.

    Returns
    -------
    pandas.DataFrame
        One row per estimate (every parameter, and every difference between two levels of a factor,
        as ``contrasts`` lists them): set, kind, name, identified, mean and sd under the original
        priors, mean_wide and sd_wide under the wider ones, shift (in original posterior sds), moved,
        psense_prior, psense_likelihood. The refit's priors are in ``.attrs["priors"]``.

    Raises
    ------
    PoolwiseError
        As ``widened_priors`` and ``poolwise.fit``.

    Examples
    --------
    >>> sensitivity(formula, data, pooling="none", widen="flat", seed=1).query("moved")  # doctest: +SKIP
    """
    base = fit if isinstance(fit, Fit) else fit_model(fit, data, **fit_options)
    priors = widened_priors(base, terms, widen)
    settings = base.settings
    wide = fit_model(
        base.spec.formula,
        base.data,
        pooling=base.pooling,
        priors=priors,
        draws=settings["draws"],
        tune=settings["tune"],
        chains=settings["chains"],
        seed=settings["seed"],
        backend=settings["backend"],
        allow_unidentified=settings["allow_unidentified"],
    )
    prob = interval_prob(prob)
    rows = estimates(base, parameters=True)
    before = _table(rows, prob)
    after = _table(estimates(wide, parameters=True), prob)
    keys = ["set", "kind", "name"]
    table = before.merge(
        after[[*keys, "mean", "sd"]].rename(columns={"mean": "mean_wide", "sd": "sd_wide"}), on=keys, how="left"
    )
    table["shift"] = (table["mean_wide"] - table["mean"]) / table["sd"]
    table["moved"] = table["shift"].abs() > threshold
    table = pd.concat([table, power_scaling(base, rows)], axis=1)
    table.attrs["priors"] = priors
    return table[
        [
            *keys,
            "identified",
            "mean",
            "sd",
            "mean_wide",
            "sd_wide",
            "shift",
            "moved",
            "psense_prior",
            "psense_likelihood",
        ]
    ]
