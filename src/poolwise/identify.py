"""Identifiability: which coefficients the data cannot decide, found before and after fitting."""

import numpy as np
import pandas as pd
from formulae import design_matrices

from poolwise.errors import PoolwiseError
from poolwise.formulas import NAMESPACE, FormulaSpec


def _design(formula: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    common = design_matrices(formula, data, na_action="error", extra_namespace=NAMESPACE).common
    matrix = np.asarray(common.design_matrix, dtype=float)
    names = [""] * matrix.shape[1]
    for term, columns in common.slices.items():
        for i in range(columns.start, columns.stop):
            names[i] = term
    return matrix, names


def dependent_terms(matrix: np.ndarray, names: list[str], tol: float = 1e-8) -> list[str]:
    """Names of the terms whose columns take part in a linear dependency (empty when full rank)."""
    if matrix.shape[1] == 0:
        return []
    _, singular, vt = np.linalg.svd(matrix, full_matrices=True)
    rank = int(np.sum(singular > tol * singular.max()))
    null = vt[rank:]
    loaded = np.flatnonzero(np.abs(null).max(axis=0) > 1e-6) if null.size else []
    return list(dict.fromkeys(names[i] for i in loaded))


def check_design(spec: FormulaSpec, data: pd.DataFrame, complete_formula: str) -> None:
    """Refuse a common-effects design whose columns are linearly dependent, and a group factor
    whose levels the common terms already separate.

    Either way the likelihood cannot tell the coefficients apart, so their priors decide the split
    (the "leaking effect"); contrasts between levels stay identified.
    """
    matrix, names = _design(complete_formula, data)
    fixes = "use reference coding C(x) (the default), sum-to-zero coding C(x, Sum), or drop the intercept with 0 + ...; or pass allow_unidentified=True to let the priors decide"
    terms = dependent_terms(matrix, names)
    if terms:
        raise PoolwiseError(
            f"terms {', '.join(terms)} are linearly dependent (design rank {np.linalg.matrix_rank(matrix)} "
            f"for {matrix.shape[1]} columns), so the priors, not the data, split their common level; {fixes}"
        )
    if spec.group is None or not spec.group_intercept:
        return
    indicators = pd.get_dummies(data[spec.group]).to_numpy(dtype=float)
    joint = np.linalg.matrix_rank(np.hstack([matrix, indicators]))
    expected = np.linalg.matrix_rank(matrix) + indicators.shape[1] - (1 if spec.intercept or matrix.shape[1] else 0)
    if joint < expected:
        raise PoolwiseError(
            f"the common terms already separate the levels of {spec.group}, so (1|{spec.group}) is not identified "
            f"from them; drop {spec.group} from the common terms or {fixes}"
        )


def prior_only_groups(spec: FormulaSpec, data: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """Per group-varying numeric term: groups whose no-pooling slope only the prior decides
    (the term is 0 on all their rows) and groups whose intercept and slope are identified only
    as a sum (the term is one constant non-zero value on all their rows)."""
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


def correlated_pairs(posterior, threshold: float = 0.9) -> pd.DataFrame:
    """Pairs of scalar parameters (or vector elements) whose posterior correlation exceeds
    ``threshold`` in magnitude: the sign that the data identify only a combination of them."""
    columns = {}
    for name, values in posterior.data_vars.items():
        flat = values.stack(sample=("chain", "draw"))
        extra = [d for d in flat.dims if d != "sample"]
        if not extra:
            columns[name] = flat.values
        elif len(extra) == 1:
            for label in flat[extra[0]].values:
                columns[f"{name}[{label}]"] = flat.sel({extra[0]: label}).values
    frame = pd.DataFrame(columns)
    frame = frame.loc[:, frame.std() > 0]
    corr = frame.corr().to_numpy()
    rows = []
    names = list(frame.columns)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if abs(corr[i, j]) > threshold:
                rows.append((names[i], names[j], float(corr[i, j])))
    return pd.DataFrame(rows, columns=["parameter_1", "parameter_2", "correlation"])
