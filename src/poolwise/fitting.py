"""Fit one pooling model: check the inputs, build its Bambi model (through ``adapter``), sample,
check the sampling and wrap the result as a ``Fit``."""

import json
import signal
import threading
import warnings
from collections.abc import Collection, Mapping
from contextlib import contextmanager
from importlib.metadata import version

import numpy as np
import pandas as pd

from poolwise import adapter, geometry
from poolwise.data import cache_dir, data_hash, prepare_data
from poolwise.errors import PoolwiseError, PoolwiseWarning
from poolwise.families import family as find_family
from poolwise.formulas import NAMESPACE, parse_formula
from poolwise.identify import check_design, prior_only_groups
from poolwise.pooling import POOLINGS
from poolwise.pooling import pooling as find_pooling
from poolwise.priors import Priors, check_terms, parse_prior, prior_strings, resolve_priors
from poolwise.results import Fit
from poolwise.spec import FormulaSpec

BACKENDS = ("numpyro", "nutpie", "pymc")
DEFAULT_BACKEND = "numpyro"  # gives the answer soonest on this machine: see benchmarks/RESULTS.md
PACKAGES = ("poolwise", "bambi", "pymc", "arviz", "formulae", "numpyro", "jax", "nutpie")
CACHE_BYTES = 2**30  # compiled samplers kept on disk; a gym-sized model takes about 0.4 MB


def check_settings(draws: int, tune: int, chains: int, backend: str | None) -> str:
    """Validate sampler settings; return the backend to use."""
    for name, value, least in (("draws", draws, 1), ("chains", chains, 1), ("tune", tune, 0)):
        if not isinstance(value, (int, np.integer)) or value < least:
            raise PoolwiseError(f"{name} must be a whole number >= {least}, got {value!r}")
    backend = backend or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise PoolwiseError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    return backend


def use_compile_cache() -> None:
    """Keep JAX's compiled programs on disk so a second run skips XLA compilation.

    PyMC compiles NumPyro's sampler with the data, priors and draw counts built in, so the cache
    is keyed by all of them: the same model on the same data (in any process) loads instead of
    compiling. The folder is capped at CACHE_BYTES, least recently used entries going first. A
    cache folder already configured for JAX in this process is left alone.
    """
    import jax

    if jax.config.jax_compilation_cache_dir is not None:
        return
    try:
        folder = cache_dir() / "jax"
    except RuntimeError:  # no home folder to put a cache in: compile every time
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_compilation_cache_max_size", CACHE_BYTES)
    # JAX only caches programs that took over a second to compile by default; the small ones
    # (initial points, log-likelihood) add up to seconds per comparison too.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def build_model(
    spec: FormulaSpec,
    data: pd.DataFrame,
    pooling: str,
    priors: Mapping[str, str],
    *,
    required: Collection[str] = (),
    parameterization: Mapping[str, Mapping[str, str]] | None = None,
):
    """The ``bambi.Model`` of one pooling template with the resolved ``priors`` (term ->
    distribution string, from ``resolve_priors``) set.

    ``required`` are prior terms the user named for this model alone: naming a term the model
    lacks is an error. (``compare`` checks the user's terms against all three models instead, and
    priors for terms this model lacks are left out.) Returns the model, its formula and the prior
    strings applied.
    """
    formula = find_pooling(pooling).build(spec)
    model = adapter.new_model(formula, data, find_family(spec.family).bambi, NAMESPACE)
    # Correlated group terms (lme4's (1 + x|g)) get an LKJ prior on their correlation, named cor|g.
    correlated = {f"cor|{f.name}": f for f in spec.factors if f.correlated} if pooling == "partial" else {}
    known = set(adapter.model_terms(model)) | set(adapter.aux_parameters(model)) | set(correlated)
    check_terms(required, known, pooling)
    strings = {term: text for term, text in priors.items() if term in known}
    parsed = {term: parse_prior(text) for term, text in strings.items()}
    try:
        adapter.set_priors(model, {term: prior for term, prior in parsed.items() if term not in correlated})
    except (TypeError, ValueError) as err:
        raise PoolwiseError(
            f"cannot build the {pooling} model with priors {strings}: {str(err).splitlines()[0]}; check the prior's parameter names"
        ) from None
    for key, factor in correlated.items():
        prior = parsed.get(key)
        if prior is not None and (prior.name != "LKJCorr" or set(prior.args) != {"eta"}):
            raise PoolwiseError(f"the prior of {key} must be LKJCorr(eta=...), not {strings[key]}")
        eta = float(prior.args["eta"]) if prior is not None else 1.0
        if adapter.correlate(model, factor.name, factor.names, eta):
            strings[key] = f"LKJCorr(eta={eta:g})"
        else:
            strings.pop(key, None)
    if pooling == "partial":
        for factor in spec.factors:
            centred = [term for term, how in (parameterization or {}).get(factor.name, {}).items() if how == "centered"]
            centres = {
                term: term if term in spec.common or (term == "Intercept" and spec.intercept) else None
                for term in centred
            }
            adapter.center(model, factor.name, tuple(centred), centres)
    return model, formula, strings


