"""Nodes of the walk-forward pipeline.

Each fold reuses the nodes of the single chain (normalizer, model input, training,
forecasts) inside its own namespace ``fold_{k}``; the nodes here select a fold's dates,
apply the walk-forward's training changes, stitch the fold forecasts and score the stitched
out-of-sample record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from atft_kedro import exchange_calendar
from atft_kedro.evaluation.evaluate import EvaluationResult, json_ready, ordered_horizons
from atft_kedro.evaluation.params import EvaluationParams
from atft_kedro.evaluation.plots import plot_fold_rank_ic, plot_walk_forward_pnl
from atft_kedro.evaluation.report import render_walk_forward_report
from atft_kedro.evaluation.metrics import align_forecasts, daily_scores
from atft_kedro.evaluation.walk_forward import (
    FoldBlock,
    check_tiling,
    rank_average,
    seed_spread,
    walk_forward_summary,
)
from atft_kedro.labels import LabelParams
from atft_kedro.model.params import LossParams, ModelParams, TrainingParams
from atft_kedro.pipelines.evaluation.nodes import MODEL_NAME, PLOTS_FOLDER, evaluate_models
from atft_kedro.pipelines.training.nodes import train_atft_gat_fan
from atft_kedro.pipelines.walk_forward.params import WalkForwardParams
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.schemas.model_input import ModelInput, Splits

logger = logging.getLogger(__name__)


def fold_splits_selector(fold: int) -> Callable[[Splits], Splits]:
    """The node function that turns ``splits`` into fold ``fold``'s train -> validation -> test chain."""

    def select_fold_splits(splits: Splits) -> Splits:
        chain = splits.fold_chain(fold)
        logger.info("fold %d: train %s..%s, validation %s..%s, test %s..%s", fold, chain.train.start,
                    chain.train.end, chain.validation.start, chain.validation.end, chain.test.start, chain.test.end)
        return chain

    select_fold_splits.__doc__ = f"Fold {fold} of ``splits.folds`` as a train -> validation -> test chain."
    return select_fold_splits


def seed_trainer(seed: int) -> Callable[..., tuple[dict, pl.DataFrame]]:
    """The node function that trains seed ``seed`` (0-based) of a fold's ATFT-GAT-FAN."""

    def train_seed_atft_gat_fan(
        model_input: ModelInput,
        splits: Splits,
        stock_graph: pl.DataFrame,
        feature_manifest: FeatureManifest,
        normalizer: NormalizerState,
        model: ModelParams,
        loss: LossParams,
        training: TrainingParams,
        walk_forward: WalkForwardParams,
    ) -> tuple[dict, pl.DataFrame]:
        seed_training = walk_forward.seed_training(training, seed)
        logger.info("walk-forward seed %d: training.seed %d%s", seed, seed_training.seed,
                    f", training changes {walk_forward.training}" if walk_forward.training else "")
        return train_atft_gat_fan(model_input, splits, stock_graph, feature_manifest, normalizer, model, loss,
                                  seed_training)

    train_seed_atft_gat_fan.__doc__ = (
        f"``train_atft_gat_fan`` on one fold with ``params:training`` changed by ``walk_forward.training`` and "
        f"the random seed ``training.seed + {seed}``."
    )
    return train_seed_atft_gat_fan


def rank_average_seeds(*seed_predictions: pl.DataFrame) -> pl.DataFrame:
    """A fold's ATFT-GAT-FAN forecasts: the rank-average of its seeds' (one seed: its own forecasts)."""
    averaged = rank_average(seed_predictions)
    if len(seed_predictions) > 1:
        logger.info("rank-averaged %d seeds' forecasts: %s rows", len(seed_predictions), f"{averaged.height:,}")
    return averaged


