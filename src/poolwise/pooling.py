"""The three pooling strategies as data: each one turns a ``FormulaSpec`` into a Bambi formula."""

from collections.abc import Callable
from dataclasses import dataclass

from poolwise import choices
from poolwise.choices import registry
from poolwise.errors import PoolwiseError
from poolwise.families import family as find_family
from poolwise.formulas import parse_formula
from poolwise.spec import FormulaSpec


def _join(spec: FormulaSpec, terms: list[str]) -> str:
    """The model formula: response ~ terms, with the offset (if any) in every model."""
    terms = terms + ([spec.offset] if spec.offset else [])
    return f"{spec.response} ~ {' + '.join(terms) if terms else '1'}"


def _complete(spec: FormulaSpec) -> str:
    terms = ([] if spec.intercept else ["0"]) + list(spec.common)
    return _join(spec, terms)


def _none(spec: FormulaSpec) -> str:
    """Every factor's terms as fixed effects: the first factor with an intercept gets one per level
    (``0 + C(a)``), the others reference-coded ``C(b)``; slopes per level ``C(a):x``. An ordinal
    family's thresholds take the intercept's place, so its first factor is reference-coded too."""
    varying = {term for factor in spec.factors for term in factor.terms}
    fixed = [term for term in spec.common if term not in varying]
    intercepts = [f"C({factor.name})" for factor in spec.factors if factor.intercept]
    if (
        spec.family and find_family(spec.family).ordinal
    ):  # the thresholds are the intercept: code levels against the first
        terms = intercepts
    else:
        terms = ["0", *intercepts] if intercepts else ([] if spec.intercept else ["0"])
    terms += fixed + [f"C({factor.name}):{term}" for factor in spec.factors for term in factor.terms]
    return _join(spec, terms)


def _partial(spec: FormulaSpec) -> str:
    terms = ([] if spec.intercept else ["0"]) + list(spec.common)
    for factor in spec.factors:
        varying = (["1"] if factor.intercept else ["0"]) + list(factor.terms)
        terms.append(f"({' + '.join(varying)}|{factor.name})")
    return _join(spec, terms)


@dataclass(frozen=True)
class Pooling:
    """One pooling strategy: its canonical name, the names users also type, and its formula.

    Parameters
    ----------
    name : str
        ``"complete"``, ``"none"`` or ``"partial"``.
    aliases : tuple of str
        Other names ``pooling`` accepts (``"pooled"``, ``"unpooled"``, ``"hierarchical"``, ...).
    label : str
        The name in words, e.g. ``"Partial pooling"``.
    description : str
        What the model assumes, in one line.
    build : callable
        ``build(spec)`` returns the model's Bambi formula for a ``FormulaSpec``.

    Examples
    --------
    >>> [entry.name for entry in POOLINGS]
    ['complete', 'none', 'partial']
    """

    name: str
    aliases: tuple[str, ...]
    label: str
    description: str
    build: Callable[[FormulaSpec], str]


# In the order of choices.POOLINGS, which model k of a comparison follows (poolwise.seeds).
POOLINGS = tuple(
    registry(
        choices.POOLINGS,
        {
            entry.name: entry
            for entry in (
                Pooling(
                    "complete",
                    ("pooled", "complete-pooling"),
                    "Complete pooling",
                    "one rate per treatment for every group: the group terms are dropped",
                    _complete,
                ),
                Pooling(
                    "none",
                    ("no-pooling", "unpooled", "no"),
                    "No pooling",
                    "every group on its own: one intercept and slope per group with fixed priors",
                    _none,
                ),
                Pooling(
                    "partial",
                    ("hierarchical", "partial-pooling", "multilevel"),
                    "Partial pooling",
                    "groups drawn from a shared population: the formula as written",
                    _partial,
                ),
            )
        },
        "poolings",
    ).values()
)


def pooling(name: str) -> Pooling:
    """Look a pooling strategy up by its name or an alias.

    Parameters
    ----------
    name : str
        A canonical name (complete, none, partial) or an alias (pooled, unpooled, hierarchical, ...).

    Returns
    -------
    Pooling
        The strategy's record.

    Raises
    ------
    PoolwiseError
        ``name`` is neither a name nor an alias.

    Examples
    --------
    >>> pooling("hierarchical").label
    'Partial pooling'
    """
    for entry in POOLINGS:
        if name == entry.name or name in entry.aliases:
            return entry
    known = ", ".join(f"{p.name} ({'/'.join(p.aliases)})" for p in POOLINGS)
    raise PoolwiseError(f"unknown pooling {name!r}; use one of: {known}")


def templates(formula: str | FormulaSpec) -> dict[str, str]:
    """The Bambi formulas of the three pooling models that ``formula`` implies, without fitting.

    Parameters
    ----------
    formula : str or FormulaSpec
        An lme4/brms-style formula with at least one group term, or its parsed form.

    Returns
    -------
    dict of str to str
        Pooling name (complete, none, partial) -> Bambi formula.

    Raises
    ------
    PoolwiseError
        The formula has no group term (or cannot be parsed).

    Examples
    --------
    >>> templates("y ~ x + (x|g)")["none"]
    'y ~ 0 + C(g) + C(g):x'
    """
    spec = formula if isinstance(formula, FormulaSpec) else parse_formula(formula)
    if spec.group is None:
        raise PoolwiseError(
            f"formula {spec.formula!r} has no group term; add one such as (1|group) or (x|group) to compare pooling"
        )
    return {entry.name: entry.build(spec) for entry in POOLINGS}
