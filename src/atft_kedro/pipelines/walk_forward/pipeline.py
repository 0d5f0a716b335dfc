"""The walk-forward pipeline: the single chain's nodes once per fold (namespace ``fold_{k}``), then
the stitched out-of-sample evaluation and its report (``08_reporting/walk_forward``).

Per fold: its dates from ``splits`` -> a normalizer fitted on its training dates only -> its
model input -> S seeds of ATFT-GAT-FAN (namespaces ``fold_{k}.seed_{s}``, early-stopped on its
validation dates, each forecasting the test block) and every baseline -> the fold's forecasts
(ATFT-GAT-FAN: the seeds' rank-average). The fold test blocks tile one continuous period, which
``stitch_fold_forecasts`` checks and ``evaluate_walk_forward`` scores.

Folds and seeds are independent namespaces, so a parallel runner
(``--runner atft_kedro.runner.DaskRunner``) trains them side by side; the training and forecast
nodes of ATFT-GAT-FAN carry the tag ``gpu`` (:data:`atft_kedro.runner.GPU_TAG`): on a cluster
whose workers offer GPUs each asks for one.

The numbers of folds and seeds are structural: Kedro builds pipelines before it reads an
environment's configuration, so they are read from ``conf/base/parameters_normalization.yml``
(``normalization.folds.count``) and ``conf/base/parameters_walk_forward.yml``
(``walk_forward.seeds``) when the pipelines are registered; environments change the fold sizes,
not the counts (a different count in an environment stops the run in ``stitch_fold_forecasts``,
``stitch_seed_forecasts`` or ``select_fold_splits`` with a message saying so).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import yaml
from kedro.pipeline import Pipeline, pipeline

from atft_kedro.pipelines import named_node
from atft_kedro.pipelines.evaluation.pipeline import create_pipeline as evaluation_pipeline
from atft_kedro.pipelines.normalization.pipeline import create_pipeline as normalization_pipeline
from atft_kedro.pipelines.training.pipeline import create_pipeline as training_pipeline
from atft_kedro.pipelines.walk_forward.nodes import (
    evaluate_walk_forward,
    fold_splits_selector,
    plot_walk_forward,
    rank_average_seeds,
    seed_trainer,
    stitch_fold_forecasts,
    stitch_seed_forecasts,
    write_walk_forward_report,
)
from atft_kedro.runner import GPU_TAG

#: Where the fold count is read from (the project's conf/base, next to src/).
BASE_NORMALIZATION_CONF = Path(__file__).resolve().parents[4] / "conf" / "base" / "parameters_normalization.yml"
#: Where the seed count is read from.
BASE_WALK_FORWARD_CONF = Path(__file__).resolve().parents[4] / "conf" / "base" / "parameters_walk_forward.yml"
#: The parameters every seed reads.
SEED_PARAMETERS = {"params:model", "params:loss", "params:training", "params:walk_forward"}
#: The parameters every fold reads.
FOLD_PARAMETERS = {"params:normalization", "params:horizons", "params:model", "params:loss", "params:training",
                   "params:walk_forward", "params:baselines"}

#: Datasets every fold reads as they are (not namespaced).
SHARED_INPUTS = ("features", "targets", "feature_manifest", "stock_graph", "oracle_expected_returns")


def registered_fold_count(conf_file: Path = BASE_NORMALIZATION_CONF) -> int:
    """``normalization.folds.count`` of ``conf/base`` (0 when the project's conf is not beside the code)."""
    if not conf_file.exists():
        return 0
    with conf_file.open(encoding="utf-8") as f:
        return int(yaml.safe_load(f)["normalization"]["folds"]["count"])


def registered_seed_count(conf_file: Path = BASE_WALK_FORWARD_CONF) -> int:
    """``walk_forward.seeds`` of ``conf/base`` (1 when the project's conf is not beside the code)."""
    if not conf_file.exists():
        return 1
    with conf_file.open(encoding="utf-8") as f:
        return int(yaml.safe_load(f)["walk_forward"]["seeds"])


def seed_template(seed: int) -> Pipeline:
    """Seed ``seed`` of a fold's ATFT-GAT-FAN: training and the test block's forecasts (before namespacing)."""
    return pipeline([
        named_node(seed_trainer(seed),
                   ["model_input", "splits", "stock_graph", "feature_manifest", "normalizer", "params:model",
                    "params:loss", "params:training", "params:walk_forward"],
                   ["model_checkpoint", "training_history"], tags=[GPU_TAG]),
        pipeline(evaluation_pipeline().only_nodes("forecast_atft_gat_fan"), tags=[GPU_TAG]),
    ])


def fold_template(fold: int, n_seeds: int = 1) -> Pipeline:
    """The single chain for fold ``fold`` with ``n_seeds`` seeds of ATFT-GAT-FAN, on the dataset names the
    chain uses (before namespacing): the normalization, baseline and forecast nodes are the chain's own
    (``only_nodes`` of its pipelines), so a fold runs exactly what the single chain runs."""
    fold_inputs = ("model_input", "splits", "stock_graph", "feature_manifest", "normalizer")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)
        seeds = [pipeline(seed_template(s), namespace=f"seed_{s}", inputs={name: name for name in fold_inputs},
                          parameters=SEED_PARAMETERS)
                 for s in range(n_seeds)]
        average = named_node(rank_average_seeds, [f"seed_{s}.atft_predictions" for s in range(n_seeds)],
                             "atft_predictions")
    chain = (normalization_pipeline().only_nodes("fit_normalizer", "build_model_input")
             + training_pipeline().only_nodes("train_baseline_models")
             + evaluation_pipeline().only_nodes("forecast_baselines", "read_oracle_forecasts", "combine_predictions"))
    return sum(seeds, Pipeline([])) + pipeline([
        average,
        named_node(fold_splits_selector(fold), "all_splits", "splits"),
    ]) + chain


