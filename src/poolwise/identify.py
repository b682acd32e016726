"""Identifiability: which coefficients the data cannot decide, found before and after fitting.

Before fitting, ``check_design`` (run by ``fit``, ``compare`` and ``cv``) refuses a design whose
columns are linearly dependent, because then any constant can move between those coefficients
without changing the likelihood and the priors decide the split (the "leaking effect"). ``check``
runs the same checks without fitting and reports them all. After a fit, ``correlated_pairs``
flags what the posterior cannot tell apart and ``contrasts`` reports the differences between
levels, which stay identified, next to the raw level coefficients.
"""

from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from os.path import commonprefix

import numpy as np
import pandas as pd
import xarray as xr
from formulae import design_matrices

from poolwise import adapter
from poolwise.data import one_line, prepare_data
from poolwise.errors import PoolwiseError
from poolwise.formulas import NAMESPACE, parse_formula
from poolwise.pooling import POOLINGS
from poolwise.results import Fit
from poolwise.spec import FormulaSpec

POOLING_NAMES = tuple(entry.name for entry in POOLINGS)
ALLOW = "or pass allow_unidentified=True (--allow-unidentified) to fit anyway with the priors deciding"
_TOL = 1e-8


def null_space(matrix: np.ndarray, tol: float = _TOL) -> np.ndarray:
    """The coefficient changes that leave every linear predictor ``matrix @ b`` as it is.

    These are the directions the data cannot see: along them the priors alone decide.

    Parameters
    ----------
    matrix : numpy.ndarray
        A design matrix, rows x columns.
    tol : float
        Singular values below ``tol`` times the largest count as zero.

    Returns
    -------
    numpy.ndarray
        One row per unseen direction, one column per coefficient; no rows when the columns are
        independent.

    Examples
    --------
    >>> import numpy as np
    >>> null_space(np.array([[1.0, 1.0], [2.0, 2.0]])).shape
    (1, 2)
    """
    if matrix.shape[1] == 0:
        return np.zeros((0, 0))
    # Repeated rows change neither the rank nor the null space; dropping them keeps the SVD at
    # (distinct rows) x columns instead of building a rows x rows U for thousands of rows.
    distinct = np.unique(matrix, axis=0)
    if distinct.shape[0] > distinct.shape[1]:
        distinct = np.linalg.qr(distinct, mode="r")
    _, singular, vt = np.linalg.svd(distinct, full_matrices=True)
    rank = int(np.sum(singular > tol * singular.max(initial=0)))
    return vt[rank:]


@dataclass(frozen=True)
class Design:
    """A design matrix with each column's label and term, plus formulae's term objects.

    Parameters
    ----------
    matrix : numpy.ndarray
        The common-effects design, rows x columns (offsets left out).
    labels : list of str
        Each column's label, as the posterior names it: ``x``, ``C(g)[2]``, ``1|g[3]``.
    terms : list of str
        Each column's term.
    term_objects : dict
        Term -> formulae's term object (levels, contrast matrices).

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> design("p(nSigned, nTrialCustomers) ~ yogaStretch", load_dataset("franchise")).labels
    ['Intercept', 'yogaStretch']
    """

    matrix: np.ndarray
    labels: list[str]
    terms: list[str]
    term_objects: dict

    @cached_property
    def null(self) -> np.ndarray:
        """The design's null space (see ``null_space``), computed once."""
        return null_space(self.matrix)

    def identified(self, weights: np.ndarray) -> bool:
        """Whether the data decide the combination ``weights @ coefficients``.

        Parameters
        ----------
        weights : numpy.ndarray
            One weight per column (``unit`` picks one coefficient; a difference of two units a contrast).

        Returns
        -------
        bool
            True when the combination is orthogonal to the null space.

        Examples
        --------
        >>> from poolwise.data import load_dataset
        >>> found = design("p(nSigned, nTrialCustomers) ~ yogaStretch", load_dataset("franchise"))
        >>> found.identified(found.unit("yogaStretch"))
        True
        """
        return not self.null.size or bool(np.abs(self.null @ weights).max() < 1e-6)

    def unit(self, label: str) -> np.ndarray:
        """The weights that pick one column's coefficient.

        Parameters
        ----------
        label : str
            A column label.

        Returns
        -------
        numpy.ndarray
            1 at that column, 0 elsewhere.

        Examples
        --------
        >>> from poolwise.data import load_dataset
        >>> design("p(nSigned, nTrialCustomers) ~ yogaStretch", load_dataset("franchise")).unit("yogaStretch")
        array([0., 1.])
        """
        return np.eye(len(self.labels))[self.labels.index(label)]


