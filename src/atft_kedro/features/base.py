"""Building blocks shared by the feature groups.

Per-stock time-series expressions run on a frame sorted by (Code, Date) whose column
``_pos`` is the row number of the row within its stock (0 for a stock's first row).
Polars' plain rolling sums carry a running total down the whole column, so a window of
one stock would depend (in its last bits) on the rows of the stocks sorted before it,
future rows of those stocks included. Here every window is therefore either

* window-local by construction (``shift``, ``rolling_std``/``max``/``min``) and masked so
  it never reaches into the previous stock (``_pos >= window - 1``), or
* a difference of per-stock running sums (``cum_sum().over("Code")``), which depend on
  the stock's own past only.

So a feature at date t is a function of rows dated <= t, bit for bit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

from atft_kedro.schemas.tables import TABLES_BY_CANONICAL_NAME

logger = logging.getLogger(__name__)

CODE = "Code"
DATE = "Date"
POS = "_pos"  # row number within the stock, frame sorted by (Code, Date)
DAY = "_d"  # index of Date in the exchange's trading days
CODE_IDX = "_c"  # index of Code in the panel's sorted codes


@dataclass(frozen=True)
class Feature:
    """One output column: its name, meaning, expression and provenance.

    Attributes:
        name: column name (group prefix included).
        description: one line for the manifest and docs/features.md.
        expr: Polars expression over the group's prepared frame.
        source: canonical table(s) it is computed from, '+'-joined.
        lag_days: trading days after the underlying event before the value is known.
    """

    name: str
    description: str
    expr: pl.Expr
    source: str
    lag_days: int


class MissingSourceError(ValueError):
    """A feature group is on but a required canonical table it needs is missing or empty,
    or a table lacks columns the group needs."""


def optional_table(
    table: pl.DataFrame | None, table_name: str, group: str, columns: Iterable[str], *, warn: bool = True
) -> pl.DataFrame:
    """An optional source table (any but calendar, master, daily bars and TOPIX), possibly empty.

    A missing table is replaced by an empty one with its canonical columns; the group then
    computes as usual on no rows, so the features read from the table come out null and
    their validity flag 0, and the run goes on. ``warn`` logs one warning naming the
    table (left to the one group that owns a table several groups read).

    Raises:
        MissingSourceError: the table has rows but lacks ``columns``.
    """
    if table is None or table.height == 0:
        if warn:
            logger.warning(
                "table '%s' is %s: the features of group '%s' read from it are null and their "
                "validity flag is 0", table_name, "missing" if table is None else "empty (0 rows)", group)
        if table is None:
            spec = TABLES_BY_CANONICAL_NAME[table_name]
            table = pl.DataFrame(schema={c.canonical: c.dtype for c in spec.columns})
    return _require_columns(table, table_name, group, columns)


def _require_columns(table: pl.DataFrame, table_name: str, group: str, columns: Iterable[str]) -> pl.DataFrame:
    """``table`` if it has ``columns``, else a :class:`MissingSourceError` naming the missing ones."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise MissingSourceError(
            f"feature group '{group}' needs columns {missing} of table '{table_name}', which has "
            f"{sorted(table.columns)}; fix the table or set params:feature_engineering.groups.{group}: false")
    return table


def require_table(
    table: pl.DataFrame | None, table_name: str, group: str, columns: Iterable[str]
) -> pl.DataFrame:
    """Return ``table`` if it is present, non-empty and has ``columns``; raise otherwise.

    Raises:
        MissingSourceError: naming the table, the group and the switch that turns it off.
    """
    switch = f"params:feature_engineering.groups.{group}: false"
    if table is None:
        raise MissingSourceError(
            f"feature group '{group}' needs table '{table_name}', which is missing; "
            f"ingest it or set {switch}")
    if table.height == 0:
        raise MissingSourceError(
            f"feature group '{group}' needs table '{table_name}', which is empty (0 rows); "
            f"ingest it or set {switch}")
    return _require_columns(table, table_name, group, columns)


def min_count(window: int, fraction: float) -> int:
    """Fewest non-null values a window of ``window`` rows needs."""
    return max(1, math.ceil(window * fraction))


def lag(expr: pl.Expr, k: int) -> pl.Expr:
    """Value ``k`` rows earlier for the same stock; null for a stock's first ``k`` rows."""
    return pl.when(pl.col(POS) >= k).then(expr.shift(k))


def finite(expr: pl.Expr) -> pl.Expr:
    """``expr`` with NaN and +-inf turned into null."""
    return pl.when(expr.is_finite()).then(expr)


