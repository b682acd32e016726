"""Decisions on the probability scale: does the treatment help a typical group, each observed
group, a group not seen yet, and how many more successes should G new groups expect?

"Without" means treatment = 0 and "with" treatment = 1, other common terms at 0. What each
pooling model can say:

- partial pooling: the typical group is the population (intercept, slope); a new group draws its
  own intercept and slope from Normal(population, group sd);
- complete pooling: every group, typical or new, has the one shared rate (the model assumes
  groups do not differ, so its new-group interval is too narrow by construction);
- no pooling: each observed group on its own; there is no population, so the typical and new
  group (and expected outcomes for new groups) are undefined and reported as NaN.

The typical group is the median group (population logit mean). The average new group's rate is
higher when rates are below 50%, because the logit curve bends: expected outcomes average over new
groups, so they imply a higher mean rate than the typical group's.

The ``source`` column of every table says which of these a row is.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from poolwise.estimates import PROB, group_draws, population_draws, summarise
from poolwise.errors import PoolwiseError
from poolwise.fitting import Fit
from poolwise.identify import prior_only_groups

QUANTITIES = ("rate_without", "rate_with", "difference", "ratio")
OUTCOMES = ("successes_without", "successes_with", "difference")
TABLE_COLUMNS = ["model", "group", "quantity", "mean", "sd", "lower", "upper", "p_helps", "source"]
SCOPES = ("typical", "new")
# Which quantities a group's data cannot inform, by the reason prior_only_groups() gives.
_UNINFORMED = {"prior_only": ("rate_with", "difference", "ratio"), "sum_only": ("rate_without", "difference", "ratio")}
# Where an observed group's uninformed quantities come from, per pooling.
_BORROWED = {"partial": "population", "none": "prior"}


@dataclass
class Decision:
    """The answers of one fit, as tidy tables (see the module docstring for what each model means).

    ``typical``, ``new_group`` and ``per_group`` share the columns model, group, quantity
    (rate_without, rate_with, difference, ratio), mean, sd, lower, upper, p_helps
    (P(rate_with > rate_without)) and source; ``expected`` has quantity (successes_without,
    successes_with, difference), groups, trials, mean, sd, lower, upper, p_helps, source.
    """

    pooling: str
    treatment: str
    factor: str
    successes: str
    trials: int
    groups: int
    prob: float
    typical: pd.DataFrame
    per_group: pd.DataFrame
    new_group: pd.DataFrame
    expected: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def verdict(self) -> str:
        """A short plain-language answer with the numbers, for the CLI and reports."""
        return verdict(self)


def check_treatment(fit: Fit, treatment: str | None) -> str:
    """The treatment term to report: ``treatment`` if the formula has it as a 0/1 column, else
    the formula's own (its first group-varying slope)."""
    spec = fit.spec
    terms = list(dict.fromkeys([*spec.varying, *spec.common]))
    treatment = treatment or spec.treatment
    if treatment is None or treatment not in terms:
        shown = ", ".join(terms) or "none"
        raise PoolwiseError(f"unknown treatment {treatment!r}; the formula's terms are: {shown}. Pass one of them as treatment")
    if treatment in fit.data.columns and not set(pd.unique(fit.data[treatment])) <= {0, 1}:
        raise PoolwiseError(f"treatment {treatment} must be a 0/1 column to compare without (0) and with (1); recode it")
    return treatment


def rates(alpha: xr.DataArray, beta: xr.DataArray) -> xr.Dataset:
    """Rates without and with the treatment, their difference and ratio, from logit-scale draws."""
    without, with_ = expit(alpha), expit(alpha + beta)
    return xr.Dataset({"rate_without": without, "rate_with": with_, "difference": with_ - without,
                       "ratio": with_ / without})


def new_group_coefficients(fit: Fit, treatment: str, size: int, rng: np.random.Generator) -> xr.Dataset:
    """Logit-scale ``alpha``, ``beta`` of ``size`` unseen groups per posterior draw, dims
    (chain, draw, new_group).

    Each is drawn from Normal(population, group sd), independently for intercept and slope as
    Bambi's group effects are (brms's ``sample_new_levels="gaussian"``). Bambi's own route,
    ``predict(..., sample_new_groups=True)``, resamples one observed group's deviations per draw
    and gives every unseen level that same group, so it cannot represent G different new groups.
    """
    pop = population_draws(fit, treatment)
    drawn = {}
    for name, sd in (("alpha", "sigma_alpha"), ("beta", "sigma_beta")):
        centre = pop[name].expand_dims(new_group=size, axis=-1)
        z = rng.standard_normal(centre.shape)
        # No group sd (complete pooling, or a term that does not vary): a new group is the typical one.
        drawn[name] = centre + (pop[sd].values[..., None] * z if sd in pop else 0.0)
    return xr.Dataset(drawn).transpose("chain", "draw", "new_group")


