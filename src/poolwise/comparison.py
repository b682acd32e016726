"""Compare models by LOO: the three pooling models of one formula, or the formulas an analyst wrote."""

import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from poolwise import adapter, geometry, seeds
from poolwise.choices import LOO_FIXES
from poolwise.cv import DEFAULT_WORKERS, check_workers, fits_cv, group_folds, run_folds
from poolwise.dispersion import check_fits
from poolwise.errors import PoolwiseError, PoolwiseWarning
from poolwise.fitting import build_model, check_prior_terms, checked_inputs, sample
from poolwise.formulas import parse_formula
from poolwise.pooling import POOLINGS, pooling
from poolwise.priors import Priors, resolve_priors
from poolwise.results import Fit

PARETO_K = 0.7
FIXES = LOO_FIXES  # how compare fixes LOO terms with Pareto k > PARETO_K
MAX_REFITS = 25  # more flagged terms than this per model: grouped CV is the better tool


@dataclass
class Study:
    """Three fits of one formula and their LOO comparison (and grouped CV in ``cv`` if asked for).

    Parameters
    ----------
    formula : str
        The formula as written.
    fits : dict of str to Fit
        Each pooling model's fit, by name ("complete", "none", "partial").
    table : pandas.DataFrame
        ``loo_table``'s comparison (ArviZ's column names), with elpd_cv and se_cv after grouped CV.
    loo : dict of str to ELPDData
        Each model's LOO as used in the table.
    notes : list of str
        What the user should know about the data and settings.
    cv : CV, optional
        The grouped cross-validation, when ``compare(cv="group")`` ran it.
    fix_loo : str
        How LOO terms with Pareto k > 0.7 were fixed (one of ``FIXES``).

    Examples
    --------
    >>> study = compare("p(k, n) ~ x + (x||g)", data, seed=1)  # doctest: +SKIP
    >>> study.table["elpd"], study.verdict()  # doctest: +SKIP
    """

    formula: str
    fits: dict[str, Fit]
    table: pd.DataFrame
    loo: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cv: object | None = None
    fix_loo: str = "refit"

    def verdict(self) -> str:
        """One plain-language sentence about which model predicts best and how clearly.

        Returns
        -------
        str

        Examples
        --------
        >>> study.verdict()  # doctest: +SKIP
        'Partial pooling predicts best (elpd_loo -110.8); no pooling is worse by 7.2 (se 2.9); ...'
        """
        return verdict(self.table)

    def focused(self, factor: str | None) -> "Study":
        """The study with grouping factor ``factor`` in focus in every fit (see ``Fit.focused``).

        Parameters
        ----------
        factor : str or None
            A grouping factor of the formula; None leaves the study as it is.

        Returns
        -------
        Study

        Examples
        --------
        >>> study.focused("week")  # doctest: +SKIP
        """
        return (
            self
            if factor is None
            else replace(self, fits={name: fit.focused(factor) for name, fit in self.fits.items()})
        )


