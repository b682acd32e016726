"""Decisions on the response scale: does the treatment help a typical group, each observed group,
a group not seen yet, and what total outcome should G new groups expect?

The "rate" is the family's mean response (see ``poolwise.families``): a probability, events per
unit of exposure, or a mean value. "Without" means treatment = 0 and "with" treatment = 1, other
common terms at 0. "Helps" means a higher mean unless the analyst says lower is better. What each
pooling model can say:

- partial pooling: the typical group is the population (intercept, slope); a new group draws its
  own intercept and slope from Normal(population, group sd);
- complete pooling: every group, typical or new, has the one shared rate (the model assumes
  groups do not differ, so its new-group interval is too narrow by construction);
- no pooling: each observed group on its own; there is no population, so the typical and new
  group (and expected outcomes for new groups) are undefined and reported as NaN.

The typical group is the median group (population mean on the link scale). On a logit or log
scale the average new group's rate differs from the typical group's, because the inverse link
bends: expected outcomes average over new groups, so they imply another mean rate than the
typical group's.

The ``source`` column of every table says which of these a row is.
"""

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from poolwise import adapter
from poolwise.errors import PoolwiseError
from poolwise.estimates import (
    arms,
    aux_draws,
    group_draws,
    interval_prob,
    population_draws,
    reference_level,
    summarise,
)
from poolwise.families import Family
from poolwise.families import family as find_family
from poolwise.identify import prior_only_groups
from poolwise.prediction import link_draws
from poolwise.results import Fit

QUANTITIES = ("rate_without", "rate_with", "difference", "ratio")
OUTCOMES = ("outcome_without", "outcome_with", "difference")
TABLE_COLUMNS = ["model", "group", "arm", "quantity", "mean", "sd", "lower", "upper", "p_helps", "source"]
EXPECTED_COLUMNS = ["model", "arm", "quantity", "groups", "trials", "mean", "sd", "lower", "upper", "p_helps", "source"]
SCOPES = ("typical", "new")
# Which quantities a group's data cannot inform, by the reason prior_only_groups() gives.
_UNINFORMED = {"prior_only": ("rate_with", "difference", "ratio"), "sum_only": ("rate_without", "difference", "ratio")}
# Where an observed group's uninformed quantities come from, per pooling.
_BORROWED = {"partial": "population", "none": "prior"}


@dataclass
class Decision:
    """The answers of one fit, as tidy tables (see the module docstring for what each model means).

    ``typical``, ``new_group`` and ``per_group`` share the columns ``TABLE_COLUMNS``: model, group,
    arm (the treatment level compared with ``reference``: "1" against "0" for a numeric treatment,
    each other level of a categorical one), quantity (rate_without: the reference level's mean,
    rate_with: the arm's, difference and, where the mean is positive, ratio), mean, sd, lower, upper
    (the central ``prob`` interval), p_helps (P(the arm helps): its mean above the reference's, or
    below it when lower is better) and source.

    Parameters
    ----------
    pooling : str
        The model decided with.
    treatment : str
        The treatment term.
    factor : str
        The grouping factor the groups belong to.
    outcome : str
        The outcome column.
    family : str
        The outcome family.
    unit : str
        What one unit of a new group's size is (trials, a unit of exposure, observations).
    higher_is_better : bool
        Whether a higher mean response is better.
    trials : float
        Each new group's size.
    groups : int
        The number of new groups of ``expected``.
    prob : float
        The interval probability used.
    reference : str
        The level effects are measured against ("0" for a numeric treatment).
    arms : list of str
        The levels compared with the reference (["1"] for a numeric treatment).
    typical, per_group, new_group : pandas.DataFrame
        The typical group, each observed group, and one new group.
    expected : pandas.DataFrame
        What ``groups`` new groups of size ``trials`` should expect in total: arm, quantity
        (outcome_without, outcome_with, difference), groups, trials, mean, sd, lower, upper,
        p_helps, source.
    best : pandas.DataFrame
        A categorical treatment only: scope (typical, new), level and p_best, the probability that
        the level is the best of all, reference included.
    notes : list of str
        What a reader must know (groups whose data cannot inform their difference).
    threshold : float or None
        The ``decide(threshold=)`` of the ``p_helps_by`` column, when one was asked for.
    shares : pandas.DataFrame
        Ordinal, zero-inflated and hurdle fits with a population only: P(each rating), or P(zero)
        per unit of exposure, for the typical and a new group, over the same rows as ``typical``
        (averaged over the other predictors where it is). Columns scope, arm, value (the rating,
        or 0), quantity (share_without, share_with, difference), mean, sd, lower, upper; empty
        otherwise.

    Examples
    --------
    >>> decision = decide(study.fits["partial"], trials=50, groups=100)  # doctest: +SKIP
    >>> decision.typical[["quantity", "mean", "lower", "upper", "p_helps"]]  # doctest: +SKIP
    """

    pooling: str
    treatment: str
    factor: str
    outcome: str
    family: str
    unit: str
    higher_is_better: bool
    trials: float
    groups: int
    prob: float
    reference: str
    arms: list[str]
    typical: pd.DataFrame
    per_group: pd.DataFrame
    new_group: pd.DataFrame
    expected: pd.DataFrame
    best: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    threshold: float | None = None
    shares: pd.DataFrame = field(default_factory=pd.DataFrame)

    def verdict(self) -> str:
        """A short plain-language answer with the numbers, for the CLI and reports.

        Returns
        -------
        str
            See ``verdict``.

        Examples
        --------
        >>> decide(study.fits["partial"]).verdict()  # doctest: +SKIP
        "yogaStretch raises a typical gymID's rate from 24% to 32% (difference +8 points, ..."
        """
        return verdict(self)

    def shares_subject(self) -> str:
        """What ``shares`` are the probabilities of, in words: each rating, or a zero count.

        Returns
        -------
        str
            E.g. ``"each rating"``, ``"bookings = 0 at one customer"``; a hurdle's zeros say that
            they are 1 - psi, which the treatment does not move here.

        Examples
        --------
        >>> decide(wine_fit).shares_subject()  # doctest: +SKIP
        'each rating'
        """
        if find_family(self.family).ordinal:
            return f"each {self.outcome}"
        if self.family.startswith("hurdle"):
            return f"{self.outcome} = 0, 1 - psi, the same with and without"
        per = "" if self.unit in ("rows", "observations") else f" at one {self.unit}"
        return f"{self.outcome} = 0{per}"

    def shares_rows(self) -> pd.DataFrame:
        """``shares`` one row per scope, arm and value: the probability without and with the
        treatment (means) and the change with its interval.

        Returns
        -------
        pandas.DataFrame
            Columns scope, arm, value, share_without, share_with, change, lower, upper (probabilities; empty
            for a family without shares).

        Examples
        --------
        >>> decide(wine_fit).shares_rows().columns.tolist()  # doctest: +SKIP
        ['scope', 'arm', 'value', 'share_without', 'share_with', 'change', 'lower', 'upper']
        """
        rows = []
        for (scope, arm, value), part in self.shares.groupby(["scope", "arm", "value"], sort=False):
            by = part.set_index("quantity")
            change = by.loc["difference"]
            rows.append(
                {
                    "scope": scope,
                    "arm": arm,
                    "value": value,
                    "share_without": by.loc["share_without", "mean"],
                    "share_with": by.loc["share_with", "mean"],
                    "change": change["mean"],
                    "lower": change["lower"],
                    "upper": change["upper"],
                }
            )
        return pd.DataFrame(
            rows, columns=["scope", "arm", "value", "share_without", "share_with", "change", "lower", "upper"]
        )


