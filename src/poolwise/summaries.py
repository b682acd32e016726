"""One fit summarised as lme4/brms users read it: population effects, group-level sds, per-group
coefficients, and the sampler's diagnostics (r_hat, ESS, divergences).

Everything comes from the saved draws and data, never from the Bambi model, so a fit loaded from
disk summarises exactly as it did when it was made.
"""

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from poolwise import adapter
from poolwise.errors import PoolwiseError
from poolwise.estimates import coefficients, interval_prob, summarise
from poolwise.families import family as find_family
from poolwise.pooling import pooling as find_pooling
from poolwise.results import Fit

COLUMNS = ["mean", "sd", "lower", "upper", "r_hat", "ess_bulk", "ess_tail"]


@dataclass(frozen=True)
class Summary:
    """What ``poolwise fit`` prints: tables of posterior summaries and the diagnostics.

    Parameters
    ----------
    pooling, formula, family, link : str
        The model, the formula as written, its family and link.
    level : str or None
        A two-valued outcome's success level.
    bambi_formula : str
        The formula Bambi fitted.
    group, treatment : str or None
        The grouping factor in focus and the treatment term.
    n_rows, n_groups : int
        Rows fitted and levels of the factor in focus.
    n_source_rows : int
        Rows of the user's data behind them: bernoulli rows aggregated to binomial counts, or
        Poisson rows merged, are counted one by one (``n_rows`` where nothing was aggregated).
    factors : dict of str to int
        Levels of every grouping factor.
    independent : list of str
        Factors whose terms vary independently (lme4's ``||``).
    parameterization : dict
        Factor -> term -> centred or non-centred, as fitted.
    priors : dict of str to str
        Term -> the prior the fit used (brms's ``prior_summary``): the user's, else the default
        resolved from the data, for every term, group sd, correlation and family parameter.
    data_hash : str
        The fitted data's hash.
    settings : dict
        draws, tune, chains, seed, backend, target_accept.
    prob : float
        The interval probability.
    population, group_sds : pandas.DataFrame
        One row per parameter, columns ``COLUMNS`` (mean, sd, lower, upper, r_hat, ess_bulk,
        ess_tail; ``group_sds`` also ``factor``, its rows ``sd(term)`` or ``sd(g:term)`` with several
        factors, and ``cor(...)``). Bounds are on the link scale; the family's own parameters (gaussian
        ``sigma``, negative binomial ``alpha``) are population rows.
    groups : pandas.DataFrame
        One row per group: intercept ``alpha``, slope ``beta`` and both mean responses
        (``rate_without``, ``rate_with``), each with ``_lower``/``_upper`` bounds.
    divergences : int
        Divergent transitions.
    max_r_hat, min_ess_bulk : float
        The worst r_hat and bulk ESS.

    Examples
    --------
    >>> report = summary(study.fits["partial"])  # doctest: +SKIP
    >>> report.population[["mean", "lower", "upper", "r_hat"]]  # doctest: +SKIP
    """

    pooling: str
    formula: str
    family: str
    link: str
    level: str | None
    bambi_formula: str
    group: str | None
    treatment: str | None
    n_rows: int
    n_groups: int
    n_source_rows: int
    factors: dict[str, int]
    independent: list[str]
    parameterization: dict[str, dict[str, str]]
    priors: dict[str, str]
    data_hash: str
    settings: dict
    prob: float
    population: pd.DataFrame
    group_sds: pd.DataFrame
    groups: pd.DataFrame
    divergences: int
    max_r_hat: float
    min_ess_bulk: float

    @property
    def label(self) -> str:
        """The pooling model's name in words, e.g. 'Partial pooling'."""
        return find_pooling(self.pooling).label

    def to_dict(self) -> dict:
        """A JSON-ready dict (NaN, e.g. r_hat of a single chain, becomes null).

        Returns
        -------
        dict
            Every field, tables as nested dicts by row; what ``poolwise fit --json`` prints.

        Examples
        --------
        >>> summary(study.fits["partial"]).to_dict()["model"]  # doctest: +SKIP
        'partial'
        """
        tables = {
            name: json.loads(getattr(self, name).to_json(orient="index", double_precision=15))
            for name in ("population", "group_sds", "groups")
        }
        return {
            "model": self.pooling,
            "label": self.label,
            "formula": self.formula,
            "family": self.family,
            "link": self.link,
            "level": self.level,
            "bambi_formula": self.bambi_formula,
            "group": self.group,
            "treatment": self.treatment,
            "n_rows": self.n_rows,
            "n_source_rows": self.n_source_rows,
            "n_groups": self.n_groups,
            "factors": self.factors,
            "independent": self.independent,
            "parameterization": self.parameterization,
            "priors": self.priors,
            "data_hash": self.data_hash,
            "settings": self.settings,
            "prob": self.prob,
            **tables,
            "divergences": self.divergences,
            "max_r_hat": None if np.isnan(self.max_r_hat) else self.max_r_hat,
            "min_ess_bulk": self.min_ess_bulk,
        }


