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

from atft_kedro.labels import LabelParams, with_forward_labels  # noqa: E402
from atft_kedro.market import SimulatorParams, simulate_market  # noqa: E402


def load_params(env: str) -> tuple[SimulatorParams, list[int], LabelParams]:
    """The ``simulator:`` block of ``conf/<env>`` (merged over base), the horizons (globals) and labels of ``conf/base``."""
    from atft_kedro.config import ProjectConfigLoader

    loader = ProjectConfigLoader(conf_source=str(ROOT / "conf"), base_env="base", default_run_env=env, env=env)
    params = SimulatorParams(**loader["parameters"]["simulator"])
    with (ROOT / "conf" / "base" / "globals.yml").open(encoding="utf-8") as f:
        horizons = [int(h) for h in yaml.safe_load(f)["horizons"]]
    with (ROOT / "conf" / "base" / "parameters.yml").open(encoding="utf-8") as f:
        labels = LabelParams(**yaml.safe_load(f)["labels"])
    return params, horizons, labels


def mean_daily_rank_ic(bars: pl.DataFrame, oracle: pl.DataFrame, horizon: int, labels: LabelParams) -> float:
    """Mean over days of Spearman(exp_ret_{h}d, the label P(t+1+h) / P(t+1) - 1)."""
    daily = (
        with_forward_labels(
            bars.lazy().select("Date", "Code", pl.col("AdjO").alias("AdjustmentOpen"),
                               pl.col("AdjC").alias("AdjustmentClose")).sort("Code", "Date"),
            labels, [horizon], by="Code",
        )
        .rename({f"target_ret_{horizon}d": "fwd"})
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

    params, horizons, labels = load_params(args.env)
    print(f"conf/{args.env}: {params.n_stocks} stocks listed at start, {params.start_date}..{params.end_date}, "
          f"horizons {horizons}")
    started = time.perf_counter()
    result = simulate_market(params, horizons, labels)
    seconds = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"simulate_market: {seconds:.1f} s, peak RSS {peak_gib:.2f} GiB")
    for name, df in result.items():
        print(f"  {name:28s} {df.height:>12,d} rows x {df.width} columns")
    if args.rank_ic:
        bars, oracle = result["raw_daily_bars"], result["oracle_expected_returns"]
        for h in horizons:
            print(f"oracle mean daily RankIC, {h:>2d}d: {mean_daily_rank_ic(bars, oracle, h, labels):.4f}")


if __name__ == "__main__":
    main()
