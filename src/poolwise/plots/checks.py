"""Figures that check the models: the cumulative posterior predictive check, LOO-PIT calibration
and the LOO comparison.

Both are drawn with matplotlib: the ECDFs by ``Axes.ecdf``; the comparison by hand because
arviz_plots' ``plot_compare`` shows either elpd or its difference (not both) and makes its own
figure rather than drawing onto a given Axes.
"""

from collections.abc import Mapping

import numpy as np
import pandas as pd

from poolwise import adapter
from poolwise.comparison import PARETO_K, Study
from poolwise.errors import PoolwiseError
from poolwise.families import family as find_family
from poolwise.fitting import model_of
from poolwise.plots.style import as_fits, labels_for, model_colors, model_label, new_figure
from poolwise.results import Fit

SCALES = ("count", "rate")


def predictive_draws(fit: Fit, *, draws: int = 20, seed: int = 0) -> np.ndarray:
    """Posterior predictive data sets of the fitted outcome, simulated by Bambi.

    Picks ``draws`` posterior draws at random (seeded) and has Bambi simulate the response for them;
    a fit loaded from disk (``fit.model`` None) gets its model rebuilt without sampling.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    draws : int
        How many data sets.
    seed : int
        Seed of the picked draws and the simulation.

    Returns
    -------
    numpy.ndarray
        Shape (draws, rows).

    Examples
    --------
    >>> predictive_draws(study.fits["partial"], draws=5).shape  # doctest: +SKIP
    (5, 48)
    """
    model = model_of(fit)
    return adapter.predict_outcomes(model, fit.thinned(draws, seed), seed)


