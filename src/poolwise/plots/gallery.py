"""Every figure of a Study rendered into a folder: what ``poolwise compare --plots`` and the notebooks show."""

import shutil
from collections.abc import Mapping
from pathlib import Path

from poolwise.comparison import Study
from poolwise.plots.checks import comparison, comparison_table, ppc, ppc_table
from poolwise.plots.estimates import forest, forest_table, logistic, logistic_table, shrinkage, shrinkage_table
from poolwise.plots.graph import model_graph
from poolwise.plots.raw import data_bars, data_bars_table
from poolwise.plots.style import save


def gallery(
    study: Study,
    folder: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    draws: int = 20,
    seed: int = 0,
    dpi: int = 150,
) -> list[Path]:
    """Render every figure of ``study`` into PNGs in ``folder`` (created if needed); return their paths.

    Files: data_bars.png (all groups), data_bars_<first group>.png, forest.png (no pooling under
    partial pooling), ppc_counts.png and ppc_rates.png (all three models), logistic.png,
    shrinkage.png, loo_compare.png, and model_graph_<model>.png per model, or the graph's DOT
    source (.gv) when Graphviz's ``dot`` is not installed. ``labels`` overrides readable labels,
    e.g. ``{"rate": "Signup rate"}``. Each file is written atomically.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    partial = study.fits["partial"]
    bars = data_bars_table(partial.data, partial.spec, labels=labels)
    first = bars["group"].iloc[0]
    overlay = {name: study.fits[name] for name in ("none", "partial")}
    figures = {
        "data_bars.png": lambda: data_bars(bars),
        f"data_bars_{first}.png": lambda: data_bars(bars, group=first),
        "forest.png": lambda: forest(forest_table(overlay, labels=labels)),
        "ppc_counts.png": lambda: ppc(ppc_table(study, draws=draws, seed=seed, labels=labels)),
        "ppc_rates.png": lambda: ppc(ppc_table(study, draws=draws, scale="rate", seed=seed, labels=labels)),
        "logistic.png": lambda: logistic(logistic_table(partial, labels=labels)),
        "shrinkage.png": lambda: shrinkage(shrinkage_table(study, labels=labels)),
        "loo_compare.png": lambda: comparison(comparison_table(study)),
    }
    paths = [save(draw(), folder / name, dpi=dpi) for name, draw in figures.items()]
    suffix = ".png" if shutil.which("dot") else ".gv"
    paths += [model_graph(fit, folder / f"model_graph_{name}{suffix}", dpi=dpi) for name, fit in study.fits.items()]
    return paths
