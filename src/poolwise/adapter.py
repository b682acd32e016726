"""The one module that knows Bambi's and PyMC's internals: how Bambi names terms, variables and
dimensions, and every call into a built ``bambi.Model`` (predictions, log-likelihoods, prior
draws, sampling). Every other stage asks this module, so a Bambi upgrade that renames something
is mended here alone.

Bambi's names, for the record: a common term's variable is named as the formula writes it
(``x``, ``C(g)``, ``C(g):x``) with a dimension ``<term>_dim`` when it spans several columns; a
group-specific term is ``<expr>|<group>`` (``1|g`` for the intercept) with dimension
``<group>__factor_dim`` and its standard deviation ``<expr>|<group>_sigma``.
"""

import os
import warnings

import numpy as np
import pandas as pd
import xarray as xr

INTERCEPT = "Intercept"
OBS_DIM = "__obs__"  # the dimension of Bambi's per-observation variables (log-likelihood, mean)


# ---- names ------------------------------------------------------------------------------------


def group_term(term: str, group: str) -> str:
    """Bambi's name of a group-specific term: ``1|g`` for the intercept, ``x|g`` for a slope.

    Parameters
    ----------
    term : str
        The term that varies, ``"Intercept"`` or a common term's name.
    group : str
        The grouping factor.

    Returns
    -------
    str

    Examples
    --------
    >>> group_term("Intercept", "g")
    '1|g'
    >>> group_term("x", "g")
    'x|g'
    """
    return f"{'1' if term == INTERCEPT else term}|{group}"


def group_sd(term: str, group: str) -> str:
    """Bambi's name of a group-specific term's standard deviation (``1|g_sigma``).

    Parameters
    ----------
    term : str
        The term that varies, ``"Intercept"`` or a common term's name.
    group : str
        The grouping factor.

    Returns
    -------
    str

    Examples
    --------
    >>> group_sd("Intercept", "g")
    '1|g_sigma'
    >>> group_sd("x", "g")
    'x|g_sigma'
    """
    return sd_of(group_term(term, group))


def sd_of(variable: str) -> str:
    """The name of a group-specific variable's standard deviation (``1|g`` -> ``1|g_sigma``).

    Parameters
    ----------
    variable : str
        A group-specific variable, as ``group_term`` names it.

    Returns
    -------
    str

    Examples
    --------
    >>> sd_of("x|g")
    'x|g_sigma'
    """
    return f"{variable}_sigma"


def group_dim(group: str) -> str:
    """The dimension of a group-specific term's per-group values (``g__factor_dim``).

    Bambi names it after the factor alone, so every term varying over ``g`` shares it; a categorical
    term adds a dimension for its levels (``level_dim(term, grouped=True)``).

    Parameters
    ----------
    group : str
        The grouping factor.

    Returns
    -------
    str

    Examples
    --------
    >>> group_dim("g")
    'g__factor_dim'
    """
    return f"{group}__factor_dim"


def unpooled_intercept(group: str) -> str:
    """No pooling's per-group intercepts, as the template writes them (``C(g)``).

    The template fits ``0 + C(g)``: one intercept per group with no common intercept, so the variable
    holds every group's own value along ``level_dim("C(g)")``.

    Parameters
    ----------
    group : str
        The grouping factor.

    Returns
    -------
    str

    Examples
    --------
    >>> unpooled_intercept("g")
    'C(g)'
    """
    return f"C({group})"


def unpooled_slope(group: str, term: str) -> str:
    """No pooling's per-group slopes of ``term`` (``C(g):x``).

    Parameters
    ----------
    group : str
        The grouping factor.
    term : str
        The slope's term.

    Returns
    -------
    str

    Examples
    --------
    >>> unpooled_slope("g", "x")
    'C(g):x'
    """
    return f"{unpooled_intercept(group)}:{term}"


def level_dim(term: str, *, grouped: bool = False) -> str:
    """The dimension of a categorical term's levels.

    Bambi calls it ``<term>_dim`` for a common term and ``<term>__expr_dim`` for the term varying by
    group (on the group term and its sd).

    Parameters
    ----------
    term : str
        The categorical term, e.g. ``C(g)`` or a string column.
    grouped : bool, default False
        Whether the term is the expression of a group-specific term.

    Returns
    -------
    str

    Examples
    --------
    >>> level_dim("C(g)")
    'C(g)_dim'
    >>> level_dim("arm", grouped=True)
    'arm__expr_dim'
    """
    return f"{term}__expr_dim" if grouped else f"{term}_dim"


def is_group_sd(name: str) -> bool:
    """Whether a posterior variable (or one level of it, ``x|g_sigma[B]``) is a group-level sd.

    Parameters
    ----------
    name : str
        A posterior variable, optionally with a level in brackets as summary tables label rows.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_group_sd("x|g_sigma[B]")
    True
    >>> [is_group_sd(name) for name in ("1|g", "sigma")]
    [False, False]
    """
    return "|" in name and name.split("[", 1)[0].endswith("_sigma")


