"""Read a brms/lme4-style formula into its parts, refusing anything that could run code.

formulae parses the formula (we do not re-implement that); this module checks what it found
against the data and an allow-list of transforms, and hands back a small ``FormulaSpec``.
"""

import re
from dataclasses import replace

import numpy as np
import pandas as pd
from formulae import model_description
from formulae.categorical import ENCODINGS
from formulae.parser import Parser
from formulae.scanner import Scanner
from formulae.terms.call_resolver import LazyCall, LazyOperator, LazyValue, LazyVariable
from formulae.terms.terms import Intercept, Term
from formulae.transforms import TRANSFORMS

from poolwise.data import infer_family, one_line, success_level
from poolwise.errors import PoolwiseError
from poolwise.families import FAMILIES, Family
from poolwise.families import family as find_family
from poolwise.spec import FormulaSpec, GroupFactor

# Functions a formula may call: formulae's own transforms plus elementwise math, evaluated in
# this explicit namespace rather than the caller's, so `os.remove(...)` can never run.
NAMESPACE = {
    "log": np.log,
    "log1p": np.log1p,
    "log2": np.log2,
    "log10": np.log10,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
}
ALLOWED_CALLS = frozenset(TRANSFORMS) | frozenset(NAMESPACE)
EXAMPLE = "y ~ x + (x|group)"
_I_CALL = re.compile(r"\bI\((?:[^()]|\([^()]*\))*\)")  # I(...) with one level of parentheses inside
_DOUBLE_BAR = re.compile(r"\|\|\s*([\w\s.:/]+?)\s*\)")  # the factor of (x||g), (x||a/b)
_OFFSET = re.compile(r"^offset\(log\(([\w.]+)\)\)$")
_CBIND = re.compile(r"^\s*cbind\(\s*([\w.]+)\s*,\s*([\w.]+)\s*-\s*([\w.]+)\s*\)\s*~")
_PROPORTION = {"p", "prop", "proportion"}


def translate_cbind(formula: str) -> str:
    """lme4's ``cbind(k, n - k) ~ ...`` as Bambi's ``p(k, n) ~ ...``; other formulas unchanged.

    Parameters
    ----------
    formula : str
        A formula, possibly with a ``cbind()`` response.

    Returns
    -------
    str
        The formula with a ``p(successes, trials)`` response.

    Raises
    ------
    PoolwiseError
        A ``cbind()`` that is not ``cbind(successes, trials - successes)``.

    Examples
    --------
    >>> translate_cbind("cbind(k, n - k) ~ x + (1|g)")
    'p(k, n) ~ x + (1|g)'
    """
    if not formula.lstrip().startswith("cbind("):
        return formula
    match = _CBIND.match(formula)
    if not match or match.group(1) != match.group(3):
        raise PoolwiseError(
            "cbind() is read only as cbind(successes, trials - successes); write it that way or use p(successes, trials)"
        )
    k, n = match.group(1), match.group(2)
    return f"p({k}, {n}) ~" + formula[match.end() :]


