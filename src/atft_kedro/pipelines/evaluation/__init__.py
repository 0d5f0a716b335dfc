"""Evaluation: every model's test-period forecasts side by side, metrics, plots and the report."""

from atft_kedro.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
