"""Overdispersion: do the counts vary more from row to row than the family allows?

A binomial (or Poisson) model fixes each row's variance by its mean; when rows vary more than that
(conversion rates per gym-month that swing more than chance, even within a gym), its intervals
are too narrow and its P(helps) overconfident. The check is the posterior predictive one of
Gelman et al. (BDA3, ch. 6): Pearson's dispersion statistic
``T = sum((y - E[y]) ** 2 / Var[y])``, computed draw by draw for the observed counts and for counts
Bambi simulates from the same draw. The model is flagged when the observed statistic exceeds the
simulated one in at least 95% of the draws (posterior predictive p <= 0.05). The fix is the
family's overdispersed sibling (``Family.overdispersed``): beta-binomial for binomial counts,
negative binomial for Poisson counts.
"""

import warnings

import numpy as np
import pandas as pd

from poolwise import adapter
from poolwise.data import one_line
from poolwise.errors import PoolwiseWarning
from poolwise.families import family as find_family
from poolwise.fitting import model_of
from poolwise.results import Fit

P_VALUE = 0.05  # flag a model whose observed dispersion beats the simulated one in >= 95% of draws
DRAWS = 1000  # posterior draws the statistic is computed on: enough for a p-value near 0.05
CELLS = 5_000_000  # draws x rows simulated counts to aim for (never below 100 draws): 50,000 rows take 100
COLUMNS = ["model", "family", "ratio", "p_value", "overdispersed", "instead"]


def checkable(fit: Fit) -> bool:
    """Whether the overdispersion check applies to a fit.

    Only counts whose variance the family fixes have something to check (binomial and Poisson),
    and only rows that can vary among themselves: bernoulli rows aggregated to counts cannot.

    Parameters
    ----------
    fit : Fit
        A fitted model.

    Returns
    -------
    bool

    Examples
    --------
    >>> checkable(study.fits["partial"])  # doctest: +SKIP
    True
    """
    return find_family(fit.spec.family).overdispersed is not None


