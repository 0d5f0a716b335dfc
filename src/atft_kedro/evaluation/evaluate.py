"""Evaluate every model's forecasts side by side, per horizon, over the whole period.

:func:`evaluate_predictions` is the one entry point the evaluation pipeline needs: it
aligns forecasts with outcomes, restricts all models to the same signal dates, and
computes IC/RankIC statistics, hit rates, decile returns and the long-short and top-k
portfolios of :mod:`atft_kedro.evaluation.portfolio`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from atft_kedro.evaluation.metrics import (
    PRED,
    TARGET,
    align_forecasts,
    daily_scores,
    decile_returns,
    ic_summary,
    prediction_column,
    require_columns,
    sign_hit_rate,
)
from atft_kedro.evaluation.params import EvaluationParams
from atft_kedro.labels import ENTRY_LAG_DAYS, LabelParams
from atft_kedro.evaluation.portfolio import (
    SCORE,
    add_active_return,
    long_short_weights,
    performance_summary,
    simulate_portfolio,
    top_k_weights,
)

DEFINITIONS = {
    "label": "the realised h-day return of a signal dated t is target_ret_{h}d = P(t+1+h) / P(t+1) - 1 "
    "(see labels.formula)",
    "ic": "Pearson correlation of forecast and realised h-day label across stocks, per day",
    "rank_ic": "Spearman correlation (average ranks) of forecast and realised h-day label, per day",
    "ir": "mean / std of the daily series; annualised x sqrt(periods_per_year / h)",
    "t_stat_newey_west": "mean over its Newey-West standard error with h-1 lags (overlapping outcomes)",
    "ic_hit_rate": "share of days with IC (or RankIC) > 0",
    "sign_hit_rate": "share of stock-days whose forecast sign equals the realised return's sign",
    "buckets": "mean realised h-day return per forecast bucket (n_quantiles equal-count buckets, 1 = lowest), "
    "averaged over days",
    "execution": "a forecast from the close of t is traded at the label's price P of t + 1 (next open or "
    "next close) and earns the P-to-P returns dated t + 2 .. t + 1 + h, exactly the label's window; "
    "h overlapping cohorts of 1/h capital, costs on every trade",
    "turnover": "two-way: sum |w_t - w_(t-1)| per day (buys + sells); cost = cost_bps / 1e4 x turnover",
    "ann_return": "mean daily net return x periods_per_year (arithmetic)",
    "sharpe": "mean / std of daily net returns x sqrt(periods_per_year), risk-free 0",
    "max_drawdown": "largest peak-to-trough loss of the compounded net curve, as a positive fraction",
    "active_return": "long-only net return minus TOPIX return on the invested capital",
    "calibration": "means over days of the cross-sectional mean and standard deviation of the forecasts and of "
    "the realised labels: a calibrated return forecast has about the realised mean and a smaller spread; a "
    "ranking score need not",
}


@dataclass(frozen=True)
class EvaluationResult:
    """Output of :func:`evaluate_predictions`.

    Attributes:
        metrics: JSON-ready nested dict (non-finite numbers are None); see ``render_report``.
        daily_scores: horizon, model, Date, n_stocks, ic, rank_ic, n_signed, sign_hits.
        deciles: horizon, model, quantile, mean_return, n_days.
        portfolio_daily: horizon, model, portfolio (``long_short``/``top_k``), Date and the
            daily columns of :func:`~atft_kedro.evaluation.portfolio.simulate_portfolio`
            (top_k also benchmark_return, active_return).
    """

    metrics: dict[str, Any]
    daily_scores: pl.DataFrame
    deciles: pl.DataFrame
    portfolio_daily: pl.DataFrame


def ordered_horizons(params: EvaluationParams) -> list[int]:
    """The evaluated horizons, primary first, then ascending."""
    return [params.primary_horizon, *sorted(h for h in params.horizons if h != params.primary_horizon)]


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def common_signal_dates(panel: pl.DataFrame, models: Sequence[str], min_stocks: int) -> pl.Series:
    """Dates on which every model in ``models`` has at least ``min_stocks`` finite forecasts."""
    counts = (
        panel.filter(pl.col(PRED).is_not_null() & pl.col(PRED).is_finite())
        .group_by("model", "Date")
        .len()
        .filter(pl.col("len") >= min_stocks)
    )
    return (
        counts.group_by("Date")
        .agg(pl.col("model").n_unique().alias("n_models"))
        .filter(pl.col("n_models") == len(models))
        .get_column("Date")
        .sort()
    )


def forecast_scale(panel: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Are the forecasts returns? Per model, means over days of the cross-sectional mean and
    standard deviation of the forecast and of the realised label, on the pairs both are known.

    A calibrated return forecast has a mean near the realised mean and a spread below the
    realised spread (its share of the predictable part); a ranking score need not.
    """
    both = pl.col(PRED).is_finite() & pl.col(TARGET).is_finite()
    per_day = (
        panel.filter(both)
        .group_by("model", "Date")
        .agg(pl.col(PRED).mean().alias("forecast_mean"), pl.col(PRED).std().alias("forecast_std"),
             pl.col(TARGET).mean().alias("realised_mean"), pl.col(TARGET).std().alias("realised_std"))
    )
    # in date order: a sum's last bits must not depend on the order group_by returned the days in
    summary = (per_day.sort("model", "Date").group_by("model", maintain_order=True)
               .agg(pl.exclude("model", "Date").drop_nans().mean()))
    return {row.pop("model"): row for row in summary.to_dicts()}


