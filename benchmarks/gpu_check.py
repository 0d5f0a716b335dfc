"""GPU check of ATFT-GAT-FAN at the gpu environment's shapes: one command, one JSON line.

    PYTHONPATH=src python benchmarks/gpu_check.py                    # CUDA, full shapes
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --stocks 200 --days 60

Needs only torch, torch-geometric, numpy and pydantic (no Kedro, Polars or project install:
``atft_kedro.model`` imports nothing else). Builds ON THE DEVICE a synthetic model input of
the gpu environment's shapes (defaults: 4,000 stocks x 1,700 training days x 280 features,
window 60, hidden 256, the rest as ``conf/gpu/parameters_training.yml``; a test keeps the
defaults equal to that file), with a random graph of 10 neighbours per stock and day, then:

(a) smoke: one bf16-autocast forward/backward (fp32 with ``--precision fp32``): finite loss,
    the output dtype of every module (the LSTM's included);
(b) one epoch of the real trainer's step (``_train_epoch``: fused AdamW, skipped non-finite
    steps, no host sync) over every training day: seconds, stock-days per second, skipped
    steps, peak GPU memory;
(c) forecasting ``--forecast-days`` days (250, or ``--days`` if fewer) x all stocks
    (``forecast_tensors``, bf16 autocast like training): seconds.

Targets on an H200: epoch under 30 s, forecast under 5 s. Prints one JSON line (and nothing
else on stdout).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import numpy as np
import torch

from atft_kedro.model.checkpoint import forecast_tensors
from atft_kedro.model.data import DeviceTensors, GraphTensors, day_batch, rank_targets
from atft_kedro.model.network import ATFTGATFAN
from atft_kedro.model.params import LossParams, ModelParams, TrainingParams
from atft_kedro.model.trainer import LrSchedule, _batches, _forward, _Run, _train_epoch, forward_model, make_optimizer

#: The gpu environment's shapes and settings (conf/gpu/parameters_training.yml; tests/model checks them).
GPU_MODEL = {
    "hidden_size": 256,
    "lstm_layers": 2,
    "attention_heads": 8,
    "dropout": 0.1,
    "window_days": 60,
    "fan": {"enabled": True, "top_k": 3},
    "gat": {"enabled": True, "layers": 2, "heads": 8, "gate_init": 0.0},
    "quantiles": [0.1, 0.25, 0.5, 0.75, 0.9],
}
GPU_LOSS = {
    "pinball_weight": 1.0,
    "rank_weight": 0.5,
    "ic_weight": 0.25,
    "sharpe_weight": 0.1,
    "horizon_weights": {1: 0.5, 5: 1.0, 10: 0.5, 20: 0.25},
    "rank_temperature": 0.05,
}
GPU_TRAINING = {
    "seed": 42,
    "device": "cuda",
    "precision": "bf16",
    "lr": 5.0e-4,
    "weight_decay": 1.0e-4,
    "warmup_steps": 500,
    "max_epochs": 40,
    "patience": 4,
    "grad_clip": 1.0,
    "days_per_batch": 4,
    "max_train_days_per_epoch": None,
    "primary_horizon": 5,
    "max_skipped_step_share": 0.01,
    "gate_lr_scale": 20.0,
    "forecast_days_per_batch": 16,
    "compile": False,
    "threads": None,
    "collapse": {"min_spread": 1.0e-6, "patience_epochs": 3, "action": "error"},
    "phases": [
        {"name": "baseline", "epochs": 5, "lr_scale": 1.0, "fan": False, "gat": False},
        {"name": "fan", "epochs": 5, "lr_scale": 1.0, "fan": True, "gat": False},
        {"name": "gat", "epochs": 15, "lr_scale": 1.0, "fan": True, "gat": True},
        {"name": "fine_tune", "epochs": 10, "lr_scale": 0.2, "fan": True, "gat": True},
    ],
}
GRAPH_DEGREE = 10
N_FEATURES = 280


def synthetic_tensors(
    n_stocks: int, n_days: int, n_features: int, horizons: list[int], device: torch.device, seed: int
) -> DeviceTensors:
    """Features N(0, 1) made on the device, 2% of stock-days unlisted, targets with a weak signal."""
    g = torch.Generator(device=device).manual_seed(seed)
    features = torch.randn(n_days, n_stocks, n_features, generator=g, device=device)
    mask = torch.rand(n_days, n_stocks, generator=g, device=device) > 0.02
    features *= mask.unsqueeze(-1)
    signal = features[..., :3].sum(-1) / math.sqrt(3.0)
    noise = torch.randn(n_days, n_stocks, len(horizons), generator=g, device=device)
    scale = torch.tensor([0.01 * math.sqrt(h) for h in horizons], device=device)
    targets = scale * (0.1 * signal.unsqueeze(-1) + noise)
    targets = torch.where(mask.unsqueeze(-1), targets, float("nan"))
    for i, h in enumerate(horizons):
        targets[-h:, :, i] = float("nan")
    return DeviceTensors(features=features, mask=mask, targets=targets, target_ranks=rank_targets(targets, mask))


def random_graph(n_stocks: int, n_days: int, degree: int, device: torch.device, seed: int) -> GraphTensors:
    """One graph per day: each stock receives ``degree`` random neighbours (no self-loops)."""
    g = torch.Generator(device=device).manual_seed(seed + 1)
    per_day = n_stocks * degree
    dst = torch.arange(n_stocks, device=device).repeat_interleave(degree).repeat(n_days)
    src = (dst + torch.randint(1, n_stocks, (n_days * per_day,), generator=g, device=device)) % n_stocks
    attr = torch.stack(
        [
            torch.rand(n_days * per_day, generator=g, device=device) * 0.6 + 0.3,
            torch.randint(0, 2, (n_days * per_day,), generator=g, device=device).float(),
            torch.randint(0, 2, (n_days * per_day,), generator=g, device=device).float(),
        ],
        1,
    )
    return GraphTensors(
        edge_index=torch.stack([src, dst]),
        edge_attr=attr,
        graph_ptr=torch.arange(n_days + 1, device=device) * per_day,
        day_graph=torch.arange(n_days, device=device),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def module_dtypes(model: ATFTGATFAN) -> tuple[dict[str, str], list]:
    """Forward hooks recording each module's output dtype (the LSTM's included)."""
    seen: dict[str, str] = {}
    names = ["fan", "vsn", "temporal.lstm", "temporal.attention", "temporal", "graph", "fusion", "heads"]
    handles = []
    for name in names:
        module = model.get_submodule(name) if name.split(".")[0] in dict(model.named_children()) else None
        if module is None:
            continue

        def hook(mod, inputs, output, name=name):
            out = output[0] if isinstance(output, tuple) else output
            seen[name] = str(out.dtype).removeprefix("torch.")

        handles.append(module.register_forward_hook(hook))
    return seen, handles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--stocks", type=int, default=4000)
    parser.add_argument("--days", type=int, default=1700, help="training days (one epoch covers them all)")
    parser.add_argument("--forecast-days", type=int, default=None, help="default: 250, or --days if fewer")
    parser.add_argument("--features", type=int, default=N_FEATURES)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default=GPU_TRAINING["precision"])
    parser.add_argument("--hidden", type=int, default=GPU_MODEL["hidden_size"])
    parser.add_argument("--window", type=int, default=GPU_MODEL["window_days"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (training.compile)")
    args = parser.parse_args()
    if args.forecast_days is None:
        args.forecast_days = min(250, args.days)
    started = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device cuda but torch {torch.__version__} sees no CUDA device; use --device cpu")
    model_params = ModelParams.model_validate({**GPU_MODEL, "hidden_size": args.hidden, "window_days": args.window})
    loss_params = LossParams.model_validate(GPU_LOSS)
    training_params = TrainingParams.model_validate(
        {**GPU_TRAINING, "device": args.device, "precision": args.precision, "compile": args.compile}
    )
    horizons = sorted(loss_params.horizon_weights)
    torch.manual_seed(training_params.seed)

    n_days = args.days + args.forecast_days
    tensors = synthetic_tensors(args.stocks, n_days, args.features, horizons, device, training_params.seed)
    graph = random_graph(args.stocks, n_days, GRAPH_DEGREE, device, training_params.seed)
    model = ATFTGATFAN(model_params, args.features, len(horizons)).to(device)
    model.precision = args.precision
    run = _Run(
        model=model,
        forward_model=forward_model(model, training_params),
        tensors=tensors,
        graph=graph,
        levels=torch.tensor(model_params.quantiles, device=device),
        horizon_weights=torch.tensor([loss_params.horizon_weights[h] for h in horizons], device=device),
        loss_params=loss_params,
        params=training_params,
        window=model_params.window_days,
    )
    _sync(device)
    result: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "shapes": {
            "stocks": args.stocks, "train_days": args.days, "forecast_days": args.forecast_days,
            "features": args.features, "window": model_params.window_days, "hidden": model_params.hidden_size,
            "days_per_batch": training_params.days_per_batch, "graph_degree": GRAPH_DEGREE,
        },
        "precision": args.precision,
        "compile": args.compile,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "build_seconds": round(time.perf_counter() - started, 3),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    # (a) smoke: one batch forward/backward
    dtypes, handles = module_dtypes(model)
    model.train()
    batch = day_batch(tensors, np.arange(model_params.window_days, model_params.window_days + 4), run.window, graph)
    _, total, _ = _forward(run, batch)
    total.backward()
    grads_finite = all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)
    for handle in handles:
        handle.remove()
    result["smoke"] = {
        "loss": float(total.detach()),
        "loss_finite": bool(torch.isfinite(total).item()),
        "grads_finite": bool(grads_finite),
        "lstm_dtype": dtypes.get("temporal.lstm"),
        "module_dtypes": dtypes,
    }

    # (b) one epoch over every training day, the trainer's own step
    optimizer = make_optimizer(model, training_params)
    train_days = np.random.default_rng(training_params.seed).permutation(args.days)
    steps = len(_batches(train_days, training_params.days_per_batch))
    schedule = LrSchedule(training_params.lr, training_params.warmup_steps, steps)
    _sync(device)
    t0 = time.perf_counter()
    metrics, _, _, _ = _train_epoch(run, optimizer, train_days, schedule, 0, 1.0)
    _sync(device)
    epoch_s = time.perf_counter() - t0
    result["epoch"] = {
        "seconds": round(epoch_s, 3),
        "steps": steps,
        "stock_days_per_second": round(args.days * args.stocks / epoch_s, 1),
        "skipped_steps": int(metrics["skipped_steps"]),
        "loss": metrics["total"],
        "train_rankic_by_h": [round(float(v), 4) for v in metrics["rankic_by_h"]],
        "peak_gpu_memory_gib": (
            round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None
        ),
    }

    # (c) forecasting the last forecast_days days x all stocks
    model.forecast_days_per_batch = training_params.forecast_days_per_batch
    forecast_days = np.arange(args.days, n_days)
    _sync(device)
    t0 = time.perf_counter()
    quantiles = forecast_tensors(model, tensors, graph, forecast_days, training_params.forecast_days_per_batch)
    _sync(device)
    forecast_s = time.perf_counter() - t0
    result["forecast"] = {
        "seconds": round(forecast_s, 3),
        "days": args.forecast_days,
        "stock_days_per_second": round(args.forecast_days * args.stocks / forecast_s, 1),
        "finite_share": round(float(torch.isfinite(quantiles).float().mean()), 4),
    }
    if device.type == "cuda":
        result["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    result["targets"] = {"epoch_under_30s": epoch_s < 30.0, "forecast_under_5s": forecast_s < 5.0}
    result["total_seconds"] = round(time.perf_counter() - started, 3)
    result["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