def stitch_seed_forecasts(walk_forward: WalkForwardParams, *fold_seed_predictions: pl.DataFrame) -> pl.DataFrame:
    """Every seed's own ATFT-GAT-FAN forecasts, fold-major (fold 0 seed 0, fold 0 seed 1, ...), with fold and seed.

    Raises:
        ValueError: the number of tables is not a multiple of ``walk_forward.seeds`` (an environment
            set another seed count than conf/base, from which the pipeline is built).
    """
    seeds = walk_forward.seeds
    if len(fold_seed_predictions) % seeds:
        raise ValueError(
            f"walk_forward.seeds is {seeds} but the walk_forward pipeline has {len(fold_seed_predictions)} seed "
            "namespaces in all: walk_forward.seeds must be the same in every environment as in conf/base "
            "(the pipeline is built from conf/base)"
        )
    frames = [frame.select("Date", "Code", pl.col("^pred_\\d+d$")).with_columns(
                  pl.lit(i // seeds, pl.Int32).alias("fold"), pl.lit(i % seeds, pl.Int32).alias("seed"))
              for i, frame in enumerate(fold_seed_predictions)]
    return pl.concat(frames, how="diagonal_relaxed").sort("fold", "seed", "Date", "Code")


def fold_blocks(splits: Splits) -> list[FoldBlock]:
    """The test block of every fold of ``splits``, in fold order."""
    return [FoldBlock(k, f.test.start, f.test.end) for k, f in enumerate(splits.folds)]


def stitch_fold_forecasts(splits: Splits, trading_calendar: pl.DataFrame,
                          *fold_predictions: pl.DataFrame) -> pl.DataFrame:
    """One table of every model's out-of-sample forecasts: each fold's own test block, stitched.

    Raises:
        ValueError: the number of fold tables is not the number of folds in ``splits``; the
            test blocks do not tile consecutive trading days; a fold forecast a date outside
            its own block.
    """
    blocks = fold_blocks(splits)
    if len(fold_predictions) != len(blocks):
        raise ValueError(
            f"splits define {len(blocks)} walk-forward folds but the walk_forward pipeline has "
            f"{len(fold_predictions)} fold namespaces: normalization.folds.count must be the same in every "
            "environment as in conf/base (the pipeline is built from conf/base)"
        )
    check_tiling(blocks, exchange_calendar.trading_days(trading_calendar).to_list())
    frames = []
    for block, frame in zip(blocks, fold_predictions, strict=True):
        outside = frame.filter(~pl.col("Date").is_between(block.start, block.end))
        if outside.height:
            raise ValueError(
                f"fold_{block.fold}.predictions has {outside.height} rows outside its test block "
                f"{block.start}..{block.end}, e.g. {outside.select('Date', 'Code', 'model').head(3).to_dicts()}"
            )
        frames.append(frame.with_columns(pl.lit(block.fold, dtype=pl.Int32).alias("fold")))
    stitched = pl.concat(frames, how="diagonal_relaxed").sort("model", "Date", "Code")
    logger.info("walk-forward: %s forecasts over %d signal days in %d folds, %s..%s", f"{stitched.height:,}",
                stitched["Date"].n_unique(), len(blocks), blocks[0].start, blocks[-1].end)
    return stitched


def evaluate_walk_forward(
    walk_forward_predictions: pl.DataFrame,
    walk_forward_seed_predictions: pl.DataFrame,
    targets: pl.DataFrame,
    daily_quotes: pl.DataFrame,
    topix: pl.DataFrame,
    trading_calendar: pl.DataFrame,
    splits: Splits,
    evaluation: EvaluationParams,
    labels: LabelParams,
    walk_forward: WalkForwardParams,
) -> tuple[dict[str, Any], pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Every metric of the evaluation report over the stitched period, plus the walk-forward extras.

    Returns:
        ``walk_forward_metrics`` (the evaluation metrics with a ``walk_forward`` block: folds,
        bootstrap intervals, paired tests of ATFT-GAT-FAN against each model, per-fold and
        per-year tables, the seed spread of RankIC per fold), ``walk_forward_daily_scores``, ``walk_forward_deciles``,
        ``walk_forward_portfolio_returns``.
    """
    metrics, scores, deciles, portfolio = evaluate_models(
        walk_forward_predictions, targets, daily_quotes, topix, trading_calendar, evaluation, labels)
    parsed = splits
    summary = walk_forward_summary(
        scores, portfolio, fold_blocks(splits), ordered_horizons(evaluation), MODEL_NAME,
        walk_forward.bootstrap, evaluation.periods_per_year,
    )
    summary["folds"] = [
        {**row, "train_start": f.train.start, "train_end": f.train.end, "validation_start": f.validation.start,
         "validation_end": f.validation.end}
        for row, f in zip(summary["folds"], parsed.folds, strict=True)
    ]
    blocks = fold_blocks(splits)
    for h in ordered_horizons(evaluation):
        panel = align_forecasts(
            walk_forward_seed_predictions.with_columns(pl.format("seed_{}", pl.col("seed")).alias("model")),
            targets, h)
        scores_h = (daily_scores(panel, pred_col="pred", target_col="target",
                                 min_stocks=evaluation.min_stocks_per_day, by=["model"])
                    .with_columns(pl.col("model").str.strip_prefix("seed_").cast(pl.Int32).alias("seed")))
        summary["by_horizon"][str(h)]["seed_spread"] = seed_spread(
            scores_h, blocks, summary["by_horizon"][str(h)]["per_fold"], MODEL_NAME)
    metrics["walk_forward"] = json_ready(summary)
    primary = metrics["walk_forward"]["by_horizon"][str(evaluation.primary_horizon)]["paired_vs_reference"]
    logger.info("walk-forward paired RankIC t (ATFT-GAT-FAN minus model) at %d days: %s", evaluation.primary_horizon,
                ", ".join(f"{m}={v['t_stat_newey_west']}" for m, v in primary.items()))
    return metrics, scores, deciles, portfolio


def plot_walk_forward(
    walk_forward_metrics: dict[str, Any],
    walk_forward_daily_scores: pl.DataFrame,
    walk_forward_portfolio_returns: pl.DataFrame,
    evaluation: EvaluationParams,
) -> tuple[dict[str, Figure], list[str]]:
    """The cumulative long-short P&L with fold boundaries and the per-fold RankIC, per horizon."""
    result = EvaluationResult(walk_forward_metrics, walk_forward_daily_scores, pl.DataFrame(),
                              walk_forward_portfolio_returns)
    starts = [row["test_start"] for row in walk_forward_metrics["walk_forward"]["folds"]]
    figures: dict[str, Figure] = {}
    for h in ordered_horizons(evaluation):
        models = list(result.metrics["by_horizon"][str(h)]["models"])
        daily = result.portfolio_daily.filter((pl.col("horizon") == h) & (pl.col("portfolio") == "long_short"))
        figures[f"walk_forward_long_short_{h}d"] = plot_walk_forward_pnl(
            daily, models, starts,
            f"Walk-forward: top-minus-bottom {evaluation.n_quantiles}-bucket long-short, {h}-day horizon, net",
        )
        per_fold = walk_forward_metrics["walk_forward"]["by_horizon"][str(h)]["per_fold"]
        figures[f"fold_rank_ic_{h}d"] = plot_fold_rank_ic(per_fold, models, f"Mean RankIC per fold, {h}-day horizon")
    return {f"{name}.png": figure for name, figure in figures.items()}, list(figures)


def write_walk_forward_report(walk_forward_metrics: dict[str, Any], plot_names: list[str]) -> str:
    """The walk-forward report: the stitched comparison with intervals and paired tests first."""
    return render_walk_forward_report(walk_forward_metrics, {n: f"{PLOTS_FOLDER}/{n}.png" for n in plot_names})
