"""Forecast throughput on the CPU (or CUDA): stock-days per second of ``forecast_days``.

Usage (full runs only through the shared lock on the 2-core machine):

    flock /tmp/atft_bench.lock python benchmarks/bench_forecast.py \
        --stocks 500 --days 245 --features 282 --hidden 32 --window 20 --threads 1

Builds a random dense model input (``bench_training.random_model_input``: features N(0,1),
10 random graph neighbours per stock) and an untrained ATFT-GAT-FAN with FAN and GAT on,
then forecasts every day after the first window once to warm up and ``--repeats`` times
timed, and prints one JSON line: seconds (best and median), stock-days per second, peak RSS.

Runs against whichever ``atft_kedro`` is first on ``sys.path``, so the same script times an
older checkout (``PYTHONPATH=<checkout>/src``): both signatures of ``forecast_days`` (with
``with_weights`` before the device-resident forecasting, with ``days_per_batch`` after) are
accepted.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import statistics
import time

import numpy as np
import torch

from bench_training import random_model_input

from atft_kedro.model import checkpoint
from atft_kedro.model.network import ATFTGATFAN
from atft_kedro.model.params import ModelParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stocks", type=int, default=500)
    parser.add_argument("--days", type=int, default=245, help="days forecast (the window adds its own before)")
    parser.add_argument("--features", type=int, default=282)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--days-per-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    torch.manual_seed(0)

    model_input, _, graph = random_model_input(args.stocks, args.days + args.window, args.features, seed=0)
    params = ModelParams(
        hidden_size=args.hidden, lstm_layers=1, attention_heads=4, dropout=0.1, window_days=args.window,
        fan={"enabled": True, "top_k": 2}, gat={"enabled": True, "layers": 1, "heads": 4, "gate_init": 0.0},
        quantiles=(0.1, 0.5, 0.9),
    )
    model = ATFTGATFAN(params, args.features, len(model_input.horizons)).to(args.device).eval()
    days = np.arange(args.window, args.window + args.days)
    signature = inspect.signature(checkpoint.forecast_days).parameters
    extra = {"days_per_batch": args.days_per_batch} if "days_per_batch" in signature else {"with_weights": False}

    def forecast() -> float:
        started = time.perf_counter()
        checkpoint.forecast_days(model, model_input, graph, days, **extra)
        if args.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    forecast()  # warm-up
    seconds = [forecast() for _ in range(args.repeats)]
    stock_days = int(model_input.mask[days].sum())
    print(json.dumps({
        "stocks": args.stocks, "days": args.days, "features": args.features, "hidden": args.hidden,
        "window": args.window, "threads": torch.get_num_threads(), "device": args.device,
        "signature": "days_per_batch" if "days_per_batch" in signature else "with_weights",
        "seconds_best": round(min(seconds), 2), "seconds_median": round(statistics.median(seconds), 2),
        "stock_days_per_second": round(stock_days / min(seconds), 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