def evaluate_horizon(
    predictions: pl.DataFrame,
    targets: pl.DataFrame,
    daily_returns: pl.DataFrame,
    topix: pl.DataFrame,
    trading_calendar: Sequence[dt.date] | pl.Series,
    horizon: int,
    params: EvaluationParams,
) -> tuple[dict[str, Any], pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Metrics of every model for one horizon on their common signal dates.

    Returns:
        (metrics for this horizon, daily scores, deciles, portfolio daily series).
    """
    panel = align_forecasts(predictions, targets, horizon)
    models = (
        panel.filter(pl.col(PRED).is_not_null()).get_column("model").unique(maintain_order=True).to_list()
    )
    if not models:
        raise ValueError(f"predictions: no model has a forecast in column '{prediction_column(horizon)}'")
    dates = common_signal_dates(panel, models, params.min_stocks_per_day)
    if dates.len() == 0:
        raise ValueError(
            f"predictions: models {models} share no date with >= {params.min_stocks_per_day} forecasts "
            f"for horizon {horizon}"
        )
    model_dates = panel.filter(pl.col(PRED).is_not_null()).group_by("model").agg(pl.col("Date").n_unique())
    dropped = {m: int(n) - dates.len() for m, n in model_dates.iter_rows()}
    panel = panel.filter(pl.col("Date").is_in(dates.implode()))

    scores = daily_scores(
        panel, pred_col=PRED, target_col=TARGET, min_stocks=params.min_stocks_per_day, by=["model"]
    )
    deciles = decile_returns(
        panel,
        pred_col=PRED,
        target_col=TARGET,
        n_quantiles=params.n_quantiles,
        min_stocks=params.min_stocks_per_day,
        by=["model"],
    )
    signal_start, signal_end = dates.min(), dates.max()
    calibration = forecast_scale(panel)
    model_metrics: dict[str, Any] = {}
    daily_frames = []
    for model in models:  # a handful of models
        model_scores = scores.filter(pl.col("model") == model)
        forecasts = panel.filter(pl.col("model") == model).select("Date", "Code", pl.col(PRED).alias(SCORE))
        portfolios = {
            "long_short": long_short_weights(
                forecasts, n_quantiles=params.n_quantiles, min_stocks=params.min_stocks_per_day
            ),
            "top_k": top_k_weights(forecasts, top_k=params.top_k, min_stocks=params.min_stocks_per_day),
        }
        summaries = {}
        for name, weights in portfolios.items():
            daily = simulate_portfolio(
                weights,
                daily_returns,
                trading_calendar,
                signal_start=signal_start,
                signal_end=signal_end,
                horizon=horizon,
                entry_lag_days=ENTRY_LAG_DAYS,
                cost_bps=params.cost_bps,
            )
            if name == "top_k":
                daily = add_active_return(daily, topix)
            summaries[name] = performance_summary(daily, params.periods_per_year)
            daily_frames.append(
                daily.with_columns(pl.lit(model).alias("model"), pl.lit(name).alias("portfolio"))
            )
        model_metrics[model] = {
            "rank_ic": ic_summary(
                model_scores["rank_ic"], horizon=horizon, periods_per_year=params.periods_per_year
            ).to_dict(),
            "ic": ic_summary(model_scores["ic"], horizon=horizon, periods_per_year=params.periods_per_year).to_dict(),
            "sign_hit_rate": sign_hit_rate(model_scores),
            "calibration": calibration.get(model, {}),
            "n_dates_dropped": dropped[model],
            "buckets": deciles.filter(pl.col("model") == model).sort("quantile")["mean_return"].to_list(),
            **summaries,
        }
    metrics = {
        "signal_dates": {"first": signal_start, "last": signal_end, "n": dates.len()},
        "models": model_metrics,
    }
    portfolio_daily = pl.concat(
        [f.select("model", "portfolio", pl.exclude("model", "portfolio")) for f in daily_frames],
        how="diagonal_relaxed",
    )
    return metrics, scores, deciles, portfolio_daily


def evaluate_predictions(
    predictions: pl.DataFrame,
    targets: pl.DataFrame,
    daily_returns: pl.DataFrame,
    topix: pl.DataFrame,
    trading_calendar: Sequence[dt.date] | pl.Series,
    params: EvaluationParams,
    labels: LabelParams,
) -> EvaluationResult:
    """Evaluate all models of ``predictions`` for every horizon in ``params``.

    Args:
        predictions: Date, Code, model, ``pred_{h}d`` per horizon (other columns ignored).
        targets: Date, Code, ``target_ret_{h}d`` per horizon (``atft_kedro.labels``).
        daily_returns: Date, Code, ``ret_1d`` at the label's price (``labels.period_returns``).
        topix: Date, Close: the benchmark's level at the label's price type.
        labels: the label definition, recorded in the metrics.
        trading_calendar: trading days covering the signal dates and the holding days.
    """
    require_columns(predictions, ["Date", "Code", "model"], "predictions")
    horizons = ordered_horizons(params)
    by_horizon: dict[str, Any] = {}
    scores, deciles, daily = [], [], []
    for horizon in horizons:
        metrics, h_scores, h_deciles, h_daily = evaluate_horizon(
            predictions, targets, daily_returns, topix, trading_calendar, horizon, params
        )
        by_horizon[str(horizon)] = metrics
        tag = pl.lit(horizon, dtype=pl.Int32).alias("horizon")
        scores.append(h_scores.select(tag, pl.all()))
        deciles.append(h_deciles.select(tag, pl.all()))
        daily.append(h_daily.select(tag, pl.all()))
    metrics = {
        "primary_horizon": params.primary_horizon,
        "horizons": horizons,
        "parameters": {
            "min_stocks_per_day": params.min_stocks_per_day,
            "n_quantiles": params.n_quantiles,
            "top_k": params.top_k,
            "cost_bps": params.cost_bps,
            "periods_per_year": params.periods_per_year,
            "entry_lag_days": ENTRY_LAG_DAYS,
        },
        "labels": {"entry": labels.entry, "price": labels.price_column, "formula": labels.describe()},
        "definitions": DEFINITIONS,
        "by_horizon": by_horizon,
    }
    return EvaluationResult(
        metrics=json_ready(metrics),
        daily_scores=pl.concat(scores),
        deciles=pl.concat(deciles),
        portfolio_daily=pl.concat(daily, how="diagonal_relaxed"),
    )
