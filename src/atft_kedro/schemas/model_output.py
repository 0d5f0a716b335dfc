"""Schemas of the 07_model_output layer: every model's forecasts and the daily ranking."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

def quantile_column(quantile: float, horizon: int) -> str:
    """Name of a quantile forecast column, e.g. ``q0.1_5d``."""
    return f"q{quantile:g}_{horizon}d"


_FORECASTS = {
    r"^pred_\d+d$": pa.Column(pl.Float64, regex=True, nullable=True),
    r"^q[0-9.]+_\d+d$": pa.Column(pl.Float64, regex=True, nullable=True, required=False),
}

def _forecast_table(name: str, columns: dict[str, pa.Column], unique: list[str]) -> pa.DataFrameSchema:
    """A forecast table: ``Date``, ``Code``, ``columns``, then the forecast columns (strict, ``unique`` keys)."""
    return pa.DataFrameSchema(
        {
            "Date": pa.Column(pl.Date, nullable=False),
            "Code": pa.Column(pl.String, nullable=False),
            **columns,
            **_FORECASTS,
        },
        name=name,
        unique=unique,
        strict=True,
    )


#: Point forecasts ``pred_{h}d`` (and, for ATFT-GAT-FAN, quantiles ``q{p}_{h}d``) of every model.
PREDICTIONS = _forecast_table("predictions", {"model": pa.Column(pl.String, nullable=False)},
                              ["model", "Date", "Code"])

#: The stitched walk-forward forecasts: the predictions of every fold's own test block, with the fold.
WALK_FORWARD_PREDICTIONS = _forecast_table(
    "walk_forward_predictions",
    {"model": pa.Column(pl.String, nullable=False),
     "fold": pa.Column(pl.Int32, checks=[pa.Check.ge(0)], nullable=False)},
    ["model", "Date", "Code"],
)

#: The model's raw outputs on the newest date (inference), in its own units.
NEWEST_FORECASTS = _forecast_table(
    "newest_forecasts",
    {"rank": pa.Column(pl.Int32, checks=[pa.Check.ge(1)], nullable=False),
     "primary_horizon": pa.Column(pl.Int32, checks=[pa.Check.ge(1)], nullable=False)},
    ["Code"],
)

#: Tomorrow's ranking for a portfolio manager: one row per stock listed on the newest date,
#: rank 1 = highest score of the primary horizon; per horizon a z-score, rank, bucket and band.
DAILY_RANKING = pa.DataFrameSchema(
    {
        "Date": pa.Column(pl.Date, nullable=False),
        "Code": pa.Column(pl.String, nullable=False),
        "CompanyName": pa.Column(pl.String, nullable=True),
        "Sector33CodeName": pa.Column(pl.String, nullable=True),
        "MarketCodeName": pa.Column(pl.String, nullable=True),
        "last_close": pa.Column(pl.Float64, checks=[pa.Check.gt(0)], nullable=True),
        r"^adv_\d+d_yen$": pa.Column(pl.Float64, checks=[pa.Check.ge(0)], regex=True, nullable=True),
        "rank": pa.Column(pl.Int32, checks=[pa.Check.ge(1)], nullable=False),
        r"^score_\d+d$": pa.Column(pl.Float64, regex=True, nullable=True),
        r"^rank_\d+d$": pa.Column(pl.Int32, checks=[pa.Check.ge(1)], regex=True, nullable=False),
        r"^bucket_\d+d$": pa.Column(pl.Int32, checks=[pa.Check.ge(1)], regex=True, nullable=False),
        r"^band_\d+d$": pa.Column(pl.Float64, checks=[pa.Check.ge(0)], regex=True, nullable=True),
    },
    name="daily_ranking",
    unique=["Code"],
    strict=True,
)
