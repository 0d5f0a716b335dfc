"""Stylised facts of the simulated returns and the mechanics of prices, limits, splits and the index."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import kurtosis

from atft_kedro.market.prices import limit_prices, round_to_tick, tick_size
from atft_kedro.market.simulator import SimulatedMarket
from atft_kedro.schemas import tables


def _returns_matrix(bars: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Daily log returns of AdjC [days, codes] (NaN where a stock is not listed on both days)."""
    wide = (
        bars.select("Date", "Code", "AdjC")
        .with_columns(pl.col("AdjC").log().diff().over("Code", order_by="Date").alias("r"))
        .pivot(on="Code", index="Date", values="r")
        .sort("Date")
    )
    codes = [c for c in wide.columns if c != "Date"]
    return wide.select(codes).to_numpy().astype(np.float64), codes


def test_daily_returns_have_fat_tails_and_volatility_clustering(test_tables: dict[str, pl.DataFrame]) -> None:
    returns, _ = _returns_matrix(test_tables[tables.DAILY_BARS.raw_name])
    kurt, autocorr = [], []
    for column in returns.T:
        r = column[~np.isnan(column)]
        if r.shape[0] < 200:
            continue
        kurt.append(kurtosis(r, fisher=False))
        a = np.abs(r - r.mean())
        autocorr.append(np.corrcoef(a[1:], a[:-1])[0, 1])
    assert len(kurt) > 20
    assert np.median(kurt) > 3.5, np.median(kurt)
    pooled = returns[~np.isnan(returns)]
    assert kurtosis(pooled, fisher=False) > 3.5
    assert np.mean(autocorr) > 0.03, np.mean(autocorr)


def test_stocks_of_a_sector_move_together(test_tables: dict[str, pl.DataFrame]) -> None:
    bars = test_tables[tables.DAILY_BARS.raw_name]
    returns, codes = _returns_matrix(bars)
    master = test_tables[tables.EQUITIES_MASTER.raw_name].unique("Code", keep="first")
    sector_of = dict(zip(master["Code"], master["S33"], strict=True))
    corr = pl.DataFrame(returns).to_pandas().corr(min_periods=100).to_numpy()
    sector = np.array([sector_of[c] for c in codes])
    upper = np.triu_indices(len(codes), 1)
    same = (sector[:, None] == sector[None, :])[upper]
    values = corr[upper]
    ok = ~np.isnan(values)
    within, across = values[ok & same].mean(), values[ok & ~same].mean()
    assert (ok & same).sum() > 20
    assert within > across + 0.05, (within, across)


def test_tick_and_limit_tables() -> None:
    assert tick_size(np.array([2999.0, 3000.0, 3001.0, 40_000.0])).tolist() == [1.0, 1.0, 5.0, 50.0]
    assert round_to_tick(np.array([3002.4, 0.2])).tolist() == [3000.0, 1.0]
    lower, upper = limit_prices(np.array([99.0, 100.0, 1_000.0, 2_999.0]))
    assert upper.tolist() == [129.0, 150.0, 1_300.0, 3_499.0]
    assert lower.tolist() == [69.0, 50.0, 700.0, 2_499.0]


def test_limit_flags_mark_prices_at_the_daily_limit(eventful_tables: dict[str, pl.DataFrame]) -> None:
    bars = eventful_tables[tables.DAILY_BARS.raw_name].with_columns(
        (pl.col("C").shift(1).over("Code", order_by="Date") * pl.col("AdjFactor")).alias("base")
    ).drop_nulls("base")
    lower, upper = limit_prices(bars["base"].to_numpy())
    high, low, close = bars["H"].to_numpy(), bars["L"].to_numpy(), bars["C"].to_numpy()
    up, down = bars["UL"].to_numpy() == "1", bars["LL"].to_numpy() == "1"
    assert up.sum() > 0 and down.sum() > 0
    np.testing.assert_array_equal(up, high >= upper)
    np.testing.assert_array_equal(down, low <= lower)
    assert (high <= upper).all() and (low >= lower).all() and (close <= upper).all() and (close >= lower).all()
    ohlc = eventful_tables[tables.DAILY_BARS.raw_name]
    inconsistent = (pl.col("H") < pl.max_horizontal("O", "C")) | (pl.col("L") > pl.min_horizontal("O", "C"))
    assert ohlc.filter(inconsistent).height == 0


def test_splits_and_adjusted_prices_are_consistent(eventful_tables: dict[str, pl.DataFrame]) -> None:
    bars = eventful_tables[tables.DAILY_BARS.raw_name]
    split_rows = bars.filter(pl.col("AdjFactor") != 1.0)
    assert split_rows.height >= 3
    checked = bars.with_columns(
        (pl.col("AdjC") / pl.col("AdjC").shift(1).over("Code", order_by="Date")).alias("adj_ratio"),
        (pl.col("C") / (pl.col("C").shift(1).over("Code", order_by="Date") * pl.col("AdjFactor"))).alias("raw_ratio"),
    ).drop_nulls("adj_ratio")
    np.testing.assert_allclose(checked["adj_ratio"], checked["raw_ratio"], rtol=1e-10)
    latest = bars.sort("Date").group_by("Code").last()
    np.testing.assert_allclose(latest["AdjC"], latest["C"])  # adjusted back from each stock's latest day
    np.testing.assert_allclose(bars["AdjVo"] * bars["AdjC"], bars["Vo"] * bars["C"], rtol=1e-10)
    # on a split day the raw close jumps by the split ratio, the adjusted close does not
    around = checked.filter(pl.col("AdjFactor") != 1.0)
    raw_jump = (around["raw_ratio"] * around["AdjFactor"]).log().abs()
    assert raw_jump.median() > 0.6 and around["adj_ratio"].log().abs().median() < 0.15


def test_topix_is_the_cap_weighted_index_of_the_stocks(eventful_market: SimulatedMarket,
                                                       eventful_tables: dict[str, pl.DataFrame]) -> None:
    bars = eventful_tables[tables.DAILY_BARS.raw_name]
    topix = eventful_tables[tables.TOPIX.raw_name]
    codes = eventful_market.universe.codes
    shares = eventful_market.bars.shares  # [days, stocks], in the order of the codes
    days = eventful_market.timeline.sample_days
    frame = pl.DataFrame(
        {
            "Date": np.repeat(days, len(codes)),
            "Code": np.tile(codes, len(days)),
            "shares": shares.reshape(-1),
        }
    ).with_columns(pl.col("Date").cast(pl.Date))
    caps = (
        bars.join(frame, on=["Date", "Code"])
        .with_columns((pl.col("C") * pl.col("shares")).alias("cap"))
        .with_columns(pl.col("cap").shift(1).over("Code", order_by="Date").alias("prev_cap"))
        .drop_nulls("prev_cap")
        .group_by("Date")
        .agg((pl.col("cap").sum() / pl.col("prev_cap").sum()).alias("growth"))
        .sort("Date")
    )
    level = topix.sort("Date").with_columns((pl.col("C") / pl.col("C").shift(1)).alias("index_growth"))
    joined = caps.join(level, on="Date").drop_nulls("index_growth")
    assert joined.height == topix.height - 1
    np.testing.assert_allclose(joined["index_growth"], joined["growth"], rtol=5e-5)
    assert topix.filter((pl.col("H") < pl.max_horizontal("O", "C")) | (pl.col("L") > pl.min_horizontal("O", "C"))
                        ).height == 0
