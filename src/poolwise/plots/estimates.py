"""Figures of the per-group estimates: forest overlay, shrinkage arrows, the response curve
(``logistic``: the inverse link, logistic for logit models, exponential for log, a line for identity).

All three are drawn with matplotlib from ``poolwise.estimates`` tables. arviz_plots'
``plot_forest`` overlays models well, but stacks alpha and beta on one shared x axis, cannot draw
onto a given Axes, and has no population reference band, so the forest is drawn here.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from poolwise.errors import PoolwiseError
from poolwise.estimates import (
    arms,
    aux_draws,
    coefficients,
    group_draws,
    groups,
    interval_prob,
    population_draws,
    reference_level,
    summarise,
)
from poolwise.families import family as find_family
from poolwise.plots.style import (
    MODEL_COLORS,
    TREATED,
    UNTREATED,
    as_fits,
    labels_for,
    model_colors,
    model_label,
    new_figure,
    pick_fit,
)
from poolwise.results import Fit


def _labels(fit: Fit, labels: Mapping[str, str] | None, prob: float) -> dict[str, str]:
    found = labels_for(fit.spec, overrides=None)
    scale = {"logit": "logit rate", "log": "log rate", "identity": f"mean {found['successes'].lower()}"}[found["link"]]
    found["alpha"] = f"Intercept α: {scale} {found['untreated'].lower()}"
    found["beta"] = f"{found['treatment']} slope β ({found['link']} scale)"
    found["interval"] = f"{prob:.0%} interval"
    found.update(labels or {})
    return found


def forest_table(
    fits,
    *,
    quantities: Sequence[str] | None = None,
    prob: float | None = None,
    colors: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per-group intercepts and slopes of one or several fits, with partial pooling's population mean.

    Parameters
    ----------
    fits : Study, Fit, mapping or sequence of Fit
        The models to overlay.
    quantities : sequence of str, optional
        Default: alpha and beta, or alpha and ``beta[level]`` per level of a categorical treatment.
    prob : float, optional
        The interval probability (default: ArviZ's ``rcParams["stats.ci_prob"]``, 0.89).
    colors : mapping, optional
        Model name -> colour (default: no pooling grey, partial pooling purple, complete pooling orange).
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    pandas.DataFrame
        Columns model, label, color, kind (group, or population for each partial-pooling fit's
        population mean, group ``"population"``), group, quantity, mean, sd, lower, upper; groups in
        their natural order.

    Examples
    --------
    >>> forest(forest_table([study.fits["none"], study.fits["partial"]]))  # doctest: +SKIP
    """
    fits = as_fits(fits)
    prob = interval_prob(prob)
    colours = model_colors(list(fits), [fit.pooling for fit in fits.values()], colors)
    levels = arms(next(iter(fits.values())))
    if quantities is None:
        quantities = ["alpha", *([f"beta[{arm}]" for arm in levels] if levels else ["beta"])]
    parts = []
    for name, fit in fits.items():
        table = coefficients(fit, prob=prob)
        table = table[table["quantity"].isin(quantities)].assign(kind="group")
        if fit.pooling == "partial":
            rows = []
            for quantity in quantities:
                arm = quantity[5:-1] if quantity.startswith("beta[") else None
                draws = population_draws(fit, arm=arm)["alpha" if quantity == "alpha" else "beta"]
                rows.append(
                    {"group": "population", "quantity": quantity, "kind": "population", **summarise(draws, prob)}
                )
            table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
        parts.append(table.assign(model=name, label=model_label(name), color=colours[name]))
    table = pd.concat(parts, ignore_index=True)
    table = table[["model", "label", "color", "kind", "group", "quantity", "mean", "sd", "lower", "upper"]]
    table.attrs["labels"] = _labels(next(iter(fits.values())), labels, prob)
    return table


