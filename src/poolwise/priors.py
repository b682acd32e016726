"""Priors as strings: the default priors resolved from the data, the named presets, parsing
``"Normal(mu=0, sigma=1)"`` and validating terms.

Every fit stores the complete set of prior strings it used, so a refit (cross-validation, a saved
fit reloaded) uses the same priors rather than priors recomputed from other data.
"""

import ast
from collections.abc import Mapping

import numpy as np
import pandas as pd

from poolwise import adapter
from poolwise.errors import PoolwiseError
from poolwise.families import family as find_family
from poolwise.identify import design
from poolwise.spec import FormulaSpec

PRESETS = ("chapter",)
Priors = str | Mapping[str, str] | None
SCALE = 2.5  # rstanarm's (and Bambi's) multiplier: 2.5 outcome sds per predictor sd


def _num(value: float) -> str:
    return f"{float(value):.4g}"


def _nums(values: np.ndarray) -> str:
    values = np.atleast_1d(values)
    return _num(values[0]) if values.size == 1 else "[" + ", ".join(_num(v) for v in values) + "]"


def pooled_mean(spec: FormulaSpec, data: pd.DataFrame) -> float:
    """The outcome's mean over all rows on the response scale.

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    data : pandas.DataFrame
        The prepared data.

    Returns
    -------
    float
        Successes per trial (kept inside (0.001, 0.999)), events per unit of exposure (at least
        0.001), or the mean outcome.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> from poolwise.formulas import parse_formula
    >>> frame = load_dataset("franchise")
    >>> spec = parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", frame)
    >>> round(pooled_mean(spec, frame), 3)
    0.333
    """
    outcome = data[spec.outcome].astype(float)
    if spec.size is None:
        return float(outcome.mean())
    mean = float(outcome.sum() / data[spec.size].astype(float).sum())
    return float(np.clip(mean, 1e-3, 1 - 1e-3)) if spec.trials else max(mean, 1e-3)


def default_priors(spec: FormulaSpec, data: pd.DataFrame, pooling: str) -> dict[str, str]:
    """Weakly informative priors scaled to the data, rstanarm's way, for every term of one model.

    Slopes Normal(0, 2.5 s_y / s_x) per design column (s_y the outcome's sd for gaussian, 1 on logit
    and log scales); the intercept Normal(link(mean outcome), sqrt((2.5 s_y)^2 + sum_k (sigma_k
    xbar_k)^2)): centred on the pooled mean, widened for uncentred predictors as rstanarm's prior on
    the centred intercept implies; group sds HalfNormal with the scale of the term they vary;
    gaussian sigma HalfStudentT(4, s_y) and negative binomial alpha HalfCauchy(1), Bambi's own;
    beta-binomial kappa and gamma shape alpha Gamma(0.01, 0.01), brms's (``Family.aux_priors``);
    ordinal thresholds brms's StudentT(3, 0, 2.5) on the centred thresholds, widened for uncentred
    predictors as the intercept is. No pooling gives each group the intercept's and slopes' priors.

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    data : pandas.DataFrame
        The prepared data.
    pooling : str
        The pooling model whose terms get priors.

    Returns
    -------
    dict of str to str
        Term -> distribution string.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> from poolwise.formulas import parse_formula
    >>> frame = load_dataset("franchise")
    >>> spec = parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", frame)
    >>> default_priors(spec, frame, "complete")
    {'yogaStretch': 'Normal(mu=0, sigma=5.303)', 'Intercept': 'Normal(mu=-0.6938, sigma=3.062)'}
    """
    family = find_family(spec.family)
    # The outcome's sd where Bambi's mu is on the outcome's scale (identity link; lognormal: log y).
    outcome = np.log(data[spec.outcome]) if family.bambi_link == "identity" else data[spec.outcome]
    sy = float(outcome.std(ddof=0)) if "identity" in (family.link, family.bambi_link) else 1.0
    terms = list(dict.fromkeys([*spec.common, *spec.varying]))
    found = design(f"{spec.response} ~ " + " + ".join(["1", *terms]), data)
    slopes, shift = {}, 0.0
    for term in terms:
        columns = found.matrix[:, [i for i, name in enumerate(found.terms) if name == term]]
        sd = columns.std(axis=0)
        slopes[term] = SCALE * sy / np.where(sd > 0, sd, 1.0)
        shift += float(np.sum((slopes[term] * columns.mean(axis=0)) ** 2))
    # An ordinal family's intercept is its thresholds' (no pooling: each level's shift against the first).
    centre = 0.0 if family.ordinal else family.linked(pooled_mean(spec, data))
    spread = _num(np.sqrt((SCALE * sy) ** 2 + shift))
    intercept = f"Normal(mu={_num(centre)}, sigma={spread})"
    priors = by_model(
        spec,
        pooling,
        intercept=intercept,
        slope=lambda term: f"Normal(mu=0, sigma={_nums(slopes[term])})",
        unpooled=lambda term: f"Normal(mu=0, sigma={_num(slopes[term].mean())})",
        contrast=f"Normal(mu=0, sigma={_num(SCALE * sy)})",
        sd=lambda term: (
            f"Normal(mu=0, sigma=HalfNormal(sigma={_num(SCALE * sy) if term == 'Intercept' else _nums(slopes[term])}))"
        ),
    )
    for name, prior in family.aux_priors:
        priors[name] = prior.format(sy=_num(sy), spread=spread)
    return priors


