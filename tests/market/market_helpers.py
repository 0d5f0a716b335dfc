"""Helpers shared by the market-simulator tests: conf loading, overrides, RankIC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import yaml

from atft_kedro.labels import LabelParams, with_forward_labels

CONF = Path(__file__).resolve().parents[2] / "conf"
HORIZONS = [1, 5, 10, 20]
#: The project's default label (conf/base/parameters.yml): entry at the next day's open.
LABELS = LabelParams(entry="next_open")


def load_simulator_block(env: str) -> dict[str, Any]:
    """The ``simulator:`` block of ``env`` (``conf/base`` with ``conf/<env>`` merged over it) as a dict."""
    from atft_kedro.config import ProjectConfigLoader

    loader = ProjectConfigLoader(conf_source=str(CONF), base_env="base", default_run_env=env, env=env)
    return dict(loader["parameters"]["simulator"])


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


def mean_daily_rank_ic(bars: pl.DataFrame, oracle: pl.DataFrame, horizon: int,
                       labels: LabelParams = LABELS) -> float:
    """Mean over days of the Spearman correlation between exp_ret_{h}d and the label P(t+1+h)/P(t+1) - 1."""
    frame = (
        with_forward_labels(
            bars.lazy().select("Date", "Code", pl.col("AdjO").alias("AdjustmentOpen"),
                               pl.col("AdjC").alias("AdjustmentClose")).sort("Code", "Date"),
            labels, [horizon], by="Code",
        ).collect()
        .rename({f"target_ret_{horizon}d": "fwd"})
        .drop_nulls("fwd")
        .join(oracle.select("Date", "Code", f"exp_ret_{horizon}d"), on=["Date", "Code"])
        .with_columns(
            pl.col(f"exp_ret_{horizon}d").rank().over("Date").alias("rank_pred"),
            pl.col("fwd").rank().over("Date").alias("rank_real"),
        )
    )
    daily = frame.group_by("Date").agg(pl.corr("rank_pred", "rank_real").alias("ic")).drop_nans()
    return float(daily["ic"].mean())
