"""Baselines fit a planted linear signal and rank stocks better than chance."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from atft_kedro.baselines.models import (
    cross_sectional_rank,
    fit_hist_gbm,
    fit_lightgbm,
    fit_ridge,
    momentum_forecast,
    predict_baseline,
    stack_rows,
    training_rows,
)
from atft_kedro.evaluation.metrics import daily_rank_ic
from atft_kedro.baselines.params import BaselineParams


def _planted(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """features [D, N, F], mask [D, N], targets [D, N, 2] with a linear signal plus noise."""
    rng = np.random.default_rng(seed)
    d, n, f = 30, 60, 6
    features = rng.normal(size=(d, n, f)).astype(np.float32)
    signal = 0.6 * features[..., 0] - 0.4 * features[..., 1]
    targets = np.stack([signal + rng.normal(size=(d, n)), 2.0 * signal + rng.normal(size=(d, n))], axis=-1)
    targets[rng.random((d, n)) < 0.1, 0] = np.nan  # unknown outcomes
    mask = rng.random((d, n)) > 0.05
    return features, mask, targets


def _mean_rank_ic(pred: np.ndarray, target: np.ndarray, day: np.ndarray) -> float:
    panel = pl.DataFrame({"Date": day, "Code": np.arange(day.shape[0]), "p": pred, "t": target})
    return float(daily_rank_ic(panel, pred_col="p", target_col="t", min_stocks=10, by=[])["rank_ic"].mean())


@pytest.mark.parametrize("kind", ["lightgbm", "hist_gbm", "ridge"])
def test_baselines_learn_planted_signal(kind: str, baseline_params: BaselineParams) -> None:
    features, mask, targets = _planted(0)
    x_train, y_train, day_train, _ = stack_rows(features, mask, targets, np.arange(0, 20))
    x_test, y_test, day_test, stock_test = stack_rows(features, mask, targets, np.arange(20, 30))
    assert x_train.shape[1] == 6 and y_train.shape[1] == 2
    assert np.array_equal(x_test, features[day_test, stock_test])
    x_valid, y_valid, day_valid, _ = stack_rows(features, mask, targets, np.arange(15, 20))
    if kind == "lightgbm":
        models = fit_lightgbm(x_train, y_train, x_valid, y_valid, baseline_params.lightgbm, day_train, day_valid)
    elif kind == "hist_gbm":
        models = fit_hist_gbm(x_train, y_train, x_valid, y_valid, baseline_params.hist_gbm, day_train, day_valid)
    else:
        models = fit_ridge(x_train, y_train, baseline_params.ridge)
    pred = predict_baseline(models, x_test)
    assert pred.shape == (x_test.shape[0], 2)
    for h in range(2):
        assert _mean_rank_ic(pred[:, h], y_test[:, h], day_test) > 0.2
    # a shuffled forecast has no skill: the statistic can fail
    shuffled = np.random.default_rng(1).permutation(pred[:, 0])
    assert abs(_mean_rank_ic(shuffled, y_test[:, 0], day_test)) < 0.1


def test_lightgbm_keeps_the_trees_the_validation_rows_want(baseline_params: BaselineParams) -> None:
    """Early stopping reads the validation split: noise there stops it early, signal lets it grow."""
    features, mask, targets = _planted(0)
    x_train, y_train, day_train, _ = stack_rows(features, mask, targets, np.arange(0, 20))
    x_valid, y_valid, day_valid, _ = stack_rows(features, mask, targets, np.arange(20, 30))
    noise = np.random.default_rng(3).normal(size=y_valid.shape)
    informed = fit_lightgbm(x_train, y_train, x_valid, y_valid, baseline_params.lightgbm, day_train, day_valid)
    fooled = fit_lightgbm(x_train, y_train, x_valid, noise, baseline_params.lightgbm, day_train, day_valid)
    for good, bad in zip(informed, fooled, strict=True):
        assert bad.best_iteration < good.best_iteration
        assert good.best_iteration <= baseline_params.lightgbm.num_boost_round


def test_gradient_boosting_stops_where_the_validation_rows_say(baseline_params: BaselineParams) -> None:
    """The hist_gbm baseline early-stops on the validation split too, not on a hidden training split."""
    features, mask, targets = _planted(0)
    x_train, y_train, day_train, _ = stack_rows(features, mask, targets, np.arange(0, 20))
    x_valid, y_valid, day_valid, _ = stack_rows(features, mask, targets, np.arange(20, 30))
    noise = np.random.default_rng(3).normal(size=y_valid.shape)
    params = baseline_params.hist_gbm
    informed = fit_hist_gbm(x_train, y_train, x_valid, y_valid, params, day_train, day_valid)
    fooled = fit_hist_gbm(x_train, y_train, x_valid, noise, params, day_train, day_valid)
    for good, bad in zip(informed, fooled, strict=True):
        assert bad.n_iter_ < good.n_iter_ <= params.max_iter
        assert bad.n_iter_ <= params.n_iter_no_change + 5  # noise: no tree helps, growth stops at once


def test_cross_sectional_rank_is_per_day_uniform_with_unit_variance() -> None:
    rng = np.random.default_rng(4)
    day = np.repeat(np.arange(3), 200)
    y = np.stack([rng.normal(size=600) + 5.0 * day, rng.normal(size=600)], axis=1)  # day 2 rallies: +10
    y[0, 1] = np.nan
    ranked = cross_sectional_rank(y, day)
    assert np.isnan(ranked[0, 1]) and np.isfinite(ranked[1:]).all()
    for d in range(3):
        block = ranked[day == d, 0]
        assert abs(block.mean()) < 1e-12 and block.std() == pytest.approx(1.0, abs=0.01)
        order = np.argsort(y[day == d, 0])
        assert np.all(np.diff(block[order]) > 0)  # the same order as the label within the day
    assert ranked[:, 0].max() < np.sqrt(3.0)  # the market-wide move is gone


def test_cs_rank_label_needs_the_days(baseline_params: BaselineParams) -> None:
    with pytest.raises(ValueError, match="needs the day of every training and validation row"):
        fit_lightgbm(np.zeros((5, 2)), np.zeros(5), np.zeros((5, 2)), np.zeros(5), baseline_params.lightgbm)


def test_subsample_is_seeded_and_bounded(baseline_params: BaselineParams) -> None:
    target = np.arange(1000.0)
    target[::7] = np.nan
    rows = training_rows(target, 100, 5)
    assert rows.shape == (100,) and np.all(np.isfinite(target[rows])) and np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, training_rows(target, 100, 5))
    assert not np.array_equal(rows, training_rows(target, 100, 6))
    features, mask, targets = _planted(2)
    x, y, _, _ = stack_rows(features, mask, targets, np.arange(30))
    small = baseline_params.hist_gbm.model_copy(update={"max_rows": 300, "label": "raw"})
    first = predict_baseline(fit_hist_gbm(x, y[:, 0], x[:200], y[:200, 0], small), x[:50])
    again = predict_baseline(fit_hist_gbm(x, y[:, 0], x[:200], y[:200, 0], small), x[:50])
    assert first.shape == (50, 1)
    np.testing.assert_array_equal(first, again)


def test_momentum_forecast_repeats_past_return() -> None:
    past = np.array([0.1, -0.2, np.nan])
    forecast = momentum_forecast(past, 3)
    assert forecast.shape == (3, 3)
    np.testing.assert_array_equal(forecast[:, 2], past)
    with pytest.raises(ValueError, match="one column"):
        momentum_forecast(np.zeros((3, 2)), 3)


def test_shape_errors_are_named(baseline_params: BaselineParams) -> None:
    with pytest.raises(ValueError, match=r"\[rows\] or \[rows, H\]"):
        fit_ridge(np.zeros((5, 2)), np.zeros((4, 1)), baseline_params.ridge)
    with pytest.raises(ValueError, match="no finite value"):
        fit_ridge(np.zeros((5, 2)), np.full(5, np.nan), baseline_params.ridge)
