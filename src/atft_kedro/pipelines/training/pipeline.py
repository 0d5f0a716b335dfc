"""The training pipeline: model checkpoint and history, baseline models (06_models)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from atft_kedro.pipelines.training.nodes import train_atft_gat_fan, train_baseline_models


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                train_atft_gat_fan,
                inputs=["model_input", "splits", "stock_graph", "feature_manifest", "normalizer",
                        "params:model", "params:loss", "params:training"],
                outputs=["model_checkpoint", "training_history"],
                name="train_atft_gat_fan",
            ),
            node(
                train_baseline_models,
                inputs=["model_input", "splits", "params:baselines"],
                outputs="baseline_models",
                name="train_baseline_models",
            ),
        ]
    )
