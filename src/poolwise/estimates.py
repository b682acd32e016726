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
from poolwise.errors import PoolwiseError
from poolwise.families import family as find_family
from poolwise.results import Fit


def interval_prob(prob: float | None = None) -> float:
    """The probability of the intervals every table and figure reports.

    ``prob`` itself, or, when it is None, ArviZ's current ``arviz.rcParams["stats.ci_prob"]``
    (0.89 unless changed), read at call time so that setting it once changes every interval
    poolwise reports. The intervals are always central (equal-tailed), whatever
    ``rcParams["stats.ci_kind"]`` says.

    Parameters
    ----------
    prob : float, optional
        An explicit probability between 0 and 1.

    Returns
    -------
    float
        The probability to use.

    Raises
    ------
    PoolwiseError
        ``prob`` is not between 0 and 1.

    Examples
    --------
    >>> interval_prob(0.95)
    0.95
    >>> import arviz as az
    >>> with az.rc_context({"stats.ci_prob": 0.8}):
    ...     interval_prob()
    0.8
    """
    if prob is None:
        import arviz as az

        prob = az.rcParams["stats.ci_prob"]
    if isinstance(prob, bool) or not isinstance(prob, (int, float, np.number)) or not 0 < prob < 1:
        raise PoolwiseError(f"prob must be between 0 and 1 (e.g. 0.89), got {prob!r}")
    return float(prob)


def groups(fit: Fit) -> list[str]:
    """The group labels of the factor in focus, in their natural order (numeric ids sort as numbers).

    Parameters
    ----------
    fit : Fit
        A fitted model.

    Returns
    -------
    list of str
        The labels; ``["all"]`` for a formula without a group.

    Examples
    --------
    >>> groups(study.fits["partial"])[:3]  # doctest: +SKIP
    ['1', '2', '3']
    """
    if fit.spec.group is None:
        return ["all"]
    return [str(g) for g in sorted(fit.data[fit.spec.group].unique())]


def _by_group(values: xr.DataArray, labels: list[str]) -> xr.DataArray:
    dim = [d for d in values.dims if d not in ("chain", "draw")][0]
    values = values.rename({dim: "group"}).assign_coords(group=[str(g) for g in values[dim].values])
    return values.sel(group=labels)


def _zero(posterior: xr.Dataset) -> xr.DataArray:
    return xr.zeros_like(posterior["chain"] * 0.0 + posterior["draw"] * 0.0)


def arms(fit: Fit, treatment: str | None = None) -> list[str]:
    """The levels a categorical treatment is compared on, against its reference level.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    treatment : str, optional
        The treatment term (default: the formula's).

    Returns
    -------
    list of str
        The non-reference levels, as the fit codes them; ``[]`` for a numeric treatment.

    Examples
    --------
    >>> arms(fit_of_an_ab_test)  # doctest: +SKIP
    ['B', 'C']
    """
    treatment = treatment or fit.spec.treatment
    post = fit.posterior
    if treatment is None or treatment not in post:
        candidates = [(adapter.group_term(treatment, fit.spec.group), True)] if treatment and fit.spec.group else []
    else:
        candidates = [(treatment, False)]
    for name, grouped in candidates:
        dim = adapter.level_dim(treatment, grouped=grouped)
        if name in post and dim in post[name].dims:
            return [str(level) for level in post[name][dim].values]
    if treatment is not None and fit.pooling == "none" and fit.spec.group:
        slope = adapter.unpooled_slope(fit.spec.group, treatment)
        if slope in post and ", " in str(post[slope][adapter.level_dim(slope)].values[0]):
            return list(
                dict.fromkeys(str(label).rsplit(", ", 1)[1] for label in post[slope][adapter.level_dim(slope)].values)
            )
    return []


def reference_level(fit: Fit, treatment: str | None = None) -> str:
    """The level a treatment's effects are measured against.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    treatment : str, optional
        The treatment term (default: the formula's).

    Returns
    -------
    str
        ``"0"`` for a numeric treatment, else the categorical level the fit dropped (the first in
        sorted order, as formulae codes it).

    Examples
    --------
    >>> reference_level(fit_of_an_ab_test)  # doctest: +SKIP
    'A'
    """
    treatment = treatment or fit.spec.treatment
    levels = arms(fit, treatment)
    if not levels:
        return "0"
    column = next((name for name in fit.spec.variables if name in str(treatment) and name in fit.data.columns), None)
    values = [str(v) for v in sorted(pd.unique(fit.data[column]))] if column else []
    return next((value for value in values if value not in levels), "reference")


def _level(values: xr.DataArray, dim: str, arm: str | None) -> xr.DataArray:
    """One level's column of a categorical term's draws; a numeric term's draws as they are."""
    if dim not in values.dims:
        return values
    return values.sel({dim: arm}, drop=True)


def _unpooled_level(values: xr.DataArray, dim: str, arm: str | None) -> xr.DataArray:
    """No pooling's per-group slopes of one level: labels "g, level" become "g"."""
    labels = [str(label) for label in values[dim].values]
    if arm is None or not any(", " in label for label in labels):
        return values
    keep = [label for label in labels if label.endswith(f", {arm}")]
    return values.sel({dim: keep}).assign_coords({dim: [label.rsplit(", ", 1)[0] for label in keep]})