def parse_formula(
    formula: str, data: pd.DataFrame | None = None, *, family: str | None = None, link: str | None = None
) -> FormulaSpec:
    """Split ``formula`` into response, common terms, grouping factors and group-varying terms.

    Any function call outside ``ALLOWED_CALLS`` (or any attribute access such as ``os.getpid()``) is
    refused before anything is evaluated. lme4's spellings are read as lme4 reads them: ``(x||g)``
    (independent terms), ``factor(x)``, ``I(x^2)``, ``a/b`` (nested), ``cbind(k, n - k)``,
    ``offset(log(exposure))``.

    Parameters
    ----------
    formula : str
        An lme4/brms-style formula, e.g. ``"p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"``.
    data : pandas.DataFrame, optional
        With data, every column the formula names must exist and the family is decided from the
        outcome (see ``resolve_family``).
    family : str, optional
        The outcome family; wins over what the data suggest.
    link : str, optional
        The link, where the family has several (bernoulli, binomial, beta_binomial: logit,
        probit, cloglog); default: the family's own.

    Returns
    -------
    FormulaSpec
        The formula's parts, with the family once data or ``family`` decide it (``Family.key``:
        ``binomial(probit)`` with a link other than the default).

    Raises
    ------
    PoolwiseError
        The formula cannot be read, calls a function outside the allow-list, has no response, names
        a column the data lack, or its family does not fit the response.

    Examples
    --------
    >>> spec = parse_formula("p(k, n) ~ x + (x|g)")
    >>> spec.outcome, spec.trials, spec.group, spec.treatment, spec.family
    ('k', 'n', 'g', 'x', 'binomial')
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise PoolwiseError(f"formula {formula!r} has no '~'; write it as {EXAMPLE}")
    written = translate_cbind(formula.strip())
    formula = lme4_spellings(written)
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
        raise PoolwiseError(
            f"cannot read formula {formula!r} from {parser.peek().lexeme!r} on (a missing '+'?); write it as {EXAMPLE}"
        )
    if description.response is None:
        raise PoolwiseError(f"formula {formula!r} has no response; write it as {EXAMPLE}")

    names: set[str] = set()
    for term in [description.response.term, *description.common_terms, *description.group_terms]:
        _check_calls(term, names)
    outcome, trials, level = _response(description.response.term, formula)

    offsets = [term for term in description.common_terms if isinstance(term, Term) and term.name.startswith("offset(")]
    exposure = _exposure(offsets)
    for term in [*description.common_terms, *(term.expr for term in description.group_terms)]:
        if isinstance(term, Term) and term not in offsets:
            _check_written_back(term)
    common = tuple(term.name for term in description.common_terms if isinstance(term, Term) and term not in offsets)
    intercept = any(isinstance(term, Intercept) for term in description.common_terms)
    factors = _factors(description.group_terms, independent=_independent(written))
    variables = tuple(sorted(names - set(ENCODINGS)))
    if data is not None:
        missing = [name for name in (*variables, outcome) if name not in data.columns]
        if missing:
            shown = one_line(", ".join(map(str, data.columns[:12])))
            raise PoolwiseError(
                f"column {missing[0]!r} is not in the data; the columns are: {shown}. Fix the formula or the data"
            )
    spec = FormulaSpec(
        formula=written,
        outcome=outcome,
        trials=trials,
        intercept=intercept,
        common=common,
        factors=factors,
        variables=variables,
        level=level,
        exposure=exposure,
    )
    return resolve_family(spec, data, family, link)


def _independent(formula: str) -> set[str]:
    """The factors written with lme4's ``||`` (independent terms), by poolwise's factor names."""
    names = set()
    for factor in _DOUBLE_BAR.findall(formula):
        parts = [part.strip() for part in re.split(r"[/:]", factor)]
        if "/" in factor:  # a/b is a and a_b
            names.update("_".join(parts[: i + 1]) for i in range(len(parts)))
        else:
            names.add("_".join(parts))
    return names


def _factors(group_terms: list, *, independent: set[str] = frozenset()) -> tuple[GroupFactor, ...]:
    """The grouping factors in formula order, each with its intercept and varying terms; a
    nested factor (``a/b``, or ``a:b``) is named ``a_b``. Two or more terms varying over a factor
    are correlated unless the factor is in ``independent`` (written ``||``)."""
    found: dict[str, dict] = {}
    for term in group_terms:
        parts = tuple(component.name for component in term.factor.components)
        for part in parts:
            if not _plain(str(part)):
                raise PoolwiseError(f"grouping factor {part!r} must be a plain column name; write (x|column)")
        entry = found.setdefault("_".join(parts), {"parts": parts, "intercept": False, "terms": []})
        if isinstance(term.expr, Intercept):
            entry["intercept"] = True
        elif isinstance(term.expr, Term):
            entry["terms"].append(term.expr.name)
    return tuple(
        GroupFactor(
            name,
            entry["intercept"],
            tuple(entry["terms"]),
            entry["parts"],
            correlated=name not in independent and entry["intercept"] + len(entry["terms"]) > 1,
        )
        for name, entry in found.items()
    )


def lme4_spellings(formula: str) -> str:
    """lme4's spellings in formulae's.

    ``(x||g)`` becomes ``(x|g)`` (which terms are independent is read separately), ``factor(x)``
    becomes ``C(x)`` and ``^`` inside ``I()`` a power (``I(x^2)`` is ``I(x**2)``).

    Parameters
    ----------
    formula : str
        A formula in lme4's spelling.

    Returns
    -------
    str
        The same formula as formulae reads it.

    Examples
    --------
    >>> lme4_spellings("y ~ factor(a) + I(x^2) + (x||g)")
    'y ~ C(a) + I(x**2) + (x|g)'
    """
    formula = formula.replace("||", "|")
    formula = re.sub(r"\bfactor\s*\(", "C(", formula)
    return _I_CALL.sub(lambda match: match.group(0).replace("^", "**"), formula)


def resolve_family(
    spec: FormulaSpec, data: pd.DataFrame | None, family: str | None = None, link: str | None = None
) -> FormulaSpec:
    """``spec`` with its family (and a two-valued outcome's success level) decided.

    An explicit ``family`` wins. Otherwise, as lme4 would read the data: ``p()``/``cbind()`` counts
    are binomial; a two-valued outcome (0/1, bool, TRUE/FALSE, or a two-level string such as "Y"/"N")
    is bernoulli with the second level in sorted order as success, unless written
    ``y[level] ~ ...``; a real-valued outcome is gaussian. Non-negative integers with more than two
    values are ambiguous and refused. Without ``data`` only the formula's form decides.

    Parameters
    ----------
    spec : FormulaSpec
        A parsed formula.
    data : pandas.DataFrame or None
        The data, whose outcome column decides the family.
    family : str, optional
        An explicit family (a name or alias in ``poolwise.families``).
    link : str, optional
        The link of the family, explicit or read from the data (``poolwise.families.family``).

    Returns
    -------
    FormulaSpec
        ``spec`` with ``family`` (``Family.key``: with its link where not the default) and
        ``level`` set.

    Raises
    ------
    PoolwiseError
        The family does not fit the response (counts out of trials that are not binomial, an offset
        outside the count families), has no such link, or the data leave it ambiguous.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"y": [0, 1, 1, 0], "x": [0, 1, 0, 1], "g": [1, 1, 2, 2]})
    >>> resolve_family(parse_formula("y ~ x + (1|g)"), frame).family
    'bernoulli'
    """
    if family is not None:
        chosen = find_family(family, link)
        family, link = chosen.name, (link if chosen.link == find_family(chosen.name).link else chosen.link)
        if family == "binomial" and spec.trials is None:
            family = "bernoulli"  # glmer's binomial family on one 0/1 outcome per row
    elif spec.trials is not None:
        family = "binomial"
    elif spec.level is not None:
        family = "bernoulli"
    if spec.trials is not None and family not in ("binomial", "beta_binomial"):
        raise PoolwiseError(
            f"{spec.response} is a count of successes out of trials, which the binomial and beta_binomial "
            f"families model; drop --family {family} or write the outcome alone"
        )
    if family == "beta_binomial" and spec.trials is None:
        raise PoolwiseError(
            f"beta_binomial models successes out of trials, and {spec.response} is one outcome per row; write "
            "the response as p(successes, trials) or use --family bernoulli"
        )
    if spec.exposure is not None and family is not None and not _rate_family(find_family(family)):
        raise PoolwiseError(
            f"offset(log({spec.exposure})) makes a rate per unit of exposure, which poolwise supports for "
            f"count families only ({', '.join(name for name, f in FAMILIES.items() if _rate_family(f))}); "
            "use --family poisson or drop the offset"
        )
    if data is None:
        return replace(spec, family=_keyed(family, link))
    values = data[spec.outcome]
    if family is None:
        family = infer_family(values, spec.outcome, exposure=spec.exposure)
    level = spec.level
    if family == "bernoulli":
        level = success_level(values, spec.outcome, level)
    return replace(spec, family=_keyed(family, link), level=level)


def _keyed(name: str | None, link: str | None) -> str | None:
    """The family's key with ``link`` (refused where the family has no such link)."""
    return find_family(name, link).key if name is not None and link is not None else name


