"""Read a brms/lme4-style formula into its parts, refusing anything that could run code.

formulae parses the formula (we do not re-implement that); this module checks what it found
against the data and an allow-list of transforms, and hands back a small ``FormulaSpec``.
"""

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulae import model_description
from formulae.categorical import ENCODINGS
from formulae.parser import Parser
from formulae.scanner import Scanner
from formulae.terms.call_resolver import LazyCall, LazyOperator, LazyValue, LazyVariable
from formulae.terms.terms import Intercept, Term
from formulae.transforms import TRANSFORMS

from poolwise.data import one_line
from poolwise.errors import PoolwiseError

# Functions a formula may call: formulae's own transforms plus elementwise math, evaluated in
# this explicit namespace rather than the caller's, so `os.remove(...)` can never run.
NAMESPACE = {"log": np.log, "log1p": np.log1p, "log2": np.log2, "log10": np.log10, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs}
ALLOWED_CALLS = frozenset(TRANSFORMS) | frozenset(NAMESPACE)
EXAMPLE = "p(successes, trials) ~ x + (x|group)"
_CBIND = re.compile(r"^\s*cbind\(\s*(\w+)\s*,\s*(\w+)\s*-\s*(\w+)\s*\)\s*~")
_PROPORTION = {"p", "prop", "proportion"}


@dataclass(frozen=True)
class FormulaSpec:
    """The parts of a rate formula that the pooling templates need.

    ``trials`` is None for a row-level 0/1 outcome (``signed ~ x + (x|g)``), which poolwise
    aggregates to counts before fitting.
    """

    formula: str
    successes: str
    trials: str | None
    intercept: bool
    common: tuple[str, ...]
    group: str | None
    group_intercept: bool
    varying: tuple[str, ...]
    variables: tuple[str, ...]

    @property
    def response(self) -> str:
        """The response as Bambi reads it."""
        trials = self.trials or f"{self.successes}_n"
        return f"p({self.successes}, {trials})"

    @property
    def treatment(self) -> str | None:
        """The term whose effect the decisions and figures report: the first group-varying slope,
        else the first common term."""
        candidates = self.varying or self.common
        return candidates[0] if candidates else None


def translate_cbind(formula: str) -> str:
    """lme4's ``cbind(k, n - k) ~ ...`` is Bambi's ``p(k, n) ~ ...``."""
    if not formula.lstrip().startswith("cbind("):
        return formula
    match = _CBIND.match(formula)
    if not match or match.group(1) != match.group(3):
        raise PoolwiseError(
            "cbind() is read only as cbind(successes, trials - successes); write it that way or use p(successes, trials)"
        )
    k, n = match.group(1), match.group(2)
    return f"p({k}, {n}) ~" + formula[match.end():]


