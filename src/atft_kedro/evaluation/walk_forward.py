"""The stitched walk-forward record: per-fold and per-year tables, bootstrap intervals, paired tests.

The walk-forward pipeline forecasts each fold's test block with models trained on that
fold alone; the blocks tile one continuous out-of-sample period, so the stitched forecasts
are scored by :func:`~atft_kedro.evaluation.evaluate.evaluate_predictions` like any test
period. This module adds what a long record allows: how the skill is spread over folds
and calendar years, how sure its mean is (a moving-block bootstrap that keeps the serial
correlation of overlapping h-day outcomes), and whether the model beats each baseline on
the same days (a paired test on the daily RankIC difference, Newey-West t with h-1 lags).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from atft_kedro.evaluation.metrics import newey_west_se, require_columns
from atft_kedro.evaluation.portfolio import sharpe_ratio
from atft_kedro.schemas.strict import StrictModel


class BootstrapParams(StrictModel):
    """Moving-block bootstrap of a daily series' mean."""

    block_days: int = Field(ge=1, description="length of each resampled block of consecutive days")
    samples: int = Field(ge=100, description="bootstrap resamples")
    confidence: float = Field(gt=0.0, lt=1.0, description="two-sided interval, e.g. 0.95")
    seed: int


@dataclass(frozen=True)
class FoldBlock:
    """One fold's test block: its number and inclusive first and last signal date."""

    fold: int
    start: dt.date
    end: dt.date


def check_tiling(blocks: Sequence[FoldBlock], trading_days: Sequence[dt.date]) -> None:
    """Raise unless the blocks, in fold order, tile consecutive trading days (no overlap, no gap)."""
    days = list(trading_days)
    index = {d: i for i, d in enumerate(days)}
    for block in blocks:
        if block.start not in index or block.end not in index:
            raise ValueError(f"fold {block.fold}: test block {block.start}..{block.end} is not on the trading calendar")
    for earlier, later in zip(blocks, blocks[1:], strict=False):
        step = index[later.start] - index[earlier.end]
        if step != 1:
            what = "overlap" if step < 1 else f"leave {step - 1} trading days between them"
            raise ValueError(
                f"walk-forward test blocks of folds {earlier.fold} ({earlier.start}..{earlier.end}) and "
                f"{later.fold} ({later.start}..{later.end}) {what}: the stitched period must tile"
            )


def assign_blocks(frame: pl.DataFrame, blocks: Sequence[FoldBlock], column: str = "Date") -> pl.DataFrame:
    """Add ``fold`` (Int32) to each row by the block its date falls in (null outside every block)."""
    fold = pl.lit(None, dtype=pl.Int32)
    for block in reversed(blocks):  # a handful of folds
        fold = pl.when(pl.col(column).is_between(block.start, block.end)).then(pl.lit(block.fold, pl.Int32)).otherwise(fold)
    return frame.with_columns(fold.alias("fold"))