def _rate_family(family: Family) -> bool:
    """Whether ``offset(log(exposure))`` makes a rate: counts with a log link, not out of trials,
    whose mean grows in proportion to the exposure (not a hurdle's)."""
    return family.counts and not family.trials and family.link == "log" and not family.name.startswith("hurdle")


def _response(term: Term, formula: str) -> tuple[str, str | None, str | None]:
    """(outcome, trials, success level) of the response."""
    component = term.components[0]
    if isinstance(component.call if hasattr(component, "call") else None, LazyCall):
        call = component.call
        args = call.args
        if call.callee in _PROPORTION and len(args) == 2 and all(isinstance(a, LazyVariable) for a in args):
            return args[0].name, args[1].name, None
        raise PoolwiseError(
            f"response {component.name} is not a column or a count pair; write y, p(successes, trials) or "
            "cbind(successes, trials - successes), and compute transformed outcomes as a data column"
        )
    if len(term.components) == 1 and hasattr(component, "name") and _plain(component.name):
        reference = getattr(component, "reference", None)
        return component.name, None, None if reference is None else str(reference)
    raise PoolwiseError(f"cannot read the response of {formula!r}; write it as {EXAMPLE}")


def _exposure(offsets: list[Term]) -> str | None:
    """The exposure column of lme4's ``offset(log(exposure))``; other offsets are refused."""
    if len(offsets) > 1:
        raise PoolwiseError("formula has more than one offset(); write a single offset(log(exposure))")
    if not offsets:
        return None
    match = _OFFSET.match(offsets[0].name.replace(" ", ""))
    if match is None:
        raise PoolwiseError(
            f"poolwise reads offsets only as offset(log(exposure)), not {offsets[0].name}; "
            "pass the exposure itself (a time, population or count of units > 0) inside log()"
        )
    return match.group(1)


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
        if (
            following.kind == "LEFT_PAREN"
            and token.kind in ("IDENTIFIER", "BQNAME")
            and token.lexeme not in ALLOWED_CALLS
        ):
            _refuse_call(token.lexeme)


def _refuse_call(callee: str) -> None:
    allowed = ", ".join(sorted(ALLOWED_CALLS))
    raise PoolwiseError(f"formula calls {one_line(callee)}(), which poolwise does not allow; use only: {allowed}")


def _plain(name: str) -> bool:
    """Whether formulae reads ``name`` unquoted as this one variable. The pooling templates write
    names unquoted, so a backquoted name such as `os.remove("f")` would come back as a call."""
    return (
        isinstance(name, str)
        and name[:1].isalpha()
        and all(ch.isalnum() or ch in "._" for ch in name)
        and name not in ("True", "False", "None")
    )


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
