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

from poolwise import adapter, choices, geometry, seeds
from poolwise.data import cache_dir, data_hash, prepare_data
from poolwise.errors import PoolwiseError, PoolwiseWarning
from poolwise.families import family as find_family
from poolwise.formulas import NAMESPACE, parse_formula
from poolwise.identify import check_design, prior_only_groups
from poolwise.pooling import POOLINGS
from poolwise.pooling import pooling as find_pooling
from poolwise.priors import Priors, check_terms, parse_prior, prior_strings, resolve_priors
from poolwise.progress import task as sampler_task
from poolwise.results import Fit
from poolwise.spec import FormulaSpec

BACKENDS = choices.BACKENDS
DEFAULT_BACKEND = "numpyro"  # gives the answer soonest on this machine: see benchmarks/RESULTS.md
PACKAGES = ("poolwise", "bambi", "pymc", "arviz", "formulae", "numpyro", "jax", "nutpie")
RHAT_MAX = 1.01  # chains whose r_hat is above this disagree
ESS_MIN = 400  # bulk ESS below this (or below a tenth of all draws, when that is less) is low
DEFAULT_SAMPLER = (1000, 1000, 4)  # draws, tune, chains: the only settings rescue_step changes
RESCUE_ACCEPT = (0.95, 0.99)  # target acceptances a rescue raises a diverging fit's to, in turn
CACHE_BYTES = 2**30  # compiled samplers kept on disk; a gym-sized model takes about 0.4 MB


