"""The evaluation pipeline: predictions (07_model_output), metrics, plots and report (08_reporting)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, pipeline

from atft_kedro.pipelines import named_node
from atft_kedro.pipelines.evaluation.nodes import (
    combine_predictions,
    evaluate_models,
    forecast_atft_gat_fan,
    forecast_baselines,
    permutation_feature_importance,
    plot_evaluation,
    read_oracle_forecasts,
    write_report,
)

#: What forecasting the trained ATFT-GAT-FAN model reads (also each walk-forward seed's).
ATFT_FORECAST_INPUTS = ["model_checkpoint", "feature_manifest", "model_input", "stock_graph", "splits"]


def create_pipeline(**kwargs) -> Pipeline:
    """Every model's test forecasts, permutation importance, metrics, plots and the report."""
    return pipeline([
        named_node(forecast_atft_gat_fan, ATFT_FORECAST_INPUTS, "atft_predictions"),
        named_node(permutation_feature_importance, [*ATFT_FORECAST_INPUTS, "params:evaluation"],
                   "feature_importance"),
        named_node(forecast_baselines, ["baseline_models", "model_input", "splits", "params:baselines"],
                   "baseline_predictions"),
        named_node(read_oracle_forecasts, ["oracle_expected_returns", "splits", "params:horizons"],
                   "oracle_predictions"),
        named_node(combine_predictions, ["atft_predictions", "baseline_predictions", "oracle_predictions"],
                   "predictions"),
        named_node(evaluate_models,
                   ["predictions", "targets", "daily_quotes", "topix", "trading_calendar", "params:evaluation",
                    "params:labels"],
                   ["evaluation_metrics", "evaluation_daily_scores", "evaluation_deciles", "portfolio_returns"]),
        named_node(plot_evaluation,
                   ["evaluation_metrics", "evaluation_daily_scores", "evaluation_deciles", "portfolio_returns",
                    "feature_importance", "params:evaluation"],
                   ["evaluation_plots", "evaluation_plot_names"]),
        named_node(write_report,
                   ["evaluation_metrics", "evaluation_plot_names", "run_context", "splits", "feature_manifest",
                    "model_checkpoint", "model_input", "params:ingestion"],
                   "evaluation_report"),
    ])
