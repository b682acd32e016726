"""poolwise: complete, no and partial pooling of rates from one formula, fitted with Bambi.

>>> import poolwise as pw
>>> study = pw.compare("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)", pw.load_dataset("gym"))
>>> study.table
"""

import sys
import types
from importlib import import_module

# Public name -> module. Resolved on first use (PEP 562) so that `poolwise --help` and other
# light entry points do not pay for importing pandas, xarray, Bambi and PyMC.
_EXPORTS = {
    "PoolwiseError": "errors", "PoolwiseWarning": "errors",
    "load_dataset": "data", "read_data": "data", "simulate_franchise": "data",
    "FormulaSpec": "formulas", "parse_formula": "formulas",
    "templates": "pooling",
    "Fit": "fit", "fit": "fit",
    "coefficients": "coefficients", "group_draws": "coefficients", "population_draws": "coefficients",
    "Study": "compare", "compare": "compare",
    "Decision": "decide", "decide": "decide", "lme4_summary": "decide",
    "CV": "cv", "group_cv": "cv", "group_folds": "cv",
    "aggregate_file": "rows", "read_rows": "rows",
    "check": "identify", "contrasts": "identify", "correlated_pairs": "identify", "sensitivity": "sensitivity",
    "save_fit": "io", "load_fit": "io", "save_study": "io", "load_study": "io", "Summary": "summary", "summary": "summary",
}
__all__ = sorted(_EXPORTS)


class _Package(types.ModuleType):
    """Importing a submodule (``from poolwise.fit import Fit``) sets the package attribute of that
    name to the module, which would shadow the function ``poolwise.fit``; keep exported names lazy."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and name in _EXPORTS:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'poolwise' has no attribute {name!r}")
    value = getattr(import_module(f"poolwise.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
