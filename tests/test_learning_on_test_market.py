"""ATFT-GAT-FAN learns the test environment's synthetic market, not noise.

The same model, with the same parameters and seed, is trained twice on the model input of a
``kedro run --env test``: once on the real targets and once with the training days' targets
shuffled across stocks (each day's cross-section permuted, so the features no longer tell
anything about them). Validation targets stay real in both runs.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from kedro_project import load_conf

from atft_kedro.datasets.model_input_dataset import read_model_input
from atft_kedro.model.params import LossParams, ModelParams, TrainingParams
from atft_kedro.model.trainer import train_model
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.model_input import ModelInput, Splits

pytestmark = pytest.mark.slow


def _shuffle_training_targets(model_input: ModelInput, splits: Splits, seed: int) -> ModelInput:
    rng = np.random.default_rng(seed)
    targets = np.array(model_input.targets, copy=True)
    for day in model_input.day_indices(splits.train.start, splits.train.end):
        listed = np.flatnonzero(model_input.mask[day])
        targets[day, listed] = targets[day, rng.permutation(listed)]
    return ModelInput(
        features=model_input.features, mask=model_input.mask, targets=targets, dates=model_input.dates,
        codes=model_input.codes, horizons=model_input.horizons, feature_names=model_input.feature_names,
        manifest_hash=model_input.manifest_hash,
    )


def test_validation_rank_ic_is_clearly_above_shuffled_targets(test_env_run) -> None:
    data = test_env_run.data
    model_input = read_model_input(data / "05_model_input" / "model_input")
    splits = Splits.model_validate(json.loads((data / "05_model_input/splits.json").read_text()))
    manifest = FeatureManifest.from_json_dict(json.loads((data / "04_feature/feature_manifest.json").read_text()))
    graph = pl.read_parquet(data / "04_feature/stock_graph.parquet")
    params = load_conf("test")["parameters"]
    model = ModelParams.model_validate(params["model"])
    loss = LossParams.model_validate(params["loss"])
    # the test env trains 2 short epochs to keep CI fast; here every training day, 4 epochs,
    # no early stop, so both runs get the same, fair amount of training
    training = TrainingParams.model_validate(
        params["training"]
        | {"max_train_days_per_epoch": None, "max_epochs": 4, "patience": 4,
           "phases": [{"name": "baseline", "epochs": 2, "lr_scale": 1.0, "fan": False, "gat": False},
                      {"name": "fan_gat", "epochs": 2, "lr_scale": 1.0, "fan": True, "gat": True}]}
    )
    columns = [f"val_rankic_h{h}" for h in model_input.horizons.tolist()]

    def last_epoch_rank_ic(inputs: ModelInput) -> float:
        """Validation RankIC of the last epoch, averaged over the horizons (no best-epoch selection)."""
        _, history = train_model(inputs, splits, graph, manifest, model, loss, training,
                                 normalizer_identity="test")
        return float(np.nanmean(history.select(columns).row(-1)))

    real = last_epoch_rank_ic(model_input)
    shuffled = [last_epoch_rank_ic(_shuffle_training_targets(model_input, splits, seed)) for seed in (1, 2)]
    print(f"validation RankIC (mean over horizons): real {real:.4f}, shuffled {shuffled}")
    # the two shuffles alone spread by ~0.05 (measured -0.031 and 0.024 with the tradable labels), so
    # the margin is taken over their mean, and the real run must still beat each of them
    assert real > max(shuffled), (real, shuffled)
    assert real > float(np.mean(shuffled)) + 0.02, (real, shuffled)
