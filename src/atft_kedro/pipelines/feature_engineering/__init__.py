"""Feature engineering: canonical tables -> features, targets, feature_manifest, stock_graph."""

from atft_kedro.pipelines.feature_engineering.pipeline import create_pipeline

__all__ = ["create_pipeline"]
