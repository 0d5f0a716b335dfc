"""Nodes of the evaluation pipeline.

Forecasts of every model are made for the same test dates (``splits.test``) and put in
one long table ``predictions`` (Date, Code, model, ``pred_{h}d`` and, for the ATFT-GAT-FAN
model, its quantiles ``q{p}_{h}d``); ``evaluate_models`` then scores them all with the
library in ``atft_kedro.evaluation``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from atft_kedro import exchange_calendar
from atft_kedro.baselines.models import momentum_forecast, predict_baseline, stack_rows
from atft_kedro.baselines.params import BaselineParams
from atft_kedro.evaluation.evaluate import EvaluationResult, evaluate_predictions
from atft_kedro.evaluation.importance import evenly_spaced, permutation_importance
from atft_kedro.evaluation.params import EvaluationParams
from atft_kedro.evaluation.plots import make_figures
from atft_kedro.evaluation.report import render_report
from atft_kedro.graph_packing import pack_graph
from atft_kedro.labels import LabelParams, period_returns
from atft_kedro.model.checkpoint import build_model_from_checkpoint, forecast_days
from atft_kedro.pipelines.ingestion.params import IngestionParams
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.model_input import ModelInput, Splits
from atft_kedro.schemas.model_output import quantile_column

logger = logging.getLogger(__name__)

MODEL_NAME = "atft_gat_fan"


def _test_days(model_input: ModelInput, splits: Splits) -> np.ndarray:
    test = splits.test
    days = model_input.day_indices(test.start, test.end)
    if days.size == 0:
        raise ValueError(f"the model input has no trading day in the test split {test.start}..{test.end}")
    return days


def _long_frame(model_input: ModelInput, days: np.ndarray, stocks: np.ndarray, columns: dict[str, np.ndarray],
                model: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "Date": model_input.dates[days].astype("datetime64[D]"),
            "Code": model_input.codes[stocks].astype(str),
            "model": np.full(days.shape[0], model),
            **{name: np.asarray(values, dtype=np.float64) for name, values in columns.items()},
        }
    ).with_columns(pl.col("Date").cast(pl.Date))


def forecast_atft_gat_fan(
    model_checkpoint: dict,
    feature_manifest: FeatureManifest,
    model_input: ModelInput,
    stock_graph: pl.DataFrame,
    splits: Splits,
) -> pl.DataFrame:
    """Quantile forecasts of the trained model for every test day.

    The checkpoint is refused if it was trained on another feature manifest. The model runs
    on the checkpoint's ``training.device``, ``training.forecast_days_per_batch`` days per pass.

    Returns:
        ``atft_predictions``: Date, Code, model, ``pred_{h}d`` = median, ``q{p}_{h}d``.
    """
    model = build_model_from_checkpoint(model_checkpoint, feature_manifest)
    days = _test_days(model_input, splits)
    graph = pack_graph(stock_graph, model_input.dates, model_input.codes)
    quantiles = forecast_days(model, model_input, graph, days)
    day_pos, stocks = np.nonzero(model_input.mask[days])
    values = quantiles[day_pos, stocks]  # [rows, H, Q]
    q_levels = list(model.params.quantiles)
    columns: dict[str, np.ndarray] = {}
    for h_pos, horizon in enumerate(model_input.horizons.tolist()):
        columns[f"pred_{horizon}d"] = values[:, h_pos, model.params.median_index].astype(np.float64)
        for q_pos, q in enumerate(q_levels):
            columns[quantile_column(q, horizon)] = values[:, h_pos, q_pos].astype(np.float64)
    frame = _long_frame(model_input, days[day_pos], stocks, columns, MODEL_NAME)
    logger.info("ATFT-GAT-FAN forecasts: %s rows over %d test days", f"{frame.height:,}", days.size)
    return frame


def permutation_feature_importance(
    model_checkpoint: dict,
    feature_manifest: FeatureManifest,
    model_input: ModelInput,
    stock_graph: pl.DataFrame,
    splits: Splits,
    evaluation: EvaluationParams,
) -> dict[str, Any]:
    """Permutation importance of every feature and feature group on validation days.

    Each input is shuffled across the stocks of each day (``atft_kedro.evaluation.importance``);
    its importance is the drop of the mean daily RankIC at ``evaluation.primary_horizon`` over
    ``evaluation.importance.days`` validation days spread evenly over the split. Every group
    is scored; features one by one up to ``evaluation.importance.max_features``, from the
    groups with the largest drop first.

    Returns:
        ``feature_importance``: method, horizon, scored dates, ``base_rank_ic``, ``features``
        (name -> drop) and ``groups`` (manifest group -> drop), each sorted by drop.
    """
    model = build_model_from_checkpoint(model_checkpoint, feature_manifest)
    validation = splits.validation
    days = evenly_spaced(model_input.day_indices(validation.start, validation.end), evaluation.importance.days)
    if days.size == 0:
        raise ValueError(f"the model input has no trading day in the validation split {validation.start}.."
                         f"{validation.end}: no permutation importance")
    packed: dict[tuple, Any] = {}

    def point_forecasts(part: ModelInput, part_days: np.ndarray) -> np.ndarray:
        key = (str(part.dates[0]), len(part.dates))
        if key not in packed:  # every call shares one window slice
            packed[key] = pack_graph(stock_graph, part.dates, part.codes)
        quantiles = forecast_days(model, part, packed[key], part_days)
        return quantiles[..., model.params.median_index]

    groups: dict[str, list[str]] = {}
    for spec in feature_manifest.features:
        groups.setdefault(spec.group, []).append(spec.name)
    started = time.perf_counter()
    result = permutation_importance(
        point_forecasts, model_input, days, model.params.window_days, groups, evaluation.primary_horizon,
        evaluation.min_stocks_per_day, evaluation.importance.seed, evaluation.importance.max_features,
    )
    by_drop = lambda d: dict(sorted(d.items(), key=lambda kv: -kv[1] if np.isfinite(kv[1]) else np.inf))  # noqa: E731
    logger.info("permutation importance of %d features and %d groups on %d validation days in %.1f s "
                "(base RankIC %.4f)", len(result["features"]), len(groups), days.size,
                time.perf_counter() - started, result["base_rank_ic"])
    return {
        "method": "permutation: drop of mean daily validation RankIC when the input is shuffled across the "
                  "stocks of each day",
        "horizon": evaluation.primary_horizon,
        "dates": [str(d) for d in model_input.dates[days].astype("datetime64[D]")],
        "base_rank_ic": result["base_rank_ic"],
        "features_scored": f"{len(result['features'])} of {len(feature_manifest.features)}",
        "features": by_drop(result["features"]),
        "groups": by_drop(result["groups"]),
    }


def forecast_baselines(
    baseline_models: dict[str, Any],
    model_input: ModelInput,
    splits: Splits,
    baselines: BaselineParams,
) -> pl.DataFrame:
    """Forecasts of the LightGBM, gradient-boosting, ridge and 20-day momentum baselines on the test days."""
    if list(baseline_models["feature_names"]) != list(model_input.feature_names):
        raise ValueError("the baseline models were fitted on other features than the model input: "
                         "re-run `kedro run --pipelines training`")
    days = _test_days(model_input, splits)
    x, _, day, stock = stack_rows(model_input.features, model_input.mask, model_input.targets, days)
    horizons = model_input.horizons.tolist()
    momentum_name = baselines.momentum.feature
    if momentum_name not in model_input.feature_names:
        raise ValueError(f"baselines.momentum.feature '{momentum_name}' is not a model feature")
    frames = []
    forecasts = {
        "lightgbm": predict_baseline(baseline_models["lightgbm"], x),
        "hist_gbm": predict_baseline(baseline_models["hist_gbm"], x),
        "ridge": predict_baseline(baseline_models["ridge"], x),
        "momentum_20d": momentum_forecast(
            x[:, list(model_input.feature_names).index(momentum_name)].astype(np.float64), len(horizons)
        ),
    }
    for name, values in forecasts.items():
        columns = {f"pred_{h}d": values[:, i] for i, h in enumerate(horizons)}
        frames.append(_long_frame(model_input, day, stock, columns, name))
    return pl.concat(frames)


def read_oracle_forecasts(
    oracle_expected_returns: pl.DataFrame, splits: Splits, horizons: list[int]
) -> pl.DataFrame:
    """The simulated market's true expected returns on the test days (the ceiling); empty on real data."""
    test = splits.test
    return (
        oracle_expected_returns.filter(pl.col("Date").is_between(test.start, test.end))
        .select(
            "Date", "Code", pl.lit("oracle").alias("model"),
            *(pl.col(f"exp_ret_{h}d").alias(f"pred_{h}d") for h in horizons),
        )
    )