def check_treatment(fit: Fit, treatment: str | None) -> str:
    """The treatment term to report, checked.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    treatment : str or None
        A term of the formula, or None for the formula's own (its first group-varying slope).

    Returns
    -------
    str
        The treatment term.

    Raises
    ------
    PoolwiseError
        The term is not in the formula, or it is a text column that is not a categorical treatment.

    Examples
    --------
    >>> check_treatment(study.fits["partial"], None)  # doctest: +SKIP
    'yogaStretch'
    """
    spec = fit.spec
    terms = list(dict.fromkeys([*spec.varying, *spec.common]))
    treatment = treatment or spec.treatment
    if treatment is None or treatment not in terms:
        shown = ", ".join(terms) or "none"
        raise PoolwiseError(
            f"unknown treatment {treatment!r}; the formula's terms are: {shown}. Pass one of them as treatment"
        )
    if (
        treatment in fit.data.columns
        and not pd.api.types.is_numeric_dtype(fit.data[treatment])
        and not arms(fit, treatment)
    ):
        raise PoolwiseError(
            f"treatment {treatment} must be a 0/1 or numeric column to compare without (0) and with (1); recode it"
        )
    return treatment


def rates(alpha: xr.DataArray, beta: xr.DataArray, family: Family, aux: dict | None = None) -> xr.Dataset:
    """Mean responses without and with the treatment, their difference and ratio, from link-scale draws.

    Parameters
    ----------
    alpha : xarray.DataArray
        Draws of the linear predictor without the treatment.
    beta : xarray.DataArray
        Draws of the treatment's effect on the link scale.
    family : Family
        The outcome family (its mean response; whether a ratio is meaningful).
    aux : dict of str to xarray.DataArray, optional
        Draws of the family's own parameters, where its mean response needs them
        (``estimates.aux_draws``).

    Returns
    -------
    xarray.Dataset
        rate_without, rate_with, difference, and ratio where the mean is positive.

    Examples
    --------
    >>> import xarray as xr
    >>> from poolwise.families import FAMILIES
    >>> out = rates(xr.DataArray([0.0]), xr.DataArray([1.0]), FAMILIES["poisson"])
    >>> round(float(out["ratio"][0]), 3)
    2.718
    """
    aux = aux or {}
    return rates_of(family.mean(alpha, aux), family.mean(alpha + beta, aux), family)


def _by_row(fit: Fit) -> bool:
    """Whether a new group's size counts rows whose outcomes must be drawn one by one: counts per
    row of a family whose rows do not sum to one row of the same family (all but the Poisson)."""
    family = find_family(fit.spec.family)
    return unit(fit) == "rows" and family.counts and not family.trials and family.name != "poisson"


def unit(fit: Fit) -> str:
    """What one unit of a new group's size is.

    Parameters
    ----------
    fit : Fit
        A fitted model.

    Returns
    -------
    str
        ``"trials"`` (binomial), the exposure column (poisson with an offset), ``"observations"``
        (a measurement: gaussian, t, gamma, lognormal, beta) or ``"rows"``.

    Examples
    --------
    >>> unit(study.fits["partial"])  # doctest: +SKIP
    'trials'
    """
    spec = fit.spec
    if spec.trials:
        return "trials"
    if spec.exposure and not spec.exposure.endswith("_n"):
        return spec.exposure
    return "rows" if find_family(spec.family).counts else "observations"