def is_group_term(name: str) -> bool:
    """Whether a posterior variable holds group-specific deviations (``1|g``, ``x|g``).

    Group sds and the correlations ``correlate`` adds are not. Pass the variable's name without a
    level in brackets: ``x|g_sigma[B]`` would count as a deviation.

    Parameters
    ----------
    name : str
        A posterior variable.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_group_term("1|g")
    True
    >>> [is_group_term(name) for name in ("1|g_sigma", "cor(Intercept,x)|g", "x")]
    [False, False, False]
    """
    return "|" in name and not name.endswith("_sigma") and not is_group_cor(name)


def sd_term(name: str) -> str:
    """The term whose group-level sd ``name`` is, with its level if it has one.

    Parameters
    ----------
    name : str
        A group-level sd, optionally with a level (``x|g_sigma[B]``).

    Returns
    -------
    str
        ``"Intercept"`` for ``1|g_sigma``, else the term (and level, ``x[B]``).

    Examples
    --------
    >>> sd_term("1|g_sigma")
    'Intercept'
    >>> sd_term("x|g_sigma[B]")
    'x[B]'
    """
    term = name.split("|", 1)[0]
    level = name[name.index("[") :] if "[" in name else ""
    return INTERCEPT if term == "1" else term + level


def sd_factor(name: str) -> str:
    """The grouping factor of a group-level sd (``1|g_sigma`` -> ``g``).

    Parameters
    ----------
    name : str
        A group-level sd, or one level of it (``x|g_sigma``, ``x|g_sigma[B]``).

    Returns
    -------
    str

    Examples
    --------
    >>> sd_factor("x|g_sigma")
    'g'
    >>> sd_factor("x|g_sigma[B]")
    'g'
    """
    return name.split("|", 1)[1].split("[", 1)[0].removesuffix("_sigma")


# ---- a built model ------------------------------------------------------------------------------


def new_model(formula: str, data: pd.DataFrame, family: str, namespace: dict, link: str | None = None):
    """A ``bambi.Model`` with uncentred predictors.

    Bambi centres common predictors by default, which makes its ``Intercept`` the linear predictor at
    the predictors' means. Here the intercept is the linear predictor at x = 0, which is what the
    chapter's priors and the per-group alpha_j mean. The model is not built yet: ``set_priors``
    builds it.

    Parameters
    ----------
    formula : str
        A Bambi formula (a pooling template's).
    data : pandas.DataFrame
        The data as fitted.
    family : str
        Bambi's family name (``Family.bambi``).
    namespace : dict
        The functions the formula may call (``formulas.NAMESPACE``).
    link : str, optional
        The mean's link (``Family.link``), where it differs from Bambi's default (gamma: log,
        as brms, not inverse).

    Returns
    -------
    bambi.Model

    Examples
    --------
    >>> model = new_model("y ~ x + (1|g)", data, "gaussian", NAMESPACE)  # doctest: +SKIP
    """
    import bambi as bmb

    if family == "cumulative":
        # Bambi's ordinal families read the categories and their order from an ordered categorical;
        # poolwise keeps ratings as whole numbers everywhere else.
        outcome = formula.split("~", 1)[0].strip()
        data = data.assign(**{outcome: pd.Categorical(data[outcome], ordered=True)})
    model = bmb.Model(formula, data, family=family, link=link, center_predictors=False, extra_namespace=namespace)
    if family == "hurdle_negativebinomial":
        model.family.likelihood.dist = _HurdleNegativeBinomial
    return model


class _HurdleNegativeBinomial:
    """PyMC's hurdle negative binomial with P(count > 0) in closed form, 1 - (alpha / (alpha +
    mu)) ** alpha: PyMC's own takes it from the negative binomial's CDF, whose gradient in alpha
    JAX cannot take (``betainc``). Called as Bambi calls a likelihood: ``(name, **params)`` in the
    model, ``.dist(**params)`` for predictions and log-likelihoods."""

    def __new__(cls, name, mu, alpha, psi, **kwargs):
        import pymc as pm

        return pm.CustomDist(name, mu, alpha, psi, logp=cls.logp, random=cls.random, dtype="int64", **kwargs)

    @classmethod
    def dist(cls, mu, alpha, psi, **kwargs):
        import pymc as pm

        return pm.CustomDist.dist(mu, alpha, psi, logp=cls.logp, random=cls.random, dtype="int64", **kwargs)

    @staticmethod
    def logp(value, mu, alpha, psi):
        import pymc as pm
        import pytensor.tensor as pt

        count = pm.logp(pm.NegativeBinomial.dist(mu=mu, alpha=alpha), value)
        zero = -alpha * pt.log1p(mu / alpha)  # log P(0) of the count part, exact as mu -> 0
        return pt.switch(pt.eq(value, 0), pt.log1p(-psi), pt.log(psi) + count - pt.log1mexp(zero))

    @staticmethod
    def random(mu, alpha, psi, rng=None, size=None):
        from poolwise.families import positive_negative_binomial

        shape = size or np.broadcast_shapes(np.shape(mu), np.shape(alpha), np.shape(psi))
        mu, alpha, psi = (np.broadcast_to(value, shape) for value in (mu, alpha, psi))
        return np.where(rng.random(shape) < psi, positive_negative_binomial(rng, mu, alpha), 0)