def design(formula: str, data: pd.DataFrame) -> Design:
    """The common-effects design of ``formula`` on ``data``, built by formulae as Bambi builds it.

    Parameters
    ----------
    formula : str
        A Bambi formula (one pooling template).
    data : pandas.DataFrame
        The prepared data.

    Returns
    -------
    Design
        The matrix, its column labels and terms; empty without common terms.

    Raises
    ------
    PoolwiseError
        formulae cannot code a term on these data (a factor with one level, ...).

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> design("p(nSigned, nTrialCustomers) ~ 0 + C(gymID)", load_dataset("franchise")).matrix.shape
    (48, 12)
    """
    try:
        common = design_matrices(formula, data, na_action="error", extra_namespace=NAMESPACE).common
    except ValueError as err:  # formulae's word on a term the data cannot code (one level, ...)
        raise PoolwiseError(
            f"cannot code the terms of {formula.split('~', 1)[-1].strip()!r} on these data "
            f"({one_line(str(err).strip().splitlines()[0])}); drop or recode that term"
        ) from None
    if common is None:
        return Design(np.zeros((len(data), 0)), [], [], {})
    labels, terms, keep = [], [], []
    matrix = np.asarray(common.design_matrix, dtype=float)
    column = 0
    for name, term in common.terms.items():
        width = len(term.labels)
        # An offset is a column of the design with a fixed coefficient of 1, not a coefficient.
        if not name.startswith("offset("):
            labels.extend(term.labels)
            terms.extend([name] * width)
            keep.extend(range(column, column + width))
        column += width
    return Design(matrix[:, keep], labels, terms, {name: term for name, term in common.terms.items() if name in terms})


def dependent_terms(matrix: np.ndarray, names: list[str], tol: float = _TOL) -> list[str]:
    """The terms whose columns take part in a linear dependency.

    Parameters
    ----------
    matrix : numpy.ndarray
        A design matrix.
    names : list of str
        Each column's term.
    tol : float
        As in ``null_space``.

    Returns
    -------
    list of str
        The terms, each once, in column order; empty when the columns are independent.

    Examples
    --------
    >>> import numpy as np
    >>> dependent_terms(np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]), ["Intercept", "x", "z"])
    ['Intercept', 'x']
    """
    null = null_space(matrix, tol)
    loaded = np.flatnonzero(np.abs(null).max(axis=0) > 1e-6) if null.size else []
    return list(dict.fromkeys(names[i] for i in loaded))


def indicator_sets(found: Design) -> list[list[int]]:
    """Sets of single-column 0/1 terms that add up to 1 on every row.

    A factor coded by hand with one indicator per level, as in ``b0 + beta[level]``.

    Parameters
    ----------
    found : Design
        A design.

    Returns
    -------
    list of list of int
        Column indices of each set.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"a": [1, 0, 1, 0], "b": [0, 1, 0, 1], "y": [1.0, 2.0, 3.0, 4.0]})
    >>> indicator_sets(design("y ~ 0 + a + b", rows))
    [[0, 1]]
    """
    matrix = found.matrix
    binary = [
        i
        for i in range(matrix.shape[1])
        if found.terms[i] == found.labels[i] != "Intercept"
        and set(np.unique(matrix[:, i])) <= {0.0, 1.0}
        and matrix[:, i].any()
    ]
    sets, used = [], set()
    for i in binary:
        if i in used:
            continue
        members = [i]
        for j in binary:
            # A level's indicator never fires on a row where another level's already does.
            if j > i and j not in used and not (matrix[:, members].sum(axis=1) * matrix[:, j]).any():
                members.append(j)
        if len(members) > 1 and np.allclose(matrix[:, members].sum(axis=1), 1):
            sets.append(members)
            used.update(members)
    return sets


