"""Portfolios built from a forecast's daily ranking, with next-day execution and costs.

Timing (``entry_lag_days`` = L, L = 1 = ``atft_kedro.labels.ENTRY_LAG_DAYS``): a forecast made
with what is known at the close of trading day t forms *cohort weights* that are traded at
the label's price P (next open or next close, ``params:labels``) of t + L and held for h
trading days, so they earn the P-to-P returns ``ret_1d`` (``atft_kedro.labels.period_returns``)
dated t + L + 1, ..., t + L + h, whose product is exactly the label P(t+1+h) / P(t+1). With h
overlapping cohorts, each of 1/h of the capital, the weight held over day s is

    w[s] = (1/h) * sum_{j = L+1}^{L+h} W[s - j]                       (trading-day offsets)

Weights are kept at target during the holding (daily rebalanced, no price drift), so a
day's gross return is ``sum_i w[s, i] * ret_1d[s, i]``. Missing returns of held stocks
(suspended, delisted) count as 0 and their weight is reported as ``missing_weight``.

Turnover is *two-way*: ``turnover[s] = sum_i |w[s, i] - w[s-1, i]|``, buys plus sells (fully
replacing a long-only book is 2.0; building it from cash is 1.0). ``cost_bps`` is charged on
every unit traded: ``cost[s] = cost_bps / 1e4 * turnover[s]``, ``net = gross - cost``; the
build-up from cash on the first days is charged too.

The daily series covers days first_signal + L + 1 .. min(last_signal + L + h, last day
with returns): capital ramps up over the first h days and winds down after the last
signal.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from atft_kedro.evaluation.metrics import quantile_bucket, require_columns

SCORE = "score"
DAILY_COLUMNS = (
    "Date",
    "gross_return",
    "turnover",
    "cost",
    "net_return",
    "long_exposure",
    "short_exposure",
    "missing_weight",
)


def calendar_array(trading_calendar: Sequence[dt.date] | pl.Series) -> np.ndarray:
    """The trading days as a strictly ascending ``datetime64[D]`` array [D]."""
    if isinstance(trading_calendar, pl.Series):
        days = trading_calendar.cast(pl.Date).to_numpy().astype("datetime64[D]")
    else:
        days = np.asarray(list(trading_calendar), dtype="datetime64[D]")
    if days.shape[0] == 0:
        raise ValueError("trading_calendar is empty")
    if np.any(np.diff(days) <= np.timedelta64(0, "D")):
        raise ValueError("trading_calendar must be strictly ascending with no repeated date")
    return days


def _day_index(calendar: np.ndarray, dates: np.ndarray, what: str) -> np.ndarray:
    """Position of every date [n] in the calendar; error naming the dates that are not trading days."""
    index = np.searchsorted(calendar, dates)
    inside = index < calendar.shape[0]
    found = np.zeros(dates.shape[0], dtype=bool)
    found[inside] = calendar[index[inside]] == dates[inside]
    if not found.all():
        raise ValueError(f"{what}: dates not in trading_calendar, e.g. {dates[~found][:5].tolist()}")
    return index


def long_short_weights(scores: pl.DataFrame, *, n_quantiles: int, min_stocks: int) -> pl.DataFrame:
    """Top-minus-bottom bucket cohort weights per signal date.

    Args:
        scores: Date, Code, ``score`` (rows with null/non-finite score are ignored).

    Returns:
        Date, Code, weight: +1/n_top on the top bucket, -1/n_bottom on the bottom bucket
        (buckets as :func:`~atft_kedro.evaluation.metrics.quantile_bucket`); days with
        fewer than ``min_stocks`` valid scores have no rows.
    """
    require_columns(scores, ["Date", "Code", SCORE], "scores")
    bucket = pl.col("_bucket")
    return (
        scores.lazy()
        .filter(pl.col(SCORE).is_not_null() & pl.col(SCORE).is_finite())
        .filter(pl.len().over("Date") >= min_stocks)
        .with_columns(quantile_bucket(SCORE, n_quantiles, ["Date"]).alias("_bucket"))
        .filter((bucket == 1) | (bucket == n_quantiles))
        .with_columns(
            (pl.when(bucket == n_quantiles).then(1.0).otherwise(-1.0) / pl.len().over("Date", "_bucket")).alias(
                "weight"
            )
        )
        .select("Date", "Code", "weight")
        .sort("Date", "Code")
        .collect()
    )


def top_k_weights(scores: pl.DataFrame, *, top_k: int, min_stocks: int) -> pl.DataFrame:
    """Long-only cohort weights: equal weight 1/k on the k highest scores per day.

    Ties at the cut are broken by Code (ascending) so the result does not depend on row
    order. Days with fewer than ``min_stocks`` valid scores have no rows.

    Returns:
        Date, Code, weight (sums to 1 per day).
    """
    require_columns(scores, ["Date", "Code", SCORE], "scores")
    return (
        scores.lazy()
        .filter(pl.col(SCORE).is_not_null() & pl.col(SCORE).is_finite())
        .filter(pl.len().over("Date") >= min_stocks)
        .sort(["Date", SCORE, "Code"], descending=[False, True, False])
        .filter(pl.int_range(pl.len()).over("Date") < top_k)
        .with_columns((1.0 / pl.len().over("Date")).alias("weight"))
        .select("Date", "Code", "weight")
        .sort("Date", "Code")
        .collect()
    )


def held_weights(cohort: np.ndarray, *, horizon: int, entry_lag_days: int) -> np.ndarray:
    """Weights held over each day from cohort weights formed on each day.

    Args:
        cohort: [D, N] weights formed from the signal of day d (0 where none).

    Returns:
        [D, N] ``w[s] = (1/h) * sum_{j=L+1}^{L+h} cohort[s - j]`` (cohorts before day 0 are 0).
    """
    d, n = cohort.shape
    padded = np.concatenate([np.zeros((entry_lag_days + horizon, n), dtype=np.float64), cohort], axis=0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, horizon, axis=0)  # [D + L + 1, N, h]
    return windows[:d].sum(axis=-1) / horizon


def simulate_portfolio(
    weights: pl.DataFrame,
    daily_returns: pl.DataFrame,
    trading_calendar: Sequence[dt.date] | pl.Series,
    *,
    signal_start: dt.date,
    signal_end: dt.date,
    horizon: int,
    entry_lag_days: int,
    cost_bps: float,
) -> pl.DataFrame:
    """Daily returns of the overlapping-cohort portfolio (see the module docstring).

    Args:
        weights: Date (signal day), Code, weight: cohort weights, e.g. from
            :func:`long_short_weights`.
        daily_returns: Date, Code, ``ret_1d`` (close-to-close return ending on Date).
        trading_calendar: the exchange's trading days.
        signal_start, signal_end: first and last signal day of the evaluation (days in
            between without weights hold no new cohort).

    Returns:
        One row per held day with the columns of ``DAILY_COLUMNS``.
    """
    require_columns(weights, ["Date", "Code", "weight"], "weights")
    require_columns(daily_returns, ["Date", "Code", "ret_1d"], "daily_returns")
    if horizon < 1 or entry_lag_days < 1:
        raise ValueError(f"horizon ({horizon}) and entry_lag_days ({entry_lag_days}) must be >= 1")
    calendar = calendar_array(trading_calendar)
    first, last_signal = _day_index(
        calendar, np.array([signal_start, signal_end], dtype="datetime64[D]"), "signal period"
    )
    if last_signal < first:
        raise ValueError(f"signal_end {signal_end} is before signal_start {signal_start}")
    if daily_returns.height == 0:
        raise ValueError("table 'daily_returns' is empty")
    last_return_day = np.datetime64(daily_returns["Date"].max(), "D")
    last_held = min(
        last_signal + entry_lag_days + horizon,
        int(np.searchsorted(calendar, last_return_day, side="right")) - 1,
    )
    first_held = first + entry_lag_days + 1
    if last_held < first_held:
        raise ValueError(
            f"no day with returns in daily_returns (last {last_return_day}) on which a cohort formed "
            f"from {signal_start} .. {signal_end} is held (first held day is trading day "
            f"{first_held} of the calendar)"
        )
    days = calendar[first : last_held + 1]
    n_days = days.shape[0]

    cohort_rows = weights.filter(
        (pl.col("Date") >= pl.lit(signal_start)) & (pl.col("Date") <= pl.lit(signal_end))
    )
    codes = cohort_rows["Code"].unique().sort()
    n_codes = codes.len()
    code_index = pl.DataFrame({"Code": codes, "_col": np.arange(n_codes, dtype=np.int64)})
    cohort = np.zeros((n_days, n_codes), dtype=np.float64)
    if n_codes:
        rows = cohort_rows.join(code_index, on="Code", how="left")
        day_pos = _day_index(calendar, rows["Date"].to_numpy().astype("datetime64[D]"), "weights") - first
        np.add.at(cohort, (day_pos, rows["_col"].to_numpy()), rows["weight"].to_numpy())
    held = held_weights(cohort, horizon=horizon, entry_lag_days=entry_lag_days)

    returns = np.full((n_days, n_codes), np.nan, dtype=np.float64)
    observed = (
        daily_returns.lazy()
        .filter(pl.col("Date").is_between(pl.lit(days[0].item()), pl.lit(days[-1].item())))
        .join(code_index.lazy(), on="Code", how="inner")
        .filter(pl.col("ret_1d").is_not_null() & pl.col("ret_1d").is_finite())
        .select("Date", "_col", pl.col("ret_1d").cast(pl.Float64))
        .collect()
    )
    if observed.select(pl.struct("Date", "_col").is_duplicated().any()).item():
        raise ValueError("table 'daily_returns' has duplicate (Date, Code) keys")
    obs_day = _day_index(calendar, observed["Date"].to_numpy().astype("datetime64[D]"), "daily_returns") - first
    returns[obs_day, observed["_col"].to_numpy()] = observed["ret_1d"].to_numpy()
    unknown = np.isnan(returns)

    gross = (held * np.where(unknown, 0.0, returns)).sum(axis=1)
    turnover = np.abs(np.diff(held, axis=0, prepend=np.zeros((1, n_codes)))).sum(axis=1)
    cost = turnover * cost_bps / 1e4
    keep = slice(entry_lag_days + 1, n_days)
    return pl.DataFrame(
        {
            "Date": days[keep],
            "gross_return": gross[keep],
            "turnover": turnover[keep],
            "cost": cost[keep],
            "net_return": (gross - cost)[keep],
            "long_exposure": np.clip(held, 0.0, None).sum(axis=1)[keep],
            "short_exposure": np.clip(held, None, 0.0).sum(axis=1)[keep],
            "missing_weight": np.abs(np.where(unknown, held, 0.0)).sum(axis=1)[keep],
        }
    ).with_columns(pl.col("Date").cast(pl.Date))


def benchmark_returns(topix: pl.DataFrame) -> pl.DataFrame:
    """Close-to-close benchmark returns: Date, ``benchmark_return`` (null on the first day)."""
    require_columns(topix, ["Date", "Close"], "topix")
    return topix.sort("Date").select(
        "Date", (pl.col("Close").cast(pl.Float64) / pl.col("Close").cast(pl.Float64).shift(1) - 1.0).alias(
            "benchmark_return"
        )
    )


def add_active_return(daily: pl.DataFrame, topix: pl.DataFrame) -> pl.DataFrame:
    """Add ``benchmark_return`` and ``active_return = net - (long + short exposure) * benchmark``.

    The benchmark is applied to the portfolio's net exposure: capital not yet invested
    (ramp-up) is taken to sit in the benchmark, and a dollar-neutral long-short book's
    active return is its own return.
    """
    return daily.join(benchmark_returns(topix), on="Date", how="left").with_columns(
        (
            pl.col("net_return")
            - (pl.col("long_exposure") + pl.col("short_exposure")) * pl.col("benchmark_return")
        ).alias("active_return")
    )


def sharpe_ratio(returns: np.ndarray, periods_per_year: int) -> float:
    """Annualised Sharpe ratio ``mean / std(ddof=1) * sqrt(periods_per_year)`` (risk-free 0)."""
    if returns.shape[0] < 2:
        return float("nan")
    std = float(returns.std(ddof=1))
    return float(returns.mean()) / std * math.sqrt(periods_per_year) if std > 0 else float("nan")


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough loss of the compounded curve ``prod(1 + r)``, starting at 1.

    Returned as a non-negative fraction of the peak (0.25 = the curve fell 25% below its
    running maximum).
    """
    if returns.shape[0] == 0:
        return float("nan")
    curve = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.maximum(curve, 1.0))
    return float(np.max(1.0 - curve / peak))


