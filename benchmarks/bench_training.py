"""Time ATFT-GAT-FAN training on a random model input of a given size.

Usage (full-size runs only through the shared lock on the 2-core machine):

    flock /tmp/atft_bench.lock python benchmarks/bench_training.py \
        --stocks 400 --days 250 --features 250 --hidden 32 --window 20 --device cpu

Builds a random ``ModelInput`` (features N(0,1), a weak planted signal, 10 random graph
neighbours per stock), trains ``--epochs`` epochs with the real trainer (80% of the days
for training, the last 20% after a 20-day gap for validation) and prints the seconds per
epoch (training pass + validation pass, from the history) and the training stock-days per
second. The numbers are for this machine and these sizes only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import resource
import time

import numpy as np
import polars as pl
import torch

from atft_kedro.model.params import LossParams, ModelParams, TrainingParams
from atft_kedro.model.trainer import train_model
from atft_kedro.schemas.manifest import FeatureManifest, FeatureSpec
from atft_kedro.schemas.model_input import DateRange, ModelInput, Splits

HORIZONS = (1, 5, 10, 20)
GRAPH_DEGREE = 10


def random_model_input(
    n_stocks: int, n_days: int, n_features: int, seed: int
) -> tuple[ModelInput, FeatureManifest, pl.DataFrame]:
    """A random dense model input, its manifest and one stock graph dated on the first day."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n_days, n_stocks, n_features), dtype=np.float32)
    mask = rng.random((n_days, n_stocks)) > 0.02
    features[~mask] = 0.0
    signal = features[:, :, :3].sum(-1) / np.sqrt(3.0)
    targets = np.stack(
        [0.01 * np.sqrt(h) * (0.1 * signal + rng.standard_normal((n_days, n_stocks))) for h in HORIZONS], -1
    ).astype(np.float32)
    targets[~mask] = np.nan
    for i, h in enumerate(HORIZONS):
        targets[-h:, :, i] = np.nan
    manifest = FeatureManifest(
        features=tuple(
            FeatureSpec(name=f"px_bench_{i}", group="px", source="bench", lag_days=0, description="random")
            for i in range(n_features)
        )
    )
    dates = np.datetime64("2016-01-04") + np.arange(n_days).astype("timedelta64[D]")
    codes = np.array([f"{1300 + i}" for i in range(n_stocks)])
    src = np.repeat(np.arange(n_stocks), GRAPH_DEGREE)
    dst = (src + rng.integers(1, n_stocks, size=src.size)) % n_stocks
    graph = pl.DataFrame(
        {
            "Date": [dt.date(2016, 1, 4)] * src.size,
            "SourceCode": codes[src],
            "TargetCode": codes[dst],
            "rho": rng.uniform(0.3, 0.9, src.size),
            "same_sector": rng.integers(0, 2, src.size).astype(np.float64),
            "same_market": rng.integers(0, 2, src.size).astype(np.float64),
        }
    )
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
    return model_input, manifest, graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stocks", type=int, default=400)
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--features", type=int, default=250)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--days-per-batch", type=int, default=4)
    parser.add_argument("--gat-layers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="training.threads (default: every core)")
    parser.add_argument("--compile", action="store_true", help="training.compile")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    built = time.perf_counter()
    model_input, manifest, graph = random_model_input(args.stocks, args.days, args.features, seed=0)
    dates = model_input.dates.astype(dt.date)
    n_train = int(args.days * 0.8)
    splits = Splits(
        purge_days=20,
        embargo_days=0,
        train=DateRange(start=dates[0], end=dates[n_train - 1]),
        validation=DateRange(start=dates[min(n_train + 20, args.days - 1)], end=dates[-1]),
        test=DateRange(start=dates[-1], end=dates[-1]),
    )
    heads = 4 if args.hidden % 4 == 0 else 2
    model_params = ModelParams(
        hidden_size=args.hidden, lstm_layers=1, attention_heads=heads, dropout=0.1, window_days=args.window,
        fan={"enabled": True, "top_k": 2},
        gat={"enabled": True, "layers": args.gat_layers, "heads": heads, "gate_init": 0.0},
        quantiles=(0.1, 0.5, 0.9),
    )
    loss_params = LossParams(
        pinball_weight=1.0, rank_weight=0.5, ic_weight=0.25, sharpe_weight=0.1,
        horizon_weights={1: 1.0, 5: 0.5, 10: 0.25, 20: 0.25}, rank_temperature=0.1,
    )
    training_params = TrainingParams(
        seed=0, device=args.device, precision=args.precision, lr=1e-3, weight_decay=1e-4, warmup_steps=10,
        max_epochs=args.epochs, patience=args.epochs, grad_clip=1.0, days_per_batch=args.days_per_batch,
        max_train_days_per_epoch=None,
        primary_horizon=1, max_skipped_step_share=0.0, gate_lr_scale=20.0, forecast_days_per_batch=16,
        compile=args.compile, threads=args.threads,
        collapse={"min_spread": 0.0, "patience_epochs": 1, "action": "warn"},
        phases=({"name": "bench", "epochs": args.epochs, "lr_scale": 1.0, "fan": True, "gat": True},),
    )
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))  # as atft_kedro.runtime does
    print(f"built random input in {time.perf_counter() - built:.1f}s; torch threads {torch.get_num_threads()}")
    started = time.perf_counter()
    _, history = train_model(
        model_input, splits, graph, manifest, model_params, loss_params, training_params,
        normalizer_identity="bench",
    )
    total = time.perf_counter() - started
    n_train_days = len(model_input.day_indices(splits.train.start, splits.train.end))
    n_val_days = len(model_input.day_indices(splits.validation.start, splits.validation.end))
    seconds = history["seconds"].to_numpy()
    steady = float(seconds[1:].mean()) if len(seconds) > 1 else float(seconds[0])
    peak_rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"size: {args.stocks} stocks x {args.days} days x {args.features} features, hidden {args.hidden}, "
        f"window {args.window}, device {args.device}, {args.days_per_batch} days/batch; "
        f"{n_train_days} train days, {n_val_days} validation days"
    )
    print(f"seconds per epoch: {[round(float(s), 2) for s in seconds]} (steady {steady:.2f}s); whole run {total:.1f}s")
    print(
        f"training stock-days per second (train + validation pass in the epoch time): "
        f"{n_train_days * args.stocks / steady:,.0f}; "
        f"all stock-days / s: {(n_train_days + n_val_days) * args.stocks / steady:,.0f}"
    )
    print(f"peak RSS {peak_rss_gib:.2f} GiB; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