def level_etas(fit: Fit, treatment: str, scope: str, rng: np.random.Generator, size: int | None = None) -> xr.DataArray:
    """Link-scale draws of every treatment level (the reference first), for the typical group or new groups.

    A new group's intercept and each level's slope are drawn from Normal(population, group sd),
    jointly with the group terms' correlation where the model has one, else independently (brms's
    ``sample_new_levels="gaussian"``). Bambi's own route, ``predict(..., sample_new_groups=True)``,
    resamples one observed group's deviations per draw and gives every unseen level that same group,
    so it cannot represent G different new groups.

    Parameters
    ----------
    fit : Fit
        A partial or complete pooling fit.
    treatment : str
        The treatment term.
    scope : str
        ``"typical"`` or ``"new"``.
    rng : numpy.random.Generator
        Draws the new groups.
    size : int, optional
        The number of new groups (a ``new_group`` dimension); None for one, without that dimension.

    Returns
    -------
    xarray.DataArray
        Dims (chain, draw, [new_group,] level).

    Examples
    --------
    >>> import numpy as np
    >>> level_etas(fit, "yogaStretch", "new", np.random.default_rng(0), size=100).sizes  # doctest: +SKIP
    """
    levels = arms(fit, treatment)
    pops = [population_draws(fit, treatment, arm) for arm in (levels or [None])]
    alpha, betas = pops[0]["alpha"], [pop["beta"] for pop in pops]
    if scope == "new":
        z = _new_group_normals(fit, treatment, (*alpha.shape, size or 1), len(pops), rng)

        def new(centre: xr.DataArray, sd: str, pop: xr.Dataset, normal: np.ndarray) -> xr.DataArray:
            centre = centre.expand_dims(new_group=size or 1, axis=-1)
            # No group sd (complete pooling, or a term that does not vary): a new group is the typical one.
            return centre + (pop[sd].values[..., None] * normal if sd in pop else 0.0)

        alpha = new(alpha, "sigma_alpha", pops[0], z[0])
        betas = [new(pop["beta"], "sigma_beta", pop, z[k + 1]) for k, pop in enumerate(pops)]
        if size is None:
            alpha, betas = alpha.isel(new_group=0, drop=True), [b.isel(new_group=0, drop=True) for b in betas]
    names = [reference_level(fit, treatment), *(levels or ["1"])]
    etas = [alpha + 0.0 * betas[0]] + [alpha + beta for beta in betas]
    return xr.concat(etas, dim=pd.Index(names, name="level"))


