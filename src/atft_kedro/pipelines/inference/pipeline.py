"""The inference pipeline: ``daily_ranking`` for the newest date (07_model_output, Parquet and CSV)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from atft_kedro.pipelines.inference.nodes import rank_newest_date


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                rank_newest_date,
                inputs=["model_checkpoint", "normalizer", "features", "feature_manifest", "stock_graph",
                        "params:normalization", "params:horizons"],
                outputs=["daily_ranking", "daily_ranking_csv"],
                name="rank_newest_date",
            )
        ]
    )
