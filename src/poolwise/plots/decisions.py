"""Figures of a decision: the mean response without and with the treatment, and their difference.

- ``rate_density_table`` / ``rate_densities``: the posterior densities of the mean response
  without and with the treatment for a typical and a new group, overlaid, and the density of
  their difference shaded where it is positive (that shaded area is P(helps)).
- ``difference_forest_table`` / ``difference_forest``: the difference per observed group, with the
  typical and a new group below; groups whose own data cannot inform the difference are hollow.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from poolwise.comparison import Study
from poolwise.decisions import Decision, check_treatment, measure, rate_draws, unit
from poolwise.errors import PoolwiseError
from poolwise.families import family as find_family
from poolwise.plots.style import DIFFERENCE, RATE_COLORS, model_colors, model_label, new_figure
from poolwise.results import Fit

GRID = 256
DENSITY_COLUMNS = ["scope", "who", "quantity", "label", "x", "density", "positive", "p_helps", "color"]
FOREST_COLUMNS = [
    "label",
    "group",
    "kind",
    "mean",
    "lower",
    "upper",
    "p_helps",
    "source",
    "informed",
    "treatment",
    "prob",
    "model",
    "color",
]


def decision_fit(source: Study | Fit) -> Fit:
    """The fit a decision speaks about: ``source`` itself, or a Study's partial pooling fit (else
    its best model by LOO).

    Parameters
    ----------
    source : Study or Fit
        A comparison of models, or one fit.

    Returns
    -------
    Fit
        The fit whose decision the report and the decision figures show.

    Examples
    --------
    >>> decision_fit(study).pooling  # doctest: +SKIP
    'partial'
    """
    if isinstance(source, Fit):
        return source
    return source.fits["partial" if "partial" in source.fits else source.table.index[0]]


def rate_density_table(
    fit: Fit,
    *,
    treatment: str | None = None,
    scopes: str | Sequence[str] = ("typical", "new"),
    seed: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Kernel density estimates of the mean response without and with the treatment and of their
    difference, for a typical group and a new one.

    Parameters
    ----------
    fit : Fit
        A partial or complete pooling fit (no pooling has no typical or new group).
    treatment : str, optional
        The treatment term (default: the formula's first varying slope).
    scopes : str or sequence of str
        ``"typical"``, ``"new"`` or both (one panel each when drawn).
    seed : int, optional
        Seed of the simulated new group.
    labels : mapping, optional
        Overrides of the axis label (``"x"``) and of each quantity's legend label.

    Returns
    -------
    pandas.DataFrame
        Columns scope, who (e.g. "typical gymID"), quantity (rate_without, rate_with, difference),
        label, x, density (ArviZ's ``kde`` on 256 points), positive (x > 0), p_helps (P(difference
        > 0)), color. ``attrs["labels"]`` holds the x axis label.

    Raises
    ------
    PoolwiseError
        An unknown treatment or scope, or a no pooling fit.

    Examples
    --------
    >>> table = rate_density_table(study.fits["partial"], seed=1)  # doctest: +SKIP
    >>> rate_densities(table)  # doctest: +SKIP
    """
    import arviz as az

    treatment = check_treatment(fit, treatment)
    scopes = [scopes] if isinstance(scopes, str) else list(scopes)
    family = find_family(fit.spec.family)
    factor = fit.spec.group or "group"
    names = {
        "rate_without": f"without {treatment}",
        "rate_with": f"with {treatment}",
        "difference": "difference (with − without)",
        "x": f"{measure(family.name, fit.spec.outcome, unit(fit))} ({family.scale} scale)",
        **(labels or {}),
    }
    frames = []
    for scope in scopes:
        draws = rate_draws(fit, treatment=treatment, scope=scope, seed=seed)
        p_helps = float((draws["difference"] > 0).mean())
        for quantity, colour in RATE_COLORS.items():
            grid, density, _ = az.kde(np.asarray(draws[quantity]).reshape(-1), grid_len=GRID)
            frames.append(
                pd.DataFrame(
                    {
                        "scope": scope,
                        "who": f"{scope} {factor}",
                        "quantity": quantity,
                        "label": names[quantity],
                        "x": grid,
                        "density": density,
                        "positive": grid > 0,
                        "p_helps": p_helps,
                        "color": colour,
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)[DENSITY_COLUMNS]
    table.attrs["labels"] = {"x": names["x"], "treatment": treatment}
    return table


def rate_densities(table: pd.DataFrame, *, ax=None, title: str | None = None):
    """Draw ``rate_density_table``: per scope, the two mean responses as filled lines and their
    difference dashed, shaded where positive, with P(helps) in the legend.

    Parameters
    ----------
    table : pandas.DataFrame
        From ``rate_density_table``.
    ax : matplotlib Axes or array of Axes, optional
        One Axes per scope to draw onto; default: a new figure.
    title : str, optional
        The figure's title (default: what it shows).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    PoolwiseError
        ``ax`` holds another number of Axes than the table has scopes.

    Examples
    --------
    >>> rate_densities(rate_density_table(study.fits["partial"], scopes="typical"))  # doctest: +SKIP
    """
    scopes = list(pd.unique(table["scope"]))
    figure, axes = new_figure(ax, size=(5.5 * len(scopes) + 0.5, 4.2), ncols=len(scopes), sharey=True)
    for panel, scope in zip(axes.flat, scopes):
        rows = table[table["scope"] == scope]
        for quantity, part in rows.groupby("quantity", sort=False):
            colour = part["color"].iloc[0]
            if quantity == "difference":
                panel.plot(part["x"], part["density"], color=colour, ls="--", label=part["label"].iloc[0])
                panel.fill_between(
                    part["x"],
                    part["density"],
                    where=part["positive"],
                    color=colour,
                    alpha=0.35,
                    lw=0,
                    label=f"difference > 0: P(helps) = {part['p_helps'].iloc[0]:.2f}",
                )
            else:
                panel.plot(part["x"], part["density"], color=colour, label=part["label"].iloc[0])
                panel.fill_between(part["x"], part["density"], color=colour, alpha=0.12, lw=0)
        panel.axvline(0, color="0.6", lw=0.8)
        panel.set_xlabel(table.attrs.get("labels", {}).get("x", "mean response"))
        panel.set_ylim(bottom=0)
        panel.set_title(f"A {rows['who'].iloc[0]}", fontsize="medium")
        panel.spines[["top", "right"]].set_visible(False)
        panel.legend(frameon=False, fontsize="small")
    axes.flat[0].set_ylabel("Posterior density")
    if ax is None:
        figure.suptitle(title or "The mean response without and with the treatment, and their difference")
    return figure


def difference_forest_table(decision: Decision, *, colors: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The difference (with − without) per observed group, then for the typical and a new group.

    Parameters
    ----------
    decision : Decision
        From ``poolwise.decide``.
    colors : mapping, optional
        Model name -> colour of the observed groups (default: the model's colour of every figure).

    Returns
    -------
    pandas.DataFrame
        Columns label, group, kind (observed, typical, new), mean, lower, upper, p_helps, source,
        informed (False where the group's own data cannot inform the difference), treatment, prob,
        model, color. ``attrs["labels"]`` holds the x axis label.

    Examples
    --------
    >>> difference_forest(difference_forest_table(pw.decide(study.fits["partial"])))  # doctest: +SKIP
    """
    parts = [
        decision.per_group.assign(kind="observed"),
        decision.typical.assign(kind="typical"),
        decision.new_group.assign(kind="new"),
    ]
    table = pd.concat(parts, ignore_index=True).query("quantity == 'difference'")
    names = {
        "observed": f"{decision.factor} ",
        "typical": f"typical {decision.factor}",
        "new": f"new {decision.factor}",
    }
    categorical = decision.arms != ["1"]
    labels = [
        names[kind] + (group if kind == "observed" else "") + (f" ({arm})" if categorical else "")
        for kind, group, arm in zip(table["kind"], table["group"], table["arm"])
    ]
    colour = model_colors([decision.pooling], [decision.pooling], colors)[decision.pooling]
    table = table.assign(
        label=labels,
        informed=table["source"] == "data",
        treatment=decision.treatment,
        prob=decision.prob,
        model=decision.pooling,
        color=np.where(table["kind"] == "observed", colour, DIFFERENCE),
    )
    table = table[FOREST_COLUMNS].reset_index(drop=True)
    what = measure(decision.family, decision.outcome, decision.unit)
    table.attrs["labels"] = {
        "x": f"{what} with − without {decision.treatment} (mean and {decision.prob:.0%} interval)",
        "model": model_label(decision.pooling),
    }
    return table


def difference_forest(table: pd.DataFrame, *, ax=None, title: str | None = None):
    """Draw ``difference_forest_table`` top to bottom: dots for the observed groups (hollow where
    their own data do not inform the difference), squares for the typical and the new group.

    Parameters
    ----------
    table : pandas.DataFrame
        From ``difference_forest_table``.
    ax : matplotlib Axes, optional
        The Axes to draw onto; default: a new figure.
    title : str, optional
        The title (default: the model and what hollow means).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    PoolwiseError
        The table has no defined difference (no pooling has no typical or new group, but its
        observed groups are drawn).

    Examples
    --------
    >>> difference_forest(difference_forest_table(pw.decide(study.fits["partial"])))  # doctest: +SKIP
    """
    found = table.attrs.get("labels", {})
    table = table.dropna(subset=["mean"])
    if table.empty:
        raise PoolwiseError("the decision has no defined difference to draw; decide with a fitted model first")
    figure, axes = new_figure(ax, size=(7.5, 0.34 * len(table) + 1.6))
    panel = axes.flat[0]
    y = np.arange(len(table))[::-1]
    for row, row_y in zip(table.itertuples(index=False), y):
        observed = row.kind == "observed"
        panel.plot([row.lower, row.upper], [row_y, row_y], color=row.color, lw=1.5 if observed else 2.5)
        panel.plot(
            row.mean,
            row_y,
            marker="o" if observed else "s",
            ms=6,
            mfc=row.color if (row.informed or not observed) else "white",
            mec=row.color,
            ls="",
        )
    summaries = int((table["kind"] != "observed").sum())
    if summaries and summaries < len(table):
        panel.axhline(summaries - 0.5, color="0.85", lw=0.8)
    panel.axvline(0, color="0.6", lw=0.8)
    panel.set_yticks(y, table["label"])
    panel.set_ylim(-0.7, len(table) - 0.3)
    panel.set_xlabel(found.get("x", "difference"))
    panel.spines[["top", "right"]].set_visible(False)
    panel.grid(axis="y", color="0.93", lw=0.8)
    panel.set_title(title or f"{found.get('model', '')}: hollow = not informed by the group's own data".lstrip(": "))
    return figure