def summary(fit: Fit, *, prob: float | None = None) -> Summary:
    """Summarise a fit as brms does: population effects, group-level sds, diagnostics, groups.

    ArviZ's ``summary`` gives the equal-tailed ``prob`` intervals, r_hat and ESS. Population effects
    are the terms shared by all groups (for no pooling, that includes each group's own coefficients,
    as in a fixed-effects model); group-level sds are partial pooling's ``sd(term)``; ``groups`` is
    ``poolwise.coefficients``, one row per group.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    prob : float, optional
        The interval probability (default: ArviZ's ``rcParams["stats.ci_prob"]``, 0.89).

    Returns
    -------
    Summary
        The tables and diagnostics.

    Examples
    --------
    >>> summary(study.fits["partial"]).group_sds  # doctest: +SKIP
    """
    import arviz as az

    prob = interval_prob(prob)
    parameters = _parameters(fit)
    table = az.summary(fit.idata, var_names=parameters or None, ci_prob=prob, ci_kind="eti", round_to="none")
    table = table.rename(columns={c: "lower" for c in table.columns if c.endswith("_lb")})
    table = table.rename(columns={c: "upper" for c in table.columns if c.endswith("_ub")})
    table = pd.DataFrame(table[COLUMNS]).astype(float)
    is_sd = table.index.map(adapter.is_group_sd).to_numpy(dtype=bool)
    is_deviation = table.index.map(lambda name: adapter.is_group_term(name.split("[", 1)[0])).to_numpy(dtype=bool)
    is_cor = table.index.map(adapter.is_group_cor).to_numpy(dtype=bool)
    several = len(fit.spec.factors) > 1
    rows = []
    for name in table.index[is_sd | is_cor]:
        if adapter.is_group_cor(name):  # brms prints cor(Intercept,x) under its factor's sds
            first, second, factor = adapter.cor_terms(name)
            label = f"cor({factor}:{first},{second})" if several else f"cor({first},{second})"
        else:
            factor, term = adapter.sd_factor(name), adapter.sd_term(name)
            label = f"sd({factor}:{term})" if several else f"sd({term})"
        rows.append((name, label, factor))
    sds = table.loc[[name for name, _, _ in rows]].assign(factor=[factor for _, _, factor in rows])
    sds.index = [label for _, label, _ in rows]
    order = {factor.name: i for i, factor in enumerate(fit.spec.factors)}
    sds = sds.iloc[
        sorted(range(len(sds)), key=lambda i: (order.get(sds["factor"].iloc[i], 0), sds.index[i].startswith("cor")))
    ]
    stats = fit.idata["sample_stats"]
    return Summary(
        pooling=fit.pooling,
        formula=fit.spec.formula,
        family=fit.spec.family,
        link=find_family(fit.spec.family).link,
        level=fit.spec.level,
        bambi_formula=fit.formula,
        group=fit.spec.group,
        treatment=fit.spec.treatment,
        n_rows=len(fit.data),
        n_source_rows=source_rows(fit),
        n_groups=int(fit.data[fit.spec.group].nunique()) if fit.spec.group else 1,
        factors={factor.name: int(fit.data[factor.name].nunique()) for factor in fit.spec.factors},
        independent=[
            f.name
            for f in fit.spec.factors
            if len(f.names) > 1 and adapter.cor_name(*f.names[:2], f.name) not in fit.posterior
        ],
        parameterization=fit.settings.get("parameterization") or {},
        priors=dict(fit.priors),
        data_hash=_saved(fit).get("data_hash", ""),
        settings={
            key: fit.settings.get(key)
            for key in ("draws", "tune", "chains", "seed", "backend", "target_accept", "rescue")
        },
        prob=prob,
        population=table[~is_sd & ~is_deviation & ~is_cor],
        group_sds=sds,
        groups=_group_table(fit, prob),
        divergences=int(stats["diverging"].sum()) if "diverging" in stats else 0,
        max_r_hat=float(np.fmax.reduce(table["r_hat"].to_numpy(), initial=np.nan)),
        min_ess_bulk=float(table["ess_bulk"].min()),
    )