def forest(table, *, ax=None, title: str | None = None, labels: Mapping[str, str] | None = None):
    """Draw ``forest_table``: one panel per quantity side by side, models overlaid within each group's row.

    Partial pooling's population mean is a dashed line in its interval band.

    Parameters
    ----------
    table : pandas.DataFrame or fits
        From ``forest_table``, or what it takes.
    ax : matplotlib Axes or array of Axes, optional
        One Axes per quantity (two for alpha and beta); default: a new figure.
    title : str, optional
        The figure's title.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    PoolwiseError
        ``ax`` holds another number of Axes than there are quantities.

    Examples
    --------
    >>> forest(forest_table(study)).savefig("forest.png")  # doctest: +SKIP
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    table = table if isinstance(table, pd.DataFrame) else forest_table(table, labels=labels)
    found = {**table.attrs.get("labels", {}), **(labels or {})}
    quantities = list(pd.unique(table["quantity"]))
    groups = list(pd.unique(table.loc[table["kind"] == "group", "group"]))
    models = list(pd.unique(table["model"]))
    figure, axes = new_figure(
        ax, size=(5 * max(2, len(quantities)), 1.8 + 0.42 * len(groups)), ncols=len(quantities), sharey=True
    )
    y = {group: len(groups) - 1 - i for i, group in enumerate(groups)}
    offsets = np.linspace(0.2, -0.2, len(models)) if len(models) > 1 else [0.0]
    for panel, quantity in zip(axes.flat, quantities):
        rows = table[table["quantity"] == quantity]
        for model, offset in zip(models, offsets):
            own = rows[rows["model"] == model]
            colour = own["color"].iloc[0]
            for _, pop in own[own["kind"] == "population"].iterrows():
                panel.axvspan(pop["lower"], pop["upper"], color=colour, alpha=0.12, lw=0, zorder=0)
                panel.axvline(pop["mean"], color=colour, ls="--", lw=1.2, zorder=1)
            own = own[own["kind"] == "group"]
            ys = own["group"].map(y).to_numpy() + offset
            panel.errorbar(
                own["mean"],
                ys,
                xerr=[own["mean"] - own["lower"], own["upper"] - own["mean"]],
                fmt="o",
                ms=4.5,
                lw=1.6,
                color=colour,
                zorder=2,
            )
        if quantity.startswith("beta"):
            panel.axvline(0, color="0.75", lw=0.8, zorder=0)
        level = quantity[5:-1] if quantity.startswith("beta[") else None
        panel.set_xlabel(
            found.get(
                quantity, f"{found.get('treatment', 'Treatment')} {level} slope β ({found.get('link', 'link')} scale)"
            )
        )
        panel.set_title({"alpha": "Intercepts", "beta": "Slopes"}.get(quantity, f"Slopes: {level}"), fontsize="medium")
        panel.spines[["top", "right"]].set_visible(False)
        panel.grid(axis="y", color="0.93", lw=0.8)
    first = axes.flat[0]
    first.set_yticks(list(y.values()), [str(g) for g in y])
    first.set_ylim(-0.7, len(groups) - 0.3)
    first.set_ylabel(found.get("group", "Group"))
    handles = []
    for model in models:
        own = table[table["model"] == model]
        handles.append(
            Line2D(
                [],
                [],
                color=own["color"].iloc[0],
                marker="o",
                lw=1.6,
                label=f"{own['label'].iloc[0]}: mean and {found.get('interval', 'interval')}",
            )
        )
        if (own["kind"] == "population").any():
            handles.append(
                Patch(
                    facecolor=own["color"].iloc[0],
                    alpha=0.25,
                    edgecolor=own["color"].iloc[0],
                    ls="--",
                    label=f"{own['label'].iloc[0]}: population mean and interval",
                )
            )
    if ax is None:
        figure.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
        figure.suptitle(title or f"Per-{found.get('group', 'group').lower()} intercepts and slopes")
    else:
        axes.flat[-1].legend(handles=handles, fontsize="small", frameon=False)
    return figure


def shrinkage_table(fits, *, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Each group's mean response under no pooling and under partial pooling, per treatment condition.

    Parameters
    ----------
    fits : Study or mapping
        With the ``"none"`` and ``"partial"`` fits.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    pandas.DataFrame
        Columns group, condition, treated, trials (what the group saw in that condition: trials,
        exposure or rows; 0 means its no-pooling estimate there is the prior alone), successes,
        no_pooling, partial, population (the typical group's mean response).

    Raises
    ------
    PoolwiseError
        The no or partial pooling fit is missing.

    Examples
    --------
    >>> shrinkage(shrinkage_table(study))  # doctest: +SKIP
    """
    fits = as_fits(fits)
    missing = [name for name in ("none", "partial") if name not in fits]
    if missing:
        raise PoolwiseError(
            f"the shrinkage plot needs the 'none' and 'partial' fits; {missing[0]!r} is missing (pass a Study)"
        )
    none, partial = fits["none"], fits["partial"]
    spec, data = partial.spec, partial.data
    found = labels_for(spec, overrides=labels)
    levels = arms(partial)
    column = next(
        (
            name
            for name in spec.variables
            if spec.treatment
            and name in spec.treatment
            and name in data.columns
            and name not in (spec.group, spec.outcome, spec.trials, spec.exposure)
        ),
        None,
    )
    treatment = data[column] if column is not None else None
    # (quantity, treated, rows in that condition, title): the reference and every other level.
    if treatment is None:
        conditions = [("rate_without", False, slice(None), found["untreated"])]
    elif levels:
        text = treatment.astype(str)
        reference = reference_level(partial)
        conditions = [("rate_without", False, text == reference, f"{found['treatment']} {reference}")]
        conditions += [(f"rate_with[{arm}]", True, text == arm, f"{found['treatment']} {arm}") for arm in levels]
    else:
        conditions = [
            ("rate_without", False, treatment == 0, found["untreated"]),
            ("rate_with", True, treatment != 0, found["treated"]),
        ]
    family, aux = find_family(spec.family), aux_draws(partial)
    trials = spec.size or "rows"
    data = data.assign(rows=1) if spec.size is None else data
    means = {
        name: coefficients(fit).pivot(index="group", columns="quantity", values="mean")
        for name, fit in (("none", none), ("partial", partial))
    }
    rows = []
    for quantity, treated, in_condition, title in conditions:
        sums = data[in_condition].groupby(data[spec.group].astype(str))[[trials, spec.outcome]].sum()
        arm = quantity[10:-1] if quantity.startswith("rate_with[") else None
        population = population_draws(partial, arm=arm)
        typical = float(family.mean(population["alpha"] + (population["beta"] if treated else 0), aux).mean())
        for group in groups(partial):
            rows.append(
                {
                    "group": group,
                    "condition": title,
                    "treated": treated,
                    "trials": float(sums[trials].get(group, 0)),
                    "successes": float(sums[spec.outcome].get(group, 0)),
                    "no_pooling": float(means["none"].loc[group, quantity]),
                    "partial": float(means["partial"].loc[group, quantity]),
                    "population": typical,
                }
            )
    table = pd.DataFrame(rows)
    table.attrs["labels"] = found
    return table


