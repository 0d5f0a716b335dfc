"""``mrg_`` (weekly margin balances) and ``dmi_`` (daily margin alerts) per stock.

Weekly rows count from the ``weekly_margin_lag_days``-th trading day after PublishedDate,
alert rows from the ``daily_margin_lag_days``-th; both are joined as of that day, per
stock, never forward from the future. Changes and z-scores compare a week with the
stock's earlier weeks only.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import (
    CODE, DAY, Feature, cumulative_columns, min_count, require_table, safe_div,
    select_features, window_mean,
)
from atft_kedro.features.calendar import asof_backward, published_available_dates
from atft_kedro.features.panel import RAW_VOLUME, StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "margin"
WEEKLY, DAILY = "weekly_margin_interest", "daily_margin_interest"
_WEEKLY_COLUMNS = ("PublishedDate", "Date", "Code", "ShortMarginTradeVolume", "LongMarginTradeVolume",
                   "ShortStandardizedMarginTradeVolume", "LongStandardizedMarginTradeVolume")
_DAILY_COLUMNS = ("PublishedDate", "Code", "ApplicationDate", "ShortMarginOutstanding",
                  "DailyChangeShortMarginOutstanding", "ShortMarginOutstandingListedShareRatio",
                  "LongMarginOutstanding", "DailyChangeLongMarginOutstanding",
                  "LongMarginOutstandingListedShareRatio", "ShortLongRatio")


def features(params: FeatureParams) -> list[Feature]:
    """The mrg_ and dmi_ features, in manifest order."""
    m = params.margin
    wl, dl = params.availability.weekly_margin_lag_days, params.availability.daily_margin_lag_days
    out: list[Feature] = []
    adv = safe_div(1.0, pl.col("_adv"))

    def weekly(name: str, description: str, expr: pl.Expr | None = None) -> None:
        out.append(Feature(f"mrg_{name}", description, pl.col(f"_w_{name}") if expr is None else expr,
                           f"{WEEKLY}+daily_quotes" if expr is not None else WEEKLY, wl))

    def daily(name: str, description: str) -> None:
        out.append(Feature(f"dmi_{name}", description, pl.col(f"_a_{name}"), DAILY, dl))

    a = m.adv_window
    weekly("long_to_adv", f"margin long balance (shares) over the {a}-day mean volume",
           pl.col("_w_long") * adv)
    weekly("short_to_adv", f"margin short balance (shares) over the {a}-day mean volume",
           pl.col("_w_short") * adv)
    weekly("net_to_adv", f"margin long minus short balance over the {a}-day mean volume",
           (pl.col("_w_long") - pl.col("_w_short")) * adv)
    weekly("short_share", "margin short / (long + short)")
    for k in m.change_weeks:
        weekly(f"long_chg_{k}w", f"log change of the margin long balance over {k} weeks")
        weekly(f"short_chg_{k}w", f"log change of the margin short balance over {k} weeks")
    weekly("short_share_z", f"short share z-scored against the stock's previous {m.zscore_weeks} weeks")
    weekly("long_z", f"log long balance z-scored against the stock's previous {m.zscore_weeks} weeks")
    weekly("standardized_share", "standardized (institutional) share of margin balances")
    weekly("age_days", "trading days since the latest weekly margin row became available")
    weekly("valid", "1 when the stock has a weekly margin row")
    daily("valid", f"1 when a margin alert row became available within {m.alert_stale_days} trading days")
    daily("short_long_ratio", "alert: short over long margin outstanding (ratio, /100)")
    daily("long_share_ratio", "alert: long margin outstanding over listed shares (%)")
    daily("short_share_ratio", "alert: short margin outstanding over listed shares (%)")
    daily("long_chg", "alert: daily change over long margin outstanding")
    daily("short_chg", "alert: daily change over short margin outstanding")
    daily("age_days", "trading days since the latest margin alert row became available")
    return out


def _latest_known_rows(table: pl.DataFrame, days: pl.Series, lag_days: int, as_of: str) -> pl.DataFrame:
    """Rows tagged with ``_avail``, the trading day they become known (``lag_days`` after
    publication); per stock and ``_avail`` day only the newest (by ``as_of``, then publication)."""
    avail = published_available_dates(table.get_column("PublishedDate"), days, lag_days)
    return (
        table.with_columns(avail.alias("_avail"))
        .filter(pl.col("_avail").is_not_null())
        .sort(CODE, "_avail", as_of, "PublishedDate")
        .unique([CODE, "_avail"], keep="last", maintain_order=True)
    )


def _weekly_rows(table: pl.DataFrame, panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    m = params.margin
    z_min = max(3, min_count(m.zscore_weeks, params.rolling.min_periods_fraction))
    days = panel.trading_days
    rows = _latest_known_rows(table, days, params.availability.weekly_margin_lag_days, "Date")
    long_, short = pl.col("LongMarginTradeVolume"), pl.col("ShortMarginTradeVolume")
    share = safe_div(short, long_ + short)
    log_long, log_short = long_.log1p(), short.log1p()

    def zscore(expr: pl.Expr) -> pl.Expr:
        prev = expr.shift(1)
        return safe_div(expr - prev.rolling_mean(m.zscore_weeks, min_samples=z_min),
                        prev.rolling_std(m.zscore_weeks, min_samples=z_min)).over(CODE)

    return rows.select(
        CODE,
        days.search_sorted(rows.get_column("_avail")).cast(pl.Int32).alias("_w_avail_d"),
        long_.alias("_w_long"),
        short.alias("_w_short"),
        share.alias("_w_short_share"),
        *[(log_long - log_long.shift(k)).over(CODE).alias(f"_w_long_chg_{k}w") for k in m.change_weeks],
        *[(log_short - log_short.shift(k)).over(CODE).alias(f"_w_short_chg_{k}w") for k in m.change_weeks],
        zscore(share).alias("_w_short_share_z"),
        zscore(log_long).alias("_w_long_z"),
        safe_div(pl.col("LongStandardizedMarginTradeVolume") + pl.col("ShortStandardizedMarginTradeVolume"),
                 long_ + short).alias("_w_standardized_share"),
    )


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


def compute(
    panel: StockPanel,
    weekly_margin_interest: pl.DataFrame | None,
    daily_margin_interest: pl.DataFrame | None,
    params: FeatureParams,
) -> pl.DataFrame:
    """mrg_/dmi_ features aligned with ``panel.frame`` (float32).

    Raises:
        MissingSourceError: either margin table is missing or empty.
    """
    weekly = require_table(weekly_margin_interest, WEEKLY, GROUP, _WEEKLY_COLUMNS)
    daily = require_table(daily_margin_interest, DAILY, GROUP, _DAILY_COLUMNS)
    m, frac = params.margin, params.rolling.min_periods_fraction
    frame = (
        panel.frame.lazy().select(CODE, DAY, "_pos", RAW_VOLUME)
        .with_columns(cumulative_columns({"raw_volume": pl.col(RAW_VOLUME)}))
        .with_columns(window_mean("raw_volume", m.adv_window, frac).alias("_adv"))
        .select(CODE, DAY, "_adv")
    )
    frame = asof_backward(frame, _weekly_rows(weekly, panel, params).lazy(),
                          left_on=DAY, right_on="_w_avail_d", by=CODE)
    frame = asof_backward(frame, _daily_rows(daily, panel, params).lazy(),
                          left_on=DAY, right_on="_a_avail_d", by=CODE)
    age_w = (pl.col(DAY) - pl.col("_w_avail_d")).cast(pl.Float64)
    age_a = (pl.col(DAY) - pl.col("_a_avail_d")).cast(pl.Float64)
    active = age_a <= m.alert_stale_days
    alert_columns = ["_a_short_long_ratio", "_a_long_share_ratio", "_a_short_share_ratio",
                     "_a_long_chg", "_a_short_chg"]
    frame = frame.with_columns(
        age_w.alias("_w_age_days"),
        pl.col("_w_avail_d").is_not_null().cast(pl.Float64).alias("_w_valid"),
        age_a.alias("_a_age_days"),
        active.fill_null(False).cast(pl.Float64).alias("_a_valid"),
        *[pl.when(active).then(pl.col(c)).alias(c) for c in alert_columns],
    )
    return select_features(frame, features(params))
