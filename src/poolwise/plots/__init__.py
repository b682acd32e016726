"""The figures. Each is a pair: ``*_table`` computes a tidy DataFrame of what will be drawn, and the
function without the suffix draws it (onto ``ax`` if given) and returns the Figure.

>>> from poolwise import plots
>>> plots.forest(plots.forest_table([study.fits["none"], study.fits["partial"]]))  # doctest: +SKIP
>>> plots.gallery(study, "figures")  # doctest: +SKIP

``FIGURES`` lists every figure once (its command-line name, file, title, description and how to
draw it from a Study or a Fit); the gallery, ``poolwise plot``, the report and the docs read it.

Names are resolved on first use (PEP 562), so ``import poolwise.plots`` and the command line stay
light; matplotlib is imported only when something is drawn, and the library never calls
``plt.show()``.
"""

from importlib import import_module

# Public name -> module of poolwise.plots.
_EXPORTS = {
    "FIGURES": "figures",
    "FigureKind": "figures",
    "comparison": "checks",
    "comparison_table": "checks",
    "data_bars": "raw",
    "data_bars_table": "raw",
    "decision_fit": "decisions",
    "difference_forest": "decisions",
    "difference_forest_table": "decisions",
    "forest": "estimates",
    "forest_table": "estimates",
    "gallery": "figures",
    "humanise": "style",
    "logistic": "estimates",
    "logistic_table": "estimates",
    "model_graph": "graph",
    "ppc": "checks",
    "ppc_table": "checks",
    "predictive_draws": "checks",
    "predictive_table": "checks",
    "rate_densities": "decisions",
    "rate_density_table": "decisions",
    "shrinkage": "estimates",
    "shrinkage_table": "estimates",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'poolwise.plots' has no attribute {name!r}")
    value = getattr(import_module(f"poolwise.plots.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