def shrinkage(table, *, ax=None, title: str | None = None, labels: Mapping[str, str] | None = None):
    """Draw ``shrinkage_table``: per condition, an arrow from each group's no-pooling to its partial-pooling estimate.

    No-pooling circles have an area by the group's trials; groups with no trials in a condition are
    hollow (their no-pooling estimate is the prior's); the dashed line is the population.

    Parameters
    ----------
    table : pandas.DataFrame or Study
        From ``shrinkage_table``, or the Study it takes.
    ax : matplotlib Axes or array of Axes, optional
        One Axes per condition; default: a new figure.
    title : str, optional
        The figure's title.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    PoolwiseError
        ``ax`` holds another number of Axes than there are conditions.

    Examples
    --------
    >>> shrinkage(shrinkage_table(study))  # doctest: +SKIP
    """
    from matplotlib.lines import Line2D

    table = table if isinstance(table, pd.DataFrame) else shrinkage_table(table, labels=labels)
    found = {**table.attrs.get("labels", {}), **(labels or {})}
    conditions = list(pd.unique(table["condition"]))
    groups = list(pd.unique(table["group"]))
    y = {group: len(groups) - 1 - i for i, group in enumerate(groups)}
    figure, axes = new_figure(
        ax, size=(5.2 * len(conditions), 1.8 + 0.42 * len(groups)), ncols=len(conditions), sharex=True, sharey=True
    )
    grey, purple = MODEL_COLORS["none"], MODEL_COLORS["partial"]
    scale = 260 / max(1, table["trials"].max())
    # Groups without data in a condition sit at their prior mean, which on a log scale can be far
    # off: the axis spans what data inform, and such points are drawn at its edge.
    informed = np.r_[table.loc[table["trials"] > 0, "no_pooling"], table["partial"], table["population"]]
    low, high = float(informed.min()), float(informed.max())
    pad = 0.05 * ((high - low) or 1.0)
    low, high = low - pad, high + pad
    table = table.assign(no_pooling=table["no_pooling"].clip(low, high))
    span = float(np.ptp(table[["no_pooling", "partial"]].to_numpy())) or 1.0
    for panel, condition in zip(axes.flat, conditions):
        rows = table[table["condition"] == condition]
        ys = rows["group"].map(y).to_numpy()
        seen = rows["trials"].to_numpy() > 0
        panel.axvline(rows["population"].iloc[0], color=purple, ls="--", lw=1.2, zorder=0)
        for start, end, row_y, data_seen in zip(rows["no_pooling"], rows["partial"], ys, seen):
            # A head on an arrow shorter than the head would only smudge the markers: a plain line then.
            style = "-|>" if abs(end - start) > 0.045 * span else "-"
            panel.annotate(
                "",
                xy=(end, row_y),
                xytext=(start, row_y),
                arrowprops={
                    "arrowstyle": style,
                    "color": purple,
                    "lw": 1.2,
                    "ls": "-" if data_seen else ":",
                    "shrinkA": 0,
                    "shrinkB": 4,
                },
            )
        sizes = 15 + scale * rows["trials"].to_numpy()
        panel.scatter(rows["no_pooling"][seen], ys[seen], s=sizes[seen], color=grey, alpha=0.75, zorder=2)
        panel.scatter(rows["no_pooling"][~seen], ys[~seen], s=40, facecolor="white", edgecolor=grey, zorder=2)
        panel.scatter(rows["partial"], ys, s=22, marker="D", color=purple, zorder=3)
        panel.set_title(condition, fontsize="medium")
        panel.set_xlim(low, high)
        panel.set_xlabel(found["rate"])
        panel.spines[["top", "right"]].set_visible(False)
        panel.grid(axis="y", color="0.93", lw=0.8)
    first = axes.flat[0]
    first.set_yticks(list(y.values()), list(y))
    first.set_ylim(-0.7, len(groups) - 0.3)
    first.set_ylabel(found["group"])
    handles = [
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=9,
            color=grey,
            alpha=0.75,
            label=f"No pooling (area ∝ {found['trials'].lower()})",
        ),
        Line2D([], [], ls="", marker="D", ms=5, color=purple, label="Partial pooling"),
        Line2D([], [], color=purple, ls="--", label=f"Population: typical {found['group'].lower()}"),
    ]
    if (table["trials"] == 0).any():
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                ms=7,
                mfc="white",
                color=grey,
                label="No data here: prior mean (at the edge if off the axis)",
            )
        )
    if ax is None:
        figure.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(len(handles), 2 if len(conditions) < 3 else 4),
            frameon=False,
        )
        measure = found["rate"].lower() if found.get("link") == "identity" else "rate"
        figure.suptitle(title or f"Each {found['group'].lower()}'s {measure}: no pooling → partial pooling")
    else:
        axes.flat[-1].legend(handles=handles, fontsize="small", frameon=False)
    return figure