def rate_draws(fit: Fit, *, treatment: str | None = None, scope: str = "typical",
               seed: int | np.random.Generator | None = None) -> xr.Dataset:
    """Draws of rate_without, rate_with, difference and ratio for the typical group or one new
    group (``scope``), dims (chain, draw). No pooling has no population, so neither exists there."""
    treatment = check_treatment(fit, treatment)
    if scope not in SCOPES:
        raise PoolwiseError(f"unknown scope {scope!r}; use one of: {', '.join(SCOPES)}")
    if fit.pooling == "none":
        raise PoolwiseError("no pooling has no population, so it has no typical or new group; use the partial pooling fit")
    if scope == "typical":
        pop = population_draws(fit, treatment)
        return rates(pop["alpha"], pop["beta"])
    new = new_group_coefficients(fit, treatment, 1, np.random.default_rng(seed)).isel(new_group=0, drop=True)
    return rates(new["alpha"], new["beta"])


def _rows(model: str, group: str, draws: xr.Dataset | None, prob: float, sources: dict[str, str]) -> list[dict]:
    if draws is None:
        empty = {"mean": np.nan, "sd": np.nan, "lower": np.nan, "upper": np.nan, "p_helps": np.nan}
        return [{"model": model, "group": group, "quantity": q, **empty, "source": sources[q]} for q in QUANTITIES]
    p_helps = float((draws["difference"] > 0).mean())
    return [{"model": model, "group": group, "quantity": q, **summarise(draws[q], prob), "p_helps": p_helps,
             "source": sources[q]} for q in QUANTITIES]


def _per_group(fit: Fit, treatment: str, prob: float) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Each observed group's rates, with the quantities its data cannot inform marked by source."""
    coefficients = group_draws(fit, treatment)
    draws = rates(coefficients["alpha"], coefficients["beta"])
    # Complete pooling gives every group the shared estimate, so no group is singled out there.
    found = {}
    if fit.spec.group and fit.pooling != "complete":
        found = prior_only_groups(fit.spec, fit.data).get(treatment, {})
    flagged = {reason: found.get(reason, []) for reason in _UNINFORMED}
    rows = []
    for label in draws["group"].values:
        sources = dict.fromkeys(QUANTITIES, "all groups" if fit.pooling == "complete" else "data")
        for reason, groups in flagged.items():
            if str(label) in groups:
                sources.update(dict.fromkeys(_UNINFORMED[reason], _BORROWED[fit.pooling]))
        rows += _rows(fit.pooling, str(label), draws.sel(group=label), prob, sources)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS), flagged


def _expected(fit: Fit, treatment: str, trials: int, groups: int, prob: float, rng: np.random.Generator) -> pd.DataFrame:
    """Posterior predictive of total successes of ``groups`` new groups with ``trials`` each, the
    same groups without and with the treatment (different customers, so independent binomials)."""
    columns = ["model", "quantity", "groups", "trials", "mean", "sd", "lower", "upper", "p_helps", "source"]
    if fit.pooling == "none":
        empty = {"mean": np.nan, "sd": np.nan, "lower": np.nan, "upper": np.nan, "p_helps": np.nan}
        return pd.DataFrame([{"model": fit.pooling, "quantity": q, "groups": groups, "trials": trials, **empty,
                              "source": "undefined"} for q in OUTCOMES], columns=columns)
    new = new_group_coefficients(fit, treatment, groups, rng)
    p = rates(new["alpha"], new["beta"])
    without = rng.binomial(trials, p["rate_without"].values).sum(axis=-1)
    with_ = rng.binomial(trials, p["rate_with"].values).sum(axis=-1)
    totals = {"successes_without": without, "successes_with": with_, "difference": with_ - without}
    p_helps = float((totals["difference"] > 0).mean())
    source = "new groups from population" if fit.pooling == "partial" else "all groups"
    return pd.DataFrame([{"model": fit.pooling, "quantity": q, "groups": groups, "trials": trials,
                          **summarise(values, prob), "p_helps": p_helps, "source": source}
                         for q, values in totals.items()], columns=columns)