def _new_group_normals(
    fit: Fit, treatment: str, shape: tuple, slopes: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Standard normals for a new group's intercept and ``slopes`` slopes, shape (chain, draw,
    new_group) each: correlated by the posterior's correlation of the intercept and the
    treatment's slope where the model estimates one (lme4's ``(1 + x|g)``), else independent."""
    z = [rng.standard_normal(shape) for _ in range(slopes + 1)]
    factor = fit.spec.factor
    if factor is None or slopes != 1 or "Intercept" not in factor.names or treatment not in factor.names:
        return z
    matrix = adapter.correlation_matrix(fit.posterior, factor.names, factor.name)
    if matrix is None:
        return z
    i, j = factor.names.index("Intercept"), factor.names.index(treatment)
    rho = matrix[..., i, j][..., None]
    return [z[0], rho * z[0] + np.sqrt(1 - rho**2) * z[1]]


MAX_AVERAGED_ROWS = 2000  # rows an averaged effect is taken over (a seeded sample beyond that)


def covariates(fit: Fit, treatment: str) -> list[str]:
    """The common terms besides the treatment, over whose observed values decisions average.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    treatment : str
        The treatment term.

    Returns
    -------
    list of str

    Examples
    --------
    >>> covariates(fit, "yogaStretch")  # doctest: +SKIP
    ['age']
    """
    return [term for term in fit.spec.common if term != treatment]


def averageable(fit: Fit, treatment: str) -> bool:
    """Whether ``averaged_rates`` can set the treatment row by row: it is a data column (or a
    categorical one, ``C(x)``) and every slope varying by group is a numeric data column.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    treatment : str
        The treatment term.

    Returns
    -------
    bool
        False for a transformed treatment (``log(dose)``) or a categorical slope varying by group;
        decisions then hold the other predictors at 0 and say so.

    Examples
    --------
    >>> averageable(fit, "yogaStretch")  # doctest: +SKIP
    True
    """
    if _treatment_values(fit, treatment) is None:
        return False
    data = fit.data
    return all(
        term in data.columns and pd.api.types.is_numeric_dtype(data[term])
        for factor in fit.spec.factors
        for term in factor.terms
    )


def averaged_rates(
    fit: Fit, treatment: str, scope: str, rng: np.random.Generator, *, at: dict | None = None
) -> dict[str, xr.Dataset]:
    """Each arm's rates against the reference, averaged over the observed rows' other predictors
    (an average marginal effect, as marginaleffects' ``avg_comparisons`` and Bambi's
    ``comparisons(average_by=)`` give): every row is predicted at the reference level and at the
    arm, for the typical group (group effects 0) or one new group drawn from the population for
    all rows, and the mean responses are averaged over the rows, draw by draw.

    Parameters
    ----------
    fit : Fit
        A partial or complete pooling fit.
    treatment : str
        The treatment term.
    scope : str
        ``"typical"`` or ``"new"``.
    rng : numpy.random.Generator
        Draws the new group and, beyond ``MAX_AVERAGED_ROWS`` rows, the rows averaged over.
    at : dict, optional
        Column -> value: predictors held at a chosen value instead of averaged over.

    Returns
    -------
    dict of str to xarray.Dataset
        Arm -> rate_without, rate_with, difference and (where meaningful) ratio, dims (chain, draw).

    Raises
    ------
    PoolwiseError
        An ``at`` column that is not a predictor of the formula, or is the treatment or a grouping
        factor.

    Examples
    --------
    >>> averaged_rates(fit, "yogaStretch", "typical", np.random.default_rng(1))["1"]["difference"].mean()  # doctest: +SKIP
    """
    spec, family = fit.spec, find_family(fit.spec.family)
    column, values = _treatment_values(fit, treatment)
    grouping = {part for factor in spec.factors for part in (*factor.parts, factor.name)}
    rows = fit.data
    # Aggregated rows (bernoulli customers as counts, merged Poisson rows) stand for several of
    # the user's rows: each weighs as many as it stands for.
    counted = f"{spec.outcome}_n"
    generated = counted in (spec.trials, spec.exposure) and counted not in spec.variables and counted in rows
    if len(rows) > MAX_AVERAGED_ROWS:
        rows = rows.iloc[np.sort(rng.choice(len(rows), MAX_AVERAGED_ROWS, replace=False))]
    rows = rows.reset_index(drop=True).copy()
    weights = rows[counted].to_numpy(dtype=float) if generated else np.ones(len(rows))
    fixed = {column, *grouping, spec.outcome, spec.trials, spec.exposure}
    for name, value in (at or {}).items():
        if name not in spec.variables or name in fixed:
            choices = [v for v in spec.variables if v not in fixed]
            raise PoolwiseError(
                f"cannot hold {name!r} at a value: it is not one of the formula's other predictors ({', '.join(choices) or 'none'})"
            )
        rows[name] = value
    if spec.exposure:  # rates per unit of exposure: the offset log(1) = 0
        rows[spec.exposure] = 1
    if scope == "new":  # one new group for every row, drawn once per draw
        for name in grouping:
            rows[name] = "new group"
    stacked = pd.concat([rows.assign(**{column: value}) for value in values.values()], ignore_index=True)
    # A new group of the factor in focus, the other factors at 0: as the decisions without covariates.
    eta = link_draws(fit, stacked, "population" if scope == "typical" else "new", rng, factors={spec.group})
    aux = {name: draws.values[..., None, None] for name, draws in aux_draws(fit).items()}
    eta = eta.reshape(*eta.shape[:2], len(values), len(rows))
    means = family.mean(eta, aux) @ (weights / weights.sum())
    # P(each rating), P(zero): averaged over the rows too (``Decision.shares``).
    shares = [share @ (weights / weights.sum()) for share in family.shares(eta, aux)]
    names = list(values)
    dims = ("chain", "draw")
    reference = xr.DataArray(means[..., 0], dims=dims)
    out = {}
    for number, name in enumerate(names[1:], start=1):
        rated = {
            f"share_{side}[{k}]": (dims, share[..., at])
            for k, share in enumerate(shares)
            for side, at in (("without", 0), ("with", number))
        }
        out[name] = rates_of(reference, xr.DataArray(means[..., number], dims=dims), family).assign(rated)
    return out


def rates_of(without: xr.DataArray, with_: xr.DataArray, family: Family) -> xr.Dataset:
    """rate_without, rate_with, difference and (where meaningful) ratio from two mean responses.

    Parameters
    ----------
    without, with_ : xarray.DataArray
        Draws of the mean response at the reference level and at the arm.
    family : Family
        The outcome family (whether a ratio is meaningful).

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import xarray as xr
    >>> from poolwise.families import FAMILIES
    >>> round(float(rates_of(xr.DataArray(0.2), xr.DataArray(0.3), FAMILIES["binomial"])["difference"]), 2)
    0.1
    """
    out = {"rate_without": without, "rate_with": with_, "difference": with_ - without}
    if family.ratio:
        out["ratio"] = with_ / without
    return xr.Dataset(out)


def _treatment_values(fit: Fit, treatment: str) -> tuple[str, dict[str, object]] | None:
    """The treatment's data column and its value at the reference level and at each arm; None
    where the treatment is a transform of a column (``log(dose)``), which rows cannot set."""
    levels = arms(fit, treatment)
    if not levels:
        return (treatment, {"0": 0, "1": 1}) if treatment in fit.data.columns else None
    # The column inside C(...) or factor(...): a whole word of the term, the longest if several.
    words = set(re.findall(r"[A-Za-z][\w.]*", str(treatment)))
    found = sorted((name for name in fit.spec.variables if name in words and name in fit.data.columns), key=len)
    if not found:
        return None
    column = found[-1]
    typed = {str(value): value for value in pd.unique(fit.data[column])}
    names = [reference_level(fit, treatment), *levels]
    return column, {name: typed.get(name, name) for name in names}


def _level_rates(etas: xr.DataArray, arm: str, fit: Fit) -> xr.Dataset:
    """rate_without (the reference level), rate_with (level ``arm``), difference, ratio."""
    reference = etas.isel(level=0, drop=True)
    return rates(reference, etas.sel(level=arm, drop=True) - reference, find_family(fit.spec.family), aux_draws(fit))


def rate_draws(
    fit: Fit,
    *,
    treatment: str | None = None,
    scope: str = "typical",
    seed: int | np.random.Generator | None = None,
    arm: str | None = None,
) -> xr.Dataset:
    """Draws of rate_without, rate_with, difference and ratio for the typical group or one new group.

    Parameters
    ----------
    fit : Fit
        A partial or complete pooling fit.
    treatment : str, optional
        The treatment term (default: the formula's first varying slope).
    scope : str
        ``"typical"`` or ``"new"``.
    seed : int or numpy.random.Generator, optional
        Draws the new group.
    arm : str, optional
        The level of a categorical treatment (default: the first non-reference level).

    Returns
    -------
    xarray.Dataset
        One variable per quantity, dims (chain, draw).

    Raises
    ------
    PoolwiseError
        An unknown scope or treatment, or a no pooling fit (it has no population).

    Examples
    --------
    >>> draws = rate_draws(study.fits["partial"], scope="new", seed=1)  # doctest: +SKIP
    >>> float((draws["difference"] > 0).mean())  # doctest: +SKIP
    0.87
    """
    treatment = check_treatment(fit, treatment)
    if scope not in SCOPES:
        raise PoolwiseError(f"unknown scope {scope!r}; use one of: {', '.join(SCOPES)}")
    if fit.pooling == "none":
        raise PoolwiseError(
            "no pooling has no population, so it has no typical or new group; use the partial pooling fit"
        )
    etas = level_etas(fit, treatment, scope, np.random.default_rng(seed))
    return _level_rates(etas, arm if arm is not None else str(etas["level"].values[1]), fit)


def _rows(
    model: str,
    group: str,
    arm: str,
    draws: xr.Dataset | None,
    prob: float,
    sources: dict[str, str],
    quantities: tuple[str, ...],
    sign: int,
    threshold: float | None = None,
) -> list[dict]:
    # P(helps by more than threshold), only when one is asked for: the column is then in the table.
    beyond = {} if threshold is None else {"p_helps_by": np.nan}
    if draws is None:
        empty = {"mean": np.nan, "sd": np.nan, "lower": np.nan, "upper": np.nan, "p_helps": np.nan, **beyond}
        return [
            {"model": model, "group": group, "arm": arm, "quantity": q, **empty, "source": sources[q]}
            for q in quantities
        ]
    p_helps = float((sign * draws["difference"] > 0).mean())
    if threshold is not None:
        beyond = {"p_helps_by": float((sign * draws["difference"] > threshold).mean())}
    return [
        {
            "model": model,
            "group": group,
            "arm": arm,
            "quantity": q,
            **summarise(draws[q], prob),
            "p_helps": p_helps,
            **beyond,
            "source": sources[q],
        }
        for q in quantities
    ]


def _per_group(
    fit: Fit, treatment: str, arm: str, prob: float, sign: int, threshold: float | None = None
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Each observed group's rates, with the quantities its data cannot inform marked by source."""
    coefficients = group_draws(fit, treatment, arm if arms(fit, treatment) else None)
    draws = rates(coefficients["alpha"], coefficients["beta"], find_family(fit.spec.family), aux_draws(fit))
    quantities = tuple(draws.data_vars)
    # Complete pooling gives every group the shared estimate, so no group is singled out there.
    found = {}
    if fit.spec.group and fit.pooling != "complete":
        found = prior_only_groups(fit.spec, fit.data).get(treatment, {})
    flagged = {reason: found.get(reason, []) for reason in _UNINFORMED}
    rows = []
    for label in draws["group"].values:
        sources = dict.fromkeys(QUANTITIES, "all groups" if fit.pooling == "complete" else "data")
        for reason, groups in flagged.items():
            if str(label) in groups:
                sources.update(dict.fromkeys(_UNINFORMED[reason], _BORROWED[fit.pooling]))
        rows += _rows(fit.pooling, str(label), arm, draws.sel(group=label), prob, sources, quantities, sign, threshold)
    return pd.DataFrame(rows, columns=_columns(threshold)), flagged


def _columns(threshold: float | None) -> list[str]:
    """``TABLE_COLUMNS``, with p_helps_by after p_helps when a threshold is asked for."""
    if threshold is None:
        return TABLE_COLUMNS
    at = TABLE_COLUMNS.index("p_helps") + 1
    return [*TABLE_COLUMNS[:at], "p_helps_by", *TABLE_COLUMNS[at:]]


def _expected(
    fit: Fit, treatment: str, trials: float, groups: int, prob: float, rng: np.random.Generator, sign: int
) -> pd.DataFrame:
    """Posterior predictive of the total outcome of ``groups`` new groups of size ``trials`` each
    (trials, exposure or observations), the same groups at the reference level and at each arm
    (different units, so independent outcomes drawn from the family)."""
    names = [reference_level(fit, treatment), *(arms(fit, treatment) or ["1"])]
    if fit.pooling == "none":
        empty = {"mean": np.nan, "sd": np.nan, "lower": np.nan, "upper": np.nan, "p_helps": np.nan}
        return pd.DataFrame(
            [
                {
                    "model": fit.pooling,
                    "arm": arm,
                    "quantity": q,
                    "groups": groups,
                    "trials": trials,
                    **empty,
                    "source": "undefined",
                }
                for arm in names[1:]
                for q in OUTCOMES
            ],
            columns=EXPECTED_COLUMNS,
        )
    family = find_family(fit.spec.family)
    etas = level_etas(fit, treatment, "new", rng, size=groups)
    aux = {name: draws.values[..., None] for name, draws in aux_draws(fit).items()}
    by_row = _by_row(fit)

    def total(mu: np.ndarray) -> np.ndarray:
        # Rows of a count family other than the Poisson do not add up to one bigger row (one
        # structural-zero coin, one hurdle per row): draw each row and add them.
        if by_row:
            return sum(family.simulate(rng, mu, 1, aux) for _ in range(int(trials)))
        return family.simulate(rng, mu, trials, aux)

    totals = {
        str(level): total(family.inverse(etas.sel(level=level).values)).sum(axis=-1) for level in etas["level"].values
    }
    if not family.counts:  # a measurement's total means little: report the mean per observation
        totals = {level: values / (groups * trials) for level, values in totals.items()}
    source = "new groups from population" if fit.pooling == "partial" else "all groups"
    rows = []
    for arm in names[1:]:
        outcomes = {
            "outcome_without": totals[names[0]],
            "outcome_with": totals[arm],
            "difference": totals[arm] - totals[names[0]],
        }
        p_helps = float((sign * outcomes["difference"] > 0).mean())
        rows += [
            {
                "model": fit.pooling,
                "arm": arm,
                "quantity": q,
                "groups": groups,
                "trials": trials,
                **summarise(values, prob),
                "p_helps": p_helps,
                "source": source,
            }
            for q, values in outcomes.items()
        ]
    return pd.DataFrame(rows, columns=EXPECTED_COLUMNS)


def _best(etas: dict[str, xr.DataArray], sign: int) -> pd.DataFrame:
    """P(each level is the best of all) per scope, from link-scale draws (the inverse link is
    monotone, so the best linear predictor is the best mean)."""
    rows = []
    for scope, values in etas.items():
        winner = (sign * values).argmax("level").values.ravel()
        for index, level in enumerate(values["level"].values):
            rows.append({"scope": scope, "level": str(level), "p_best": float((winner == index).mean())})
    return pd.DataFrame(rows, columns=["scope", "level", "p_best"])


def decide(
    fit: Fit,
    *,
    treatment: str | None = None,
    trials: float = 50,
    groups: int = 100,
    prob: float | None = None,
    higher_is_better: bool = True,
    seed: int | None = None,
    threshold: float | None = None,
    at: dict | None = None,
) -> Decision:
    """Turn a fit into decisions on the response scale.

    The treatment's effect for a typical group, each observed group and a new group, and the total
    outcome ``groups`` new groups of size ``trials`` each should expect without and with it. A
    categorical treatment is compared level by level against its reference level, with P(best)
    across all levels. Intervals are central (equal-tailed), as ArviZ reports them. New groups and
    outcomes are simulated with ``seed``, so the same call gives the same numbers.

    Parameters
    ----------
    fit : Fit
        A fitted model (no pooling answers per observed group only).
    treatment : str, optional
        The treatment term (default: the formula's first varying slope).
    trials : float
        Each new group's size in the data's own unit: trials (binomial, bernoulli), units of
        exposure (poisson, negative binomial with an offset; rows without one) or observations
        (gaussian: the mean per observation is reported).
    groups : int
        The number of new groups of the expected outcomes.
    prob : float, optional
        The interval probability (default: ArviZ's ``rcParams["stats.ci_prob"]``, 0.89).
    higher_is_better : bool
        False makes "helps" mean a lower mean response (fewer defects, shorter reaction times).
    seed : int, optional
        Seed of the simulated new groups and outcomes.
    at : dict, optional
        Predictors held at chosen values (column -> value) in the typical and new-group rows
        instead of averaged over the observed rows (``averaged_rates``).
    threshold : float, optional
        Also give P(the arm helps by more than ``threshold``), a column ``p_helps_by`` of the
        typical, new-group and per-group tables: the difference of mean responses on the
        response scale (0.02: two percentage points of a probability), above it (below
        ``-threshold`` when lower is better).

    Returns
    -------
    Decision
        The tables and the verdict.

    Raises
    ------
    PoolwiseError
        An unknown treatment, ``trials`` not a positive (whole, for counts of trials) number,
        ``groups`` not a whole number >= 1, ``prob`` outside (0, 1), or a ``threshold`` that is not
        a number >= 0.

    Examples
    --------
    >>> decide(study.fits["partial"], trials=50, groups=100).verdict()  # doctest: +SKIP
    """
    treatment = check_treatment(fit, treatment)
    family = find_family(fit.spec.family)
    whole = family.trials or _by_row(fit)
    if (
        isinstance(trials, bool)
        or not isinstance(trials, (int, float, np.integer, np.floating))
        or not trials > 0
        or (whole and trials != int(trials))
        or not np.isfinite(trials)
    ):
        kind = "a whole number >= 1" if whole else "a number > 0"
        raise PoolwiseError(f"trials (each new group's size) must be {kind}, got {trials!r}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise PoolwiseError(f"groups must be a whole number >= 1, got {groups!r}")
    prob = interval_prob(prob)
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.integer, np.floating))
        or not threshold >= 0
        or not np.isfinite(threshold)
    ):
        raise PoolwiseError(f"threshold must be a number >= 0 (a difference of mean responses), got {threshold!r}")
    rng = np.random.default_rng(seed)
    sign = 1 if higher_is_better else -1
    factor = fit.spec.group or "group"
    quantities = QUANTITIES if family.ratio else QUANTITIES[:-1]
    levels = arms(fit, treatment)
    names = levels or ["1"]
    # What each scope's numbers come from; no pooling has no population, so neither scope exists.
    sources = {
        "none": {"typical": "undefined", "new": "undefined"},
        "complete": {"typical": "all groups", "new": "all groups"},
        "partial": {"typical": "population", "new": "new group from population"},
    }[fit.pooling]
    etas = {} if fit.pooling == "none" else {scope: level_etas(fit, treatment, scope, rng) for scope in SCOPES}
    # With other predictors, the typical and new-group rows average over the observed rows' values
    # of them (or hold them at ``at``) rather than describe the cell where they are all 0.
    others = covariates(fit, treatment) if etas and averageable(fit, treatment) else []
    unaveraged = bool(etas) and bool(covariates(fit, treatment)) and not others
    if at and not others:
        why = (
            f"{treatment} is not a data column, or a categorical slope varies by group, so rows cannot be averaged over"
            if unaveraged
            else f"the formula has no predictors besides {treatment} to average over"
        )
        raise PoolwiseError(f"cannot hold {next(iter(at))!r} at a value: {why}")
    averaged = {scope: averaged_rates(fit, treatment, scope, rng, at=at) for scope in SCOPES} if others else {}
    rows = {scope: [] for scope in SCOPES}
    for scope in SCOPES:
        for arm in names:
            if averaged:
                draws = averaged[scope][arm]
            else:
                draws = _level_rates(etas[scope], arm, fit) if etas else None
            source = dict.fromkeys(QUANTITIES, sources[scope] + (", averaged over rows" if averaged else ""))
            rows[scope] += _rows(fit.pooling, scope, arm, draws, prob, source, quantities, sign, threshold)
    best = _best(etas, sign) if etas and levels else pd.DataFrame(columns=["scope", "level", "p_best"])
    per_group = []
    flagged = {}
    for arm in names:
        table, flagged = _per_group(fit, treatment, arm, prob, sign, threshold)
        per_group.append(table)
    notes = _notes(fit.pooling, treatment, factor, flagged) if not levels else []
    if not levels and treatment in fit.data.columns and not set(pd.unique(fit.data[treatment])) <= {0, 1}:
        notes.insert(
            0,
            f"{treatment} is not 0/1: 'without' is {treatment} = 0 and 'with' is {treatment} = 1, "
            "the effect of one unit more",
        )
    if unaveraged:
        notes.insert(
            0,
            f"{treatment} is not a data column, or a categorical slope varies by group: the typical and new-{factor} "
            f"rows hold {', '.join(covariates(fit, treatment))} at 0 instead of averaging over the rows",
        )
    if averaged:
        held = f", {', '.join(f'{name} = {value}' for name, value in at.items())} held fixed" if at else ""
        notes.insert(
            0,
            f"the typical and new-{factor} rows average over the {min(len(fit.data), MAX_AVERAGED_ROWS)} observed rows' "
            f"{', '.join(others)}{held}; the per-{factor} rows and the expected outcomes hold them at 0",
        )
    trials = int(trials) if whole else float(trials)
    return Decision(
        pooling=fit.pooling,
        treatment=treatment,
        factor=factor,
        outcome=fit.spec.outcome,
        family=family.key,
        unit=unit(fit),
        higher_is_better=higher_is_better,
        trials=trials,
        groups=int(groups),
        prob=prob,
        reference=reference_level(fit, treatment),
        arms=names,
        typical=pd.DataFrame(rows["typical"], columns=_columns(threshold)),
        per_group=pd.concat(per_group, ignore_index=True),
        new_group=pd.DataFrame(rows["new"], columns=_columns(threshold)),
        expected=_expected(fit, treatment, trials, int(groups), prob, rng, sign),
        best=best,
        notes=notes,
        threshold=None if threshold is None else float(threshold),
        shares=_shares(fit, etas, averaged, prob) if family.has_shares and etas else pd.DataFrame(),
    )


