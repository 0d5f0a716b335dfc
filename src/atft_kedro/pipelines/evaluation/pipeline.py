"""The evaluation pipeline: predictions (07_model_output), metrics, plots and report (08_reporting)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

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


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                forecast_atft_gat_fan,
                inputs=["model_checkpoint", "feature_manifest", "model_input", "stock_graph", "splits"],
                outputs="atft_predictions",
                name="forecast_atft_gat_fan",
            ),
            node(
                permutation_feature_importance,
                inputs=["model_checkpoint", "feature_manifest", "model_input", "stock_graph", "splits",
                        "params:evaluation"],
                outputs="feature_importance",
                name="permutation_feature_importance",
            ),
            node(
                forecast_baselines,
                inputs=["baseline_models", "model_input", "splits", "params:baselines"],
                outputs="baseline_predictions",
                name="forecast_baselines",
            ),
            node(
                read_oracle_forecasts,
                inputs=["oracle_expected_returns", "splits", "params:horizons"],
                outputs="oracle_predictions",
                name="read_oracle_forecasts",
            ),
            node(
                combine_predictions,
                inputs=["atft_predictions", "baseline_predictions", "oracle_predictions"],
                outputs="predictions",
                name="combine_predictions",
            ),
            node(
                evaluate_models,
                inputs=["predictions", "targets", "daily_quotes", "topix", "trading_calendar", "params:evaluation",
                        "params:labels"],
                outputs=["evaluation_metrics", "evaluation_daily_scores", "evaluation_deciles", "portfolio_returns"],
                name="evaluate_models",
            ),
            node(
                plot_evaluation,
                inputs=["evaluation_metrics", "evaluation_daily_scores", "evaluation_deciles", "portfolio_returns",
                        "feature_importance", "params:evaluation"],
                outputs=["evaluation_plots", "evaluation_plot_names"],
                name="plot_evaluation",
            ),
            node(
                write_report,
                inputs=["evaluation_metrics", "evaluation_plot_names", "run_context", "splits", "feature_manifest",
                        "model_checkpoint", "model_input", "params:ingestion"],
                outputs="evaluation_report",
                name="write_report",
            ),
        ]
    )