def _unpooled_intercepts(fit: Fit, labels: list[str], base: xr.DataArray) -> xr.DataArray:
    """No pooling's per-level intercepts of the factor in focus. The template gives the first
    factor one intercept per level (``0 + C(a)``) and codes later factors against their first
    level (``C(b)``); a later factor's level then sits at the first factor's average level. An
    ordinal family has no intercept (its thresholds are one), so its first factor is coded
    against its first level too."""
    spec, post = fit.spec, fit.posterior
    name = adapter.unpooled_intercept(spec.group)
    if name not in post:
        return base
    first = next(factor.name for factor in spec.factors if factor.intercept)
    ordinal = find_family(spec.family).ordinal
    if first == spec.group and not ordinal:
        return _by_group(post[name], labels)
    values = post[name].rename({adapter.level_dim(name): "group"})
    values = values.assign_coords(group=[str(g) for g in values["group"].values]).reindex(group=labels, fill_value=0.0)
    if first == spec.group:  # an ordinal's first factor is coded against its first level, held by the thresholds
        return values
    intercepts = post[adapter.unpooled_intercept(first)]
    # The first factor's average level; an ordinal's first level is the 0 its coding leaves out.
    levels = (
        fit.data[first].nunique() if ordinal else intercepts.sizes[adapter.level_dim(adapter.unpooled_intercept(first))]
    )
    return values + intercepts.sum(adapter.level_dim(adapter.unpooled_intercept(first))) / levels


def group_draws(fit: Fit, treatment: str | None = None, arm: str | None = None) -> xr.Dataset:
    """Posterior draws of each group's intercept ``alpha`` and treatment slope ``beta``.

    Both are on the link scale, whatever the pooling: complete pooling repeats the shared values for
    every group, no pooling reads each group's own coefficients, partial pooling adds each group's
    deviations to the population's.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    treatment : str, optional
        The treatment term (default: the formula's).
    arm : str, optional
        For a categorical treatment, the level whose effect against the reference ``beta`` is
        (default: the first of ``arms``).

    Returns
    -------
    xarray.Dataset
        ``alpha`` and ``beta`` with dims (chain, draw, group).

    Examples
    --------
    >>> group_draws(study.fits["partial"])["beta"].mean(("chain", "draw"))  # doctest: +SKIP
    """
    spec, post = fit.spec, fit.posterior
    treatment = treatment or spec.treatment
    if arm is None and arms(fit, treatment):
        arm = arms(fit, treatment)[0]
    labels = groups(fit)
    group_coord = xr.DataArray(labels, dims="group")
    base_alpha = post["Intercept"] if "Intercept" in post else _zero(post)
    base_beta = _level(post[treatment], adapter.level_dim(treatment), arm) if treatment in post else _zero(post)
    if fit.pooling == "complete":
        alpha, beta = base_alpha, base_beta
    elif fit.pooling == "none":
        alpha = _unpooled_intercepts(fit, labels, base_alpha)
        slope = adapter.unpooled_slope(spec.group, treatment)
        beta = (
            _by_group(_unpooled_level(post[slope], adapter.level_dim(slope), arm), labels)
            if slope in post
            else base_beta
        )
    else:
        intercept, slope = adapter.group_term("Intercept", spec.group), adapter.group_term(treatment, spec.group)
        alpha = base_alpha + (_by_group(post[intercept], labels) if intercept in post else 0)
        beta = base_beta + (
            _by_group(_level(post[slope], adapter.level_dim(treatment, grouped=True), arm), labels)
            if slope in post
            else 0
        )
    alpha, beta = xr.broadcast(alpha, beta, group_coord.assign_coords(group=labels))[:2]
    return xr.Dataset({"alpha": alpha, "beta": beta}).transpose("chain", "draw", "group")


def population_draws(fit: Fit, treatment: str | None = None, arm: str | None = None) -> xr.Dataset:
    """The population (typical-group) intercept and slope, and for partial pooling the group sds.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    treatment : str, optional
        The treatment term (default: the formula's).
    arm : str, optional
        For a categorical treatment, the level whose slope is returned (default: the first of ``arms``).

    Returns
    -------
    xarray.Dataset
        ``alpha``, ``beta`` and, where the model has them, ``sigma_alpha`` and ``sigma_beta``, dims
        (chain, draw).

    Examples
    --------
    >>> population_draws(study.fits["partial"])["beta"].mean().item()  # doctest: +SKIP
    0.53
    """
    spec, post = fit.spec, fit.posterior
    treatment = treatment or spec.treatment
    if arm is None and arms(fit, treatment):
        arm = arms(fit, treatment)[0]
    out = {
        "alpha": post["Intercept"] if "Intercept" in post else _zero(post),
        "beta": _level(post[treatment], adapter.level_dim(treatment), arm) if treatment in post else _zero(post),
    }
    for name, var in (
        ("sigma_alpha", adapter.group_sd("Intercept", spec.group)),
        ("sigma_beta", adapter.group_sd(treatment, spec.group)),
    ):
        if var in post:
            out[name] = _level(post[var], adapter.level_dim(treatment, grouped=True), arm)
    return xr.Dataset(out)


