"""Time the training loss (forward + backward) and the exact RankIC metric at a market's width.

Usage (one intra-op thread unless ``--threads`` says otherwise; the 2-core machine is shared):

    PYTHONPATH=src python benchmarks/bench_loss.py --stocks 4000 --days 1 --horizons 4 --quantiles 5

Builds random forecasts [B, N, H, Q] (requiring grad) and targets [B, N, H] with 2% missing,
then times ``combined_loss`` forward, its backward, and ``rank_ic`` (exact Spearman per day,
the training metric), each the median of ``--repeats`` runs after one warm-up. Prints the
load average (other people's work on the machine slows every figure) and the peak RSS.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import time

import numpy as np
import torch
from peak_memory import PeakMemory

from atft_kedro.model import losses
from atft_kedro.model.params import LossParams


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stocks", type=int, default=4000)
    parser.add_argument("--days", type=int, default=1, help="days per batch B")
    parser.add_argument("--horizons", type=int, default=4)
    parser.add_argument("--quantiles", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    b, n, h, q = args.days, args.stocks, args.horizons, args.quantiles
    point = rng.standard_normal((b, n, h)).astype(np.float32) * 0.01
    targets = (0.3 * point + 0.01 * rng.standard_normal((b, n, h))).astype(np.float32)
    targets[rng.random((b, n, h)) < 0.02] = np.nan
    levels = torch.linspace(0.1, 0.9, q)
    spread = torch.linspace(-0.01, 0.01, q)
    base = torch.tensor(point).unsqueeze(-1) + spread
    targets_t = torch.tensor(targets)
    stock_mask = torch.ones(b, n, dtype=torch.bool)
    params = LossParams(
        pinball_weight=1.0, rank_weight=0.5, ic_weight=0.25, sharpe_weight=0.1,
        horizon_weights={i + 1: 1.0 for i in range(h)}, rank_temperature=args.temperature,
    )
    hw = torch.ones(h)
    valid = losses.valid_mask(targets_t, stock_mask)
    extra = {}
    if "target_ranks" in inspect.signature(losses.combined_loss).parameters:
        extra["target_ranks"] = losses.average_ranks(targets_t, valid)  # once per run in the trainer
    state = {}

    def forward() -> None:
        quantiles = base.clone().requires_grad_(True)
        total, _ = losses.combined_loss(quantiles, targets_t, stock_mask, levels, q // 2, hw, params, **extra)
        state["total"] = total

    def backward() -> None:
        state["total"].backward()

    def forward_backward() -> None:
        forward()
        backward()

    def metric() -> None:
        losses.rank_ic(base[..., q // 2], targets_t, valid)

    with PeakMemory() as peak:
        t_forward = _median_seconds(forward, args.repeats)
        t_both = _median_seconds(forward_backward, args.repeats)
        t_metric = _median_seconds(metric, args.repeats)
    print(
        f"loss at {n} stocks x {b} day(s) x {h} horizons x {q} quantiles, temperature {args.temperature}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"forward {t_forward:.4f}s, backward {t_both - t_forward:.4f}s, forward+backward {t_both:.4f}s, "
        f"exact RankIC metric {t_metric:.4f}s; peak RSS {peak.rss / 2**30:.2f} GiB; "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