def _shares(fit: Fit, etas: dict[str, xr.DataArray], averaged: dict, prob: float) -> pd.DataFrame:
    """P(each rating) or P(zero) without and with each arm, and the change, per scope
    (``Decision.shares``): averaged over the observed rows where the rate rows are."""
    family, aux = find_family(fit.spec.family), aux_draws(fit)
    values = family.share_values(aux)
    rows = []
    for scope, eta in etas.items():
        levels = [str(level) for level in eta["level"].values]
        for arm in levels[1:]:
            if averaged:
                rated = averaged[scope][arm]
                pairs = [(rated[f"share_without[{k}]"], rated[f"share_with[{k}]"]) for k in range(len(values))]
            else:
                pairs = list(zip(*(family.shares(eta.sel(level=level), aux) for level in (levels[0], arm))))
            for value, (without, with_) in zip(values, pairs):
                for quantity, draws in (
                    ("share_without", without),
                    ("share_with", with_),
                    ("difference", with_ - without),
                ):
                    rows.append(
                        {
                            "scope": scope,
                            "arm": arm,
                            "value": float(value),
                            "quantity": quantity,
                            **summarise(draws, prob),
                        }
                    )
    return pd.DataFrame(rows, columns=["scope", "arm", "value", "quantity", "mean", "sd", "lower", "upper"])


