"""``px_``: returns, volatility, volume, liquidity and price-location features per stock.

All returns use AdjustmentClose (split-adjusted), carried forward over untraded days,
and only scale-free ratios of adjusted prices (never their level, which later splits
rescale). The group is computed in families; each family first adds its per-stock
running sums and window statistics as columns, then derives its features from them, so
a window statistic is computed once and the working memory stays one family wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from atft_kedro.features.base import (
    Feature, cumulative_columns, finite, flag, lag, rolling_max, rolling_min, rolling_std,
    safe_div, select_features, window_mean,
)
from atft_kedro.features.panel import (
    CLOSE, LIMIT_DOWN, LIMIT_UP, LOGRET1, RAW_CLOSE, RAW_VOLUME, RET1, TURNOVER, VOLUME, StockPanel,
)
from atft_kedro.features.params import FeatureParams

GROUP = "px"
SOURCE = "daily_quotes"


@dataclass
class _Family:
    """Features sharing running sums (``cumulative``) and window statistics (``stats``)."""

    cumulative: dict[str, pl.Expr] = field(default_factory=dict)
    stats: dict[str, pl.Expr] = field(default_factory=dict)
    features: list[Feature] = field(default_factory=list)

    def add(self, name: str, description: str, expr: pl.Expr) -> None:
        self.features.append(Feature(f"px_{name}", description, expr, SOURCE, 0))


def _pairs(windows: list[int]) -> list[tuple[int, int]]:
    ordered = sorted(windows)
    return list(zip(ordered[:-1], ordered[1:]))


def _families(params: FeatureParams) -> list[_Family]:
    p, frac = params.px, params.rolling.min_periods_fraction
    close, lr = pl.col(CLOSE), pl.col(LOGRET1)

    returns = _Family()
    for w in p.return_windows:
        returns.add(f"ret_{w}d", f"{w}-day return of AdjustmentClose", close / lag(close, w) - 1.0)
    for w in p.log_return_windows:
        returns.add(f"logret_{w}d", f"{w}-day log return of AdjustmentClose", close.log() - lag(close.log(), w))

    trend = _Family(cumulative={"close": close},
                    stats={f"_ma_{w}": window_mean("close", w, frac) for w in p.ma_windows})
    for w in p.ma_windows:
        trend.add(f"ma_gap_{w}d", f"AdjustmentClose over its {w}-day moving average, minus 1",
                  close / pl.col(f"_ma_{w}") - 1.0)
    for a, b in _pairs(p.ma_windows):
        trend.add(f"ma_cross_{a}_{b}", f"{a}-day over {b}-day moving average, minus 1",
                  pl.col(f"_ma_{a}") / pl.col(f"_ma_{b}") - 1.0)

    hl = (pl.col("AdjustmentHigh") / pl.col("AdjustmentLow")).log()
    vol = _Family(
        cumulative={"hl2": hl * hl, "lr": lr, "lr2": lr * lr, "lr3": lr * lr * lr},
        stats={
            **{f"_sd_{w}": rolling_std(lr, w, frac) for w in p.volatility_windows},
            **{f"_pk_{w}": window_mean("hl2", w, frac) for w in p.parkinson_windows},
            **{f"_{m}_{w}": window_mean(m, w, frac) for w in p.skew_windows for m in ("lr", "lr2", "lr3")},
        },
    )
    for w in p.volatility_windows:
        vol.add(f"vol_{w}d", f"std of daily log returns over {w} days", pl.col(f"_sd_{w}"))
    for a, b in _pairs(p.volatility_windows):
        vol.add(f"vol_ratio_{a}_{b}", f"{a}-day over {b}-day realised volatility",
                safe_div(pl.col(f"_sd_{a}"), pl.col(f"_sd_{b}")))
    for w in p.parkinson_windows:
        vol.add(f"pvol_{w}d", f"Parkinson volatility from adjusted high/low over {w} days",
                (pl.col(f"_pk_{w}") / (4.0 * math.log(2.0))).sqrt())
    for w in p.skew_windows:
        m1, m2, m3 = pl.col(f"_lr_{w}"), pl.col(f"_lr2_{w}"), pl.col(f"_lr3_{w}")
        var = (m2 - m1 * m1).clip(lower_bound=0.0)
        vol.add(f"skew_{w}d", f"skewness of daily log returns over {w} days",
                safe_div(m3 - 3.0 * m1 * m2 + 2.0 * m1**3, var.pow(1.5)))

    a = p.amihud_window
    volume_windows = sorted(set(p.volume_windows) | {a})
    liquidity = _Family(
        cumulative={"volume": pl.col(VOLUME), "turnover": pl.col(TURNOVER), "absret": finite(pl.col(RET1).abs()),
                    "up": (pl.col(RET1) > 0).cast(pl.Float64)},
        stats={
            **{f"_vm_{w}": window_mean("volume", w, frac) for w in p.volume_windows},
            **{f"_tm_{w}": window_mean("turnover", w, frac) for w in volume_windows},
            f"_ar_{a}": window_mean("absret", a, frac),
            f"_up_{p.up_ratio_window}": window_mean("up", p.up_ratio_window, frac),
        },
    )
    for w in p.volume_windows:
        liquidity.add(f"volume_ratio_{w}d", f"AdjustmentVolume over its {w}-day mean",
                      safe_div(pl.col(VOLUME), pl.col(f"_vm_{w}")))
    for w in p.volume_windows:
        liquidity.add(f"turnover_{w}d", f"log(1 + mean TurnoverValue over {w} days), yen",
                      pl.col(f"_tm_{w}").log1p())
    liquidity.add(f"amihud_{a}d", f"log Amihud illiquidity: mean |return| over mean turnover (yen) over {a} days",
                  (pl.col(f"_ar_{a}") / pl.col(f"_tm_{a}")).log())
    w = p.up_ratio_window
    liquidity.add(f"up_ratio_{w}d", f"share of up days over {w} days", pl.col(f"_up_{w}"))

    location = _Family(stats={
        **{f"_hi_{w}": rolling_max(close, w, frac) for w in p.range_windows},
        **{f"_lo_{w}": rolling_min(close, w, frac) for w in p.range_windows},
    })
    for w in p.range_windows:
        hi, lo = pl.col(f"_hi_{w}"), pl.col(f"_lo_{w}")
        location.add(f"range_pos_{w}d", f"position of the close within its {w}-day low-high range (0..1)",
                     safe_div(close - lo, hi - lo))
        location.add(f"drawdown_{w}d", f"close over its {w}-day high, minus 1", close / hi - 1.0)
        location.add(f"runup_{w}d", f"close over its {w}-day low, minus 1", close / lo - 1.0)
    w = p.extreme_window
    location.add(f"ret_max_{w}d", f"largest daily return over {w} days", rolling_max(pl.col(RET1), w, frac))
    location.add(f"ret_min_{w}d", f"smallest daily return over {w} days", rolling_min(pl.col(RET1), w, frac))

    day = _Family()
    adj_open, adj_high, adj_low, adj_close = (
        pl.col(c) for c in ("AdjustmentOpen", "AdjustmentHigh", "AdjustmentLow", "AdjustmentClose"))
    day.add("gap_overnight", "adjusted open over previous adjusted close, minus 1", adj_open / lag(close, 1) - 1.0)
    day.add("intraday", "adjusted close over adjusted open, minus 1", adj_close / adj_open - 1.0)
    day.add("hl_range", "adjusted high over adjusted low, minus 1", adj_high / adj_low - 1.0)
    day.add("close_loc", "position of the close within the day's low-high range (0..1)",
            safe_div(adj_close - adj_low, adj_high - adj_low))
    day.add("vwap_gap", "close over the day's VWAP (TurnoverValue / Volume), minus 1",
            pl.col("Close") / safe_div(pl.col(TURNOVER), pl.col(RAW_VOLUME)) - 1.0)
    day.add("limit_up", "1 when the close hit the daily upper price limit", flag(pl.col(LIMIT_UP)))
    day.add("limit_down", "1 when the close hit the daily lower price limit", flag(pl.col(LIMIT_DOWN)))
    day.add("traded", "1 when the stock traded that day (a close exists)", flag(adj_close.is_not_null()))
    day.add("log_price", "log of the raw (unadjusted) close, carried forward", pl.col(RAW_CLOSE).log())
    day.add("log_history_days", "log(1 + trading days of history the stock has in the panel)",
            pl.col("_pos").cast(pl.Float64).log1p())
    return [returns, trend, vol, liquidity, location, day]


def features(params: FeatureParams) -> list[Feature]:
    """The px_ features, in manifest order."""
    return [f for family in _families(params) for f in family.features]


def compute(panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """px_ features aligned with ``panel.frame`` (float32), one family at a time."""
    parts = []
    for family in _families(params):  # a loop over six families of columns
        frame = panel.frame.lazy()
        if family.cumulative:
            frame = frame.with_columns(cumulative_columns(family.cumulative))
        if family.stats:
            frame = frame.with_columns(**family.stats)
        parts.append(select_features(frame, family.features))
    return pl.concat(parts, how="horizontal")
