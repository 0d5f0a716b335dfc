"""Schemas of the 04_feature layer: features, targets and the stock graph.

The feature columns themselves are defined by the feature manifest (their order and
count are checked against it by the feature pipeline); the schema enforces the keys,
their uniqueness and that every feature is float32.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

_KEYS = {
    "Date": pa.Column(pl.Date, nullable=False),
    "Code": pa.Column(pl.String, nullable=False),
}

#: One row per trading Date x listed Code; every other column a float32 feature.
FEATURES = pa.DataFrameSchema(
    {**_KEYS, r"^[a-z][a-z0-9]*_.+$": pa.Column(pl.Float32, regex=True, nullable=True)},
    name="features",
    unique=["Date", "Code"],
    strict=True,
)

#: Forward returns ``target_ret_{h}d`` = AdjustmentClose(t+h)/AdjustmentClose(t) - 1; never model inputs.
TARGETS = pa.DataFrameSchema(
    {**_KEYS, r"^target_ret_\d+d$": pa.Column(pl.Float64, regex=True, nullable=True)},
    name="targets",
    unique=["Date", "Code"],
    strict=True,
)

#: Dated edges of the correlation graph (Date = the day the graph becomes valid).
STOCK_GRAPH = pa.DataFrameSchema(
    {
        "Date": pa.Column(pl.Date, nullable=False),
        "SourceCode": pa.Column(pl.String, nullable=False),
        "TargetCode": pa.Column(pl.String, nullable=False),
        "rho": pa.Column(pl.Float64, checks=[pa.Check.in_range(-1.0, 1.0)], nullable=False),
        "same_sector": pa.Column(pl.Float64, checks=[pa.Check.isin([0.0, 1.0])], nullable=False),
        "same_market": pa.Column(pl.Float64, checks=[pa.Check.isin([0.0, 1.0])], nullable=False),
    },
    name="stock_graph",
    unique=["Date", "SourceCode", "TargetCode"],
    strict=True,
)
