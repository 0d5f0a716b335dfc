"""``ss_pos_``: reported large short positions per stock (table ``short_positions``).

Short-position reports count from the ``short_positions_lag_days``-th trading day after
DisclosedDate; a seller's latest report replaces its earlier ones, and the stock's
``ss_pos_ratio_sum`` is the sum over sellers of their latest reported ratio (0 for a stock
nobody reported). ``ss_pos_valid`` is 1 from the first day any report is known: before
it, or without the table (it is optional, and a short range may hold no report), the
features are null and the flag 0.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import CODE, DAY, Feature, lag, optional_table, select_features
from atft_kedro.features.calendar import asof_backward, published_available_dates
from atft_kedro.features.panel import StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "short_positions"
POSITIONS = "short_positions"
_POSITION_COLUMNS = ("DisclosedDate", "CalculatedDate", "Code", "ShortSellerName",
                     "ShortPositionsToSharesOutstandingRatio")


def features(params: FeatureParams) -> list[Feature]:
    """The ss_pos_ features, in manifest order."""
    lag_days = params.availability.short_positions_lag_days
    known = pl.col("_pos_known")
    ratio = pl.when(known).then(pl.col("_pos_sum").fill_null(0.0))
    w = params.short.position_change_window

    def position(name: str, description: str, expr: pl.Expr) -> Feature:
        return Feature(f"ss_{name}", description, expr, POSITIONS, lag_days)

    return [
        position("pos_ratio_sum", "sum over sellers of their latest reported short position (% of shares)", ratio),
        position("pos_count", "number of sellers whose latest report is above 0",
                 pl.when(known).then(pl.col("_pos_count").fill_null(0.0))),
        position(f"pos_ratio_chg_{w}d", f"change of pos_ratio_sum over {w} trading days", ratio - lag(ratio, w)),
        position("pos_valid", "1 once short-position reports are known (the table has a report available by then)",
                 known.cast(pl.Float64)),
    ]


def _position_events(table: pl.DataFrame, panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """Running sum over sellers of their latest ratio, per stock, at each available day.

    Each report changes the stock's sum by (its ratio - the seller's previous ratio); the
    running sum of those changes in order of availability is the sum of latest ratios.
    """
    days = panel.trading_days
    avail = published_available_dates(table.get_column("DisclosedDate"), days,
                                      params.availability.short_positions_lag_days)
    ratio = pl.col("ShortPositionsToSharesOutstandingRatio").fill_null(0.0)
    seller = [CODE, "ShortSellerName"]
    events = (
        table.with_columns(avail.alias("_avail"))
        .filter(pl.col("_avail").is_not_null())
        .sort(CODE, "ShortSellerName", "_avail", "CalculatedDate", "DisclosedDate")
        .with_columns(
            (ratio - ratio.shift(1).over(seller).fill_null(0.0)).alias("_delta"),
            ((ratio > 0).cast(pl.Float64) - (ratio > 0).cast(pl.Float64).shift(1).over(seller).fill_null(0.0))
            .alias("_delta_count"),
        )
    )
    return (
        events.group_by(CODE, "_avail").agg(pl.col("_delta").sum(), pl.col("_delta_count").sum())
        .sort(CODE, "_avail")
        .select(
            CODE,
            "_avail",
            pl.col("_delta").cum_sum().over(CODE).round(10).alias("_pos_sum"),
            pl.col("_delta_count").cum_sum().over(CODE).alias("_pos_count"),
        )
    )


def compute(panel: StockPanel, short_positions: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    """ss_pos_ features aligned with ``panel.frame`` (float32); null with ``ss_pos_valid`` 0 without reports.

    Raises:
        MissingSourceError: the table has rows but lacks columns.
    """
    table = optional_table(short_positions, POSITIONS, GROUP, _POSITION_COLUMNS)
    days = panel.trading_days
    events = _position_events(table, panel, params)
    events = events.with_columns(days.search_sorted(events.get_column("_avail")).cast(pl.Int32).alias("_p_avail_d"))
    first_known = events.get_column("_p_avail_d").min()
    frame = panel.frame.lazy().select(CODE, DAY, "_pos")
    frame = asof_backward(frame, events.drop("_avail").lazy(), left_on=DAY, right_on="_p_avail_d", by=CODE)
    known = pl.lit(False) if first_known is None else pl.col(DAY) >= first_known
    frame = frame.with_columns(known.alias("_pos_known"))
    return select_features(frame, features(params))
