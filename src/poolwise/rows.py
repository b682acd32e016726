"""Row-level data too big for pandas: aggregate one row per trial to binomial counts while reading.

``prepare_data`` aggregates a 0/1 outcome that is already in a DataFrame. For tens of millions of
rows in Parquet (or CSV) files, this module streams the file in record batches through pyarrow,
reading only the columns the formula names and keeping only the running counts per unique
combination of predictors and group, so memory grows with the number of combinations, not rows.
"""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from poolwise.errors import PoolwiseError
from poolwise.formulas import parse_formula

BATCH_ROWS = 1_000_000
# Partial counts are merged once this many batches have piled up, bounding memory.
MERGE_EVERY = 32
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def aggregate_file(path: str | Path, outcome: str, by: Sequence[str], *, batch_rows: int = BATCH_ROWS) -> pd.DataFrame:
    """Binomial counts of a 0/1 ``outcome`` per unique ``by`` combination, streamed from a file.

    Only ``outcome`` and ``by`` are read, a batch at a time, so memory grows with the number of
    combinations rather than rows.

    Parameters
    ----------
    path : str or Path
        A Parquet or CSV file, or a folder of Parquet files.
    outcome : str
        The 0/1 outcome column.
    by : sequence of str
        The predictor and group columns.
    batch_rows : int
        Rows read per batch.

    Returns
    -------
    pandas.DataFrame
        The layout of ``poolwise.data.aggregate``: the ``by`` columns sorted, ``outcome``
        (successes) and ``{outcome}_n`` (trials).

    Raises
    ------
    PoolwiseError
        A column is missing, an outcome value is not 0/1 or a predictor is missing, or the file has
        no rows.

    Examples
    --------
    >>> aggregate_file("visits.parquet", "signed", ["promo", "store"])  # doctest: +SKIP
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    by = list(by)
    dataset = _dataset(path)
    missing = [name for name in [outcome, *by] if name not in dataset.schema.names]
    if missing:
        shown = ", ".join(dataset.schema.names[:12])
        raise PoolwiseError(
            f"column {missing[0]!r} is not in {path}; its columns are: {shown}. Fix the formula or the data"
        )
    aggregations = [(outcome, "sum"), (outcome, "count")]
    partials, seen = [], 0
    for batch in dataset.to_batches(columns=[outcome, *by], batch_size=batch_rows):
        table = pa.Table.from_batches([batch])
        _check_batch(table, outcome, by, seen)
        if table.schema.field(outcome).type != pa.int64():
            table = table.set_column(
                table.schema.get_field_index(outcome), outcome, pc.cast(table[outcome], pa.int64())
            )
        partials.append(table.group_by(by).aggregate(aggregations).select([f"{outcome}_sum", f"{outcome}_count", *by]))
        seen += table.num_rows
        if len(partials) >= MERGE_EVERY:
            partials = [_merge(partials, outcome, by)]
    if not seen:
        raise PoolwiseError(f"{path} has no rows; pass a table with one row per trial")
    counts = _merge(partials, outcome, by).to_pandas()
    counts = counts.rename(columns={f"{outcome}_sum": outcome, f"{outcome}_count": f"{outcome}_n"})
    return counts.sort_values(by, kind="stable").reset_index(drop=True)[[*by, outcome, f"{outcome}_n"]]


def read_rows(path: str | Path, formula: str, *, batch_rows: int = BATCH_ROWS) -> tuple[pd.DataFrame, str, list[str]]:
    """Read what ``formula`` needs from a big file, aggregating a row-level 0/1 outcome on the way.

    Parameters
    ----------
    path : str or Path
        A Parquet or CSV file, or a folder of Parquet files.
    formula : str
        The formula to fit.
    batch_rows : int
        Rows read per batch.

    Returns
    -------
    tuple of (pandas.DataFrame, str, list of str)
        The data, the formula to fit them with (``signed ~ x + (x|g)`` becomes
        ``p(signed, signed_n) ~ x + (x|g)`` once aggregated) and notes for the user.

    Raises
    ------
    PoolwiseError
        As ``aggregate_file`` and ``poolwise.parse_formula``.

    Examples
    --------
    >>> data, formula, notes = read_rows("rows.parquet", "signed ~ promo + (promo|store)")  # doctest: +SKIP
    >>> formula  # doctest: +SKIP
    'p(signed, signed_n) ~ promo + (promo|store)'
    """
    spec = parse_formula(formula)
    if spec.trials is not None:
        frame = _dataset(path).to_table(columns=list(spec.variables)).to_pandas()
        return frame, spec.formula, [f"read {len(frame)} rows, columns {', '.join(spec.variables)} only"]
    by = [name for name in spec.variables if name != spec.outcome]
    counts = aggregate_file(path, spec.outcome, by, batch_rows=batch_rows)
    rows = int(counts[f"{spec.outcome}_n"].sum())
    counted = f"p({spec.outcome}, {spec.outcome}_n) ~ {spec.formula.split('~', 1)[1].strip()}"
    note = (
        f"aggregated {rows} rows of 0/1 {spec.outcome} into {len(counts)} binomial rows while reading {path} "
        "(exact: same likelihood up to a constant)"
    )
    return counts, counted, [note]


def _dataset(path: str | Path):
    import pyarrow.dataset as ds

    path = Path(path)
    if path.is_dir():
        return ds.dataset(path, format="parquet")
    if not path.is_file():
        raise PoolwiseError(f"file not found: {path}; pass an existing Parquet/CSV file or a folder of Parquet files")
    if path.suffix.lower() not in FORMATS:
        raise PoolwiseError(f"cannot stream {path}: use a .parquet or .csv file")
    return ds.dataset(path, format=FORMATS[path.suffix.lower()])


def _check_batch(table, outcome: str, by: list[str], offset: int) -> None:
    """0/1 outcome and no missing predictor, naming the first bad row (1-based, as a spreadsheet)."""
    import pyarrow.compute as pc

    for name in by:
        if table[name].null_count:
            row = offset + _first(pc.is_null(table[name]))
            raise PoolwiseError(f"{name} is missing in row {row} (and maybe others); fill or drop those rows")
    values = table[outcome]
    bad = pc.or_(pc.is_null(values), pc.invert(pc.is_in(pc.cast(values, "double"), value_set=_binary())))
    bad = pc.fill_null(bad, True)
    if pc.any(bad).as_py():
        raise PoolwiseError(
            f"{outcome} is missing or not 0/1 in row {offset + _first(bad)} (and maybe others); a row-level outcome must be 0 or 1"
        )


def _binary():
    import pyarrow as pa

    return pa.array([0.0, 1.0])


def _first(mask) -> int:
    import pyarrow.compute as pc

    return int(pc.index(mask, True).as_py()) + 1


def _merge(partials: list, outcome: str, by: list[str]):
    """Add up the partial counts of each combination; same columns as a partial."""
    import pyarrow as pa

    merged = pa.concat_tables(partials).group_by(by).aggregate([(f"{outcome}_sum", "sum"), (f"{outcome}_count", "sum")])
    return merged.select([f"{outcome}_sum_sum", f"{outcome}_count_sum", *by]).rename_columns(
        [f"{outcome}_sum", f"{outcome}_count", *by]
    )