def checked_inputs(
    formula: str,
    data: pd.DataFrame,
    *,
    family: str | None,
    draws: int,
    tune: int,
    chains: int,
    backend: str | None,
    allow_unidentified: bool,
    pooling: str | None = None,
) -> tuple[FormulaSpec, pd.DataFrame, list[str], str]:
    """The checks every entry point runs before building a model: formula and family, data,
    sampler settings and, unless ``allow_unidentified``, the design's identifiability (for
    ``pooling``, or all three).

    Returns the model specification as fitted, the data to fit, notes for the user and the backend.
    """
    spec = parse_formula(formula, data, family=family)
    prepared, spec, notes = prepare_data(spec, data)
    backend = check_settings(draws, tune, chains, backend)
    if not allow_unidentified:
        check_design(spec, prepared, POOLINGS[0].build(spec), pooling=pooling)
    return spec, prepared, notes, backend


def fit(
    formula: str,
    data: pd.DataFrame,
    *,
    pooling: str = "partial",
    family: str | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    backend: str | None = None,
    priors: Priors = None,
    allow_unidentified: bool = False,
    progress: bool = False,
    parameterization: str = "auto",
) -> Fit:
    """Fit one pooling model of ``formula`` to ``data`` with NUTS and store the pointwise log-likelihood.

    ``family`` is one of ``poolwise.families.NAMES``; without it the formula and data decide
    (see ``poolwise.formulas.resolve_family``). Default priors are resolved from the data and
    stored in the fit with any ``priors`` given (a preset name or term -> distribution strings).
    ``parameterization`` ("auto", "centered", "noncentered") sets partial pooling's group terms;
    "auto" chooses each from the data (``poolwise.geometry``).
    Raises ``PoolwiseError`` for bad input before any sampling; sampling trouble (divergences,
    r_hat, ESS) and prior-only coefficients become ``PoolwiseWarning``s.

    Examples
    --------
    >>> fit("Reaction ~ Days + (Days|Subject)", sleepstudy, family="gaussian")  # doctest: +SKIP
    """
    name = find_pooling(pooling).name
    spec, prepared, notes, backend = checked_inputs(
        formula,
        data,
        family=family,
        draws=draws,
        tune=tune,
        chains=chains,
        backend=backend,
        allow_unidentified=allow_unidentified,
        pooling=name,
    )
    if name != "complete" and spec.group is None:
        raise PoolwiseError(f"the {name} pooling model needs a group term such as (1|group) in the formula")
    built = build_model(
        spec,
        prepared,
        name,
        resolve_priors(priors, spec, prepared, name),
        required=list(prior_strings(priors, spec, name)),
        parameterization=geometry.choose(spec, prepared, parameterization),
    )
    return sample(
        spec,
        prepared,
        name,
        built,
        notes=notes,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        backend=backend,
        allow_unidentified=allow_unidentified,
        progress=progress,
    )


