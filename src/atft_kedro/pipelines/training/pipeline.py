"""The training pipeline: model checkpoint and history, baseline models (06_models)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, pipeline

from atft_kedro.pipelines import named_node
from atft_kedro.pipelines.training.nodes import train_atft_gat_fan, train_baseline_models


def create_pipeline(**kwargs) -> Pipeline:
    """ATFT-GAT-FAN trained and early-stopped on the splits; the baselines fitted on the same rows."""
    return pipeline([
        named_node(train_atft_gat_fan,
                   ["model_input", "splits", "stock_graph", "feature_manifest", "normalizer", "params:model",
                    "params:loss", "params:training"],
                   ["model_checkpoint", "training_history"]),
        named_node(train_baseline_models, ["model_input", "splits", "params:baselines"], "baseline_models"),
    ])
