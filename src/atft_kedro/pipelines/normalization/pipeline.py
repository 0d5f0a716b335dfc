"""The normalization pipeline: ``make_splits`` -> ``fit_normalizer`` -> ``build_model_input``."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from atft_kedro.pipelines.normalization.nodes import build_model_input, fit_normalizer, make_splits


def create_pipeline(**kwargs) -> Pipeline:
    """Splits on the exchange calendar, the normalizer fitted on train, the dense model input."""
    return pipeline(
        [
            node(
                make_splits,
                inputs=["trading_calendar", "features", "params:normalization", "params:horizons"],
                outputs="splits",
                name="make_splits",
            ),
            node(
                fit_normalizer,
                inputs=["features", "feature_manifest", "splits", "params:normalization"],
                outputs="normalizer",
                name="fit_normalizer",
            ),
            node(
                build_model_input,
                inputs=[
                    "features",
                    "targets",
                    "feature_manifest",
                    "normalizer",
                    "params:normalization",
                    "params:horizons",
                ],
                outputs="model_input",
                name="build_model_input",
            ),
        ]
    )