def _component(model):
    return model.components[model.family.likelihood.parent]


def model_terms(model) -> list[str]:
    """The model's coefficient terms (Bambi's names), without offsets.

    Parameters
    ----------
    model : bambi.Model
        A model from ``new_model``.

    Returns
    -------
    list of str
        Common terms, then group-specific ones, in the formula's order.

    Examples
    --------
    >>> model_terms(new_model("y ~ x + (1 + x|g)", data, "gaussian", NAMESPACE))  # doctest: +SKIP
    ['Intercept', 'x', '1|g', 'x|g']
    """
    component = _component(model)
    return [name for name in component.terms if name not in component.offset_terms]


def aux_parameters(model) -> list[str]:
    """The family's own parameters besides the mean (gaussian ``sigma``, negative binomial ``alpha``).

    They take priors by name, as terms do.

    Parameters
    ----------
    model : bambi.Model
        A model from ``new_model``.

    Returns
    -------
    list of str
        Empty for the binomial and Poisson families.

    Examples
    --------
    >>> aux_parameters(new_model("y ~ x", data, "gaussian", NAMESPACE))  # doctest: +SKIP
    ['sigma']
    """
    return list(model.family.likelihood.params[1:])


def response_mean(model) -> str:
    """The name of the per-observation mean Bambi adds to the posterior (``p`` or ``mu``).

    Parameters
    ----------
    model : bambi.Model
        A model from ``new_model``.

    Returns
    -------
    str
        ``p`` for the binomial and bernoulli families, ``mu`` for the others.

    Examples
    --------
    >>> response_mean(new_model("y ~ x", data, "gaussian", NAMESPACE))  # doctest: +SKIP
    'mu'
    """
    return model.family.likelihood.parent


def set_priors(model, priors: dict) -> None:
    """Set ``bambi.Prior`` objects by term name, then build the PyMC model.

    Building makes ``model.backend.model``, the PyMC graph that ``correlate`` and ``center``
    then edit. Bambi raises ``TypeError`` or ``ValueError`` for a prior it cannot
    use (``fitting.build_model`` turns those into a ``PoolwiseError``).

    Parameters
    ----------
    model : bambi.Model
        A model from ``new_model``, not yet built.
    priors : dict of str to bambi.Prior
        Term or family parameter (``sigma``) -> prior; terms left out keep Bambi's defaults.

    Examples
    --------
    >>> set_priors(model, {"x": bmb.Prior("Normal", mu=0, sigma=1)})  # doctest: +SKIP
    """
    if model.family.name == "cumulative" and "threshold" in priors:
        import pymc as pm

        # Bambi's own threshold prior carries the ordered transform (and ordered means); a prior
        # set here gets the transform, and ``ordered_start`` gives it an ordered start.
        priors["threshold"].update(transform=pm.distributions.transforms.ordered)
    model.set_priors(priors)
    model.build()


def ordered_start(model) -> None:
    """Start an ordinal model's thresholds at ordered values, -2 to 2.

    With a prior centred at one value the default start has equal thresholds, where the ordered
    transform is -inf. Set on the finished graph: PyMC's ``do`` (``correlate``, ``center``)
    refuses models with non-default initial values.

    Parameters
    ----------
    model : bambi.Model
        A built model, its graph edited as it will be sampled.

    Examples
    --------
    >>> ordered_start(model)  # doctest: +SKIP
    """
    if model.family.name != "cumulative":
        return
    graph = model.backend.model
    graph.set_initval(graph["threshold"], np.linspace(-2, 2, len(model.response_term.levels) - 1))


def cor_name(first: str, second: str, group: str) -> str:
    """The posterior variable of the correlation of two terms varying over ``group``.

    Bambi has no correlated group terms; ``correlate`` adds each correlation under this name.

    Parameters
    ----------
    first, second : str
        The two terms (``"Intercept"``, a slope, or one level of a categorical term, ``x[B]``), in
        the order of the factor's terms.
    group : str
        The grouping factor.

    Returns
    -------
    str

    Examples
    --------
    >>> cor_name("Intercept", "x", "g")
    'cor(Intercept,x)|g'
    """
    return f"cor({first},{second})|{group}"


