"""The features table as the normalization pipeline reads it, and its day x stock grid.

The features table may arrive eager (``pl.DataFrame``) or lazy (``pl.LazyFrame``, e.g. a
Parquet scan): every read here goes through a lazy query that selects only the columns
it needs, so a lazy table is never loaded whole.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from atft_kedro.schemas.manifest import FeatureManifest

FeatureFrame = pl.DataFrame | pl.LazyFrame
KEY_COLUMNS = ("Date", "Code")


def check_feature_frame(features: FeatureFrame, manifest: FeatureManifest) -> None:
    """Raise unless the table is ``Date, Code`` then the manifest's features, in order, as float32."""
    schema = features.collect_schema()
    columns = list(schema.names())
    expected = [*KEY_COLUMNS, *manifest.names]
    if columns != expected:
        missing = [c for c in expected if c not in set(columns)]
        extra = [c for c in columns if c not in set(expected)]
        if missing or extra:
            detail = f"{len(missing)} missing {missing[:20]}, {len(extra)} not in the manifest {extra[:20]}"
        else:
            moved = [(i, c, e) for i, (c, e) in enumerate(zip(columns, expected)) if c != e][:5]
            detail = f"same columns in another order, first differences (position, got, expected): {moved}"
        raise ValueError(
            f"table features does not follow feature manifest {manifest.hash[:12]}: {detail}. "
            "Expected Date, Code, then the manifest's features in manifest order."
        )
    if schema["Date"] != pl.Date or schema["Code"] != pl.String:
        raise ValueError(
            f"table features: key columns must be Date pl.Date and Code pl.String, got "
            f"Date {schema['Date']}, Code {schema['Code']}"
        )
    not_f32 = [(n, str(schema[n])) for n in manifest.names if schema[n] != pl.Float32]
    if not_f32:
        raise ValueError(f"table features: feature columns must be Float32; these are not: {not_f32[:20]}")


@dataclass(frozen=True)
class DayStockGrid:
    """The dense grid's axes: trading days and stock codes, both ascending."""

    dates: np.ndarray  # [D] datetime64[D]
    codes: np.ndarray  # [N] str

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dates.size, self.codes.size)

    def flat_positions(self, keys: pl.DataFrame) -> np.ndarray:
        """Flat grid index ``day * N + stock`` of each (Date, Code) row; -1 off the grid.

        Args:
            keys: [R rows] with columns Date (pl.Date) and Code (pl.String).

        Returns:
            [R] int64.
        """
        days = keys.get_column("Date").to_numpy().astype("datetime64[D]")
        day_idx = np.searchsorted(self.dates, days)
        day_ok = day_idx < self.dates.size
        day_ok[day_ok] = self.dates[day_idx[day_ok]] == days[day_ok]
        stock_idx = (
            keys.get_column("Code")
            .cast(pl.Enum(self.codes.tolist()), strict=False)
            .to_physical()
            .cast(pl.Int64)
            .fill_null(-1)
            .to_numpy()
        )
        flat = day_idx.astype(np.int64) * self.codes.size + stock_idx
        flat[~day_ok | (stock_idx < 0)] = -1
        return flat


def read_keys(features: FeatureFrame, table: str) -> pl.DataFrame:
    """The (Date, Code) columns of a table, refusing null keys."""
    keys = features.lazy().select(KEY_COLUMNS).collect()
    nulls = keys.null_count()
    if nulls.row(0) != (0, 0):
        raise ValueError(f"table {table}: key columns have nulls (Date {nulls.item(0, 0)}, Code {nulls.item(0, 1)})")
    return keys


def grid_of(keys: pl.DataFrame) -> DayStockGrid:
    """The grid spanned by the features' distinct dates and codes."""
    dates = keys.get_column("Date").unique().sort().to_numpy().astype("datetime64[D]")
    codes = np.asarray(keys.get_column("Code").unique().sort().to_list(), dtype=str)
    return DayStockGrid(dates=dates, codes=codes)


def unique_positions(flat: np.ndarray, grid: DayStockGrid, keys: pl.DataFrame, table: str) -> np.ndarray:
    """Mark the grid cells the rows fill, refusing duplicate (Date, Code) rows.

    Args:
        flat: [R] int64 flat positions, all on the grid.
        grid: the grid they index.
        keys: [R] the rows' (Date, Code), for the error message.
        table: the table's name, for the error message.

    Returns:
        [D * N] bool, True where a row fills the cell.
    """
    filled = np.zeros(grid.shape[0] * grid.shape[1], dtype=bool)
    filled[flat] = True
    if int(filled.sum()) != flat.size:
        dupes = keys.filter(keys.is_duplicated()).unique().sort(KEY_COLUMNS).head(10)
        raise ValueError(
            f"table {table} has {flat.size - int(filled.sum())} duplicate (Date, Code) rows, "
            f"e.g. {dupes.to_dicts()}"
        )
    return filled


class RowsByDate:
    """Rows of the features table dated within a range, with the columns asked for.

    An eager table sorted by Date (as the feature pipeline writes it) is cut by binary
    search into a zero-copy slice; any other table (unsorted, or a LazyFrame) is filtered
    by a lazy query, which a Date-ordered Parquet scan answers by skipping row groups.
    """

    def __init__(self, features: FeatureFrame) -> None:
        self._features = features
        self._dates = (
            features.get_column("Date")
            if isinstance(features, pl.DataFrame) and features.get_column("Date").is_sorted()
            else None
        )

    def between(self, first: dt.date, last: dt.date, columns: list[str]) -> pl.DataFrame:
        """Rows with ``first <= Date <= last``, columns ``columns``, in table order."""
        if self._dates is not None:
            lo = int(self._dates.search_sorted(first, side="left"))
            hi = int(self._dates.search_sorted(last, side="right"))
            return self._features.select(columns).slice(lo, hi - lo)
        return (
            self._features.lazy()
            .filter(pl.col("Date").is_between(first, last, closed="both"))
            .select(columns)
            .collect()
        )