def overdispersion(fit: Fit, *, draws: int | None = None, seed: int = 0) -> pd.Series:
    """The posterior predictive dispersion check of one binomial or Poisson fit.

    Parameters
    ----------
    fit : Fit
        A binomial or Poisson fit (``checkable``).
    draws : int, optional
        Posterior draws to compute the statistic on (picked at random, seeded); default ``DRAWS``,
        fewer for large data (about ``CELLS`` simulated counts, but at least 100 draws).
    seed : int
        Seed of the picked draws and the simulated counts.

    Returns
    -------
    pandas.Series
        ``model``; ``family``; ``ratio``, the observed statistic over the simulated one, averaged
        over draws (about 1 when the family fits, 2 when rows vary twice as much); ``p_value``,
        the share of draws whose simulated statistic is at least the observed one;
        ``overdispersed``, ``p_value <= P_VALUE``; ``instead``, the family to fit instead.

    Raises
    ------
    ValueError
        The fit's family has no overdispersion check (``checkable`` is False).

    Examples
    --------
    >>> overdispersion(study.fits["partial"])[["ratio", "p_value"]]  # doctest: +SKIP
    ratio      2.41
    p_value    0.0
    """
    family = find_family(fit.spec.family)
    if family.overdispersed is None:
        raise ValueError(f"{family.name} has no overdispersion check")
    if draws is None:
        draws = int(np.clip(CELLS // max(len(fit.data), 1), 100, DRAWS))
    means, simulated = adapter.predict_means_and_outcomes(model_of(fit), fit.thinned(draws, seed), seed)
    observed = fit.data[fit.spec.outcome].to_numpy(dtype=float)
    if family.trials:  # Bambi's p is the probability: the count's mean n p, variance n p (1 - p)
        size = fit.data[fit.spec.trials].to_numpy(dtype=float)
        expected, variance = size * means, size * means * (1 - means)
    else:  # Bambi's mu is the expected count (exposure included); Poisson variance equals it
        expected = variance = means
    variance = np.maximum(variance, 1e-12)
    t_observed = ((observed - expected) ** 2 / variance).sum(axis=1)
    t_simulated = ((simulated - expected) ** 2 / variance).sum(axis=1)
    p_value = float((t_simulated >= t_observed).mean())
    return pd.Series(
        {
            "model": fit.pooling,
            "family": family.name,
            "link": family.link,
            "ratio": float(t_observed.mean() / t_simulated.mean()),
            "p_value": p_value,
            "overdispersed": p_value <= P_VALUE,
            "instead": family.overdispersed,
        }
    )


def advice(check: pd.Series, outcome: str, label: str, *, compared: bool = False) -> str:
    """The check in one sentence, with what to write instead when it flags the model.

    Parameters
    ----------
    check : pandas.Series
        From ``overdispersion``.
    outcome : str
        The outcome column, for the sentence.
    label : str
        The model's name, to begin the sentence.
    compared : bool
        Whether the comparison already holds a model of the family to use instead (then the
        sentence points there rather than saying how to fit one).

    Returns
    -------
    str
        E.g. "partial pooling: nSigned varies 2.4x more from row to row than binomial allows
        (posterior predictive p = 0.000), ...".

    Examples
    --------
    >>> advice(overdispersion(fit), "nSigned", "partial pooling")  # doctest: +SKIP
    """
    found = (
        f"{label}: {outcome} varies {check['ratio']:.1f}x as much from row to row as {check['family']} allows "
        f"(posterior predictive p = {check['p_value']:.3f})"
    )
    if not check["overdispersed"]:
        return f"{found}: no sign of overdispersion"
    if compared:
        return (
            f"{found}, so its intervals are too narrow and P(helps) overconfident; the {check['instead']} "
            "model in this comparison allows for it"
        )
    link = "" if check.get("link") in (None, find_family(check["family"]).link) else f" --link {check['link']}"
    return (
        f"{found}, so its intervals are too narrow and P(helps) overconfident; fit --family {check['instead']} "
        f"(family='{check['instead']}') and compare the two: poolwise compare DATA 'FORMULA' 'FORMULA' "
        f"--family {check['family']} --family {check['instead']}{link}"
    )


def check_fits(fits: dict[str, Fit], labels: dict[str, str] | None = None) -> list[str]:
    """The overdispersion check of every checkable fit, as sentences for a study's notes.

    Parameters
    ----------
    fits : dict of str to Fit
        The fits to check, by name.
    labels : dict of str to str, optional
        Name -> how sentences call the model (default: the name).

    Returns
    -------
    list of str
        One ``advice`` sentence per checkable fit (none for other families); a check that fails is a
        ``PoolwiseWarning`` instead, so the fits are never lost to it.

    Examples
    --------
    >>> check_fits({"partial": study.fits["partial"]}, {"partial": "partial pooling"})  # doctest: +SKIP
    ['partial pooling: nSigned varies 1.1x as much ... no sign of overdispersion']
    """
    labels = labels or {}
    present = {find_family(fit.spec.family).name for fit in fits.values()}
    notes = []
    for name, fit in fits.items():
        # Complete pooling of a grouped formula varies more than its family allows because the
        # groups differ, which partial pooling answers; the family is not the question there.
        if not checkable(fit) or (fit.pooling == "complete" and fit.spec.factors):
            continue
        label = labels.get(name, name)
        try:
            check = overdispersion(fit)
        except Exception as err:  # noqa: BLE001 - a failed check must not throw away the fits
            warnings.warn(
                PoolwiseWarning(
                    f"{label}: the overdispersion check failed ({one_line(str(err))}); the comparison stands"
                ),
                stacklevel=3,
            )
            continue
        notes.append(advice(check, fit.spec.outcome, label, compared=check["instead"] in present))
    return notes
