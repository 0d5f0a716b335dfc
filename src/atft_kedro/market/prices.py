"""Prices: TSE tick sizes and daily price limits, splits, OHLC, volume, adjusted columns,
the daily bars table (``raw_daily_bars``) and the cap-weighted index (``raw_topix``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.signal import lfilter

from atft_kedro.market.calendar import Timeline
from atft_kedro.market.frames import flag_column, float_column, gather_dates, gather_strings
from atft_kedro.market.params import PriceParams
from atft_kedro.market.returns import TRADING_DAYS_PER_YEAR
from atft_kedro.market.universe import Universe

#: TSE daily price limits: base price below LIMIT_THRESHOLDS[k] -> limit width LIMIT_WIDTHS[k] yen.
LIMIT_THRESHOLDS = np.array(
    [100, 200, 500, 700, 1_000, 1_500, 2_000, 3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000,
     50_000, 70_000, 100_000, 150_000, 200_000, 300_000, 500_000, 700_000, 1_000_000, 1_500_000,
     2_000_000, 3_000_000, 5_000_000, 7_000_000, 10_000_000, 15_000_000, 20_000_000, 30_000_000,
     50_000_000], dtype=np.float64,
)
LIMIT_WIDTHS = np.array(
    [30, 50, 80, 100, 150, 300, 400, 500, 700, 1_000, 1_500, 3_000, 4_000, 5_000, 7_000, 10_000,
     15_000, 30_000, 40_000, 50_000, 70_000, 100_000, 150_000, 300_000, 400_000, 500_000, 700_000,
     1_000_000, 1_500_000, 3_000_000, 4_000_000, 5_000_000, 7_000_000, 10_000_000], dtype=np.float64,
)
#: TSE tick sizes (general issues): price up to TICK_THRESHOLDS[k] -> tick TICK_SIZES[k] yen.
TICK_THRESHOLDS = np.array(
    [3_000, 5_000, 30_000, 50_000, 300_000, 500_000, 3_000_000, 5_000_000, 30_000_000, 50_000_000],
    dtype=np.float64,
)
TICK_SIZES = np.array([1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000], dtype=np.float64)
MIN_PRICE = 1.0
SHARE_UNIT = 100.0


def tick_size(price: np.ndarray) -> np.ndarray:
    """Tick size in yen for each price (any shape)."""
    return TICK_SIZES[np.searchsorted(TICK_THRESHOLDS, price, side="left")]


def round_to_tick(price: np.ndarray) -> np.ndarray:
    """Round prices to their tick, never below 1 yen."""
    tick = tick_size(price)
    return np.maximum(MIN_PRICE, np.round(price / tick) * tick)


def limit_prices(base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper daily limit prices from the (split-adjusted) previous close."""
    base_tick = round_to_tick(base)
    width = LIMIT_WIDTHS[np.searchsorted(LIMIT_THRESHOLDS, base_tick, side="right")]
    return np.maximum(MIN_PRICE, base_tick - width), base_tick + width


@dataclass(frozen=True)
class Splits:
    """Stock splits, sparse: sample day, stock, ratio (new shares per old share) [S], day-sorted."""

    day: np.ndarray
    stock: np.ndarray
    ratio: np.ndarray

    def dense(self, n_days: int, n_stocks: int) -> np.ndarray:
        """Ratio of each day and stock [n_days, N]: 1.0 where nothing happens."""
        out = np.ones((n_days, n_stocks))
        out[self.day, self.stock] = self.ratio
        return out


def draw_splits(params: PriceParams, universe: Universe, rng: np.random.Generator) -> Splits:
    """Splits happen on listed days after the first, at ``split_probability_per_year``."""
    listed_days = (universe.last_day - universe.list_day).astype(np.float64)
    counts = rng.poisson(params.split_probability_per_year * listed_days / TRADING_DAYS_PER_YEAR)
    stock = np.repeat(np.arange(universe.n), counts)
    day = universe.list_day[stock] + 1 + np.floor(rng.random(stock.shape[0]) * listed_days[stock]).astype(np.int64)
    keep = day <= universe.last_day[stock]
    key = np.unique(day[keep] * universe.n + stock[keep])
    day, stock = key // universe.n, key % universe.n
    weights = np.asarray(params.split_ratio_weights)
    ratio = np.asarray(params.split_ratios)[rng.choice(len(weights), size=key.shape[0], p=weights / weights.sum())]
    return Splits(day=day, stock=stock, ratio=ratio)