def sample(
    spec: FormulaSpec,
    data: pd.DataFrame,
    pooling: str,
    built: tuple,
    *,
    notes: list[str],
    draws: int,
    tune: int,
    chains: int,
    seed: int | None,
    backend: str,
    allow_unidentified: bool,
    progress: bool,
    log_likelihood: bool = True,
) -> Fit:
    """Run NUTS on a model from ``build_model`` (inputs already checked) and wrap the result.

    ``log_likelihood=False`` skips the in-sample pointwise log-likelihood (LOO needs it; a
    cross-validation refit, scored on held-out rows, does not).
    """
    model, formula, strings = built
    if pooling == "none" and spec.group is not None:
        _warn_prior_only(spec, data)
    seed = int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)
    if backend == "nutpie" and adapter.has_comma_dimension(model):
        # nutpie 0.16 splits dimension names on commas, and Bambi names C(x, Sum)'s dimension
        # "C(x, Sum)_dim"; PyMC's own sampler handles it.
        backend = "pymc"
        notes = [*notes, "sampled with pymc: nutpie cannot handle the comma in a term such as C(x, Sum)"]
        warnings.warn(PoolwiseWarning(f"{find_pooling(pooling).label}: {notes[-1]}"), stacklevel=3)
    if backend == "numpyro":
        use_compile_cache()
    layout = adapter.parameterization(model, spec.factors) if pooling == "partial" else {}
    with _reraise_interrupt():
        idata = adapter.sample(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            backend=backend,
            progress=progress,
            log_likelihood=log_likelihood,
            target_accept=target_accept(model, spec, pooling),
        )
    settings = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "backend": backend,
        "allow_unidentified": allow_unidentified,
        "notes": list(notes),
        "parameterization": layout,
        "target_accept": target_accept(model, spec, pooling),
    }
    idata.attrs["poolwise"] = json.dumps(
        {
            "pooling": pooling,
            "formula": spec.formula,
            "spec": {
                "family": spec.family,
                "level": spec.level,
                "trials": spec.trials,
                "exposure": spec.exposure,
                "correlated": [f"cor|{f.name}" in strings for f in spec.factors],
            },
            "bambi_formula": formula,
            "priors": strings,
            "settings": settings,
            "data_hash": data_hash(data),
            "versions": versions(),
        }
    )
    result = Fit(pooling, formula, spec, strings, idata, data, settings, model)
    check_sampling(result)
    check_correlations(result)
    return result


def target_accept(model, spec: FormulaSpec, pooling: str) -> float | None:
    """NUTS's step-size target for a built model: ``geometry.TARGET_ACCEPT`` where partial pooling
    has non-centred group terms (the funnel of small hierarchies wants smaller steps), else None
    (the sampler's own default).

    Parameters
    ----------
    model : bambi.Model
        A model from ``build_model``.
    spec : FormulaSpec
        Its formula.
    pooling : str
        Its pooling model.

    Returns
    -------
    float or None

    Examples
    --------
    >>> target_accept(model, spec, "partial")  # doctest: +SKIP
    0.95
    """
    layout = adapter.parameterization(model, spec.factors) if pooling == "partial" else {}
    return geometry.TARGET_ACCEPT if any("noncentered" in terms.values() for terms in layout.values()) else None


def check_correlations(result: Fit) -> None:
    """Warn when the data barely inform a correlation of group terms: its posterior sd is over
    0.8 of its LKJ prior's (the marginal of one correlation under LKJCorr(eta) in n dimensions is
    a Beta(eta - 1 + n/2, eta - 1 + n/2) stretched to (-1, 1), with sd 1 / sqrt(2 (eta - 1 + n/2) + 1))."""
    posterior = result.posterior
    for factor in result.spec.factors:
        names = [
            name for name in posterior.data_vars if adapter.is_group_cor(name) and name.endswith(f"|{factor.name}")
        ]
        if not names:
            continue
        eta = float(parse_prior(result.priors.get(f"cor|{factor.name}", "LKJCorr(eta=1)")).args["eta"])
        prior_sd = 1 / np.sqrt(2 * (eta - 1 + len(factor.names) / 2) + 1)
        for name in names:
            sd = float(posterior[name].std())
            if sd > 0.8 * prior_sd:
                first, second, group = adapter.cor_terms(name)
                levels = result.data[group].nunique()
                warnings.warn(
                    PoolwiseWarning(
                        f"{find_pooling(result.pooling).label}: the data barely inform cor({first},{second}) across "
                        f"{levels} {group}s (posterior sd {sd:.2f} against {prior_sd:.2f} under its prior), so its estimate is "
                        f"mostly the prior; write (...||{group}) for independent terms, as lme4 users do when a fit is singular"
                    ),
                    stacklevel=3,
                )