def _cagr(returns: np.ndarray, periods_per_year: int) -> float:
    """Compounded annual growth ``prod(1 + r) ** (periods_per_year / n) - 1`` (-1 once wiped out)."""
    if returns.shape[0] == 0:
        return float("nan")
    growth = float(np.prod(1.0 + returns))
    return growth ** (periods_per_year / returns.shape[0]) - 1.0 if growth > 0 else -1.0


def performance_summary(daily: pl.DataFrame, periods_per_year: int) -> dict[str, float | int]:
    """Statistics of a daily portfolio series from :func:`simulate_portfolio`.

    Keys: ``ann_return`` (mean net daily return x periods_per_year, arithmetic), ``cagr``
    (compounded), ``ann_volatility``, ``sharpe`` (net of costs), ``sharpe_gross``,
    ``max_drawdown`` (>= 0, compounded net curve), ``mean_turnover`` (two-way per day),
    ``ann_cost``, ``n_days``; with ``active_return`` also ``active_ann_return``,
    ``tracking_error`` and ``information_ratio`` (annualised).
    """
    net = daily["net_return"].to_numpy()
    n = int(net.shape[0])
    summary: dict[str, float | int] = {
        "ann_return": float(net.mean()) * periods_per_year if n else float("nan"),
        "cagr": _cagr(net, periods_per_year),
        "ann_volatility": float(net.std(ddof=1)) * math.sqrt(periods_per_year) if n >= 2 else float("nan"),
        "sharpe": sharpe_ratio(net, periods_per_year),
        "sharpe_gross": sharpe_ratio(daily["gross_return"].to_numpy(), periods_per_year),
        "max_drawdown": max_drawdown(net),
        "mean_turnover": float(daily["turnover"].mean()) if n else float("nan"),
        "ann_cost": float(daily["cost"].mean()) * periods_per_year if n else float("nan"),
        "n_days": n,
    }
    if "active_return" in daily.columns:
        active = daily["active_return"].drop_nulls().to_numpy()
        summary["active_ann_return"] = float(active.mean()) * periods_per_year if active.size else float("nan")
        summary["tracking_error"] = (
            float(active.std(ddof=1)) * math.sqrt(periods_per_year) if active.size >= 2 else float("nan")
        )
        summary["information_ratio"] = sharpe_ratio(active, periods_per_year)
    return summary