def block_bootstrap_interval(values: np.ndarray, params: BootstrapParams) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` [n] under a circular moving-block bootstrap.

    Each resample joins ``ceil(n / block_days)`` blocks of consecutive values (wrapping at
    the end), each starting at a uniformly drawn day, cut to n; seeded by ``params.seed``.
    Returns (nan, nan) for fewer than 2 finite values.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = x.shape[0]
    if n < 2:
        return float("nan"), float("nan")
    block = min(params.block_days, n)
    n_blocks = math.ceil(n / block)
    rng = np.random.default_rng(params.seed)
    starts = rng.integers(0, n, size=(params.samples, n_blocks))
    positions = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(params.samples, -1)[:, :n] % n
    means = x[positions].mean(axis=1)
    tail = (1.0 - params.confidence) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)


def paired_test(
    scores: pl.DataFrame, model: str, other: str, horizon: int, bootstrap: BootstrapParams
) -> dict[str, Any]:
    """``model`` minus ``other`` on the daily RankIC of the days both are defined.

    Returns:
        mean_difference, t_stat_newey_west (h - 1 lags: overlapping h-day outcomes),
        p_value (two-sided, normal), the bootstrap interval of the mean difference, n_days.
    """
    require_columns(scores, ["model", "Date", "rank_ic"], "daily scores")
    pairs = (
        scores.filter(pl.col("model") == model).select("Date", pl.col("rank_ic").alias("a"))
        .join(scores.filter(pl.col("model") == other).select("Date", pl.col("rank_ic").alias("b")), on="Date")
        .drop_nulls().filter(pl.col("a").is_finite() & pl.col("b").is_finite())
        .sort("Date")
    )
    diff = (pairs["a"] - pairs["b"]).to_numpy()
    n = int(diff.shape[0])
    mean = float(diff.mean()) if n else float("nan")
    se = newey_west_se(diff, horizon - 1) if n >= 2 else float("nan")
    t = mean / se if n >= 2 and se > 0 else float("nan")
    p = math.erfc(abs(t) / math.sqrt(2.0)) if math.isfinite(t) else float("nan")
    lo, hi = block_bootstrap_interval(diff, bootstrap)
    return {"mean_difference": mean, "t_stat_newey_west": t, "p_value": p, "ci_low": lo, "ci_high": hi,
            "n_days": n}


def _period_table(scores: pl.DataFrame, portfolio: pl.DataFrame, key: str, periods_per_year: int) -> pl.DataFrame:
    """Mean RankIC/IC per (key, model) and the long-short Sharpe of the held days in that period."""
    ic = scores.group_by(key, "model").agg(
        pl.col("Date").min().alias("first"),
        pl.col("Date").max().alias("last"),
        pl.col("rank_ic").drop_nans().count().alias("n_days"),
        pl.col("rank_ic").drop_nans().mean().alias("rank_ic_mean"),
        pl.col("ic").drop_nans().mean().alias("ic_mean"),
    )
    sharpe = (
        portfolio.filter(pl.col("portfolio") == "long_short")
        .group_by(key, "model")
        .agg(
            pl.col("net_return").map_batches(
                lambda s: pl.Series([sharpe_ratio(s.to_numpy(), periods_per_year)]), returns_scalar=True,
                return_dtype=pl.Float64,
            ).alias("long_short_sharpe"),
            (pl.col("net_return").mean() * periods_per_year).alias("long_short_ann_return"),
        )
    )
    return ic.join(sharpe, on=[key, "model"], how="left").sort(key, "model")


def fold_table(scores: pl.DataFrame, portfolio: pl.DataFrame, blocks: Sequence[FoldBlock],
               periods_per_year: int) -> pl.DataFrame:
    """Per fold and model: test dates, days, mean RankIC and IC, long-short Sharpe and return (net).

    Args:
        scores: one horizon's daily scores (model, Date, rank_ic, ic).
        portfolio: that horizon's portfolio series (model, portfolio, Date, net_return);
            a held day counts for the fold whose block contains it (the last fold keeps the
            wind-down days after its block).
    """
    last = blocks[-1]
    extended = [*blocks[:-1], FoldBlock(last.fold, last.start, dt.date.max)]
    return _period_table(
        assign_blocks(scores, blocks).drop_nulls("fold"),
        assign_blocks(portfolio, extended).drop_nulls("fold"),
        "fold", periods_per_year,
    )


def year_table(scores: pl.DataFrame, portfolio: pl.DataFrame, periods_per_year: int) -> pl.DataFrame:
    """Per calendar year (of the signal date; of the held day for portfolios) and model."""
    year = pl.col("Date").dt.year().alias("year")
    return _period_table(scores.with_columns(year), portfolio.with_columns(year), "year", periods_per_year)


def walk_forward_summary(
    daily_scores: pl.DataFrame,
    portfolio_daily: pl.DataFrame,
    blocks: Sequence[FoldBlock],
    horizons: Sequence[int],
    reference_model: str,
    bootstrap: BootstrapParams,
    periods_per_year: int,
) -> dict[str, Any]:
    """Per horizon: RankIC bootstrap intervals of every model, paired tests of ``reference_model``
    against every other model, and the per-fold and per-year tables (as lists of rows)."""
    out: dict[str, Any] = {
        "folds": [{"fold": b.fold, "test_start": b.start, "test_end": b.end} for b in blocks],
        "bootstrap": bootstrap.model_dump(),
        "reference_model": reference_model,
        "by_horizon": {},
    }
    for horizon in horizons:
        scores = daily_scores.filter(pl.col("horizon") == horizon).sort("model", "Date")
        portfolio = portfolio_daily.filter(pl.col("horizon") == horizon)
        models = scores.get_column("model").unique(maintain_order=True).to_list()
        intervals = {}
        for model in models:
            lo, hi = block_bootstrap_interval(scores.filter(pl.col("model") == model)["rank_ic"].to_numpy(), bootstrap)
            intervals[model] = {"ci_low": lo, "ci_high": hi}
        paired = (
            {other: paired_test(scores, reference_model, other, horizon, bootstrap)
             for other in models if other != reference_model}
            if reference_model in models else {}
        )
        out["by_horizon"][str(horizon)] = {
            "rank_ic_interval": intervals,
            "paired_vs_reference": paired,
            "per_fold": fold_table(scores, portfolio, blocks, periods_per_year).to_dicts(),
            "per_year": year_table(scores, portfolio, periods_per_year).to_dicts(),
        }
    return out


def rank_average(forecasts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """The seeds' forecasts of one model as one: per day and horizon, the mean of each seed's rank.

    Each seed's ``pred_{h}d`` becomes its centred cross-sectional rank on its day,
    ``(rank - 0.5) / n - 0.5`` in (-0.5, 0.5) (average ranks for ties, n = the day's non-null
    forecasts), and the seeds' ranks are averaged: a seed with a wider forecast scale weighs no more
    than another. Quantile columns are dropped (a rank average has no quantiles). One seed is
    returned as it is (its own forecasts, quantiles included).

    Args:
        forecasts: one table per seed (Date, Code, model, ``pred_{h}d``, ...), the same rows each.

    Raises:
        ValueError: no table; the tables differ in their (Date, Code, model) rows or columns.
    """
    if not forecasts:
        raise ValueError("rank_average: no seed forecasts")
    if len(forecasts) == 1:
        return forecasts[0]
    keys = ["Date", "Code", "model"]
    preds = sorted(c for c in forecasts[0].columns if c.startswith("pred_"))
    first = forecasts[0].select(keys).sort(keys)
    for seed, frame in enumerate(forecasts[1:], start=1):
        columns = sorted(c for c in frame.columns if c.startswith("pred_"))
        if columns != preds:
            raise ValueError(f"rank_average: seed 0 forecasts {preds} but seed {seed} forecasts {columns}")
        other = frame.select(keys).sort(keys)
        if not other.equals(first):
            only = pl.concat([first.join(other, on=keys, how="anti").with_columns(pl.lit(0).alias("seed")),
                              other.join(first, on=keys, how="anti").with_columns(pl.lit(seed).alias("seed"))])
            raise ValueError(f"rank_average: seeds 0 and {seed} forecast different (Date, Code, model) rows "
                             f"({first.height} vs {other.height}), e.g. rows only in one seed: "
                             f"{only.head(3).to_dicts()}")
    stacked = pl.concat([f.select(*keys, *preds).with_columns(pl.lit(s, pl.Int32).alias("seed"))
                         for s, f in enumerate(forecasts)])
    centred = [((pl.col(c).rank("average") - 0.5) / pl.col(c).count() - 0.5).over("seed", "Date", "model").alias(c)
               for c in preds]
    return (stacked.lazy().with_columns(centred)
            .group_by(keys).agg(pl.col(c).mean() for c in preds)
            .sort(keys).collect())


def seed_spread(
    seed_scores: pl.DataFrame, blocks: Sequence[FoldBlock], ensemble_per_fold: Sequence[dict[str, Any]],
    reference_model: str,
) -> list[dict[str, Any]]:
    """Per fold: the mean daily RankIC of each seed's own forecasts, their spread, and the ensemble's.

    Args:
        seed_scores: one horizon's daily scores of the seeds (seed, Date, rank_ic).
        blocks: the folds' test blocks.
        ensemble_per_fold: that horizon's per-fold table (rows with fold, model, rank_ic_mean).
        reference_model: the model whose per-fold RankIC is the seeds' rank-average.

    Returns:
        rows: fold, n_seeds, rank_ic_by_seed (seed order), min, max, std (ddof=1, null for one
        seed), ensemble (the rank-averaged forecast's mean RankIC on the fold).
    """
    require_columns(seed_scores, ["seed", "Date", "rank_ic"], "seed daily scores")
    per_seed = (
        assign_blocks(seed_scores, blocks).drop_nulls("fold")
        .group_by("fold", "seed").agg(pl.col("rank_ic").drop_nans().mean().alias("rank_ic_mean"))
        .sort("fold", "seed")
    )
    ensemble = {row["fold"]: row["rank_ic_mean"] for row in ensemble_per_fold if row["model"] == reference_model}
    rows = []
    for fold, group in per_seed.group_by("fold", maintain_order=True):
        values = group["rank_ic_mean"]
        rows.append({
            "fold": int(fold[0]), "n_seeds": group.height, "rank_ic_by_seed": values.to_list(),
            "min": values.min(), "max": values.max(), "std": values.std(ddof=1) if group.height > 1 else None,
            "ensemble": ensemble.get(int(fold[0])),
        })
    return rows
