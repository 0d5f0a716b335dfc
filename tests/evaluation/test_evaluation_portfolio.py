"""Portfolios: hand-computed returns, costs, drawdown, Sharpe, next-day execution."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from atft_kedro.evaluation.portfolio import (
    add_active_return,
    held_weights,
    long_short_weights,
    max_drawdown,
    performance_summary,
    sharpe_ratio,
    simulate_portfolio,
    top_k_weights,
)

# 2024-01-08 (Coming of Age Day) is a holiday: "next trading day" of 01-05 is 01-09.
CALENDAR = [dt.date(2024, 1, d) for d in (4, 5, 9, 10, 11, 12)]


def _hand_example(cost_bps: float) -> pl.DataFrame:
    """Two stocks, h = 1. Cohorts: d0 long A short B, d1 the same, d2 flipped, d3 none."""
    d0, d1, d2, d3, d4, d5 = CALENDAR
    weights = pl.DataFrame(
        {"Date": [d0, d0, d1, d1, d2, d2], "Code": ["A", "B"] * 3, "weight": [1.0, -1.0, 1.0, -1.0, -1.0, 1.0]}
    )
    daily_returns = pl.DataFrame(
        {
            "Date": [d for d in CALENDAR for _ in range(2)],
            "Code": ["A", "B"] * 6,
            "ret_1d": [0.5, 0.5, -0.5, 0.5, 0.02, -0.01, -0.01, 0.01, 0.03, 0.00, 0.05, 0.05],
        }
    )
    return simulate_portfolio(
        weights,
        daily_returns,
        CALENDAR,
        signal_start=d0,
        signal_end=d3,
        horizon=1,
        entry_lag_days=1,
        cost_bps=cost_bps,
    )


def test_hand_example_returns_turnover_costs() -> None:
    daily = _hand_example(cost_bps=10.0)
    # the cohort formed at the close of d0 (01-04) is traded at the close of d1 (01-05) and
    # earns the return dated d2 (01-09, after the holiday); d0's and d1's returns are never earned.
    assert daily["Date"].to_list() == CALENDAR[2:]
    assert daily["gross_return"].to_list() == pytest.approx([0.03, -0.02, -0.03, 0.0])
    # two-way turnover: build (1 + 1), hold (0), flip (2 + 2), close (1 + 1)
    assert daily["turnover"].to_list() == pytest.approx([2.0, 0.0, 4.0, 2.0])
    assert daily["cost"].to_list() == pytest.approx([0.002, 0.0, 0.004, 0.002])
    assert daily["net_return"].to_list() == pytest.approx([0.028, -0.02, -0.034, -0.002])
    assert daily["long_exposure"].to_list() == pytest.approx([1.0, 1.0, 1.0, 0.0])
    assert daily["short_exposure"].to_list() == pytest.approx([-1.0, -1.0, -1.0, 0.0])


def test_hand_example_summary() -> None:
    summary = performance_summary(_hand_example(cost_bps=10.0), periods_per_year=245)
    # net = 0.028, -0.02, -0.034, -0.002: mean -0.007, deviations 0.035, -0.013, -0.027, 0.005,
    # squares sum 0.002148, sample variance 0.000716
    assert summary["ann_return"] == pytest.approx(-0.007 * 245)
    assert summary["sharpe"] == pytest.approx(-0.007 / math.sqrt(0.000716) * math.sqrt(245))
    # curve 1.028, 1.00744, 0.97318704, 0.971240666: peak 1.028, trough / peak = 0.98 * 0.966 * 0.998
    assert summary["max_drawdown"] == pytest.approx(1.0 - 0.94478664)
    assert summary["mean_turnover"] == pytest.approx(2.0)
    assert summary["n_days"] == 4


def test_costs_reduce_returns_by_exactly_turnover_times_bps() -> None:
    free, costly = _hand_example(cost_bps=0.0), _hand_example(cost_bps=25.0)
    assert free["gross_return"].to_list() == costly["gross_return"].to_list()
    assert free["net_return"].to_numpy() - costly["net_return"].to_numpy() == pytest.approx(
        costly["turnover"].to_numpy() * 25.0 / 1e4, abs=1e-15
    )


def test_sharpe_and_drawdown_small_cases() -> None:
    assert sharpe_ratio(np.array([0.01, 0.03]), 245) == pytest.approx(0.02 / math.sqrt(0.0002) * math.sqrt(245))
    assert math.isnan(sharpe_ratio(np.array([0.01, 0.01]), 245))
    assert max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.5)
    assert max_drawdown(np.array([-0.1, 0.05])) == pytest.approx(0.1)  # the start (1.0) is a peak
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0


def test_held_weights_overlapping_cohorts() -> None:
    cohort = np.zeros((8, 2))
    cohort[0] = [1.0, -1.0]
    cohort[1] = [0.0, 1.0]
    held = held_weights(cohort, horizon=3, entry_lag_days=1)
    # cohort 0 is held on days 2, 3, 4 and cohort 1 on days 3, 4, 5, each with 1/3 of capital
    expected = np.zeros((8, 2))
    expected[2:5] += np.array([1.0, -1.0]) / 3
    expected[3:6] += np.array([0.0, 1.0]) / 3
    np.testing.assert_allclose(held, expected)


def test_weight_builders() -> None:
    day = dt.date(2024, 1, 4)
    scores = pl.DataFrame(
        {
            "Date": [day] * 7,
            "Code": ["a", "b", "c", "d", "e", "f", "g"],
            "score": [0.5, 0.1, 0.9, None, -0.3, 0.5, 0.2],
        }
    )
    ls = long_short_weights(scores, n_quantiles=3, min_stocks=3)
    # 6 valid scores -> buckets of 2: bottom e, b; top c and one of the tied a / f... ties share a
    # bucket: ranks a = f = 4.5 -> bucket floor(4 * 3 / 6) + 1 = 3, so the top holds a, c, f
    assert dict(zip(ls["Code"], ls["weight"], strict=True)) == pytest.approx(
        {"a": 1 / 3, "b": -0.5, "c": 1 / 3, "e": -0.5, "f": 1 / 3}
    )
    top = top_k_weights(scores, top_k=2, min_stocks=3)
    assert dict(zip(top["Code"], top["weight"], strict=True)) == {"a": 0.5, "c": 0.5}  # tie a/f broken by Code
    assert long_short_weights(scores, n_quantiles=3, min_stocks=7).height == 0


def test_signal_dates_must_be_trading_days() -> None:
    weights = pl.DataFrame({"Date": [CALENDAR[0]], "Code": ["A"], "weight": [1.0]})
    returns = pl.DataFrame({"Date": CALENDAR, "Code": ["A"] * 6, "ret_1d": [0.0] * 6})
    with pytest.raises(ValueError, match="not in trading_calendar"):
        simulate_portfolio(
            weights,
            returns,
            CALENDAR,
            signal_start=dt.date(2024, 1, 8),
            signal_end=CALENDAR[3],
            horizon=1,
            entry_lag_days=1,
            cost_bps=0.0,
        )


def _long_short(market, forecast: np.ndarray, horizon: int) -> pl.DataFrame:
    scores = market.panel(forecast, "score")
    n_days = forecast.shape[0]
    return simulate_portfolio(
        long_short_weights(scores, n_quantiles=5, min_stocks=10),
        market.daily_returns,
        market.calendar,
        signal_start=market.calendar[1],
        signal_end=market.calendar[n_days - 1],
        horizon=horizon,
        entry_lag_days=1,
        cost_bps=0.0,
    )


def _shifted(returns: np.ndarray, days_ahead: int) -> np.ndarray:
    """[D, N] array whose row t holds ``returns[t + days_ahead]`` (NaN past the end)."""
    out = np.full_like(returns, np.nan)
    out[: returns.shape[0] - days_ahead] = returns[days_ahead:]
    return out


def test_perfect_forecast_earns_and_its_negation_loses(market_factory) -> None:
    market = market_factory(n_days=80, n_stocks=50, horizons=(5,), seed=3)
    h = 5
    # the return of the holding window t+2 .. t+h+1 (what a next-day entry can earn)
    window = sum(_shifted(market.returns, k) for k in range(2, h + 2))
    good = _long_short(market, window, h)["net_return"].to_numpy()
    bad = _long_short(market, -window, h)["net_return"].to_numpy()
    assert good.mean() > 0.005 and bad.mean() < -0.005
    assert good == pytest.approx(-bad)


def test_next_day_entry_no_look_ahead(market_factory) -> None:
    """Only information from after the entry close earns money on iid returns."""
    market = market_factory(n_days=160, n_stocks=60, horizons=(1,), seed=11)

    def t_stat(days_ahead: int) -> float:
        net = _long_short(market, _shifted(market.returns, days_ahead), horizon=1)["net_return"].to_numpy()
        return net.mean() / (net.std(ddof=1) / math.sqrt(net.shape[0]))

    known_at_close_t = t_stat(0)  # ret_1d dated t: legitimately known when forecasting
    return_of_t_plus_1 = t_stat(1)  # target_ret_1d: cannot be earned, entry is at the close of t+1
    cheat_t_plus_2 = t_stat(2)  # the return the position actually earns
    assert abs(known_at_close_t) < 3.0
    assert abs(return_of_t_plus_1) < 3.0
    assert cheat_t_plus_2 > 20.0


def test_missing_returns_count_as_zero_and_are_reported() -> None:
    d0, d1, d2 = CALENDAR[:3]
    weights = pl.DataFrame({"Date": [d0, d0], "Code": ["A", "B"], "weight": [1.0, -1.0]})
    returns = pl.DataFrame({"Date": [d2, d2], "Code": ["A", "B"], "ret_1d": [0.04, None]})
    daily = simulate_portfolio(
        weights, returns, CALENDAR, signal_start=d0, signal_end=d0, horizon=1, entry_lag_days=1, cost_bps=0.0
    )
    assert daily["Date"].to_list() == [d2]
    assert daily["gross_return"][0] == pytest.approx(0.04)
    assert daily["missing_weight"][0] == pytest.approx(1.0)


def test_active_return_against_topix() -> None:
    daily = pl.DataFrame(
        {
            "Date": CALENDAR[2:4],
            "net_return": [0.01, 0.02],
            "long_exposure": [0.5, 1.0],
            "short_exposure": [0.0, 0.0],
        }
    )
    topix = pl.DataFrame({"Date": CALENDAR[1:4], "Close": [100.0, 102.0, 102.0 * 0.99]})
    active = add_active_return(daily, topix)
    assert active["benchmark_return"].to_list() == pytest.approx([0.02, -0.01])
    assert active["active_return"].to_list() == pytest.approx([0.01 - 0.5 * 0.02, 0.02 + 0.01])
