"""Nodes of the inference pipeline.

``rank_newest_date`` normalises the newest ``window_days`` trading days of ``features``
with the fitted ``normalizer``, runs the checkpointed model on the newest date and
ranks every stock listed that day. A checkpoint trained on other features is refused
(the manifest error lists the differing names).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl

from atft_kedro.graph_packing import pack_graph
from atft_kedro.model.checkpoint import build_model_from_checkpoint, forecast_days
from atft_kedro.normalization.dense import build_dense_model_input
from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.pipelines.evaluation.nodes import quantile_column
from atft_kedro.schemas.manifest import FeatureManifest

logger = logging.getLogger(__name__)


def _newest_days(features: pl.DataFrame | pl.LazyFrame, n_days: int) -> pl.DataFrame:
    """The rows of the newest ``n_days`` dates (works on an eager or a lazy features table)."""
    lazy = features.lazy()
    dates = lazy.select(pl.col("Date").unique()).collect().get_column("Date").sort()
    if dates.len() == 0:
        raise ValueError("the features table is empty: run the feature_engineering pipeline first")
    return lazy.filter(pl.col("Date") >= dates[max(0, dates.len() - n_days)]).collect()


def rank_newest_date(
    model_checkpoint: dict,
    normalizer: dict[str, Any],
    features: pl.DataFrame | pl.LazyFrame,
    feature_manifest: dict[str, Any],
    stock_graph: pl.DataFrame,
    normalization: NormalizationParams,
    horizons: list[int],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Forecast and rank every stock on the newest date of ``features``.

    Returns:
        ``daily_ranking`` twice (Parquet and CSV): Date, Code, rank (1 = highest median forecast
        of the training's primary horizon), ``pred_{h}d`` (median) and ``q{p}_{h}d`` per horizon.
    """
    manifest = FeatureManifest.from_json_dict(feature_manifest)
    model = build_model_from_checkpoint(model_checkpoint, manifest)
    state = NormalizerState.from_json_dict(normalizer)
    if model_checkpoint.get("normalizer_identity") not in (None, state.identity):
        raise ValueError(
            f"the checkpoint was trained with normalizer {str(model_checkpoint['normalizer_identity'])[:12]} "
            f"but the current normalizer is {state.identity[:12]}: re-run training"
        )
    if [int(h) for h in horizons] != list(model_checkpoint["horizons"]):
        raise ValueError(
            f"params:horizons {list(horizons)} differ from the checkpoint's {model_checkpoint['horizons']}: "
            "re-run training with the current horizons"
        )
    window = model.params.window_days
    recent = _newest_days(features, window)
    empty_targets = recent.select("Date", "Code").with_columns(
        pl.lit(None, dtype=pl.Float64).alias(f"target_ret_{h}d") for h in horizons
    )
    model_input = build_dense_model_input(recent, empty_targets, manifest, state, normalization, tuple(horizons))
    newest = np.array([model_input.n_days - 1])
    graph = pack_graph(stock_graph, model_input.dates, model_input.codes)
    quantiles, _ = forecast_days(model, model_input, graph, newest, with_weights=False)
    listed = np.flatnonzero(model_input.mask[-1])
    values = quantiles[0, listed]  # [stocks, H, Q]
    primary = int(model_checkpoint["training_params"]["primary_horizon"])
    columns: dict[str, np.ndarray] = {}
    for h_pos, horizon in enumerate(horizons):
        columns[f"pred_{horizon}d"] = values[:, h_pos, model.params.median_index].astype(np.float64)
        for q_pos, q in enumerate(model.params.quantiles):
            columns[quantile_column(q, horizon)] = values[:, h_pos, q_pos].astype(np.float64)
    newest_date = model_input.dates[-1].astype("datetime64[D]").item()
    ranking = (
        pl.DataFrame({"Code": model_input.codes[listed].astype(str), **columns})
        .with_columns(pl.lit(newest_date, dtype=pl.Date).alias("Date"))
        .with_columns(pl.col(f"pred_{primary}d").rank("ordinal", descending=True).cast(pl.Int32).alias("rank"))
        .sort("rank")
        .select("Date", "Code", "rank", pl.exclude("Date", "Code", "rank"))
    )
    logger.info("daily_ranking for %s: %d stocks ranked by their %d-day forecast", newest_date, ranking.height, primary)
    return ranking, ranking
