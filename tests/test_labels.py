"""The tradable label: entry on the first trading day after the signal, exit h trading days later.

Hand-made canonical tables over a holiday (2024-01-08, Coming of Age Day), a 2:1 split
(stock A, effective 2024-01-10) and an untraded day (stock B, 2024-01-10: null prices, volume 0).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from atft_kedro.evaluation.metrics import daily_scores, ic_summary
from atft_kedro.evaluation.portfolio import long_short_weights, simulate_portfolio
from atft_kedro.features.panel import build_stock_panel
from atft_kedro.features.targets import build_targets
from atft_kedro.labels import ENTRY_LAG_DAYS, LabelParams, period_returns, with_forward_labels

OPEN, CLOSE = LabelParams(entry="next_open"), LabelParams(entry="next_close")
DAYS = [dt.date(2024, 1, d) for d in (4, 5, 9, 10, 11, 12)]  # 01-06..08: weekend + holiday
CALENDAR = pl.DataFrame({
    "Date": [dt.date(2024, 1, 4) + dt.timedelta(days=i) for i in range(9)],
    "HolidayDivision": ["1", "1", "0", "0", "0", "1", "1", "1", "1"],
})
# stock A: raw prices halve at the 2:1 split of 01-10; adjusted prices (J-Quants: adjusted back
# from the latest day) are continuous. Stock B does not trade on 01-10.
A_OPEN_RAW = [100.0, 102.0, 104.0, 53.0, 54.0, 55.0]
A_CLOSE_RAW = [101.0, 103.0, 105.0, 53.5, 54.5, 55.5]
A_FACTOR = [1.0, 1.0, 1.0, 0.5, 1.0, 1.0]
A_ADJ = [0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
B_OPEN = [200.0, 201.0, 202.0, None, 204.0, 205.0]
B_CLOSE = [200.5, 201.5, 202.5, None, 204.5, 205.5]


def _quotes() -> pl.DataFrame:
    def stock(code, opens, closes, factor, adj):
        opens_adj = [None if o is None else o * a for o, a in zip(opens, adj, strict=True)]
        closes_adj = [None if c is None else c * a for c, a in zip(closes, adj, strict=True)]
        volume = [0.0 if c is None else 1000.0 for c in closes]
        return {
            "Date": DAYS, "Code": [code] * 6, "Open": opens, "High": closes, "Low": closes, "Close": closes,
            "UpperLimit": ["0"] * 6, "LowerLimit": ["0"] * 6, "Volume": volume,
            "TurnoverValue": [v * 100.0 for v in volume], "AdjustmentFactor": factor,
            "AdjustmentOpen": opens_adj, "AdjustmentHigh": closes_adj, "AdjustmentLow": closes_adj,
            "AdjustmentClose": closes_adj, "AdjustmentVolume": volume,
        }
    frames = [pl.DataFrame(stock("11110", A_OPEN_RAW, A_CLOSE_RAW, A_FACTOR, A_ADJ)),
              pl.DataFrame(stock("22220", B_OPEN, B_CLOSE, [1.0] * 6, [1.0] * 6))]
    return pl.concat(frames, how="vertical_relaxed").with_columns(
        pl.col(c).cast(pl.Float64) for c in ("Open", "High", "Low", "Close", "AdjustmentOpen", "AdjustmentHigh",
                                              "AdjustmentLow", "AdjustmentClose"))


def _targets(labels: LabelParams) -> dict[tuple[str, dt.date], tuple[float | None, float | None]]:
    info = pl.DataFrame({"Code": ["11110", "22220"], "Date": [DAYS[0]] * 2, "Sector17Code": ["1", "2"],
                         "Sector33Code": ["0050", "1050"], "MarketCode": ["0111", "0111"]})
    panel = build_stock_panel(_quotes(), info, CALENDAR)
    targets = build_targets(panel, [1, 2], labels)
    return {(r["Code"], r["Date"]): (r["target_ret_1d"], r["target_ret_2d"]) for r in targets.iter_rows(named=True)}


def test_next_open_label_across_a_holiday_a_split_and_an_untraded_day() -> None:
    t = _targets(OPEN)
    adj_open_a = [50.0, 51.0, 52.0, 53.0, 54.0, 55.0]
    # signal on Friday 01-05: entry at the open of 01-09 (after the weekend and the holiday)
    assert t[("11110", DAYS[1])][0] == pytest.approx(adj_open_a[3] / adj_open_a[2] - 1)  # across the split
    assert t[("11110", DAYS[1])][1] == pytest.approx(adj_open_a[4] / adj_open_a[2] - 1)
    assert t[("11110", DAYS[0])][0] == pytest.approx(adj_open_a[2] / adj_open_a[1] - 1)  # across the holiday
    # B's untraded 01-10 is marked at its last traded price (the close of 01-09), not dropped
    assert t[("22220", DAYS[1])][0] == pytest.approx(202.5 / 202.0 - 1)
    assert t[("22220", DAYS[2])][0] == pytest.approx(204.0 / 202.5 - 1)
    assert t[("22220", DAYS[1])][1] == pytest.approx(204.0 / 202.0 - 1)
    # the exit of the last rows is not in the data yet
    assert t[("11110", DAYS[4])] == (None, None) and t[("11110", DAYS[3])][1] is None


def test_next_close_label_and_the_same_window_in_the_returns_portfolios_earn() -> None:
    t = _targets(CLOSE)
    adj_close_a = [50.5, 51.5, 52.5, 53.5, 54.5, 55.5]
    assert t[("11110", DAYS[1])][0] == pytest.approx(adj_close_a[3] / adj_close_a[2] - 1)
    assert t[("11110", DAYS[0])][1] == pytest.approx(adj_close_a[3] / adj_close_a[1] - 1)
    assert t[("22220", DAYS[1])][0] == pytest.approx(0.0)  # 01-10 carries 01-09's close
    assert t[("22220", DAYS[2])][0] == pytest.approx(204.5 / 202.5 - 1)
    # the returns a portfolio earns compound to the label, for both price types
    for labels in (OPEN, CLOSE):
        returns = period_returns(_quotes(), labels).sort("Code", "Date")
        labelled = _targets(labels)
        for code in ("11110", "22220"):
            r = returns.filter(pl.col("Code") == code)["ret_1d"].to_numpy()
            assert np.prod(1 + r[3:5]) - 1 == pytest.approx(labelled[(code, DAYS[1])][1])


def test_hand_computed_portfolio_under_the_next_open_entry() -> None:
    """Long A, short B on the signal of Friday 01-05, held one day: entered at the open of 01-09,
    exited at the open of 01-10, so it earns exactly A's label minus B's, less costs."""
    weights = pl.DataFrame({"Date": [DAYS[1]] * 2, "Code": ["11110", "22220"], "weight": [1.0, -1.0]})
    daily = simulate_portfolio(
        weights, period_returns(_quotes(), OPEN), pl.Series(DAYS), signal_start=DAYS[1], signal_end=DAYS[1],
        horizon=1, entry_lag_days=ENTRY_LAG_DAYS, cost_bps=10.0,
    )
    assert daily["Date"].to_list() == [DAYS[3]]
    expected_gross = (53.0 / 52.0 - 1) - (202.5 / 202.0 - 1)
    assert daily["gross_return"].to_list() == pytest.approx([expected_gross])
    assert daily["turnover"].to_list() == pytest.approx([2.0])
    assert daily["net_return"].to_list() == pytest.approx([expected_gross - 2.0 * 10.0 / 1e4])


def _random_walk(n_days: int = 320, n_stocks: int = 150, seed: int = 0) -> pl.DataFrame:
    """Independent overnight (close -> open) and intraday (open -> close) log moves per stock."""
    rng = np.random.default_rng(seed)
    overnight = rng.normal(0.0, 0.01, size=(n_days, n_stocks))
    intraday = rng.normal(0.0, 0.015, size=(n_days, n_stocks))
    log_open = np.cumsum(overnight + np.vstack([np.zeros((1, n_stocks)), intraday[:-1]]), axis=0)
    log_close = log_open + intraday
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + n_days)
    return pl.DataFrame({
        "Date": np.repeat(days, n_stocks), "Code": np.tile([f"{i:04d}0" for i in range(n_stocks)], n_days),
        "AdjustmentOpen": np.exp(log_open).ravel(), "AdjustmentClose": np.exp(log_close).ravel(),
    }).with_columns(pl.col("Date").cast(pl.Date)).sort("Code", "Date")


def _rank_ic_t(frame: pl.DataFrame, signal: str, target: str, horizon: int) -> float:
    scores = daily_scores(frame, pred_col=signal, target_col=target, min_stocks=50, by=[])
    return ic_summary(scores["rank_ic"], horizon=horizon, periods_per_year=245).t_stat_newey_west


def _long_short_t(frame: pl.DataFrame, signal: str, labels: LabelParams) -> float:
    scores = frame.select("Date", "Code", pl.col(signal).alias("score")).drop_nulls("score")
    dates = scores["Date"].unique().sort()
    daily = simulate_portfolio(
        long_short_weights(scores, n_quantiles=5, min_stocks=50), period_returns(frame, labels),
        frame["Date"].unique().sort(), signal_start=dates[0], signal_end=dates[-1], horizon=1,
        entry_lag_days=ENTRY_LAG_DAYS, cost_bps=0.0,
    )
    net = daily["net_return"].to_numpy()
    return float(net.mean() / net.std(ddof=1) * np.sqrt(net.size))


@pytest.mark.parametrize(("labels", "untradable"), [
    (CLOSE, "close_t_to_close_t1"),  # the old label's first day
    (OPEN, "close_t_to_open_t1"),    # the overnight gap before the next open
])
def test_knowing_the_untradable_move_earns_nothing_knowing_the_window_scores_one(labels, untradable) -> None:
    frame = with_forward_labels(_random_walk().lazy(), labels, [1, 5], by="Code").with_columns(
        (pl.col("AdjustmentClose").shift(-1) / pl.col("AdjustmentClose") - 1).over("Code").alias("close_t_to_close_t1"),
        (pl.col("AdjustmentOpen").shift(-1) / pl.col("AdjustmentClose") - 1).over("Code").alias("close_t_to_open_t1"),
        (pl.col("AdjustmentClose").shift(-5) / pl.col("AdjustmentClose") - 1).over("Code").alias("old_label_5d"),
    ).collect()
    # the signal is informative for what nobody can trade: the old close(t) -> close(t+h) label
    assert _rank_ic_t(frame, untradable, "old_label_5d", 5) > 10.0
    for horizon in (1, 5):
        assert abs(_rank_ic_t(frame, untradable, f"target_ret_{horizon}d", horizon)) < 2.0
    assert abs(_long_short_t(frame, untradable, labels)) < 2.0
    # a signal that knows the entry -> exit return itself ranks perfectly and earns
    scores = daily_scores(frame, pred_col="target_ret_5d", target_col="target_ret_5d", min_stocks=50, by=[])
    assert scores["rank_ic"].mean() == pytest.approx(1.0)
    assert _long_short_t(frame, "target_ret_1d", labels) > 10.0
