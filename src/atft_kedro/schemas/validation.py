"""Validate a table against its pandera schema with an error that names table, column and rows.

Kedro's catalog ``validator:`` checks a dataset when it is saved; the ingestion pipeline also
checks every table of a run *before* any of them is saved (all or nothing), through
:func:`validate_table`. Its :class:`TableValidationError` lists, per failing column and
check, how many rows fail and a few of them in full key form, e.g.::

    table 'raw_daily_bars' (01_raw, J-Quants /equities/bars/daily) breaks its contract:
    column 'C' finite (no NaN or inf): 1 row(s), e.g. row 7 {'Date': '2024-01-05', 'Code': '13010', 'C': nan}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandera.errors
import pandera.polars as pa
import polars as pl

#: Failing rows shown per column and check.
EXAMPLE_ROWS = 3


class TableValidationError(ValueError):
    """A table breaks its schema: wrong columns or dtypes, duplicate keys, NaN/inf, non-positive prices."""


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _examples(frame: pl.DataFrame, rows: list[int], columns: Sequence[str]) -> str:
    present = [c for c in dict.fromkeys(columns) if c in frame.columns]
    if not rows or not present:
        return ""
    picked = frame.select(present).with_row_index("_row").filter(pl.col("_row").is_in(rows))
    shown = [
        f"row {record.pop('_row')} {{{', '.join(f'{k!r}: {_plain(v)!r}' for k, v in record.items())}}}"
        for record in picked.to_dicts()
    ]
    return ", e.g. " + "; ".join(shown)


def describe_failures(
    frame: pl.DataFrame, errors: pandera.errors.SchemaErrors, keys: Sequence[str], table: str
) -> list[str]:
    """One line per failing (column, check): the count and a few rows (keys and the value)."""
    cases = errors.failure_cases
    lines = []
    for (column, check), group in cases.group_by(["column", "check"], maintain_order=True):
        indices = group.get_column("index").drop_nulls().unique().sort()
        if indices.len():
            rows = indices.head(EXAMPLE_ROWS).to_list()
            shown_columns = [*keys, column] if column in frame.columns else list(keys)
            what = f"keys {list(keys)} not unique" if column == table else f"column '{column}' {check}"
            lines.append(f"{what}: {indices.len()} row(s){_examples(frame, rows, shown_columns)}")
        else:
            found = group.get_column("failure_case").head(EXAMPLE_ROWS).to_list()
            lines.append(f"column '{column}' {check}: {found}")
    return lines


def validate_table(
    frame: pl.DataFrame, schema: pa.DataFrameSchema, where: str, keys: Sequence[str] = ()
) -> pl.DataFrame:
    """``schema.validate(frame)`` collecting every failure into one readable error.

    Args:
        frame: the table.
        schema: its pandera schema (``schema.name`` is the table's catalog name).
        where: the layer and origin for the message, e.g. ``"01_raw, J-Quants /equities/bars/daily"``.
        keys: the columns that identify a row, shown with each failing row.

    Returns:
        The validated table.

    Raises:
        TableValidationError: naming the table, each failing column and check, the number of
            failing rows and a few of them.
    """
    try:
        return schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        lines = describe_failures(frame, errors, keys, str(schema.name))
        raise TableValidationError(
            f"table '{schema.name}' ({where}) breaks its contract:\n  " + "\n  ".join(lines)
        ) from None
