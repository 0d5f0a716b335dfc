"""Permutation importance ranks the features the forecasts use above a pure-noise feature."""

from __future__ import annotations

import numpy as np
import pytest
from model_fakes import loss_params, make_dataset, model_params, training_params

from atft_kedro.evaluation.importance import evenly_spaced, mean_rank_ic, permutation_importance
from atft_kedro.graph_packing import pack_graph
from atft_kedro.model.checkpoint import build_model_from_checkpoint, forecast_days
from atft_kedro.model.trainer import train_model


@pytest.fixture(scope="module")
def fitted():
    # x0 (weight 0.8) and x1 (-0.5) drive the target directly; x4 is pure noise
    data = make_dataset(n_days=160, n_stocks=32, n_features=5, seed=3, noise=0.5)
    checkpoint, _ = train_model(data.model_input, data.splits, data.graph, data.manifest, model_params(),
                                loss_params(), training_params(phases=[{"name": "all", "epochs": 4, "lr_scale": 1.0,
                                                                        "fan": True, "gat": True}]),
                                normalizer_identity="n")
    return data, build_model_from_checkpoint(checkpoint, data.manifest)


def _forecaster(data, model):
    def forecast(part, days):
        return forecast_days(model, part, pack_graph(data.graph, part.dates, part.codes), days)[..., 1]
    return forecast


def test_signal_features_outrank_a_noise_feature(fitted) -> None:
    data, model = fitted
    mi = data.model_input
    days = evenly_spaced(mi.day_indices(data.splits.validation.start, data.splits.test.end), 40)
    result = permutation_importance(_forecaster(data, model), mi, days, model.params.window_days,
                                    {"px": list(mi.feature_names), "noise": ["px_f4"]}, horizon=1, min_stocks=10,
                                    seed=0)
    drops = result["features"]
    assert result["base_rank_ic"] > 0.2
    assert drops["px_f0"] > 0.1 and drops["px_f0"] > drops["px_f4"] + 0.1
    assert drops["px_f1"] > drops["px_f4"]
    assert abs(drops["px_f4"]) < 0.05
    assert result["groups"]["px"] > drops["px_f0"]  # shuffling everything loses the most
    # the shuffles leave the input as it was
    again = permutation_importance(_forecaster(data, model), mi, days, model.params.window_days, {}, horizon=1,
                                   min_stocks=10, seed=0)
    assert again["base_rank_ic"] == result["base_rank_ic"] and again["features"] == drops
    # a cap scores the features of the most important groups first
    capped = permutation_importance(_forecaster(data, model), mi, days, model.params.window_days,
                                    {"noise": ["px_f4"], "signal": ["px_f0", "px_f1"]}, horizon=1, min_stocks=10,
                                    seed=0, max_features=2)
    assert list(capped["features"]) == ["px_f0", "px_f1"] and capped["features"]["px_f0"] == drops["px_f0"]


def test_mean_rank_ic_is_spearman_per_day() -> None:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    pred, real = rng.normal(size=(6, 30)), rng.normal(size=(6, 30))
    real[0, :5] = np.nan
    expected = np.mean([spearmanr(p[np.isfinite(r)], r[np.isfinite(r)])[0] for p, r in zip(pred, real)])
    assert mean_rank_ic(pred, real, min_stocks=10) == pytest.approx(expected)
    assert np.isnan(mean_rank_ic(pred[:, :5], real[:, :5], min_stocks=10))
