"""Cast a table as a source delivers it (text or numbers) to the dtypes of its :class:`TableSpec`.

Both the J-Quants source (JSON values) and the files source (CSV text, Parquet columns)
go through :func:`cast_to_spec`, so a value is parsed the same way whatever its origin:

* dates: ``pl.Date`` kept, ``pl.Datetime`` truncated to its date, text parsed as ``YYYY-MM-DD``;
* numbers: any numeric dtype cast to Float64, text parsed as a decimal number;
* strings (codes, names, flags): text kept verbatim, so ``"13010"`` stays a string and the
  sector code ``"0050"`` keeps its leading zero. An integer column where text is expected
  is an error, because its leading zeros are already gone.

Empty text and the J-Quants placeholders ``"-"`` / ``"－"`` are missing values (null) in
date and number columns. A value that is present but cannot be parsed is never turned
into null silently: :class:`RawTableError` names the origin, table, column, a few of the
offending values and their row numbers.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.schemas.tables import Column, TableSpec

#: Text that means "no value" in date and number columns (J-Quants uses "" and "-").
NULL_TOKENS: tuple[str, ...] = ("", "-", "－")

_BAD_PREFIX = "__unparsable__"
_EXAMPLES = 5


class RawTableError(ValueError):
    """A raw table lacks a column, or a column holds values of the wrong type."""


def _text_or_null(name: str) -> pl.Expr:
    stripped = pl.col(name).str.strip_chars()
    return pl.when(stripped.is_in(NULL_TOKENS)).then(None).otherwise(stripped)


def _cast_expression(column: Column, source: pl.DataType, where: str) -> tuple[pl.Expr, pl.Expr | None]:
    """The expression casting ``column`` from ``source`` dtype, and a mask of unparsable values.

    Returns:
        (cast expression aliased ``column.raw``, mask expression or None when nothing is parsed).

    Raises:
        RawTableError: when the source dtype cannot become the column's dtype.
    """
    name = column.raw
    target = column.dtype
    if source == pl.Null:
        return pl.col(name).cast(target).alias(name), None
    if target == pl.String:
        if source in (pl.String, pl.Categorical) or isinstance(source, pl.Enum):
            return pl.col(name).cast(pl.String).alias(name), None
        raise RawTableError(
            f"{where}: column '{name}' must be text but is {source}; write codes as strings "
            f"(a number loses leading zeros, e.g. sector code '0050' would become 50)"
        )
    if target == pl.Date:
        if source == pl.Date:
            return pl.col(name).alias(name), None
        if isinstance(source, pl.Datetime):
            return pl.col(name).dt.date().alias(name), None
        if source == pl.String:
            parsed = _text_or_null(name).str.to_date("%Y-%m-%d", strict=False)
            return parsed.alias(name), _text_or_null(name).is_not_null() & parsed.is_null()
        raise RawTableError(f"{where}: column '{name}' must be a date (YYYY-MM-DD) but is {source}")
    if target == pl.Float64:
        if source.is_numeric():
            return pl.col(name).cast(pl.Float64).alias(name), None
        if source == pl.String:
            parsed = _text_or_null(name).cast(pl.Float64, strict=False)
            return parsed.alias(name), _text_or_null(name).is_not_null() & parsed.is_null()
        raise RawTableError(f"{where}: column '{name}' must be a number but is {source}")
    raise RawTableError(f"{where}: column '{name}' has unsupported target dtype {target}")  # pragma: no cover


def cast_to_spec(
    frame: pl.DataFrame,
    spec: TableSpec,
    origin: str,
    optional_columns: frozenset[str] = frozenset(),
) -> pl.DataFrame:
    """Select the spec's raw columns of ``frame`` in spec order and cast them to the spec dtypes.

    Args:
        frame: the table as delivered; extra columns are dropped.
        spec: the table's contract.
        origin: where the table comes from (file path, endpoint and query), for error messages.
        optional_columns: raw columns that may be absent (then all null, to be filled by the caller).

    Returns:
        A DataFrame with exactly ``spec.raw_columns``, in that order, with the spec dtypes.

    Raises:
        RawTableError: naming origin, table and column when a column is absent, has an
            impossible dtype, or holds values that cannot be parsed (with examples and rows).
    """
    where = f"{origin} (table '{spec.raw_name}', J-Quants {spec.endpoint})"
    missing = [c for c in spec.raw_columns if c not in frame.columns and c not in optional_columns]
    if missing:
        raise RawTableError(f"{where} lacks columns {missing}; it has {sorted(frame.columns)}")
    absent = [c for c in spec.raw_columns if c not in frame.columns]
    frame = frame.with_columns(pl.lit(None, dtype=pl.Null).alias(c) for c in absent)

    casts: list[pl.Expr] = []
    masks: list[pl.Expr] = []
    for column in spec.columns:
        cast, mask = _cast_expression(column, frame.schema[column.raw], where)
        casts.append(cast)
        if mask is not None:
            masks.append(mask.alias(_BAD_PREFIX + column.raw))
    result = frame.select(*casts, *masks)
    mask_names = [m for m in result.columns if m.startswith(_BAD_PREFIX)]
    if mask_names:
        counts = result.select(pl.col(mask_names).sum()).row(0, named=True)
        bad = {name.removeprefix(_BAD_PREFIX): n for name, n in counts.items() if n}
        if bad:
            raise RawTableError(_describe_unparsable(frame, result, spec, where, bad))
    return result.drop(mask_names)


def _describe_unparsable(
    frame: pl.DataFrame, result: pl.DataFrame, spec: TableSpec, where: str, bad: dict[str, int]
) -> str:
    dtypes = {c.raw: c.dtype for c in spec.columns}
    lines = []
    for name, count in bad.items():
        offending = frame.select(pl.col(name)).with_row_index("row").filter(result[_BAD_PREFIX + name])
        examples = offending[name].unique(maintain_order=True).head(_EXAMPLES).to_list()
        rows = offending["row"].head(_EXAMPLES).to_list()
        lines.append(
            f"column '{name}' has {count} value(s) that are not {dtypes[name]}"
            f"{' (expected YYYY-MM-DD)' if dtypes[name] == pl.Date else ''}: "
            f"e.g. {examples} at rows {rows}"
        )
    return f"{where}: " + "; ".join(lines)