def _set_name(labels: list[str]) -> tuple[str, list[str]]:
    """``trial_control_0, trial_control_1`` -> ``trial_control`` with levels ``0, 1``."""
    prefix = commonprefix(labels)
    stem = prefix.rstrip("_.[ ")
    if stem and all(len(label) > len(prefix) for label in labels):
        return stem, [label[len(prefix) :] for label in labels]
    return " + ".join(labels), list(labels)


def _rank(matrix: np.ndarray) -> int:
    return int(np.linalg.matrix_rank(matrix)) if matrix.shape[1] else 0


def _spans_groups(matrix: np.ndarray, groups) -> bool:
    """Whether the columns of ``matrix`` span the indicator of every group: the common terms then
    separate every level, and a varying intercept only repeats them.

    Group j's indicator, regressed on the columns X, leaves the residual sum of squares
    ``n_j - s_j' (X'X)^+ s_j`` with ``s_j`` the column sums over its rows, so neither a rows x groups
    matrix (InstEval: 73,421 x 2,972) nor an SVD cubic in the groups is needed. Columns are scaled
    to unit norm first, which keeps ``X'X`` well conditioned.
    """
    codes = pd.factorize(pd.Series(np.asarray(groups)))[0]
    counts = np.bincount(codes).astype(float)
    if matrix.shape[1] == 0:
        return False
    norms = np.linalg.norm(matrix, axis=0)
    scaled = matrix / np.where(norms > 0, norms, 1.0)
    sums = pd.DataFrame(scaled).groupby(codes).sum().to_numpy()
    solved = np.linalg.lstsq(scaled.T @ scaled, sums.T, rcond=None)[0]
    residual = counts - np.einsum("jp,pj->j", sums, solved)
    return bool((residual <= _TOL * counts).all())


def _common_finding(spec: FormulaSpec, data: pd.DataFrame, complete_formula: str) -> dict:
    found = design(complete_formula, data)
    terms = dependent_terms(found.matrix, found.terms)
    k = found.matrix.shape[1]
    row = {"check": "common terms", "models": ", ".join(POOLING_NAMES)}
    if not terms:
        return row | {"status": "ok", "message": f"{k} columns of rank {k}: the data identify every common coefficient"}
    sets = [[found.labels[i] for i in members] for members in indicator_sets(found)]
    sets = [labels for labels in sets if set(labels) <= set(terms)]
    detail = f"design rank {_rank(found.matrix)} for {k} columns"
    if sets:
        sums = " and ".join(" + ".join(labels) for labels in sets)
        detail += f": {sums} {'each add' if len(sets) > 1 else 'adds'} up to 1 on every row"
        stems = [_set_name(labels)[0] for labels in sets]
        if all(stem in data.columns for stem in stems):
            recode = f"write {' + '.join(f'C({stem})' for stem in stems)} instead of the indicator columns"
        else:
            recode = "code each factor once with C(x)"
        fix = f"{recode} (reference coding, the default; C(x, Sum) for sum-to-zero) or drop one indicator per set"
        if len(sets) == 1 and "Intercept" in terms:
            fix += ", or drop the intercept with 0 + ..."
    else:
        fix = (
            "drop or recode one of them: code each factor once with C(x) (reference coding, the default) "
            "or C(x, Sum) (sum-to-zero), or drop the intercept with 0 + ... if a factor is coded in full"
        )
    return row | {
        "status": "error",
        "message": (
            f"terms {', '.join(terms)} are linearly dependent ({detail}), so the priors, not the data, decide how a "
            f"constant splits between them; {fix}; {ALLOW}"
        ),
    }


