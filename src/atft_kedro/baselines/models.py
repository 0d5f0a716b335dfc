"""Baseline forecasters on normalised features: LightGBM, gradient boosting, ridge, 20-day momentum.

All functions are pure: arrays in, fitted estimators or predictions out, no I/O.
Shapes: ``X`` [rows, F] float features; ``y`` [rows] or [rows, H] forward returns (NaN
where unknown); predictions [rows, H]. One estimator is fitted per horizon (column of
``y``) on the rows whose target is known, after a seeded subsample to ``max_rows``.
"""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from atft_kedro.baselines.params import HistGBMParams, LightGBMParams, RidgeParams


def stack_rows(
    features: np.ndarray, mask: np.ndarray, targets: np.ndarray, day_indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flatten the masked (day, stock) cells of selected days into rows.

    Args:
        features: [D, N, F]; mask: [D, N] bool; targets: [D, N, H]; day_indices: [d] ints.

    Returns:
        ``X`` [rows, F], ``y`` [rows, H], ``day`` [rows] (index into D), ``stock`` [rows]
        (index into N), rows ordered by day then stock.
    """
    day_indices = np.asarray(day_indices, dtype=np.int64)
    day_pos, stock = np.nonzero(mask[day_indices])
    day = day_indices[day_pos]
    return features[day, stock], targets[day, stock], day, stock


def _as_matrix(y: np.ndarray) -> np.ndarray:
    return y[:, None] if y.ndim == 1 else y


def _check_shapes(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 2:
        raise ValueError(f"baseline features X must be [rows, F], got shape {x.shape}")
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"baseline target y must be [rows] or [rows, H] with rows = {x.shape[0]}, got {y.shape}")


def training_rows(target: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Sorted indices of the rows with a finite ``target`` [rows], subsampled to ``max_rows``."""
    rows = np.flatnonzero(np.isfinite(target))
    if rows.shape[0] == 0:
        raise ValueError("baseline target has no finite value to fit on")
    if rows.shape[0] > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))
    return rows


def fit_hist_gbm(
    x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray, params: HistGBMParams,
    day: np.ndarray | None = None, day_valid: np.ndarray | None = None,
) -> list[HistGradientBoostingRegressor]:
    """One ``HistGradientBoostingRegressor`` (squared error) per column of ``y``, early-stopped on validation.

    Args:
        x, y: training rows [rows, F] and targets [rows, H] (NaN where unknown).
        x_valid, y_valid: validation rows and targets from the validation split (after the
            purge), as for :func:`fit_lightgbm`: growing stops once their loss has not improved
            for ``n_iter_no_change`` trees (scikit-learn's ``X_val``/``y_val``; no hidden split
            of the training rows).
        day, day_valid: the day of each row; needed by ``params.label == "cs_rank"``.

    NaN features are native missing values; other settings are scikit-learn's defaults.
    """
    y, y_valid = _fit_labels(x, y, x_valid, y_valid, params.label, day, day_valid)
    models = []
    for column in range(y.shape[1]):
        rows = training_rows(y[:, column], params.max_rows, params.seed)
        valid_rows = training_rows(y_valid[:, column], params.max_rows, params.seed)
        model = HistGradientBoostingRegressor(
            loss="squared_error",
            max_iter=params.max_iter,
            learning_rate=params.learning_rate,
            max_leaf_nodes=params.max_leaf_nodes,
            min_samples_leaf=params.min_samples_leaf,
            l2_regularization=params.l2_regularization,
            early_stopping=True,
            n_iter_no_change=params.n_iter_no_change,
            scoring="loss",
            random_state=params.seed,
        )
        models.append(model.fit(x[rows], y[rows, column],
                                X_val=x_valid[valid_rows], y_val=y_valid[valid_rows, column]))
    return models