def logistic_table(fit, *, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Each group's posterior mean linear predictor without and with the treatment, and its mean response.

    The mean response is the inverse link of the linear predictor (``expit(eta)`` for logit models).

    Parameters
    ----------
    fit : Fit, Study or mapping
        One fit, or several (the partial pooling fit is drawn).
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    pandas.DataFrame
        Columns model, group, condition, treated, eta, rate, color; ``attrs["family"]`` names the family.

    Raises
    ------
    PoolwiseError
        Several fits without a partial pooling fit among them.

    Examples
    --------
    >>> logistic(logistic_table(study.fits["partial"]))  # doctest: +SKIP
    """
    fit = pick_fit(fit)
    family = find_family(fit.spec.family)
    # An ordinal group sits on its expected-rating curve, drawn at the thresholds' posterior means.
    aux = {name: float(values.mean()) for name, values in aux_draws(fit).items()} if family.ordinal else {}
    inverse = (lambda eta: family.mean(eta, aux)) if family.ordinal else family.inverse
    draws = group_draws(fit)
    found = labels_for(fit.spec, overrides=labels)
    conditions = [(False, draws["alpha"])]
    if fit.spec.treatment:
        conditions.append((True, draws["alpha"] + draws["beta"]))
    rows = []
    for treated, eta in conditions:
        means = eta.mean(("chain", "draw"))
        for group, value in zip(means["group"].values, means.values):
            rows.append(
                {
                    "model": fit.pooling,
                    "group": str(group),
                    "condition": found["treated" if treated else "untreated"],
                    "treated": treated,
                    "eta": float(value),
                    "rate": float(inverse(value)),
                    "color": (TREATED if treated else UNTREATED)[1],
                }
            )
    table = pd.DataFrame(rows)
    table.attrs["labels"] = {**found, "model": model_label(fit.pooling)}
    table.attrs["family"] = fit.spec.family
    table.attrs["aux"] = aux
    return table


def logistic(table, *, ax=None, title: str | None = None, labels: Mapping[str, str] | None = None):
    """Draw ``logistic_table``: the inverse-link curve with each group's linear predictor marked on it.

    Logistic for logit models, exponential for log, a line for identity: a reader sees where every
    group sits.

    Parameters
    ----------
    table : pandas.DataFrame or fits
        From ``logistic_table``, or what it takes.
    ax : matplotlib Axes, optional
        The Axes to draw onto; default: a new figure.
    title : str, optional
        The title.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> logistic(logistic_table(study.fits["partial"]))  # doctest: +SKIP
    """
    table = table if isinstance(table, pd.DataFrame) else logistic_table(table, labels=labels)
    found = {**table.attrs.get("labels", {}), **(labels or {})}
    family = find_family(table.attrs.get("family") or "binomial")
    aux = table.attrs.get("aux") or {}
    inverse = (lambda eta: family.mean(eta, aux)) if family.ordinal else family.inverse
    figure, axes = new_figure(ax, size=(8.5, 5.2))
    panel = axes.flat[0]
    spread = float(np.ptp(table["eta"])) or 1.0
    bounded = family.link in ("logit", "probit", "cloglog")  # a curve from 0 to 1
    if bounded:
        low, high = min(table["eta"].min() - 1.5, -4.0), max(table["eta"].max() + 1.5, 4.0)
    else:
        low, high = table["eta"].min() - 0.3 * spread, table["eta"].max() + 0.3 * spread
    grid = np.linspace(low, high, 300)
    # Where the mean response also needs the family's own parameters, the curve is the lognormal's
    # median, or the count part's mean mu of zero-inflated and hurdle counts.
    rate, aside = found["rate"], ""
    if family.ordinal:
        aside = " at the thresholds' posterior means"
    elif family.own_mean:
        rate = found["rate"].replace("Mean", "Median", 1) if family.name == "lognormal" else "Count part's mean mu"
        aside = f" (the mean response also needs {', '.join(family.aux)})"
    curve = {
        "logit": "the logistic curve",
        "probit": "the normal CDF",
        "cloglog": "the inverse cloglog curve",
        "log": "the exponential curve",
        "identity": "the identity line",
    }[family.link]
    if family.ordinal:
        curve = "the expected-rating curve"
    panel.plot(
        grid,
        inverse(grid),
        color="0.3",
        lw=1.5,
        zorder=1,
        label=f"{rate} = {'expected rating' if family.ordinal else family.inverse_name} of the linear predictor{aside}",
    )
    rise = 1.0 if bounded and not family.ordinal else float(np.ptp(inverse(grid)))
    for (condition, colour), rows in table.groupby(["condition", "color"], sort=False):
        panel.scatter(
            rows["eta"],
            rows["rate"],
            color=colour,
            s=36,
            zorder=3,
            edgecolor="white",
            label=f"{condition}: {found['group'].lower()}'s posterior mean",
        )
        # Labels go into the empty side of the curve (untreated above-left, treated below-right),
        # spread apart vertically and tied to their points by thin leader lines.
        side = 1 if rows["treated"].iloc[0] else -1
        heights = _spread(rows["rate"].to_numpy(), gap=0.04 * rise, direction=-side)
        for (_, row), height in zip(rows.iterrows(), heights):
            panel.annotate(
                row["group"],
                (row["eta"], row["rate"]),
                xytext=(row["eta"] + 0.1 * (high - low) * side, height),
                ha="left" if side > 0 else "right",
                va="center",
                fontsize="small",
                color=colour,
                arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.5, "alpha": 0.6, "shrinkB": 3},
            )
    if bounded:
        for y in (inverse(-np.inf), inverse(np.inf)) if family.ordinal else (0, 1):
            panel.axhline(y, color="0.85", lw=0.8, zorder=0)
    panel.set_xlabel(f"Linear predictor α + β · {found['treatment'].lower()} ({family.link} scale)")
    panel.set_ylabel(rate)
    panel.spines[["top", "right"]].set_visible(False)
    panel.legend(loc="upper left", frameon=False)
    panel.set_title(
        title or f"Where each {found['group'].lower()} sits on {curve} ({found.get('model', '')})".replace(" ()", "")
    )
    return figure


def _spread(values: np.ndarray, *, gap: float, direction: int) -> np.ndarray:
    """Label heights near ``values`` but at least ``gap`` apart, pushed up (1) or down (-1)."""
    out = np.empty_like(values, dtype=float)
    last = -np.inf
    for i in np.argsort(direction * values):
        last = max(direction * values[i], last + gap)
        out[i] = direction * last
    return out
