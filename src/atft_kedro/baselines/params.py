"""Typed parameters of the baseline models (``params:baselines`` in ``conf/base/parameters_baselines.yml``).

Every tunable lives in conf; none has a default here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from atft_kedro.schemas.strict import StrictModel


class _SubsampledParams(StrictModel):
    """Rows a baseline fits on: ``max_rows`` training rows (and, separately, validation rows)
    kept by a subsample seeded with ``seed`` (which also seeds the estimator)."""

    max_rows: int = Field(ge=1)
    seed: int


class _TreeParams(_SubsampledParams):
    """What a gradient-boosted tree baseline fits (``label``) and its ``learning_rate``."""

    label: Literal["cs_rank", "raw"]
    learning_rate: float = Field(gt=0.0)


class LightGBMParams(_TreeParams):
    """LightGBM regressor (Qlib's reference model), one booster per horizon, early-stopped on validation.

    Attributes:
        num_boost_round: the most trees grown.
        early_stopping_rounds: stop when the validation loss (l2) has not improved for this many trees.
        learning_rate, num_leaves, min_data_in_leaf, feature_fraction, bagging_fraction,
        bagging_freq, lambda_l2: LightGBM's parameters of the same names.
        label: what the trees fit: ``cs_rank`` (Qlib's CSRankNorm: each day's labels ranked
            across stocks and mapped to a uniform of unit variance, so market-wide moves, which
            no cross-sectional model can forecast, do not dominate the l2 loss and the early
            stopping) or ``raw`` (the return itself).
        max_rows: training rows (and, separately, validation rows) kept by a seeded subsample.
        seed: seeds the subsample and LightGBM (deterministic mode).
    """

    num_boost_round: int = Field(ge=1)
    early_stopping_rounds: int = Field(ge=1)
    num_leaves: int = Field(ge=2)
    min_data_in_leaf: int = Field(ge=1)
    feature_fraction: float = Field(gt=0.0, le=1.0)
    bagging_fraction: float = Field(gt=0.0, le=1.0)
    bagging_freq: int = Field(ge=0)
    lambda_l2: float = Field(ge=0.0)


class HistGBMParams(_TreeParams):
    """scikit-learn ``HistGradientBoostingRegressor`` baseline, one model per horizon, early-stopped on validation.

    Attributes:
        label: what the trees fit, as ``LightGBMParams.label`` (``cs_rank`` or ``raw``).
        max_iter: the most trees grown.
        n_iter_no_change: stop when the validation loss (squared error on the validation
            split's rows, as LightGBM's) has not improved for this many trees.
        learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization: scikit-learn's
            parameters of the same names.
        max_rows: training rows (and, separately, validation rows) kept by a seeded subsample.
        seed: seeds the subsample and the estimator.
    """

    max_iter: int = Field(ge=1)
    n_iter_no_change: int = Field(ge=1)
    max_leaf_nodes: int = Field(ge=2)
    min_samples_leaf: int = Field(ge=1)
    l2_regularization: float = Field(ge=0.0)


class RidgeParams(_SubsampledParams):
    """scikit-learn ``Ridge`` baseline, one model per horizon."""

    alpha: float = Field(ge=0.0)


class MomentumParams(StrictModel):
    """The ``momentum_20d`` rule: forecast = the stock's past 20-day return."""

    feature: str = Field(min_length=1, description="input column holding the past 20-day return")


class BaselineParams(StrictModel):
    """``params:baselines``: every model the ATFT-GAT-FAN model is compared with."""

    lightgbm: LightGBMParams
    hist_gbm: HistGBMParams
    ridge: RidgeParams
    momentum: MomentumParams