def by_model(spec: FormulaSpec, pooling: str, *, intercept: str, slope, unpooled, contrast: str, sd) -> dict[str, str]:
    """Place priors on one pooling model's terms, named as that model's Bambi formula names them.

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    pooling : str
        The pooling model.
    intercept : str
        The intercept's prior (no pooling: of the first factor's per-level intercepts).
    slope : callable
        ``slope(term)``: a common slope's prior.
    unpooled : callable
        ``unpooled(term)``: the prior of no pooling's per-level slopes.
    contrast : str
        The prior of another factor's reference-coded levels (no pooling).
    sd : callable
        ``sd(term)``: each group term's prior with its group-sd hyperprior (partial pooling).

    Returns
    -------
    dict of str to str
        Term -> distribution string; a correlated factor also gets ``cor|factor``: LKJCorr(eta=1).

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> from poolwise.formulas import parse_formula
    >>> frame = load_dataset("franchise")
    >>> spec = parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", frame)
    >>> by_model(spec, "none", intercept="I", slope=lambda t: "S", unpooled=lambda t: "U", contrast="C", sd=lambda t: "D")
    {'C(gymID)': 'I', 'C(gymID):yogaStretch': 'U'}
    """
    priors = {term: slope(term) for term in spec.common}
    if spec.intercept:
        priors["Intercept"] = intercept
    if pooling == "none":
        first = True
        for factor in spec.factors:
            if factor.intercept:
                priors[adapter.unpooled_intercept(factor.name)] = intercept if first else contrast
                if first:  # the per-level intercepts replace the common one
                    priors.pop("Intercept", None)
                first = False
            for term in factor.terms:
                priors.pop(term, None)
                priors[adapter.unpooled_slope(factor.name, term)] = unpooled(term)
    elif pooling == "partial":
        for factor in spec.factors:
            for term in factor.names:
                priors[adapter.group_term(term, factor.name)] = sd(term)
            if factor.correlated:  # brms's lkj(1): every correlation matrix equally likely
                priors[f"cor|{factor.name}"] = "LKJCorr(eta=1)"
    return priors