def is_group_cor(name: str) -> bool:
    """Whether a posterior variable is a correlation of group terms, as ``cor_name`` names them.

    The LKJ Cholesky factor ``cor|g`` that ``correlate`` samples is not one.

    Parameters
    ----------
    name : str
        A posterior variable.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_group_cor("cor(Intercept,x)|g")
    True
    >>> is_group_cor("cor|g")
    False
    """
    return name.startswith("cor(") and "|" in name


def cor_terms(name: str) -> tuple[str, str, str]:
    """The two terms and the grouping factor of a correlation: ``cor_name`` undone.

    Parameters
    ----------
    name : str
        A correlation's posterior variable.

    Returns
    -------
    tuple of str
        (first term, second term, grouping factor).

    Examples
    --------
    >>> cor_terms("cor(Intercept,x)|g")
    ('Intercept', 'x', 'g')
    """
    pair, group = name[4:].split(")|", 1)
    first, second = pair.split(",", 1)
    return first, second, group


def correlate(
    model, factor: str, terms: tuple[str, ...], eta: float = 1.0, centres: dict[str, str | None] | None = None
) -> bool:
    """Make the group terms of ``factor`` a correlated set, in place: lme4's and brms's ``(1 + x|g)``.

    Bambi draws each group term independently, non-centred (``u = sigma * offset`` with
    ``offset ~ N(0, 1)``). Here the same standard normal offsets are mixed by the Cholesky factor
    ``L`` of a correlation matrix ``R = L L' ~ LKJCorr(eta)`` (brms's ``lkj(1)`` by default): per
    group ``u = sigma * (L @ z)``, still non-centred, with the same variable names, so every stage
    above reads it unchanged. A categorical term contributes one column per level
    (``urban[Y]``). Each pairwise correlation is a scalar Deterministic (``cor(Intercept,x)|g``);
    the Cholesky factor itself is the free variable ``cor|g``.

    With ``centres`` the block is centred instead: each group's coefficients are drawn from a
    multivariate normal around their population values, ``b_g ~ MvNormal(centre, diag(sigma) R
    diag(sigma))`` (the variable ``centered_block(factor)``), and Bambi's offsets become the
    standardised deviations ``(b_g - centre) / sigma``, so ``1|g`` keeps its name and meaning. This
    is the geometry for data-rich groups; it needs every term to be one numeric column.

    Parameters
    ----------
    model : bambi.Model
        A built model (``set_priors``).
    factor : str
        The grouping factor.
    terms : tuple of str
        The terms varying over it (``GroupFactor.names``: ``"Intercept"`` first).
    eta : float, default 1.0
        The LKJ concentration: 1 is uniform over correlation matrices, larger values favour
        correlations near 0.
    centres : dict of str to str or None, optional
        Term -> the common variable it varies around (None, or a name the model lacks: 0), to centre
        the block; None keeps it non-centred. A block with a categorical term stays non-centred.

    Returns
    -------
    bool
        False (nothing changed) when the terms make only one column.

    Examples
    --------
    >>> correlate(model, "g", ("Intercept", "x"))  # doctest: +SKIP
    True
    """
    import pymc as pm
    import pytensor.tensor as pt

    graph = model.backend.model
    columns = []  # (label, variable, column index or None)
    for term in terms:
        name = group_term(term, factor)
        dims = graph.named_vars_to_dims.get(f"{name}_offset", ())
        levels = [str(level) for level in graph.coords[dims[1]]] if len(dims) > 1 else [None]
        columns += [
            (term if level is None else f"{term}[{level}]", name, None if level is None else k)
            for k, level in enumerate(levels)
        ]
    if len(columns) < 2:
        return False
    labels = [label for label, _, _ in columns]
    with graph:
        # PyMC 6's LKJCorr is the Cholesky factor L of the correlation matrix L @ L.T.
        cholesky = pm.LKJCorr(f"cor|{factor}", n=len(columns), eta=eta)
        correlation = cholesky @ cholesky.T
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                pm.Deterministic(cor_name(labels[i], labels[j], factor), correlation[i, j])
    # A categorical term is a column of a matrix even with one level: the block stays non-centred.
    if centres is not None and all(k is None for _, _, k in columns):
        model.backend.model = _centered_block(graph, factor, terms, cholesky, centres)
        return True
    offsets = [graph[f"{name}_offset"] if k is None else graph[f"{name}_offset"][:, k] for _, name, k in columns]
    mixed = pt.stack(offsets, axis=-1) @ cholesky.T
    interventions = {}
    for term in terms:
        name = group_term(term, factor)
        own = [index for index, (_, var, _) in enumerate(columns) if var == name]
        value = mixed[:, own[0]] if columns[own[0]][2] is None else mixed[:, own[0] : own[-1] + 1]
        interventions[name] = graph[f"{name}_sigma"] * value
    model.backend.model = pm.do(graph, interventions)
    return True