def ppc_table(
    fits,
    *,
    draws: int = 20,
    scale: str = "count",
    seed: int = 0,
    colors: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Observed and posterior predictive outcomes per data row, for every model.

    As they are (``"count"``) or per unit of each row's size (``"rate"``: k / n, events per unit of
    exposure; a gaussian value stays as it is).

    Parameters
    ----------
    fits : Study, Fit, mapping or sequence of Fit
        The models to check.
    draws : int
        Predictive data sets per model.
    scale : str
        ``"count"`` or ``"rate"``.
    seed : int
        Seed of the simulated data sets.
    colors : mapping, optional
        Model name -> colour.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    pandas.DataFrame
        Columns model, label, color, series ("observed" or "predicted"), draw (0 for observed), row,
        value: one observed series and ``draws`` predicted series per model.

    Raises
    ------
    PoolwiseError
        An unknown scale, or ``draws`` is not a whole number >= 1.

    Examples
    --------
    >>> ppc(ppc_table(study, scale="rate"))  # doctest: +SKIP
    """
    _check_scale(scale)
    if not isinstance(draws, (int, np.integer)) or draws < 1:
        raise PoolwiseError(f"draws must be a whole number >= 1, got {draws!r}")
    fits = as_fits(fits)
    colours = model_colors(list(fits), [fit.pooling for fit in fits.values()], colors)
    parts = []
    for name, fit in fits.items():
        trials = fit.data[fit.spec.size].to_numpy() if fit.spec.size else np.ones(len(fit.data))
        parts.append(
            predictive_table(
                fit.data[fit.spec.outcome].to_numpy(),
                predictive_draws(fit, draws=draws, seed=seed),
                trials,
                scale=scale,
                model=name,
                color=colours[name],
            )
        )
    table = pd.concat(parts, ignore_index=True)
    spec = next(iter(fits.values())).spec
    table.attrs.update(labels=labels_for(spec, overrides=labels), scale=scale, family=spec.family)
    return table


def predictive_table(
    observed: np.ndarray,
    predicted: np.ndarray,
    trials: np.ndarray,
    *,
    scale: str = "count",
    model: str = "partial",
    color: str | None = None,
) -> pd.DataFrame:
    """The tidy rows of ``ppc_table`` for one model, from arrays.

    Parameters
    ----------
    observed : numpy.ndarray
        Observed outcomes (rows,).
    predicted : numpy.ndarray
        Predicted outcomes (draws, rows).
    trials : numpy.ndarray
        Each row's size (rows,).
    scale : str
        ``"count"`` or ``"rate"`` (divided by ``trials``).
    model : str
        The model's name.
    color : str, optional
        Its colour (default: the pooling's).

    Returns
    -------
    pandas.DataFrame
        The columns of ``ppc_table``.

    Raises
    ------
    PoolwiseError
        An unknown scale.

    Examples
    --------
    >>> import numpy as np
    >>> table = predictive_table(np.array([1, 2]), np.array([[1, 1], [2, 2]]), np.array([4, 4]), scale="rate")
    >>> table["value"].tolist()
    [0.25, 0.5, 0.25, 0.25, 0.5, 0.5]
    """
    _check_scale(scale)
    series = np.vstack([np.asarray(observed), np.asarray(predicted)])
    if scale == "rate":
        series = series / np.asarray(trials)
    n_series, n_rows = series.shape
    table = pd.DataFrame(
        {
            "model": model,
            "label": model_label(model),
            "color": color or model_colors([model], [model])[model],
            "series": np.repeat(["observed"] + ["predicted"] * (n_series - 1), n_rows),
            "draw": np.repeat(np.r_[0, np.arange(n_series - 1)], n_rows),
            "row": np.tile(np.arange(n_rows), n_series),
            "value": series.reshape(-1),
        }
    )
    table.attrs["scale"] = scale
    return table


def ppc(table, *, ax=None, title: str | None = None, labels: Mapping[str, str] | None = None):
    """Draw ``ppc_table``: per model, the observed ECDF in black over the posterior predictive ECDFs.

    A model that fits has the black line inside the coloured bundle. Ordinal ratings are drawn as
    bars instead: the observed share of each rating, with each simulated data set's share as a dot.

    Parameters
    ----------
    table : pandas.DataFrame or fits
        From ``ppc_table``, or what it takes.
    ax : matplotlib Axes or array of Axes, optional
        One Axes per model; default: a new figure.
    title : str, optional
        The figure's title.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> ppc(ppc_table(study, draws=20))  # doctest: +SKIP
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    table = table if isinstance(table, pd.DataFrame) else ppc_table(table, labels=labels)
    found = {**table.attrs.get("labels", {}), **(labels or {})}
    models = list(pd.unique(table["model"]))
    figure, axes = new_figure(ax, size=(4.6 * len(models) + 0.4, 4.4), ncols=len(models), sharex=True, sharey=True)
    rate = table.attrs.get("scale") == "rate"
    ordinal = find_family(table.attrs.get("family") or "binomial").ordinal
    for panel, model in zip(axes.flat, models):
        rows = table[table["model"] == model]
        colour = rows["color"].iloc[0]
        predicted = rows[rows["series"] == "predicted"]
        if ordinal:
            _rating_bars(panel, rows, colour)
        else:
            for _, one in predicted.groupby("draw"):
                panel.ecdf(one["value"], color=colour, alpha=0.35, lw=1)
            panel.ecdf(rows.loc[rows["series"] == "observed", "value"], color="black", lw=2)
        panel.set_title(rows["label"].iloc[0], fontsize="medium")
        panel.set_xlabel(
            found.get("outcome", "Rating")
            if ordinal
            else found.get("rate", "Rate")
            if rate
            else found.get("per_row", f"{found.get('successes', 'Successes')} per row (count)")
        )
        panel.spines[["top", "right"]].set_visible(False)
    axes.flat[0].set_ylabel("Share of rows" if ordinal else "Share of rows ≤ x (ECDF)")
    n_draws = table.loc[table["series"] == "predicted", "draw"].nunique()
    handles = [
        Patch(color="0.8", label="Observed") if ordinal else Line2D([], [], color="black", lw=2, label="Observed"),
        Line2D(
            [],
            [],
            color="0.5",
            alpha=0.6,
            **({"marker": "o", "lw": 0} if ordinal else {}),
            label=f"{n_draws} posterior predictive data sets (model colour)",
        ),
    ]
    if ax is None:
        figure.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
        figure.suptitle(
            title
            or f"Posterior predictive check: {found.get('rate', 'rate').lower() if rate else found.get('per_row', 'outcome per row').lower()}"
        )
    else:
        axes.flat[-1].legend(handles=handles, fontsize="small", frameon=False)
    return figure


def _rating_bars(panel, rows: pd.DataFrame, colour: str) -> None:
    """Observed share of each rating as a bar, each predicted data set's share as a dot on it."""
    values = np.sort(pd.unique(rows["value"]))
    observed = rows.loc[rows["series"] == "observed", "value"]
    panel.bar(values, [(observed == v).mean() for v in values], width=0.7, color="0.8", zorder=1)
    spread = np.random.default_rng(0)  # a fixed jitter, so the figure is the same every run
    for _, one in rows[rows["series"] == "predicted"].groupby("draw"):
        shares = [(one["value"] == v).mean() for v in values]
        panel.scatter(values + spread.uniform(-0.2, 0.2, len(values)), shares, color=colour, alpha=0.5, s=12, zorder=2)
    panel.set_xticks(values, [f"{v:g}" for v in values])


MAX_GROUPS_SHOWN = 30


def ppc_groups_table(
    fits,
    *,
    draws: int = 200,
    seed: int = 0,
    prob: float = 0.89,
    colors: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Each group's observed rate against its posterior predictive distribution, for every model.

    A group's rate is its outcomes' sum over its size's sum (successes per trial, events per unit
    of exposure) or its mean outcome, in the data and in each simulated data set (bayesplot's
    ``ppc_stat_grouped``). With more than ``MAX_GROUPS_SHOWN`` groups, the ones with the most rows.

    Parameters
    ----------
    fits : Study, Fit, mapping or sequence of Fit
        The models to check.
    draws : int
        Simulated data sets per model.
    seed : int
        Seed of the simulated data sets.
    prob : float
        The predictive interval's probability.
    colors : mapping, optional
        Model name -> colour.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    pandas.DataFrame
        Columns model, label, color, group, rows, observed, lower, median, upper; ``attrs["groups"]``
        holds the number of groups in the data.

    Raises
    ------
    PoolwiseError
        A model has no group factor or another one than the first, or ``draws`` is not a whole
        number >= 1.

    Examples
    --------
    >>> ppc_groups(ppc_groups_table(study))  # doctest: +SKIP
    """
    if not isinstance(draws, (int, np.integer)) or draws < 1:
        raise PoolwiseError(f"draws must be a whole number >= 1, got {draws!r}")
    fits = as_fits(fits)
    first = next(iter(fits.values()))
    factors = {fit.spec.group for fit in fits.values()}
    if None in factors or len(factors) > 1:
        raise PoolwiseError(
            "a posterior predictive check per group needs every model grouped by the same factor; "
            f"these are grouped by {', '.join(sorted(factor or 'no factor' for factor in factors))}"
        )
    colours = model_colors(list(fits), [fit.pooling for fit in fits.values()], colors)
    parts = []
    for name, fit in fits.items():
        data = fit.data
        size = data[fit.spec.size].to_numpy(dtype=float) if fit.spec.size else np.ones(len(data))
        groups = data[fit.spec.group].astype(str).to_numpy()
        labels_seen, index = np.unique(groups, return_inverse=True)
        per_group = np.bincount(index, weights=size)
        simulated = predictive_draws(fit, draws=draws, seed=seed)
        rates = np.stack([np.bincount(index, weights=row) for row in simulated]) / per_group
        lower, median, upper = np.quantile(rates, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
        parts.append(
            pd.DataFrame(
                {
                    "model": name,
                    "label": model_label(name),
                    "color": colours[name],
                    "group": labels_seen,
                    "rows": np.bincount(index),
                    "observed": np.bincount(index, weights=data[fit.spec.outcome].to_numpy(dtype=float)) / per_group,
                    "lower": lower,
                    "median": median,
                    "upper": upper,
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    shown = (
        table.drop_duplicates("group").nlargest(MAX_GROUPS_SHOWN, "rows", keep="first")["group"]
        if table["group"].nunique() > MAX_GROUPS_SHOWN
        else table["group"]
    )
    groups = table["group"].nunique()
    table = table[table["group"].isin(set(shown))].reset_index(drop=True)
    table.attrs.update(labels=labels_for(first.spec, overrides=labels), groups=groups, prob=prob)
    return table


def ppc_groups(table, *, ax=None, title: str | None = None, labels: Mapping[str, str] | None = None):
    """Draw ``ppc_groups_table``: per model, each group's predictive interval with its observed rate.

    A model that fits puts each black dot (the group's observed rate) inside its group's line;
    complete pooling, which gives every group one rate, misses the groups that differ.

    Parameters
    ----------
    table : pandas.DataFrame or fits
        From ``ppc_groups_table``, or what it takes.
    ax : matplotlib Axes or array of Axes, optional
        One Axes per model; default: a new figure.
    title : str, optional
        The figure's title.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> ppc_groups(ppc_groups_table(study))  # doctest: +SKIP
    """
    from matplotlib.lines import Line2D

    table = table if isinstance(table, pd.DataFrame) else ppc_groups_table(table, labels=labels)
    found = {**table.attrs.get("labels", {}), **(labels or {})}
    models = list(pd.unique(table["model"]))
    order = table.drop_duplicates("group").sort_values("observed")["group"].tolist()
    position = {group: k for k, group in enumerate(order)}
    height = 1.6 + 0.22 * len(order)
    figure, axes = new_figure(ax, size=(4.2 * len(models) + 0.8, height), ncols=len(models), sharex=True, sharey=True)
    for panel, model in zip(axes.flat, models):
        rows = table[table["model"] == model]
        y = rows["group"].map(position).to_numpy()
        colour = rows["color"].iloc[0]
        panel.hlines(y, rows["lower"], rows["upper"], color=colour, lw=2, alpha=0.7)
        panel.scatter(rows["median"], y, color=colour, s=14, zorder=2)
        panel.scatter(rows["observed"], y, color="black", s=16, zorder=3)
        panel.set_title(rows["label"].iloc[0], fontsize="medium")
        panel.set_xlabel(found.get("rate", "Rate"))
        panel.spines[["top", "right"]].set_visible(False)
    axes.flat[0].set_yticks(range(len(order)), order)
    axes.flat[0].set_ylabel(found.get("group", "Group"))
    prob = table.attrs.get("prob", 0.89)
    handles = [
        Line2D([], [], color="black", marker="o", lw=0, label="Observed"),
        Line2D([], [], color="0.5", lw=2, marker="o", label=f"Posterior predictive median and {prob:.0%} interval"),
    ]
    shown, groups = len(order), table.attrs.get("groups", len(order))
    which = f" ({shown} of {groups} with the most rows)" if shown < groups else ""
    if ax is None:
        figure.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
        figure.suptitle(title or f"Posterior predictive check per {found.get('group', 'group').lower()}{which}")
    else:
        axes.flat[-1].legend(handles=handles, fontsize="small", frameon=False)
    return figure


def loo_pit_table(fits, *, seed: int = 0, colors: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Each row's LOO probability integral transform, for every model (ArviZ's ``loo_pit``).

    The share of the leave-one-out predictive distribution below the observed outcome, from all the
    fit's draws: the posterior predictive outcomes Bambi simulates, weighted by PSIS. A calibrated
    model's values are uniform on (0, 1); for counts ArviZ randomises within each outcome's step.

    Parameters
    ----------
    fits : Study, Fit, mapping or sequence of Fit
        The models to check, each with its pointwise log-likelihood.
    seed : int
        Seed of the simulated outcomes and of the randomisation for counts.
    colors : mapping, optional
        Model name -> colour.

    Returns
    -------
    pandas.DataFrame
        Columns model, label, color, row, pit.

    Examples
    --------
    >>> loo_pit(loo_pit_table(study))  # doctest: +SKIP
    """
    import xarray as xr
    from arviz_stats import loo_pit as arviz_loo_pit

    fits = as_fits(fits)
    colours = model_colors(list(fits), [fit.pooling for fit in fits.values()], colors)
    parts = []
    for name, fit in fits.items():
        model = model_of(fit)
        posterior = fit.posterior
        log_lik = fit.idata["log_likelihood"].to_dataset()
        (variable,) = log_lik.data_vars
        dims = log_lik[variable].dims
        simulated = adapter.predict_outcomes(model, posterior, seed).reshape(
            posterior.sizes["chain"], posterior.sizes["draw"], -1
        )
        tree = xr.DataTree.from_dict(
            {
                "posterior": posterior,
                "posterior_predictive": xr.Dataset({variable: (dims, simulated)}),
                "log_likelihood": log_lik,
                "observed_data": fit.idata["observed_data"].to_dataset(),
            }
        )
        values = arviz_loo_pit(tree, random_state=seed)[variable].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "model": name,
                    "label": model_label(name),
                    "color": colours[name],
                    "row": np.arange(len(values)),
                    "pit": values,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def loo_pit(table, *, ax=None, title: str | None = None):
    """Draw ``loo_pit_table``: per model, the ECDF of the LOO-PIT values minus the uniform's, with
    the band a calibrated model stays in 95 % of the time at each point (pointwise binomial).

    Predictions too narrow (overdispersion the model misses) pile the values at 0 and 1: the curve
    jumps above the band at 0 and falls below it before 1. Too wide ones gather them near 0.5: the
    curve dips below zero first and rises above it later. Outcomes higher than predicted overall
    keep the curve below zero.

    Parameters
    ----------
    table : pandas.DataFrame or fits
        From ``loo_pit_table``, or what it takes.
    ax : matplotlib Axes or array of Axes, optional
        One Axes per model; default: a new figure.
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> loo_pit(loo_pit_table(study))  # doctest: +SKIP
    """
    table = table if isinstance(table, pd.DataFrame) else loo_pit_table(table)
    models = list(pd.unique(table["model"]))
    figure, axes = new_figure(ax, size=(4.6 * len(models) + 0.4, 4.0), ncols=len(models), sharex=True, sharey=True)
    grid = np.linspace(0, 1, 201)
    for panel, model in zip(axes.flat, models):
        rows = table[table["model"] == model]
        values = np.sort(rows["pit"].to_numpy())
        n = len(values)
        band = 1.96 * np.sqrt(grid * (1 - grid) / n)
        panel.fill_between(grid, -band, band, color="0.85", lw=0, label="95 % band of a calibrated model")
        panel.axhline(0, color="0.4", lw=0.8)
        ecdf = np.searchsorted(values, grid, side="right") / n
        panel.plot(grid, ecdf - grid, color=rows["color"].iloc[0], lw=2, label="LOO-PIT ECDF - uniform")
        panel.set_title(f"{rows['label'].iloc[0]} ({n} rows)", fontsize="medium")
        panel.set_xlabel("LOO-PIT value")
        panel.spines[["top", "right"]].set_visible(False)
    axes.flat[0].set_ylabel("ECDF difference from uniform")
    if ax is None:
        handles, names = axes.flat[0].get_legend_handles_labels()
        figure.legend(handles, names, loc="outside lower center", ncols=2, frameon=False)
        figure.suptitle(title or "LOO-PIT calibration: inside the band is calibrated")
    return figure


def comparison_table(study: Study | pd.DataFrame, *, colors: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The LOO comparison, best model first.

    Parameters
    ----------
    study : Study or pandas.DataFrame
        A Study, or its ``.table``.
    colors : mapping, optional
        Model name -> colour.

    Returns
    -------
    pandas.DataFrame
        model, label, color, then ``Study.table``'s columns (elpd, se, elpd_diff, dse, weight,
        n_bad_k, n_obs, ...).

    Raises
    ------
    PoolwiseError
        The table lacks the LOO columns.

    Examples
    --------
    >>> comparison_table(study)[["model", "elpd", "se"]]  # doctest: +SKIP
    """
    source = study.table if isinstance(study, Study) else study
    missing = {"elpd", "se", "elpd_diff", "dse"} - set(source.columns)
    if missing:
        raise PoolwiseError(f"the comparison table lacks {', '.join(sorted(missing))}; pass a Study or its .table")
    table = source.sort_values("elpd", ascending=False).reset_index()
    names = list(table["model"])
    colours = model_colors(names, names, colors)
    table.insert(1, "label", [model_label(name) for name in names])
    table.insert(2, "color", [colours[name] for name in names])
    return table


def comparison(table, *, ax=None, title: str | None = None):
    """Draw ``comparison_table``: each model's elpd_loo ± se and its difference from the best.

    The difference is drawn below each model (open triangle) with the se of that difference.

    Parameters
    ----------
    table : pandas.DataFrame or Study
        From ``comparison_table``, or the Study it takes.
    ax : matplotlib Axes, optional
        The Axes to draw onto; default: a new figure.
    title : str, optional
        The title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> comparison(comparison_table(study))  # doctest: +SKIP
    """
    from matplotlib.lines import Line2D

    table = table if isinstance(table, pd.DataFrame) and "label" in table else comparison_table(table)
    figure, axes = new_figure(ax, size=(8.5, 1.6 + 0.9 * len(table)))
    panel = axes.flat[0]
    best = table["elpd"].iloc[0]
    panel.axvline(best, color="0.6", ls="--", lw=1, zorder=0)
    y = np.arange(len(table))[::-1].astype(float)
    for row_y, (_, row) in zip(y, table.iterrows()):
        panel.errorbar(row["elpd"], row_y, xerr=row["se"], fmt="o", ms=7, lw=2, color=row["color"])
        if row_y != y[0]:
            panel.errorbar(
                best + row["elpd_diff"],
                row_y - 0.28,
                xerr=row["dse"],
                fmt="^",
                ms=7,
                lw=1.2,
                color=row["color"],
                mfc="white",
            )
            panel.annotate(
                f"Δ {row['elpd_diff']:.1f} ± {row['dse']:.1f}".replace("-", "−"),
                (best + row["elpd_diff"] + row["dse"], row_y - 0.28),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize="small",
            )
    ticks = [
        f"{row['label']}\nPareto k > {PARETO_K}: {row['n_bad_k']} of {row['n_obs']} rows"
        if "n_bad_k" in row
        else row["label"]
        for _, row in table.iterrows()
    ]
    panel.set_yticks(y, ticks)
    panel.set_ylim(y.min() - 0.7, y.max() + 0.5)
    panel.set_xlabel("Expected log predictive density, ELPD (leave-one-out): higher predicts better")
    panel.spines[["top", "right"]].set_visible(False)
    panel.margins(x=0.12)
    handles = [
        Line2D([], [], color="0.3", marker="o", lw=2, label="ELPD ± se"),
        Line2D([], [], color="0.3", marker="^", mfc="white", lw=1.2, label="Difference from the best ± its se"),
        Line2D([], [], color="0.6", ls="--", label="Best model"),
    ]
    panel.legend(handles=handles, loc="upper left", fontsize="small", frameon=False)
    panel.set_title(title or "Model comparison by leave-one-out cross-validation")
    return figure


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise PoolwiseError(f"unknown scale {scale!r}; use 'count' (successes) or 'rate' (successes / trials)")
