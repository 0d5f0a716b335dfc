"""``dmi_``: daily margin alerts per stock (table ``daily_margin_interest``).

J-Quants publishes a daily margin row only for stocks under a margin alert, so the table
is sparse and, over a short range, may be empty. Rows count from the
``daily_margin_lag_days``-th trading day after PublishedDate and are joined as of that
day, per stock; an alert older than ``margin.alert_stale_days`` trading days is inactive.
Without the table every ``dmi_`` feature is null and ``dmi_valid`` is 0 (the weekly
``mrg_`` features are another group and are not affected).
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import CODE, DAY, Feature, optional_table, safe_div, select_features
from atft_kedro.features.calendar import asof_backward
from atft_kedro.features.margin import _latest_known_rows
from atft_kedro.features.panel import StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "margin_alert"
DAILY = "daily_margin_interest"
_DAILY_COLUMNS = ("PublishedDate", "Code", "ApplicationDate", "ShortMarginOutstanding",
                  "DailyChangeShortMarginOutstanding", "ShortMarginOutstandingListedShareRatio",
                  "LongMarginOutstanding", "DailyChangeLongMarginOutstanding",
                  "LongMarginOutstandingListedShareRatio", "ShortLongRatio")
_ALERT_COLUMNS = ("_a_short_long_ratio", "_a_long_share_ratio", "_a_short_share_ratio", "_a_long_chg",
                  "_a_short_chg")


def features(params: FeatureParams) -> list[Feature]:
    """The dmi_ features, in manifest order."""
    m = params.margin
    dl = params.availability.daily_margin_lag_days
    out: list[Feature] = []

    def daily(name: str, description: str) -> None:
        out.append(Feature(f"dmi_{name}", description, pl.col(f"_a_{name}"), DAILY, dl))

    daily("valid", f"1 when a margin alert row became available within {m.alert_stale_days} trading days")
    daily("short_long_ratio", "alert: short over long margin outstanding (ratio, /100)")
    daily("long_share_ratio", "alert: long margin outstanding over listed shares (%)")
    daily("short_share_ratio", "alert: short margin outstanding over listed shares (%)")
    daily("long_chg", "alert: daily change over long margin outstanding")
    daily("short_chg", "alert: daily change over short margin outstanding")
    daily("age_days", "trading days since the latest margin alert row became available")
    return out


def _daily_rows(table: pl.DataFrame, panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    days = panel.trading_days
    rows = _latest_known_rows(table, days, params.availability.daily_margin_lag_days, "ApplicationDate")
    return rows.select(
        CODE,
        days.search_sorted(rows.get_column("_avail")).cast(pl.Int32).alias("_a_avail_d"),
        (pl.col("ShortLongRatio") / 100.0).alias("_a_short_long_ratio"),
        pl.col("LongMarginOutstandingListedShareRatio").alias("_a_long_share_ratio"),
        pl.col("ShortMarginOutstandingListedShareRatio").alias("_a_short_share_ratio"),
        safe_div(pl.col("DailyChangeLongMarginOutstanding"), pl.col("LongMarginOutstanding")).alias("_a_long_chg"),
        safe_div(pl.col("DailyChangeShortMarginOutstanding"), pl.col("ShortMarginOutstanding")).alias(
            "_a_short_chg"),
    )


def compute(panel: StockPanel, daily_margin_interest: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    """dmi_ features aligned with ``panel.frame`` (float32); null with ``dmi_valid`` 0 without the table.

    Raises:
        MissingSourceError: the table has rows but lacks columns.
    """
    daily = optional_table(daily_margin_interest, DAILY, GROUP, _DAILY_COLUMNS)
    frame = asof_backward(panel.frame.lazy().select(CODE, DAY), _daily_rows(daily, panel, params).lazy(),
                          left_on=DAY, right_on="_a_avail_d", by=CODE)
    age = (pl.col(DAY) - pl.col("_a_avail_d")).cast(pl.Float64)
    active = age <= params.margin.alert_stale_days
    frame = frame.with_columns(
        age.alias("_a_age_days"),
        active.fill_null(False).cast(pl.Float64).alias("_a_valid"),
        *[pl.when(active).then(pl.col(c)).alias(c) for c in _ALERT_COLUMNS],
    )
    return select_features(frame, features(params))