def _parameters(fit: Fit) -> list[str]:
    """Posterior variables that are parameters, not per-observation means (Bambi's ``p``)."""
    obs_dims = {dim for var in fit.idata["log_likelihood"].data_vars.values() for dim in var.dims} - {"chain", "draw"}
    return [name for name, var in fit.posterior.data_vars.items() if not obs_dims & set(var.dims)]


def _group_table(fit: Fit, prob: float) -> pd.DataFrame:
    tidy = coefficients(fit, prob=prob)
    if fit.spec.treatment is None:
        tidy = tidy[tidy["quantity"].isin(["alpha", "rate_without"])]
    wide = tidy.pivot(index="group", columns="quantity", values=["mean", "lower", "upper"])
    order = list(dict.fromkeys(tidy["quantity"]))
    columns = {}
    for quantity in order:
        columns[quantity] = wide[("mean", quantity)]
        columns[f"{quantity}_lower"] = wide[("lower", quantity)]
        columns[f"{quantity}_upper"] = wide[("upper", quantity)]
    return pd.DataFrame(columns).loc[list(dict.fromkeys(tidy["group"]))].rename_axis(fit.spec.group or "group")


def _saved(fit: Fit) -> dict:
    """The metadata ``fit`` stored in its DataTree's attributes."""
    return json.loads(fit.idata.attrs.get("poolwise", "{}"))


@dataclass
class Lme4Summary:
    """lme4/brms-style tables of a partial pooling fit.

    Parameters
    ----------
    fixef : pandas.DataFrame
        term, estimate (posterior mean), est_error (posterior sd), lower, upper.
    varcorr : pandas.DataFrame
        factor, term, sd (posterior mean of the group-level sd), est_error, lower, upper; correlated
        factors also have rows ``cor(a,b)``.
    coef : pandas.DataFrame
        factor, group, term, estimate, ...: population + deviation per level of each grouping factor
        (lme4's ``coef``).
    ranef : pandas.DataFrame
        factor, group, term, estimate, ...: the deviations alone (lme4's ``ranef``).
    note : str
        Which factors' terms are correlated and which independent.

    Examples
    --------
    >>> lme4_summary(study.fits["partial"]).varcorr  # doctest: +SKIP
    """

    fixef: pd.DataFrame
    varcorr: pd.DataFrame
    coef: pd.DataFrame
    ranef: pd.DataFrame
    note: str


def _flat(values: xr.DataArray, term: str, skip: tuple[str, ...] = ()) -> dict[str, xr.DataArray]:
    """One (chain, draw[, group]) array per label: a categorical term's levels become term[level]."""
    extra = [d for d in values.dims if d not in ("chain", "draw", *skip)]
    if not extra:
        return {term: values}
    return {f"{term}[{level}]": values.sel({extra[0]: level}, drop=True) for level in values[extra[0]].values}


def _estimate(values: xr.DataArray, prob: float) -> dict[str, float]:
    s = summarise(values, prob)
    return {"estimate": s["mean"], "est_error": s["sd"], "lower": s["lower"], "upper": s["upper"]}


def _correlation_note(spec) -> str:
    """What varcorr says about correlations: lme4's (x|g) estimates them, (x||g) does not."""
    independent = [f.name for f in spec.factors if len(f.names) > 1 and not f.correlated]
    correlated = [f.name for f in spec.factors if f.correlated]
    parts = []
    if correlated:
        parts.append(
            f"the terms varying over {', '.join(correlated)} are correlated (lme4's (x|g), LKJ prior): "
            "varcorr holds their correlations"
        )
    if independent:
        parts.append(
            f"the terms varying over {', '.join(independent)} are independent (lme4's (x||g)): no correlations"
        )
    return "; ".join(parts) or "one term varies per factor: no correlations"


