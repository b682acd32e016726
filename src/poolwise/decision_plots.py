"""Figures for decisions: compute a tidy table, then draw it (matplotlib is imported only to draw).

- ``rate_density_table`` / ``plot_rate_densities``: the posterior densities of the rates without
  and with the treatment, overlaid, and the density of their difference shaded where it is positive
  (that shaded area is P(helps)).
- ``difference_forest_table`` / ``plot_difference_forest``: the difference per observed group, with
  the typical and a new group below; groups whose difference is not informed by their own data are
  drawn hollow.
"""

import numpy as np
import pandas as pd

from poolwise.decisions import Decision, check_treatment, rate_draws
from poolwise.families import family as find_family
from poolwise.pooling import pooling
from poolwise.results import Fit

GRID = 256
COLOURS = {"rate_without": "#4c72b0", "rate_with": "#dd8452", "difference": "#55a868"}


def rate_density_table(
    fit: Fit, *, treatment: str | None = None, scope: str = "typical", seed: int | None = None
) -> pd.DataFrame:
    """Kernel density estimates (ArviZ's ``kde``) of rate_without, rate_with and difference for the
    typical or a new group: columns quantity, label, x, density, positive (x > 0), p_helps."""
    import arviz as az

    treatment = check_treatment(fit, treatment)
    draws = rate_draws(fit, treatment=treatment, scope=scope, seed=seed)
    factor = fit.spec.group or "group"
    who = f"{'typical' if scope == 'typical' else 'new'} {factor}"
    labels = {
        "rate_without": f"rate without {treatment}",
        "rate_with": f"rate with {treatment}",
        "difference": "difference (with − without)",
    }
    p_helps = float((draws["difference"] > 0).mean())
    frames = []
    for quantity, label in labels.items():
        grid, density, _ = az.kde(np.asarray(draws[quantity]).reshape(-1), grid_len=GRID)
        frames.append(
            pd.DataFrame(
                {
                    "quantity": quantity,
                    "label": label,
                    "x": grid,
                    "density": density,
                    "positive": grid > 0,
                    "p_helps": p_helps,
                    "scope": who,
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    table.attrs["scale"] = find_family(fit.spec.family).scale
    return table


def plot_rate_densities(table: pd.DataFrame, *, ax=None):
    """Draw ``rate_density_table``: the two rates as lines, the difference dashed and shaded where
    positive, with P(helps) in the legend. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
    for quantity, part in table.groupby("quantity", sort=False):
        colour = COLOURS[quantity]
        if quantity == "difference":
            ax.plot(part["x"], part["density"], color=colour, linestyle="--", label=part["label"].iloc[0])
            ax.fill_between(
                part["x"],
                part["density"],
                where=part["positive"],
                color=colour,
                alpha=0.35,
                label=f"difference > 0: P(helps) = {part['p_helps'].iloc[0]:.2f}",
            )
        else:
            ax.plot(part["x"], part["density"], color=colour, label=part["label"].iloc[0])
            ax.fill_between(part["x"], part["density"], color=colour, alpha=0.12)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel(f"rate ({table.attrs.get('scale', 'probability')} scale)")
    ax.set_ylabel("posterior density")
    ax.set_ylim(bottom=0)
    ax.set_title(f"A {table['scope'].iloc[0]}: rates and their difference")
    ax.legend(frameon=False, fontsize="small")
    return fig


def difference_forest_table(decision: Decision) -> pd.DataFrame:
    """The difference (rate with − without) per observed group, then the typical and a new group:
    columns label, group, kind (observed, typical, new), mean, lower, upper, p_helps, source,
    informed (False where the group's own data cannot inform the difference)."""
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
    table = table.assign(
        label=labels,
        informed=table["source"] == "data",
        treatment=decision.treatment,
        prob=decision.prob,
        model=decision.pooling,
    )
    return table[
        [
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
        ]
    ].reset_index(drop=True)


def plot_difference_forest(table: pd.DataFrame, *, ax=None):
    """Draw ``difference_forest_table`` top to bottom: filled dots for groups informed by their own
    data, hollow for borrowed (or prior-only) ones, squares for the typical and new group."""
    import matplotlib.pyplot as plt

    table = table.dropna(subset=["mean"])
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 0.35 * len(table) + 1.2))
    y = np.arange(len(table))[::-1]
    for row, yy in zip(table.itertuples(index=False), y):
        colour = "black" if row.kind == "observed" else COLOURS["difference"]
        ax.plot([row.lower, row.upper], [yy, yy], color=colour, linewidth=1.5 if row.kind == "observed" else 2.5)
        marker = "o" if row.kind == "observed" else "s"
        face = colour if (row.informed or row.kind != "observed") else "white"
        ax.plot(row.mean, yy, marker=marker, markerfacecolor=face, markeredgecolor=colour, color=colour)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(y, table["label"])
    first = table.iloc[0]
    ax.set_xlabel(f"rate with − without {first['treatment']} ({first['prob']:.0%} interval)")
    ax.set_title(f"{pooling(first['model']).label}: hollow = not informed by the group's own data")
    return fig
