"""Daily IC / RankIC against scipy, summaries and decile returns against hand computations."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from atft_kedro.evaluation.metrics import (
    align_forecasts,
    daily_ic,
    daily_rank_ic,
    daily_scores,
    decile_returns,
    ic_summary,
    quantile_bucket,
    sign_hit_rate,
)


def _random_panel(seed: int) -> pl.DataFrame:
    """Two models x 12 days x 40 stocks, rounded forecasts (ties), 15% missing values."""
    rng = np.random.default_rng(seed)
    n_days, n_stocks = 12, 40
    dates = [dt.date(2024, 3, 1) + dt.timedelta(days=d) for d in range(n_days)]
    frames = []
    for model in ("a", "b"):
        pred = np.round(rng.normal(size=(n_days, n_stocks)), 1)  # many ties
        target = 0.3 * pred + rng.normal(size=(n_days, n_stocks))
        target[:, :5] = np.round(target[:, :5])  # ties in the outcome too
        pred[rng.random(pred.shape) < 0.15] = np.nan
        target[rng.random(target.shape) < 0.15] = np.nan
        pred[3, :] = 0.7  # a collapsed day: no spread -> undefined correlation
        pred[7, 8:] = np.nan  # a day with too few valid pairs -> dropped
        frames.append(
            pl.DataFrame(
                {
                    "model": model,
                    "Date": pl.Series(np.repeat(np.array(dates, dtype="datetime64[D]"), n_stocks)).cast(pl.Date),
                    "Code": np.tile([f"{i:04d}" for i in range(n_stocks)], n_days),
                    "pred": pred.reshape(-1),
                    "target": target.reshape(-1),
                }
            ).with_columns(pl.col("pred", "target").fill_nan(None))
        )
    return pl.concat(frames)


def _scipy_daily(panel: pl.DataFrame, min_stocks: int) -> dict[tuple[str, dt.date], tuple[float, float, int]]:
    expected = {}
    for (model, date), day in panel.group_by("model", "Date"):
        day = day.drop_nulls(["pred", "target"])
        if day.height < min_stocks:
            continue
        x, y = day["pred"].to_numpy(), day["target"].to_numpy()
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            expected[(model, date)] = (math.nan, math.nan, day.height)
        else:
            expected[(model, date)] = (stats.pearsonr(x, y)[0], stats.spearmanr(x, y)[0], day.height)
    return expected


@pytest.mark.parametrize("seed", [0, 1])
def test_daily_ic_and_rank_ic_equal_scipy(seed: int) -> None:
    panel = _random_panel(seed)
    min_stocks = 10
    expected = _scipy_daily(panel, min_stocks)
    ic = daily_ic(panel, pred_col="pred", target_col="target", min_stocks=min_stocks, by=["model"])
    rank_ic = daily_rank_ic(panel, pred_col="pred", target_col="target", min_stocks=min_stocks, by=["model"])

    assert sorted(expected) == sorted(zip(ic["model"], ic["Date"], strict=True))
    assert ic.filter(pl.col("Date") == dt.date(2024, 3, 8)).height == 0  # too few pairs: dropped
    for row_ic, row_rank in zip(ic.iter_rows(named=True), rank_ic.iter_rows(named=True), strict=True):
        want_ic, want_rank, n = expected[(row_ic["model"], row_ic["Date"])]
        assert row_ic["n_stocks"] == n
        if math.isnan(want_ic):
            assert row_ic["ic"] is None and row_rank["rank_ic"] is None
        else:
            assert row_ic["ic"] == pytest.approx(want_ic, abs=1e-12)
            assert row_rank["rank_ic"] == pytest.approx(want_rank, abs=1e-12)


def test_rank_ic_is_not_pearson_on_outliers() -> None:
    """A monotone but non-linear relation: RankIC 1, Pearson well below 1."""
    x = np.arange(1.0, 21.0)
    panel = pl.DataFrame({"Date": [dt.date(2024, 1, 4)] * 20, "Code": [str(i) for i in range(20)], "p": x, "t": x**6})
    scores = daily_scores(panel, pred_col="p", target_col="t", min_stocks=5, by=[])
    assert scores["rank_ic"][0] == pytest.approx(1.0)
    assert scores["ic"][0] < 0.9


def test_ic_summary_matches_hand_computation() -> None:
    values = pl.Series([0.1, -0.05, None, 0.2, 0.15])
    s = ic_summary(values, horizon=5, periods_per_year=245)
    # mean 0.1; deviations 0, -0.15, 0.1, 0.05 -> sum of squares 0.035; std = sqrt(0.035 / 3)
    std = math.sqrt(0.035 / 3)
    assert s.mean == pytest.approx(0.1)
    assert s.std == pytest.approx(std)
    assert s.ir == pytest.approx(0.1 / std)
    assert s.ir_annualised == pytest.approx(0.1 / std * 7.0)  # sqrt(245 / 5) = 7
    assert s.t_stat == pytest.approx(0.1 / std * 2.0)  # sqrt(4 days)
    assert s.ic_hit_rate == pytest.approx(0.75)
    assert (s.n_days, s.n_days_undefined) == (4, 1)
    # Newey-West, 4 lags (h - 1): gamma0 = 0.035/4; gamma1 = (0 - 0.015 + 0.005)/4 = -0.0025;
    # gamma2 = (0*0.1 + -0.15*0.05)/4 = -0.001875; gamma3 = 0*0.05/4 = 0; weights 1 - l/5
    long_run = 0.035 / 4 + 2 * (0.8 * -0.0025 + 0.6 * -0.001875 + 0.4 * 0.0)
    assert s.t_stat_newey_west == pytest.approx(0.1 / math.sqrt(long_run / 4))


def test_ic_summary_one_day_horizon_ir_uses_sqrt_periods() -> None:
    s = ic_summary(np.array([0.02, 0.04, 0.0, 0.06]), horizon=1, periods_per_year=245)
    std = math.sqrt((0.0001 + 0.0001 + 0.0009 + 0.0009) / 3)  # deviations -0.01, 0.01, -0.03, 0.03
    assert s.ir_annualised == pytest.approx(0.03 / std * math.sqrt(245))
    assert s.ic_hit_rate == pytest.approx(0.75)  # 0.0 is not a hit


def test_sign_hit_rate_counts_stock_days() -> None:
    day = dt.date(2024, 1, 4)
    panel = pl.DataFrame(
        {
            "Date": [day] * 6,
            "Code": list("abcdef"),
            "p": [0.1, -0.2, 0.3, 0.0, -0.1, 0.2],
            "t": [0.05, 0.01, 0.02, 0.03, -0.04, 0.0],
        }
    )
    scores = daily_scores(panel, pred_col="p", target_col="t", min_stocks=2, by=[])
    # zero forecast (d) and zero outcome (f) are not signed; of a, b, c, e: a, c, e agree
    assert scores["n_signed"][0] == 4 and scores["sign_hits"][0] == 3
    assert sign_hit_rate(scores) == pytest.approx(0.75)


def test_quantile_buckets_are_equal_sized_and_ties_share_a_bucket() -> None:
    frame = pl.DataFrame({"g": [1] * 10, "x": [5.0, 1, 2, 3, 4, 6, 7, 8, 9, 10]})
    buckets = frame.with_columns(quantile_bucket("x", 5, ["g"]).alias("b"))
    assert buckets.sort("x")["b"].to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    tied = pl.DataFrame({"g": [1] * 4, "x": [1.0, 1.0, 2.0, 3.0]})
    assert tied.select(quantile_bucket("x", 2, ["g"]))["x"].to_list() == [1, 1, 2, 2]


def test_decile_returns_hand_example() -> None:
    # two days, 4 stocks, 2 buckets; day 1 outcomes 1..4 by forecast order, day 2 reversed
    d1, d2 = dt.date(2024, 1, 4), dt.date(2024, 1, 5)
    panel = pl.DataFrame(
        {
            "Date": [d1] * 4 + [d2] * 4,
            "Code": list("abcd") * 2,
            "p": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0],
            "t": [0.01, 0.02, 0.03, 0.04, 0.04, 0.03, 0.02, None],
        }
    )
    deciles = decile_returns(panel, pred_col="p", target_col="t", n_quantiles=2, min_stocks=3, by=[])
    # day 1: low (a, b) 0.015, high (c, d) 0.035; day 2 (d missing, 3 stocks): ranks 1, 2, 3 ->
    # buckets floor((r - 0.5) * 2 / 3) + 1 = 1, 2, 2: low 0.04, high 0.025
    assert deciles["quantile"].to_list() == [1, 2]
    assert deciles["mean_return"].to_list() == pytest.approx([(0.015 + 0.04) / 2, (0.035 + 0.025) / 2])
    assert deciles["n_days"].to_list() == [2, 2]


def test_align_forecasts_rejects_missing_column_and_duplicate_targets() -> None:
    day = dt.date(2024, 1, 4)
    predictions = pl.DataFrame({"Date": [day], "Code": ["1301"], "model": ["m"], "pred_5d": [0.1]})
    targets = pl.DataFrame({"Date": [day, day], "Code": ["1301", "1301"], "target_ret_5d": [0.0, 0.1]})
    with pytest.raises(ValueError, match="predictions.*pred_1d"):
        align_forecasts(predictions, targets, 1)
    with pytest.raises(ValueError, match="targets.*duplicate"):
        align_forecasts(predictions, targets, 5)
    with pytest.raises(ValueError, match=r"predictions.*duplicate \(model, Date, Code\)"):
        align_forecasts(pl.concat([predictions, predictions]), targets.head(1), 5)
    aligned = align_forecasts(predictions, targets.head(1), 5)
    assert aligned.columns == ["model", "Date", "Code", "pred", "target"]