def _notes(pooling: str, treatment: str, factor: str, flagged: dict[str, list[str]]) -> list[str]:
    notes = []
    never_without, never_with = flagged.get("sum_only", []), flagged.get("prior_only", [])
    where = {"partial": "borrowed from the population", "none": "the prior's, not data"}.get(pooling)
    if never_without:
        notes.append(
            f"{factor} {', '.join(never_without)} never ran without {treatment}: rate_without and the "
            f"difference there are {where}"
        )
    if never_with:
        notes.append(
            f"{factor} {', '.join(never_with)} never ran with {treatment}: rate_with and the difference "
            f"there are {where}"
        )
    return notes


def _value(value: float, family: str) -> str:
    """A mean response as a reader says it: 22% for a probability, else three significant digits."""
    return f"{100 * value:.0f}%" if find_family(family).probability else f"{value:.3g}"


def _change(value: float, family: str) -> str:
    """A difference of two mean responses: +10 points for probabilities, else signed digits."""
    return f"{100 * value:+.0f}" if find_family(family).probability else f"{value:+.3g}"


def _rate_sentence(table: pd.DataFrame, prob: float, family: str) -> tuple[str, str]:
    """('from 22% to 33%', 'difference +10 points, 89% interval +2 to +19; P(helps) = 0.97')."""
    rows = table.set_index("quantity")
    diff = rows.loc["difference"]
    points = " points" if find_family(family).probability else ""
    change = (
        f"from {_value(rows.loc['rate_without', 'mean'], family)} to {_value(rows.loc['rate_with', 'mean'], family)}"
    )
    detail = (
        f"difference {_change(diff['mean'], family)}{points}, {prob:.0%} interval {_change(diff['lower'], family)} to "
        f"{_change(diff['upper'], family)}; P(helps) = {diff['p_helps']:.2f}"
    )
    return change, detail


