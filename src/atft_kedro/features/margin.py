"""``mrg_``: weekly margin balances per stock (table ``weekly_margin_interest``).

Weekly rows count from the ``weekly_margin_lag_days``-th trading day after PublishedDate
and are joined as of that day, per stock, never forward from the future. Changes and
z-scores compare a week with the stock's earlier weeks only. The table is optional: when
it is missing or empty every ``mrg_`` feature is null and ``mrg_valid`` is 0. Daily margin
alerts (``dmi_``) are their own group, :mod:`atft_kedro.features.margin_alert`.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import (
    CODE, DAY, Feature, cumulative_columns, min_count, optional_table, safe_div,
    select_features, window_mean,
)
from atft_kedro.features.calendar import asof_backward, published_available_dates
from atft_kedro.features.panel import RAW_VOLUME, StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "margin"
WEEKLY = "weekly_margin_interest"
_WEEKLY_COLUMNS = ("PublishedDate", "Date", "Code", "ShortMarginTradeVolume", "LongMarginTradeVolume",
                   "ShortStandardizedMarginTradeVolume", "LongStandardizedMarginTradeVolume")


def features(params: FeatureParams) -> list[Feature]:
    """The mrg_ features, in manifest order."""
    m = params.margin
    wl = params.availability.weekly_margin_lag_days
    out: list[Feature] = []
    adv = safe_div(1.0, pl.col("_adv"))

    def weekly(name: str, description: str, expr: pl.Expr | None = None) -> None:
        out.append(Feature(f"mrg_{name}", description, pl.col(f"_w_{name}") if expr is None else expr,
                           f"{WEEKLY}+daily_quotes" if expr is not None else WEEKLY, wl))

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


def compute(panel: StockPanel, weekly_margin_interest: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    """mrg_ features aligned with ``panel.frame`` (float32); null with ``mrg_valid`` 0 without the table.

    Raises:
        MissingSourceError: the table has rows but lacks columns.
    """
    weekly = optional_table(weekly_margin_interest, WEEKLY, GROUP, _WEEKLY_COLUMNS)
    m, frac = params.margin, params.rolling.min_periods_fraction
    frame = (
        panel.frame.lazy().select(CODE, DAY, "_pos", RAW_VOLUME)
        .with_columns(cumulative_columns({"raw_volume": pl.col(RAW_VOLUME)}))
        .with_columns(window_mean("raw_volume", m.adv_window, frac).alias("_adv"))
        .select(CODE, DAY, "_adv")
    )
    frame = asof_backward(frame, _weekly_rows(weekly, panel, params).lazy(),
                          left_on=DAY, right_on="_w_avail_d", by=CODE)
    frame = frame.with_columns(
        (pl.col(DAY) - pl.col("_w_avail_d")).cast(pl.Float64).alias("_w_age_days"),
        pl.col("_w_avail_d").is_not_null().cast(pl.Float64).alias("_w_valid"),
    )
    return select_features(frame, features(params))
