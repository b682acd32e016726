"""Fit the three pooling models of one formula and compare them by LOO."""

import warnings
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from poolwise import geometry
from poolwise.cv import check_workers, group_folds, run_folds
from poolwise.errors import PoolwiseError, PoolwiseWarning
from poolwise.fitting import build_model, check_prior_terms, checked_inputs, sample
from poolwise.pooling import POOLINGS, pooling
from poolwise.priors import Priors, resolve_priors
from poolwise.results import Fit

PARETO_K = 0.7


@dataclass
class Study:
    """Three fits of one formula and their LOO comparison (and grouped CV in ``cv`` if asked for)."""

    formula: str
    fits: dict[str, Fit]
    table: pd.DataFrame
    loo: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cv: object | None = None

    def verdict(self) -> str:
        """One plain-language sentence about which model predicts best and how clearly."""
        return verdict(self.table)

    def focused(self, factor: str | None) -> "Study":
        """The study with grouping factor ``factor`` in focus in every fit (see ``Fit.focused``)."""
        return (
            self
            if factor is None
            else replace(self, fits={name: fit.focused(factor) for name, fit in self.fits.items()})
        )


def loo_table(fits: dict[str, Fit]) -> tuple[pd.DataFrame, dict[str, object]]:
    """ArviZ's comparison (rank, elpd_diff's se, stacking weight) with elpd taken unrounded from
    each model's own ``loo()``, plus the count of Pareto k > 0.7 per model."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        loos = {name: az.loo(f.idata) for name, f in fits.items()}
        compared = az.compare(loos, round_to="none")
    best = max(loos, key=lambda name: loos[name].elpd)
    rows = []
    for name, loo in loos.items():
        rows.append(
            {
                "model": name,
                "elpd_loo": float(loo.elpd),
                "se": float(loo.se),
                "elpd_diff": float(loo.elpd - loos[best].elpd),
                "dse": float(compared.loc[name, "dse"]),
                "p_loo": float(loo.p),
                "weight": float(compared.loc[name, "weight"]),
                "n_bad_k": int((loo.pareto_k.values > PARETO_K).sum()),
                "n_obs": int(loo.n_data_points),
            }
        )
    table = pd.DataFrame(rows).sort_values("elpd_loo", ascending=False).set_index("model")
    return table, loos


def verdict(table: pd.DataFrame) -> str:
    """E.g. 'Partial pooling predicts best (...); no pooling is within 2 se (...); complete pooling is worse by 172 (se 32).'"""
    best = table.index[0]
    parts = [f"{pooling(best).label} predicts best (elpd_loo {table.loc[best, 'elpd_loo']:.1f})"]
    for name in table.index[1:]:
        diff, dse = -table.loc[name, "elpd_diff"], table.loc[name, "dse"]
        if diff < 2 * dse or diff < 4:
            parts.append(f"{pooling(name).label.lower()} is within 2 se (worse by {diff:.1f}, se {dse:.1f})")
        else:
            parts.append(f"{pooling(name).label.lower()} is worse by {diff:.1f} (se {dse:.1f})")
    return "; ".join(parts) + "."


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
    workers: int = 2,
    executor: Executor | str | None = None,
    by: str | None = None,
    parameterization: str = "auto",
) -> Study:
    """Fit complete, no and partial pooling of ``formula`` and compare them by LOO.

    ``study.table`` holds elpd_loo, se, elpd_diff, dse, p_loo, weight and the count of Pareto
    k > 0.7 per model; ``study.fits[name]`` each fit. Models are fitted one after another with
    seeds derived from ``seed``, so the same call gives the same numbers. ``cv="group"`` adds
    grouped cross-validation (``folds``, ``workers``, ``executor``, ``by`` as in ``poolwise.cv.group_cv``):
    ``study.cv`` holds it and ``study.table`` gains its elpd_cv and se_cv.
    """
    if cv is not None and cv != "group":
        raise PoolwiseError(f"unknown cv {cv!r}; use cv='group' (leave groups out) or None")
    spec, prepared, notes, backend = checked_inputs(
        formula,
        data,
        family=family,
        draws=draws,
        tune=tune,
        chains=chains,
        backend=backend,
        allow_unidentified=allow_unidentified,
    )
    if spec.group is None:
        raise PoolwiseError(
            f"formula {formula!r} has no group term; add one such as (1|group) or (x|group) to compare pooling"
        )
    # One base seed for everything, drawn here when not given, so the study records a seed that
    # reproduces all three fits (model k uses seed + k) and the CV folds.
    seed = int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)
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
            seed=seed + offset,
            backend=backend,
            allow_unidentified=allow_unidentified,
            progress=progress,
        )
    table, loos = loo_table(fits)
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
            backend=backend,
            priors=resolved,
            allow_unidentified=allow_unidentified,
            workers=workers,
            executor=executor,
            parameterization=layout,
        )
        table = table.join(result.table[["elpd_cv", "se"]].rename(columns={"se": "se_cv"}))
    for name, row in table.iterrows():
        if row["n_bad_k"]:
            warnings.warn(
                PoolwiseWarning(
                    f"{pooling(name).label}: {int(row['n_bad_k'])} of {int(row['n_obs'])} observations have Pareto k > {PARETO_K}; "
                    "leaving one out moves the posterior a lot (each row carries much of its group's information), "
                    "so their LOO terms are unreliable; grouped cross-validation (cv='group') is the sturdier check"
                ),
                stacklevel=2,
            )
    return Study(spec.formula, fits, table, loos, notes, result)
