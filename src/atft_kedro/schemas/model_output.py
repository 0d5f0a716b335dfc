"""Schemas of the 07_model_output layer: every model's forecasts and the daily ranking."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

_FORECASTS = {
    r"^pred_\d+d$": pa.Column(pl.Float64, regex=True, nullable=True),
    r"^q[0-9.]+_\d+d$": pa.Column(pl.Float64, regex=True, nullable=True, required=False),
}

#: Point forecasts ``pred_{h}d`` (and, for ATFT-GAT-FAN, quantiles ``q{p}_{h}d``) of every model.
PREDICTIONS = pa.DataFrameSchema(
    {
        "Date": pa.Column(pl.Date, nullable=False),
        "Code": pa.Column(pl.String, nullable=False),
        "model": pa.Column(pl.String, nullable=False),
        **_FORECASTS,
    },
    name="predictions",
    unique=["model", "Date", "Code"],
    strict=True,
)

#: The stitched walk-forward forecasts: the predictions of every fold's own test block, with the fold.
WALK_FORWARD_PREDICTIONS = pa.DataFrameSchema(
    {
        "Date": pa.Column(pl.Date, nullable=False),
        "Code": pa.Column(pl.String, nullable=False),
        "model": pa.Column(pl.String, nullable=False),
        "fold": pa.Column(pl.Int32, checks=[pa.Check.ge(0)], nullable=False),
        **_FORECASTS,
    },
    name="walk_forward_predictions",
    unique=["model", "Date", "Code"],
    strict=True,
)

#: Tomorrow's ranking: one row per stock listed on the newest date, rank 1 = highest forecast.
DAILY_RANKING = pa.DataFrameSchema(
    {
        "Date": pa.Column(pl.Date, nullable=False),
        "Code": pa.Column(pl.String, nullable=False),
        "rank": pa.Column(pl.Int32, checks=[pa.Check.ge(1)], nullable=False),
        **_FORECASTS,
    },
    name="daily_ranking",
    unique=["Code"],
    strict=True,
)
