"""The model specification every stage reads: what a formula says, with its family once decided.

A leaf module (it imports only the error type), so the data, formula, pooling and fitting stages can all
name it without importing each other.
"""

from dataclasses import dataclass, replace

from poolwise.errors import PoolwiseError


@dataclass(frozen=True)
class GroupFactor:
    """One grouping factor and the terms that vary over it: ``(1 + x|g)`` is GroupFactor("g",
    True, ("x",), ("g",), True). A nested factor ``a/b`` gives ``a`` and ``a_b`` (each b within
    its a), whose ``parts`` are ("a", "b"); the data stage makes that column. ``correlated``: the
    terms are a correlated set, as lme4 and brms read ``(1 + x|g)``; ``(1 + x||g)`` and a single
    term are not."""

    name: str
    intercept: bool
    terms: tuple[str, ...]
    parts: tuple[str, ...]
    correlated: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """The varying terms with the intercept first, as summaries name them."""
        return (("Intercept",) if self.intercept else ()) + self.terms


@dataclass(frozen=True)
class FormulaSpec:
    """One model specification: the parts of a formula every stage reads, and its family.

    ``outcome`` is the response column (successes for binomial counts); ``trials`` the trials
    column of ``p(k, n)`` (also set once bernoulli rows are aggregated to counts); ``level`` the
    outcome's success level for a two-valued outcome; ``exposure`` the column of
    ``offset(log(exposure))``; ``family`` a name in ``poolwise.families.FAMILIES``, None until
    the data or the user decide it. ``factors`` are the grouping factors in formula order;
    ``focus`` names the one that per-group tables, figures, decisions and grouped CV speak about
    (default: the first), which ``group``, ``group_intercept`` and ``varying`` describe.
    """

    formula: str
    outcome: str
    trials: str | None
    intercept: bool
    common: tuple[str, ...]
    factors: tuple[GroupFactor, ...]
    variables: tuple[str, ...]
    family: str | None = None
    level: str | None = None
    exposure: str | None = None
    focus: str | None = None

    @property
    def factor(self) -> GroupFactor | None:
        """The grouping factor in focus."""
        found = [f for f in self.factors if f.name == self.focus] or list(self.factors[:1])
        return found[0] if found else None

    @property
    def group(self) -> str | None:
        """The name (data column) of the grouping factor in focus."""
        return self.factor.name if self.factor else None

    @property
    def group_intercept(self) -> bool:
        return bool(self.factor and self.factor.intercept)

    @property
    def varying(self) -> tuple[str, ...]:
        """The terms that vary over the factor in focus."""
        return self.factor.terms if self.factor else ()

    def focused(self, factor: str | None) -> "FormulaSpec":
        """This spec with ``factor`` in focus (None: unchanged); a one-line error naming the factors if unknown."""
        if factor is None:
            return self
        names = [f.name for f in self.factors]
        if factor not in names:
            raise PoolwiseError(
                f"{factor!r} is not a grouping factor of {self.formula!r}; its factors are: {', '.join(names) or 'none'}"
            )
        return replace(self, focus=factor)

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
        """The term whose effect the decisions and figures report: the first group-varying slope
        (of any factor, in formula order), else the first common term."""
        candidates = [term for f in self.factors for term in f.terms] or list(self.common)
        return candidates[0] if candidates else None
