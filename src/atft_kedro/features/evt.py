"""``evt_``: the earnings calendar around the stock – how far the next scheduled announcement
is and how long ago the last one was.

A schedule row counts from the ``earnings_calendar_lag_days``-th trading day after its
PublishedDate; the next date is the latest published schedule's ScheduledDate when it
is still ahead. Distances to future dates are in calendar days (they need no future
calendar); the post-announcement flag counts trading days since the latest statement
became available.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import CODE, DATE, DAY, Feature, flag, optional_table, select_features
from atft_kedro.features.calendar import (
    asof_backward, published_available_dates, statement_available_dates,
)
from atft_kedro.features.panel import StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "evt"
SOURCE = "earnings_calendar"
_COLUMNS = ("PublishedDate", "ScheduledDate", "Code")
_STATEMENT_COLUMNS = ("DisclosedDate", "DisclosedTime", "Code")


def features(params: FeatureParams) -> list[Feature]:
    """The evt_ features, in manifest order."""
    e = params.evt
    lag_days = params.availability.earnings_calendar_lag_days
    w = e.window_days
    days_to = pl.col("_e_days_to_next")
    since = pl.col("_e_days_since_stmt")
    return [
        Feature("evt_days_to_next", "calendar days to the next scheduled earnings announcement",
                days_to, SOURCE, lag_days),
        Feature("evt_days_since_last", "calendar days since the last scheduled announcement",
                pl.col("_e_days_since_last"), SOURCE, lag_days),
        Feature("evt_pre_window", f"1 when the next announcement is at most {w} calendar days ahead",
                flag(days_to <= w), SOURCE, lag_days),
        Feature("evt_post_window", f"1 when the latest statement became available at most {w} trading days ago",
                flag(since <= w), "statements", 1),
        Feature("evt_days_since_stmt", "trading days since the latest statement became available",
                since, "statements", 1),
        Feature("evt_valid", "1 when a future announcement date is known", flag(days_to.is_not_null()),
                SOURCE, lag_days),
    ]


def compute(
    panel: StockPanel,
    earnings_calendar: pl.DataFrame | None,
    statements: pl.DataFrame | None,
    params: FeatureParams,
) -> pl.DataFrame:
    """evt_ features aligned with ``panel.frame`` (float32).

    Both tables are optional: without the calendar the schedule features are null and
    ``evt_valid`` 0; without statements ``evt_days_since_stmt`` is null and ``evt_post_window`` 0.

    Raises:
        MissingSourceError: a table has rows but lacks columns.
    """
    cal = optional_table(earnings_calendar, SOURCE, GROUP, _COLUMNS)
    # the stmt group owns the statements table's warning; evt warns only when stmt is off
    statements = optional_table(statements, "statements", GROUP, _STATEMENT_COLUMNS, warn=not params.groups.stmt)
    days = panel.trading_days
    avail = published_available_dates(cal.get_column("PublishedDate"), days,
                                      params.availability.earnings_calendar_lag_days)
    cal = cal.select(_COLUMNS).with_columns(avail.alias("_avail")).filter(pl.col("_avail").is_not_null())
    cal = cal.with_columns(days.search_sorted(cal.get_column("_avail")).cast(pl.Int32).alias("_avail_d"))
    # next: the latest published schedule (nearest date among those published the same day)
    published = cal.sort(CODE, "_avail_d", pl.col("ScheduledDate"), descending=[False, False, True]).unique(
        [CODE, "_avail_d"], keep="last", maintain_order=True).select(
        CODE, pl.col("_avail_d").alias("_next_avail_d"), pl.col("ScheduledDate").alias("_next"))
    # last: the latest scheduled date that has passed and was known by then
    scheduled_d = days.search_sorted(cal.get_column("ScheduledDate"), side="left").cast(pl.Int32)
    passed_day = pl.max_horizontal(pl.col("_avail_d"), scheduled_d)
    passed = cal.with_columns(passed_day.alias("_last_d")).sort(CODE, "_last_d", "ScheduledDate").unique(
        [CODE, "_last_d"], keep="last", maintain_order=True).select(
        CODE, "_last_d", pl.col("ScheduledDate").alias("_last"))
    st_avail = statement_available_dates(
        statements.get_column("DisclosedDate"), statements.get_column("DisclosedTime"), days,
        params.availability.statement_cutoff_time)
    stmts = statements.select(CODE).with_columns(st_avail.alias("_st")).drop_nulls("_st")
    stmts = stmts.select(
        CODE, days.search_sorted(stmts.get_column("_st")).cast(pl.Int32).alias("_st_d")).unique().sort(CODE, "_st_d")
    frame = panel.frame.lazy().select(CODE, DATE, DAY)
    frame = asof_backward(frame, published.lazy(), left_on=DAY, right_on="_next_avail_d", by=CODE)
    frame = asof_backward(frame, passed.lazy(), left_on=DAY, right_on="_last_d", by=CODE)
    frame = asof_backward(frame, stmts.lazy(), left_on=DAY, right_on="_st_d", by=CODE)
    next_gap = (pl.col("_next") - pl.col(DATE)).dt.total_days().cast(pl.Float64)
    frame = frame.with_columns(
        pl.when(next_gap >= 0).then(next_gap).alias("_e_days_to_next"),
        (pl.col(DATE) - pl.col("_last")).dt.total_days().cast(pl.Float64).alias("_e_days_since_last"),
        (pl.col(DAY) - pl.col("_st_d")).cast(pl.Float64).alias("_e_days_since_stmt"),
    )
    return select_features(frame, features(params))
