"""Reading, validating, simulating and aggregating the data a formula names, for every family."""

import hashlib
import json
import os
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from poolwise import choices
from poolwise.choices import registry
from poolwise.errors import PoolwiseError
from poolwise.families import FAMILIES
from poolwise.families import NAMES as FAMILY_NAMES
from poolwise.families import family as find_family
from poolwise.spec import FormulaSpec

DATASETS = {"gym": "https://raw.githubusercontent.com/flyaflya/persuasive/main/gym.csv"}
EXAMPLE = "franchise"
BUNDLED = ("franchise", "visits")  # simulated by write_example into data/, truth beside each
MAX_COUNT = 2**53  # the largest count a float64 (and so PyMC's likelihood) holds exactly


def _data_homes() -> list[Path]:
    """Where named datasets are looked for, in order: $POOLWISE_DATA, ../shared/data, the cache."""
    homes = []
    if os.environ.get("POOLWISE_DATA"):
        homes.append(Path(os.environ["POOLWISE_DATA"]))
    homes.append(Path.cwd().parent / "shared" / "data")
    homes.append(Path(__file__).resolve().parents[3] / "shared" / "data")  # beside a source checkout
    homes.append(cache_dir())
    return homes


def cache_dir() -> Path:
    """poolwise's cache folder (downloaded datasets, compiled samplers).

    Returns
    -------
    Path
        ``$POOLWISE_CACHE_DIR``, else ``$XDG_CACHE_HOME/poolwise``, else ``~/.cache/poolwise``.

    Examples
    --------
    >>> cache_dir().name  # doctest: +SKIP
    'poolwise'
    """
    if os.environ.get("POOLWISE_CACHE_DIR"):
        return Path(os.environ["POOLWISE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "poolwise"


def example_path(name: str = EXAMPLE) -> Path:
    """Path of a bundled simulated example: ``data/<name>.csv`` in the repository.

    Parameters
    ----------
    name : str
        ``"franchise"`` (binomial) or ``"visits"`` (poisson).

    Returns
    -------
    Path
        The CSV file (its truth is beside it as ``<name>_truth.json``).

    Examples
    --------
    >>> example_path().name
    'franchise.csv'
    """
    return Path(__file__).resolve().parents[2] / "data" / f"{name}.csv"


def load_dataset(name: str) -> pd.DataFrame:
    """A named dataset as a DataFrame.

    ``"gym"`` is the chapter's data; ``"franchise"`` (binomial signups) and ``"visits"`` (poisson
    visits per member-month) are bundled and simulated. The gym data are read from a local data home
    first (``$POOLWISE_DATA``, then ``../shared/data``) and only then downloaded once into the cache
    (``cache_dir``), as seaborn and bambi do.

    Parameters
    ----------
    name : str
        ``"gym"``, ``"franchise"`` or ``"visits"``.

    Returns
    -------
    pandas.DataFrame
        The data, one row per group and period.

    Raises
    ------
    PoolwiseError
        An unknown name, or the gym data are neither local nor downloadable.

    Examples
    --------
    >>> load_dataset("franchise").shape
    (48, 5)
    """
    if name in BUNDLED:
        return read_csv(example_path(name))
    if name not in DATASETS:
        known = ", ".join(sorted([*DATASETS, *BUNDLED]))
        raise PoolwiseError(f"unknown dataset {name!r}; use one of: {known}, or a CSV/Parquet path")
    for home in _data_homes():
        path = home / f"{name}.csv"
        if path.is_file():
            return read_csv(path)
    target = cache_dir() / f"{name}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(DATASETS[name], timeout=30) as response:
            payload = response.read()
    except OSError as err:
        raise PoolwiseError(
            f"dataset {name!r} is not in a local data home and could not be downloaded ({err}); "
            f"set POOLWISE_DATA to a folder holding {name}.csv"
        ) from None
    tmp = target.with_suffix(".part")
    tmp.write_bytes(payload)
    tmp.replace(target)
    return read_csv(target)


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, with one-line errors for the usual ways it goes wrong.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` file (UTF-8, a header row) or a ``.parquet``/``.pq`` file.

    Returns
    -------
    pandas.DataFrame
        The table as read.

    Raises
    ------
    PoolwiseError
        The file does not exist, cannot be parsed, or has duplicated column names.

    Examples
    --------
    >>> read_csv(example_path("visits")).columns[-1]
    'yogaStretch'
    """
    path = Path(path)
    if not path.is_file():
        raise PoolwiseError(
            f"file not found: {one_line(path)}; pass an existing CSV/Parquet path or a dataset name (gym)"
        )
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PoolwiseError(
            f"cannot read {one_line(path)}: {first}; check that it is a comma-separated CSV with a header row"
        ) from None
    if frame.columns.duplicated().any() or any(
        str(c).endswith(tuple(f".{i}" for i in range(1, 10))) and str(c).rsplit(".", 1)[0] in frame.columns
        for c in frame.columns
    ):
        raise PoolwiseError(f"{one_line(path)} has duplicated column names; rename them so each column is unique")
    return frame


def read_data(source: str | Path) -> pd.DataFrame:
    """A dataset name (``gym``, ``franchise``, ``visits``) or a CSV/Parquet path, read.

    What the command line's ``DATA`` argument accepts.

    Parameters
    ----------
    source : str or Path
        A name of ``load_dataset`` or a file path.

    Returns
    -------
    pandas.DataFrame
        The data.

    Examples
    --------
    >>> read_data("franchise").columns.tolist()
    ['gymID', 'timePeriod', 'nTrialCustomers', 'nSigned', 'yogaStretch']
    """
    text = str(source)
    if text in DATASETS or text in BUNDLED:
        return load_dataset(text)
    return read_csv(text)


def data_hash(data: pd.DataFrame) -> str:
    """A short content hash of a table, stored with fits so a reload can tell whether the data changed.

    Parameters
    ----------
    data : pandas.DataFrame
        The data.

    Returns
    -------
    str
        16 hexadecimal characters of a SHA-256 over the values and column names.

    Examples
    --------
    >>> len(data_hash(load_dataset("franchise")))
    16
    """
    hashed = pd.util.hash_pandas_object(data, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, data.columns)).encode()).hexdigest()[:16]


def validate_counts(data: pd.DataFrame, successes: str, trials: str) -> pd.DataFrame:
    """Check binomial counts (integers, 0 <= k <= n, n > 0, no NaN) and return them as int64.

    Parameters
    ----------
    data : pandas.DataFrame
        The data.
    successes, trials : str
        The columns of ``p(successes, trials)``.

    Returns
    -------
    pandas.DataFrame
        A copy with both columns as int64.

    Raises
    ------
    PoolwiseError
        A count is not a number, missing, negative, not whole, too large, a trial count is 0, or
        successes exceed trials; the message names the rows (1-based, as a spreadsheet shows them).

    Examples
    --------
    >>> import pandas as pd
    >>> validate_counts(pd.DataFrame({"k": [1.0, 2.0], "n": [3, 4]}), "k", "n")["k"].dtype
    dtype('int64')
    """
    data = data.copy()
    for column in (successes, trials):
        values = pd.to_numeric(data[column], errors="coerce")
        _fail_rows(data[column].notna() & values.isna(), f"{column} is not a number", "fix or drop those rows")
        _fail_rows(values.isna(), f"{column} is missing (NaN)", "fill or drop those rows")
        _fail_rows(values < 0, f"{column} is negative", "counts must be >= 0")
        _fail_rows(
            ~np.isfinite(values) | (values != np.round(values)),
            f"{column} is not a whole number",
            "counts must be integers",
        )
        _fail_rows(
            values > MAX_COUNT,
            f"{column} is larger than 2**53",
            "counts that large cannot be held exactly; check the column",
        )
        data[column] = values.astype("int64")
    _fail_rows(data[trials] == 0, f"{trials} is 0", "drop rows with no trials")
    _fail_rows(
        data[successes] > data[trials],
        f"{successes} > {trials}",
        f"{successes} counts successes out of {trials}; check the column order in p(successes, trials)",
    )
    return data


_TRUE_FALSE = {"true", "false"}


def _levels(values: pd.Series) -> list:
    """The distinct non-missing values of an outcome column, in sorted order."""
    levels = pd.unique(values.dropna())
    try:
        return sorted(levels)
    except TypeError:  # mixed types: sort as text
        return sorted(levels, key=str)


def _blank(values: pd.Series) -> pd.Series:
    """Missing values, including empty or blank text (an empty cell typed into a frame)."""
    return values.isna() | values.map(lambda value: isinstance(value, str) and not value.strip())


def infer_family(values: pd.Series, name: str, *, exposure: str | None = None) -> str:
    """The family lme4 would use for an outcome column (see ``formulas.resolve_family``).

    Parameters
    ----------
    values : pandas.Series
        The outcome column.
    name : str
        Its name, for messages.
    exposure : str, optional
        The formula's exposure column; with one, the outcome is a poisson count.

    Returns
    -------
    str
        ``"bernoulli"`` (two values), ``"poisson"`` (with an exposure) or ``"gaussian"`` (real numbers).

    Raises
    ------
    PoolwiseError
        The column is blank, takes one value, has several text values, or holds counts without an
        exposure (ambiguous: pass a family).

    Examples
    --------
    >>> import pandas as pd
    >>> infer_family(pd.Series([0, 1, 1]), "signed"), infer_family(pd.Series([1.5, 2.0]), "score")
    ('bernoulli', 'gaussian')
    """
    _fail_rows(_blank(values) & values.notna(), f"{name} is empty", "fill or drop those rows")
    levels = _levels(values)
    if len(levels) < 2:
        raise PoolwiseError(
            f"{name} takes a single value ({one_line(levels[0]) if levels else 'all missing'}), so there "
            "is nothing to model; check the column or the rows selected"
        )
    if exposure is not None:
        return "poisson"
    numeric = pd.to_numeric(values, errors="coerce")
    text = values.notna().sum() != numeric.notna().sum() or pd.api.types.is_bool_dtype(values)
    if len(levels) == 2 and (text or set(numeric.dropna().unique()) <= {0, 1}):
        return "bernoulli"
    if text:
        raise PoolwiseError(
            f"{name} has {len(levels)} distinct non-numeric values; poolwise models a two-level outcome "
            f"(bernoulli), ordered ratings, counts or numbers ({', '.join(FAMILY_NAMES)}): recode it, e.g. to "
            "0/1 for one level against the rest, or to whole numbers in their order with --family cumulative"
        )
    whole = np.isfinite(numeric) & (numeric == np.round(numeric))
    if whole.all() and (numeric >= 0).all():
        raise PoolwiseError(
            f"{name} holds counts (whole numbers >= 0 with more than two values), which poolwise "
            "will not guess a family for; pass --family poisson|negativebinomial|zero_inflated_poisson|"
            "zero_inflated_negativebinomial|hurdle_poisson|hurdle_negativebinomial for counts, cumulative for ordered ratings, or gaussian "
            "(family= in Python)"
        )
    if numeric.isna().any():
        _fail_rows(numeric.isna(), f"{name} is missing (NaN)", "fill or drop those rows")
    return "gaussian"


def success_level(values: pd.Series, name: str, level: str | None = None) -> str:
    """The level of a two-valued outcome counted as success.

    ``level`` when the formula says ``y[level]``, else the second in sorted order, as glmer does (1 of
    0/1, True, TRUE, "Y" of "N"/"Y").

    Parameters
    ----------
    values : pandas.Series
        The outcome column.
    name : str
        Its name, for messages.
    level : str, optional
        The level written in the formula.

    Returns
    -------
    str
        The success level.

    Raises
    ------
    PoolwiseError
        The column has more than two values or one, or ``level`` is not one of them.

    Examples
    --------
    >>> import pandas as pd
    >>> success_level(pd.Series(["N", "Y", "Y"]), "bought")
    'Y'
    """
    levels = _levels(values)
    shown = ", ".join(one_line(v) for v in levels[:5]) + (", ..." if len(levels) > 5 else "")
    if len(levels) > 2:
        raise PoolwiseError(
            f"{name} has {len(levels)} values ({shown}), but a bernoulli outcome has two; "
            "recode it to two levels or choose another --family"
        )
    if level is not None:
        if level not in [str(v) for v in levels]:
            raise PoolwiseError(
                f"{name}[{one_line(level)}] names a level {name} does not have; its levels are: {shown}"
            )
        return level
    if len(levels) < 2:
        raise PoolwiseError(f"{name} takes a single value ({shown}), so there is nothing to model; check the column")
    return str(levels[-1])


def prepare_data(spec: FormulaSpec, data: pd.DataFrame) -> tuple[pd.DataFrame, FormulaSpec, list[str]]:
    """Validate the columns a formula uses for its family and collapse rows where that is exact.

    Bernoulli rows become binomial counts per combination of predictors and group; Poisson rows with
    identical predictors, group and exposure become summed counts and exposures (when that at least
    halves them). Nested factors ``a/b`` get their column ``a_b``.

    Parameters
    ----------
    spec : FormulaSpec
        The formula parsed with the data (its family decided).
    data : pandas.DataFrame
        The data.

    Returns
    -------
    tuple of (pandas.DataFrame, FormulaSpec, list of str)
        The data to fit, the spec they are fitted with (``trials``/``exposure`` set when rows were
        collapsed) and notes to show the user.

    Raises
    ------
    PoolwiseError
        The data are not a DataFrame or have no rows, the family is undecided, a value is invalid
        for the family, a grouping factor has one level, or the rows collapse into one.

    Examples
    --------
    >>> import pandas as pd
    >>> from poolwise.formulas import parse_formula
    >>> rows = pd.DataFrame({"bought": ["N", "Y", "Y", "N"], "promo": [0, 1, 0, 1], "store": [1, 1, 2, 2]})
    >>> fitted, spec, notes = prepare_data(parse_formula("bought ~ promo + (1|store)", rows), rows)
    >>> spec.family, spec.trials
    ('bernoulli', 'bought_n')
    """
    if not isinstance(data, pd.DataFrame):
        raise PoolwiseError("data must be a pandas DataFrame (or, on the CLI, a CSV/Parquet path or dataset name)")
    if len(data) == 0:
        raise PoolwiseError("the data have no rows; pass a table with one row per group and period (or per trial)")
    if spec.family is None:
        raise PoolwiseError(
            "the model has no family yet; parse the formula with the data (parse_formula(formula, data))"
        )
    prepared, spec, notes = _prepare_outcome(spec, data)
    for factor in spec.factors:
        levels = pd.unique(prepared[list(factor.parts)].astype(str).agg(":".join, axis=1))
        if len(levels) < 2:
            raise PoolwiseError(
                f"grouping factor {factor.name} has a single level ({one_line(levels[0])}), so there is "
                f"nothing to pool; drop its (...|{factor.name}) term or add data from more groups"
            )
    if len(prepared) < 2 and len(data) > 1:
        raise PoolwiseError(
            f"all {len(data)} rows collapse into one count (the formula has no predictor or group that tells them "
            f"apart); the rate is simply {int(prepared[spec.outcome].sum())} / {prepared[spec.size].sum():g}: add a "
            "predictor or group term to model it"
        )
    if len(prepared) < 2:
        raise PoolwiseError("the data have one row; a model needs at least two: pass more rows")
    return _nested_factors(prepared, spec), spec, notes


def _nested_factors(data: pd.DataFrame, spec: FormulaSpec) -> pd.DataFrame:
    """A column per nested factor (``a/b`` makes ``a_b``: each b within its a, labelled "a:b")."""
    nested = {factor.name: list(factor.parts) for factor in spec.factors if len(factor.parts) > 1}
    if not nested:
        return data
    return data.assign(**{name: data[parts].astype(str).agg(":".join, axis=1) for name, parts in nested.items()})


def _prepare_outcome(spec: FormulaSpec, data: pd.DataFrame) -> tuple[pd.DataFrame, FormulaSpec, list[str]]:
    """Validate the outcome for its family and collapse rows where that is exact."""
    predictors = [name for name in spec.variables if name not in (spec.outcome, spec.trials, spec.exposure)]
    for name in predictors:
        _fail_rows(data[name].isna(), f"{name} is missing (NaN)", "fill or drop those rows")
    groups = {part for factor in spec.factors for part in factor.parts}
    for name in predictors:
        # A one-level categorical has no contrast to code (formulae fails deep inside); numeric
        # constants reach the design check, which names the collinearity.
        if name not in groups and not pd.api.types.is_numeric_dtype(data[name]) and values_constant(data[name]):
            raise PoolwiseError(
                f"{name} takes a single value ({one_line(data[name].iloc[0])}) on every row, so its effect cannot "
                "be estimated; drop it from the formula or check the rows selected"
            )
    if spec.trials is not None:  # binomial counts, or bernoulli rows already aggregated to them
        return validate_counts(data, spec.outcome, spec.trials), spec, []
    family = find_family(spec.family)
    if family.name == "bernoulli":
        before = len(data)
        counts = aggregate(data.assign(**{spec.outcome: as_binary(data[spec.outcome], spec)}), spec.outcome, predictors)
        note = (
            f"aggregated {before} rows of {spec.outcome} (success: {spec.outcome} = {spec.level}) into {len(counts)} "
            "binomial rows (exact: same likelihood up to a constant)"
        )
        return counts, replace(spec, trials=f"{spec.outcome}_n"), [note]
    data = data.copy()
    if family.ordinal:
        data[spec.outcome] = _ratings(data[spec.outcome], spec)
    data[spec.outcome] = _numbers(data[spec.outcome], spec.outcome)
    if spec.exposure is not None:
        data[spec.exposure] = _numbers(data[spec.exposure], spec.exposure)
        _fail_rows(
            data[spec.exposure] <= 0,
            f"exposure {spec.exposure} is <= 0",
            "a rate per unit of exposure needs exposure > 0: drop those rows or fix the column",
        )
    if family.positive:
        _fail_rows(
            data[spec.outcome] <= 0,
            f"{spec.outcome} is <= 0",
            f"{spec.family} measurements must be > 0 (use --family gaussian for signed numbers)",
        )
    if family.unit:
        _fail_rows(
            (data[spec.outcome] <= 0) | (data[spec.outcome] >= 1),
            f"{spec.outcome} is not strictly between 0 and 1",
            f"{spec.family} measurements must lie in (0, 1): shares of exactly 0 or 1 need another family",
        )
    if family.counts:
        values = data[spec.outcome]
        _fail_rows(
            values < 0,
            f"{spec.outcome} is negative",
            f"{spec.family} counts must be >= 0 (use --family gaussian for signed numbers)",
        )
        _fail_rows(
            values != np.round(values),
            f"{spec.outcome} is not a whole number",
            f"{spec.family} counts must be integers (use --family gaussian for measurements)",
        )
        _fail_rows(
            values > MAX_COUNT,
            f"{spec.outcome} is larger than 2**53",
            "counts that large cannot be held exactly; check the column",
        )
        data[spec.outcome] = values.astype("int64")
    if family.ordinal:
        _fail_rows(
            data[spec.outcome] != np.round(data[spec.outcome]),
            f"{spec.outcome} is not a whole number",
            f"{spec.family} ratings are ordered categories: write them as whole numbers in their order (1, 2, 3, ...)",
        )
        data[spec.outcome] = data[spec.outcome].astype("int64")
    if values_constant(data[spec.outcome]):
        raise PoolwiseError(
            f"{spec.outcome} takes a single value ({data[spec.outcome].iloc[0]}) on every row, so there is "
            "nothing to model; check the column or the rows selected"
        )
    if family.name == "poisson":
        return _collapse_poisson(data, spec, predictors)
    return data, spec, []


def values_constant(values: pd.Series) -> bool:
    """Whether a column holds one value on every row.

    Parameters
    ----------
    values : pandas.Series
        The column.

    Returns
    -------
    bool
        True when it has fewer than two distinct values (missing counts as a value).

    Examples
    --------
    >>> import pandas as pd
    >>> values_constant(pd.Series([1, 1]))
    True
    """
    return values.nunique(dropna=False) < 2


def as_binary(values: pd.Series, spec: FormulaSpec) -> pd.Series:
    """1 where a bernoulli outcome is its success level (``spec.level``), else 0.

    Parameters
    ----------
    values : pandas.Series
        The outcome column.
    spec : FormulaSpec
        The formula, with its success level.

    Returns
    -------
    pandas.Series
        0/1 as int64.

    Raises
    ------
    PoolwiseError
        A value is missing or blank.

    Examples
    --------
    >>> import pandas as pd
    >>> from poolwise.formulas import parse_formula
    >>> spec = parse_formula("bought ~ promo + (1|store)", pd.DataFrame({"bought": ["N", "Y"], "promo": [0, 1], "store": [1, 2]}))
    >>> as_binary(pd.Series(["N", "Y", "Y"]), spec).tolist()
    [0, 1, 1]
    """
    _fail_rows(_blank(values), f"{spec.outcome} is missing (NaN or empty)", "fill or drop those rows")
    return (values.astype(str) == str(spec.level)).astype("int64")


def _ratings(values: pd.Series, spec: FormulaSpec) -> pd.Series:
    """An ordinal outcome as whole numbers in its order: an ordered categorical becomes 1..K, text
    (whose order a CSV does not hold) is refused with the recoding to write."""
    if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.ordered:
        return pd.Series(np.where(values.isna(), np.nan, values.cat.codes + 1), index=values.index)
    if pd.api.types.is_numeric_dtype(values) or pd.to_numeric(values, errors="coerce").notna().all():
        return values
    found = ", ".join(one_line(v) for v in pd.unique(values.dropna())[:4])
    raise PoolwiseError(
        f"{spec.outcome} is text ({found}, ...), and a CSV does not say the order of its categories; "
        f"write them as whole numbers in their order (1, 2, 3, ...) or pass an ordered pandas Categorical"
    )


def _numbers(values: pd.Series, name: str) -> pd.Series:
    """A numeric column, refusing text, missing and infinite values row by row."""
    if pd.api.types.is_bool_dtype(values):
        raise PoolwiseError(
            f"{name} is true/false; a two-valued outcome is bernoulli: drop --family or pass --family bernoulli"
        )
    numbers = pd.to_numeric(values, errors="coerce")
    _fail_rows(values.notna() & numbers.isna(), f"{name} is not a number", "fix or drop those rows")
    _fail_rows(numbers.isna(), f"{name} is missing (NaN)", "fill or drop those rows")
    _fail_rows(~np.isfinite(numbers), f"{name} is infinite", "fix or drop those rows")
    return numbers


def _collapse_poisson(
    data: pd.DataFrame, spec: FormulaSpec, predictors: list[str]
) -> tuple[pd.DataFrame, FormulaSpec, list[str]]:
    """Sum the Poisson counts of rows with identical predictors, group and exposure: a sum of
    Poisson counts with one rate is Poisson with the summed exposure, so the likelihood is the
    same up to a constant. Rows are merged only when that at least halves them (row-level data,
    where it saves real work; a few coincident rows are not worth changing what LOO leaves out).
    Without an offset, the number of rows merged becomes the exposure (``{outcome}_n``), so rates
    stay per row."""
    keys = predictors + ([spec.exposure] if spec.exposure else [])
    if not keys or data.groupby(keys, sort=False, dropna=False, observed=True).ngroups > len(data) / 2:
        return data, spec, []
    exposure = spec.exposure or f"{spec.outcome}_n"
    sized = data.assign(**{exposure: data[spec.exposure] if spec.exposure else 1})
    summed = sized.groupby(keys, sort=True, dropna=False, observed=True)[[spec.outcome, exposure]].sum()
    summed = summed.reset_index(level=[key for key in keys if key != spec.exposure], drop=False).reset_index(drop=True)
    per = f"summed exposure {exposure}" if spec.exposure else f"the number of rows merged as exposure {exposure}"
    note = (
        f"collapsed {len(data)} poisson rows with identical predictors, group and exposure into {len(summed)} rows "
        f"of summed {spec.outcome} with {per} (exact: same likelihood up to a constant; LOO then leaves out "
        "these merged rows)"
    )
    return summed, replace(spec, exposure=exposure), [note]


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped.

    For one-line messages that quote column names or paths.

    Parameters
    ----------
    text : str
        Any text (other objects are converted with ``str``).

    Returns
    -------
    str
        The text on one line.

    Examples
    --------
    >>> one_line("a\\nb")
    'a\\\\nb'
    """
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


def _fail_rows(mask: pd.Series, problem: str, fix: str) -> None:
    rows = np.flatnonzero(np.asarray(mask, dtype=bool)) + 1
    if rows.size:
        shown = ", ".join(map(str, rows[:10])) + (", ..." if rows.size > 10 else "")
        raise PoolwiseError(f"{problem} in row{'s' if rows.size > 1 else ''} {shown}; {fix}")


# Each family's simulated franchise: file name, columns, formula and default truth. The gyms'
# intercepts and slopes are on the family's link scale (logit, log, identity).
SIMULATIONS = registry(
    choices.SIMULATED_FAMILIES,
    {
        "binomial": {
            "name": "franchise",
            "outcome": "nSigned",
            "size": "nTrialCustomers",
            "sizes": (20, 80),
            "formula": "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)",
            "truth": {"alpha": -1.2, "beta": 0.5, "sigma_alpha": 0.8, "sigma_beta": 0.3},
        },
        "beta_binomial": {
            "name": "franchise_overdispersed",
            "outcome": "nSigned",
            "size": "nTrialCustomers",
            "sizes": (40, 160),
            "formula": "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)",
            "truth": {"alpha": -1.2, "beta": 0.5, "sigma_alpha": 0.5, "sigma_beta": 0.2, "kappa": 20.0},
        },
        "poisson": {
            "name": "visits",
            "outcome": "nVisits",
            "size": "memberMonths",
            "sizes": (20, 80),
            "formula": "nVisits ~ yogaStretch + offset(log(memberMonths)) + (yogaStretch||gymID)",
            "truth": {"alpha": 1.4, "beta": 0.25, "sigma_alpha": 0.4, "sigma_beta": 0.2},
        },
        "negativebinomial": {
            "name": "visits_overdispersed",
            "outcome": "nVisits",
            "size": "memberMonths",
            "sizes": (20, 80),
            "formula": "nVisits ~ yogaStretch + offset(log(memberMonths)) + (yogaStretch||gymID)",
            "truth": {"alpha": 1.4, "beta": 0.25, "sigma_alpha": 0.4, "sigma_beta": 0.2, "shape": 3.0},
        },
        "gaussian": {
            "name": "satisfaction",
            "outcome": "satisfaction",
            "size": None,
            "sizes": (3, 8),
            "formula": "satisfaction ~ yogaStretch + (yogaStretch||gymID)",
            "truth": {"alpha": 70.0, "beta": 4.0, "sigma_alpha": 6.0, "sigma_beta": 2.0, "sigma": 8.0},
        },
        "t": {
            "name": "satisfaction_heavy",
            "outcome": "satisfaction",
            "size": None,
            "sizes": (3, 8),
            "formula": "satisfaction ~ yogaStretch + (yogaStretch||gymID)",
            "truth": {"alpha": 70.0, "beta": 4.0, "sigma_alpha": 6.0, "sigma_beta": 2.0, "sigma": 8.0, "nu": 3.0},
        },
        "gamma": {
            "name": "spend",
            "outcome": "spend",
            "size": None,
            "sizes": (3, 8),
            "formula": "spend ~ yogaStretch + (yogaStretch||gymID)",
            "truth": {"alpha": 3.5, "beta": 0.15, "sigma_alpha": 0.3, "sigma_beta": 0.1, "shape": 4.0},
        },
        "lognormal": {
            "name": "signup_minutes",
            "outcome": "minutes",
            "size": None,
            "sizes": (3, 8),
            "formula": "minutes ~ yogaStretch + (yogaStretch||gymID)",
            "truth": {"alpha": 3.0, "beta": -0.2, "sigma_alpha": 0.3, "sigma_beta": 0.1, "sigma": 0.6},
        },
        "beta": {
            "name": "class_share",
            "outcome": "classShare",
            "size": None,
            "sizes": (3, 8),
            "digits": 4,  # two decimals would round some shares to exactly 0 or 1
            "formula": "classShare ~ yogaStretch + (yogaStretch||gymID)",
            "truth": {"alpha": -0.6, "beta": 0.3, "sigma_alpha": 0.4, "sigma_beta": 0.15, "kappa": 15.0},
        },
        # One row per trial customer: their rating of the trial class, 1 to 5. An ordinal model has no
        # intercept (the thresholds hold it), so alpha is 0 and the gyms vary around it.
        "cumulative": {
            "name": "class_ratings",
            "outcome": "rating",
            "size": None,
            "sizes": (3, 8),
            "formula": "rating ~ yogaStretch + (yogaStretch||gymID)",
            "truth": {
                "alpha": 0.0,
                "beta": 0.6,
                "sigma_alpha": 0.5,
                "sigma_beta": 0.2,
                "threshold": [-2.0, -0.5, 1.0, 2.5],
            },
        },
        # One row per trial customer: the classes they booked. Some never engage (zero-inflated: a
        # structural zero with probability 1 - psi); with the hurdle, psi is the share who book any.
        **{
            f"{kind}_{counts}": {
                "name": f"bookings_{kind}" + ("" if counts == "poisson" else "_overdispersed"),
                "outcome": "nClasses",
                "size": None,
                "sizes": (3, 8),
                "formula": "nClasses ~ yogaStretch + (yogaStretch||gymID)",
                "truth": {
                    "alpha": 1.0,
                    "beta": 0.3,
                    "sigma_alpha": 0.4,
                    "sigma_beta": 0.15,
                    "psi": 0.6,
                    **({"shape": 3.0} if counts == "negativebinomial" else {}),
                },
            }
            for kind, counts in (
                ("zero_inflated", "poisson"),
                ("zero_inflated", "negativebinomial"),
                ("hurdle", "poisson"),
                ("hurdle", "negativebinomial"),
            )
        },
    },
    "simulated families",
)


def simulate_franchise(
    groups: int = 12,
    periods: int = 4,
    *,
    family: str = "binomial",
    treated_share: float = 0.5,
    alpha: float | None = None,
    beta: float | None = None,
    sigma_alpha: float | None = None,
    sigma_beta: float | None = None,
    trials: tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """Simulate a franchise of gyms with known truth, for any family in ``SIMULATIONS``.

    Each gym j has an intercept alpha_j ~ Normal(alpha, sigma_alpha) and a treatment slope
    beta_j ~ Normal(beta, sigma_beta) on the family's link scale (independent). Half the gyms
    (``treated_share``) switch the treatment on from the second half of the periods on, as the
    chapter's yoga rollout did. Per gym and period: binomial, ``trials`` trial customers and the
    signups (beta-binomial: each period's probability varies around the gym's, by ``kappa``);
    poisson and negative binomial, ``trials`` member-months of exposure and the visits; gaussian
    and t, ``trials`` customers each giving one satisfaction score; gamma, ``trials`` customers
    each spending an amount; lognormal, ``trials`` customers each taking minutes to sign up; beta,
    ``trials`` members each spending a share of their visits in classes; cumulative, ``trials``
    customers each rating their trial class 1 to 5 (``threshold``: the cutpoints); zero-inflated and hurdle
    counts, ``trials`` customers each booking classes (``psi``: the probability of booking at all
    for the hurdle, of not being a structural zero for zero inflation).

    Parameters
    ----------
    groups : int
        Number of gyms.
    periods : int
        Periods per gym; the treatment starts after the first half.
    family : str
        A key of ``SIMULATIONS``: ``"binomial"``, ``"beta_binomial"``, ``"poisson"``,
        ``"negativebinomial"``, ``"gaussian"``, ``"t"``, ``"gamma"``, ``"lognormal"``, ``"beta"``,
        ``"cumulative"``, ``"zero_inflated_poisson"``, ``"zero_inflated_negativebinomial"``,
        ``"hurdle_poisson"`` or ``"hurdle_negativebinomial"``.
    treated_share : float
        The expected share of gyms that get the treatment.
    alpha, beta, sigma_alpha, sigma_beta : float, optional
        The population intercept, slope and their group sds (default: the family's truth in
        ``SIMULATIONS``).
    trials : tuple of (int, int), optional
        The range of each period's size (trials, member-months or customers).
    seed : int
        Random seed.

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        The data and the truth: seed, family, formula, population and each gym's alpha and beta.

    Raises
    ------
    PoolwiseError
        ``family`` cannot be simulated.

    Examples
    --------
    >>> frame, truth = simulate_franchise(12, 4, family="poisson", seed=1)
    >>> list(frame.columns)
    ['gymID', 'timePeriod', 'memberMonths', 'nVisits', 'yogaStretch']
    """
    if family not in SIMULATIONS:
        raise PoolwiseError(f"cannot simulate family {family!r}; use one of: {', '.join(SIMULATIONS)}")
    setup = SIMULATIONS[family]
    given = {"alpha": alpha, "beta": beta, "sigma_alpha": sigma_alpha, "sigma_beta": sigma_beta}
    population = {**setup["truth"], **{key: value for key, value in given.items() if value is not None}}
    low, high = trials or setup["sizes"]
    spec = FAMILIES[family]
    rng = np.random.default_rng(seed)
    alpha_j = rng.normal(population["alpha"], population["sigma_alpha"], groups)
    beta_j = rng.normal(population["beta"], population["sigma_beta"], groups)
    treated_gyms = rng.random(groups) < treated_share
    aux = {name: population.get(name) for name in ("sigma", "kappa", "nu", "psi")} | {"alpha": population.get("shape")}
    aux |= {f"threshold[{k}]": cut for k, cut in enumerate(population.get("threshold", []))}
    digits = setup.get("digits", 2)
    rows = []
    for j in range(groups):
        for t in range(1, periods + 1):
            treated = int(treated_gyms[j] and t > periods // 2)
            n = int(rng.integers(low, high + 1))
            mean = spec.inverse(alpha_j[j] + beta_j[j] * treated)
            if setup["size"] is None:  # one row per customer
                values = [spec.simulate(rng, mean, 1, aux) for _ in range(n)]
                whole = spec.counts or spec.ordinal
                rows += [(j + 1, t, int(v) if whole else float(round(v, digits)), treated) for v in values]
            else:
                rows.append((j + 1, t, n, int(spec.simulate(rng, mean, n, aux)), treated))
    columns = ["gymID", "timePeriod", *([setup["size"]] if setup["size"] else []), setup["outcome"], "yogaStretch"]
    frame = pd.DataFrame(rows, columns=columns)
    truth = {
        "seed": seed,
        "family": family,
        "formula": setup["formula"],
        "population": population,
        "groups": {
            str(j + 1): {"alpha": round(float(alpha_j[j]), 6), "beta": round(float(beta_j[j]), 6)}
            for j in range(groups)
        },
    }
    if family == "binomial":  # the bundled franchise's truth file predates families; keep it byte for byte
        del truth["family"]
    return frame, truth


def aggregate(data: pd.DataFrame, outcome: str, by: list[str]) -> pd.DataFrame:
    """Collapse one row per trial (0/1 ``outcome``) into binomial counts per unique ``by`` combination.

    The binomial likelihood of the counts equals the Bernoulli likelihood of the rows up to a
    constant, so the posterior is the same and the cost no longer grows with the number of rows.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per trial.
    outcome : str
        The 0/1 outcome column.
    by : list of str
        The columns whose combinations become rows (predictors and groups).

    Returns
    -------
    pandas.DataFrame
        ``by``, ``outcome`` (the success count) and ``{outcome}_n`` (the trials).

    Raises
    ------
    PoolwiseError
        An outcome value is not 0 or 1.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"store": [1, 1, 2], "bought": [0, 1, 1]})
    >>> aggregate(rows, "bought", ["store"]).to_dict("list")
    {'store': [1, 2], 'bought': [1, 1], 'bought_n': [2, 1]}
    """
    values = pd.to_numeric(data[outcome], errors="coerce")
    _fail_rows(~values.isin([0, 1]), f"{outcome} is not 0/1", "a row-level outcome must be 0 or 1")
    if not by:  # an intercept-only formula (signed ~ 1): all rows make one binomial row
        return pd.DataFrame({outcome: [int(values.sum())], f"{outcome}_n": [len(values)]}, dtype="int64")
    frame = data[by].assign(**{outcome: values.astype("int64")})
    grouped = frame.groupby(by, sort=True, dropna=False, observed=True)[outcome]
    return grouped.agg(["sum", "size"]).rename(columns={"sum": outcome, "size": f"{outcome}_n"}).reset_index()


def write_json(payload: dict, path: Path) -> None:
    """Write JSON atomically (temporary file, then rename).

    Parameters
    ----------
    payload : dict
        JSON-ready data.
    path : Path
        The file to write.

    Examples
    --------
    >>> write_json({"seed": 1}, Path("truth.json"))  # doctest: +SKIP
    """
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


def write_example(
    folder: Path, *, family: str = "binomial", groups: int = 12, periods: int = 4, seed: int = 2024
) -> Path:
    """Simulate a franchise into ``folder``, with its truth beside it.

    Writes ``<name>.csv`` and ``<name>_truth.json``, ``<name>`` being the family's example name
    (franchise, visits, ...). This is how ``data/`` in the repository was made, and what
    ``poolwise simulate`` runs.

    Parameters
    ----------
    folder : Path
        Where to write (created if needed).
    family : str
        A family of ``SIMULATIONS``.
    groups, periods, seed : int
        As in ``simulate_franchise``.

    Returns
    -------
    Path
        The CSV written.

    Examples
    --------
    >>> write_example(Path("sim"), family="poisson", groups=30, seed=7)  # doctest: +SKIP
    PosixPath('sim/visits.csv')
    """
    frame, truth = simulate_franchise(groups, periods, family=family, seed=seed)
    name = SIMULATIONS[family]["name"]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.csv"
    tmp = target.with_name(target.name + ".part")
    frame.to_csv(tmp, index=False)
    tmp.replace(target)
    extra = "" if family == "binomial" else f'family="{family}", '
    truth["call"] = f"poolwise.data.write_example(folder, {extra}groups={groups}, periods={periods}, seed={seed})"
    write_json(truth, folder / f"{name}_truth.json")
    return target
