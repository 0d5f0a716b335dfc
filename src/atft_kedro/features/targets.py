"""Targets: the tradable forward returns of :mod:`atft_kedro.labels`, per stock on its own trading rows.

Never inputs: the manifest refuses any ``target_`` name, and normalization/training read
them from this separate dataset.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import CODE, CODE_IDX, DATE
from atft_kedro.features.panel import StockPanel
from atft_kedro.labels import LabelParams, with_forward_labels


def build_targets(panel: StockPanel, horizons: list[int], labels: LabelParams) -> pl.DataFrame:
    """``target_ret_{h}d`` = P(t+1+h) / P(t+1) - 1, P the price of ``labels.entry`` (see ``labels``).

    t+1 and t+1+h count the stock's panel rows (its trading days, untraded days included with
    the last traded price carried); null where the exit row does not exist yet. Rows and
    order match ``features`` (Date, Code).

    Raises:
        ValueError: a horizon is not a positive integer.
    """
    targets = with_forward_labels(
        panel.frame.lazy().select(DATE, CODE, CODE_IDX, "AdjustmentOpen", "AdjustmentClose"),
        labels, horizons, by=CODE_IDX,
    ).select(DATE, CODE, pl.col("^target_ret_.*$")).collect()
    return panel.in_output_order(targets)
