"""Every figure poolwise draws, listed once: ``FIGURES``, and ``gallery``, which draws them all.

``FIGURES`` maps each figure's command-line name to a ``FigureKind``: the file it is saved as, a
title, a one-line description, whether it compares models, and a function that draws it from a
Study or a Fit. ``poolwise plot NAME``, ``poolwise compare --plots`` (through ``gallery``), the
HTML report and the docs' gallery page all read it, so a new figure is added here and nowhere else.

>>> from poolwise.plots import FIGURES
>>> [kind.file for kind in FIGURES.values()][:3]
['data_bars.png', 'forest.png', 'ppc_counts.png']

This module imports no plotting code until something is drawn, so the command line can build its
choices from ``FIGURES`` and still start fast.
"""

import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poolwise.comparison import Study
    from poolwise.results import Fit


@dataclass(frozen=True)
class FigureKind:
    """One figure: its names, what it shows, and how to draw it.

    Parameters
    ----------
    name : str
        The command-line name: ``poolwise plot NAME``.
    file : str
        The file name under a results folder's ``figures/`` (``compare --plots``, the report).
    title : str
        A heading (the report, the docs' gallery).
    description : str
        One sentence: what the figure shows and what to look for.
    study : bool
        Whether the figure compares models, so it needs a Study rather than one Fit.
    draw : callable or None
        ``draw(source, *, seed, draws, labels)`` returns a matplotlib Figure drawn from a Study or
        a Fit; None for the model graph, which Graphviz writes straight to a file.

    Examples
    --------
    >>> FIGURES["shrinkage"].study
    True
    >>> FIGURES["shrinkage"].save(study, "shrinkage.png")  # doctest: +SKIP
    PosixPath('shrinkage.png')
    """

    name: str
    file: str
    title: str
    description: str
    study: bool
    draw: Callable[..., Any] | None

    def save(
        self,
        source: "Study | Fit",
        path: str | Path,
        *,
        seed: int = 0,
        draws: int = 20,
        labels: Mapping[str, str] | None = None,
        dpi: int = 150,
    ) -> Path:
        """Draw this figure of ``source`` and write it to ``path`` atomically.

        Parameters
        ----------
        source : Study or Fit
            What to draw: a comparison of models, or one fit.
        path : path
            The file to write; its suffix picks the format (.png, .svg, .pdf; the model graph
            also takes .gv for its DOT source).
        seed : int
            Seed of the simulated draws (posterior predictive data sets, new groups).
        draws : int
            Posterior predictive data sets per model in the predictive checks.
        labels : mapping, optional
            Readable labels overriding those derived from the formula, e.g. ``{"rate": "Signup rate"}``.
        dpi : int
            Resolution of a raster image.

        Returns
        -------
        Path
            ``path``.

        Raises
        ------
        PoolwiseError
            The figure compares models but ``source`` is one fit, or it does not apply to
            ``source`` (e.g. a decision figure of a formula without a treatment).

        Examples
        --------
        >>> FIGURES["forest"].save(study, "figures/forest.png", dpi=100)  # doctest: +SKIP
        PosixPath('figures/forest.png')
        """
        from poolwise.comparison import Study
        from poolwise.errors import PoolwiseError
        from poolwise.plots.graph import model_graph
        from poolwise.plots.style import save

        if self.study and not isinstance(source, Study):
            raise PoolwiseError(
                f"the {self.name} figure compares models; pass a Study (a folder saved by poolwise compare --out), "
                "not one fit"
            )
        if self.draw is None:
            return model_graph(_main_fit(source), path, dpi=dpi)
        return save(self.draw(source, seed=seed, draws=draws, labels=labels), path, dpi=dpi)


def _main_fit(source: "Study | Fit") -> "Fit":
    from poolwise.plots.decisions import decision_fit

    return decision_fit(source)


def _fits(source: "Study | Fit") -> dict:
    from poolwise.plots.style import as_fits

    return as_fits(source)


