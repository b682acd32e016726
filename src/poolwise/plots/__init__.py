"""The chapter's figures. Each is a pair: ``*_table`` computes a tidy DataFrame of what will be
drawn, and the function without the suffix draws it (onto ``ax`` if given) and returns the Figure.

>>> from poolwise import plots
>>> plots.forest(plots.forest_table([study.fits["none"], study.fits["partial"]]))
>>> plots.gallery(study, "figures")

matplotlib is imported only when something is drawn, and the library never calls ``plt.show()``.
"""

from poolwise.plots.checks import comparison, comparison_table, ppc, ppc_table, predictive_draws, predictive_table
from poolwise.plots.estimates import forest, forest_table, logistic, logistic_table, shrinkage, shrinkage_table
from poolwise.plots.gallery import gallery
from poolwise.plots.graph import model_graph
from poolwise.plots.raw import data_bars, data_bars_table
from poolwise.plots.style import humanise

__all__ = [
    "comparison",
    "comparison_table",
    "data_bars",
    "data_bars_table",
    "forest",
    "forest_table",
    "gallery",
    "humanise",
    "logistic",
    "logistic_table",
    "model_graph",
    "ppc",
    "ppc_table",
    "predictive_draws",
    "predictive_table",
    "shrinkage",
    "shrinkage_table",
]
