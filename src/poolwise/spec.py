"""The model specification every stage reads: what a formula says, with its family once decided.

A leaf module (no poolwise imports), so the data, formula, pooling and fitting stages can all
name it without importing each other.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class FormulaSpec:
    """One model specification: the parts of a formula every stage reads, and its family.

    ``outcome`` is the response column (successes for binomial counts); ``trials`` the trials
    column of ``p(k, n)`` (also set once bernoulli rows are aggregated to counts); ``level`` the
    outcome's success level for a two-valued outcome; ``exposure`` the column of
    ``offset(log(exposure))``; ``family`` a name in ``poolwise.families.FAMILIES``, None until
    the data or the user decide it.
    """

    formula: str
    outcome: str
    trials: str | None
    intercept: bool
    common: tuple[str, ...]
    group: str | None
    group_intercept: bool
    varying: tuple[str, ...]
    variables: tuple[str, ...]
    family: str | None = None
    level: str | None = None
    exposure: str | None = None

    @property
    def response(self) -> str:
        """The response as Bambi reads it."""
        return f"p({self.outcome}, {self.trials})" if self.trials else self.outcome

    @property
    def offset(self) -> str | None:
        """The offset term the templates add to every model, lme4's spelling."""
        return f"offset(log({self.exposure}))" if self.exposure else None

    @property
    def size(self) -> str | None:
        """The column that scales each row's mean: trials, or exposure (None: one unit per row)."""
        return self.trials or self.exposure

    @property
    def treatment(self) -> str | None:
        """The term whose effect the decisions and figures report: the first group-varying slope,
        else the first common term."""
        candidates = self.varying or self.common
        return candidates[0] if candidates else None
