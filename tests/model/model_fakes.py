"""Tiny synthetic inputs and parameter builders for the model tests (imported by tests/model/*)."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from atft_kedro.model.params import LossParams, ModelParams, TrainingParams
from atft_kedro.schemas.manifest import FeatureManifest, FeatureSpec
from atft_kedro.schemas.model_input import DateRange, ModelInput, Splits

# One intra-op thread: the 2-core machine is shared, and two spinning threads slow tiny models ~20x.
torch.set_num_threads(1)

HORIZONS = (1, 5)

BASE_MODEL = {
    "hidden_size": 16,
    "lstm_layers": 1,
    "attention_heads": 2,
    "dropout": 0.0,
    "window_days": 6,
    "fan": {"enabled": True, "top_k": 1},
    "gat": {"enabled": True, "layers": 1, "heads": 2, "gate_init": 0.0},
    "quantiles": [0.1, 0.5, 0.9],
}
BASE_LOSS = {
    "pinball_weight": 1.0,
    "rank_weight": 0.5,
    "ic_weight": 0.5,
    "sharpe_weight": 0.1,
    "horizon_weights": {1: 1.0, 5: 0.5},
    "rank_temperature": 0.1,
}
BASE_TRAINING = {
    "seed": 7,
    "device": "cpu",
    "precision": "fp32",
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "warmup_steps": 5,
    "max_epochs": 20,
    "patience": 20,
    "grad_clip": 1.0,
    "days_per_batch": 4,
    "max_train_days_per_epoch": None,
    "primary_horizon": 1,
    "max_skipped_step_share": 0.0,
    "gate_lr_scale": 1.0,
    "forecast_days_per_batch": 8,
    "compile": False,
    "threads": 1,
    "collapse": {"min_spread": 0.0, "patience_epochs": 2, "action": "error"},
    "phases": [{"name": "all", "epochs": 2, "lr_scale": 1.0, "fan": True, "gat": True}],
}


def _merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def model_params(**overrides) -> ModelParams:
    return ModelParams.model_validate(_merge(BASE_MODEL, overrides))


def loss_params(**overrides) -> LossParams:
    return LossParams.model_validate(_merge(BASE_LOSS, overrides))


def training_params(**overrides) -> TrainingParams:
    return TrainingParams.model_validate(_merge(BASE_TRAINING, overrides))


def make_manifest(n_features: int, prefix: str = "px_f") -> FeatureManifest:
    return FeatureManifest(
        features=tuple(
            FeatureSpec(name=f"{prefix}{i}", group="px", source="synthetic", lag_days=0, description="test feature")
            for i in range(n_features)
        )
    )


@dataclass(frozen=True)
class Dataset:
    model_input: ModelInput
    splits: Splits
    graph: pl.DataFrame
    manifest: FeatureManifest


def make_dataset(
    n_days: int = 120, n_stocks: int = 24, n_features: int = 5, seed: int = 0, noise: float = 1.0
) -> Dataset:
    """Features iid N(0,1); stocks in sectors of 4 with a complete same-sector graph.

    target_1d = 0.01 * (0.8 x0 - 0.5 x1 + 0.6 * sector-peer mean of x2 + 0.4 * x3 of the day
    before + noise * eps); target_5d the same signal with more noise. A few stocks are
    unlisted on some days (mask False, features 0).
    """
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n_days, n_stocks, n_features)).astype(np.float32)
    mask = np.ones((n_days, n_stocks), dtype=bool)
    mask[: n_days // 4, -2:] = False  # two stocks list late
    features[~mask] = 0.0
    sector = np.arange(n_stocks) // 4
    same = (sector[:, None] == sector[None, :]) & ~np.eye(n_stocks, dtype=bool)
    peer = (features[:, :, 2] @ same.T.astype(np.float32)) / same.sum(1)  # [D, N]
    lagged = np.concatenate([np.zeros((1, n_stocks), np.float32), features[:-1, :, 3]])
    signal = 0.8 * features[:, :, 0] - 0.5 * features[:, :, 1] + 0.6 * peer + 0.4 * lagged
    t1 = 0.01 * (signal + noise * rng.standard_normal(signal.shape))
    t5 = 0.02 * (signal + 2 * noise * rng.standard_normal(signal.shape))
    targets = np.stack([t1, t5], -1).astype(np.float32)
    targets[~mask] = np.nan
    targets[-5:, :, 1] = np.nan  # 5-day target unknown at the end
    targets[-1:, :, 0] = np.nan
    dates = np.datetime64("2021-01-04") + np.arange(n_days).astype("timedelta64[D]")
    codes = np.array([f"{1000 + 10 * i}" for i in range(n_stocks)])
    manifest = make_manifest(n_features)
    model_input = ModelInput(
        features=features,
        mask=mask,
        targets=targets,
        dates=dates,
        codes=codes,
        horizons=np.array(HORIZONS, dtype=np.int64),
        feature_names=tuple(manifest.names),
        manifest_hash=manifest.hash,
    )
    src, dst = np.nonzero(same)
    graph = pl.DataFrame(
        {
            "Date": [dt.date(2021, 1, 4)] * len(src),
            "SourceCode": codes[src],
            "TargetCode": codes[dst],
            "rho": np.full(len(src), 0.5),
            "same_sector": np.ones(len(src)),
            "same_market": np.ones(len(src)),
        }
    )

    def day(i: int) -> dt.date:
        return dates[i].astype(dt.date)

    n_train, gap = int(n_days * 0.6), 6
    n_val_end = int(n_days * 0.85)
    splits = Splits(
        purge_days=5,
        embargo_days=1,
        train=DateRange(start=day(0), end=day(n_train - 1)),
        validation=DateRange(start=day(n_train + gap), end=day(n_val_end)),
        test=DateRange(start=day(n_val_end + gap), end=day(n_days - 1)),
    )
    return Dataset(model_input, splits, graph, manifest)
