"""Nodes of the training pipeline: thin, typed wrappers around ``atft_kedro.model`` and the baselines."""

from __future__ import annotations

import logging
import time
from typing import Any

import polars as pl

from atft_kedro.baselines.models import fit_hist_gbm, fit_lightgbm, fit_ridge, stack_rows
from atft_kedro.baselines.params import BaselineParams
from atft_kedro.graph_packing import pack_graph
from atft_kedro.model.params import LossParams, ModelParams, TrainingParams
from atft_kedro.model.trainer import train_model
from atft_kedro.runtime import apply_threads
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.schemas.model_input import ModelInput, Splits

logger = logging.getLogger(__name__)


def train_atft_gat_fan(
    model_input: ModelInput,
    splits: Splits,
    stock_graph: pl.DataFrame,
    feature_manifest: FeatureManifest,
    normalizer: NormalizerState,
    model: ModelParams,
    loss: LossParams,
    training: TrainingParams,
) -> tuple[dict, pl.DataFrame]:
    """Train the model on ``splits.train``, early-stopped on ``splits.validation``.

    Every setting comes from ``params:model``, ``params:loss`` and ``params:training``;
    the checkpoint records them, the feature manifest and the normalizer's identity.

    Returns:
        ``model_checkpoint`` (dict for ``torch.save``) and ``training_history`` (one row per epoch).
    """
    apply_threads(training.threads)  # also where a Dask worker runs this node, outside the hooks
    return train_model(
        model_input,
        splits,
        pack_graph(stock_graph, model_input.dates, model_input.codes),
        feature_manifest,
        model,
        loss,
        training,
        normalizer_identity=normalizer.identity,
    )


def train_baseline_models(
    model_input: ModelInput, splits: Splits, baselines: BaselineParams
) -> dict[str, Any]:
    """Fit the LightGBM, gradient-boosting and ridge baselines (``params:baselines``).

    All see exactly the model's normalised features and targets (all horizons, one
    regressor per horizon) on ``splits.train``; LightGBM and the gradient-boosting model are
    early-stopped on the rows of ``splits.validation``, as the ATFT-GAT-FAN model is, and fit
    each day's labels ranked across stocks when their ``label`` is ``cs_rank``.

    Returns:
        ``{"lightgbm": [...], "hist_gbm": [...], "ridge": [...], "feature_names": [...]}``.
    """
    parsed = splits
    train_days = model_input.day_indices(parsed.train.start, parsed.train.end)
    valid_days = model_input.day_indices(parsed.validation.start, parsed.validation.end)
    x, y, day, _ = stack_rows(model_input.features, model_input.mask, model_input.targets, train_days)
    x_valid, y_valid, day_valid, _ = stack_rows(model_input.features, model_input.mask, model_input.targets,
                                                valid_days)
    fitted: dict[str, Any] = {}
    for name, fit in (
        ("lightgbm", lambda: fit_lightgbm(x, y, x_valid, y_valid, baselines.lightgbm, day, day_valid)),
        ("hist_gbm", lambda: fit_hist_gbm(x, y, x_valid, y_valid, baselines.hist_gbm, day, day_valid)),
        ("ridge", lambda: fit_ridge(x, y, baselines.ridge)),
    ):
        started = time.perf_counter()
        fitted[name] = fit()
        logger.info("Fitted %s baselines on %s rows x %d features in %.1f s", name, f"{x.shape[0]:,}",
                    x.shape[1], time.perf_counter() - started)
    logger.info("trees kept by early stopping, per horizon: LightGBM %s, gradient boosting %s",
                [model.best_iteration for model in fitted["lightgbm"]],
                [model.n_iter_ for model in fitted["hist_gbm"]])
    return {**fitted, "feature_names": list(model_input.feature_names)}
