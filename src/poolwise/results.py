"""What a fit is: its draws (an ArviZ DataTree with log-likelihood), data, priors and settings.

A leaf module, so every stage that reads fits (estimates, summaries, decisions, figures) imports
the type without importing the sampler.
"""

from dataclasses import dataclass, field, replace

import pandas as pd

from poolwise.spec import FormulaSpec


@dataclass
class Fit:
    """A fitted pooling model: the posterior (an ArviZ DataTree with log-likelihood) and what made it."""

    pooling: str
    formula: str
    spec: FormulaSpec
    priors: dict[str, str]
    idata: object
    data: pd.DataFrame
    settings: dict = field(default_factory=dict)
    model: object | None = None

    @property
    def posterior(self):
        """The posterior group of ``idata`` as an xarray Dataset."""
        return self.idata["posterior"].to_dataset()

    def focused(self, factor: str | None) -> "Fit":
        """This fit with grouping factor ``factor`` in focus for per-group tables, figures and
        decisions (the draws are shared, not copied)."""
        return self if factor is None else replace(self, spec=self.spec.focused(factor))