def resolve_priors(priors: Priors, spec: FormulaSpec, data: pd.DataFrame, pooling: str) -> dict[str, str]:
    """Every prior of one pooling model: the defaults from the data, then a preset, then the user's own.

    Parameters
    ----------
    priors : str, mapping or None
        A preset name, or term -> distribution strings that may name a ``"preset"`` to start from.
    spec : FormulaSpec
        The parsed formula.
    data : pandas.DataFrame
        The prepared data.
    pooling : str
        The pooling model.

    Returns
    -------
    dict of str to str
        Term -> distribution string (later sources win).

    Raises
    ------
    PoolwiseError
        As ``prior_strings``.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> from poolwise.formulas import parse_formula
    >>> frame = load_dataset("franchise")
    >>> spec = parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", frame)
    >>> resolve_priors({"yogaStretch": "Normal(mu=0, sigma=1)"}, spec, frame, "complete")["yogaStretch"]
    'Normal(mu=0, sigma=1)'
    """
    return {**default_priors(spec, data, pooling), **prior_strings(priors, spec, pooling)}


def chapter_priors(spec: FormulaSpec, pooling: str) -> dict[str, str]:
    """The textbook's priors, on the scale the textbook means (predictors uncentred, rate at x = 0).

    Intercept Normal(-1, 1.5); slopes Normal(0, 0.75); partial pooling's group sd of the intercept
    Uniform(0, 3) and of each slope Uniform(0, 1.5). No pooling gives each group the intercept's and
    slopes' priors directly.

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    pooling : str
        The pooling model.

    Returns
    -------
    dict of str to str
        Term -> distribution string.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> from poolwise.formulas import parse_formula
    >>> frame = load_dataset("franchise")
    >>> spec = parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", frame)
    >>> chapter_priors(spec, "partial")["1|gymID"]
    'Normal(mu=0, sigma=Uniform(lower=0, upper=3))'
    """
    intercept, slope = "Normal(mu=-1, sigma=1.5)", "Normal(mu=0, sigma=0.75)"
    return by_model(
        spec,
        pooling,
        intercept=intercept,
        slope=lambda term: slope,
        unpooled=lambda term: slope,
        contrast=slope,
        sd=lambda term: (
            "Normal(mu=0, sigma=Uniform(lower=0, upper=3))"
            if term == "Intercept"
            else "Normal(mu=0, sigma=Uniform(lower=0, upper=1.5))"
        ),
    )


def prior_strings(priors: Priors, spec: FormulaSpec, pooling: str) -> dict[str, str]:
    """Resolve a ``priors`` argument into term -> distribution strings for one pooling model.

    Parameters
    ----------
    priors : str, mapping or None
        None, a preset name (``PRESETS``), or a term -> distribution dict that may name a
        ``"preset"`` to start from.
    spec : FormulaSpec
        The parsed formula.
    pooling : str
        The pooling model.

    Returns
    -------
    dict of str to str
        The preset's priors (if any) updated with the given ones; empty for None.

    Raises
    ------
    PoolwiseError
        ``priors`` is neither a preset nor a dict of strings, or names an unknown preset.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> from poolwise.formulas import parse_formula
    >>> frame = load_dataset("franchise")
    >>> spec = parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", frame)
    >>> prior_strings({"preset": "chapter", "yogaStretch": "Normal(mu=0, sigma=1)"}, spec, "complete")
    {'yogaStretch': 'Normal(mu=0, sigma=1)', 'Intercept': 'Normal(mu=-1, sigma=1.5)'}
    """
    if priors is None:
        return {}
    if isinstance(priors, str):
        priors = {"preset": priors}
    if not isinstance(priors, Mapping):
        raise PoolwiseError(
            f"priors must be a preset name or a dict of term -> distribution string, not a {type(priors).__name__}"
        )
    for term, text in priors.items():
        if not (isinstance(term, str) and isinstance(text, str)):
            raise PoolwiseError(
                f"priors map term names to distribution strings, got {type(term).__name__} -> {type(text).__name__}; "
                "write e.g. {'x': 'Normal(mu=0, sigma=1)'}"
            )
    priors = dict(priors)
    preset = priors.pop("preset", None)
    resolved: dict[str, str] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise PoolwiseError(
                f"unknown prior preset {preset!r}; use one of: {', '.join(PRESETS)}, or term=distribution strings"
            )
        resolved = chapter_priors(spec, pooling)
    resolved.update(priors)
    return resolved


