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


# ---- names ------------------------------------------------------------------------------------


def group_term(term: str, group: str) -> str:
    """Bambi's name of a group-specific term: ``1|g`` for the intercept, ``x|g`` for a slope."""
    return f"{'1' if term == INTERCEPT else term}|{group}"


def group_sd(term: str, group: str) -> str:
    """Bambi's name of a group-specific term's standard deviation (``1|g_sigma``)."""
    return sd_of(group_term(term, group))


def sd_of(variable: str) -> str:
    """The standard deviation's name of a group-specific variable (``1|g`` -> ``1|g_sigma``)."""
    return f"{variable}_sigma"


def group_dim(group: str) -> str:
    """The dimension of a group-specific term's per-group values (``g__factor_dim``)."""
    return f"{group}__factor_dim"


def unpooled_intercept(group: str) -> str:
    """No pooling's per-group intercepts, as the template writes them (``C(g)``)."""
    return f"C({group})"


def unpooled_slope(group: str, term: str) -> str:
    """No pooling's per-group slopes of ``term`` (``C(g):x``)."""
    return f"{unpooled_intercept(group)}:{term}"


def level_dim(term: str, *, grouped: bool = False) -> str:
    """The dimension of a categorical term's levels: ``<term>_dim`` for a common term,
    ``<term>__expr_dim`` for the term varying by group (and its sd)."""
    return f"{term}__expr_dim" if grouped else f"{term}_dim"


def is_group_sd(name: str) -> bool:
    """Whether a posterior variable (or one level of it, ``x|g_sigma[B]``) is a group-level sd."""
    return "|" in name and name.split("[", 1)[0].endswith("_sigma")


def is_group_term(name: str) -> bool:
    """Whether a posterior variable holds group-specific deviations."""
    return "|" in name and not name.endswith("_sigma") and not is_group_cor(name)


def sd_term(name: str) -> str:
    """``1|g_sigma`` -> ``Intercept``; ``x|g_sigma`` -> ``x``; ``x|g_sigma[B]`` -> ``x[B]``."""
    term = name.split("|", 1)[0]
    level = name[name.index("[") :] if "[" in name else ""
    return INTERCEPT if term == "1" else term + level


def sd_factor(name: str) -> str:
    """``1|g_sigma`` -> ``g``: the grouping factor of a group-level sd."""
    return name.split("|", 1)[1].removesuffix("_sigma").split("[", 1)[0]


# ---- a built model ------------------------------------------------------------------------------


def new_model(formula: str, data: pd.DataFrame, family: str, namespace: dict):
    """A ``bambi.Model`` with uncentred predictors: the intercept is the linear predictor at
    x = 0, which is what the chapter's priors and the per-group alpha_j mean."""
    import bambi as bmb

    return bmb.Model(formula, data, family=family, center_predictors=False, extra_namespace=namespace)


def _component(model):
    return model.components[model.family.likelihood.parent]


def model_terms(model) -> list[str]:
    """The model's coefficient terms (Bambi's names), without offsets."""
    component = _component(model)
    return [name for name in component.terms if name not in component.offset_terms]


def aux_parameters(model) -> list[str]:
    """The family's own parameters besides the mean (gaussian ``sigma``, negative binomial ``alpha``)."""
    return list(model.family.likelihood.params[1:])


def response_mean(model) -> str:
    """The name of the per-observation mean Bambi adds to the posterior (``p`` or ``mu``)."""
    return model.family.likelihood.parent


def set_priors(model, priors: dict) -> None:
    """Set ``bambi.Prior`` objects by term name, then build the PyMC model."""
    model.set_priors(priors)
    model.build()


def cor_name(first: str, second: str, group: str) -> str:
    """The posterior variable of the correlation of two terms varying over ``group``."""
    return f"cor({first},{second})|{group}"


def is_group_cor(name: str) -> bool:
    return name.startswith("cor(") and "|" in name


def cor_terms(name: str) -> tuple[str, str, str]:
    """``cor(Intercept,x)|g`` -> ("Intercept", "x", "g")."""
    pair, group = name[4:].split(")|", 1)
    first, second = pair.split(",", 1)
    return first, second, group


