"""What a fit is: its draws (an ArviZ DataTree with log-likelihood), data, priors and settings.

A leaf module, so every stage that reads fits (estimates, summaries, decisions, figures) imports
the type without importing the sampler.
"""

from dataclasses import dataclass, field, replace

import pandas as pd

from poolwise.spec import FormulaSpec


@dataclass
class Fit:
    """A fitted pooling model: the posterior (an ArviZ DataTree with log-likelihood) and what made it.

    Parameters
    ----------
    pooling : str
        ``"complete"``, ``"none"`` or ``"partial"``.
    formula : str
        The Bambi formula fitted (the pooling template of ``spec``).
    spec : FormulaSpec
        The user's formula, parsed, with its family.
    priors : dict of str to str
        Term -> prior, as fitted (empty: Bambi's defaults).
    idata : xarray.DataTree
        The draws: posterior, log_likelihood, sample_stats, observed_data.
    data : pandas.DataFrame
        The data as fitted (bernoulli rows aggregated to counts).
    settings : dict
        Sampler settings: draws, tune, chains, seed, backend, target_accept, parameterization, ...
    model : bambi.Model, optional
        The Bambi model; None for a fit loaded from disk until something rebuilds it.

    Examples
    --------
    >>> fit = pw.fit(formula, data, pooling="partial", seed=1)  # doctest: +SKIP
    >>> fit.posterior["Intercept"].mean().item()  # doctest: +SKIP
    -1.16
    """

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
        """This fit with grouping factor ``factor`` in focus for per-group tables, figures and decisions.

        The draws are shared, not copied.

        Parameters
        ----------
        factor : str or None
            A grouping factor of the formula; None leaves the fit as it is.

        Returns
        -------
        Fit
            A copy whose ``spec`` has ``factor`` in focus.

        Examples
        --------
        >>> fit.focused("week").spec.group  # doctest: +SKIP
        'week'
        """
        return self if factor is None else replace(self, spec=self.spec.focused(factor))