def draw_data(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``data`` figure: each group's rows, coloured by treatment (``poolwise.plots.data_bars``).

    Parameters
    ----------
    source : Study or Fit
        Its data and formula are drawn.
    seed, draws
        Unused; every draw function takes them.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> draw_data(study)  # doctest: +SKIP
    """
    from poolwise.plots.raw import data_bars, data_bars_table

    fit = _main_fit(source)
    return data_bars(data_bars_table(fit.data, fit.spec, labels=labels))


def draw_forest(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``forest`` figure: per-group intercepts and slopes, no pooling under partial pooling
    for a Study (``poolwise.plots.forest``).

    Parameters
    ----------
    source : Study or Fit
        A Study (its no and partial pooling fits are overlaid) or one fit.
    seed, draws
        Unused; every draw function takes them.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> draw_forest(study)  # doctest: +SKIP
    """
    from poolwise.plots.estimates import forest, forest_table

    fits = _fits(source)
    overlay = {name: fit for name, fit in fits.items() if name in ("none", "partial")} or fits
    return forest(forest_table(overlay, labels=labels))


def draw_ppc(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``ppc`` figure: the posterior predictive check of the outcomes, per model
    (``poolwise.plots.ppc``).

    Parameters
    ----------
    source : Study or Fit
        Every model of a Study, or one fit.
    seed : int
        Seed of the posterior draws simulated from.
    draws : int
        Simulated data sets per model.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> draw_ppc(study, draws=10)  # doctest: +SKIP
    """
    from poolwise.plots.checks import ppc, ppc_table

    return ppc(ppc_table(source, draws=draws, seed=seed, labels=labels))


def draw_ppc_groups(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``ppc-groups`` figure: each group's observed rate in its posterior predictive interval
    (``poolwise.plots.ppc_groups``).

    Parameters
    ----------
    source : Study or Fit
        Every model of a Study, or one fit.
    seed : int
        Seed of the simulated data sets.
    draws : int
        Unused: the intervals need 200 simulated data sets, whatever the other checks draw.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> draw_ppc_groups(study)  # doctest: +SKIP
    """
    from poolwise.plots.checks import ppc_groups, ppc_groups_table

    return ppc_groups(ppc_groups_table(source, seed=seed, labels=labels))


def draw_loo_pit(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``loo-pit`` figure: each model's LOO-PIT calibration (``poolwise.plots.loo_pit``).

    Parameters
    ----------
    source : Study or Fit
        Every model of a Study, or one fit.
    seed : int
        Seed of the simulated outcomes.
    draws, labels
        Unused; every draw function takes them.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> draw_loo_pit(study)  # doctest: +SKIP
    """
    from poolwise.plots.checks import loo_pit, loo_pit_table

    return loo_pit(loo_pit_table(source, seed=seed))


def draw_ppc_rates(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``ppc-rates`` figure: the posterior predictive check per unit of each row's size.

    Parameters
    ----------
    source : Study or Fit
        Every model of a Study, or one fit.
    seed : int
        Seed of the posterior draws simulated from.
    draws : int
        Simulated data sets per model.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> draw_ppc_rates(study)  # doctest: +SKIP
    """
    from poolwise.plots.checks import ppc, ppc_table

    return ppc(ppc_table(source, draws=draws, scale="rate", seed=seed, labels=labels))


def draw_logistic(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``logistic`` figure: each group on the inverse-link curve (``poolwise.plots.logistic``).

    Parameters
    ----------
    source : Study or Fit
        A Study (its partial pooling fit, else its best by LOO) or one fit.
    seed, draws
        Unused; every draw function takes them.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> draw_logistic(study)  # doctest: +SKIP
    """
    from poolwise.plots.estimates import logistic, logistic_table

    return logistic(logistic_table(_main_fit(source), labels=labels))


def draw_shrinkage(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``shrinkage`` figure: each group's no-pooling rate moving to its partial-pooling rate
    (``poolwise.plots.shrinkage``).

    Parameters
    ----------
    source : Study
        With no and partial pooling fits.
    seed, draws
        Unused; every draw function takes them.
    labels : mapping, optional
        Readable label overrides.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> draw_shrinkage(study)  # doctest: +SKIP
    """
    from poolwise.plots.estimates import shrinkage, shrinkage_table

    return shrinkage(shrinkage_table(source, labels=labels))


def draw_loo(source: "Study", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``loo`` figure: the models' LOO comparison (``poolwise.plots.comparison``).

    Parameters
    ----------
    source : Study
        The compared models.
    seed, draws, labels
        Unused; every draw function takes them.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> draw_loo(study)  # doctest: +SKIP
    """
    from poolwise.plots.checks import comparison, comparison_table

    return comparison(comparison_table(source))


def _with_treatment(source: "Study | Fit") -> "Fit":
    from poolwise.errors import PoolwiseError

    fit = _main_fit(source)
    if fit.spec.treatment is None:
        raise PoolwiseError(
            f"the formula {fit.spec.formula} has no treatment term, so there is no with/without decision to draw"
        )
    return fit


def draw_densities(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``densities`` figure: the mean response without and with the treatment for a typical
    and a new group, and their difference (``poolwise.plots.rate_densities``).

    Parameters
    ----------
    source : Study or Fit
        A Study (its partial pooling fit, else its best by LOO) or one partial or complete
        pooling fit.
    seed : int
        Seed of the simulated new group.
    draws : int
        Unused; every draw function takes it.
    labels : mapping, optional
        Label overrides (``"x"``: the axis).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    PoolwiseError
        The formula has no treatment, or the fit is no pooling's (it has no typical or new group).

    Examples
    --------
    >>> draw_densities(study, seed=1)  # doctest: +SKIP
    """
    from poolwise.plots.decisions import rate_densities, rate_density_table

    return rate_densities(rate_density_table(_with_treatment(source), seed=seed, labels=labels))


def draw_differences(source: "Study | Fit", *, seed: int = 0, draws: int = 20, labels: Mapping[str, str] | None = None):
    """The ``differences`` figure: the treatment's effect per observed group, then for a typical
    and a new group (``poolwise.plots.difference_forest``).

    Parameters
    ----------
    source : Study or Fit
        A Study (its partial pooling fit, else its best by LOO) or one fit.
    seed : int
        Seed of the decision's simulated new groups.
    draws, labels
        Unused; every draw function takes them.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    PoolwiseError
        The formula has no treatment.

    Examples
    --------
    >>> draw_differences(study)  # doctest: +SKIP
    """
    from poolwise.decisions import decide
    from poolwise.plots.decisions import difference_forest, difference_forest_table

    return difference_forest(difference_forest_table(decide(_with_treatment(source), seed=seed)))


FIGURES: dict[str, FigureKind] = {
    kind.name: kind
    for kind in (
        FigureKind(
            "data",
            "data_bars.png",
            "The data",
            "Each group's rows, coloured by treatment: trials light with successes dark on top, counts as bars, "
            "other outcomes as points.",
            False,
            draw_data,
        ),
        FigureKind(
            "forest",
            "forest.png",
            "Group estimates",
            "Each group's intercept and slope (link scale), no pooling under partial pooling: partial pooling pulls "
            "groups with little data towards the population (dashed line).",
            False,
            draw_forest,
        ),
        FigureKind(
            "ppc",
            "ppc_counts.png",
            "Posterior predictive check: outcomes",
            "The observed outcomes against outcomes simulated from each model: a model that fits the data puts the "
            "observed curve among its simulations.",
            False,
            draw_ppc,
        ),
        FigureKind(
            "ppc-rates",
            "ppc_rates.png",
            "Posterior predictive check: rates",
            "The same check per unit of each row's size (trials, exposure or rows).",
            False,
            draw_ppc_rates,
        ),
        FigureKind(
            "ppc-groups",
            "ppc_groups.png",
            "Posterior predictive check per group",
            "Each group's observed rate (black) inside the rates its model predicts for it (median and 89% "
            "interval): complete pooling misses the groups that differ; partial pooling should cover them.",
            False,
            draw_ppc_groups,
        ),
        FigureKind(
            "loo-pit",
            "loo_pit.png",
            "LOO-PIT calibration",
            "Where each observed outcome falls in its leave-one-out predictive distribution, as an ECDF against "
            "the uniform: a calibrated model stays in the grey band; predictions too narrow (overdispersion the "
            "model misses) jump above it at 0 and fall below it before 1.",
            False,
            draw_loo_pit,
        ),
        FigureKind(
            "logistic",
            "logistic.png",
            "Response curve",
            "Each group's linear predictor through the inverse link, without and with the treatment: where every "
            "group sits on the curve.",
            False,
            draw_logistic,
        ),
        FigureKind(
            "shrinkage",
            "shrinkage.png",
            "Shrinkage",
            "An arrow from each group's no-pooling estimate to its partial-pooling estimate: groups with little data "
            "move most.",
            True,
            draw_shrinkage,
        ),
        FigureKind(
            "loo",
            "loo_compare.png",
            "LOO comparison",
            "Each model's elpd_loo with its standard error, and its difference from the best.",
            True,
            draw_loo,
        ),
        FigureKind(
            "densities",
            "densities.png",
            "Decision densities",
            "The mean response without and with the treatment for a typical and a new group, and their difference, "
            "shaded where it is positive: that shaded area is P(helps).",
            False,
            draw_densities,
        ),
        FigureKind(
            "differences",
            "differences.png",
            "Differences per group",
            "The treatment's effect on the mean response per observed group, then for a typical and a new group; "
            "hollow where a group's own data cannot inform it.",
            False,
            draw_differences,
        ),
        FigureKind(
            "graph",
            "model_graph.png",
            "Model graph",
            "The model's generative graph (DAG) by Graphviz; its DOT source (.gv) where Graphviz's dot is not "
            "installed.",
            False,
            None,
        ),
    )
}


def gallery(
    study: "Study",
    folder: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    draws: int = 20,
    seed: int = 0,
    dpi: int = 150,
) -> list[Path]:
    """Draw every figure of ``FIGURES`` for ``study`` into ``folder`` (created if needed).

    Each figure is saved under its ``file`` name, atomically; the model graph is written once per
    model (``model_graph_<model>.png``, or its DOT source ``.gv`` when Graphviz's ``dot`` is not
    installed). A figure that does not apply to the study (a decision figure of a formula without a
    treatment) is left out with a ``PoolwiseWarning`` saying why.

    Parameters
    ----------
    study : Study
        The compared models.
    folder : path
        Where to write the figures.
    labels : mapping, optional
        Readable labels overriding those derived from the formula, e.g. ``{"rate": "Signup rate"}``.
    draws : int
        Posterior predictive data sets per model in the predictive checks.
    seed : int
        Seed of every simulated draw.
    dpi : int
        Resolution of the PNGs.

    Returns
    -------
    list of Path
        The files written.

    Examples
    --------
    >>> gallery(study, "results/figures")  # doctest: +SKIP
    [PosixPath('results/figures/data_bars.png'), ...]
    """
    from poolwise.errors import PoolwiseError, PoolwiseWarning

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in FIGURES.values():
        if kind.draw is None:
            suffix = ".png" if shutil.which("dot") else ".gv"
            stem = Path(kind.file).stem
            paths += [kind.save(fit, folder / f"{stem}_{name}{suffix}", dpi=dpi) for name, fit in study.fits.items()]
            continue
        try:
            paths.append(kind.save(study, folder / kind.file, seed=seed, draws=draws, labels=labels, dpi=dpi))
        except PoolwiseError as error:
            warnings.warn(f"{kind.title} not drawn: {error}", PoolwiseWarning, stacklevel=2)
    return paths
