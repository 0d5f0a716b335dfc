"""The normalization pipeline: ``splits``, ``normalizer`` and ``model_input`` (05_model_input)."""

from atft_kedro.pipelines.normalization.pipeline import create_pipeline

__all__ = ["create_pipeline"]