def combine_predictions(*frames: pl.DataFrame) -> pl.DataFrame:
    """One long table of every model's forecasts, sorted by model, Date, Code."""
    non_empty = [f for f in frames if f.height]
    return pl.concat(non_empty, how="diagonal_relaxed").sort("model", "Date", "Code")


def evaluate_models(
    predictions: pl.DataFrame,
    targets: pl.DataFrame,
    daily_quotes: pl.DataFrame,
    topix: pl.DataFrame,
    trading_calendar: pl.DataFrame,
    evaluation: EvaluationParams,
    labels: LabelParams,
) -> tuple[dict[str, Any], pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """IC/RankIC, hit rates, deciles and portfolios of every model over the whole test period.

    Portfolios trade at the label's price (``params:labels``: next open or next close), so
    their P&L and the IC measure the same return.

    Returns:
        ``evaluation_metrics`` (JSON), ``evaluation_daily_scores``, ``evaluation_deciles``,
        ``portfolio_returns`` (daily series of every portfolio).
    """
    calendar = exchange_calendar.trading_days(trading_calendar)
    result = evaluate_predictions(
        predictions, targets, period_returns(daily_quotes, labels),
        topix.select("Date", pl.col(labels.index_price_column).alias("Close")), calendar, evaluation, labels,
    )
    primary = result.metrics["by_horizon"][str(evaluation.primary_horizon)]["models"]
    logger.info(
        "Test RankIC at %d days: %s",
        evaluation.primary_horizon,
        ", ".join(f"{m}={v['rank_ic']['mean']:.4f}" for m, v in primary.items() if v.get("rank_ic")),
    )
    return result.metrics, result.daily_scores, result.deciles, result.portfolio_daily


def plot_evaluation(
    evaluation_metrics: dict[str, Any],
    evaluation_daily_scores: pl.DataFrame,
    evaluation_deciles: pl.DataFrame,
    portfolio_returns: pl.DataFrame,
    feature_importance: dict[str, Any],
    evaluation: EvaluationParams,
) -> tuple[dict[str, Figure], list[str]]:
    """Every report figure and their names, in report order.

    The catalog's ``MatplotlibDataset`` writes each figure of the dict to ``<key>`` inside
    ``data/08_reporting/plots``, so the keys carry the ``.png`` suffix.
    """
    result = EvaluationResult(evaluation_metrics, evaluation_daily_scores, evaluation_deciles, portfolio_returns)
    figures = make_figures(result, feature_importance, evaluation)
    return {f"{name}.png": figure for name, figure in figures.items()}, list(figures)


#: Where the catalog writes ``evaluation_plots``, relative to ``evaluation_report`` (both in 08_reporting).
PLOTS_FOLDER = "plots"


def write_report(
    evaluation_metrics: dict[str, Any],
    plot_names: list[str],
    run_context: dict[str, Any],
    splits: Splits,
    feature_manifest: FeatureManifest,
    model_checkpoint: dict,
    model_input: ModelInput,
    ingestion: IngestionParams,
) -> str:
    """The Markdown report: the run's details (data source, universe, date ranges, label, manifest hash,
    model size, MLflow run, git commit), then the comparison table, then the figures (relative links)."""
    parsed = splits
    test_days = model_input.day_indices(parsed.test.start, parsed.test.end)
    listed = model_input.mask[test_days].sum(axis=1) if test_days.size else np.zeros(1)

    def span(r: Any) -> str:
        return f"{r.start} .. {r.end} ({model_input.day_indices(r.start, r.end).size} trading days)"

    n_weights = sum(int(np.prod(tuple(v.shape))) for v in model_checkpoint["state_dict"].values())
    model = model_checkpoint["model_params"]
    summary = model_checkpoint.get("history_summary", {})
    header = {
        "data source": f"{ingestion.source} (environment `{run_context.get('env')}`)",
        "universe": f"{model_input.n_stocks:,} stocks in the model input; {float(np.mean(listed)):,.0f} listed per "
                    f"test day on average",
        "train": span(parsed.train),
        "validation": span(parsed.validation),
        "test": span(parsed.test),
        "label": evaluation_metrics.get("labels", {}).get("formula"),
        "features": f"{len(feature_manifest)} (manifest hash `{str(model_checkpoint['manifest_hash'])[:16]}`)",
        "model": f"ATFT-GAT-FAN, {n_weights:,} weights (hidden {model['hidden_size']}, window {model['window_days']} "
                 f"days), best epoch {summary.get('best_epoch', 'n/a')}",
        "MLflow run": run_context.get("mlflow_run_id"),
        "git commit": run_context.get("git_commit"),
    }
    if parsed.folds:
        header["walk-forward folds"] = (f"{len(parsed.folds)}, test blocks {parsed.folds[0].test.start} .. "
                                        f"{parsed.folds[-1].test.end} (`kedro run --pipelines walk_forward`)")
    return render_report(evaluation_metrics, {name: f"{PLOTS_FOLDER}/{name}.png" for name in plot_names}, header)
