"""Helpers shared by the market-simulator tests: conf loading, overrides, RankIC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import yaml

CONF = Path(__file__).resolve().parents[2] / "conf"
HORIZONS = [1, 5, 10, 20]


def load_simulator_block(env: str) -> dict[str, Any]:
    """The ``simulator:`` block of ``conf/<env>/parameters_simulator.yml`` as a dict."""
    with (CONF / env / "parameters_simulator.yml").open(encoding="utf-8") as f:
        return yaml.safe_load(f)["simulator"]


def with_overrides(block: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of a simulator block with dotted-path overrides (``"prices.split_probability_per_year"``)."""
    out = yaml.safe_load(yaml.safe_dump(block))
    for path, value in overrides.items():
        node = out
        *parents, leaf = path.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return out


def mean_daily_rank_ic(bars: pl.DataFrame, oracle: pl.DataFrame, horizon: int) -> float:
    """Mean over days of the Spearman correlation between exp_ret_{h}d and AdjC(t+h)/AdjC(t) - 1."""
    forward = (pl.col("AdjC").shift(-horizon).over("Code", order_by="Date") / pl.col("AdjC") - 1).alias("fwd")
    frame = (
        bars.select("Date", "Code", "AdjC")
        .with_columns(forward)
        .drop_nulls("fwd")
        .join(oracle.select("Date", "Code", f"exp_ret_{horizon}d"), on=["Date", "Code"])
        .with_columns(
            pl.col(f"exp_ret_{horizon}d").rank().over("Date").alias("rank_pred"),
            pl.col("fwd").rank().over("Date").alias("rank_real"),
        )
    )
    daily = frame.group_by("Date").agg(pl.corr("rank_pred", "rank_real").alias("ic")).drop_nans()
    return float(daily["ic"].mean())