def _group_finding(spec: FormulaSpec, data: pd.DataFrame, complete_formula: str) -> dict:
    """(1|g) next to common terms that already separate every level of g adds nothing the data
    can tell apart from them: its deviations and group sd are the prior's."""
    group = spec.group
    found = design(complete_formula, data)
    row = {"check": "group levels", "models": "partial"}
    if not _spans_groups(found.matrix, data[group]):
        return row | {
            "status": "ok",
            "message": f"(1|{group}) is identified: the common terms do not separate all {data[group].nunique()} levels of {group}",
        }
    indicators = pd.get_dummies(data[group]).to_numpy(dtype=float)
    joint = np.hstack([found.matrix, indicators])
    names = [
        name
        for name in dependent_terms(joint, found.terms + [adapter.group_term("Intercept", group)] * indicators.shape[1])
        if name not in ("Intercept", adapter.group_term("Intercept", group))
    ]
    if not names:
        message = f"{group} has a single level, so (1|{group}) cannot be told apart from the intercept; drop (1|{group}), {ALLOW}"
    else:
        one = len(names) == 1
        subject = f"term {names[0]} already separates" if one else f"terms {', '.join(names)} already separate"
        message = (
            f"the common {subject} every level of {group}, so (1|{group}) cannot be told apart from "
            f"{'it' if one else 'them'} and its group sd is the prior's; drop {', '.join(names)} from the common terms "
            f"(keep (1|{group})) or drop (1|{group}); {ALLOW}"
        )
    return row | {"status": "error", "message": message}


def _no_pooling_finding(spec: FormulaSpec, data: pd.DataFrame) -> dict:
    """No pooling gives every group its own intercept, which absorbs any common term that takes
    one value per group (a group-level predictor); partial pooling can still estimate those."""
    group = spec.group
    fixed = [term for term in spec.common if term not in spec.varying]
    row = {"check": "no-pooling intercepts", "models": "none"}
    found = design(f"{spec.response} ~ 0 + C({group})" + "".join(f" + {term}" for term in fixed), data)
    names = [name for name in dependent_terms(found.matrix, found.terms) if name != adapter.unpooled_intercept(group)]
    if not names:
        return row | {"status": "ok", "message": f"no common term takes a single value within every {group}"}
    return row | {
        "status": "error",
        "message": (
            f"{', '.join(names)} {'takes' if len(names) == 1 else 'take'} one value per {group}, so the no-pooling model's "
            f"per-{group} intercepts absorb {'it' if len(names) == 1 else 'them'}; fit partial pooling alone "
            f"(pooling='partial'), drop {'it' if len(names) == 1 else 'them'}, {ALLOW}"
        ),
    }


def _no_pooling_design(spec: FormulaSpec, data: pd.DataFrame) -> dict:
    """With several factors, no pooling's fixed effects may be linearly dependent (nested levels
    repeat their parent's indicator, a slope varying over two factors is spanned twice)."""
    formula = POOLINGS[1].build(spec)
    found = design(formula, data)
    terms = dependent_terms(found.matrix, found.terms)
    row = {"check": "no-pooling design", "models": "none"}
    if not terms:
        return row | {
            "status": "ok",
            "message": f"{found.matrix.shape[1]} columns of full rank: the data identify every no-pooling coefficient",
        }
    return row | {
        "status": "error",
        "message": (
            f"in no pooling ({formula.split('~', 1)[1].strip()}), terms {', '.join(terms)} are linearly dependent "
            f"(rank {_rank(found.matrix)} for {found.matrix.shape[1]} columns), so the prior decides how a constant splits "
            f"between them; fit partial pooling alone (pooling='partial'), {ALLOW}"
        ),
    }


