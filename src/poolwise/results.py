"""What a fit is: its draws (an ArviZ DataTree with log-likelihood), data, priors and settings.

A leaf module, so every stage that reads fits (estimates, summaries, decisions, figures) imports
the type without importing the sampler.
"""

from dataclasses import dataclass, field, replace

import numpy as np
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

    def thinned(self, draws: int, seed: int):
        """The posterior with ``draws`` of its draws picked at random (seeded), as one chain.

        Bambi's ``predict`` wants (chain, draw, ...) with both coordinates present.

        Parameters
        ----------
        draws : int
            How many draws to keep (all of them when there are fewer).
        seed : int
            Seed of the pick.

        Returns
        -------
        xarray.Dataset
            (chain=1, draw, ...), the draws in their original order.

        Examples
        --------
        >>> fit.thinned(20, seed=0).sizes["draw"]  # doctest: +SKIP
        20
        """
        flat = self.posterior.stack(sample=("chain", "draw"))
        size = min(draws, flat.sizes["sample"])
        picked = np.sort(np.random.default_rng(seed).choice(flat.sizes["sample"], size=size, replace=False))
        return (
            flat.isel(sample=picked)
            .drop_vars(["sample", "chain", "draw"])
            .rename_dims(sample="draw")
            .assign_coords(draw=np.arange(size))
            .expand_dims(chain=[0])
            .transpose("chain", "draw", ...)
        )

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
