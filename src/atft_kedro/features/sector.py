"""``sec_``: the stock against its sector (Sector33Code as of the date, from listed_info).

Sector statistics are equal-weighted over the panel's stocks of the sector that day and
are null when fewer than ``sector.min_members`` stocks have the value.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import (
    DAY, Feature, lag, rolling_std, safe_div, select_features,
)
from atft_kedro.features.panel import CLOSE, RET1, StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "sector"
SOURCE = "daily_quotes+listed_info"
S33, S17 = "Sector33Code", "Sector17Code"


def features(params: FeatureParams) -> list[Feature]:
    """The sec_ features, in manifest order."""
    s = params.sector
    out: list[Feature] = []

    def add(name: str, description: str, expr: pl.Expr | None = None) -> None:
        out.append(Feature(f"sec_{name}", description,
                           pl.col(f"_s_{name}") if expr is None else expr, SOURCE, 0))

    for w in s.return_windows:
        add(f"ret_{w}d", f"mean {w}-day return of the stock's sector-33")
    for w in s.return_windows:
        add(f"rel_ret_{w}d", f"stock's {w}-day return minus its sector-33 mean",
            pl.col(f"_r{w}") - pl.col(f"_s_ret_{w}d"))
    for w in s.rank_windows:
        add(f"rank_ret_{w}d", f"percentile rank (0..1) of the {w}-day return within the sector-33")
    for w in s.rank_windows:
        add(f"xs_rank_{w}d", f"percentile rank (0..1) of the sector-33's {w}-day return among sectors")
    for w in s.sector17_return_windows:
        add(f"s17_ret_{w}d", f"mean {w}-day return of the stock's sector-17")
        add(f"s17_rel_ret_{w}d", f"stock's {w}-day return minus its sector-17 mean",
            pl.col(f"_r{w}") - pl.col(f"_s_s17_ret_{w}d"))
    v = s.volatility_window
    add(f"vol_{v}d", f"mean {v}-day volatility of the sector-33's stocks")
    add(f"rel_vol_{v}d", f"stock's {v}-day volatility over its sector-33 mean, minus 1",
        safe_div(pl.col("_vol"), pl.col(f"_s_vol_{v}d")) - 1.0)
    w_last = s.return_windows[-1]
    add(f"dispersion_{w_last}d", f"std of {w_last}-day returns within the sector-33")
    add("breadth_up", "share of the sector-33's stocks that rose that day")
    add("log_members", "log of the number of stocks in the sector-33 that day")
    return out


def _prepare(panel: StockPanel, params: FeatureParams) -> pl.LazyFrame:
    s, frac = params.sector, params.rolling.min_periods_fraction
    windows = sorted(set(s.return_windows) | set(s.sector17_return_windows))
    close = pl.col(CLOSE)
    # one integer key per (day, sector): grouping on it is cheaper than on (Int32, String) pairs
    key33 = pl.col(DAY).cast(pl.Int64) * 1024 + pl.col(S33).rank("dense").cast(pl.Int64)
    key17 = pl.col(DAY).cast(pl.Int64) * 1024 + pl.col(S17).rank("dense").cast(pl.Int64)
    base = panel.frame.lazy().select(
        DAY, RET1,
        *[(close / lag(close, w) - 1.0).alias(f"_r{w}") for w in windows],
        rolling_std(pl.col(RET1), s.volatility_window, frac).alias("_vol"),
        pl.when(pl.col(RET1).is_not_null()).then((pl.col(RET1) > 0).cast(pl.Float64)).alias("_up"),
        key33.alias("_k33"),
        key17.alias("_k17"),
    ).collect().lazy()  # materialised once: three queries below read it

    v = s.volatility_window
    w_last = s.return_windows[-1]
    m = s.min_members

    def gated(value: str, count: str) -> pl.Expr:
        """The group statistic where enough stocks have the value, else null."""
        return pl.when(pl.col(count) >= m).then(pl.col(value))

    # plain aggregations only (fast paths); the min_members gate is applied afterwards
    by33 = base.group_by("_k33").agg(
        pl.col(DAY).first(),
        *[pl.col(f"_r{w}").mean().alias(f"_mean{w}") for w in s.return_windows],
        *[pl.col(f"_r{w}").count().alias(f"_n{w}") for w in s.return_windows],
        pl.col(f"_r{w_last}").std().alias("_std_last"),
        pl.col("_vol").mean().alias("_vol_mean"),
        pl.col("_vol").count().alias("_vol_n"),
        pl.col("_up").mean().alias("_up_mean"),
        pl.col("_up").count().alias("_up_n"),
        pl.len().alias("_members"),
    ).select(
        "_k33", DAY, *[f"_n{w}" for w in s.return_windows],
        *[gated(f"_mean{w}", f"_n{w}").alias(f"_s_ret_{w}d") for w in s.return_windows],
        gated("_vol_mean", "_vol_n").alias(f"_s_vol_{v}d"),
        gated("_std_last", f"_n{w_last}").alias(f"_s_dispersion_{w_last}d"),
        gated("_up_mean", "_up_n").alias("_s_breadth_up"),
        pl.col("_members").cast(pl.Float64).log().alias("_s_log_members"),
    ).with_columns(
        *[((pl.col(f"_s_ret_{w}d").rank() - 1.0) / (pl.col(f"_s_ret_{w}d").count() - 1.0))
          .over(DAY).alias(f"_s_xs_rank_{w}d") for w in s.rank_windows],
    ).drop(DAY)
    by17 = base.group_by("_k17").agg(
        *[pl.col(f"_r{w}").mean().alias(f"_mean{w}") for w in s.sector17_return_windows],
        *[pl.col(f"_r{w}").count().alias(f"_n{w}") for w in s.sector17_return_windows],
    ).select("_k17", *[gated(f"_mean{w}", f"_n{w}").alias(f"_s_s17_ret_{w}d") for w in s.sector17_return_windows])
    joined = (
        base.with_columns(*[pl.col(f"_r{w}").rank().over("_k33").alias(f"_rank{w}") for w in s.rank_windows])
        .join(by33, on="_k33", how="left", maintain_order="left")
        .join(by17, on="_k17", how="left", maintain_order="left")
    )
    return joined.with_columns(
        pl.when(pl.col(f"_n{w}") >= s.min_members).then(
            (pl.col(f"_rank{w}") - 1.0) / (pl.col(f"_n{w}") - 1.0)).alias(f"_s_rank_ret_{w}d")
        for w in s.rank_windows
    )


def compute(panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """sec_ features aligned with ``panel.frame`` (float32)."""
    return select_features(_prepare(panel, params), features(params))