def prior_only_messages(spec: FormulaSpec, data: pd.DataFrame) -> list[str]:
    """The no-pooling slopes the data cannot inform, as sentences (see ``prior_only_groups``).

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    data : pandas.DataFrame
        The prepared data.

    Returns
    -------
    list of str
        One sentence per term and kind of problem; empty when every group informs its slopes.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> from poolwise.formulas import parse_formula
    >>> frame = load_dataset("franchise")
    >>> spec = parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", frame)
    >>> prior_only_messages(spec, frame)[0][:60]
    'no pooling: gymID 1, 7, 9, 12 never had yogaStretch != 0, so'
    """
    messages = []
    for term, found in prior_only_groups(spec, data).items():
        if found["prior_only"]:
            messages.append(
                f"no pooling: {spec.group} {', '.join(found['prior_only'])} never had {term} != 0, so their "
                f"{term} slopes are the prior, not data; partial pooling borrows them from the population instead"
            )
        if found["sum_only"]:
            messages.append(
                f"no pooling: {spec.group} {', '.join(found['sum_only'])} only ever had one value of {term}, so the "
                f"data identify only the sum of intercept and {term} slope there; the prior splits it"
            )
    return messages


def _findings(spec: FormulaSpec, data: pd.DataFrame, complete_formula: str, pooling: str | None = None) -> list[dict]:
    """The checks that concern ``pooling`` (None: all three models), each a row of ``check``.

    Only what the model being fitted needs is built: no pooling's design has a column per group of
    every factor, and its rank costs minutes and gigabytes at InstEval's 4,000 levels.
    """
    rows = [_common_finding(spec, data, complete_formula)]
    if spec.group is None:
        return rows
    if pooling in (None, "partial"):
        for factor in spec.factors:
            if factor.intercept:
                rows.append(_group_finding(spec.focused(factor.name), data, complete_formula))
    if pooling not in (None, "none"):
        return rows
    if len(spec.factors) > 1:
        rows.append(_no_pooling_design(spec, data))
    elif spec.group_intercept:
        rows.append(_no_pooling_finding(spec, data))
    if spec.varying:
        messages = prior_only_messages(spec, data)
        rows.extend(
            {"check": "no-pooling slopes", "models": "none", "status": "warning", "message": message}
            for message in messages
        )
        if not messages:
            rows.append(
                {
                    "check": "no-pooling slopes",
                    "models": "none",
                    "status": "ok",
                    "message": f"every {spec.group} saw more than one value of {', '.join(spec.varying)}",
                }
            )
    return rows


def check_design(spec: FormulaSpec, data: pd.DataFrame, complete_formula: str, *, pooling: str | None = None) -> None:
    """Refuse a design the data cannot identify, before any sampling.

    Refused: common-effects columns that are linearly dependent, common terms that already separate
    every level of the group factor (partial pooling), a common term that takes one value per group
    (no pooling).

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    data : pandas.DataFrame
        The prepared data that will be fitted.
    complete_formula : str
        The complete pooling template (the common terms alone).
    pooling : str, optional
        Check only what concerns this model; None checks all three, as ``compare`` fits them all.

    Raises
    ------
    PoolwiseError
        The first refused design, with the dependent terms and the fixes.

    Examples
    --------
    >>> check_design(spec, data, templates(spec)["complete"])  # doctest: +SKIP
    """
    for row in _findings(spec, data, complete_formula, pooling):
        if row["status"] == "error":
            raise PoolwiseError(row["message"])


def check(formula: str, data: pd.DataFrame, *, family: str | None = None) -> pd.DataFrame:
    """Run every design check of ``formula`` on ``data`` without fitting (``poolwise check``).

    Parameters
    ----------
    formula : str
        An lme4/brms-style formula.
    data : pandas.DataFrame
        The data.
    family : str, optional
        The outcome family (default: decided from the data).

    Returns
    -------
    pandas.DataFrame
        One row per check: ``check`` (common terms, group levels, no-pooling intercepts, no-pooling
        slopes), ``models`` (which pooling models it concerns), ``status`` (ok; warning: the model
        fits but a prior decides some coefficients; error: ``fit`` and ``compare`` refuse it) and
        ``message``.

    Raises
    ------
    PoolwiseError
        A bad formula or bad data, as ``fit`` would raise.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> table = check("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", load_dataset("franchise"))
    >>> table["status"].tolist()
    ['ok', 'ok', 'ok', 'warning']
    """
    spec = parse_formula(formula, data, family=family)
    prepared, spec, _ = prepare_data(spec, data)
    return pd.DataFrame(
        _findings(spec, prepared, POOLINGS[0].build(spec)), columns=["check", "models", "status", "message"]
    )


