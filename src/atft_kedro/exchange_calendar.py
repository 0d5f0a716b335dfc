"""The one rule of the exchange calendar: which days the Tokyo stock market trades.

J-Quants ``/markets/calendar`` gives every calendar day a holiday division (raw ``HolDiv``,
canonical ``HolidayDivision``):

====== ===================================================================== =============
value  meaning (JPX)                                                          equities
====== ===================================================================== =============
``0``  non-business day (weekend, national or year-end holiday)              closed
``1``  business day                                                          trading day
``2``  business day with a half-day session (e.g. the first day of the year) trading day
``3``  non-business day with holiday trading of derivatives only              closed
====== ===================================================================== =============

So a trading day for equities is ``HolidayDivision`` in {"1", "2"}. Every part of the
project (the sources' publication lags, the features' "next trading day", the splits'
trading-day counts, the evaluation's holding periods) asks this module and nothing else.
"""

from __future__ import annotations

import polars as pl

#: Every holiday division J-Quants sends, with its meaning.
HOLIDAY_DIVISIONS: dict[str, str] = {
    "0": "non-business day",
    "1": "business day",
    "2": "business day, half-day session",
    "3": "non-business day, holiday trading of derivatives only",
}
#: Divisions on which equities trade.
TRADING_DIVISIONS: tuple[str, ...] = ("1", "2")
#: Divisions on which the equity market is closed.
CLOSED_DIVISIONS: tuple[str, ...] = ("0", "3")

#: Column names of the division in the raw (J-Quants v2) and canonical tables.
RAW_COLUMN = "HolDiv"
CANONICAL_COLUMN = "HolidayDivision"


def is_trading_day_expr(column: str = CANONICAL_COLUMN) -> pl.Expr:
    """True where the holiday division ``column`` marks a trading day for equities ("1" or "2")."""
    return pl.col(column).is_in(TRADING_DIVISIONS)


def trading_days(calendar: pl.DataFrame, column: str = CANONICAL_COLUMN, table: str = "trading_calendar") -> pl.Series:
    """The distinct trading days of ``calendar``, ascending, as a ``pl.Date`` series named ``Date``.

    Args:
        calendar: a calendar table with ``Date`` (pl.Date) and the holiday division ``column``.
        column: ``HolidayDivision`` (canonical, the default) or ``HolDiv`` (raw).
        table: the table's name, for error messages.

    Returns:
        Every day whose division is in :data:`TRADING_DIVISIONS`, unique and sorted (may be empty).

    Raises:
        ValueError: naming the table and column when a column is missing, ``Date`` is not a
            date, or a division is not one of :data:`HOLIDAY_DIVISIONS` (with example rows).
    """
    missing = [c for c in ("Date", column) if c not in calendar.columns]
    if missing:
        raise ValueError(f"table '{table}' lacks columns {missing}; it has {calendar.columns}")
    if calendar.schema["Date"] != pl.Date:
        raise ValueError(f"table '{table}' column 'Date' must be pl.Date, got {calendar.schema['Date']}")
    unknown = calendar.filter(~pl.col(column).is_in(list(HOLIDAY_DIVISIONS)) | pl.col(column).is_null())
    if unknown.height:
        raise ValueError(
            f"table '{table}' column '{column}' must be one of {sorted(HOLIDAY_DIVISIONS)} "
            f"({', '.join(f'{k} {v}' for k, v in HOLIDAY_DIVISIONS.items())}); {unknown.height} rows are not, "
            f"e.g. {unknown.select('Date', column).head(5).to_dicts()}"
        )
    return (
        calendar.filter(is_trading_day_expr(column))
        .get_column("Date")
        .unique()
        .sort()
        .rename("Date")
    )
