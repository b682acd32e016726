"""Predict new rows from a fit: the common part through Bambi, each group's part from its own draws
or, for a group the fit never saw, drawn from the population (sds and correlation), as brms's
``allow_new_levels = TRUE`` with ``sample_new_levels = "gaussian"`` does.

Bambi 0.21's own new-group prediction gives every unseen level the deviations of one observed
group per draw (bambinos/bambi#417), so it cannot represent many different new groups; the
population draws here can.
"""

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from poolwise import adapter
from poolwise.errors import PoolwiseError
from poolwise.estimates import aux_draws, interval_prob, summarise
from poolwise.families import family as find_family
from poolwise.refits import of_fit
from poolwise.results import Fit

KINDS = ("mean", "rate", "outcome", "link")
GROUPS = ("fitted", "population", "new")


def predict(
    source,
    newdata: pd.DataFrame,
    *,
    model: str | None = None,
    kind: str = "mean",
    groups: str = "fitted",
    prob: float | None = None,
    draws: bool = False,
    seed: int | None = None,
) -> pd.DataFrame:
    """Predictions for new rows, one row each with mean, sd and interval (or every draw).

    Parameters
    ----------
    source : Fit or Study
        A fit, or a study (its ``model`` fit, partial pooling by default).
    newdata : pandas.DataFrame
        The rows to predict: every column the formula reads except the outcome (a binomial row
        needs its trials, a Poisson row with an offset its exposure, for ``kind`` "mean" and
        "outcome").
    model : str, optional
        Which fit of a study: ``"partial"`` (default), ``"none"`` or ``"complete"``.
    kind : str, default "mean"
        ``"mean"``: the row's expected outcome (brms's ``posterior_epred``: successes out of its
        trials, events in its exposure, the mean value); ``"rate"``: the mean response per trial or
        per unit of exposure (the probability, the event rate); ``"outcome"``: outcomes drawn from
        the likelihood (``posterior_predict``); ``"link"``: the linear predictor.
    groups : str, default "fitted"
        ``"fitted"``: a group seen in the fit uses its own coefficients, an unseen one is drawn
        from the population; ``"population"``: every group effect at 0 (lme4's ``re.form = NA``);
        ``"new"``: every row's group drawn from the population, as if none had been seen.
    prob : float, optional
        Interval probability (default 0.89, ArviZ's).
    draws : bool, default False
        Return every draw, a long frame (row, chain, draw, value), instead of the summary.
    seed : int, optional
        Seed of the new groups' and the outcomes' draws.

    Returns
    -------
    pandas.DataFrame
        ``newdata``'s columns with mean, sd, lower and upper, or the draws.

    Raises
    ------
    PoolwiseError
        Unknown ``kind``, ``groups`` or ``model``; new data without a column the model reads, with
        an unseen level of a common categorical predictor, a text value where the fit had numbers,
        or negative trials or exposure; a no pooling fit asked for unseen or new groups.

    Examples
    --------
    >>> predict(fit, pd.DataFrame({"gymID": ["new"], "yogaStretch": [1], "nTrialCustomers": [40]}))  # doctest: +SKIP
    """
    fit = _fit_of(source, model)
    if kind not in KINDS:
        raise PoolwiseError(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")
    if groups not in GROUPS:
        raise PoolwiseError(f"unknown groups {groups!r}; use one of: {', '.join(GROUPS)}")
    prob = interval_prob(prob)
    new = _checked(fit, newdata, kind, groups)
    rng = np.random.default_rng(seed)
    eta = link_draws(fit, new, groups, rng)
    family = find_family(fit.spec.family)
    size = new[fit.spec.size].to_numpy(dtype=float) if fit.spec.size in new else np.ones(len(new))
    values = eta
    if kind != "link":
        aux = {name: draws.to_numpy()[..., None] for name, draws in aux_draws(fit).items()}
        # Bambi's linear predictor holds the offset, log(exposure): its mean is per row, not per unit.
        per = size if fit.spec.exposure else 1.0
        rate = family.mean(eta, aux) / per
        if kind == "rate":
            values = rate
        elif kind == "mean":
            values = rate * size
        else:
            values = family.simulate(rng, family.inverse(eta) / per, size, aux).astype(float)
    if draws:
        chains, count = values.shape[:2]
        index = pd.MultiIndex.from_product(
            [range(len(new)), range(chains), range(count)], names=["row", "chain", "draw"]
        )
        return pd.DataFrame({"value": np.moveaxis(values, -1, 0).reshape(-1)}, index=index).reset_index()
    summaries = [summarise(xr.DataArray(values[..., row], dims=("chain", "draw")), prob) for row in range(len(new))]
    return pd.concat([newdata.reset_index(drop=True), pd.DataFrame(summaries)], axis=1)


def draws_dataset(draws: pd.DataFrame, newdata: pd.DataFrame, kind: str) -> xr.Dataset:
    """Every draw of ``predict(..., draws=True)`` as one array, ready for netCDF.

    Parameters
    ----------
    draws : pandas.DataFrame
        ``predict``'s long table (row, chain, draw, value).
    newdata : pandas.DataFrame
        The rows predicted, in ``predict``'s order.
    kind : str
        The kind predicted (stored as an attribute).

    Returns
    -------
    xarray.Dataset
        ``prediction`` with dims (chain, draw, row); the new rows' columns are coordinates along
        ``row`` (text as strings).

    Raises
    ------
    PoolwiseError
        A column of the new data is named prediction, chain, draw or row.

    Examples
    --------
    >>> new = pd.DataFrame({"gymID": ["a", "b"]})
    >>> long = pd.DataFrame({"row": [0, 1, 0, 1], "chain": 0, "draw": [0, 0, 1, 1], "value": [0.1, 0.2, 0.3, 0.4]})
    >>> draws_dataset(long, new, "rate")["prediction"].sel(row=1).values.tolist()
    [[0.2, 0.4]]
    """
    clash = [name for name in ("prediction", "chain", "draw", "row") if name in newdata.columns]
    if clash:
        raise PoolwiseError(
            f"the new data has a column named {clash[0]!r}, which the netCDF file uses for the draws; rename it"
        )
    values = draws.set_index(["chain", "draw", "row"])["value"].to_xarray()
    rows = newdata.reset_index(drop=True)
    coords = {
        str(name): (
            "row",
            column.to_numpy() if pd.api.types.is_numeric_dtype(column) else column.astype(str).to_numpy(),
        )
        for name, column in rows.items()
    }
    return xr.Dataset({"prediction": values}).assign_coords(coords).assign_attrs(kind=kind)


def link_draws(
    fit: Fit, newdata: pd.DataFrame, groups: str, rng: np.random.Generator, *, factors: set[str] | None = None
) -> np.ndarray:
    """The linear predictor of each new row at each draw, (chain, draw, row).

    Parameters
    ----------
    fit : Fit
        The fit.
    newdata : pandas.DataFrame
        Checked new rows (``predict``).
    groups : str
        One of ``GROUPS``.
    rng : numpy.random.Generator
        Draws the unseen groups.
    factors : set of str, optional
        The grouping factors whose effects are added (default: all); the others are at 0.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    PoolwiseError
        A slope of a categorical predictor varies by group (only ``groups="population"`` then).

    Examples
    --------
    >>> link_draws(fit, new, "population", np.random.default_rng(1)).shape  # doctest: +SKIP
    (4, 1000, 3)
    """
    built = of_fit(fit).model
    family = find_family(fit.spec.family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        common = adapter.common_mean(built, fit.idata, newdata)
    # Bambi's mu is the mean response, except where Bambi fits it on the identity link (the
    # lognormal's mean of log y): then it is the linear predictor itself.
    eta = common if family.bambi_link == "identity" else family.linked(common)
    if fit.pooling != "partial" or groups == "population":
        return eta
    chosen = [factor for factor in fit.spec.factors if factors is None or factor.name in factors]
    for factor in chosen:
        for term in factor.terms:
            if term not in newdata or not pd.api.types.is_numeric_dtype(newdata[term]):
                raise PoolwiseError(
                    f"cannot predict {factor.name}'s {term} slopes for new rows: only numeric slopes are predicted by group; "
                    "use groups='population'"
                )
    posterior = fit.posterior
    for factor in chosen:
        seen = [str(level) for level in posterior[adapter.group_dim(factor.name)].values]
        labels = newdata[factor.name].astype(str).to_numpy()
        unseen = sorted(set(labels)) if groups == "new" else sorted(set(labels) - set(seen))
        deviations = _new_deviations(fit, factor, len(unseen), rng)  # (chain, draw, new level, term)
        for number, term in enumerate(factor.names):
            x = np.ones(len(newdata)) if term == "Intercept" else newdata[term].to_numpy(dtype=float)
            own = posterior[adapter.group_term(term, factor.name)].transpose("chain", "draw", ...).to_numpy()
            for row, label in enumerate(labels):
                if label in unseen:
                    eta[..., row] += x[row] * deviations[..., unseen.index(label), number]
                else:
                    eta[..., row] += x[row] * own[..., seen.index(label)]
    return eta


def _new_deviations(fit: Fit, factor, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` new groups' deviations of ``factor``'s terms, (chain, draw, count, term): normal
    with the posterior's group sds and, where the model has it, the terms' correlation."""
    posterior = fit.posterior
    sds = np.stack(
        [posterior[adapter.group_sd(term, factor.name)].transpose("chain", "draw").to_numpy() for term in factor.names],
        axis=-1,
    )
    matrix = adapter.correlation_matrix(posterior, factor.names, factor.name)
    if matrix is None:
        matrix = np.broadcast_to(np.eye(len(factor.names)), (*sds.shape, len(factor.names)))
    covariance = sds[..., :, None] * matrix * sds[..., None, :]
    cholesky = np.linalg.cholesky(covariance + 1e-12 * np.eye(len(factor.names)))
    z = rng.standard_normal((*sds.shape[:2], count, len(factor.names)))
    return np.einsum("cdij,cdnj->cdni", cholesky, z)


def _fit_of(source, model: str | None) -> Fit:
    if isinstance(source, Fit):
        return source
    name = model or ("partial" if "partial" in source.fits else next(iter(source.fits)))
    if name not in source.fits:
        raise PoolwiseError(f"the study has no {name!r} model; use one of: {', '.join(source.fits)}")
    return source.fits[name]


def _checked(fit: Fit, newdata: pd.DataFrame, kind: str, groups: str) -> pd.DataFrame:
    """The new rows with the columns the data stage derives (nested factors, a bernoulli row's one
    trial), after one-line checks of what the model needs."""
    if not isinstance(newdata, pd.DataFrame) or newdata.empty:
        raise PoolwiseError("the new data must be a table with at least one row")
    spec, fitted = fit.spec, fit.data
    derived = {factor.name for factor in spec.factors if len(factor.parts) > 1}
    generated = {column for column in (spec.trials, spec.exposure) if column and column not in spec.variables}
    needed = [name for name in spec.variables if name not in (spec.outcome, *derived, *generated)]
    if kind in ("link", "rate"):
        needed = [name for name in needed if name not in (spec.trials, spec.exposure)]
    missing = [name for name in needed if name not in newdata.columns]
    if missing:
        raise PoolwiseError(f"the new data has no column {missing[0]!r}, which the model reads; add it")
    new = newdata.reset_index(drop=True).copy()
    grouping = {part for factor in spec.factors for part in factor.parts}
    for name in needed:
        was, now = fitted[name], new[name]
        if name not in grouping and pd.api.types.is_numeric_dtype(was) and not pd.api.types.is_numeric_dtype(now):
            bad = pd.to_numeric(now, errors="coerce").isna() & now.notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise PoolwiseError(
                f"column {name!r} holds numbers in the fit but {now.iloc[row]!r} in row {row + 1} of the new data; give numbers"
            )
        if now.isna().any():
            row = int(np.flatnonzero(now.isna().to_numpy())[0])
            raise PoolwiseError(f"column {name!r} of the new data is missing in row {row + 1}; fill it or drop the row")
    for name, least, bad in ((spec.trials, "0", lambda v: v < 0), (spec.exposure, "> 0", lambda v: v <= 0)):
        if name in new and pd.api.types.is_numeric_dtype(new[name]) and bad(new[name]).any():
            row = int(np.flatnonzero(bad(new[name]).to_numpy())[0])
            what = "negative" if least == "0" else "not positive"
            raise PoolwiseError(
                f"column {name!r} of the new data is {what} in row {row + 1}; it must be {'>= 0' if least == '0' else '> 0'}"
            )
    if spec.exposure and spec.exposure not in new:  # kind rate or link: per unit of exposure
        new[spec.exposure] = 1
    for name in needed:
        if name in grouping or name in (spec.trials, spec.exposure) or pd.api.types.is_numeric_dtype(fitted[name]):
            continue
        known = pd.unique(fitted[name].astype(str))
        unknown = [value for value in pd.unique(new[name].astype(str)) if value not in set(known)]
        if unknown:
            raise PoolwiseError(
                f"column {name!r} of the new data has level {unknown[0]!r}, which the fit never saw; use one of: {', '.join(known)}"
            )
    for column in generated:
        new[column] = 1
    for factor in spec.factors:
        if len(factor.parts) > 1:
            new[factor.name] = new[list(factor.parts)].astype(str).agg(":".join, axis=1)
    if fit.pooling == "none" and groups != "fitted":
        raise PoolwiseError(
            f"no pooling has no population, so groups={groups!r} has no meaning; use groups='fitted' or the partial pooling fit"
        )
    if fit.pooling == "none" and spec.group is not None:
        seen = set(fitted[spec.group].astype(str))
        unseen = [label for label in pd.unique(new[spec.group].astype(str)) if label not in seen]
        if unseen:
            raise PoolwiseError(
                f"no pooling has no population to draw {spec.group} {unseen[0]!r} from (the fit never saw it); "
                "use the partial pooling fit"
            )
    return new