def _fit_labels(
    x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray, label: str,
    day: np.ndarray | None, day_valid: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation labels [rows, H] as a tree baseline fits them (``label``: cs_rank or raw)."""
    y, y_valid = _as_matrix(y), _as_matrix(y_valid)
    _check_shapes(x, y)
    _check_shapes(x_valid, y_valid)
    if label == "cs_rank":
        if day is None or day_valid is None:
            raise ValueError("baselines label cs_rank needs the day of every training and validation row")
        y, y_valid = cross_sectional_rank(y, day), cross_sectional_rank(y_valid, day_valid)
    return y, y_valid


def cross_sectional_rank(y: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Each column's values ranked within each day, mapped to a uniform of unit variance.

    ``(rank - 0.5) / n - 0.5`` scaled by sqrt(12), with n the day's known values and average
    ranks for ties (Qlib's CSRankNorm); NaN stays NaN.

    Args:
        y: [rows, H] labels (NaN where unknown); day: [rows] the day of each row.
    """
    y = _as_matrix(y)
    frame = pl.DataFrame({"_day": day, **{f"y{j}": y[:, j] for j in range(y.shape[1])}}).fill_nan(None)
    ranked = frame.select(
        ((pl.col(f"y{j}").rank("average") - 0.5) / pl.col(f"y{j}").count() - 0.5).over("_day") * math.sqrt(12.0)
        for j in range(y.shape[1])
    )
    return ranked.to_numpy().astype(np.float64)


def fit_lightgbm(
    x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray, params: LightGBMParams,
    day: np.ndarray | None = None, day_valid: np.ndarray | None = None,
) -> list[lgb.Booster]:
    """One LightGBM booster (l2 loss) per column of ``y``, early-stopped on the validation rows.

    Args:
        x, y: training rows [rows, F] and targets [rows, H] (NaN where unknown).
        x_valid, y_valid: validation rows [rows_v, F] and targets [rows_v, H] from the
            validation split (after the purge): the booster keeps the tree count with the
            lowest validation l2.
        day, day_valid: the day of each row; needed by ``params.label == "cs_rank"``, which
            fits (and early-stops on) each day's labels ranked across stocks.

    Returns:
        One ``lgb.Booster`` per horizon, its ``best_iteration`` set.
    """
    y, y_valid = _fit_labels(x, y, x_valid, y_valid, params.label, day, day_valid)
    settings = {
        "objective": "regression",
        "metric": "l2",
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_data_in_leaf": params.min_data_in_leaf,
        "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": params.bagging_freq,
        "lambda_l2": params.lambda_l2,
        "seed": params.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }
    models = []
    for column in range(y.shape[1]):
        rows = training_rows(y[:, column], params.max_rows, params.seed)
        valid_rows = training_rows(y_valid[:, column], params.max_rows, params.seed)
        train_set = lgb.Dataset(x[rows], y[rows, column], free_raw_data=True)
        valid_set = lgb.Dataset(x_valid[valid_rows], y_valid[valid_rows, column], reference=train_set)
        models.append(
            lgb.train(
                settings,
                train_set,
                num_boost_round=params.num_boost_round,
                valid_sets=[valid_set],
                callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
            )
        )
    return models


def fit_ridge(x: np.ndarray, y: np.ndarray, params: RidgeParams) -> list[Ridge]:
    """One ``Ridge`` (with intercept) per column of ``y``; non-finite features are read as 0."""
    y = _as_matrix(y)
    _check_shapes(x, y)
    models = []
    for column in range(y.shape[1]):
        rows = training_rows(y[:, column], params.max_rows, params.seed)
        features = np.nan_to_num(x[rows], nan=0.0, posinf=0.0, neginf=0.0)
        models.append(Ridge(alpha=params.alpha).fit(features, y[rows, column]))
    return models


def predict_baseline(
    models: list[lgb.Booster] | list[HistGradientBoostingRegressor] | list[Ridge], x: np.ndarray
) -> np.ndarray:
    """Forecasts [rows, H] of models fitted by :func:`fit_lightgbm`, :func:`fit_hist_gbm` or :func:`fit_ridge`."""
    if x.ndim != 2:
        raise ValueError(f"baseline features X must be [rows, F], got shape {x.shape}")
    if models and isinstance(models[0], Ridge):
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if models and isinstance(models[0], lgb.Booster):
        return np.stack([model.predict(x, num_iteration=model.best_iteration) for model in models], axis=1)
    return np.stack([model.predict(x) for model in models], axis=1)


def momentum_forecast(past_return: np.ndarray, n_horizons: int) -> np.ndarray:
    """The ``momentum_20d`` rule: every horizon's forecast is the past 20-day return [rows].

    Returns:
        [rows, n_horizons]; NaN where the past return is unknown (no forecast).
    """
    if past_return.ndim != 1:
        raise ValueError(f"momentum input must be one column [rows], got shape {past_return.shape}")
    return np.repeat(past_return.astype(np.float64)[:, None], n_horizons, axis=1)