def correlate(model, factor: str, terms: tuple[str, ...], eta: float = 1.0) -> bool:
    """Make the group terms of ``factor`` a correlated set, in place: lme4's and brms's ``(1 + x|g)``.

    Bambi draws each group term independently, non-centred (``u = sigma * offset`` with
    ``offset ~ N(0, 1)``). Here the same standard normal offsets are mixed by the Cholesky factor
    ``L`` of a correlation matrix ``R = L L' ~ LKJCorr(eta)`` (brms's ``lkj(1)`` by default): per
    group ``u = sigma * (L @ z)``, still non-centred, with the same variable names, so every stage
    above reads it unchanged. A categorical term contributes one column per level
    (``urban[Y]``). Each pairwise correlation is a scalar Deterministic (``cor(Intercept,x)|g``).
    Returns False (nothing changed) when there is only one column.
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


def center(model, factor: str, terms: tuple[str, ...], centres: dict[str, str | None]) -> list[str]:
    """Centre the group terms of ``factor`` hierarchically, in place: each group's coefficient is
    drawn around its population value (``a_g ~ Normal(Intercept, sigma)``) instead of Bambi's
    non-centred deviation ``u_g = sigma * offset``. Bambi's ``offset`` becomes ``(a_g - centre) /
    sigma``, so ``1|g`` and ``1|g_sigma`` keep their names and meaning. With data-rich groups this
    removes both the funnel and the ridge between the intercept and the mean of the deviations.
    ``centres`` maps each term to the common variable it varies around (None: 0). Terms spanning
    several columns are left as they are. Returns the terms centred.
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
        with graph:
            coefficient = pm.Normal(f"{name}_centered", mu=centre, sigma=sigma, dims=dims)
        interventions[f"{name}_offset"] = (coefficient - centre) / sigma
        done.append(term)
    if interventions:
        model.backend.model = pm.do(graph, interventions)
    return done


def parameterization(model, factors) -> dict[str, dict[str, str]]:
    """How each factor's group terms are parameterized in the built model: "centered" where
    ``center`` drew them around their population value, else Bambi's "noncentered"."""
    graph = model.backend.model
    return {
        factor.name: {
            term: "centered" if f"{group_term(term, factor.name)}_centered" in graph.named_vars else "noncentered"
            for term in factor.names
        }
        for factor in factors
    }


def correlation_matrix(posterior: xr.Dataset, terms: tuple[str, ...], group: str) -> np.ndarray | None:
    """Per-draw correlation matrices (chain, draw, k, k) of the terms varying over ``group``, or
    None when they are independent."""
    if len(terms) < 2 or cor_name(terms[0], terms[1], group) not in posterior:
        return None
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    matrix = np.broadcast_to(np.eye(len(terms)), (*shape, len(terms), len(terms))).copy()
    for i in range(len(terms)):
        for j in range(i + 1, len(terms)):
            values = posterior[cor_name(terms[i], terms[j], group)].transpose("chain", "draw").to_numpy()
            matrix[..., i, j] = matrix[..., j, i] = values
    return matrix


def term_prior(model, term: str):
    """The ``bambi.Prior`` of a term (a group-specific term's ``sigma`` is its group-sd hyperprior)."""
    return _component(model).terms[term].prior


def log_likelihood(model, posterior: xr.Dataset, data: pd.DataFrame) -> np.ndarray:
    """The family's log density of each row of ``data`` (chain, draw, row) under ``posterior``."""
    tree = xr.DataTree.from_dict({"posterior": posterior})
    model.compute_log_likelihood(tree, data=data, inplace=True)
    values = tree["log_likelihood"].to_dataset()
    return next(iter(values.data_vars.values())).transpose("chain", "draw", ...).to_numpy()


