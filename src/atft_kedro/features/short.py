"""``ss_``: short selling – the sector's short-selling ratio, and reported large short positions.

Sector rows (``short_selling``, per Date x Sector33Code) count from the
``short_selling_lag_days``-th trading day after Date; the stock gets its as-of sector's
row. Short-position reports count from the ``short_positions_lag_days``-th trading day
after DisclosedDate; a seller's latest report replaces its earlier ones, and the stock's
``ss_pos_ratio_sum`` is the sum over sellers of their latest reported ratio.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import (
    CODE, DAY, Feature, lag, min_count, require_table, safe_div, select_features,
)
from atft_kedro.features.calendar import (
    asof_backward, asof_day_grid, grid_index, published_available_dates,
)
from atft_kedro.features.panel import StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "short"
SECTOR, POSITIONS = "short_selling", "short_positions"
S33 = "Sector33Code"
_SECTOR_COLUMNS = ("Date", S33, "SellingExcludingShortSellingTurnoverValue",
                   "ShortSellingWithRestrictionsTurnoverValue", "ShortSellingWithoutRestrictionsTurnoverValue")
_POSITION_COLUMNS = ("DisclosedDate", "CalculatedDate", "Code", "ShortSellerName",
                     "ShortPositionsToSharesOutstandingRatio")


def features(params: FeatureParams) -> list[Feature]:
    """The ss_ features, in manifest order."""
    s = params.short
    sl, pl_ = params.availability.short_selling_lag_days, params.availability.short_positions_lag_days
    out: list[Feature] = []

    def sector(name: str, description: str) -> None:
        out.append(Feature(f"ss_{name}", description, pl.col(f"_ss_{name}"), f"{SECTOR}+listed_info", sl))

    def position(name: str, description: str, expr: pl.Expr) -> None:
        out.append(Feature(f"ss_{name}", description, expr, POSITIONS, pl_))

    sector("sec_ratio", "sector short-selling turnover over total selling turnover")
    sector("sec_restricted_share", "share of the sector's short selling under price restrictions")
    for w in s.change_windows:
        sector(f"sec_ratio_chg_{w}d", f"change of the sector short ratio over {w} days")
    sector(f"sec_ratio_z_{s.zscore_window}d",
           f"sector short ratio z-scored against its previous {s.zscore_window} days")
    sector("sec_ratio_rel", "sector short ratio minus the mean over sectors that day")
    sector("valid", "1 when the stock's sector has short-selling data")
    ratio = pl.col("_pos_sum").fill_null(0.0)
    position("pos_ratio_sum", "sum over sellers of their latest reported short position (% of shares)", ratio)
    position("pos_count", "number of sellers whose latest report is above 0",
             pl.col("_pos_count").fill_null(0.0))
    w = s.position_change_window
    position(f"pos_ratio_chg_{w}d", f"change of pos_ratio_sum over {w} trading days", ratio - lag(ratio, w))
    return out


def _sector_rows(table: pl.DataFrame, panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    s = params.short
    z_min = max(3, min_count(s.zscore_window, params.rolling.min_periods_fraction))
    days = panel.trading_days
    avail = published_available_dates(table.get_column("Date"), days, params.availability.short_selling_lag_days)
    rows = table.with_columns(avail.alias("_avail")).filter(pl.col("_avail").is_not_null()).sort(
        S33, "_avail", "Date").unique([S33, "_avail"], keep="last", maintain_order=True)
    restricted = pl.col("ShortSellingWithRestrictionsTurnoverValue")
    unrestricted = pl.col("ShortSellingWithoutRestrictionsTurnoverValue")
    shorts = restricted + unrestricted
    ratio = safe_div(shorts, shorts + pl.col("SellingExcludingShortSellingTurnoverValue"))
    prev = ratio.shift(1)
    rows = rows.select(
        S33,
        days.search_sorted(rows.get_column("_avail")).cast(pl.Int32).alias("_avail_d"),
        ratio.alias("_ss_sec_ratio"),
        safe_div(restricted, shorts).alias("_ss_sec_restricted_share"),
        *[(ratio - ratio.shift(w)).over(S33).alias(f"_ss_sec_ratio_chg_{w}d") for w in s.change_windows],
        safe_div(ratio - prev.rolling_mean(s.zscore_window, min_samples=z_min),
                 prev.rolling_std(s.zscore_window, min_samples=z_min)).over(S33)
        .alias(f"_ss_sec_ratio_z_{s.zscore_window}d"),
    )
    return rows.with_columns(
        (pl.col("_ss_sec_ratio") - pl.col("_ss_sec_ratio").mean().over("_avail_d")).alias("_ss_sec_ratio_rel"))


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


def compute(
    panel: StockPanel,
    short_selling: pl.DataFrame | None,
    short_positions: pl.DataFrame | None,
    params: FeatureParams,
) -> pl.DataFrame:
    """ss_ features aligned with ``panel.frame`` (float32).

    Raises:
        MissingSourceError: either short-selling table is missing or empty.
    """
    sector_table = require_table(short_selling, SECTOR, GROUP, _SECTOR_COLUMNS)
    position_table = require_table(short_positions, POSITIONS, GROUP, _POSITION_COLUMNS)
    days = panel.trading_days
    n_days = days.len()
    sectors = sorted(sector_table.get_column(S33).unique().to_list())
    grid = asof_day_grid(_sector_rows(sector_table, panel, params), key=S33, keys=sectors,
                         available_day="_avail_d", n_days=n_days)
    sector_index = pl.col(S33).replace_strict(sectors, list(range(len(sectors))), default=None,
                                              return_dtype=pl.Int64)
    rows = panel.frame.select(grid_index(sector_index, pl.col(DAY), n_days).alias("_row")).get_column("_row")
    sector_part = grid.select(pl.all().gather(rows)).drop(S33, "_grid_d")
    events = _position_events(position_table, panel, params)
    events = events.with_columns(days.search_sorted(events.get_column("_avail")).cast(pl.Int32).alias("_p_avail_d"))
    frame = panel.frame.lazy().select(CODE, DAY, "_pos").with_columns(sector_part.get_columns())
    frame = asof_backward(frame, events.drop("_avail").lazy(), left_on=DAY, right_on="_p_avail_d", by=CODE)
    frame = frame.with_columns(pl.col("_avail_d").is_not_null().cast(pl.Float64).alias("_ss_valid"))
    return select_features(frame, features(params))