def loo_table(fits: dict[str, Fit], *, fix: str = "refit") -> tuple[pd.DataFrame, dict[str, object]]:
    """PSIS-LOO of each fit, its unreliable terms fixed, compared as ArviZ compares them.

    Terms with Pareto k > ``PARETO_K`` are recomputed. ``fix="refit"`` (the default) refits the
    model without each such observation: ArviZ's ``reloo`` through the fit's compiled,
    reweighted model (``poolwise.refits.exact_loo``), up to ``MAX_REFITS`` per model.
    ``"moment_match"`` first tries ArviZ's ``loo_moment_match`` (no refit; measured here it can
    miss by over 1 in a term whose observation alone informs a coefficient, while reporting
    k < 0.7) and refits what it leaves. ``"off"`` keeps plain PSIS-LOO.

    Parameters
    ----------
    fits : dict of str to Fit
        The fits to compare, by model name, each with its pointwise log-likelihood.
    fix : {"refit", "moment_match", "off"}
        How unreliable terms are fixed.

    Returns
    -------
    table : pandas.DataFrame
        One row per model, best first: ArviZ's dse (se of elpd_diff) and stacking weight, elpd
        unrounded from each model's own LOO, the terms fixed by each method
        (``n_moment_matched``, ``n_refitted``) and those left with Pareto k > ``PARETO_K``
        (``n_bad_k``).
    loos : dict of str to ELPDData
        Each model's LOO as used in the table.

    Raises
    ------
    PoolwiseError
        ``fix`` is not one of ``FIXES``.

    Examples
    --------
    >>> table, loos = loo_table(study.fits)  # doctest: +SKIP
    """
    import arviz as az

    from poolwise.refits import exact_loo

    if fix not in FIXES:
        raise PoolwiseError(f"unknown fix_loo {fix!r}; use one of: {', '.join(FIXES)}")
    loos, fixed = {}, {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        for name, fit in fits.items():
            loo = az.loo(fit.idata, pointwise=True)
            matched = refitted = 0
            if fix == "moment_match" and _bad(loo):
                before = _bad(loo)
                loo = adapter.moment_match(fit.idata, loo, fit.model, PARETO_K) or loo
                matched = before - _bad(loo)
            if fix != "off" and 0 < _bad(loo) <= MAX_REFITS:
                refitted = _bad(loo)
                loo = exact_loo(fit, loo, threshold=PARETO_K)
            loos[name], fixed[name] = loo, (matched, refitted)
        compared = az.compare(loos, round_to="none")
    best = max(loos, key=lambda name: loos[name].elpd)
    rows = []
    for name, loo in loos.items():
        rows.append(
            {
                "model": name,
                "elpd": float(loo.elpd),
                "se": float(loo.se),
                "elpd_diff": float(loo.elpd - loos[best].elpd),
                "dse": float(compared.loc[name, "dse"]),
                "p": float(loo.p),
                "weight": float(compared.loc[name, "weight"]),
                "n_bad_k": _bad(loo),
                "n_moment_matched": fixed[name][0],
                "n_refitted": fixed[name][1],
                "n_obs": int(loo.n_data_points),
            }
        )
    table = pd.DataFrame(rows).sort_values("elpd", ascending=False).set_index("model")
    return table, loos


def _bad(loo) -> int:
    """The number of LOO terms with Pareto k above ``PARETO_K``."""
    return int((np.asarray(loo.pareto_k) > PARETO_K).sum())


def verdict(table: pd.DataFrame) -> str:
    """One sentence on which model predicts best and how clearly: another model is "within 2 se"
    when it trails by less than twice the se of the difference, or by less than 4.

    Parameters
    ----------
    table : pandas.DataFrame
        ``loo_table``'s table, best model first.

    Returns
    -------
    str

    Examples
    --------
    >>> table = pd.DataFrame(
    ...     {"elpd": [-110.0, -113.0, -280.0], "elpd_diff": [0.0, -3.0, -170.0], "dse": [0.0, 2.0, 32.0]},
    ...     index=["partial", "none", "complete"],
    ... )
    >>> verdict(table)
    'Partial pooling predicts best (elpd_loo -110.0); no pooling is within 2 se (worse by 3.0, se 2.0); complete pooling is worse by 170.0 (se 32.0).'
    """
    best = table.index[0]
    parts = [f"{label(best)} predicts best (elpd_loo {table.loc[best, 'elpd']:.1f})"]
    for name in table.index[1:]:
        diff, dse = -table.loc[name, "elpd_diff"], table.loc[name, "dse"]
        if diff < 2 * dse or diff < 4:
            parts.append(f"{label(name, lower=True)} is within 2 se (worse by {diff:.1f}, se {dse:.1f})")
        else:
            parts.append(f"{label(name, lower=True)} is worse by {diff:.1f} (se {dse:.1f})")
    return "; ".join(parts) + "."


def label(name: str, *, lower: bool = False) -> str:
    """How a model of a comparison is named for people: a pooling model by its label ("Partial
    pooling"), a model the user wrote by its own name (its formula, on the command line).

    Parameters
    ----------
    name : str
        The model's key in a study's ``fits``.
    lower : bool, default False
        Lower-case a pooling label, for the middle of a sentence.

    Returns
    -------
    str

    Examples
    --------
    >>> label("partial"), label("y ~ x + (1|g)")
    ('Partial pooling', 'y ~ x + (1|g)')
    """
    if name not in {entry.name for entry in POOLINGS}:
        return name
    text = pooling(name).label
    return text.lower() if lower else text


def compare(
    formula: str,
    data: pd.DataFrame,
    *,
    family: str | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    backend: str | None = None,
    priors: Priors = None,
    allow_unidentified: bool = False,
    progress: bool = False,
    cv: str | None = None,
    folds: int | Sequence[Sequence] | None = None,
    workers: int = DEFAULT_WORKERS,
    executor: Executor | str | None = None,
    by: str | None = None,
    parameterization: str = "auto",
    fix_loo: str = "refit",
    missing: str = "drop",
    link: str | None = None,
) -> Study:
    """Fit complete, no and partial pooling of ``formula`` and compare them by LOO.

    Models are fitted one after another with seeds derived from ``seed`` (model k uses ``seeds.of_model(seed, k)``),
    so the same call gives the same numbers. Each is sampled once more where the defaults did not
    deliver (``fitting.rescue_step``). Priors are resolved once on all the data and stored
    in each fit. LOO terms with Pareto k > 0.7 are fixed as ``fix_loo`` says (``loo_table``).

    Parameters
    ----------
    formula : str
        An lme4/brms-style formula with at least one group term, e.g.
        ``"p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"``.
    data : pandas.DataFrame
        The data (``read_data`` reads files and dataset names).
    family : str, optional
        One of ``poolwise.families.NAMES``; None lets the formula and data decide.
    draws, tune, chains : int
        NUTS settings per model.
    seed : int, optional
        Base seed; None draws one and records it in every fit.
    backend : str, optional
        "numpyro" (default), "nutpie" or "pymc" for the full fits (refits always run on each
        model's JAX program, ``poolwise.program``).
    priors : str or mapping, optional
        A preset ("chapter") or term -> distribution strings, over poolwise's default priors.
    allow_unidentified : bool, default False
        Fit a design whose coefficients the data cannot all identify (otherwise refused).
    progress : bool, default False
        Show the samplers' progress bars.
    cv : {"group"}, optional
        Also run grouped cross-validation: ``study.cv``, and elpd_cv / se_cv in the table.
    folds : int or list of lists, optional
        Grouped CV folds: None leaves one group out per fold, K deals the groups into K folds.
    workers : int, default 1
        Worker processes for the CV refits (1: here, every fold reusing one compiled model).
    executor : concurrent.futures.Executor or str, optional
        Run the CV refits there instead: an executor, a Dask scheduler address or ``ray://...``.
    by : str, optional
        The grouping factor grouped CV leaves out (default: the first in the formula).
    parameterization : {"auto", "centered", "noncentered"}
        Partial pooling's group terms; "auto" chooses each from the data (``poolwise.geometry``).
    fix_loo : {"refit", "moment_match", "off"}
        How LOO terms with Pareto k > 0.7 are fixed: exact refits (default), moment matching
        first, or not at all.
    missing : {"drop", "error"}, default "drop"
        Rows missing a value in a column the formula reads: dropped with a warning, or refused
        (``fitting.drop_missing``).
    link : str, optional
        The link, where the family has several (bernoulli, binomial, beta_binomial: logit,
        probit, cloglog); default: the family's own (logit).

    Returns
    -------
    Study
        ``study.table`` (elpd, se, elpd_diff, dse, p, weight, n_bad_k, n_moment_matched,
        n_refitted, n_obs per model), ``study.fits[name]``, ``study.verdict()``.

    Raises
    ------
    PoolwiseError
        Bad input, before any sampling: an unknown ``cv`` or ``fix_loo``, a formula without a
        group term, bad data, settings, priors or folds.

    Warns
    -----
    PoolwiseWarning
        Sampling trouble, prior-only coefficients, LOO terms still unreliable.

    Examples
    --------
    >>> study = compare("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)",
    ...                 load_dataset("gym"), seed=1)  # doctest: +SKIP
    >>> study.verdict()  # doctest: +SKIP
    """
    if cv is not None and cv != "group":
        raise PoolwiseError(f"unknown cv {cv!r}; use cv='group' (leave groups out) or None")
    if fix_loo not in FIXES:
        raise PoolwiseError(f"unknown fix_loo {fix_loo!r}; use one of: {', '.join(FIXES)}")
    spec, prepared, notes, backend = checked_inputs(
        formula,
        data,
        family=family,
        draws=draws,
        tune=tune,
        chains=chains,
        backend=backend,
        allow_unidentified=allow_unidentified,
        missing=missing,
        link=link,
    )
    if spec.group is None:
        raise PoolwiseError(
            f"formula {formula!r} has no group term; add one such as (1|group) or (x|group) to compare pooling"
        )
    # One base seed for everything, drawn here when not given, so the study records a seed that
    # reproduces all three fits and the CV folds (``poolwise.seeds``).
    seed = seeds.base(seed)
    if cv is not None:
        check_workers(workers)
        cv_folds = group_folds(prepared[spec.focused(by).group], folds, seed=seed)
    resolved = {entry.name: resolve_priors(priors, spec, prepared, entry.name) for entry in POOLINGS}
    layout = geometry.choose(spec, prepared, parameterization)
    built = {
        name: build_model(spec, prepared, name, strings, parameterization=layout) for name, strings in resolved.items()
    }
    check_prior_terms(priors, built)
    fits = {}
    for offset, (name, model) in enumerate(built.items()):
        fits[name] = sample(
            spec,
            prepared,
            name,
            model,
            notes=notes,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seeds.of_model(seed, offset),
            backend=backend,
            allow_unidentified=allow_unidentified,
            progress=progress,
        )
    table, loos = loo_table(fits, fix=fix_loo)
    result = None
    if cv is not None:
        result = run_folds(
            spec.focused(by),
            prepared,
            cv_folds,
            poolings=list(fits),
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            priors=resolved,
            workers=workers,
            executor=executor,
            parameterization=layout,
        )
        table = table.join(result.table[["elpd_cv", "se"]].rename(columns={"se": "se_cv"}))
    for name, row in table.iterrows():
        if row["n_bad_k"]:
            advice = (
                "compare(fix_loo='refit') refits the model without each"
                if fix_loo == "off"
                else f"more than {MAX_REFITS}, too many to refit one by one"
            )
            warnings.warn(
                PoolwiseWarning(
                    f"{pooling(name).label}: {int(row['n_bad_k'])} of {int(row['n_obs'])} observations have Pareto k > {PARETO_K}; "
                    f"their LOO terms are unreliable ({advice}); grouped cross-validation (cv='group') is the sturdier check"
                ),
                stacklevel=2,
            )
    # The partial pooling model has the data's group structure: what it leaves unexplained is
    # row-to-row variation, which the family must carry (complete pooling's excess is the groups').
    notes = [*notes, *check_fits({"partial": fits["partial"]}, {"partial": pooling("partial").label})]
    return Study(spec.formula, fits, table, loos, notes, result, fix_loo)


def compare_models(
    models,
    data: pd.DataFrame,
    *,
    family: str | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    backend: str | None = None,
    priors: Priors = None,
    allow_unidentified: bool = False,
    progress: bool = False,
    fix_loo: str = "refit",
    missing: str = "drop",
    link: str | None = None,
    cv: str | None = None,
    folds: int | Sequence[Sequence] | None = None,
    by: str | None = None,
    workers: int = DEFAULT_WORKERS,
) -> Study:
    """Fit models the analyst wrote to the same observations and compare them by LOO, as brms's
    ``loo_compare(m1, m2)``: with or without a covariate, ``|`` against ``||``, one family against
    another.

    Each formula is fitted as written: partial pooling where it has a group term, complete pooling
    where it has none. Before anything is sampled, the models are checked to describe the same
    observations (the same outcome, trials and rows after each formula's data preparation); LOO
    across different data is meaningless. Model k is fitted with ``seeds.of_model(seed, k)``;
    unreliable LOO terms are fixed as in ``compare``.

    Parameters
    ----------
    models : sequence of str, or mapping of str to str
        The formulas, or name -> formula (the names label the table; default: the formulas).
    data : pandas.DataFrame
        The data.
    family : str or sequence of str, optional
        One family for every model, or one per model in their order (the same formula twice with
        ``["binomial", "beta_binomial"]`` asks whether the counts are overdispersed); None lets
        each formula and the data decide.
    draws, tune, chains : int
        Sampler settings per model.
    seed : int, optional
        Base seed; None draws one and records it in every fit.
    backend : str, optional
        ``"numpyro"`` (default), ``"nutpie"`` or ``"pymc"``.
    priors : str or mapping, optional
        As in ``fit``, for every model.
    allow_unidentified : bool, default False
        Fit even when a design does not identify every coefficient.
    progress : bool, default False
        Show the sampler's progress bar.
    fix_loo : {"refit", "moment_match", "off"}
        How LOO terms with Pareto k > 0.7 are fixed.
    missing : {"drop", "error"}, default "drop"
        Rows missing a value in a column any of the formulas reads: dropped for every model (so
        they describe the same rows) with a warning per formula, or refused.
    link : str or sequence of str, optional
        One link for every model, or one per model in their order (the same formula twice with
        ``["logit", "probit"]`` compares links); None keeps each family's own.
    cv : {"group"}, optional
        Also run grouped K-fold cross-validation of every model (``cv.fits_cv``): its ``elpd_cv``
        and ``se_cv`` join the table, ``cv`` holds the result.
    folds : int or list of lists, optional
        The folds of ``cv``: a number, or the groups of each fold; None leaves one group out at a
        time.
    by : str, optional
        The grouping factor ``cv`` leaves out (default: the first model's group factor).
    workers : int, default 1
        Processes for the cross-validation refits, as in ``group_cv``.

    Returns
    -------
    Study
        ``fits`` and the table keyed by the models' names; ``formula`` the formulas joined by " vs ".

    Raises
    ------
    PoolwiseError
        Fewer than two models, families not one per model, a bad formula or setting, or models that
        do not describe the same observations.

    Examples
    --------
    >>> study = compare_models(["Reaction ~ Days + (Days|Subject)", "Reaction ~ Days + (1|Subject)"],
    ...                        sleepstudy, family="gaussian", seed=1)  # doctest: +SKIP
    >>> study.verdict()  # doctest: +SKIP
    """
    from poolwise.fitting import drop_missing
    from poolwise.fitting import fit as fit_one

    formulas = list(models.values()) if isinstance(models, Mapping) else [str(formula) for formula in models]
    families = _per_model(family, len(formulas), ("family", "families"))
    links = _per_model(link, len(formulas), ("link", "links"))
    if isinstance(models, Mapping):
        names = [str(name) for name in models]
    elif len(set(formulas)) < len(formulas):  # one formula, several families or links: name each by them
        names = [f"{formula} [{_label(fam, lnk)}]" for formula, fam, lnk in zip(formulas, families, links)]
    else:
        names = formulas
    if len(names) < 2:
        raise PoolwiseError("compare_models needs at least two models; to compare pooling, use compare(formula, data)")
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise PoolwiseError(
            f"model {repeated!r} is given twice; compare different formulas, or one formula with a family "
            "or link per model (family=['binomial', 'beta_binomial'], link=['logit', 'probit'])"
        )
    named, family_of, link_of = dict(zip(names, formulas)), dict(zip(names, families)), dict(zip(names, links))
    if fix_loo not in FIXES:
        raise PoolwiseError(f"unknown fix_loo {fix_loo!r}; use one of: {', '.join(FIXES)}")
    if cv is not None and cv != "group":
        raise PoolwiseError(f"unknown cv {cv!r}; use cv='group' (leave groups out) or None")
    if cv is not None:
        check_workers(workers)
    # Rows missing a value any model reads are dropped for all of them, so they stay comparable.
    for name, formula in named.items():
        data, _ = drop_missing(formula, data, family=family_of[name], missing=missing)
    prepared = {}
    for name, formula in named.items():
        pooling_name = "partial" if parse_formula(formula, data, family=family_of[name]).factors else "complete"
        spec, rows, _, backend = checked_inputs(
            formula,
            data,
            family=family_of[name],
            draws=draws,
            tune=tune,
            chains=chains,
            backend=backend,
            allow_unidentified=allow_unidentified,
            pooling=pooling_name,
            missing="error",
            link=link_of[name],
        )
        prepared[name] = (spec, rows)
    check_same_observations(prepared)
    seed = seeds.base(seed)
    fits = {}
    for offset, (name, (spec, _)) in enumerate(prepared.items()):
        fits[name] = fit_one(
            named[name],
            data,
            pooling="partial" if spec.factors else "complete",
            family=family_of[name],
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seeds.of_model(seed, offset),
            backend=backend,
            priors=priors,
            allow_unidentified=allow_unidentified,
            progress=progress,
            missing="error",
            link=link_of[name],
        )
    table, loos = loo_table(fits, fix=fix_loo)
    result = None
    if cv is not None:
        result = fits_cv(fits, folds=folds, by=by, draws=draws, tune=tune, chains=chains, seed=seed, workers=workers)
        table = table.join(result.table[["elpd_cv", "se"]].rename(columns={"se": "se_cv"}))
    return Study(" vs ".join(named.values()), fits, table, loos, check_fits(fits), result, fix_loo)


def compare_fits(
    fits: Mapping[str, Fit] | Sequence[Fit],
    *,
    fix_loo: str = "refit",
    cv: str | None = None,
    folds: int | Sequence[Sequence] | None = None,
    by: str | None = None,
    seed: int | None = None,
    workers: int = DEFAULT_WORKERS,
) -> Study:
    """Compare models already fitted (``poolwise fit --out``, ``load_fit``) by LOO, as brms's
    ``loo_compare(m1, m2)`` on saved fits: nothing is refitted except the exact LOO refits (and,
    with ``cv``, the cross-validation refits).

    Parameters
    ----------
    fits : mapping of str to Fit, or sequence of Fit
        The fits, by name (default names: m1, m2, ... in order).
    fix_loo : {"refit", "moment_match", "off"}
        How LOO terms with Pareto k > 0.7 are fixed, as in ``compare``.
    cv : {"group"}, optional
        Also run grouped K-fold cross-validation of every fit as ``compare_models`` does, each
        model with its saved priors and layout, the refits at the first fit's draws, tune and
        chains.
    folds, by, workers
        As in ``compare_models``.
    seed : int, optional
        Seeds the folds and the refits (default: the first fit's seed).

    Returns
    -------
    Study
        ``fits`` and the table keyed by the names; ``formula`` the users' formulas joined by " vs ".

    Raises
    ------
    PoolwiseError
        Fewer than two fits, an unknown ``fix_loo``, or fits that do not describe the same
        observations.

    Examples
    --------
    >>> study = compare_fits([load_fit("slopes.nc"), load_fit("intercepts.nc")])  # doctest: +SKIP
    >>> study.verdict()  # doctest: +SKIP
    """
    named = dict(fits) if isinstance(fits, Mapping) else {f"m{k}": fit for k, fit in enumerate(fits, start=1)}
    if len(named) < 2:
        raise PoolwiseError("compare_fits needs at least two fits; fit another model and save it with --out")
    if fix_loo not in FIXES:
        raise PoolwiseError(f"unknown fix_loo {fix_loo!r}; use one of: {', '.join(FIXES)}")
    if cv is not None and cv != "group":
        raise PoolwiseError(f"unknown cv {cv!r}; use cv='group' (leave groups out) or None")
    if cv is not None:
        check_workers(workers)
    check_same_observations({name: (fit.spec, fit.data) for name, fit in named.items()})
    table, loos = loo_table(named, fix=fix_loo)
    result = None
    if cv is not None:
        first = next(iter(named.values())).settings
        sampler = {key: first[key] for key in ("draws", "tune", "chains")}
        seed = first.get("seed") if seed is None else seed
        result = fits_cv(named, folds=folds, by=by, seed=seed, workers=workers, **sampler)
        table = table.join(result.table[["elpd_cv", "se"]].rename(columns={"se": "se_cv"}))
    formula = " vs ".join(fit.spec.formula for fit in named.values())
    return Study(formula, named, table, loos, check_fits(named), result, fix_loo)


def _per_model(value: str | Sequence[str | None] | None, count: int, what: tuple[str, str]) -> list[str | None]:
    """One family or link (or None) per model: ``value`` for all, or its entries in the models' order."""
    if value is None or isinstance(value, str):
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise PoolwiseError(
            f"{len(values)} {what[1]} for {count} models; give one {what[0]} for all or one per model, in order"
        )
    return values


def _label(family: str | None, link: str | None) -> str:
    """A model's family and link as a duplicated formula's name shows them."""
    if link is None:
        return str(family)
    return f"{family}({link})" if family is not None else f"link {link}"


def check_same_observations(prepared: Mapping[str, tuple]) -> None:
    """Refuse models that do not describe the same observations: the same outcome (and trials or
    exposure), the same number of rows after each formula's data preparation, the same values.

    Parameters
    ----------
    prepared : mapping of str to (FormulaSpec, pandas.DataFrame)
        Each model's name -> its spec and prepared data.

    Raises
    ------
    PoolwiseError
        Naming the first two models that differ and how.

    Examples
    --------
    >>> check_same_observations({"a": (spec, rows), "b": (spec, rows)})  # doctest: +SKIP
    """
    (first, (spec, rows)), *others = prepared.items()
    for name, (other, other_rows) in others:
        why = None
        if (other.outcome, other.trials, other.exposure) != (spec.outcome, spec.trials, spec.exposure):
            why = f"the outcome is {_outcome(spec)} in one and {_outcome(other)} in the other"
        elif len(other_rows) != len(rows):
            why = f"they fit {len(rows)} and {len(other_rows)} rows (bernoulli or poisson rows are aggregated by each formula's predictors)"
        elif (
            not rows[_observed(spec)].reset_index(drop=True).equals(other_rows[_observed(other)].reset_index(drop=True))
        ):
            why = "their rows hold different outcome values"
        if why:
            raise PoolwiseError(
                f"{first!r} and {name!r} do not describe the same observations: {why}; "
                "LOO compares models of one outcome on the same rows"
            )


def _observed(spec) -> list[str]:
    return [column for column in (spec.outcome, spec.trials, spec.exposure) if column]


def _outcome(spec) -> str:
    size = spec.trials or spec.exposure
    return f"{spec.outcome} out of {size}" if size else spec.outcome
