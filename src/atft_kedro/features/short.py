"""``ss_``: short selling by sector (table ``short_selling``, per Date x Sector33Code).

Sector rows count from the ``short_selling_lag_days``-th trading day after Date; the stock
gets its as-of sector's row. The table is optional: without it every sector feature is
null and ``ss_valid`` is 0. Reported short positions (``ss_pos_``) are their own group,
:mod:`atft_kedro.features.short_positions`.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import (
    CODE, DAY, Feature, min_count, optional_table, safe_div, select_features,
)
from atft_kedro.features.calendar import asof_day_grid, grid_index, published_available_dates
from atft_kedro.features.panel import StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "short"
SECTOR = "short_selling"
S33 = "Sector33Code"
_SECTOR_COLUMNS = ("Date", S33, "SellingExcludingShortSellingTurnoverValue",
                   "ShortSellingWithRestrictionsTurnoverValue", "ShortSellingWithoutRestrictionsTurnoverValue")


def features(params: FeatureParams) -> list[Feature]:
    """The ss_ sector features, in manifest order."""
    s = params.short
    sl = params.availability.short_selling_lag_days
    out: list[Feature] = []

    def sector(name: str, description: str) -> None:
        out.append(Feature(f"ss_{name}", description, pl.col(f"_ss_{name}"), f"{SECTOR}+listed_info", sl))

    sector("sec_ratio", "sector short-selling turnover over total selling turnover")
    sector("sec_restricted_share", "share of the sector's short selling under price restrictions")
    for w in s.change_windows:
        sector(f"sec_ratio_chg_{w}d", f"change of the sector short ratio over {w} days")
    sector(f"sec_ratio_z_{s.zscore_window}d",
           f"sector short ratio z-scored against its previous {s.zscore_window} days")
    sector("sec_ratio_rel", "sector short ratio minus the mean over sectors that day")
    sector("valid", "1 when the stock's sector has short-selling data")
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


def compute(panel: StockPanel, short_selling: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    """ss_ sector features aligned with ``panel.frame`` (float32); null with ``ss_valid`` 0 without the table.

    Raises:
        MissingSourceError: the table has rows but lacks columns.
    """
    sector_table = optional_table(short_selling, SECTOR, GROUP, _SECTOR_COLUMNS)
    n_days = panel.trading_days.len()
    sectors = sorted(sector_table.get_column(S33).unique().to_list())
    grid = asof_day_grid(_sector_rows(sector_table, panel, params), key=S33, keys=sectors,
                         available_day="_avail_d", n_days=n_days)
    sector_index = pl.col(S33).replace_strict(sectors, list(range(len(sectors))), default=None,
                                              return_dtype=pl.Int64)
    rows = panel.frame.select(grid_index(sector_index, pl.col(DAY), n_days).alias("_row")).get_column("_row")
    sector_part = grid.select(pl.all().gather(rows)).drop(S33, "_grid_d")
    frame = panel.frame.lazy().select(CODE, DAY, "_pos").with_columns(sector_part.get_columns())
    frame = frame.with_columns(pl.col("_avail_d").is_not_null().cast(pl.Float64).alias("_ss_valid"))
    return select_features(frame, features(params))