def check_settings(draws: int, tune: int, chains: int, backend: str | None) -> str:
    """Validate sampler settings before anything is built; return the backend to use.

    Parameters
    ----------
    draws, tune, chains : int
        Draws kept per chain (at least 1), warm-up draws per chain (at least 0) and chains (at
        least 1).
    backend : str or None
        One of ``BACKENDS``; None is ``DEFAULT_BACKEND``.

    Returns
    -------
    str
        The backend.

    Raises
    ------
    PoolwiseError
        A count is not a whole number or is below its minimum, or the backend is unknown.

    Examples
    --------
    >>> check_settings(1000, 1000, 4, None)
    'numpyro'
    """
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
    cache folder already configured for JAX in this process is left alone, and without a home
    folder nothing is cached.

    Examples
    --------
    >>> use_compile_cache()  # doctest: +SKIP
    """
    from poolwise.program import use_cores

    use_cores()  # before JAX's first computation, which the lines below do not start
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
    """The ``bambi.Model`` of one pooling template, its priors set and the PyMC model built.

    Priors for terms this model lacks are left out, so one set of priors can serve all three
    models. Under partial pooling, a factor whose terms are correlated (lme4's ``(1 + x|g)``) gets
    an LKJ prior on their correlation, named ``cor|g`` (``adapter.correlate``), and the terms
    ``parameterization`` marks "centered" are drawn around their population value
    (``adapter.center``), a nested factor's intercepts around their enclosing groups' values too
    (``geometry.nested_in``).

    Parameters
    ----------
    spec : FormulaSpec
        The formula as ``prepare_data`` returns it.
    data : pandas.DataFrame
        The prepared data.
    pooling : str
        The canonical pooling name: ``"complete"``, ``"none"`` or ``"partial"``.
    priors : mapping of str to str
        Term -> distribution string, resolved (``priors.resolve_priors``).
    required : collection of str, optional
        Prior terms the user named for this model alone: naming a term the model lacks is an error.
        (``compare`` checks the user's terms against all three models instead,
        ``check_prior_terms``.)
    parameterization : mapping, optional
        Factor -> term -> ``"centered"`` or ``"noncentered"`` (``geometry.choose``); None leaves
        Bambi's non-centred terms.

    Returns
    -------
    model : bambi.Model
        The built model.
    formula : str
        Its Bambi formula.
    strings : dict of str to str
        The priors applied, with the LKJ prior of each factor whose terms were correlated.

    Raises
    ------
    PoolwiseError
        A ``required`` term is not in the model, Bambi cannot use a prior (a wrong parameter name),
        or a correlation's prior is not ``LKJCorr(eta=...)``.

    Examples
    --------
    >>> priors = resolve_priors(None, spec, data, "partial")  # doctest: +SKIP
    >>> model, formula, strings = build_model(spec, data, "partial", priors)  # doctest: +SKIP
    >>> formula  # doctest: +SKIP
    'y ~ x + (1 + x|g)'
    """
    formula = find_pooling(pooling).build(spec)
    family = find_family(spec.family)
    model = adapter.new_model(formula, data, family.bambi, NAMESPACE, link=family.bambi_link or family.link)
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
    layout = parameterization or {}
    for key, factor in correlated.items():
        prior = parsed.get(key)
        if prior is not None and (prior.name != "LKJCorr" or set(prior.args) != {"eta"}):
            raise PoolwiseError(f"the prior of {key} must be LKJCorr(eta=...), not {strings[key]}")
        eta = float(prior.args["eta"]) if prior is not None else 1.0
        centred = set(layout.get(factor.name, {}).values()) == {"centered"}
        if adapter.correlate(model, factor.name, factor.names, eta, _centres(spec, factor.names) if centred else None):
            strings[key] = f"LKJCorr(eta={eta:g})"
        else:
            strings.pop(key, None)
    if pooling == "partial":
        nested = geometry.nested_in(spec, data)
        for factor in spec.factors:
            if f"cor|{factor.name}" in strings:
                continue  # a correlated block is centred as one, above
            centred = [term for term, how in layout.get(factor.name, {}).items() if how == "centered"]
            adapter.center(model, factor.name, tuple(centred), _centres(spec, centred), nested.get(factor.name))
    adapter.ordered_start(model)
    return model, formula, strings


def model_of(fit: Fit):
    """The Bambi model of a fit: its own, or rebuilt without sampling for a fit loaded from disk.

    Parameters
    ----------
    fit : Fit
        A fitted model.

    Returns
    -------
    bambi.Model
        Built, ready for ``predict``.

    Examples
    --------
    >>> model_of(pw.load_fit("partial.nc")).family.name  # doctest: +SKIP
    'binomial'
    """
    if fit.model is not None:
        return fit.model
    return build_model(
        fit.spec, fit.data, fit.pooling, fit.priors, parameterization=fit.settings.get("parameterization") or None
    )[0]


def _centres(spec: FormulaSpec, terms) -> dict[str, str | None]:
    """Term -> the common variable its group values vary around (None: they vary around 0)."""
    return {term: term if term in spec.common or (term == "Intercept" and spec.intercept) else None for term in terms}


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
    missing: str = "drop",
    link: str | None = None,
) -> tuple[FormulaSpec, pd.DataFrame, list[str], str]:
    """The checks every entry point runs before building a model.

    In order: formula and family, data, sampler settings and, unless ``allow_unidentified``, the
    design's identifiability (for ``pooling``, or all three), so bad input fails before anything is
    compiled or sampled.

    Parameters
    ----------
    formula : str
        The user's formula.
    data : pandas.DataFrame
        The user's data.
    family : str or None
        One of ``poolwise.families.NAMES``; None lets the formula and data decide.
    draws, tune, chains : int
        Sampler settings (``check_settings``).
    backend : str or None
        The sampler (``check_settings``).
    allow_unidentified : bool
        Skip the identifiability check.
    pooling : str, optional
        The one model to check the design for; None checks all three.
    missing : {"drop", "error"}, default "drop"
        Rows with a missing value in a column the formula reads: dropped with a warning naming
        how many per column (lme4's ``na.omit``, as brms does), or left for the checks to refuse.
    link : str, optional
        The link, where the family has several (bernoulli, binomial, beta_binomial: logit,
        probit, cloglog); default: the family's own (logit).

    Returns
    -------
    spec : FormulaSpec
        The model specification as fitted.
    data : pandas.DataFrame
        The data to fit (``prepare_data``).
    notes : list of str
        What the data stage changed, for the user.
    backend : str
        The backend to use.

    Raises
    ------
    PoolwiseError
        From any of the checks: the formula, family, data, settings or design.

    Examples
    --------
    >>> spec, prepared, notes, backend = checked_inputs(
    ...     formula, gym, family=None, draws=1000, tune=1000, chains=4, backend=None, allow_unidentified=False
    ... )  # doctest: +SKIP
    """
    data, dropped = drop_missing(formula, data, family=family, missing=missing)
    spec = parse_formula(formula, data, family=family, link=link)
    prepared, spec, notes = prepare_data(spec, data)
    notes = dropped + notes
    backend = check_settings(draws, tune, chains, backend)
    if not allow_unidentified:
        check_design(spec, prepared, POOLINGS[0].build(spec), pooling=pooling)
    return spec, prepared, notes, backend


MISSING = ("drop", "error")  # what fit and compare do with rows missing a value the formula reads


def drop_missing(
    formula: str, data: pd.DataFrame, *, family: str | None = None, missing: str = "drop"
) -> tuple[pd.DataFrame, list[str]]:
    """The rows of ``data`` with a value in every column ``formula`` reads, and what was dropped.

    Missing means NaN, None or empty text. Every column of a kept row stays.

    Parameters
    ----------
    formula : str
        The user's formula.
    data : pandas.DataFrame
        The user's data.
    family : str, optional
        As given to ``fit``.
    missing : {"drop", "error"}
        ``"error"`` drops nothing (the data checks then refuse the first missing value).

    Returns
    -------
    data : pandas.DataFrame
        The complete rows.
    notes : list of str
        One sentence when rows were dropped, also given as a warning.

    Raises
    ------
    PoolwiseError
        ``missing`` is not one of ``MISSING``.

    Examples
    --------
    >>> frame = pd.DataFrame({"y": [1.0, None, 3.0], "x": [1, 2, None], "g": ["a", "b", "a"]})
    >>> kept, notes = drop_missing("y ~ x + (1|g)", frame)  # doctest: +SKIP
    >>> len(kept), notes[0]  # doctest: +SKIP
    (1, 'dropped 2 of 3 rows with a missing value (x: 1, y: 1), as lme4 and brms do; ...')
    """
    if missing not in MISSING:
        raise PoolwiseError(f"unknown missing {missing!r}; use one of: {', '.join(MISSING)}")
    if missing == "error" or not isinstance(data, pd.DataFrame):
        return data, []
    spec = parse_formula(formula, family=family)
    columns = [name for name in (*spec.variables, spec.outcome, spec.trials, spec.exposure) if name in data.columns]
    blank = {
        name: data[name].isna() | data[name].map(lambda value: isinstance(value, str) and not value.strip())
        for name in dict.fromkeys(columns)
    }
    rows = pd.concat(blank, axis=1).any(axis=1) if blank else pd.Series(False, index=data.index)
    if not rows.any():
        return data, []
    counts = ", ".join(f"{name}: {int(mask.sum())}" for name, mask in sorted(blank.items()) if mask.any())
    note = (
        f"dropped {int(rows.sum())} of {len(data)} rows with a missing value ({counts}), as lme4 and brms do; "
        "missing='error' (--strict) refuses them instead"
    )
    warnings.warn(PoolwiseWarning(note), stacklevel=4)
    return data.loc[~rows], [note]


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
    missing: str = "drop",
    link: str | None = None,
) -> Fit:
    """Fit one pooling model of ``formula`` to ``data`` with NUTS and store the pointwise log-likelihood.

    Default priors are resolved from the data and stored in the fit with any ``priors`` given. Bad
    input fails before any sampling; sampling trouble and prior-only coefficients become warnings.
    At the default draws, tune and chains, a fit that diverges or whose chains disagree is sampled
    once more (``rescue_step``), with a warning and ``settings["rescue"]``.

    Parameters
    ----------
    formula : str
        An lme4/brms-style formula, e.g. ``"y ~ x + (x|g)"``.
    data : pandas.DataFrame
        The data.
    pooling : str, default "partial"
        ``"complete"``, ``"none"``, ``"partial"`` or an alias (``pooling.pooling``).
    family : str, optional
        One of ``poolwise.families.NAMES``; without it the formula and data decide (see
        ``poolwise.formulas.resolve_family``).
    draws, tune, chains : int
        Draws kept per chain, warm-up draws per chain, chains.
    seed : int, optional
        The sampler's seed; None draws one, stored in ``settings``.
    backend : str, optional
        ``"numpyro"`` (default), ``"nutpie"`` or ``"pymc"``.
    priors : str or mapping, optional
        A preset name or term -> distribution strings; None: the resolved defaults alone.
    allow_unidentified : bool, default False
        Fit even when the design does not identify every coefficient.
    progress : bool, default False
        Show the sampler's progress bar.
    parameterization : str, default "auto"
        ``"auto"``, ``"centered"`` or ``"noncentered"`` for partial pooling's group terms; "auto"
        chooses each from the data (``poolwise.geometry``).
    missing : {"drop", "error"}, default "drop"
        Rows missing a value in a column the formula reads: dropped with a warning (as lme4 and
        brms do), or refused (``drop_missing``).
    link : str, optional
        The link, where the family has several (bernoulli, binomial, beta_binomial: logit,
        probit, cloglog); default: the family's own (logit).

    Returns
    -------
    Fit

    Raises
    ------
    PoolwiseError
        Bad input (formula, family, data, settings, priors, an unidentified design), or a model
        other than complete pooling for a formula without a group term.

    Warns
    -----
    PoolwiseWarning
        Divergences, r_hat or ESS trouble, correlations the data barely inform, no pooling's
        prior-only coefficients, and nutpie handing a model to PyMC's sampler.

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
        missing=missing,
        link=link,
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
) -> Fit:
    """Run NUTS on a model from ``build_model`` (inputs already checked) and wrap the result.

    nutpie falls back to PyMC's sampler for a model whose dimension names hold a comma
    (``C(x, Sum)``), with a note and a warning. Everything that made the fit (specification,
    Bambi formula, priors, settings, data hash, package versions) is kept as JSON in
    ``idata.attrs["poolwise"]``, so a saved fit can be rebuilt and checked against its data. A
    run that ``rescue_step`` finds wanting is sampled once more with its change; the settings keep
    the second run's tune and target acceptance and the sentence in ``rescue`` (None otherwise).

    Parameters
    ----------
    spec : FormulaSpec
        The formula as ``prepare_data`` returns it.
    data : pandas.DataFrame
        The prepared data.
    pooling : str
        The canonical pooling name.
    built : tuple
        ``build_model``'s (model, formula, prior strings).
    notes : list of str
        Notes for the user so far (``checked_inputs``); stored in ``settings``.
    draws, tune, chains : int
        Sampler settings.
    seed : int or None
        The sampler's seed; None draws one, stored in ``settings``.
    backend : str
        A checked backend (``check_settings``).
    allow_unidentified : bool
        Recorded in ``settings``.
    progress : bool
        Show the sampler's progress bar.

    Returns
    -------
    Fit

    Warns
    -----
    PoolwiseWarning
        As ``check_sampling`` and ``check_correlations``, and for no pooling's prior-only slopes.

    Examples
    --------
    >>> sample(spec, prepared, "partial", build_model(spec, prepared, "partial", priors), notes=[],
    ...        draws=1000, tune=1000, chains=4, seed=1, backend="nutpie", allow_unidentified=False,
    ...        progress=False)  # doctest: +SKIP
    """
    model, formula, strings = built
    if pooling == "none" and spec.group is not None:
        _warn_prior_only(spec, data)
    seed = seeds.base(seed)
    if backend == "nutpie" and adapter.has_comma_dimension(model):
        # nutpie 0.16 splits dimension names on commas, and Bambi names C(x, Sum)'s dimension
        # "C(x, Sum)_dim"; PyMC's own sampler handles it.
        backend = "pymc"
        notes = [*notes, "sampled with pymc: nutpie cannot handle the comma in a term such as C(x, Sum)"]
        warnings.warn(PoolwiseWarning(f"{find_pooling(pooling).label}: {notes[-1]}"), stacklevel=3)
    if backend == "numpyro":
        use_compile_cache()
    layout = adapter.parameterization(model, spec.factors) if pooling == "partial" else {}
    label = find_pooling(pooling).label
    accept = target_accept(model, spec, pooling)

    def draw(tune: int, accept: float | None):
        with _reraise_interrupt(), sampler_task(label):
            return adapter.sample(
                model,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                backend=backend,
                progress=progress,
                target_accept=accept,
            )

    idata = draw(tune, accept)
    step = rescue_step(idata, draws=draws, tune=tune, chains=chains, target_accept=accept)
    rescue = None
    if step is not None:
        changes, rescue = step
        warnings.warn(PoolwiseWarning(f"{label}: {rescue}"), stacklevel=3)
        tune, accept = changes.get("tune", tune), changes.get("target_accept", accept)
        idata = draw(tune, accept)
    settings = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "backend": backend,
        "allow_unidentified": allow_unidentified,
        "notes": list(notes),
        "parameterization": layout,
        "target_accept": accept,
        "rescue": rescue,
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
    """Warn when the data barely inform a correlation of group terms.

    That is when its posterior sd is over 0.8 of its LKJ prior's: the marginal of one correlation
    under LKJCorr(eta) in n dimensions is a Beta(eta - 1 + n/2, eta - 1 + n/2) stretched to (-1, 1),
    with sd 1 / sqrt(2 (eta - 1 + n/2) + 1). The warning suggests ``(...||g)``, as lme4 users write
    when a fit is singular.

    Parameters
    ----------
    result : Fit
        A fit with its priors and posterior.

    Warns
    -----
    PoolwiseWarning
        Once per weakly informed correlation.

    Examples
    --------
    >>> check_correlations(fit)  # doctest: +SKIP
    """
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
    """Versions of the packages that decide a fit's numbers, saved with it.

    Returns
    -------
    dict of str to str
        Package -> installed version, for each of ``PACKAGES``.

    Examples
    --------
    >>> sorted(versions())
    ['arviz', 'bambi', 'formulae', 'jax', 'numpyro', 'nutpie', 'poolwise', 'pymc']
    """
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


def diagnostics(idata) -> tuple[int, float, float]:
    """Divergent transitions after warm-up, the worst r_hat and the lowest bulk ESS of a fit's draws.

    r_hat is undefined for a single chain: it is then 1.0 here.

    Parameters
    ----------
    idata : xarray.DataTree
        Draws with sample_stats.

    Returns
    -------
    tuple of (int, float, float)

    Examples
    --------
    >>> diagnostics(fit.idata)  # doctest: +SKIP
    (0, 1.004, 1380.2)
    """
    import arviz as az

    stats = idata["sample_stats"]
    divergent = int(stats["diverging"].sum()) if "diverging" in stats else 0
    posterior = idata["posterior"].to_dataset()
    # fmax/fmin skip the NaN r_hat of a single chain without a warning.
    worst_rhat = float(np.fmax.reduce(_all_values(az.rhat(posterior)), initial=1.0))
    min_ess = float(np.fmin.reduce(_all_values(az.ess(posterior)), initial=np.inf))
    return divergent, worst_rhat, min_ess


def rescue_step(idata, *, draws: int, tune: int, chains: int, target_accept: float | None) -> tuple[dict, str] | None:
    """The one change poolwise makes by itself to a fit at the default sampler settings whose
    chains diverged or disagree, and the sentence that says so; None when there is nothing to do.

    Divergences: a higher target acceptance (``RESCUE_ACCEPT``: smaller steps through the funnel
    or ridge that diverged); else r_hat > 1.01: twice the warm-up. A user who chose draws, tune or
    chains keeps them as given, with the warnings of ``check_sampling``.

    Parameters
    ----------
    idata : xarray.DataTree
        The first run's draws.
    draws, tune, chains : int
        Its sampler settings.
    target_accept : float or None
        Its target acceptance (None: the sampler's 0.8).

    Returns
    -------
    tuple of (dict, str) or None
        The settings to change (``tune`` or ``target_accept``) and what was changed and why.

    Examples
    --------
    >>> rescue_step(fit.idata, draws=1000, tune=1000, chains=4, target_accept=0.95)  # doctest: +SKIP
    ({'target_accept': 0.99}, '3 divergent transitions at target acceptance 0.95; sampled again with 0.99 ...')
    """
    if (draws, tune, chains) != DEFAULT_SAMPLER:
        return None
    divergent, worst_rhat, _ = diagnostics(idata)
    current = target_accept or 0.8
    if divergent and current < RESCUE_ACCEPT[-1]:
        raised = next(value for value in RESCUE_ACCEPT if value > current)
        return {"target_accept": raised}, (
            f"{divergent} divergent transition{'s' if divergent > 1 else ''} at target acceptance {current}; "
            f"sampled again with target acceptance {raised} (automatic, once, at the default draws, tune and chains)"
        )
    if worst_rhat > RHAT_MAX and not divergent:
        return {"tune": 2 * tune}, (
            f"r_hat up to {worst_rhat:.3f} after {tune} warm-up draws; sampled again with {2 * tune} "
            "(automatic, once, at the default draws, tune and chains)"
        )
    return None


def check_sampling(result: Fit) -> None:
    """Turn divergences, r_hat > 1.01 and low bulk ESS into warnings that say what to try.

    Bulk ESS is low under 400, or under a tenth of all draws when that is less. r_hat is undefined
    for a single chain, which then never warns about it.

    Parameters
    ----------
    result : Fit
        A fit with its sample_stats.

    Warns
    -----
    PoolwiseWarning
        One per kind of trouble.

    Examples
    --------
    >>> check_sampling(fit)  # doctest: +SKIP
    """
    divergent, worst_rhat, min_ess = diagnostics(result.idata)
    draws = result.settings["draws"] * result.settings["chains"]
    label = find_pooling(result.pooling).label
    if divergent:
        warnings.warn(
            PoolwiseWarning(
                f"{label}: {divergent} divergent transition{'s' if divergent > 1 else ''}; raise tune, or use priors that keep group sds away from 0"
            ),
            stacklevel=3,
        )
    if worst_rhat > RHAT_MAX:
        warnings.warn(
            PoolwiseWarning(
                f"{label}: r_hat up to {worst_rhat:.3f} > {RHAT_MAX}, the chains disagree; run more tune/draws"
            ),
            stacklevel=3,
        )
    if min_ess < min(ESS_MIN, 0.1 * draws):
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
    """Check that each prior the user named is a term of at least one of the three models.

    ``build_model`` leaves out priors for terms a model lacks, so a typo would otherwise be
    silently ignored by all three.

    Parameters
    ----------
    priors : str, mapping or None
        The user's priors; only a dict is checked (its ``"preset"`` key aside).
    built : dict
        Pooling name -> ``build_model``'s (model, formula, prior strings).

    Raises
    ------
    PoolwiseError
        A prior names a term none of the models has.

    Examples
    --------
    >>> built = {name: build_model(spec, data, name, resolved[name]) for name in resolved}  # doctest: +SKIP
    >>> check_prior_terms({"x": "Normal(0, 1)"}, built)  # doctest: +SKIP
    """
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
