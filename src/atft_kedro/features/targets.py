"""Targets: forward returns on the adjusted close, per stock on its own trading rows.

Never inputs: the manifest refuses any ``target_`` name, and normalization/training read
them from this separate dataset.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import CODE, DATE
from atft_kedro.features.panel import StockPanel


def build_targets(panel: StockPanel, horizons: list[int]) -> pl.DataFrame:
    """Forward returns ``target_ret_{h}d`` = AdjustmentClose(t+h)/AdjustmentClose(t) - 1.

    t+h counts the stock's own panel rows; null where that row does not exist yet or a
    price is missing. Rows and order match ``features`` (Date, Code).

    Raises:
        ValueError: a horizon is not a positive integer.
    """
    bad = [h for h in horizons if not isinstance(h, int) or h < 1]
    if bad or not horizons:
        raise ValueError(f"params:horizons must be positive integers, got {horizons}")
    adj = pl.col("AdjustmentClose")
    targets = panel.frame.lazy().select(
        DATE, CODE,
        *[(adj.shift(-h).over(CODE) / adj - 1.0).cast(pl.Float64).alias(f"target_ret_{h}d")
          for h in horizons],
    ).collect()
    return panel.in_output_order(targets)