def lme4_summary(fit: Fit, *, prob: float | None = None) -> Lme4Summary:
    """``fixef``, ``VarCorr``, ``coef`` and ``ranef`` of a partial pooling fit, for R users.

    ``(x|g)`` estimates the correlation of the terms varying over ``g`` (as lme4 does) and
    ``varcorr`` holds it; ``(x||g)`` keeps them independent.

    Parameters
    ----------
    fit : Fit
        A partial pooling fit.
    prob : float, optional
        The interval probability (default: ArviZ's ``rcParams["stats.ci_prob"]``, 0.89).

    Returns
    -------
    Lme4Summary
        The four tables and a note on correlations.

    Raises
    ------
    PoolwiseError
        The fit is not partial pooling.

    Examples
    --------
    >>> lme4_summary(study.fits["partial"]).coef.head()  # doctest: +SKIP
    """
    if fit.pooling != "partial":
        raise PoolwiseError(
            f"lme4_summary describes a multilevel model, not {fit.pooling} pooling; pass the partial pooling fit"
        )
    spec, post = fit.spec, fit.posterior
    prob = interval_prob(prob)
    fixed_terms = (["Intercept"] if spec.intercept else []) + list(spec.common)
    fixed = {}
    for term in fixed_terms:
        fixed.update(_flat(post[term], term))
    varcorr, ranef, coef = [], [], []
    for factor in spec.factors:
        varying_terms = (["Intercept"] if factor.intercept else []) + list(factor.terms)
        deviations = {}
        for term in varying_terms:
            values = post[adapter.group_term(term, factor.name)]
            dim = adapter.group_dim(factor.name)
            values = values.rename({dim: "group"}).assign_coords(group=[str(g) for g in values[dim].values])
            deviations.update(_flat(values, term, skip=("group",)))
            varcorr.append(
                {"factor": factor.name, "term": term, **_estimate(post[adapter.group_sd(term, factor.name)], prob)}
            )
        for i, first in enumerate(factor.names):  # VarCorr's correlations, where the model has them
            for second in factor.names[i + 1 :]:
                name = adapter.cor_name(first, second, factor.name)
                if name in post:
                    varcorr.append(
                        {"factor": factor.name, "term": f"cor({first},{second})", **_estimate(post[name], prob)}
                    )
        for label in (str(g) for g in sorted(fit.data[factor.name].unique())):
            for term in dict.fromkeys([*fixed, *deviations]):
                deviation = deviations[term].sel(group=label, drop=True) if term in deviations else 0.0
                if term in deviations:
                    ranef.append({"factor": factor.name, "group": label, "term": term, **_estimate(deviation, prob)})
                coef.append(
                    {
                        "factor": factor.name,
                        "group": label,
                        "term": term,
                        **_estimate(fixed.get(term, 0.0) + deviation, prob),
                    }
                )
    varcorr = pd.DataFrame(varcorr).rename(columns={"estimate": "sd"})
    factor = " / ".join(f.name for f in spec.factors)
    return Lme4Summary(
        fixef=pd.DataFrame([{"term": term, **_estimate(values, prob)} for term, values in fixed.items()]),
        varcorr=varcorr,
        coef=pd.DataFrame(coef),
        ranef=pd.DataFrame(ranef),
        note=_correlation_note(spec),
    )


def source_rows(fit: Fit) -> int:
    """How many of the user's rows the fitted rows stand for: the data stage aggregates bernoulli
    rows to counts and merges Poisson rows, counting each merged row in a ``{outcome}_n`` column.

    Parameters
    ----------
    fit : Fit
        A fit.

    Returns
    -------
    int

    Examples
    --------
    >>> source_rows(fit)  # doctest: +SKIP
    19819
    """
    spec = fit.spec
    counted = f"{spec.outcome}_n"
    if counted in (spec.trials, spec.exposure) and counted not in spec.variables and counted in fit.data:
        return int(fit.data[counted].sum())
    return len(fit.data)
