"""``tech_``: technical oscillators on adjusted prices (RSI, MACD, Bollinger, ATR, ADX, ...).

Smoothing follows the textbook definitions: Wilder's smoothing (EWM, alpha = 1/n) for RSI,
ATR and ADX; EMAs with span n for MACD. Price-level quantities are divided by the close
so every feature is scale-free.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import (
    CODE, Feature, cumulative_columns, ema, lag, rolling_max, rolling_min, rolling_std, safe_div,
    select_features, wilder, window_mean, window_sum,
)
from atft_kedro.features.panel import CLOSE, VOLUME, StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "tech"
SOURCE = "daily_quotes"

_HIGH, _LOW, _ADJ_CLOSE = pl.col("AdjustmentHigh"), pl.col("AdjustmentLow"), pl.col("AdjustmentClose")
#: the last traded high / low (carried over days without a trade, like the close)
_LAST_HIGH, _LAST_LOW = _HIGH.forward_fill().over(CODE), _LOW.forward_fill().over(CODE)


def features(params: FeatureParams) -> list[Feature]:
    """The tech_ features, in manifest order."""
    t = params.tech
    close = pl.col(CLOSE)
    out: list[Feature] = []

    def add(name: str, description: str, expr: pl.Expr) -> None:
        out.append(Feature(f"tech_{name}", description, expr, SOURCE, 0))

    for n in t.rsi_windows:
        add(f"rsi_{n}", f"RSI({n}) with Wilder smoothing, 0..100",
            100.0 * safe_div(pl.col(f"_gain_{n}"), pl.col(f"_gain_{n}") + pl.col(f"_loss_{n}")))
    f, s, g = t.macd_fast, t.macd_slow, t.macd_signal
    add(f"macd_{f}_{s}", f"MACD line EMA({f}) - EMA({s}) over the close", pl.col("_macd"))
    add(f"macd_signal_{g}", f"EMA({g}) of the MACD line", pl.col("_macd_signal"))
    add("macd_hist", "MACD line minus its signal line", pl.col("_macd") - pl.col("_macd_signal"))
    add(f"ema_gap_{f}", f"close over its EMA({f}), minus 1", close / pl.col("_ema_fast") - 1.0)
    add(f"ema_gap_{s}", f"close over its EMA({s}), minus 1", close / pl.col("_ema_slow") - 1.0)
    n, k = t.bollinger_window, t.bollinger_num_std
    mid, sd = pl.col("_bb_mid"), pl.col("_bb_sd")
    add(f"bb_pctb_{n}", f"Bollinger %b ({n} days, {k:g} sample std)", safe_div(close - (mid - k * sd), 2 * k * sd))
    add(f"bb_width_{n}", f"Bollinger band width over the middle band ({n} days, {k:g} std)", 2 * k * sd / mid)
    add(f"atr_{t.atr_window}", f"ATR({t.atr_window}) (Wilder) over the close", pl.col("_atr") / close)
    n = t.adx_window
    add(f"adx_{n}", f"ADX({n}), 0..100", pl.col("_adx"))
    add(f"plus_di_{n}", f"+DI({n}), 0..100", pl.col("_plus_di"))
    add(f"minus_di_{n}", f"-DI({n}), 0..100", pl.col("_minus_di"))
    k_n, d_n = t.stochastic_k_window, t.stochastic_d_window
    add(f"stoch_k_{k_n}", f"stochastic %K({k_n}), 0..100", pl.col("_stoch_k"))
    add(f"stoch_d_{k_n}_{d_n}", f"{d_n}-day mean of %K({k_n})",
        sum(lag(pl.col("_stoch_k"), i) for i in range(d_n)) / d_n)
    n = t.williams_r_window
    hh, ll = pl.col("_wr_hh"), pl.col("_wr_ll")
    add(f"williams_r_{n}", f"Williams %R({n}), -100..0", -100.0 * safe_div(hh - close, hh - ll))
    n = t.cci_window
    add(f"cci_{n}", f"CCI({n}) of the typical price, with the std in place of the mean deviation",
        safe_div(pl.col("_tp") - pl.col("_cci_mean"), 0.015 * pl.col("_cci_sd")))
    n = t.mfi_window
    pos, neg = pl.col("_mf_pos"), pl.col("_mf_neg")
    add(f"mfi_{n}", f"money flow index({n}), 0..100", 100.0 * safe_div(pos, pos + neg))
    return out


def _prepare(panel: StockPanel, params: FeatureParams) -> pl.LazyFrame:
    t, frac = params.tech, params.rolling.min_periods_fraction
    close = pl.col(CLOSE)
    prev_close = lag(close, 1)
    delta = close - prev_close
    # against the last traded bar: the day after a gap measures the move over the gap
    up, down = _HIGH - lag(_LAST_HIGH, 1), lag(_LAST_LOW, 1) - _LOW
    tp = (_HIGH + _LOW + _ADJ_CLOSE) / 3.0
    last_tp = (_LAST_HIGH + _LAST_LOW + close) / 3.0
    # true range and directional movement only on days with a bar (same days for all three)
    bars = up.is_not_null() & down.is_not_null() & prev_close.is_not_null()
    stage1 = panel.frame.lazy().with_columns(
        delta.clip(lower_bound=0.0).alias("_up_move"),
        (-delta).clip(lower_bound=0.0).alias("_down_move"),
        pl.when(bars).then(pl.max_horizontal(
            _HIGH - _LOW, (_HIGH - prev_close).abs(), (_LOW - prev_close).abs())).alias("_tr"),
        pl.when(bars).then(pl.when((up > down) & (up > 0)).then(up).otherwise(0.0)).alias("_plus_dm"),
        pl.when(bars).then(pl.when((down > up) & (down > 0)).then(down).otherwise(0.0)).alias("_minus_dm"),
        tp.alias("_tp"),
    )
    k_n = t.stochastic_k_window
    hh, ll = rolling_max(_HIGH, k_n, frac), rolling_min(_LOW, k_n, frac)
    tp_col = pl.col("_tp")
    stage2 = stage1.with_columns(
        *[wilder(pl.col("_up_move"), n).alias(f"_gain_{n}") for n in t.rsi_windows],
        *[wilder(pl.col("_down_move"), n).alias(f"_loss_{n}") for n in t.rsi_windows],
        ema(close, t.macd_fast).alias("_ema_fast"),
        ema(close, t.macd_slow).alias("_ema_slow"),
        wilder(pl.col("_tr"), t.atr_window).alias("_atr"),
        wilder(pl.col("_tr"), t.adx_window).alias("_str"),
        wilder(pl.col("_plus_dm"), t.adx_window).alias("_sdm_plus"),
        wilder(pl.col("_minus_dm"), t.adx_window).alias("_sdm_minus"),
        (100.0 * safe_div(close - ll, hh - ll)).alias("_stoch_k"),
        *cumulative_columns({
            "close": close,
            "tp": tp_col,
            "mf_pos": pl.when(tp_col > lag(last_tp, 1)).then(tp_col * pl.col(VOLUME)).otherwise(0.0),
            "mf_neg": pl.when(tp_col < lag(last_tp, 1)).then(tp_col * pl.col(VOLUME)).otherwise(0.0),
        }),
    )
    plus_di = 100.0 * safe_div(pl.col("_sdm_plus"), pl.col("_str"))
    minus_di = 100.0 * safe_div(pl.col("_sdm_minus"), pl.col("_str"))
    stage3 = stage2.with_columns(
        plus_di.alias("_plus_di"),
        minus_di.alias("_minus_di"),
        ((pl.col("_ema_fast") - pl.col("_ema_slow")) / close).alias("_macd"),
    ).with_columns(
        (100.0 * safe_div((pl.col("_plus_di") - pl.col("_minus_di")).abs(),
                          pl.col("_plus_di") + pl.col("_minus_di"))).alias("_dx"),
        ema(pl.col("_macd"), t.macd_signal).alias("_macd_signal"),
    )
    return stage3.with_columns(
        wilder(pl.col("_dx"), t.adx_window).alias("_adx"),
        window_mean("close", t.bollinger_window, frac).alias("_bb_mid"),
        rolling_std(close, t.bollinger_window, frac).alias("_bb_sd"),
        rolling_max(_HIGH, t.williams_r_window, frac).alias("_wr_hh"),
        rolling_min(_LOW, t.williams_r_window, frac).alias("_wr_ll"),
        window_mean("tp", t.cci_window, frac).alias("_cci_mean"),
        rolling_std(tp_col, t.cci_window, frac).alias("_cci_sd"),
        window_sum("mf_pos", t.mfi_window).alias("_mf_pos"),
        window_sum("mf_neg", t.mfi_window).alias("_mf_neg"),
    )


def compute(panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """tech_ features aligned with ``panel.frame`` (float32)."""
    return select_features(_prepare(panel, params), features(params))
