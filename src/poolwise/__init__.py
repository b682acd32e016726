"""poolwise: complete, no and partial pooling of rates from one formula, fitted with Bambi.

>>> import poolwise as pw
>>> study = pw.compare("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)", pw.load_dataset("gym"))
>>> study.table
"""

from poolwise.coefficients import coefficients, group_draws, population_draws
from poolwise.compare import Study, compare
from poolwise.data import load_dataset, read_data, simulate_franchise
from poolwise.errors import PoolwiseError, PoolwiseWarning
from poolwise.fit import Fit, fit
from poolwise.formulas import FormulaSpec, parse_formula
from poolwise.pooling import templates

__all__ = [
    "Fit", "FormulaSpec", "PoolwiseError", "PoolwiseWarning", "Study", "coefficients", "compare", "fit",
    "group_draws", "load_dataset", "parse_formula", "population_draws", "read_data", "simulate_franchise",
    "templates",
]