def centered_block(factor: str) -> str:
    """The variable of a centred correlated block's group coefficients (group, term).

    Parameters
    ----------
    factor : str
        The grouping factor.

    Returns
    -------
    str

    Examples
    --------
    >>> centered_block("g")
    'block|g_centered'
    """
    return f"block|{factor}_centered"


def _centered_block(graph, factor: str, terms: tuple[str, ...], cholesky, centres: dict[str, str | None]):
    import pymc as pm
    import pytensor.tensor as pt

    names = [group_term(term, factor) for term in terms]
    sigmas = pt.stack([graph[f"{name}_sigma"] for name in names])
    means = pt.stack(
        [graph[centres[term]] if centres.get(term) in graph.named_vars else pt.constant(0.0) for term in terms]
    )
    dim = f"{factor}__term_dim"
    graph.add_coord(dim, list(terms))
    with graph:
        block = pm.MvNormal(
            centered_block(factor),
            mu=means,
            chol=sigmas[:, None] * cholesky,
            dims=(graph.named_vars_to_dims[f"{names[0]}_offset"][0], dim),
        )
    interventions = {f"{name}_offset": (block[:, i] - means[i]) / sigmas[i] for i, name in enumerate(names)}
    return pm.do(graph, interventions)


def center(
    model, factor: str, terms: tuple[str, ...], centres: dict[str, str | None], within: dict | None = None
) -> list[str]:
    """Centre the group terms of ``factor`` hierarchically, in place.

    Each group's coefficient is drawn around its population value (``a_g ~ Normal(Intercept,
    sigma)``, a new variable ``<expr>|<group>_centered``) instead of Bambi's non-centred deviation
    ``u_g = sigma * offset``. Bambi's ``offset`` becomes ``(a_g - centre) / sigma``, so ``1|g`` and
    ``1|g_sigma`` keep their names and meaning. With data-rich groups this removes both the funnel
    and the ridge between the intercept and the mean of the deviations. Terms spanning several
    columns are left as they are.

    Parameters
    ----------
    model : bambi.Model
        A built model (``set_priors``).
    factor : str
        The grouping factor.
    terms : tuple of str
        The terms to centre (``"Intercept"`` or slopes varying over ``factor``).
    centres : dict of str to str or None
        Term -> the common variable it varies around (None, or a name the model lacks: 0).
    within : dict, optional
        The factors enclosing this one's groups and each group's level of them
        (``geometry.nested_in``): the intercept is then drawn around its centre plus every
        enclosing group's deviation ``1|parent``, the centring of nested hierarchies (left out
        where a group's level cannot be matched to the model's coordinates).

    Returns
    -------
    list of str
        The terms centred.

    Examples
    --------
    >>> center(model, "g", ("Intercept",), {"Intercept": "Intercept"})  # doctest: +SKIP
    ['Intercept']
    """
    import pymc as pm

    graph = model.backend.model
    done, interventions = [], {}
    for term in terms:
        name = group_term(term, factor)
        dims = graph.named_vars_to_dims.get(f"{name}_offset", ())
        if len(dims) != 1:
            continue
        sigma = graph[f"{name}_sigma"]
        centre = graph[centres[term]] if centres.get(term) in graph.named_vars else 0.0
        if term == "Intercept" and within:
            centre = centre + _enclosing_values(graph, factor, within)
        with graph:
            coefficient = pm.Normal(f"{name}_centered", mu=centre, sigma=sigma, dims=dims)
        interventions[f"{name}_offset"] = (coefficient - centre) / sigma
        done.append(term)
    if interventions:
        model.backend.model = pm.do(graph, interventions)
    return done


def _enclosing_values(graph, factor: str, within: dict):
    """The sum of each group's enclosing groups' deviations ``1|parent``, in the order of the
    factor's groups; 0 where the data's levels do not match the coordinates (formulae keeps an
    ordered categorical's unused levels, say)."""
    groups = [
        str(level) for level in graph.coords[graph.named_vars_to_dims[f"{group_term('Intercept', factor)}_offset"][0]]
    ]
    total = 0.0
    for parent, level_of in within.items():
        parents = graph.coords[graph.named_vars_to_dims[f"{group_term('Intercept', parent)}_offset"][0]]
        position = {str(level): k for k, level in enumerate(parents)}
        if not all(level_of.get(group) in position for group in groups):
            return 0.0
        total = total + graph[group_term("Intercept", parent)][np.array([position[level_of[g]] for g in groups])]
    return total


