"""The inference pipeline: ``daily_ranking`` for the newest date (07_model_output, Parquet and CSV)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, pipeline

from atft_kedro.pipelines import named_node
from atft_kedro.pipelines.inference.nodes import build_daily_ranking, rank_newest_date


def create_pipeline(**kwargs) -> Pipeline:
    """The model's outputs on the newest date, then the ranking a portfolio manager opens."""
    return pipeline([
        named_node(rank_newest_date,
                   ["model_checkpoint", "normalizer", "features", "feature_manifest", "stock_graph",
                    "params:normalization", "params:horizons"],
                   "newest_forecasts"),
        named_node(build_daily_ranking,
                   ["newest_forecasts", "listed_info", "daily_quotes", "params:inference", "params:horizons"],
                   ["daily_ranking", "daily_ranking_csv", "daily_ranking_summary"]),
    ])
