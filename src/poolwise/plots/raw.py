"""The raw data by group, coloured by treatment: binomial trials as light bars with successes dark
on top, counts as bars, continuous outcomes as points."""

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from poolwise.data import aggregate, as_binary, prepare_data
from poolwise.errors import PoolwiseError
from poolwise.families import family as find_family
from poolwise.plots.style import ARMS, TIME_WORDS, TREATED, UNTREATED, as_spec, labels_for, new_figure
from poolwise.spec import FormulaSpec

COLUMNS = ["group", "x", "trials", "successes", "rate", "treated", "condition", "light", "dark"]


def data_bars_table(
    data: pd.DataFrame,
    formula: str | FormulaSpec,
    *,
    time: str | None = None,
    treatment: str | None = None,
    untreated: object = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The raw data by group: one row per bar (or point), coloured by treatment.

    Parameters
    ----------
    data : pandas.DataFrame
        The data.
    formula : str or FormulaSpec
        The formula (its outcome, size, group and treatment are drawn).
    time : str, optional
        The x axis column (default: a column whose name mentions time, period, week, ...; without
        one the bars are the group's rows in data order).
    treatment : str, optional
        The column that colours the bars (default: the formula's treatment column): a 0/1 column
        splits on 1, any other column on ``untreated``.
    untreated : object, optional
        The untreated value of a non-0/1 treatment (default: its first sorted value, the reference level).
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    pandas.DataFrame
        Columns group, x, trials, successes, rate, treated, condition, light, dark; readable labels
        in ``attrs["labels"]``.

    Raises
    ------
    PoolwiseError
        ``time`` or ``treatment`` is not a column, or the treatment is neither 0/1 nor categorical.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> table = data_bars_table(load_dataset("franchise"), "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)")
    >>> table.loc[0, ["group", "x", "trials", "successes"]].astype(str).tolist()
    ['1', '1', '34', '10']
    """
    spec = as_spec(formula, data)
    time = time if time is not None else _find_time(data, spec)
    column = treatment if treatment is not None else _treatment_column(data, spec)
    for name in (time, column):
        if name is not None and name not in data.columns:
            raise PoolwiseError(f"column {name!r} is not in the data; pass one of: {', '.join(map(str, data.columns))}")
    if spec.family and find_family(spec.family).name == "bernoulli" and spec.trials is None:
        # 0/1 rows counted per group, time and treatment, so each bar is one period of one group.
        keys = [name for name in (spec.group, time, column) if name is not None]
        counts = aggregate(
            data.assign(**{spec.outcome: as_binary(data[spec.outcome], spec)}), spec.outcome, list(dict.fromkeys(keys))
        )
        spec = replace(spec, trials=f"{spec.outcome}_n")
    else:
        counts, spec, _ = prepare_data(spec, data)
        time = time if time in counts.columns else None
    group = counts[spec.group] if spec.group else pd.Series("all", index=counts.index)
    treated = _treated(counts[column], column, untreated, strict=treatment is not None) if column else None
    if treated is None:
        treated, column = pd.Series(False, index=counts.index), None
    found = labels_for(spec, time=time, overrides=labels)
    table = pd.DataFrame(
        {
            "group": group.astype(str),
            "x": counts[time] if time else group.groupby(group).cumcount() + 1,
            "trials": counts[spec.size].to_numpy() if spec.size else np.ones(len(counts)),
            "successes": counts[spec.outcome].to_numpy(),
            "treated": treated.to_numpy(),
        }
    )
    table["rate"] = table["successes"] / table["trials"]
    table["condition"] = np.where(table["treated"], found["treated"], found["untreated"]) if column else found["trials"]
    table["light"] = np.where(table["treated"], TREATED[0], UNTREATED[0])
    table["dark"] = np.where(table["treated"], TREATED[1], UNTREATED[1])
    levels = sorted(counts[column].astype(str).unique()) if column and treatment is None else []
    if len(levels) > 2 and not pd.api.types.is_numeric_dtype(counts[column]):
        # A treatment with several arms: one colour pair per level (the reference keeps the untreated pair).
        text = counts[column].astype(str).to_numpy()
        pairs = dict(zip(levels, [UNTREATED, TREATED, *ARMS]))
        table["condition"] = [f"{found['treatment']} {level}" for level in text]
        table["light"] = [pairs[level][0] for level in text]
        table["dark"] = [pairs[level][1] for level in text]
    order = {str(g): i for i, g in enumerate(sorted(group.unique()))}
    table = table.sort_values(["group", "x"], key=lambda s: s.map(order) if s.name == "group" else s, kind="stable")
    table = table[COLUMNS].reset_index(drop=True)
    table.attrs["labels"] = found
    table.attrs["family"] = spec.family
    table.attrs["bars"] = "trials" if spec.trials else ("counts" if find_family(spec.family).counts else "points")
    return table


def data_bars(
    table: pd.DataFrame,
    *,
    group: object = None,
    ncols: int = 4,
    ax=None,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
):
    """Draw ``data_bars_table``: a grid of one panel per group (shared axes), or one group's panel.

    Binomial trials are light bars with successes dark on top, other counts bars, continuous outcomes
    points. The legend goes into an empty grid cell if there is one.

    Parameters
    ----------
    table : pandas.DataFrame
        From ``data_bars_table``.
    group : object, optional
        One group to draw alone.
    ncols : int
        Panels per row of the grid.
    ax : matplotlib Axes, optional
        Draw one group's panel onto it.
    title : str, optional
        The title.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    PoolwiseError
        ``group`` is not in the data, or ``ax`` is given for several groups.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> table = data_bars_table(load_dataset("franchise"), "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)")
    >>> len(data_bars(table, group="1").axes)
    1
    """
    found = {**table.attrs.get("labels", {}), **(labels or {})}
    names = list(pd.unique(table["group"]))
    if group is not None:
        if str(group) not in names:
            raise PoolwiseError(
                f"{found.get('group', 'group')} {group!r} is not in the data; use one of: {', '.join(names)}"
            )
        names = [str(group)]
    if ax is not None and len(names) > 1:
        raise PoolwiseError(
            "ax holds one panel but the table has several groups; pass group=... or omit ax for the grid"
        )
    bars = table.attrs.get("bars", "trials")
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    single = len(names) == 1
    size = (8.5, 3.6) if single else (2.7 * ncols + 0.6, 2.0 * nrows + 1.4)
    figure, axes = new_figure(ax, size=size, nrows=nrows, ncols=ncols, sharex=True, sharey=True)
    ticks = np.sort(table["x"].unique())
    for panel, name in zip(axes.flat, names):
        rows = table[table["group"] == name]
        if bars == "points":
            panel.scatter(rows["x"], rows["successes"], color=rows["dark"], s=14)
        else:
            if bars == "trials":
                panel.bar(rows["x"], rows["trials"], color=rows["light"], width=0.8)
            panel.bar(rows["x"], rows["successes"], color=rows["dark"], width=0.8)
        panel.set_title(f"{found['group']} {name}", fontsize="medium")
        if len(ticks) <= 12 and np.issubdtype(ticks.dtype, np.number):
            panel.set_xticks(ticks)
        panel.spines[["top", "right"]].set_visible(False)
    for panel in axes.flat[len(names) :]:
        panel.set_axis_off()
    for panel in axes[:, 0]:
        panel.set_ylabel(found["successes"] if bars == "points" else "Count")
    for column in range(min(ncols, len(names))):
        # The lowest used panel of each column carries the x axis, also above an empty cell.
        lowest = axes[(len(names) - 1 - column) // ncols, column]
        lowest.xaxis.set_tick_params(labelbottom=True)
        lowest.set_xlabel(found["time"])
    handles = _legend_handles(table[table["group"].isin(names)], found, bars)
    empty = axes.flat[len(names) :]
    if single:
        axes.flat[0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    elif len(empty):
        empty[-1].legend(handles=handles, loc="center", frameon=False)
    else:
        figure.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), frameon=False)
    what = (
        f"{found['successes'].lower()} out of {found['trials'].lower()}"
        if bars == "trials"
        else found["successes"].lower()
    )
    if single:
        axes.flat[0].set_title(title or f"{found['group']} {names[0]}: {what}")
    else:
        figure.suptitle(title or f"{what[:1].upper()}{what[1:]} by {found['group'].lower()}")
    return figure


def _legend_handles(table: pd.DataFrame, found: dict[str, str], bars: str) -> list:
    from matplotlib.patches import Patch

    handles = []
    for condition, rows in table.groupby("condition", sort=False):
        suffix = f", {condition[:1].lower()}{condition[1:]}" if condition != found["trials"] else ""
        if bars == "trials":
            handles.append(Patch(color=rows["light"].iloc[0], label=f"{found['trials']}{suffix}"))
        handles.append(Patch(color=rows["dark"].iloc[0], label=f"{found['successes']}{suffix}"))
    return handles


def _find_time(data: pd.DataFrame, spec: FormulaSpec) -> str | None:
    used = set(spec.variables)
    for name in data.columns:
        if name not in used and any(word in str(name).lower() for word in TIME_WORDS):
            return name
    return None


def _treatment_column(data: pd.DataFrame, spec: FormulaSpec) -> str | None:
    """The data column behind the formula's treatment term (``yogaStretch``, or ``arm`` in ``C(arm)``)."""
    if spec.treatment is None:
        return None
    skip = {spec.group, spec.outcome, spec.trials, spec.exposure}
    return next((v for v in spec.variables if v in spec.treatment and v in data.columns and v not in skip), None)


def _treated(values: pd.Series, column: str, untreated: object, *, strict: bool) -> pd.Series | None:
    """True where treated; None (no colour split) for a derived column that is neither 0/1 nor categorical."""
    if untreated is not None:
        return values.astype(str) != str(untreated)
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        if set(numeric.unique()) <= {0, 1}:
            return numeric == 1
        if strict:
            raise PoolwiseError(
                f"treatment {column} is not 0/1; pass untreated=<its control value> or a 0/1 column as treatment"
            )
        return None
    reference = sorted(values.astype(str).unique())[0]
    return values.astype(str) != reference
