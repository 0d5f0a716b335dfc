"""A listed stock that does not trade for several days: J-Quants sends its row with null
O/H/L/C and volume 0. The day stays in the panel, prices are carried from the last trade,
returns over the gap are measured from the last traded close, volumes are 0."""

from __future__ import annotations

import polars as pl
import pytest
from fe_helpers import Built, build_all

from atft_kedro.features.params import FeatureParams

GAP = (150, 151, 152)  # trading-day indices without a trade
_PRICES = ("Open", "High", "Low", "Close", "AdjustmentOpen", "AdjustmentHigh", "AdjustmentLow", "AdjustmentClose")
_VOLUMES = ("Volume", "TurnoverValue", "AdjustmentVolume")


@pytest.fixture(scope="module")
def gap(tables: dict[str, pl.DataFrame], feature_params: FeatureParams, horizons) -> dict:
    quotes = tables["daily_quotes"]
    days = quotes.get_column("Date").unique().sort()
    # a stock that traded on every day around the gap and had no split then
    around = quotes.filter(pl.col("Date").is_between(days[GAP[0] - 25], days[GAP[-1] + 10]))
    full = around.group_by("Code").agg(
        pl.col("Close").is_not_null().all().alias("traded"), (pl.col("AdjustmentFactor") == 1.0).all().alias("nosplit"),
        pl.len().alias("n"))
    code = full.filter(pl.col("traded") & pl.col("nosplit") & (pl.col("n") == full.get_column("n").max())
                       ).get_column("Code").sort()[0]
    off = (pl.col("Code") == code) & pl.col("Date").is_in(days.gather(list(GAP)).implode())
    untraded = quotes.with_columns(
        *[pl.when(off).then(None).otherwise(pl.col(c)).alias(c) for c in _PRICES],
        *[pl.when(off).then(0.0).otherwise(pl.col(c)).alias(c) for c in _VOLUMES])
    built = build_all({**tables, "daily_quotes": untraded}, feature_params, horizons)
    mine = built.features.filter(pl.col("Code") == code).sort("Date")
    close = quotes.filter(pl.col("Code") == code).sort("Date").select("Date", "AdjustmentClose")
    bars = {row["Date"]: row for row in quotes.filter(pl.col("Code") == code).iter_rows(named=True)}
    return {"code": code, "days": days, "features": mine, "close": dict(close.iter_rows()), "built": built,
            "quotes": bars}


def _at(gap: dict, index: int) -> dict:
    day = gap["days"][index]
    return gap["features"].filter(pl.col("Date") == day).row(0, named=True)


def test_untraded_days_stay_in_the_panel_flagged_untraded(gap: dict) -> None:
    for i in (GAP[0] - 1, *GAP, GAP[-1] + 1):
        row = _at(gap, i)
        assert row["px_traded"] == (0.0 if i in GAP else 1.0)


def test_returns_across_the_gap_are_measured_from_the_last_traded_close(gap: dict) -> None:
    days, close = gap["days"], gap["close"]
    last, after = GAP[0] - 1, GAP[-1] + 1
    for i in GAP:  # carried: no move on a day without a trade
        assert _at(gap, i)["px_ret_1d"] == 0.0
    assert _at(gap, after)["px_ret_1d"] == pytest.approx(close[days[after]] / close[days[last]] - 1.0, rel=1e-5)
    assert _at(gap, after)["px_ret_5d"] == pytest.approx(close[days[after]] / close[days[after - 5]] - 1.0, rel=1e-5)
    assert _at(gap, after + 1)["px_ret_2d"] == pytest.approx(
        close[days[after + 1]] / close[days[last]] - 1.0, rel=1e-5)
    # features of the day after the gap see that move: nothing is null for want of yesterday's bar
    row = _at(gap, after)
    for name in ("px_gap_overnight", "px_vol_20d", "tech_rsi_14", "tech_atr_14", "tech_adx_14", "tech_plus_di_14",
                 "tech_mfi_14", "beta_60d", "alpha_1d", "sec_rel_ret_1d", "px_ret_1d_csz"):
        assert row[name] is not None, name


def test_volume_features_see_zero_volume_on_untraded_days(gap: dict) -> None:
    for i in GAP:
        row = _at(gap, i)
        assert row["px_volume_ratio_5d"] == 0.0
        assert row["px_volume_ratio_20d"] == 0.0
    inside, before = _at(gap, GAP[-1]), _at(gap, GAP[0] - 1)
    # the 5-day mean turnover over a window with 3 silent days is lower than before the gap
    assert inside["px_turnover_5d"] < before["px_turnover_5d"]


def test_true_range_after_the_gap_uses_the_last_traded_bar(gap: dict) -> None:
    """ATR (in yen: tech_atr_14 x close) moves on the day after the gap, by Wilder's step with
    the true range against the last traded bar, and is carried (not blanked) inside the gap."""
    days, close = gap["days"], gap["close"]
    last, after = GAP[0] - 1, GAP[-1] + 1
    atr = {i: _at(gap, i)["tech_atr_14"] * (close[days[i]] if i not in GAP else close[days[last]])
           for i in (last, *GAP, after)}
    for i in GAP:
        assert atr[i] == pytest.approx(atr[last], rel=1e-5)
    q = gap["quotes"]
    high, low = q[days[after]]["AdjustmentHigh"], q[days[after]]["AdjustmentLow"]
    true_range = max(high - low, abs(high - close[days[last]]), abs(low - close[days[last]]))
    assert atr[after] == pytest.approx(atr[last] + (true_range - atr[last]) / 14, rel=1e-4)