def predict_outcomes(model, posterior: xr.Dataset, seed: int) -> np.ndarray:
    """Posterior predictive outcomes of the fitted rows, (chain * draw, row)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        predicted = model.predict(
            xr.DataTree.from_dict({"posterior": posterior}), kind="response", inplace=False, random_seed=seed
        )
    values = next(iter(predicted["posterior_predictive"].data_vars.values()))
    return np.asarray(values).reshape(posterior.sizes["chain"] * posterior.sizes["draw"], -1)


def has_comma_dimension(model) -> bool:
    """Whether a dimension name holds a comma (``C(x, Sum)_dim``), which nutpie 0.16 cannot name."""
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
    log_likelihood: bool,
    target_accept: float | None = None,
):
    """Run NUTS with ``backend`` through Bambi and return the DataTree, draws as NumPy arrays.

    PyMC's own convergence checks are off: ``fitting.check_sampling`` does them once, with advice.
    NumPyro computes the pointwise log-likelihood inside its compiled JAX program.
    ``target_accept`` None leaves each sampler's own default.
    """
    options = {"idata_kwargs": {"log_likelihood": log_likelihood}} if backend == "numpyro" else {}
    if target_accept is not None:
        options["target_accept"] = target_accept
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*os.fork.*")
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
        if log_likelihood:
            if "log_likelihood" not in idata:
                model.compute_log_likelihood(idata)
            # Bambi leaves the in-sample mean (draws x observations) in the posterior; it is as
            # large as the log-likelihood, and every figure recomputes it from the coefficients.
            idata["posterior"] = idata["posterior"].to_dataset().drop_vars(response_mean(model), errors="ignore")
    return idata


def _to_numpy(idata) -> None:
    """Replace JAX arrays (NumPyro's draws) with NumPy ones, in place.

    xarray would otherwise compute every mean and quantile in JAX, op by op: slower, and in a
    different summation order than the same draws loaded back from disk.
    """
    for group in idata.children:
        dataset = idata[group].to_dataset()
        idata[group] = dataset.copy(data={name: np.array(var.values) for name, var in dataset.data_vars.items()})


# ---- refits: one compiled sampler, observations reweighted ------------------------------------

WEIGHT = "poolwise_weight"


def reweightable(model) -> None:
    """Give a built model a runtime weight per observation (``pm.Data`` named ``WEIGHT``, all ones).

    Bambi bakes the data into the PyMC graph, so a refit on fewer rows would otherwise be a new
    program to compile. Here the likelihood stays and a potential adds ``(w - 1) * log_lik``:
    the target is ``sum(w * log_lik)``, and a weight of 0 removes an observation exactly (the
    masked posterior is the posterior of the model refitted without it). A refit then only
    swaps the weights. Observed log densities are finite, so ``log_lik + (-log_lik)`` is 0.
    """
    import pymc as pm
    import pytensor.tensor as pt

    graph = model.backend.model
    (observed,) = graph.observed_RVs
    rows = np.shape(graph.rvs_to_values[observed].data)[0]
    with graph:
        weight = pm.Data(WEIGHT, np.ones(rows))
        log_lik = graph.logp(vars=[observed], sum=False)[0]
        pm.Potential("poolwise_reweighted", pt.sum((weight - 1) * log_lik))


def compile_reweightable(model):
    """Compile a ``reweightable`` model once for nutpie (numba), or None where nutpie cannot name
    its dimensions (``has_comma_dimension``) and PyMC's own sampler takes the refits.

    The per-observation mean Bambi adds as a deterministic is left out of the draws: a refit is
    scored on a few held-out rows, and for large data that mean is the largest thing stored."""
    if has_comma_dimension(model):
        return None
    import nutpie

    graph = model.backend.model
    keep = [var.name for var in graph.free_RVs + graph.deterministics if var.name != response_mean(model)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nutpie.compile_pymc_model(graph, backend="numba", var_names=keep)


def sample_reweighted(
    model, compiled, weights: np.ndarray, *, draws: int, tune: int, chains: int, seed: int, target_accept: float | None
) -> tuple[xr.Dataset, int]:
    """Sample a ``reweightable`` model with the given observation weights; return the posterior
    (NumPy draws) and the number of divergent transitions. ``compiled`` from
    ``compile_reweightable`` (None: PyMC's sampler, its compiled functions cached on disk)."""
    options = {} if target_accept is None else {"target_accept": target_accept}
    cores = min(chains, os.cpu_count() or 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if compiled is not None:
            import nutpie

            tree = nutpie.sample(
                compiled.with_data(**{WEIGHT: weights}),
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                seed=seed,
                progress_bar=False,
                save_warmup=False,
                **options,
            )
        else:
            import pymc as pm

            graph = model.backend.model
            with graph:
                pm.set_data({WEIGHT: weights})
                tree = pm.sample(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    cores=cores,
                    random_seed=seed,
                    progressbar=False,
                    compute_convergence_checks=False,
                    var_names=[
                        var.name for var in graph.free_RVs + graph.deterministics if var.name != response_mean(model)
                    ],
                    **options,
                )
    posterior = tree["posterior"].to_dataset()
    posterior = posterior.copy(data={name: np.array(var.values) for name, var in posterior.data_vars.items()})
    return posterior, int(np.asarray(tree["sample_stats"]["diverging"]).sum())


def moment_match(fit_idata, loo, model, threshold: float):
    """ArviZ's moment matching of the LOO terms with Pareto k above ``threshold`` (Paananen et
    al. 2021), its log densities compiled from the Bambi model (ArviZ restores the offsets and
    intercept Bambi leaves out of the draws; the Cholesky factors of ``correlate`` are restored
    here). None where ArviZ still cannot map the draws to the model's parameters: exact refits
    take those terms."""
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