def measure(family: str, outcome: str, unit: str) -> str:
    """What the mean response is, in words.

    Parameters
    ----------
    family : str
        The outcome family.
    outcome : str
        The outcome column.
    unit : str
        What one unit of size is (see ``unit``).

    Returns
    -------
    str
        ``"rate"`` (a probability), ``"mean <outcome>"`` (gaussian) or ``"<outcome> per unit of
        <exposure>"`` (``per row`` without one).

    Examples
    --------
    >>> measure("poisson", "nVisits", "memberMonths")
    'nVisits per unit of memberMonths'
    """
    if find_family(family).probability:
        return "rate"
    if not find_family(family).counts:
        return f"mean {outcome}"
    return f"{outcome} per {'row' if unit == 'rows' else 'unit of ' + unit}"


def verdict(decision: Decision) -> str:
    """The decision in plain language, with its numbers.

    E.g. "yogaStretch raises a typical gymID's rate from 22% to 33% (difference +10 points, 89%
    interval +2 to +19; P(helps) = 0.97). For a new gymID: ... 100 new gymIDs × 50 trials: ...". A
    categorical treatment gets one clause per level against the reference level, and P(best).

    Parameters
    ----------
    decision : Decision
        From ``decide``.

    Returns
    -------
    str
        A few sentences.

    Examples
    --------
    >>> verdict(decide(study.fits["partial"]))  # doctest: +SKIP
    """
    d, group, treatment = decision, decision.factor, decision.treatment
    helps = "higher" if d.higher_is_better else "lower"
    categorical = not d.best.empty or d.arms != ["1"]
    if d.pooling == "none":
        diff = d.per_group[d.per_group["quantity"] == "difference"]
        informed = diff[diff["source"] == "data"]
        likely = [
            f"{row.group} ({row.arm})" if categorical else row.group
            for row in informed[informed["p_helps"] > 0.9].itertuples()
        ]
        text = (
            f"No pooling estimates each {group} on its own and has no population, so it says nothing about a "
            f"typical or new {group}. {treatment} helps ({helps} is better) with P > 0.9 in {len(likely)} of the "
            f"{len(informed)} {group}{' and level' if categorical else ''}s whose data inform the difference "
            f"({', '.join(likely) or 'none'})."
        )
        return " ".join([text, *(note + "." for note in d.notes)])
    what = measure(d.family, d.outcome, d.unit)

    def clauses(table: pd.DataFrame, whose: str | None) -> str:
        """One clause per arm; ``whose`` None gives the short form ('from 22% to 33% (...)')."""
        parts = []
        for arm in d.arms:
            change, detail = _rate_sentence(table[table["arm"] == arm], d.prob, d.family)
            direction = (
                "raises"
                if table[(table["arm"] == arm) & (table["quantity"] == "difference")]["mean"].iloc[0] >= 0
                else "lowers"
            )
            who = f"{treatment} {arm} (against {d.reference})" if categorical else treatment
            parts.append(
                f"{change} ({detail})" if whose is None else f"{who} {direction} {whose} {what} {change} ({detail})"
            )
        return "; ".join(parts)

    def best(scope: str) -> str:
        rows = d.best[d.best["scope"] == scope]
        return (
            ""
            if rows.empty
            else " P(best): " + ", ".join(f"{row.level} {row.p_best:.2f}" for row in rows.itertuples()) + "."
        )

    if d.pooling == "complete":
        sentences = [
            f"Complete pooling (one {what} for every {group}): {clauses(d.typical, 'the')}.{best('typical')} "
            f"It assumes {group}s do not differ, so a new {group} gets the same answer."
        ]
    else:
        sentences = [
            f"{clauses(d.typical, f'a typical {group}' + chr(39) + 's')}.{best('typical')}",
            f"For a new {group}: {clauses(d.new_group, 'its' if categorical else None)}.{best('new')}",
        ]
    if not d.higher_is_better:
        sentences.append("Lower is better here: P(helps) is the probability of a decrease.")
    total, digits = ("", ",.0f") if find_family(d.family).counts else ("mean ", ".3g")
    outcomes = []
    for arm in d.arms:
        rows = d.expected[d.expected["arm"] == arm].set_index("quantity")
        without, with_, diff = rows.loc["outcome_without"], rows.loc["outcome_with"], rows.loc["difference"]
        names = (f" at {d.reference}", f" at {arm}") if categorical else (" without", " with")
        outcomes.append(
            f"{total}{d.outcome} {without['mean']:{digits}}{names[0]} ({without['lower']:{digits}} to {without['upper']:{digits}}) "
            f"and {with_['mean']:{digits}}{names[1]} ({with_['lower']:{digits}} to {with_['upper']:{digits}}); difference "
            f"{diff['mean']:+{digits}} ({diff['lower']:+{digits}} to {diff['upper']:+{digits}}), P(helps) = {diff['p_helps']:.2f}"
        )
    sentences.append(f"{d.groups} new {group}s × {d.trials:,g} {d.unit}: {'; '.join(outcomes)}.")
    sentences += [note + "." for note in d.notes]
    return " ".join(sentences)