def parameterization(model, factors) -> dict[str, dict[str, str]]:
    """How each factor's group terms are parameterized in the built model.

    Parameters
    ----------
    model : bambi.Model
        A built model, after any ``center``.
    factors : iterable of GroupFactor
        The grouping factors (``FormulaSpec.factors``).

    Returns
    -------
    dict of str to dict of str to str
        Factor -> term -> ``"centered"`` where ``center`` drew it around its population value, else
        ``"noncentered"`` (Bambi's own).

    Examples
    --------
    >>> parameterization(model, spec.factors)  # doctest: +SKIP
    {'g': {'Intercept': 'centered', 'x': 'noncentered'}}
    """
    graph = model.backend.model
    return {
        factor.name: {
            term: "centered"
            if f"{group_term(term, factor.name)}_centered" in graph.named_vars
            or centered_block(factor.name) in graph.named_vars
            else "noncentered"
            for term in factor.names
        }
        for factor in factors
    }


def correlation_matrix(posterior: xr.Dataset, terms: tuple[str, ...], group: str) -> np.ndarray | None:
    """Per-draw correlation matrices of the terms varying over ``group``.

    Parameters
    ----------
    posterior : xarray.Dataset
        The draws, with the ``cor(...)|group`` variables ``correlate`` adds.
    terms : tuple of str
        The terms, in the order ``correlate`` got them (``GroupFactor.names``).
    group : str
        The grouping factor.

    Returns
    -------
    numpy.ndarray or None
        (chain, draw, k, k) with ones on the diagonal; None when the terms are independent, or
        when a categorical term's correlations are per level (``cor(Intercept,f[B])|g``), which
        this term-by-term matrix cannot hold: callers then draw the terms independently.

    Examples
    --------
    >>> correlation_matrix(fit.posterior, ("Intercept", "x"), "g")[..., 0, 1].mean()  # doctest: +SKIP
    """
    pairs = [(i, j) for i in range(len(terms)) for j in range(i + 1, len(terms))]
    if not pairs or any(cor_name(terms[i], terms[j], group) not in posterior for i, j in pairs):
        return None
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    matrix = np.broadcast_to(np.eye(len(terms)), (*shape, len(terms), len(terms))).copy()
    for i, j in pairs:
        values = posterior[cor_name(terms[i], terms[j], group)].transpose("chain", "draw").to_numpy()
        matrix[..., i, j] = matrix[..., j, i] = values
    return matrix


def term_prior(model, term: str):
    """The ``bambi.Prior`` of a term.

    A group-specific term's prior is ``Normal(0, sigma)`` with its group-sd hyperprior as ``sigma``.

    Parameters
    ----------
    model : bambi.Model
        A model with its priors set.
    term : str
        Bambi's name of the term (``x``, ``1|g``).

    Returns
    -------
    bambi.Prior

    Examples
    --------
    >>> term_prior(model, "1|g")  # doctest: +SKIP
    Normal(mu: 0.0, sigma: HalfNormal(sigma: 2.8362))
    """
    return _component(model).terms[term].prior


def log_likelihood(model, posterior: xr.Dataset, data: pd.DataFrame) -> np.ndarray:
    """The family's log density of each row of ``data`` under ``posterior``.

    Bambi's ``compute_log_likelihood`` on ``data``, which need not be the rows the draws were fitted
    to (a fold's held-out rows).

    Parameters
    ----------
    model : bambi.Model
        The model the draws come from.
    posterior : xarray.Dataset
        The draws, (chain, draw, ...).
    data : pandas.DataFrame
        The rows to score, with the model's columns.

    Returns
    -------
    numpy.ndarray
        (chain, draw, row).

    Examples
    --------
    >>> log_likelihood(model, posterior, data.iloc[rows])  # doctest: +SKIP
    """
    tree = xr.DataTree.from_dict({"posterior": posterior})
    model.compute_log_likelihood(tree, data=data, inplace=True)
    values = tree["log_likelihood"].to_dataset()
    return next(iter(values.data_vars.values())).transpose("chain", "draw", ...).to_numpy()


def predict_outcomes(model, posterior: xr.Dataset, seed: int) -> np.ndarray:
    """Posterior predictive outcomes of the fitted rows.

    Bambi's ``predict(kind="response")``: outcomes drawn from the likelihood, not its mean.

    Parameters
    ----------
    model : bambi.Model
        The model the draws come from.
    posterior : xarray.Dataset
        The draws, (chain, draw, ...) with both coordinates present.
    seed : int
        Seed of the outcome draws.

    Returns
    -------
    numpy.ndarray
        (chain * draw, row).

    Examples
    --------
    >>> predict_outcomes(fit.model, fit.posterior, seed=1).shape  # doctest: +SKIP
    (4000, 48)
    """
    return predict_means_and_outcomes(model, posterior, seed)[1]


