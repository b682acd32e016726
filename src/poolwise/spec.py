"""The model specification every stage reads: what a formula says, with its family once decided.

A leaf module (it imports only the error type), so the data, formula, pooling and fitting stages can all
name it without importing each other.
"""

from dataclasses import dataclass, replace

from poolwise.errors import PoolwiseError


@dataclass(frozen=True)
class GroupFactor:
    """One grouping factor and the terms that vary over it.

    ``(1 + x|g)`` is ``GroupFactor("g", True, ("x",), ("g",), True)``. A nested factor ``a/b`` gives
    ``a`` and ``a_b`` (each b within its a), whose ``parts`` are ("a", "b"); the data stage makes that
    column.

    Parameters
    ----------
    name : str
        The factor's data column.
    intercept : bool
        Whether the intercept varies over it.
    terms : tuple of str
        The slopes that vary over it.
    parts : tuple of str
        The columns it is made of (one, or two for a nested ``a/b``).
    correlated : bool
        Whether its terms are a correlated set, as lme4 and brms read ``(1 + x|g)``; ``(1 + x||g)``
        and a single term are not.

    Examples
    --------
    >>> from poolwise import parse_formula
    >>> parse_formula("y ~ x + (x|g)").factors[0]
    GroupFactor(name='g', intercept=True, terms=('x',), parts=('g',), correlated=True)
    """

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

    Parameters
    ----------
    formula : str
        The formula as written.
    outcome : str
        The response column (successes for binomial counts).
    trials : str or None
        The trials column of ``p(k, n)`` (also set once bernoulli rows are aggregated to counts).
    intercept : bool
        Whether the model has a population intercept.
    common : tuple of str
        The common (population-level) terms.
    factors : tuple of GroupFactor
        The grouping factors, in formula order.
    variables : tuple of str
        Every data column the formula reads.
    family : str, optional
        A name in ``poolwise.families.FAMILIES``; None until the data or the user decide it.
    level : str, optional
        The success level of a two-valued outcome.
    exposure : str, optional
        The column of ``offset(log(exposure))``.
    focus : str, optional
        The grouping factor that per-group tables, figures, decisions and grouped CV speak about
        (default: the first); ``group``, ``group_intercept`` and ``varying`` describe it.

    Examples
    --------
    >>> from poolwise import parse_formula
    >>> spec = parse_formula("p(k, n) ~ x + (x|g)")
    >>> spec.outcome, spec.trials, spec.group, spec.treatment
    ('k', 'n', 'g', 'x')
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
        """This spec with grouping factor ``factor`` in focus.

        Parameters
        ----------
        factor : str or None
            A grouping factor of the formula; None leaves the spec as it is.

        Returns
        -------
        FormulaSpec
            A copy with ``focus`` set.

        Raises
        ------
        PoolwiseError
            ``factor`` is not one of the formula's grouping factors.

        Examples
        --------
        >>> from poolwise import parse_formula
        >>> parse_formula("y ~ 1 + (1|store) + (1|week)").focused("week").group
        'week'
        """
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
