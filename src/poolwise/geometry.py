"""The sampler's geometry, chosen from the data: centred or non-centred group terms, and the
target acceptance rate.

A group term is best non-centred (Bambi's ``u_g = sigma * z_g``) when each group's data say little
next to the spread of the groups, and centred (``a_g ~ Normal(population, sigma)``) when they say a
lot: the standard rule compares each group's likelihood information with the population's
precision (Betancourt & Girolami 2015; Papaspiliopoulos, Roberts & Sköld 2007). Per term: the
information of group g is ``sum_i w_i x_i^2`` over its rows (``w_i`` the family's Fisher weight at
the pooled mean: ``n p (1 - p)`` for binomial counts, the expected count for Poisson, ``1 / s_y^2``
for gaussian; ``x_i`` the term's column, 1 for the intercept), and the spread is guessed from the
raw per-group means on the link scale less their sampling noise (half of it for slopes). The term is centred when the
factor has at least ``MANY_GROUPS`` levels and the median group's information times the squared
spread exceeds 1; with fewer groups the group sd is too uncertain for a centred term.
"""

import numpy as np
import pandas as pd

from poolwise.choices import PARAMETERIZATIONS
from poolwise.errors import PoolwiseError
from poolwise.families import family as find_family
from poolwise.spec import FormulaSpec

CHOICES = PARAMETERIZATIONS
# Non-centred small hierarchies meet the funnel's neck: a higher target acceptance takes smaller
# steps there. Measured (4 x 1000 + 1000, NumPyro): the gym data had 1 divergence at PyMC's 0.8
# and none at 0.95 over three seeds; the bundled demo none at its default seed (a few on some
# other seeds, also at 0.99). About 1 s more per fit.
TARGET_ACCEPT = 0.95
# With this many groups the group sd is pinned down by the data, so data-rich groups centre well.
MANY_GROUPS = 50


def check_parameterization(parameterization: str) -> str:
    """Validate a parameterization choice.

    Parameters
    ----------
    parameterization : str
        One of ``CHOICES``: ``"auto"``, ``"centered"`` or ``"noncentered"``.

    Returns
    -------
    str
        ``parameterization``.

    Raises
    ------
    PoolwiseError
        It is not one of ``CHOICES``.

    Examples
    --------
    >>> check_parameterization("auto")
    'auto'
    """
    if parameterization not in CHOICES:
        raise PoolwiseError(f"unknown parameterization {parameterization!r}; use one of: {', '.join(CHOICES)}")
    return parameterization


def choose(spec: FormulaSpec, data: pd.DataFrame, parameterization: str = "auto") -> dict[str, dict[str, str]]:
    """How partial pooling parameterizes each group term: centred or non-centred.

    With ``"auto"`` each term is chosen from the data (see the module docstring). A correlated factor's
    terms are drawn as one block (``adapter.correlate``), centred only when every term is; a block
    with a categorical term stays non-centred whatever is asked.

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    data : pandas.DataFrame
        The data to fit.
    parameterization : str
        ``"auto"``, or ``"centered"`` / ``"noncentered"`` for every term.

    Returns
    -------
    dict of str to dict of str to str
        Factor -> term (``"Intercept"`` or a slope) -> ``"centered"`` or ``"noncentered"``.

    Raises
    ------
    PoolwiseError
        An unknown ``parameterization``.

    Examples
    --------
    >>> frame = load_dataset("franchise")  # doctest: +SKIP
    >>> choose(parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", frame), frame)  # doctest: +SKIP
    {'gymID': {'Intercept': 'noncentered', 'yogaStretch': 'noncentered'}}
    """
    parameterization = check_parameterization(parameterization)
    choices = {}
    for factor in spec.factors:
        if parameterization != "auto":
            choices[factor.name] = dict.fromkeys(factor.names, parameterization)
        else:
            choices[factor.name] = {term: _auto(spec, data, factor.name, term) for term in factor.names}
        if factor.correlated and set(choices[factor.name].values()) != {"centered"}:
            # A correlated block is drawn as one: centred only when every term of it is.
            choices[factor.name] = dict.fromkeys(factor.names, "noncentered")
    return choices


