"""Training: ATFT-GAT-FAN on the train split (early-stopped on validation) and the baseline models."""

from atft_kedro.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
