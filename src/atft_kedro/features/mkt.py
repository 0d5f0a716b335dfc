"""``mkt_``: the market as a whole – TOPIX returns, volatility, drawdown, trend, regime –
and the cross-section of the panel that day (breadth, dispersion). Same for every stock
on a date.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import (
    DAY, Feature, broadcast_by_day, cumulative_columns, dense_by_day, flag, min_count,
    require_table, safe_div, to_float32, window_mean,
)
from atft_kedro.features.panel import CLOSE, RET1, StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "mkt"
_TOPIX_COLUMNS = ("Date", "Open", "High", "Low", "Close")


def features(params: FeatureParams) -> list[Feature]:
    """The mkt_ features, in manifest order."""
    m = params.mkt
    out: list[Feature] = []

    def add(name: str, description: str, source: str = "topix") -> None:
        out.append(Feature(f"mkt_{name}", description, pl.col(f"_m_{name}"), source, 0))

    for w in m.return_windows:
        add(f"ret_{w}d", f"TOPIX {w}-day return")
    for w in m.volatility_windows:
        add(f"vol_{w}d", f"TOPIX std of daily log returns over {w} days")
    a, b = sorted(m.volatility_windows)[0], sorted(m.volatility_windows)[-1]
    if a != b:
        add(f"vol_ratio_{a}_{b}", f"TOPIX {a}-day over {b}-day volatility")
    for w in m.ma_windows:
        add(f"ma_gap_{w}d", f"TOPIX over its {w}-day moving average, minus 1")
    short, long_ = sorted(m.ma_windows)[0], sorted(m.ma_windows)[-1]
    if short != long_:
        add(f"trend_{short}_{long_}", f"TOPIX {short}-day over {long_}-day moving average, minus 1")
    add(f"bull_{long_}", f"1 when TOPIX closes above its {long_}-day moving average")
    add(f"drawdown_{m.drawdown_window}d", f"TOPIX over its {m.drawdown_window}-day high, minus 1")
    add(f"vol_regime_z_{m.regime_window}",
        f"z-score of TOPIX {a}-day volatility against its last {m.regime_window} days")
    add("gap", "TOPIX open over previous close, minus 1")
    add("hl_range", "TOPIX high over low, minus 1")
    add("ew_ret_1d", "equal-weighted mean 1-day return of the panel's stocks", "daily_quotes")
    add("dispersion_1d", "cross-sectional std of 1-day returns", "daily_quotes")
    add("breadth_up", "share of the panel's stocks that rose that day", "daily_quotes")
    add(f"breadth_ma_{m.breadth_ma_window}",
        f"share of stocks closing above their {m.breadth_ma_window}-day moving average", "daily_quotes")
    return out


def _topix_daily(topix: pl.DataFrame, panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """TOPIX features on every trading day (row = _d). Rolling windows look back only."""
    m, frac = params.mkt, params.rolling.min_periods_fraction
    days = panel.trading_days
    rows = topix.select(_TOPIX_COLUMNS).filter(pl.col("Date").is_in(days.implode()))
    rows = rows.with_columns(days.search_sorted(rows.get_column("Date")).cast(pl.Int32).alias(DAY))
    dense = dense_by_day(rows.drop("Date"), days.len())
    close = pl.col("Close").forward_fill()
    logret = close.log().diff()
    vol = {w: logret.rolling_std(w, min_samples=max(2, min_count(w, frac))) for w in m.volatility_windows}
    ma = {w: close.rolling_mean(w, min_samples=min_count(w, frac)) for w in m.ma_windows}
    a, b = sorted(m.volatility_windows)[0], sorted(m.volatility_windows)[-1]
    short, long_ = sorted(m.ma_windows)[0], sorted(m.ma_windows)[-1]
    cols: dict[str, pl.Expr] = {}
    for w in m.return_windows:
        cols[f"ret_{w}d"] = close / close.shift(w) - 1.0
    for w in m.volatility_windows:
        cols[f"vol_{w}d"] = vol[w]
    if a != b:
        cols[f"vol_ratio_{a}_{b}"] = safe_div(vol[a], vol[b])
    for w in m.ma_windows:
        cols[f"ma_gap_{w}d"] = close / ma[w] - 1.0
    if short != long_:
        cols[f"trend_{short}_{long_}"] = ma[short] / ma[long_] - 1.0
    cols[f"bull_{long_}"] = pl.when(ma[long_].is_not_null()).then(flag(close > ma[long_]))
    cols[f"drawdown_{m.drawdown_window}d"] = close / close.rolling_max(
        m.drawdown_window, min_samples=min_count(m.drawdown_window, frac)) - 1.0
    r = m.regime_window
    cols[f"vol_regime_z_{r}"] = safe_div(
        vol[a] - vol[a].rolling_mean(r, min_samples=min_count(r, frac)),
        vol[a].rolling_std(r, min_samples=max(2, min_count(r, frac))))
    cols["gap"] = pl.col("Open") / close.shift(1) - 1.0
    cols["hl_range"] = pl.col("High") / pl.col("Low") - 1.0
    return dense.select(**{f"_m_{k}": v for k, v in cols.items()})


def _breadth_daily(panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """Cross-sectional statistics of the panel per trading day (row = _d)."""
    w, frac = params.mkt.breadth_ma_window, params.rolling.min_periods_fraction
    ret = pl.col(RET1)
    above = pl.col(CLOSE) > window_mean("close", w, frac)
    per_day = (
        panel.frame.lazy()
        .select(DAY, RET1, CLOSE, "_pos", "Code")
        .with_columns(cumulative_columns({"close": pl.col(CLOSE)}))
        .with_columns(pl.when(above.is_not_null()).then(above.cast(pl.Float64)).alias("_above"))
        .group_by(DAY)
        .agg(
            ret.mean().alias("_m_ew_ret_1d"),
            ret.std().alias("_m_dispersion_1d"),
            (ret > 0).cast(pl.Float64).mean().alias("_m_breadth_up"),
            pl.col("_above").mean().alias(f"_m_breadth_ma_{w}"),
        )
        .collect()
    )
    return dense_by_day(per_day, panel.trading_days.len()).drop(DAY)


def compute(panel: StockPanel, topix: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    """mkt_ features in (Date, Code) order, like the pipeline's output (float32).

    Raises:
        MissingSourceError: ``topix`` is missing or empty.
    """
    topix = require_table(topix, "topix", GROUP, _TOPIX_COLUMNS)
    daily = pl.concat([_topix_daily(topix, panel, params), _breadth_daily(panel, params)], how="horizontal")
    # finished per-day values: spread them to the rows already in float32 (half the memory)
    daily = daily.select(to_float32(f.expr, f.name) for f in features(params))
    return broadcast_by_day(daily, panel.output_column(DAY))