def aux_draws(fit: Fit) -> dict[str, xr.DataArray]:
    """Draws of the family's own parameters (``Family.aux``: sigma, kappa, psi, ...).

    What ``Family.mean`` and ``Family.simulate`` need besides the linear predictor. A vector
    parameter (an ordinal family's thresholds) comes one entry per element, ``threshold[0]``,
    ``threshold[1]``, ..., so that every entry broadcasts against the linear predictor alike; an
    ordinal fit adds its categories' values as constants ``category[0]``, ``category[1]``, ....

    Parameters
    ----------
    fit : Fit
        A fitted model.

    Returns
    -------
    dict of str to xarray.DataArray
        One entry per own parameter (or element of one), dims (chain, draw); empty for binomial
        and Poisson fits.

    Examples
    --------
    >>> sorted(aux_draws(zip_fit))  # doctest: +SKIP
    ['psi']
    """
    out = {}
    for name in find_family(fit.spec.family).aux:
        draws = fit.posterior[name]
        extra = [dim for dim in draws.dims if dim not in ("chain", "draw")]
        if not extra:
            out[name] = draws
            continue
        (dim,) = extra
        out.update({f"{name}[{i}]": draws.isel({dim: i}, drop=True) for i in range(draws.sizes[dim])})
    if find_family(fit.spec.family).ordinal:  # the ratings' values, which the expected rating averages
        values = np.sort(fit.data[fit.spec.outcome].unique())
        out.update({f"category[{i}]": xr.DataArray(float(value)) for i, value in enumerate(values)})
    return out


def summarise(draws: xr.DataArray, prob: float | None = None) -> dict[str, float]:
    """Mean, sd and the central ``prob`` interval of a draws array over all its values.

    Parameters
    ----------
    draws : xarray.DataArray
        Draws (chain, draw), or any array of them.
    prob : float, optional
        The interval probability (default: ArviZ's ``rcParams["stats.ci_prob"]``, see ``interval_prob``).

    Returns
    -------
    dict of str to float
        mean, sd, lower, upper.

    Raises
    ------
    PoolwiseError
        ``prob`` is not between 0 and 1.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> summary = summarise(xr.DataArray(np.arange(101.0)), prob=0.9)
    >>> summary["mean"], round(summary["lower"], 6), summary["upper"]
    (50.0, 5.0, 95.0)
    """
    flat = np.asarray(draws).reshape(-1)
    tail = (1 - interval_prob(prob)) / 2
    low, high = np.quantile(flat, [tail, 1 - tail])
    return {"mean": float(flat.mean()), "sd": float(flat.std(ddof=1)), "lower": float(low), "upper": float(high)}


def coefficients(fit: Fit, *, treatment: str | None = None, prob: float | None = None) -> pd.DataFrame:
    """Each group's intercept, slope and mean responses with their intervals, as a tidy table.

    One row per group and quantity: alpha and beta on the link scale; rate_without and rate_with
    the mean response on its natural scale (a probability, a rate per unit of exposure, a mean),
    with mean, sd and the central ``prob`` interval. A categorical treatment gives ``beta[level]``
    and ``rate_with[level]`` per level against the reference level (``rate_without``).

    Parameters
    ----------
    fit : Fit
        A fitted model, any pooling.
    treatment : str, optional
        The treatment term (default: the formula's).
    prob : float, optional
        The interval probability (default: ArviZ's ``rcParams["stats.ci_prob"]``, 0.89).

    Returns
    -------
    pandas.DataFrame
        Columns model, group, quantity, mean, sd, lower, upper.

    Raises
    ------
    PoolwiseError
        ``prob`` is not between 0 and 1.

    Examples
    --------
    >>> coefficients(study.fits["partial"]).query("quantity == 'rate_with'").head(3)  # doctest: +SKIP
    """
    family, aux = find_family(fit.spec.family), aux_draws(fit)
    prob = interval_prob(prob)
    levels = arms(fit, treatment)
    quantities = {}
    for arm in levels or [None]:
        draws = group_draws(fit, treatment, arm)
        suffix = f"[{arm}]" if arm is not None else ""
        quantities.setdefault("alpha", draws["alpha"])
        quantities[f"beta{suffix}"] = draws["beta"]
        quantities.setdefault("rate_without", family.mean(draws["alpha"], aux))
        quantities[f"rate_with{suffix}"] = family.mean(draws["alpha"] + draws["beta"], aux)
    rows = []
    for group in quantities["alpha"]["group"].values:
        for quantity, values in quantities.items():
            rows.append(
                {
                    "model": fit.pooling,
                    "group": str(group),
                    "quantity": quantity,
                    **summarise(values.sel(group=group), prob),
                }
            )
    return pd.DataFrame(rows)