@dataclass(frozen=True)
class Bars:
    """Daily bars of every stock on every sample day (latent outside the listing) [T, N]."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    upper_hit: np.ndarray
    lower_hit: np.ndarray
    volume: np.ndarray
    turnover: np.ndarray
    adj_factor: np.ndarray
    future_factor: np.ndarray
    shares: np.ndarray

    @property
    def market_cap(self) -> np.ndarray:
        return self.close * self.shares


def previous_base(close: np.ndarray, initial_price: np.ndarray, adj_factor: np.ndarray) -> np.ndarray:
    """The split-adjusted previous close C(t-1) x AdjFactor(t) of each day [T, N] (the base of the
    daily limits and of the day's return); day 0 uses the latent initial price."""
    prev = np.vstack([initial_price[None, :], close[:-1]])
    return prev * adj_factor


def _open_high_low(close: np.ndarray, base: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                    scale: np.ndarray, params: PriceParams,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open (part of the day's move plus noise), high and low (excursions beyond open and close),
    on ticks and inside the daily limits. Shapes [T, N]; scale [1, N]."""
    ret = np.log(close / base)
    noise = rng.standard_normal(close.shape)
    open_ = np.clip(round_to_tick(base * np.exp(params.overnight_share * ret + params.open_noise * scale * noise)),
                    lower, upper)
    del ret
    top = np.maximum(open_, close)
    rng.standard_normal(out=noise)
    high = np.minimum(np.maximum(round_to_tick(top * np.exp(params.intraday_range * scale * np.abs(noise))), top),
                      upper)
    del top
    bottom = np.minimum(open_, close)
    rng.standard_normal(out=noise)
    low = np.maximum(np.minimum(round_to_tick(bottom * np.exp(-params.intraday_range * scale * np.abs(noise))),
                                bottom), lower)
    return open_, high, low


def _volume(close: np.ndarray, base: np.ndarray, prev_cap: np.ndarray, vwap: np.ndarray, scale: np.ndarray,
            params: PriceParams, rng: np.random.Generator) -> np.ndarray:
    """Shares traded [T, N]: a stock's base turnover of its market cap, times AR(1) log shocks,
    higher on days of large moves; whole trading units."""
    n_days, n = close.shape
    base_turnover = params.turnover_median * np.exp(params.turnover_log_sd * rng.standard_normal(n))
    log_volume = lfilter([params.volume_noise], [1.0, -params.volume_persistence],
                         rng.standard_normal((n_days, n)), axis=0)
    ret = np.log(close / base)
    log_volume += params.volume_move_sensitivity * np.abs(ret - np.median(ret, axis=1, keepdims=True)) / scale
    del ret
    value = prev_cap * base_turnover[None, :] * np.exp(log_volume)
    return np.maximum(SHARE_UNIT, np.round(value / vwap / SHARE_UNIT) * SHARE_UNIT)


def build_bars(
    close: np.ndarray,
    split_ratio: np.ndarray,
    universe: Universe,
    stock_vol: np.ndarray,
    params: PriceParams,
    rng: np.random.Generator,
) -> Bars:
    """Open, high, low, limit flags, volume, turnover and adjustment factors around the closes.

    Args:
        close: [T, N] raw closes from the return loop.
        split_ratio: [T, N] dense split ratios (1.0 on ordinary days).
        universe: the stocks.
        stock_vol: [N] typical daily volatility of each stock (scale of the intraday noise).
        params: price parameters.
        rng: the prices' random generator.
    """
    n = close.shape[1]
    adj_factor = 1.0 / split_ratio
    base = previous_base(close, universe.initial_price, adj_factor)
    lower, upper = limit_prices(base)
    scale = stock_vol[None, :]
    open_, high, low = _open_high_low(close, base, lower, upper, scale, params, rng)
    upper_hit, lower_hit = high >= upper, low <= lower
    del lower, upper

    # product of the factors of the days after t: AdjX = X * future_factor
    future_factor = np.vstack([np.cumprod(adj_factor[::-1], axis=0)[::-1][1:], np.ones((1, n))])
    shares = universe.initial_shares[None, :] * np.cumprod(split_ratio, axis=0)
    vwap = np.clip((open_ + high + low + close) / 4.0, low, high)
    volume = _volume(close, base, base * shares, vwap, scale, params, rng)
    return Bars(
        open=open_, high=high, low=low, close=close, upper_hit=upper_hit, lower_hit=lower_hit,
        volume=volume, turnover=volume * vwap, adj_factor=adj_factor, future_factor=future_factor, shares=shares,
    )


def daily_bars_table(bars: Bars, listed: np.ndarray, universe: Universe, timeline: Timeline) -> pl.DataFrame:
    """``raw_daily_bars``: one row per listed day x stock, raw and split-adjusted (J-Quants style:
    adjusted back from each stock's latest day, AdjC(t) = C(t) x product of later AdjFactors)."""
    day, stock = np.nonzero(listed)
    f = bars.future_factor[day, stock]
    columns = [
        gather_dates(timeline.sample_days, day, "Date"),
        gather_strings(universe.codes, stock, "Code"),
        float_column(bars.open[day, stock], "O"),
        float_column(bars.high[day, stock], "H"),
        float_column(bars.low[day, stock], "L"),
        float_column(bars.close[day, stock], "C"),
        flag_column(bars.upper_hit[day, stock], "UL"),
        flag_column(bars.lower_hit[day, stock], "LL"),
        float_column(bars.volume[day, stock], "Vo"),
        float_column(bars.turnover[day, stock], "Va"),
        float_column(bars.adj_factor[day, stock], "AdjFactor"),
        float_column(bars.open[day, stock] * f, "AdjO"),
        float_column(bars.high[day, stock] * f, "AdjH"),
        float_column(bars.low[day, stock] * f, "AdjL"),
        float_column(bars.close[day, stock] * f, "AdjC"),
        float_column(bars.volume[day, stock] / f, "AdjVo"),
    ]
    return pl.DataFrame(columns)


def topix_levels(bars: Bars, listed: np.ndarray, universe: Universe, base_level: float) -> np.ndarray:
    """Cap-weighted index [T, 4] (open, high, low, close) of the listed stocks.

    Close: I(t) = I(t-1) x sum_i C(t,i) S(t,i) / sum_i C(t-1,i) S(t-1,i) over stocks listed on
    both days (S = shares outstanding; a split leaves C x S continuous). Day 0 uses the latent
    previous close and I(-1) = ``base_level``. Open, high, low use the same weights with the
    stocks' open, high, low; the high (low) is halfway between the larger (smaller) of open and
    close and the weighted average of the stocks' highs (lows), an upper (lower) bound.
    """
    prev_close = np.vstack([universe.initial_price[None, :], bars.close[:-1]])
    prev_shares = np.vstack([universe.initial_shares[None, :], bars.shares[:-1]])
    both = listed & np.vstack([listed[:1], listed[:-1]])
    weight = np.where(both, prev_close * prev_shares, 0.0)
    total = weight.sum(axis=1)
    ratio_of = {
        name: (weight * (price * bars.shares / (prev_close * prev_shares))).sum(axis=1) / total
        for name, price in (("open", bars.open), ("high", bars.high), ("low", bars.low), ("close", bars.close))
    }
    close = base_level * np.cumprod(ratio_of["close"])
    prev_level = np.concatenate([[base_level], close[:-1]])
    open_ = prev_level * ratio_of["open"]
    high = 0.5 * (np.maximum(open_, close) + np.maximum(prev_level * ratio_of["high"], np.maximum(open_, close)))
    low = 0.5 * (np.minimum(open_, close) + np.minimum(prev_level * ratio_of["low"], np.minimum(open_, close)))
    return np.column_stack([open_, high, low, close])


def topix_table(levels: np.ndarray, timeline: Timeline) -> pl.DataFrame:
    """``raw_topix``: Date, O, H, L, C rounded to 0.01 points."""
    rounded = np.round(levels, 2)
    return pl.DataFrame(
        [
            gather_dates(timeline.sample_days, np.arange(timeline.n_days), "Date"),
            *(float_column(rounded[:, k], name) for k, name in enumerate(("O", "H", "L", "C"))),
        ]
    )
