"""poolwise: complete, no and partial pooling of rates from one formula, fitted with Bambi.

>>> import poolwise as pw
>>> study = pw.compare("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", pw.load_dataset("gym"))  # doctest: +SKIP
>>> study.table  # doctest: +SKIP
"""

from importlib import import_module

# Public name -> module. Resolved on first use (PEP 562) so that `poolwise --help` and other
# light entry points do not pay for importing pandas, xarray, Bambi and PyMC. No module shares
# a name with a function exported here, so importing a submodule never shadows an export.
_EXPORTS = {
    "PoolwiseError": "errors",
    "PoolwiseWarning": "errors",
    "load_dataset": "data",
    "read_data": "data",
    "simulate_franchise": "data",
    "FormulaSpec": "spec",
    "parse_formula": "formulas",
    "templates": "pooling",
    "Fit": "results",
    "fit": "fitting",
    "coefficients": "estimates",
    "group_draws": "estimates",
    "population_draws": "estimates",
    "Study": "comparison",
    "compare": "comparison",
    "compare_models": "comparison",
    "compare_fits": "comparison",
    "Decision": "decisions",
    "decide": "decisions",
    "CV": "cv",
    "group_cv": "cv",
    "group_folds": "cv",
    "aggregate_file": "rows",
    "read_rows": "rows",
    "check": "identify",
    "contrasts": "identify",
    "correlated_pairs": "identify",
    "sensitivity": "prior_sensitivity",
    "predict": "prediction",
    "save_fit": "io",
    "load_fit": "io",
    "save_study": "io",
    "load_study": "io",
    "Summary": "summaries",
    "summary": "summaries",
    "lme4_summary": "summaries",
    "render_report": "report",
    "write_report": "report",
}
# Subpackages reachable as attributes (``poolwise.plots.forest``), imported on first use too.
_SUBPACKAGES = ("plots",)
__all__ = sorted([*_EXPORTS, *_SUBPACKAGES])


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return import_module(f"poolwise.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'poolwise' has no attribute {name!r}")
    value = getattr(import_module(f"poolwise.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