def prior_only_groups(spec: FormulaSpec, data: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """The groups whose no-pooling slopes the data cannot inform, per group-varying numeric term.

    Parameters
    ----------
    spec : FormulaSpec
        The parsed formula.
    data : pandas.DataFrame
        The prepared data.

    Returns
    -------
    dict of str to dict of str to list of str
        Term -> ``{"prior_only": groups where the term is 0 on all rows (the slope is the prior),
        "sum_only": groups where it is one constant non-zero value (intercept and slope are
        identified only as a sum)}``; terms without such groups are left out.

    Examples
    --------
    >>> from poolwise.data import load_dataset
    >>> from poolwise.formulas import parse_formula
    >>> frame = load_dataset("franchise")
    >>> prior_only_groups(parse_formula("p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)", frame), frame)
    {'yogaStretch': {'prior_only': ['1', '7', '9', '12'], 'sum_only': []}}
    """
    found = {}
    for term in spec.varying:
        if term not in data.columns or not pd.api.types.is_numeric_dtype(data[term]):
            continue
        by_group = data.groupby(spec.group, sort=True, observed=True)[term]
        low, high = by_group.min(), by_group.max()
        prior_only = [str(g) for g in low.index[(low == 0) & (high == 0)]]
        summed = [str(g) for g in low.index[(low == high) & (low != 0)]] if spec.group_intercept else []
        if prior_only or summed:
            found[term] = {"prior_only": prior_only, "sum_only": summed}
    return found


# ---- after a fit -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Set:
    """Levels of one factor as the fit codes them: ``effects`` holds each level's effect (up to a
    constant the data may not see), ``raw`` the fitted coefficients, and ``weights`` each level's
    effect as a combination of the identifying design's columns (None: a group term outside that
    design, which the group distribution identifies)."""

    name: str
    levels: list[str]
    effects: xr.DataArray  # (chain, draw, level)
    raw: dict[str, xr.DataArray]
    weights: np.ndarray | None  # (level, design column)


def _parameters(posterior: xr.Dataset) -> dict[str, xr.DataArray]:
    """Every scalar parameter and vector element as (chain, draw) draws, named ``x`` or ``x[label]``;
    per-observation quantities (Bambi's ``p``) are left out."""
    out = {}
    for name, values in posterior.data_vars.items():
        extra = [dim for dim in values.dims if dim not in ("chain", "draw")]
        if not extra:
            out[name] = values
        elif len(extra) == 1 and adapter.OBS_DIM not in extra[0]:
            for label in values[extra[0]].values:
                out[f"{name}[{label}]"] = values.sel({extra[0]: label}, drop=True)
    return out


def _identifying_design(fit: Fit, common: Design) -> Design:
    """The design whose null space decides what a fit identifies: the common design, plus the
    group's indicator columns when partial pooling's common terms already separate every group
    (then the group intercepts only repeat what the common terms span). Otherwise the group
    distribution identifies the group intercepts, and they stay out."""
    spec = fit.spec
    if fit.pooling != "partial" or spec.group is None or not spec.group_intercept:
        return common
    if not _spans_groups(common.matrix, fit.data[spec.group]):
        return common
    indicators = pd.get_dummies(fit.data[spec.group])
    labels = [f"{adapter.group_term('Intercept', spec.group)}[{level}]" for level in indicators.columns]
    return Design(
        np.hstack([common.matrix, indicators.to_numpy(dtype=float)]),
        common.labels + labels,
        common.terms + [adapter.group_term("Intercept", spec.group)] * len(labels),
        common.term_objects,
    )


def _parameter_identified(fit: Fit, ident: Design, label: str) -> bool:
    """Whether the data decide one parameter: a design column, or a group term's sd."""
    if label in ident.labels:
        return ident.identified(ident.unit(label))
    # A group sd is the prior's when its intercepts joined the identifying design.
    group = fit.spec.group
    return not (label == adapter.group_sd("Intercept", group) and adapter.group_term("Intercept", group) in ident.terms)


def _level_effects(columns: list[xr.DataArray], coded: np.ndarray, levels: list[str]) -> xr.DataArray:
    stacked = xr.concat(columns, dim="column")
    matrix = xr.DataArray(coded, dims=("level", "column"), coords={"level": levels})
    return xr.dot(matrix, stacked, dim="column").transpose("chain", "draw", "level")


def _common_set(
    ident: Design, params: dict, name: str, labels: list[str], levels: list[str], coded: np.ndarray
) -> _Set:
    """A factor coded over design columns ``labels``: level effects = ``coded @ coefficients``."""
    weights = np.zeros((len(levels), len(ident.labels)))
    weights[:, [ident.labels.index(label) for label in labels]] = coded
    effects = _level_effects([params[label] for label in labels], coded, levels)
    return _Set(name, levels, effects, {label: params[label] for label in labels}, weights)


def _sets(fit: Fit, common: Design, ident: Design, params: dict[str, xr.DataArray]) -> list[_Set]:
    """Indicator sets, categorical terms, 0/1 terms and group-specific intercepts/slopes of a fit."""
    sets, in_sets = [], set()
    for members in indicator_sets(common):
        labels = [common.labels[i] for i in members]
        if all(label in params for label in labels):
            name, levels = _set_name(labels)
            sets.append(_common_set(ident, params, name, labels, levels, np.eye(len(labels))))
            in_sets.update(labels)
    for term, obj in common.term_objects.items():
        components = getattr(obj, "components", [])
        if len(components) != 1 or term in in_sets:
            continue
        component = components[0]
        columns = [i for i, t in enumerate(common.terms) if t == term]
        if getattr(component, "kind", None) == "categoric":
            contrast = component.contrast_matrix
            labels = [f"{term}[{label}]" for label in contrast.labels]
            levels = [str(level) for level in component.levels]
            coded = np.asarray(contrast.matrix, dtype=float)
            name = next(iter(obj.var_names)) if len(obj.var_names) == 1 else term
        elif len(columns) == 1 and set(np.unique(common.matrix[:, columns[0]])) == {0.0, 1.0}:
            labels, levels, coded, name = [term], ["0", "1"], np.array([[0.0], [1.0]]), term
        else:
            continue
        if all(label in params for label in labels):
            sets.append(_common_set(ident, params, name, labels, levels, coded))
    spec = fit.spec
    if spec.group is None or fit.pooling != "partial":
        return sets
    for term in (["1"] if spec.group_intercept else []) + list(spec.varying):
        var = f"{term}|{spec.group}"
        if var not in fit.posterior:
            continue
        values = fit.posterior[var]
        dim = next(d for d in values.dims if d not in ("chain", "draw"))
        levels = [str(level) for level in values[dim].values]
        effects = values.rename({dim: "level"}).assign_coords(level=levels).transpose("chain", "draw", "level")
        raw = {f"{var}[{level}]": effects.sel(level=level, drop=True) for level in levels}
        if all(label in ident.labels for label in raw):
            weights = np.stack([ident.unit(label) for label in raw])
        else:
            weights = None
        sets.append(_Set(var, levels, effects, raw, weights))
    return sets


def estimates(fit: Fit, *, parameters: bool = False) -> list[dict]:
    """Draws of every level coefficient and every difference between two levels of a factor.

    Each with whether the data identify it; with ``parameters``, every other scalar parameter
    (intercept, group sds) first. The rows that ``contrasts`` and ``sensitivity`` summarise.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    parameters : bool
        Also list the other scalar parameters.

    Returns
    -------
    list of dict
        Each with set, kind (coefficient or contrast), name, identified and draws.

    Examples
    --------
    >>> [row["name"] for row in estimates(study.fits["none"])][:2]  # doctest: +SKIP
    """
    common = design(fit.formula, fit.data)
    ident = _identifying_design(fit, common)
    params = _parameters(fit.posterior)
    rows, covered = [], set()
    for entry in _sets(fit, common, ident, params):
        for label, draws in entry.raw.items():
            rows.append(
                {
                    "set": entry.name,
                    "kind": "coefficient",
                    "name": label,
                    "identified": _parameter_identified(fit, ident, label),
                    "draws": draws,
                }
            )
            covered.add(label)
        for (i, low), (j, high) in combinations(enumerate(entry.levels), 2):
            identified = entry.weights is None or ident.identified(entry.weights[j] - entry.weights[i])
            rows.append(
                {
                    "set": entry.name,
                    "kind": "contrast",
                    "name": f"{high} - {low}",
                    "identified": identified,
                    "draws": entry.effects.sel(level=high, drop=True) - entry.effects.sel(level=low, drop=True),
                }
            )
    if not parameters:
        return rows
    others = [
        {
            "set": None,
            "kind": "coefficient",
            "name": label,
            "identified": _parameter_identified(fit, ident, label),
            "draws": draws,
        }
        for label, draws in params.items()
        if label not in covered
    ]
    return others + rows


def contrasts(fit: Fit, *, prob: float | None = None) -> pd.DataFrame:
    """The raw coefficient of each level next to the differences between levels, per factor.

    A factor is a ``C(x)`` term, a set of 0/1 indicator columns that add up to 1 (one coefficient
    per level, as in ``b0 + beta[level]``), a single 0/1 column, or a group's intercepts or slopes
    under partial pooling. When the design is over-parameterised the raw coefficients carry whatever
    constant the priors give them; the contrasts do not.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    prob : float, optional
        The interval probability (default: ArviZ's ``rcParams["stats.ci_prob"]``, 0.89).

    Returns
    -------
    pandas.DataFrame
        One row per coefficient and per pair of levels: ``set``, ``kind`` (coefficient or
        contrast), ``name`` (the parameter, or ``"2 - 0"``), ``identified`` (whether the data decide
        it, from the design's null space), mean, sd, lower, upper.

    Examples
    --------
    >>> contrasts(fit).query("kind == 'contrast'")  # doctest: +SKIP
    """
    from poolwise.estimates import summarise  # coefficients imports poolwise.fitting, which imports this module

    rows = [
        {key: value for key, value in row.items() if key != "draws"} | summarise(row["draws"], prob)
        for row in estimates(fit)
    ]
    return pd.DataFrame(rows, columns=["set", "kind", "name", "identified", "mean", "sd", "lower", "upper"])


def correlated_pairs(fit: Fit, threshold: float = 0.9) -> pd.DataFrame:
    """Pairs of parameters whose posterior correlation exceeds ``threshold`` in magnitude.

    Such a pair is known well only as a combination.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    threshold : float
        The smallest |correlation| reported.

    Returns
    -------
    pandas.DataFrame
        parameter_1, parameter_2, correlation, identified (False when either lies along a direction
        the design cannot see, so the priors split a constant between them; True when the data just
        inform their sum or difference better than each). Sorted by |correlation|, largest first.

    Examples
    --------
    >>> correlated_pairs(study.fits["partial"], threshold=0.8)  # doctest: +SKIP
    """
    ident = _identifying_design(fit, design(fit.formula, fit.data))
    params = _parameters(fit.posterior)
    frame = pd.DataFrame({name: np.asarray(draws).reshape(-1) for name, draws in params.items()})
    frame = frame.loc[:, frame.std() > 0]
    corr = frame.corr().to_numpy()
    names = list(frame.columns)
    rows = [
        (
            names[i],
            names[j],
            float(corr[i, j]),
            _parameter_identified(fit, ident, names[i]) and _parameter_identified(fit, ident, names[j]),
        )
        for i, j in combinations(range(len(names)), 2)
        if abs(corr[i, j]) > threshold
    ]
    table = pd.DataFrame(rows, columns=["parameter_1", "parameter_2", "correlation", "identified"])
    return table.reindex(table["correlation"].abs().sort_values(ascending=False).index).reset_index(drop=True)
