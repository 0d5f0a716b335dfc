"""Small synthetic markets and parameters for the evaluation tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest

from atft_kedro.baselines.params import BaselineParams
from atft_kedro.evaluation.params import EvaluationParams


@dataclass(frozen=True)
class Market:
    """iid returns on a business-day calendar.

    returns[d, i] is ``ret_1d`` dated calendar[d]; prices = cumprod(1 + returns).
    """

    calendar: list[dt.date]
    codes: list[str]
    returns: np.ndarray  # [D, N]
    daily_returns: pl.DataFrame  # Date, Code, ret_1d
    targets: pl.DataFrame  # Date, Code, target_ret_{h}d
    topix: pl.DataFrame  # Date, Close

    def panel(self, values: np.ndarray, column: str) -> pl.DataFrame:
        """Date, Code, ``column`` from a [D, N] array (NaN -> null)."""
        d, n = values.shape
        return pl.DataFrame(
            {
                "Date": np.repeat(np.array(self.calendar[:d], dtype="datetime64[D]"), n),
                "Code": np.tile(np.array(self.codes), d),
                column: values.reshape(-1),
            }
        ).with_columns(pl.col("Date").cast(pl.Date), pl.col(column).fill_nan(None))


def make_market(n_days: int, n_stocks: int, horizons: tuple[int, ...], seed: int) -> Market:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-04")
    days = np.busday_offset(start, np.arange(n_days), roll="forward", holidays=["2024-02-12", "2024-03-20"])
    calendar = [d.item() for d in days]
    codes = [f"{1300 + 10 * i:04d}" for i in range(n_stocks)]
    returns = rng.normal(0.0, 0.02, size=(n_days, n_stocks))
    returns[0] = np.nan  # no previous close on the first day
    prices = np.cumprod(1.0 + np.nan_to_num(returns), axis=0)
    market = Market(calendar, codes, returns, pl.DataFrame(), pl.DataFrame(), pl.DataFrame())
    targets = market.panel(np.full((n_days, n_stocks), np.nan), "_")
    for h in horizons:
        forward = np.full((n_days, n_stocks), np.nan)
        forward[: n_days - h] = prices[h:] / prices[: n_days - h] - 1.0
        targets = targets.with_columns(market.panel(forward, f"target_ret_{h}d")[f"target_ret_{h}d"])
    topix = pl.DataFrame({"Date": calendar, "Close": 1000.0 * np.cumprod(1.0 + rng.normal(0, 0.01, n_days))})
    return Market(
        calendar=calendar,
        codes=codes,
        returns=returns,
        daily_returns=market.panel(returns, "ret_1d"),
        targets=targets.drop("_"),
        topix=topix,
    )


@pytest.fixture
def params() -> EvaluationParams:
    return EvaluationParams.model_validate(
        {
            "horizons": [1, 5],
            "primary_horizon": 5,
            "min_stocks_per_day": 10,
            "n_quantiles": 5,
            "top_k": 5,
            "cost_bps": 10.0,
            "periods_per_year": 245,
            "importance": {"days": 10, "max_features": 40, "seed": 0},
            "plots": {"top_features": 30},
        }
    )


@pytest.fixture
def baseline_params() -> BaselineParams:
    return BaselineParams.model_validate(
        {
            "lightgbm": {
                "label": "cs_rank",
                "num_boost_round": 60,
                "early_stopping_rounds": 10,
                "learning_rate": 0.1,
                "num_leaves": 15,
                "min_data_in_leaf": 20,
                "feature_fraction": 1.0,
                "bagging_fraction": 1.0,
                "bagging_freq": 0,
                "lambda_l2": 0.0,
                "max_rows": 100_000,
                "seed": 0,
            },
            "hist_gbm": {
                "label": "cs_rank",
                "max_iter": 30,
                "n_iter_no_change": 5,
                "learning_rate": 0.1,
                "max_leaf_nodes": 15,
                "min_samples_leaf": 20,
                "l2_regularization": 0.0,
                "max_rows": 100_000,
                "seed": 0,
            },
            "ridge": {"alpha": 1.0, "max_rows": 100_000, "seed": 0},
            "momentum": {"feature": "px_ret_20d"},
        }
    )


@pytest.fixture
def market_factory():
    """``make_market(n_days, n_stocks, horizons, seed)`` for tests that size their market."""
    return make_market
