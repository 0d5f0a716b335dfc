"""Nodes of the normalization pipeline: pure functions from catalog datasets to catalog datasets.

``splits`` and ``normalizer`` travel as typed objects (``Splits`` / ``NormalizerState``, saved
as JSON by ``SplitsDataset`` / ``NormalizerDataset``); ``model_input`` as a ``ModelInputBlocks`` that ``ModelInputDataset`` writes block by block.
``features`` may be an eager ``pl.DataFrame`` or a lazy ``pl.LazyFrame`` (a Parquet scan
keeps the table out of memory: only the columns a step needs are read).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import polars as pl

from atft_kedro.normalization.dense import ModelInputBlocks, dense_model_input_blocks
from atft_kedro.normalization.frames import FeatureFrame
from atft_kedro.normalization.params import NormalizationParams, as_normalization_params, check_horizons
from atft_kedro.normalization.robust import fit_robust_state
from atft_kedro.normalization.splits import (
    feature_trading_days,
    make_date_splits,
    trading_days_from_calendar,
)
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.model_input import Splits

logger = logging.getLogger(__name__)


def make_splits(
    trading_calendar: pl.DataFrame,
    features: FeatureFrame,
    params: NormalizationParams,
    horizons: list[int],
) -> Splits:
    """Split the features' trading days into train -> validation -> test and walk-forward folds.

    Args:
        trading_calendar: canonical ``trading_calendar`` (Date, HolidayDivision).
        features: the features table; only its Date column is read.
        params: ``params:normalization`` (warmup_days, purge_days, embargo_days, chain, folds).
        horizons: ``params:horizons``; ``purge_days`` must cover the longest.

    Returns:
        ``Splits`` (saved as JSON by ``SplitsDataset``).
    """
    params = as_normalization_params(params)
    horizons_t = check_horizons(horizons)
    dates = (
        features.lazy().select(pl.col("Date").unique()).collect().get_column("Date").sort()
        .to_numpy().astype("datetime64[D]")
    )
    days = feature_trading_days(trading_days_from_calendar(trading_calendar), dates)
    splits = make_date_splits(days, params, horizons_t)
    logger.info(
        "splits: train %s..%s, validation %s..%s, test %s..%s, %d folds, purge %d + embargo %d trading days",
        splits.train.start, splits.train.end, splits.validation.start, splits.validation.end,
        splits.test.start, splits.test.end, len(splits.folds), splits.purge_days, splits.embargo_days,
    )
    return splits


def fit_normalizer(
    features: FeatureFrame,
    feature_manifest: FeatureManifest,
    splits: Splits,
    params: NormalizationParams,
) -> NormalizerState:
    """Fit the robust normalizer on every row of the train segment.

    Args:
        features: Date, Code, then the manifest's float32 features.
        feature_manifest: the feature manifest.
        splits: the ``splits`` dataset; its ``train`` range is the only one read.
        params: ``params:normalization`` (robust, cross_section, block_mib).

    Returns:
        ``NormalizerState`` (saved as JSON by ``NormalizerDataset``): centres, scales, counts, transform settings,
        manifest hash, the train range and the state's identity hash.
    """
    params = as_normalization_params(params)
    train = splits.train
    started = time.perf_counter()
    state = fit_robust_state(features, feature_manifest, train, params)
    logger.info(
        "normalizer %s fitted on %d rows of %s..%s for %d features in %.1f s",
        state.identity[:12], state.n_train_rows, train.start, train.end,
        len(state.feature_names), time.perf_counter() - started,
    )
    return state


def build_model_input(
    features: FeatureFrame,
    targets: FeatureFrame,
    feature_manifest: FeatureManifest,
    normalizer: NormalizerState,
    params: NormalizationParams,
    horizons: list[int],
) -> ModelInputBlocks:
    """Normalise the features and lay them out as the dense model input, by blocks of days.

    Keys, mask and targets are built here; the normalised features are computed a block of
    trading days at a time (``params.block_mib``) as the ``model_input`` dataset writes them
    (``ModelInputDataset``), so the dense features array is never whole in memory. Call
    ``.materialize()`` on the result for the in-memory ``ModelInput``.

    Args:
        features: Date, Code, then the manifest's float32 features (a LazyFrame: the
            ``features`` Parquet file scanned; each block reads only its dates).
        targets: Date, Code, ``target_ret_{h}d`` per horizon.
        feature_manifest: the feature manifest; its hash must be the normalizer's.
        normalizer: the ``normalizer`` dataset (JSON dict).
        params: ``params:normalization`` (dtype, block_mib).
        horizons: ``params:horizons``.

    Returns:
        ``ModelInputBlocks``: features [D, N, F] (by blocks), mask [D, N], targets [D, N, H].

    Raises:
        ManifestMismatchError: the manifest is not the one the normalizer was fitted on.
    """
    params = as_normalization_params(params)
    started = time.perf_counter()
    model_input = dense_model_input_blocks(
        features, targets, feature_manifest, normalizer, params, check_horizons(horizons)
    )
    logger.info(
        "model_input keys, mask and targets in %.1f s: features %s %s (computed by blocks as they are saved), "
        "targets %s, %d of %d target values known",
        time.perf_counter() - started, model_input.features_shape, model_input.dtype,
        model_input.targets.shape, int(np.isfinite(model_input.targets).sum()), model_input.targets.size,
    )
    return model_input
