"""Walk-forward: every model retrained per fold, fold test blocks stitched into one out-of-sample record."""

from atft_kedro.pipelines.walk_forward.pipeline import create_pipeline

__all__ = ["create_pipeline"]
