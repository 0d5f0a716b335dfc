"""Cross-sectional forecast metrics: daily IC / RankIC, their summary, hit rates, decile returns.

Every function works on a long *panel* with one row per (group..., Date, Code) holding a
forecast column and a realised-outcome column. ``by`` names the grouping columns on top of
``Date`` (``("model",)`` for a frame of several models, ``()`` for one forecast).
A *valid pair* is a row whose forecast and outcome are both non-null and finite; every
statistic uses valid pairs only, and a day with fewer than ``min_stocks`` valid pairs is
dropped (it yields no row).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

PRED = "pred"
TARGET = "target"


def prediction_column(horizon: int) -> str:
    """Name of the point-forecast column for ``horizon`` in the predictions table."""
    return f"pred_{horizon}d"


def target_column(horizon: int) -> str:
    """Name of the forward-return column for ``horizon`` in the targets table."""
    return f"target_ret_{horizon}d"


def require_columns(frame: pl.DataFrame, columns: Sequence[str], table: str) -> None:
    """Raise ``ValueError`` naming ``table`` and every column of ``columns`` it lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"table '{table}' lacks column(s) {missing}; it has {frame.columns}")


def align_forecasts(predictions: pl.DataFrame, targets: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """Pair each model's forecast for ``horizon`` with the realised forward return.

    Args:
        predictions: Date, Code, model, ``pred_{h}d``.
        targets: Date, Code, ``target_ret_{h}d`` (one row per Date x Code).

    Returns:
        model, Date, Code, ``pred``, ``target`` (Float64): one row per prediction row;
        ``target`` is null where the outcome is unknown.
    """
    pred_col, target_col = prediction_column(horizon), target_column(horizon)
    require_columns(predictions, ["Date", "Code", "model", pred_col], "predictions")
    require_columns(targets, ["Date", "Code", target_col], "targets")
    for table, frame, keys in (
        ("predictions", predictions, ["model", "Date", "Code"]),
        ("targets", targets, ["Date", "Code"]),
    ):
        duplicated = frame.select(keys).is_duplicated()
        if duplicated.any():
            rows = frame.filter(duplicated).select(keys).head(5).rows()
            raise ValueError(f"table '{table}' has duplicate ({', '.join(keys)}) keys, e.g. {rows}")
    return (
        predictions.lazy()
        .select("model", "Date", "Code", pl.col(pred_col).cast(pl.Float64).alias(PRED))
        .join(
            targets.lazy().select("Date", "Code", pl.col(target_col).cast(pl.Float64).alias(TARGET)),
            on=["Date", "Code"],
            how="left",
            maintain_order="left",
        )
        .collect()
    )


def _valid_pairs(panel: pl.LazyFrame, pred_col: str, target_col: str) -> pl.LazyFrame:
    return panel.filter(
        pl.col(pred_col).is_not_null()
        & pl.col(target_col).is_not_null()
        & pl.col(pred_col).is_finite()
        & pl.col(target_col).is_finite()
    )


def quantile_bucket(column: str, n_quantiles: int, over: Sequence[str]) -> pl.Expr:
    """Forecast bucket 1..``n_quantiles`` (1 = lowest) within each ``over`` group.

    Buckets come from average ranks, ``floor((rank - 0.5) * q / n) + 1``, so tied values
    always share a bucket and n divisible by q gives equal-sized buckets.
    Apply to rows whose ``column`` is valid (no nulls).
    """
    rank = pl.col(column).rank("average").over(over)
    n = pl.len().over(over)
    return ((rank - 0.5) * n_quantiles / n).floor().cast(pl.Int32) + 1


def daily_scores(
    panel: pl.DataFrame, *, pred_col: str, target_col: str, min_stocks: int, by: Sequence[str]
) -> pl.DataFrame:
    """Per group and day: IC (Pearson), RankIC (Spearman) and sign agreement.

    RankIC is the Pearson correlation of average ranks (ties as ``scipy.stats.spearmanr``),
    ranked among the day's valid pairs. A day whose forecast or outcome has no spread has an
    undefined correlation: its ``ic``/``rank_ic`` is null (kept, so a collapsed forecast is
    visible and counted by :func:`ic_summary`).

    Returns:
        *by, Date, ``n_stocks`` (valid pairs), ``ic``, ``rank_ic``, ``n_signed`` (valid pairs
        with non-zero forecast and outcome), ``sign_hits`` (of those, how many have equal
        signs); sorted by *by, Date.
    """
    keys = [*by, "Date"]
    require_columns(panel, [*keys, pred_col, target_col], "forecast panel")
    valid = _valid_pairs(panel.lazy(), pred_col, target_col).with_columns(
        pl.col(pred_col).rank("average").over(keys).alias("_pred_rank"),
        pl.col(target_col).rank("average").over(keys).alias("_target_rank"),
    )
    signed = (pl.col(pred_col) != 0) & (pl.col(target_col) != 0)
    return (
        valid.group_by(keys)
        .agg(
            pl.len().alias("n_stocks"),
            pl.corr(pred_col, target_col).alias("ic"),
            pl.corr("_pred_rank", "_target_rank").alias("rank_ic"),
            signed.sum().alias("n_signed"),
            (signed & (pl.col(pred_col).sign() == pl.col(target_col).sign())).sum().alias("sign_hits"),
        )
        .filter(pl.col("n_stocks") >= min_stocks)
        .with_columns(pl.col("ic").fill_nan(None), pl.col("rank_ic").fill_nan(None))
        .sort(keys)
        .collect()
    )


def daily_ic(
    panel: pl.DataFrame, *, pred_col: str, target_col: str, min_stocks: int, by: Sequence[str]
) -> pl.DataFrame:
    """Daily Pearson IC: *by, Date, n_stocks, ic. See :func:`daily_scores`."""
    scores = daily_scores(panel, pred_col=pred_col, target_col=target_col, min_stocks=min_stocks, by=by)
    return scores.select(*by, "Date", "n_stocks", "ic")


def daily_rank_ic(
    panel: pl.DataFrame, *, pred_col: str, target_col: str, min_stocks: int, by: Sequence[str]
) -> pl.DataFrame:
    """Daily Spearman RankIC: *by, Date, n_stocks, rank_ic. See :func:`daily_scores`."""
    scores = daily_scores(panel, pred_col=pred_col, target_col=target_col, min_stocks=min_stocks, by=by)
    return scores.select(*by, "Date", "n_stocks", "rank_ic")


@dataclass(frozen=True)
class ICSummary:
    """Summary of a daily IC (or RankIC) series of one forecast horizon.

    Attributes:
        mean, std: of the defined daily values (std with ddof=1).
        ir: ``mean / std`` per day.
        ir_annualised: ``ir * sqrt(periods_per_year / horizon)``: an h-day forecast is one
            independent bet per h days, so a year holds ``periods_per_year / h`` of them
            (for h=1 this is the usual ``sqrt(245)``).
        t_stat: ``mean / (std / sqrt(n_days))``, valid for independent days (h = 1).
        t_stat_newey_west: ``mean`` over its Newey-West standard error with ``h - 1`` lags
            (Bartlett weights), which allows for the overlap of h-day outcomes on
            consecutive days; equals ``t_stat`` up to ddof for h = 1.
        ic_hit_rate: share of days with a value > 0 (the *daily* hit rate).
        n_days: days with a defined value.
        n_days_undefined: days kept (enough stocks) whose value was undefined because the
            forecast or the outcome had no cross-sectional spread (e.g. a collapsed model).
    """

    mean: float
    std: float
    ir: float
    ir_annualised: float
    t_stat: float
    t_stat_newey_west: float
    ic_hit_rate: float
    n_days: int
    n_days_undefined: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 and math.isfinite(denominator) else float("nan")


def newey_west_se(values: np.ndarray, lags: int) -> float:
    """Newey-West (Bartlett) standard error of the mean of ``values`` [n] with ``lags`` lags."""
    n = values.shape[0]
    if n < 2:
        return float("nan")
    centred = values - values.mean()
    long_run = float(centred @ centred) / n
    for lag in range(1, min(lags, n - 1) + 1):
        weight = 1.0 - lag / (lags + 1.0)
        long_run += 2.0 * weight * float(centred[lag:] @ centred[:-lag]) / n
    return math.sqrt(max(long_run, 0.0) / n)


def ic_summary(daily_values: pl.Series | np.ndarray, *, horizon: int, periods_per_year: int) -> ICSummary:
    """Summarise one daily IC/RankIC series (in date order; nulls = undefined days)."""
    values = np.asarray(
        daily_values.cast(pl.Float64).to_numpy() if isinstance(daily_values, pl.Series) else daily_values,
        dtype=np.float64,
    )
    defined = values[np.isfinite(values)]
    n = int(defined.shape[0])
    mean = float(defined.mean()) if n else float("nan")
    std = float(defined.std(ddof=1)) if n >= 2 else float("nan")
    ir = _ratio(mean, std)
    return ICSummary(
        mean=mean,
        std=std,
        ir=ir,
        ir_annualised=ir * math.sqrt(periods_per_year / horizon),
        t_stat=ir * math.sqrt(n) if n >= 2 else float("nan"),
        t_stat_newey_west=_ratio(mean, newey_west_se(defined, horizon - 1)),
        ic_hit_rate=float((defined > 0).mean()) if n else float("nan"),
        n_days=n,
        n_days_undefined=int(values.shape[0] - n),
    )


def sign_hit_rate(scores: pl.DataFrame) -> float:
    """Stock-level hit rate pooled over all days of :func:`daily_scores` output.

    Share of valid (stock, day) pairs with non-zero forecast and outcome whose forecast
    sign equals the sign of the realised return. Unlike RankIC it depends on the forecast's
    level: a forecast of relative returns is judged against raw returns.
    """
    total = int(scores["n_signed"].sum())
    return float(scores["sign_hits"].sum()) / total if total else float("nan")


def decile_returns(
    panel: pl.DataFrame,
    *,
    pred_col: str,
    target_col: str,
    n_quantiles: int,
    min_stocks: int,
    by: Sequence[str],
) -> pl.DataFrame:
    """Mean realised forward return per forecast bucket over the period.

    Each day the valid pairs are cut into ``n_quantiles`` forecast buckets (see
    :func:`quantile_bucket`); the bucket's mean outcome that day is averaged over days
    (every day weighs the same). Outcomes are h-day returns, not annualised.

    Returns:
        *by, ``quantile`` (1 = lowest forecast .. q), ``mean_return``, ``n_days``; sorted.
    """
    keys = [*by, "Date"]
    require_columns(panel, [*keys, pred_col, target_col], "forecast panel")
    return (
        _valid_pairs(panel.lazy(), pred_col, target_col)
        .filter(pl.len().over(keys) >= min_stocks)
        .with_columns(quantile_bucket(pred_col, n_quantiles, keys).alias("quantile"))
        .group_by([*keys, "quantile"])
        .agg(pl.col(target_col).mean().alias("_day_mean"))
        .group_by([*by, "quantile"])
        .agg(pl.col("_day_mean").mean().alias("mean_return"), pl.len().alias("n_days"))
        .sort([*by, "quantile"])
        .collect()
    )