def predict_means_and_outcomes(model, posterior: xr.Dataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean response of each fitted row and an outcome drawn for it, draw by draw.

    One Bambi ``predict(kind="response")`` call gives both: the mean (``p`` or ``mu``) as Bambi's
    likelihood takes it and the posterior predictive outcome.

    Parameters
    ----------
    model : bambi.Model
        The model the draws come from.
    posterior : xarray.Dataset
        The draws, (chain, draw, ...) with both coordinates present.
    seed : int
        Seed of the outcome draws.

    Returns
    -------
    tuple of numpy.ndarray
        The means and the outcomes, each (chain * draw, row).

    Examples
    --------
    >>> means, outcomes = predict_means_and_outcomes(fit.model, fit.posterior, seed=1)  # doctest: +SKIP
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        predicted = model.predict(
            xr.DataTree.from_dict({"posterior": posterior}), kind="response", inplace=False, random_seed=seed
        )
    draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    means = np.asarray(predicted["posterior"].to_dataset()[response_mean(model)].transpose("chain", "draw", ...))
    outcomes = np.asarray(next(iter(predicted["posterior_predictive"].data_vars.values())))
    if model.family.name == "cumulative":
        # Bambi gives P(each category) and the category's position: poolwise's ratings are values.
        values = np.asarray(model.response_term.levels, dtype=float)
        means, outcomes = means @ values, values[outcomes]
    return means.reshape(draws, -1), outcomes.reshape(draws, -1)


def common_mean(model, idata, data: pd.DataFrame) -> np.ndarray:
    """The mean response of new rows from the common terms (offset included), every group effect
    at 0: Bambi's ``predict(..., include_group_specific=False)``. For an ordinal family, the
    latent location (its linear predictor), Bambi's location there.

    Parameters
    ----------
    model : bambi.Model
        The model the draws come from.
    idata : xarray.DataTree
        Its fit.
    data : pandas.DataFrame
        The new rows, with every column the common terms read.

    Returns
    -------
    numpy.ndarray
        (chain, draw, row).

    Examples
    --------
    >>> common_mean(fit.model, fit.idata, new).shape  # doctest: +SKIP
    (4, 1000, 3)
    """
    posterior = xr.DataTree.from_dict({"posterior": idata["posterior"].to_dataset()})
    predicted = model.predict(posterior, data=data, kind="response_params", inplace=False, include_group_specific=False)
    values = predicted["posterior"].to_dataset()[response_mean(model)].transpose("chain", "draw", ...).to_numpy()
    if model.family.name == "cumulative":
        from scipy.special import logit, ndtri

        # Bambi gives P(each category); an ordinal's location is its linear predictor, recovered
        # from P(Y <= k) = F(threshold_k - eta) at the k nearest 1/2 (Bambi clips the tails).
        quantile = ndtri if model.family.link["p"].name == "probit" else logit
        below = np.cumsum(values, axis=-1)[..., :-1]
        k = np.argmin(np.abs(below - 0.5), axis=-1)[..., None]
        cuts = idata["posterior"]["threshold"].transpose("chain", "draw", ...).to_numpy()[:, :, None, :]
        cut = np.take_along_axis(np.broadcast_to(cuts, below.shape), k, axis=-1)
        return (cut - quantile(np.take_along_axis(below, k, axis=-1)))[..., 0]
    return values.copy()


def has_comma_dimension(model) -> bool:
    """Whether a dimension name holds a comma (``C(x, Sum)_dim``), which nutpie 0.16 cannot name.

    nutpie splits dimension names on commas; such a model is sampled with PyMC's own sampler instead.

    Parameters
    ----------
    model : bambi.Model
        A built model.

    Returns
    -------
    bool

    Examples
    --------
    >>> has_comma_dimension(model)  # doctest: +SKIP
    False
    """
    return any("," in name for name in model.backend.model.coords)


def sample(
    model,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    backend: str,
    progress: bool,
    target_accept: float | None = None,
):
    """Run NUTS with ``backend`` through Bambi and return the DataTree, draws as NumPy arrays.

    PyMC's own convergence checks are off: ``fitting.check_sampling`` does them once, with advice.
    NumPyro runs on the model's own JAX program (``poolwise.program``: its chains side by side, the
    program kept for refits); the other backends run through Bambi, which adds the pointwise
    log-likelihood afterwards. Their chains get one core each, up to the machine's CPUs.

    Parameters
    ----------
    model : bambi.Model
        A built model.
    draws, tune, chains, seed : int
        Sampler settings (``tune``: warm-up draws per chain, discarded).
    backend : str
        Bambi's ``inference_method``: ``"numpyro"``, ``"nutpie"`` or ``"pymc"``.
    progress : bool
        Show the sampler's progress bar.
    target_accept : float, optional
        NUTS's step-size target; None leaves each sampler's own default.

    Returns
    -------
    xarray.DataTree
        Groups posterior, sample_stats, observed_data and log_likelihood (the pointwise
        log-likelihood LOO needs); the per-observation mean Bambi leaves in the posterior
        (``response_mean``) is dropped.

    Examples
    --------
    >>> idata = sample(model, draws=1000, tune=1000, chains=4, seed=1, backend="nutpie",
    ...                progress=False)  # doctest: +SKIP
    """
    options = {}
    if target_accept is not None:
        options["target_accept"] = target_accept
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*os.fork.*")
        if backend == "numpyro":
            from poolwise import program

            idata = program.sample(model, draws=draws, tune=tune, chains=chains, seed=seed, target_accept=target_accept)
        else:
            idata = _fit(
                model, draws=draws, tune=tune, chains=chains, seed=seed, backend=backend, progress=progress, **options
            )
        # Bambi leaves the in-sample mean (draws x observations) in the posterior; it is as
        # large as the log-likelihood, and every figure recomputes it from the coefficients.
        idata["posterior"] = idata["posterior"].to_dataset().drop_vars(response_mean(model), errors="ignore")
    return idata


def _fit(model, *, draws: int, tune: int, chains: int, seed: int, backend: str, progress: bool, **options):
    """Bambi's own fit with nutpie or PyMC, draws as NumPy arrays and the log-likelihood added."""
    idata = model.fit(
        draws=draws,
        tune=tune,
        chains=chains,
        cores=min(chains, os.cpu_count() or 1),
        random_seed=seed,
        inference_method=backend,
        progressbar=progress,
        compute_convergence_checks=False,
        **options,
    )
    _to_numpy(idata)
    model.compute_log_likelihood(idata)
    return idata


def _to_numpy(idata) -> None:
    """Replace JAX arrays (NumPyro's draws) with NumPy ones, in place.

    xarray would otherwise compute every mean and quantile in JAX, op by op: slower, and in a
    different summation order than the same draws loaded back from disk.
    """
    for group in idata.children:
        dataset = idata[group].to_dataset()
        idata[group] = dataset.copy(data={name: np.array(var.values) for name, var in dataset.data_vars.items()})


def moment_match(fit_idata, loo, model, threshold: float):
    """ArviZ's moment matching of the LOO terms with Pareto k above ``threshold`` (Paananen et al. 2021).

    arviz-stats' ``loo_moment_match`` compiles its log densities from the Bambi model; it restores
    the offsets and intercept Bambi leaves out of the draws, and the Cholesky factors of
    ``correlate`` are restored here.

    Parameters
    ----------
    fit_idata : xarray.DataTree
        The fit's draws, with its pointwise log-likelihood.
    loo : ELPDData
        Its PSIS-LOO, pointwise.
    model : bambi.Model
        The fit's own model.
    threshold : float
        Pareto k above which a term is moment matched.

    Returns
    -------
    ELPDData or None
        The improved LOO; None where ArviZ still cannot map the draws to the model's parameters
        (exact refits then take those terms).

    Examples
    --------
    >>> moment_match(fit.idata, az.loo(fit.idata, pointwise=True), fit.model, 0.7)  # doctest: +SKIP
    """
    from arviz_stats import loo_moment_match

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return loo_moment_match(_with_cholesky(fit_idata, model), loo, model=model, k_threshold=threshold)
        except (KeyError, ValueError, NotImplementedError):
            return None


def _with_cholesky(idata, model):
    """The draws with each correlation's LKJ Cholesky factor, which Bambi does not keep (it keeps
    its own variables): the Cholesky factor of the correlation matrix the draws hold pairwise."""
    graph = model.backend.model
    posterior = idata["posterior"].to_dataset()
    missing = [rv.name for rv in graph.free_RVs if rv.name.startswith("cor|") and rv.name not in posterior]
    if not missing:
        return idata
    for name in missing:
        group = name.removeprefix("cor|")
        pairs = [cor_terms(var.name) for var in graph.deterministics if is_group_cor(var.name)]
        pairs = [(first, second) for first, second, of in pairs if of == group]
        labels = list(dict.fromkeys(label for pair in pairs for label in pair))  # the order correlate made them
        shape = (posterior.sizes["chain"], posterior.sizes["draw"])
        matrix = np.broadcast_to(np.eye(len(labels)), (*shape, len(labels), len(labels))).copy()
        for first, second in pairs:
            i, j = labels.index(first), labels.index(second)
            matrix[..., i, j] = matrix[..., j, i] = posterior[cor_name(first, second, group)].to_numpy()
        posterior[name] = (("chain", "draw", f"{name}_row", f"{name}_column"), np.linalg.cholesky(matrix))
    restored = idata.copy()
    restored["posterior"] = posterior
    return restored