@contextmanager
def _reraise_interrupt():
    """Make Ctrl-C during sampling stop the run.

    nutpie catches ``KeyboardInterrupt`` and returns the draws it has, so the interrupt would be
    lost and a truncated (or silently finished) fit saved; remember it and raise it afterwards.
    """
    # Off the main thread no handler can be set; an ignored SIGINT (a background job) stays ignored.
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    caught = []

    def handler(signum, frame):
        caught.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt("sampling was interrupted")


def versions() -> dict[str, str]:
    """Versions of the packages that decide a fit's numbers, saved with it."""
    return {name: version(name) for name in PACKAGES}


def _warn_prior_only(spec: FormulaSpec, data: pd.DataFrame) -> None:
    for term, found in prior_only_groups(spec, data).items():
        if found["prior_only"]:
            warnings.warn(
                PoolwiseWarning(
                    f"no pooling: {spec.group} {', '.join(found['prior_only'])} never had {term} != 0, so their "
                    f"{term} slopes are the prior, not data; partial pooling borrows them from the population instead"
                ),
                stacklevel=3,
            )
        if found["sum_only"]:
            warnings.warn(
                PoolwiseWarning(
                    f"no pooling: {spec.group} {', '.join(found['sum_only'])} only ever had one value of {term}, so the "
                    f"data identify only the sum of intercept and {term} slope there; the prior splits it"
                ),
                stacklevel=3,
            )


def check_sampling(result: Fit) -> None:
    """Turn divergences, r_hat > 1.01 and low ESS into warnings that say what to try."""
    import arviz as az

    stats = result.idata["sample_stats"]
    divergent = int(stats["diverging"].sum()) if "diverging" in stats else 0
    posterior = result.idata["posterior"].to_dataset()
    # r_hat is undefined (NaN) for a single chain; fmax/fmin skip NaN without a warning.
    worst_rhat = float(np.fmax.reduce(_all_values(az.rhat(posterior)), initial=1.0))
    min_ess = float(np.fmin.reduce(_all_values(az.ess(posterior)), initial=np.inf))
    draws = result.settings["draws"] * result.settings["chains"]
    label = find_pooling(result.pooling).label
    if divergent:
        warnings.warn(
            PoolwiseWarning(
                f"{label}: {divergent} divergent transition{'s' if divergent > 1 else ''}; raise tune, or use priors that keep group sds away from 0"
            ),
            stacklevel=3,
        )
    if worst_rhat > 1.01:
        warnings.warn(
            PoolwiseWarning(f"{label}: r_hat up to {worst_rhat:.3f} > 1.01, the chains disagree; run more tune/draws"),
            stacklevel=3,
        )
    if min_ess < min(400, 0.1 * draws):
        warnings.warn(
            PoolwiseWarning(f"{label}: bulk ESS as low as {min_ess:.0f}; run more draws before trusting the tails"),
            stacklevel=3,
        )


def _all_values(stats) -> np.ndarray:
    """Every value of every variable of a Dataset, flat (NaN when it has none).

    Dataset.to_array would broadcast variables with different group dimensions against each other
    (groups x groups values in a no-pooling model).
    """
    return np.concatenate([[np.nan], *(var.values.ravel() for var in stats.data_vars.values())])


def check_prior_terms(priors: Priors, built: dict) -> None:
    """A user prior must name a term of at least one of the three models."""
    if not isinstance(priors, dict):
        return
    terms = set().union(
        *(
            set(adapter.model_terms(model)) | set(adapter.aux_parameters(model)) | set(strings)
            for model, _, strings in built.values()
        )
    )
    for term in priors:
        if term != "preset" and term not in terms:
            raise PoolwiseError(f"unknown prior term {term!r}; the models' terms are: {', '.join(sorted(terms))}")