def parse_formula(formula: str, data: pd.DataFrame | None = None) -> FormulaSpec:
    """Split ``formula`` into response, common terms, grouping factor and group-varying terms.

    With ``data``, every column the formula names must exist. Any function call outside
    ``ALLOWED_CALLS`` (or any attribute access such as ``os.getpid()``) is refused before
    anything is evaluated.
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise PoolwiseError(f"formula {formula!r} has no '~'; write it as {EXAMPLE}")
    formula = translate_cbind(formula.strip())
    try:
        tokens = Scanner(formula).scan()
        _refuse_calls(tokens)
        description = model_description(formula)
        parser = Parser(tokens)
        parser.parse()
    except PoolwiseError:
        raise
    except Exception as err:  # formulae raises several unrelated types for syntax errors
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PoolwiseError(f"cannot read formula {formula!r} ({one_line(detail)}); write it as {EXAMPLE}") from None
    if not parser.at_end():  # formulae stops at the first token it cannot place and drops the rest
        raise PoolwiseError(f"cannot read formula {formula!r} from {parser.peek().lexeme!r} on (a missing '+'?); write it as {EXAMPLE}")
    if description.response is None:
        raise PoolwiseError(f"formula {formula!r} has no response; write it as {EXAMPLE}")

    names: set[str] = set()
    for term in [description.response.term, *description.common_terms, *description.group_terms]:
        _check_calls(term, names)
    successes, trials = _response(description.response.term, formula)

    for term in [*description.common_terms, *(term.expr for term in description.group_terms)]:
        if isinstance(term, Term):
            _check_written_back(term)
    common = tuple(term.name for term in description.common_terms if isinstance(term, Term))
    intercept = any(isinstance(term, Intercept) for term in description.common_terms)
    factors = {term.factor.name for term in description.group_terms}
    if len(factors) > 1:
        raise PoolwiseError(
            f"formula has {len(factors)} grouping factors ({', '.join(sorted(factors))}); "
            "poolwise's pooling templates need exactly one, e.g. (x|group)"
        )
    group = factors.pop() if factors else None
    if group is not None and not re.fullmatch(r"\w+", group):
        raise PoolwiseError(f"grouping factor {group!r} must be a plain column name; write (x|column)")
    varying = tuple(term.expr.name for term in description.group_terms if isinstance(term.expr, Term))
    group_intercept = any(isinstance(term.expr, Intercept) for term in description.group_terms)

    variables = tuple(sorted(names - set(ENCODINGS)))
    if data is not None:
        missing = [name for name in variables if name not in data.columns]
        if missing:
            shown = one_line(", ".join(map(str, data.columns[:12])))
            raise PoolwiseError(
                f"column {missing[0]!r} is not in the data; the columns are: {shown}. Fix the formula or the data"
            )
    return FormulaSpec(
        formula=formula,
        successes=successes,
        trials=trials,
        intercept=intercept,
        common=common,
        group=group,
        group_intercept=group_intercept,
        varying=varying,
        variables=variables,
    )


def _response(term: Term, formula: str) -> tuple[str, str | None]:
    component = term.components[0]
    if isinstance(component.call if hasattr(component, "call") else None, LazyCall):
        call = component.call
        args = call.args
        if call.callee in _PROPORTION and len(args) == 2 and all(isinstance(a, LazyVariable) for a in args):
            return args[0].name, args[1].name
        raise PoolwiseError(
            f"response {component.name} is not a count pair; write p(successes, trials) or cbind(successes, trials - successes)"
        )
    if len(term.components) == 1 and hasattr(component, "name") and re.fullmatch(r"\w+", component.name):
        return component.name, None
    raise PoolwiseError(f"cannot read the response of {formula!r}; write it as {EXAMPLE}")


def _check_calls(term, names: set[str]) -> None:
    """Collect variable names and refuse calls outside the allow-list, recursing into arguments."""
    stack = []
    for component in getattr(term, "components", []):
        stack.append(component.call if hasattr(component, "call") else LazyVariable(component.name))
    for attr in ("expr", "factor"):
        if hasattr(term, attr):
            _check_calls(getattr(term, attr), names)
    while stack:
        node = stack.pop()
        if isinstance(node, LazyCall):
            if node.callee not in ALLOWED_CALLS:
                _refuse_call(node.callee)
            stack.extend(node.args)
            stack.extend(node.kwargs.values())
        elif isinstance(node, LazyOperator):
            stack.extend(node.args)
        elif isinstance(node, LazyVariable):
            if not _plain(node.name):
                raise PoolwiseError(
                    f"formula names {node.name!r}, which is not a plain column name (a letter, then letters, digits, '.' or '_', and not True, False or None); rename the column"
                )
            names.add(node.name)
        elif not isinstance(node, LazyValue):
            raise PoolwiseError(f"formula contains {node}, which poolwise cannot check; simplify the term")


def _refuse_calls(tokens: list) -> None:
    """Refuse every name written as a call that is not an allowed transform, before parsing: this
    also covers text that never becomes a term (``x - os.remove("f")`` removes a term)."""
    for token, following in zip(tokens, tokens[1:]):
        if following.kind == "LEFT_PAREN" and token.kind in ("IDENTIFIER", "BQNAME") and token.lexeme not in ALLOWED_CALLS:
            _refuse_call(token.lexeme)


def _refuse_call(callee: str) -> None:
    allowed = ", ".join(sorted(ALLOWED_CALLS))
    raise PoolwiseError(f"formula calls {one_line(callee)}(), which poolwise does not allow; use only: {allowed}")


def _plain(name: str) -> bool:
    """Whether formulae reads ``name`` unquoted as this one variable. The pooling templates write
    names unquoted, so a backquoted name such as `os.remove("f")` would come back as a call."""
    return isinstance(name, str) and name[:1].isalpha() and all(ch.isalnum() or ch in "._" for ch in name) and name not in ("True", "False", "None")


def _check_written_back(term: Term) -> None:
    """The templates hand Bambi each term as text: refuse a term whose text reads as another term
    (formulae drops the parentheses inside calls, so I((x + 1) * z) would come back as I(x + 1 * z))."""
    try:
        same = model_description(f"y ~ 0 + {term.name}").common_terms == [term]
    except Exception:  # any failure to read the text back means it is not the same term
        same = False
    if not same:
        raise PoolwiseError(
            f"the term {term.name!r} does not read back as written (formulae drops parentheses inside calls); "
            "compute it as a data column and use that column"
        )
