"""The inference pipeline: ``daily_ranking`` for the newest date (07_model_output, Parquet and CSV)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from atft_kedro.pipelines.inference.nodes import build_daily_ranking, rank_newest_date


def create_pipeline(**kwargs) -> Pipeline:
    """The model's outputs on the newest date, then the ranking a portfolio manager opens."""
    return pipeline(
        [
            node(
                rank_newest_date,
                inputs=["model_checkpoint", "normalizer", "features", "feature_manifest", "stock_graph",
                        "params:normalization", "params:horizons"],
                outputs="newest_forecasts",
                name="rank_newest_date",
            ),
            node(
                build_daily_ranking,
                inputs=["newest_forecasts", "listed_info", "daily_quotes", "params:inference", "params:horizons"],
                outputs=["daily_ranking", "daily_ranking_csv", "daily_ranking_summary"],
                name="build_daily_ranking",
            ),
        ]
    )
