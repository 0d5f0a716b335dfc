"""Benchmark of the market simulator on the full universe (conf/gpu: ~4,000 stocks, 10 years).

Prints the wall-clock seconds of ``simulate_market``, the peak resident memory of the process
and the row count of every table; with ``--rank-ic`` also the oracle's mean daily RankIC per
horizon (computed after the timing and the memory reading).

Run it alone, it is big:

    flock /tmp/atft_bench.lock python benchmarks/bench_simulator.py [--env gpu] [--rank-ic]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import polars as pl
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from atft_kedro.market import SimulatorParams, simulate_market  # noqa: E402


def load_params(env: str) -> tuple[SimulatorParams, list[int]]:
    """The ``simulator:`` block of ``conf/<env>`` and the horizons of ``conf/base/parameters.yml``."""
    with (ROOT / "conf" / env / "parameters_simulator.yml").open(encoding="utf-8") as f:
        params = SimulatorParams(**yaml.safe_load(f)["simulator"])
    with (ROOT / "conf" / "base" / "parameters.yml").open(encoding="utf-8") as f:
        horizons = [int(h) for h in yaml.safe_load(f)["horizons"]]
    return params, horizons


def mean_daily_rank_ic(bars: pl.DataFrame, oracle: pl.DataFrame, horizon: int) -> float:
    """Mean over days of Spearman(exp_ret_{h}d, AdjC(t+h) / AdjC(t) - 1)."""
    forward = (pl.col("AdjC").shift(-horizon).over("Code", order_by="Date") / pl.col("AdjC") - 1).alias("fwd")
    daily = (
        bars.lazy()
        .select("Date", "Code", "AdjC")
        .with_columns(forward)
        .drop_nulls("fwd")
        .join(oracle.lazy().select("Date", "Code", f"exp_ret_{horizon}d"), on=["Date", "Code"])
        .group_by("Date")
        .agg(pl.corr(f"exp_ret_{horizon}d", "fwd", method="spearman").alias("ic"))
        .drop_nans()
        .collect()
    )
    return float(daily["ic"].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="gpu", help="conf environment whose parameters_simulator.yml to use")
    parser.add_argument("--rank-ic", action="store_true", help="also measure the oracle's RankIC")
    args = parser.parse_args()

    params, horizons = load_params(args.env)
    print(f"conf/{args.env}: {params.n_stocks} stocks listed at start, {params.start_date}..{params.end_date}, "
          f"horizons {horizons}")
    started = time.perf_counter()
    result = simulate_market(params, horizons)
    seconds = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"simulate_market: {seconds:.1f} s, peak RSS {peak_gib:.2f} GiB")
    for name, df in result.items():
        print(f"  {name:28s} {df.height:>12,d} rows x {df.width} columns")
    if args.rank_ic:
        bars, oracle = result["raw_daily_bars"], result["oracle_expected_returns"]
        for h in horizons:
            print(f"oracle mean daily RankIC, {h:>2d}d: {mean_daily_rank_ic(bars, oracle, h):.4f}")


if __name__ == "__main__":
    main()