def nested_in(spec: FormulaSpec, data: pd.DataFrame) -> dict[str, dict[str, dict[str, str]]]:
    """Each factor whose groups lie within the groups of others (every level of it within one
    level of the other, as lecturers within departments), and each enclosing factor's level for
    each of its groups; all with a varying intercept.

    A centred intercept of a nested factor is drawn around the sum of its enclosing groups'
    values (``adapter.center``): otherwise a parent's deviation and the mean of its children's are
    a ridge the data cannot split (measured on lme4's InstEval, lecturers within 14 departments).

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    data : pandas.DataFrame
        The data to fit, with a column per factor.

    Returns
    -------
    dict of str to dict
        Factor -> enclosing factor -> {level: the enclosing level} (levels as strings).

    Examples
    --------
    >>> from poolwise import parse_formula
    >>> frame = pd.DataFrame({"y": [1.0, 2, 3, 4], "lecturer": [1, 2, 3, 4], "dept": ["a", "a", "b", "b"]})
    >>> nested_in(parse_formula("y ~ 1 + (1|lecturer) + (1|dept)"), frame)
    {'lecturer': {'dept': {'1': 'a', '2': 'a', '3': 'b', '4': 'b'}}}
    """
    with_intercept = [factor.name for factor in spec.factors if factor.intercept]
    found = {}
    for inner in with_intercept:
        levels = data.groupby(inner, observed=True)
        enclosing = {
            outer: {str(k): str(v) for k, v in levels[outer].first().items()}
            for outer in with_intercept
            if outer != inner
            and data[outer].nunique() < data[inner].nunique()
            and bool((levels[outer].nunique() == 1).all())
        }
        if enclosing:
            found[inner] = enclosing
    return found


def _auto(spec: FormulaSpec, data: pd.DataFrame, factor: str, term: str) -> str:
    weights, spread = _weights(spec, data, factor)
    if term == "Intercept":
        column = np.ones(len(data))
    elif term in data.columns and pd.api.types.is_numeric_dtype(data[term]):
        column = data[term].to_numpy(dtype=float)
    else:  # a categorical or derived term: keep Bambi's non-centred default
        return "noncentered"
    information = pd.Series(weights * column**2).groupby(data[factor].to_numpy()).sum()
    if len(information) < MANY_GROUPS:
        # Few groups leave the group sd itself uncertain, and a centred term then has a funnel
        # whatever each group's data say (measured: the gym data diverge centred, not non-centred).
        return "noncentered"
    scale = spread if term == "Intercept" else spread / 2  # slopes vary less than intercepts: a guess
    return "centered" if float(information.median()) * scale**2 > 1 else "noncentered"


def _ordinal_weights(ratings: np.ndarray, groups: np.ndarray, *, probit: bool) -> tuple[np.ndarray, float]:
    """Ordinal rows' information about the latent location, Whitehead's (1 - sum p_k^3) / 3 for
    proportional odds (about 1.6^2 times that in probit units), and the spread of the groups'
    log-odds of rating above the mean rating, less its noise."""
    shares = pd.Series(ratings).value_counts(normalize=True).to_numpy()
    units = 1.6 if probit else 1.0  # a probit unit is about 1.6 logit units
    weights = np.full(len(ratings), units**2 * (1 - np.sum(shares**3)) / 3)
    above = pd.DataFrame({"k": ratings > ratings.mean(), "n": 1.0}).groupby(groups).sum()
    raw = (above["k"] + 0.5) / (above["n"] + 1.0)
    link = np.log(raw / (1 - raw)) / units
    spread2 = float(np.var(link) - (1 / (above["n"] * raw * (1 - raw) * units**2)).mean())
    return weights, max(np.sqrt(max(spread2, 0.0)), 0.1)


def _weights(spec: FormulaSpec, data: pd.DataFrame, factor: str) -> tuple[np.ndarray, float]:
    """Each row's Fisher weight at the pooled mean, and the spread of the groups' raw means on the
    link scale (floored at 0.1 link units or a tenth of the outcome's sd, so a group-free data set
    still gets a scale)."""
    family = find_family(spec.family)
    outcome = data[spec.outcome].to_numpy(dtype=float)
    size = data[spec.size].to_numpy(dtype=float) if spec.size else np.ones(len(data))
    groups = data[factor].to_numpy()
    if family.link == "identity":
        sd = float(np.std(outcome)) or 1.0
        table = pd.Series(outcome).groupby(groups).agg(["mean", "size"])
        # The spread of the raw means less their sampling noise (a method-of-moments estimate).
        spread2 = float(table["mean"].var(ddof=0) - (sd**2 / table["size"]).mean())
        return np.full(len(data), 1 / sd**2), max(np.sqrt(max(spread2, 0.0)), 0.1 * sd)
    if family.ordinal:
        return _ordinal_weights(outcome, groups, probit=family.link == "probit")
    pooled = outcome.sum() / size.sum()
    if family.trials:  # binomial information, on the logit scale whatever the link (a guide, not a fit)
        pooled = float(np.clip(pooled, 1e-3, 1 - 1e-3))
        weights = size * pooled * (1 - pooled)
    else:
        pooled = max(float(pooled), 1e-3)
        weights = size * pooled
    sums = pd.DataFrame({"k": outcome, "n": size, "w": weights}).groupby(groups).sum()
    raw = (sums["k"] + 0.5) / (sums["n"] + 1.0)
    link = np.log(raw / (1 - raw)) if family.trials else np.log(raw)
    # The spread of the raw link-scale means less their sampling noise (1 / information each).
    spread2 = float(np.var(link) - (1 / sums["w"].clip(lower=1e-9)).mean())
    return weights, max(np.sqrt(max(spread2, 0.0)), 0.1)
