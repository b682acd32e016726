"""Per-group intercepts and slopes on one scale, whatever the pooling.

alpha_j is group j's linear predictor at treatment = 0 (other terms at 0) and beta_j its
treatment slope, on the link scale (logit, log or identity); the "rates" are the mean response
through the inverse link, ``inverse(alpha_j)`` without and ``inverse(alpha_j + beta_j)`` with the
treatment: a probability, events per unit of exposure, or a mean value. Complete pooling repeats
the shared values for every group, so every model gives the same layout.
"""

import numpy as np
import pandas as pd
import xarray as xr

from poolwise import adapter
from poolwise.families import family as find_family
from poolwise.results import Fit

PROB = 0.89  # ArviZ 1.x's default interval, used throughout so tables and figures agree


def groups(fit: Fit) -> list[str]:
    """The group labels in their natural order (numeric ids sort as numbers)."""
    if fit.spec.group is None:
        return ["all"]
    return [str(g) for g in sorted(fit.data[fit.spec.group].unique())]


def _by_group(values: xr.DataArray, labels: list[str]) -> xr.DataArray:
    dim = [d for d in values.dims if d not in ("chain", "draw")][0]
    values = values.rename({dim: "group"}).assign_coords(group=[str(g) for g in values[dim].values])
    return values.sel(group=labels)


def _zero(posterior: xr.Dataset) -> xr.DataArray:
    return xr.zeros_like(posterior["chain"] * 0.0 + posterior["draw"] * 0.0)


def group_draws(fit: Fit, treatment: str | None = None) -> xr.Dataset:
    """Posterior draws of ``alpha`` and ``beta`` with dims (chain, draw, group)."""
    spec, post = fit.spec, fit.posterior
    treatment = treatment or spec.treatment
    labels = groups(fit)
    group_coord = xr.DataArray(labels, dims="group")
    base_alpha = post["Intercept"] if "Intercept" in post else _zero(post)
    base_beta = post[treatment] if treatment in post else _zero(post)
    if fit.pooling == "complete":
        alpha, beta = base_alpha, base_beta
    elif fit.pooling == "none":
        group = adapter.unpooled_intercept(spec.group)
        alpha = _by_group(post[group], labels) if group in post else base_alpha
        slope = adapter.unpooled_slope(spec.group, treatment)
        beta = _by_group(post[slope], labels) if slope in post else base_beta
    else:
        intercept, slope = adapter.group_term("Intercept", spec.group), adapter.group_term(treatment, spec.group)
        alpha = base_alpha + (_by_group(post[intercept], labels) if intercept in post else 0)
        beta = base_beta + (_by_group(post[slope], labels) if slope in post else 0)
    alpha, beta = xr.broadcast(alpha, beta, group_coord.assign_coords(group=labels))[:2]
    return xr.Dataset({"alpha": alpha, "beta": beta}).transpose("chain", "draw", "group")


def population_draws(fit: Fit, treatment: str | None = None) -> xr.Dataset:
    """The population (typical-group) intercept and slope, and for partial pooling the group sds."""
    spec, post = fit.spec, fit.posterior
    treatment = treatment or spec.treatment
    out = {"alpha": post["Intercept"] if "Intercept" in post else _zero(post),
           "beta": post[treatment] if treatment in post else _zero(post)}
    for name, var in (("sigma_alpha", adapter.group_sd("Intercept", spec.group)), ("sigma_beta", adapter.group_sd(treatment, spec.group))):
        if var in post:
            out[name] = post[var]
    return xr.Dataset(out)


def summarise(draws: xr.DataArray, prob: float = PROB) -> dict[str, float]:
    """Mean, sd and the central ``prob`` interval of a draws array over chain and draw."""
    flat = np.asarray(draws).reshape(-1)
    tail = (1 - prob) / 2
    low, high = np.quantile(flat, [tail, 1 - tail])
    return {"mean": float(flat.mean()), "sd": float(flat.std(ddof=1)), "lower": float(low), "upper": float(high)}


def coefficients(fit: Fit, *, treatment: str | None = None, prob: float = PROB) -> pd.DataFrame:
    """Tidy table: one row per group and quantity (alpha, beta on the link scale; rate_without,
    rate_with the mean response on its natural scale) with mean, sd and the ``prob`` equal-tailed
    interval."""
    draws = group_draws(fit, treatment)
    inverse = find_family(fit.spec.family).inverse
    quantities = {
        "alpha": draws["alpha"],
        "beta": draws["beta"],
        "rate_without": inverse(draws["alpha"]),
        "rate_with": inverse(draws["alpha"] + draws["beta"]),
    }
    rows = []
    for group in draws["group"].values:
        for quantity, values in quantities.items():
            rows.append({"model": fit.pooling, "group": str(group), "quantity": quantity,
                         **summarise(values.sel(group=group), prob)})
    return pd.DataFrame(rows)
