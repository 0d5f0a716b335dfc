"""Inference: tomorrow's ranking of every stock from the trained model and the newest features."""

from atft_kedro.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