def parse_prior(text: str):
    """A prior string as a ``bambi.Prior``; the distributions must be PyMC's.

    The string is parsed, never evaluated: only PyMC distribution names with named number (or list,
    or nested distribution) arguments are accepted.

    Parameters
    ----------
    text : str
        E.g. ``"Normal(mu=0, sigma=HalfNormal(sigma=1))"``.

    Returns
    -------
    bambi.Prior
        The prior.

    Raises
    ------
    PoolwiseError
        The text is not a call of a PyMC distribution with named number or distribution arguments.

    Examples
    --------
    >>> parse_prior("Normal(mu=0, sigma=HalfNormal(sigma=1))")  # doctest: +SKIP
    Normal(mu: 0.0, sigma: HalfNormal(sigma: 1.0))
    """
    import bambi as bmb

    if not isinstance(text, str):
        raise PoolwiseError(f"a prior must be a string such as 'Normal(mu=0, sigma=1)', not a {type(text).__name__}")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise PoolwiseError(f"cannot read prior {text!r}; write it as Normal(mu=0, sigma=1)") from None
    return _to_prior(node, text, bmb)


def _to_prior(node: ast.expr, text: str, bmb):
    import pymc as pm

    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise PoolwiseError(f"cannot read prior {text!r}; write it as Normal(mu=0, sigma=1)")
    name = node.func.id
    dist = getattr(pm, name, None)
    if not (isinstance(dist, type) and issubclass(dist, pm.Distribution)):
        raise PoolwiseError(
            f"unknown prior distribution {name!r} in {text!r}; use a PyMC distribution such as Normal, HalfNormal, StudentT, Uniform, Flat"
        )
    if node.args:
        raise PoolwiseError(f"prior {text!r} has unnamed arguments; name them, e.g. Normal(mu=0, sigma=1)")
    kwargs = {}
    for keyword in node.keywords:
        value = keyword.value
        if keyword.arg is None:  # Normal(**params)
            raise PoolwiseError(f"prior {text!r} has unnamed arguments; name them, e.g. Normal(mu=0, sigma=1)")
        if isinstance(value, ast.Call):
            kwargs[keyword.arg] = _to_prior(value, text, bmb)
        else:
            try:
                literal = ast.literal_eval(value)
            except (ValueError, TypeError):  # TypeError: an unhashable key such as {[]: 1}
                raise PoolwiseError(f"prior {text!r}: {keyword.arg} must be a number or a distribution") from None
            # A list gives one value per column of a term (a factor's levels).
            if isinstance(literal, list):
                if not literal or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in literal):
                    raise PoolwiseError(f"prior {text!r}: a list for {keyword.arg} must hold numbers, one per column")
                literal = np.asarray(literal, dtype=float)
            kwargs[keyword.arg] = literal
    return bmb.Prior(name, **kwargs)


def check_terms(priors: Mapping[str, str], known: set[str], model: str) -> None:
    """Check that every prior names a term of the model.

    Parameters
    ----------
    priors : mapping of str to str
        Term -> distribution string.
    known : set of str
        The model's terms.
    model : str
        The model's name, for the message.

    Raises
    ------
    PoolwiseError
        A prior names an unknown term; the message lists the model's terms.

    Examples
    --------
    >>> check_terms({"x": "Normal(mu=0, sigma=1)"}, {"Intercept", "x"}, "complete")
    """
    for term in priors:
        if term not in known:
            raise PoolwiseError(
                f"unknown prior term {term!r} for the {model} model; its terms are: {', '.join(sorted(known))}"
            )
