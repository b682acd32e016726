"""What every figure shares: colours, readable labels derived from the formula, figure creation, saving.

matplotlib is imported inside the functions that draw, so importing ``poolwise.plots`` stays light.
"""

import re
from collections.abc import Mapping, Sequence
from itertools import cycle
from pathlib import Path

import pandas as pd

from poolwise.comparison import Study
from poolwise.errors import PoolwiseError
from poolwise.families import family as find_family
from poolwise.formulas import parse_formula
from poolwise.pooling import POOLINGS
from poolwise.results import Fit
from poolwise.spec import FormulaSpec

# The chapter's overlay (no pooling grey under partial pooling purple) plus Okabe-Ito orange for
# complete pooling: the three differ in lightness as well as hue, so they survive colour blindness
# and greyscale printing.
MODEL_COLORS = {"complete": "#E69F00", "none": "#8C8C8C", "partial": "#762A83"}
EXTRA_COLORS = ("#0072B2", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")
# (light, dark) fills of the data bars: trials light, successes dark on top.
TREATED = ("thistle", "darkorchid")
UNTREATED = ("powderblue", "cadetblue")
# Further arms of a categorical treatment, light and dark, after the two above.
ARMS = (
    ("navajowhite", "darkorange"),
    ("palegreen", "seagreen"),
    ("lightpink", "crimson"),
    ("khaki", "olive"),
    ("lightsteelblue", "steelblue"),
    ("wheat", "saddlebrown"),
)
# The decision figures: the reference condition in the untreated dark colour and the treated one in
# the treated dark colour, as in the data bars; their difference in Okabe-Ito bluish green.
DIFFERENCE = "#009E73"
RATE_COLORS = {"rate_without": UNTREATED[1], "rate_with": TREATED[1], "difference": DIFFERENCE}
TIME_WORDS = ("time", "period", "date", "week", "month", "year", "day", "quarter", "wave")


def humanise(name: str) -> str:
    """A column name as a reader sees it.

    Splits camelCase and snake_case, drops a leading count prefix ``n`` and a trailing ``ID`` (which
    name columns, not what a reader sees), and keeps acronyms in capitals.

    Parameters
    ----------
    name : str
        A column name.

    Returns
    -------
    str
        E.g. ``gymID`` -> ``Gym``, ``nTrialCustomers`` -> ``Trial customers``, ``time_period`` ->
        ``Time period``.

    Examples
    --------
    >>> humanise("nTrialCustomers"), humanise("gymID")
    ('Trial customers', 'Gym')
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    words = [word for word in re.split(r"[\s_.]+", spaced) if word]
    if len(words) > 1 and words[0] == "n":
        words = words[1:]
    if len(words) > 1 and words[-1].lower() == "id":
        words = words[:-1]
    text = " ".join(word if len(word) > 1 and word.isupper() else word.lower() for word in words)
    return text[:1].upper() + text[1:]


def as_spec(formula: str | FormulaSpec, data: pd.DataFrame | None = None) -> FormulaSpec:
    """A parsed formula, whether given as text or already parsed.

    Parameters
    ----------
    formula : str or FormulaSpec
        A formula.
    data : pandas.DataFrame, optional
        Data to parse it with (deciding its family).

    Returns
    -------
    FormulaSpec
        The parsed formula.

    Examples
    --------
    >>> as_spec("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)").group
    'gymID'
    """
    return formula if isinstance(formula, FormulaSpec) else parse_formula(formula, data)


def labels_for(
    spec: FormulaSpec, *, time: str | None = None, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Readable axis labels derived from the formula's column names and family.

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    time : str, optional
        The time column, if any.
    overrides : mapping, optional
        Labels that win over the derived ones.

    Returns
    -------
    dict of str to str
        Keys group, successes (the outcome), trials (each row's size: trials, exposure or rows), rate
        (the mean response), per_row (the outcome per data row), link, treatment, treated, untreated,
        time.

    Examples
    --------
    >>> labels_for(as_spec("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"))["rate"]
    'Rate (signed / trial customers)'
    """
    family = find_family(spec.family or "binomial")
    outcome = humanise(spec.outcome)
    size = (
        humanise(spec.size) if spec.size and not spec.size.endswith("_n") else ("Trials" if family.trials else "Rows")
    )
    treatment = humanise(spec.treatment) if spec.treatment else "Treatment"
    if family.probability:
        rate = f"Rate ({outcome.lower()} / {size.lower()})"
    elif family.counts:
        rate = f"{outcome} per {size.lower().removesuffix('s')}"
    else:
        rate = f"Mean {outcome.lower()}"
    found = {
        "group": humanise(spec.group) if spec.group else "Group",
        "successes": outcome,
        "trials": size,
        "rate": rate,
        "per_row": f"{outcome} per row" + (" (count)" if family.counts else ""),
        "link": family.link,
        "treatment": treatment,
        "treated": f"With {treatment.lower()}",
        "untreated": f"Without {treatment.lower()}",
        "time": humanise(time) if time else "Row",
    }
    found.update(overrides or {})
    return found


def model_label(name: str) -> str:
    """A pooling model's name in words; other names are shown as given.

    Parameters
    ----------
    name : str
        A model name.

    Returns
    -------
    str
        E.g. ``partial`` -> ``Partial pooling``.

    Examples
    --------
    >>> model_label("partial"), model_label("my model")
    ('Partial pooling', 'my model')
    """
    for entry in POOLINGS:
        if entry.name == name:
            return entry.label
    return name


def model_colors(
    names: Sequence[str], poolings: Sequence[str], colors: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A colour per model: ``colors`` first, then the pooling's default, then a colour-blind-safe cycle.

    Parameters
    ----------
    names : sequence of str
        Model names, in drawing order.
    poolings : sequence of str
        Each model's pooling.
    colors : mapping, optional
        Model name -> colour overrides.

    Returns
    -------
    dict of str to str
        Model name -> colour; no two models share a default colour.

    Examples
    --------
    >>> model_colors(["none", "partial"], ["none", "partial"])
    {'none': '#8C8C8C', 'partial': '#762A83'}
    """
    chosen: dict[str, str] = {}
    spare = cycle(EXTRA_COLORS)
    for name, kind in zip(names, poolings):
        colour = (colors or {}).get(name)
        if colour is None:
            default = MODEL_COLORS.get(kind)
            colour = default if default and default not in chosen.values() else next(spare)
        chosen[name] = colour
    return chosen


def as_fits(fits: "Study | Fit | Mapping[str, Fit] | Sequence[Fit]") -> dict[str, Fit]:
    """Name -> Fit from a Study, one Fit, a mapping or a sequence.

    Parameters
    ----------
    fits : Study, Fit, mapping or sequence of Fit
        What a figure draws; a sequence is named by pooling (repeats numbered).

    Returns
    -------
    dict of str to Fit
        The fits by name.

    Raises
    ------
    PoolwiseError
        Nothing that holds fits was passed.

    Examples
    --------
    >>> list(as_fits(study))  # doctest: +SKIP
    ['complete', 'none', 'partial']
    """
    if isinstance(fits, Study):
        return dict(fits.fits)
    if isinstance(fits, Fit):
        return {fits.pooling: fits}
    if isinstance(fits, Mapping):
        found = dict(fits)
    else:
        found = {}
        for fit in fits:
            name = fit.pooling if fit.pooling not in found else f"{fit.pooling} {len(found) + 1}"
            found[name] = fit
    if not found or not all(isinstance(fit, Fit) for fit in found.values()):
        raise PoolwiseError("pass a Study, a Fit, or several Fits (a list or a name -> Fit dict)")
    return found


def pick_fit(fits: "Study | Fit | Mapping[str, Fit]", preferred: str = "partial") -> Fit:
    """One fit: ``fits`` itself, or its ``preferred`` pooling model.

    Parameters
    ----------
    fits : Study, Fit or mapping
        One fit or several.
    preferred : str
        The model to pick among several.

    Returns
    -------
    Fit
        The fit.

    Raises
    ------
    PoolwiseError
        Several fits without ``preferred`` among them.

    Examples
    --------
    >>> pick_fit(study).pooling  # doctest: +SKIP
    'partial'
    """
    found = as_fits(fits)
    if len(found) == 1:
        return next(iter(found.values()))
    if preferred not in found:
        raise PoolwiseError(f"no {preferred!r} fit among {', '.join(found)}; pass one Fit")
    return found[preferred]


def new_figure(ax=None, *, size: tuple[float, float], nrows: int = 1, ncols: int = 1, **grid):
    """A fresh constrained-layout figure with its axes, or ``ax``'s own figure.

    A ``matplotlib.figure.Figure`` rather than pyplot's, so the library keeps no global state and
    works headless; Jupyter still shows a returned Figure.

    Parameters
    ----------
    ax : matplotlib Axes or array of Axes, optional
        Axes to draw onto instead of a new figure.
    size : tuple of float
        The new figure's size in inches.
    nrows, ncols : int
        The grid of axes.
    **grid
        ``Figure.subplots`` options (``sharex``, ``sharey``).

    Returns
    -------
    tuple of (matplotlib.figure.Figure, numpy.ndarray)
        The figure and a (nrows, ncols) array of its axes.

    Raises
    ------
    PoolwiseError
        ``ax`` holds another number of axes than the grid needs.

    Examples
    --------
    >>> figure, axes = new_figure(size=(8, 3), ncols=2)
    >>> axes.shape
    (1, 2)
    """
    import numpy as np
    from matplotlib.figure import Figure

    if ax is not None:
        axes = np.atleast_1d(np.asarray(ax, dtype=object))
        if axes.size != nrows * ncols:
            raise PoolwiseError(
                f"this figure needs {nrows * ncols} axes but ax holds {axes.size}; pass that many or omit ax"
            )
        return axes.flat[0].get_figure(root=True), axes.reshape(nrows, ncols)
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False, **grid)
    return figure, axes


def save(figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Save ``figure`` atomically (temporary name, then rename), so a reader never sees half a PNG.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure.
    path : str or Path
        The file; its suffix picks the format.
    dpi : int
        Resolution of a raster image.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> save(plots.forest(plots.forest_table(study)), "forest.png")  # doctest: +SKIP
    PosixPath('forest.png')
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    figure.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    tmp.replace(path)
    return path