def create_pipeline(n_folds: int | None = None, n_seeds: int | None = None, **kwargs) -> Pipeline:
    """Every fold's chain in its namespace ``fold_{k}``, then stitching, evaluation, plots and report.

    Args:
        n_folds: the number of folds; by default ``normalization.folds.count`` of conf/base.
        n_seeds: ATFT-GAT-FAN seeds per fold; by default ``walk_forward.seeds`` of conf/base.
    """
    count = registered_fold_count() if n_folds is None else n_folds
    seeds = registered_seed_count() if n_seeds is None else n_seeds
    folds = [
        pipeline(fold_template(k, seeds), namespace=f"fold_{k}",
                 inputs={"all_splits": "splits", **{name: name for name in SHARED_INPUTS}},
                 parameters=FOLD_PARAMETERS)
        for k in range(count)
    ]
    if not folds:
        return Pipeline([])
    with warnings.catch_warnings():
        # the fold forecasts are read by their namespaced names on purpose: Kedro's hint against '.'
        # in a dataset name is for names that are not namespaces
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)
        stitch = named_node(stitch_fold_forecasts,
                            ["splits", "trading_calendar", *(f"fold_{k}.predictions" for k in range(count))],
                            "walk_forward_predictions")
        stitch_seeds = named_node(stitch_seed_forecasts,
                                  ["params:walk_forward",
                                   *(f"fold_{k}.seed_{s}.atft_predictions" for k in range(count) for s in range(seeds))],
                                  "walk_forward_seed_predictions")
    stitched = pipeline([
        stitch,
        stitch_seeds,
        named_node(evaluate_walk_forward,
                   ["walk_forward_predictions", "walk_forward_seed_predictions", "targets", "daily_quotes", "topix",
                    "trading_calendar", "splits", "params:evaluation", "params:labels", "params:walk_forward"],
                   ["walk_forward_metrics", "walk_forward_daily_scores", "walk_forward_deciles",
                    "walk_forward_portfolio_returns"]),
        named_node(plot_walk_forward,
                   ["walk_forward_metrics", "walk_forward_daily_scores", "walk_forward_portfolio_returns",
                    "params:evaluation"],
                   ["walk_forward_plots", "walk_forward_plot_names"]),
        named_node(write_walk_forward_report, ["walk_forward_metrics", "walk_forward_plot_names"],
                   "walk_forward_report"),
    ])
    return sum(folds, Pipeline([])) + stitched