def safe_div(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """``num / den``, null where ``den`` is 0 or null."""
    return pl.when(den != 0).then(num / den)


def cumulative_columns(sources: Mapping[str, pl.Expr]) -> list[pl.Expr]:
    """Per-stock running sums ``_cs_<name>`` and non-null counts ``_cn_<name>``.

    Add them with ``with_columns`` before using :func:`window_sum` / :func:`window_mean`.
    NaN and inf count as missing.
    """
    out: list[pl.Expr] = []
    for name, expr in sources.items():
        clean = finite(expr.cast(pl.Float64))
        out.append(clean.fill_null(0.0).cum_sum().over(CODE).alias(f"_cs_{name}"))
        out.append(clean.is_not_null().cast(pl.Int32).cum_sum().over(CODE).alias(f"_cn_{name}"))
    return out


def _running_window(column: str, window: int, zero: float | int) -> pl.Expr:
    """Running total minus the running total ``window`` rows earlier (same stock), unmasked."""
    running = pl.col(column)
    return running - pl.when(pl.col(POS) >= window).then(running.shift(window)).otherwise(zero)


def window_sum(name: str, window: int) -> pl.Expr:
    """Sum of the last ``window`` rows of the stock (nulls skipped); needs the cumulative columns."""
    return pl.when(pl.col(POS) >= window - 1).then(_running_window(f"_cs_{name}", window, 0.0))


def window_count(name: str, window: int) -> pl.Expr:
    """Non-null values among the last ``window`` rows of the stock."""
    return pl.when(pl.col(POS) >= window - 1).then(_running_window(f"_cn_{name}", window, 0))


def window_mean(name: str, window: int, fraction: float) -> pl.Expr:
    """Mean of the last ``window`` rows of the stock, null unless enough are non-null."""
    n = _running_window(f"_cn_{name}", window, 0)
    enough = (pl.col(POS) >= window - 1) & (n >= min_count(window, fraction))
    return pl.when(enough).then(_running_window(f"_cs_{name}", window, 0.0) / n)


def rolling_std(expr: pl.Expr, window: int, fraction: float) -> pl.Expr:
    """Sample standard deviation over the stock's last ``window`` rows (window-local, exact)."""
    return pl.when(pl.col(POS) >= window - 1).then(
        expr.rolling_std(window, min_samples=max(2, min_count(window, fraction))))


def rolling_max(expr: pl.Expr, window: int, fraction: float) -> pl.Expr:
    """Maximum over the stock's last ``window`` rows."""
    return pl.when(pl.col(POS) >= window - 1).then(
        expr.rolling_max(window, min_samples=min_count(window, fraction)))


def rolling_min(expr: pl.Expr, window: int, fraction: float) -> pl.Expr:
    """Minimum over the stock's last ``window`` rows."""
    return pl.when(pl.col(POS) >= window - 1).then(
        expr.rolling_min(window, min_samples=min_count(window, fraction)))


def wilder(expr: pl.Expr, window: int) -> pl.Expr:
    """Wilder's smoothing (EWM with alpha = 1/window, no bias adjustment) per stock.

    A day where ``expr`` is null (no bar: the stock did not trade) neither moves the average
    nor blanks it: the last value is carried.
    """
    return expr.ewm_mean(alpha=1.0 / window, adjust=False, min_samples=window,
                         ignore_nulls=True).forward_fill().over(CODE)


def ema(expr: pl.Expr, span: int) -> pl.Expr:
    """Exponential moving average with the given span per stock (null days carried, as :func:`wilder`)."""
    return expr.ewm_mean(span=span, adjust=False, min_samples=span, ignore_nulls=True).forward_fill().over(CODE)


def to_float32(expr: pl.Expr, name: str) -> pl.Expr:
    """Cast to float32 with NaN / inf as null, named ``name``."""
    as32 = expr.cast(pl.Float32)
    return pl.when(as32.is_finite()).then(as32).alias(name)


def select_features(frame: pl.LazyFrame, features: list[Feature]) -> pl.DataFrame:
    """Evaluate ``features`` on ``frame`` into a float32 frame with exactly their columns."""
    if not features:
        return pl.DataFrame()
    return frame.select([to_float32(f.expr, f.name) for f in features]).collect().rechunk()


def flag(condition: pl.Expr) -> pl.Expr:
    """1.0 where ``condition`` holds, 0.0 where not or unknown."""
    return condition.fill_null(False).cast(pl.Float64)


def broadcast_by_day(daily: pl.DataFrame, day_index: pl.Series) -> pl.DataFrame:
    """Rows of a per-trading-day frame (row i = trading day i) picked for each panel row.

    Args:
        daily: one row per trading day, in trading-day order (row number = ``_d``).
        day_index: the panel's ``_d`` column.
    """
    return daily.select(pl.all().gather(day_index))


def dense_by_day(frame: pl.DataFrame, n_days: int) -> pl.DataFrame:
    """Spread a frame keyed by ``_d`` onto every trading day 0..n_days-1 (missing days null)."""
    grid = pl.DataFrame({DAY: pl.int_range(n_days, dtype=pl.Int32, eager=True)})
    return grid.join(frame.with_columns(pl.col(DAY).cast(pl.Int32)), on=DAY, how="left",
                     maintain_order="left")
