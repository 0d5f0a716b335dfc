"""Nodes of the training pipeline: thin, typed wrappers around ``atft_kedro.model`` and the baselines."""

from __future__ import annotations

import logging
import time
from typing import Any

import polars as pl

from atft_kedro.evaluation.baselines import fit_hist_gbm, fit_ridge, stack_rows
from atft_kedro.evaluation.params import EvaluationParams
from atft_kedro.model.params import LossParams, ModelParams, TrainingParams
from atft_kedro.model.trainer import train_model
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.model_input import ModelInput, Splits

logger = logging.getLogger(__name__)


def train_atft_gat_fan(
    model_input: ModelInput,
    splits: dict[str, Any],
    stock_graph: pl.DataFrame,
    feature_manifest: dict[str, Any],
    normalizer: dict[str, Any],
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
    manifest = FeatureManifest.from_json_dict(feature_manifest)
    return train_model(
        model_input,
        Splits.model_validate(splits),
        stock_graph,
        manifest,
        model,
        loss,
        training,
        None,
        normalizer_identity=str(normalizer["identity"]),
    )


def train_baseline_models(
    model_input: ModelInput, splits: dict[str, Any], evaluation: EvaluationParams
) -> dict[str, Any]:
    """Fit the gradient-boosting and ridge baselines (``evaluation.baselines``) on the training rows.

    Both see exactly the model's normalised features and targets (all horizons, one
    regressor per horizon). The whole ``params:evaluation`` block is the input (not only
    ``evaluation.baselines``): Kedro's typed validation cannot validate a block and one of
    its sub-blocks in the same run. Returns ``{"hist_gbm": [...], "ridge": [...], "feature_names": [...]}``.
    """
    baselines = evaluation.baselines
    train = Splits.model_validate(splits).train
    days = model_input.day_indices(train.start, train.end)
    x, y, _, _ = stack_rows(model_input.features, model_input.mask, model_input.targets, days)
    started = time.perf_counter()
    hist_gbm = fit_hist_gbm(x, y, baselines.hist_gbm)
    logger.info("Fitted HistGradientBoosting baselines on %s rows x %d features in %.1f s",
                f"{x.shape[0]:,}", x.shape[1], time.perf_counter() - started)
    started = time.perf_counter()
    ridge = fit_ridge(x, y, baselines.ridge)
    logger.info("Fitted ridge baselines in %.1f s", time.perf_counter() - started)
    return {"hist_gbm": hist_gbm, "ridge": ridge, "feature_names": list(model_input.feature_names)}