def decide(fit: Fit, *, treatment: str | None = None, trials: int = 50, groups: int = 100, prob: float = PROB,
           seed: int | None = None) -> Decision:
    """Turn a fit into decisions on the probability scale: the treatment's effect for a typical
    group, each observed group and a new group, and the successes ``groups`` new groups with
    ``trials`` trials each should expect without and with it.

    Intervals are central (equal-tailed) ``prob`` intervals, as ArviZ reports them. New groups and
    binomial outcomes are simulated with ``seed``, so the same call gives the same numbers.
    """
    treatment = check_treatment(fit, treatment)
    for name, value in (("trials", trials), ("groups", groups)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise PoolwiseError(f"{name} must be a whole number >= 1, got {value!r}")
    if not 0 < prob < 1:
        raise PoolwiseError(f"prob must be between 0 and 1 (e.g. 0.89), got {prob!r}")
    rng = np.random.default_rng(seed)
    factor = fit.spec.group or "group"
    if fit.pooling == "none":
        typical = new = None
        typical_source = new_source = "undefined"
    else:
        typical = rate_draws(fit, treatment=treatment, scope="typical")
        new = rate_draws(fit, treatment=treatment, scope="new", seed=rng)
        typical_source = "population" if fit.pooling == "partial" else "all groups"
        new_source = "new group from population" if fit.pooling == "partial" else "all groups"
    per_group, flagged = _per_group(fit, treatment, prob)
    notes = _notes(fit.pooling, treatment, factor, flagged)
    return Decision(
        pooling=fit.pooling, treatment=treatment, factor=factor, successes=fit.spec.successes, trials=int(trials),
        groups=int(groups), prob=prob,
        typical=pd.DataFrame(_rows(fit.pooling, "typical", typical, prob, dict.fromkeys(QUANTITIES, typical_source)),
                             columns=TABLE_COLUMNS),
        per_group=per_group,
        new_group=pd.DataFrame(_rows(fit.pooling, "new", new, prob, dict.fromkeys(QUANTITIES, new_source)),
                               columns=TABLE_COLUMNS),
        expected=_expected(fit, treatment, int(trials), int(groups), prob, rng),
        notes=notes,
    )


def _notes(pooling: str, treatment: str, factor: str, flagged: dict[str, list[str]]) -> list[str]:
    notes = []
    never_without, never_with = flagged.get("sum_only", []), flagged.get("prior_only", [])
    where = {"partial": "borrowed from the population", "none": "the prior's, not data"}.get(pooling)
    if never_without:
        notes.append(f"{factor} {', '.join(never_without)} never ran without {treatment}: rate_without and the "
                     f"difference there are {where}")
    if never_with:
        notes.append(f"{factor} {', '.join(never_with)} never ran with {treatment}: rate_with and the difference "
                     f"there are {where}")
    return notes


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _points(value: float) -> str:
    return f"{100 * value:+.0f}"


def _rate_sentence(table: pd.DataFrame, prob: float) -> tuple[str, str]:
    """('from 22% to 33%', 'difference +10 points, 89% interval +2 to +19; P(helps) = 0.97')."""
    rows = table.set_index("quantity")
    diff = rows.loc["difference"]
    change = f"from {_pct(rows.loc['rate_without', 'mean'])} to {_pct(rows.loc['rate_with', 'mean'])}"
    detail = (f"difference {_points(diff['mean'])} points, {prob:.0%} interval {_points(diff['lower'])} to "
              f"{_points(diff['upper'])}; P(helps) = {diff['p_helps']:.2f}")
    return change, detail


def verdict(decision: Decision) -> str:
    """E.g. 'yogaStretch raises a typical gymID's rate from 22% to 33% (difference +10 points, 89%
    interval +2 to +19; P(helps) = 0.97). For a new gymID: ... 100 new gymIDs × 50 trials: ...'."""
    d, group, treatment = decision, decision.factor, decision.treatment
    if d.pooling == "none":
        diff = d.per_group[d.per_group["quantity"] == "difference"]
        informed = diff[diff["source"] == "data"]
        likely = informed[informed["p_helps"] > 0.9]["group"].tolist()
        text = (f"No pooling estimates each {group} on its own and has no population, so it says nothing about a "
                f"typical or new {group}. {treatment} helps with P > 0.9 in {len(likely)} of the {len(informed)} "
                f"{group}s whose data inform the difference ({', '.join(likely) or 'none'}).")
        return " ".join([text, *(note + "." for note in d.notes)])
    change, detail = _rate_sentence(d.typical, d.prob)
    direction = "raises" if d.typical.set_index("quantity").loc["difference", "mean"] >= 0 else "lowers"
    if d.pooling == "complete":
        sentences = [f"Complete pooling (one rate for every {group}): {treatment} {direction} the rate {change} "
                     f"({detail}). It assumes {group}s do not differ, so a new {group} gets the same answer."]
    else:
        new_change, new_detail = _rate_sentence(d.new_group, d.prob)
        sentences = [f"{treatment} {direction} a typical {group}'s rate {change} ({detail}).",
                     f"For a new {group}: {new_change} ({new_detail})."]
    rows = d.expected.set_index("quantity")
    without, with_, diff = rows.loc["successes_without"], rows.loc["successes_with"], rows.loc["difference"]
    sentences.append(
        f"{d.groups} new {group}s × {d.trials} trials: {without['mean']:,.0f} {d.successes} without "
        f"({without['lower']:,.0f} to {without['upper']:,.0f}) and {with_['mean']:,.0f} with "
        f"({with_['lower']:,.0f} to {with_['upper']:,.0f}); difference {diff['mean']:+,.0f} "
        f"({diff['lower']:+,.0f} to {diff['upper']:+,.0f}), P(more) = {diff['p_helps']:.2f}.")
    sentences += [note + "." for note in d.notes]
    return " ".join(sentences)
