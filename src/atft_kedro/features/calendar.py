"""Point-in-time helpers on the exchange calendar (JPX holidays included).

A value becomes usable on its *available date*, a trading day; features at date t may use
it when ``available date <= t``:

* statements disclosed before the cut-off time (15:00 Tokyo) count from the disclosure
  day if it is a trading day, else from the next trading day; disclosed at or after the
  cut-off they count from the next trading day after the disclosure date;
* published tables (weekly flows and margin, margin alerts, short selling, short-position
  reports, the earnings calendar) count from the ``lag``-th trading day after publication.

"Next trading day" always comes from ``trading_calendar`` through the one calendar rule of
:mod:`atft_kedro.exchange_calendar` (HolidayDivision '1' or '2'), never from weekday
arithmetic. As-of joins look backwards only: nothing is back-filled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from atft_kedro import exchange_calendar


def trading_days(trading_calendar: pl.DataFrame) -> pl.Series:
    """Every trading day of the calendar (HolidayDivision '1' or '2'), ascending.

    Raises:
        ValueError: the table lacks Date/HolidayDivision, holds an unknown division, or has no trading day.
    """
    days = exchange_calendar.trading_days(trading_calendar)
    if days.is_empty():
        raise ValueError(
            "table 'trading_calendar' has no trading day "
            f"(HolidayDivision in {list(exchange_calendar.TRADING_DIVISIONS)})"
        )
    return days


def _gather_days(days: pl.Series, index: pl.Series) -> pl.Series:
    """``days[index]``, null where the index runs past the calendar."""
    n = days.len()
    inside = index < n
    picked = days.gather(index.clip(upper_bound=n - 1))
    return pl.select(pl.when(inside).then(picked)).to_series().rename("Date")


def next_trading_day(dates: pl.Series, days: pl.Series, lag: int = 1) -> pl.Series:
    """The ``lag``-th trading day strictly after each date (null past the calendar's end).

    Args:
        dates: any calendar dates.
        days: ascending trading days from :func:`trading_days`.
        lag: 1 for the next trading day, 2 for the one after, ...
    """
    if lag < 1:
        raise ValueError(f"lag must be >= 1, got {lag}")
    index = days.search_sorted(dates, side="right").cast(pl.Int64) + (lag - 1)
    return _gather_days(days, index)


def trading_day_on_or_after(dates: pl.Series, days: pl.Series) -> pl.Series:
    """Each date itself if it is a trading day, else the next trading day."""
    index = days.search_sorted(dates, side="left").cast(pl.Int64)
    return _gather_days(days, index)


def parse_disclosed_time(times: pl.Series) -> pl.Series:
    """Parse statements.DisclosedTime ('HH:MM:SS', or 'HH:MM') into ``pl.Time``.

    Raises:
        ValueError: naming the values that are not clock times.
    """
    parsed = times.str.strip_chars().str.to_time("%H:%M:%S", strict=False)
    short = times.str.strip_chars().str.to_time("%H:%M", strict=False)
    parsed = pl.select(pl.coalesce(parsed, short)).to_series()
    bad = times.filter(parsed.is_null())
    if bad.len():
        raise ValueError(
            f"table 'statements' column 'DisclosedTime' has {bad.len()} values that are not "
            f"HH:MM:SS clock times, e.g. {bad.unique().head(5).to_list()}")
    return parsed


def statement_available_dates(
    disclosed_dates: pl.Series, disclosed_times: pl.Series, days: pl.Series, cutoff: dt.time
) -> pl.Series:
    """First trading day on which each statement is known at the close.

    Disclosed before ``cutoff`` on a trading day: that day. Disclosed at or after
    ``cutoff``: the next trading day after the disclosure date. On a closed day: the next
    trading day.
    """
    late = parse_disclosed_time(disclosed_times) >= cutoff
    same_or_next = trading_day_on_or_after(disclosed_dates, days)
    strictly_next = next_trading_day(disclosed_dates, days, 1)
    return pl.select(pl.when(late).then(strictly_next).otherwise(same_or_next)).to_series().rename(
        "AvailableDate")


def published_available_dates(published: pl.Series, days: pl.Series, lag: int) -> pl.Series:
    """Available dates of rows published on ``published``: the ``lag``-th trading day after."""
    return next_trading_day(published, days, lag).rename("AvailableDate")


def trading_day_index(dates: pl.Series, days: pl.Series, table: str) -> pl.Series:
    """Index of each date among the trading days (Int32).

    Raises:
        ValueError: naming the table and the dates that are not trading days.
    """
    index = days.search_sorted(dates, side="left").cast(pl.Int64)
    found = _gather_days(days, index)
    bad = dates.filter((found != dates).fill_null(True))
    if bad.len():
        raise ValueError(
            f"table '{table}' has {bad.len()} rows on days trading_calendar marks closed or does "
            f"not cover, e.g. {bad.unique().sort().head(5).to_list()}")
    return index.cast(pl.Int32)


def asof_backward(
    left: pl.LazyFrame,
    right: pl.LazyFrame,
    *,
    left_on: str,
    right_on: str,
    by: str | Sequence[str],
) -> pl.LazyFrame:
    """Attach to each left row the latest right row with ``right_on <= left_on`` (same ``by``).

    The left frame must already be sorted by (``by``, ``left_on``) – its row order is kept;
    the right frame is sorted here. Never looks forward, never back-fills.

    Raises:
        ValueError: the right frame has two rows with the same (``by``, ``right_on``): which
            one the join picks would depend on row order, so callers resolve ties first.
    """
    by_list = [by] if isinstance(by, str) else list(by)
    keys = [*by_list, right_on]
    right_sorted = right.sort(keys).collect()
    duplicated = right_sorted.select(keys).is_duplicated()
    if duplicated.any():
        raise ValueError(
            f"as-of join: {int(duplicated.sum())} right rows share {keys} with another row, e.g. "
            f"{right_sorted.filter(duplicated).select(keys).head(3).to_dicts()}; resolve ties before joining")
    right_sorted = right_sorted.lazy()
    return left.join_asof(
        right_sorted, left_on=left_on, right_on=right_on, by=by_list,
        strategy="backward", check_sortedness=False,
    )


def asof_day_grid(
    events: pl.DataFrame, *, key: str, keys: list[str], available_day: str, n_days: int
) -> pl.DataFrame:
    """Latest event per key as of every trading day: one row per (key, day), key-major.

    Row ``keys.index(k) * n_days + d`` holds the latest event of key ``k`` whose
    ``available_day`` (a trading-day index) is <= d, or nulls. Use :func:`grid_index`
    to pick rows for a panel.

    Args:
        events: rows with ``key``, ``available_day`` (Int32 trading-day index) and values;
            at most one row per (key, available_day).
        key: the column that groups events (e.g. Section, Sector33Code).
        keys: every key value, in grid order.
        available_day: column with the trading-day index from which a row is known.
        n_days: number of trading days.
    """
    duplicated = events.select(key, available_day).is_duplicated()
    if duplicated.any():
        raise ValueError(
            f"as-of day grid: {int(duplicated.sum())} events share ({key}, {available_day}) with another, e.g. "
            f"{events.filter(duplicated).select(key, available_day).head(3).to_dicts()}; resolve ties first")
    grid = pl.DataFrame({key: pl.Series(keys, dtype=events.schema[key])}).join(
        pl.DataFrame({"_grid_d": pl.int_range(n_days, dtype=pl.Int32, eager=True)}), how="cross")
    right = events.with_columns(pl.col(available_day).cast(pl.Int32)).sort(key, available_day)
    return grid.join_asof(
        right, left_on="_grid_d", right_on=available_day, by=key, strategy="backward",
        check_sortedness=False,
    )


def grid_index(key_index: pl.Expr, day_index: pl.Expr, n_days: int) -> pl.Expr:
    """Row of :func:`asof_day_grid` for a key position and a trading-day index (null key -> null)."""
    return (key_index.cast(pl.Int64) * n_days + day_index.cast(pl.Int64)).cast(pl.UInt32)
