"""Schemas of the 01_raw layer: tables as the source delivers them (J-Quants API v2 names).

Catalog entries name these objects in their ``validator:`` key, e.g.
``validator: atft_kedro.schemas.raw.DAILY_BARS``; the catalog's ``raw_{table}`` dataset factory
names each by its table, ``atft_kedro.schemas.raw.daily_bars`` (see :func:`__getattr__`).
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from atft_kedro.schemas import tables

TRADING_CALENDAR = tables.TRADING_CALENDAR.raw_schema()
EQUITIES_MASTER = tables.EQUITIES_MASTER.raw_schema()
DAILY_BARS = tables.DAILY_BARS.raw_schema()
TOPIX = tables.TOPIX.raw_schema()
INVESTOR_TYPES = tables.INVESTOR_TYPES.raw_schema()
MARGIN_INTEREST = tables.MARGIN_INTEREST.raw_schema()
MARGIN_ALERT = tables.MARGIN_ALERT.raw_schema()
SHORT_RATIO = tables.SHORT_RATIO.raw_schema()
SHORT_POSITIONS = tables.SHORT_POSITIONS.raw_schema()
FIN_SUMMARY = tables.FIN_SUMMARY.raw_schema()
EARNINGS_DATES = tables.EARNINGS_DATES.raw_schema()

#: Prefix of the oracle's columns: ``exp_ret_{h}d`` is E[AdjC(t+h)/AdjC(t) - 1 | state at t].
ORACLE_COLUMN_PREFIX = "exp_ret_"

#: True expected forward returns of the simulated market (empty for real sources).
#: Only evaluation may read it.
ORACLE_EXPECTED_RETURNS = pa.DataFrameSchema(
    {
        "Date": pa.Column(pl.Date, nullable=False),
        "Code": pa.Column(pl.String, nullable=False),
        rf"^{ORACLE_COLUMN_PREFIX}\d+d$": pa.Column(
            pl.Float64, checks=[tables.finite_check()], regex=True, nullable=True
        ),
    },
    name="oracle_expected_returns",
    unique=["Date", "Code"],
    strict=True,
)


def __getattr__(name: str) -> pa.DataFrameSchema:
    """A raw table's schema by the table's name (``daily_bars`` -> ``DAILY_BARS``), for ``raw_{table}``."""
    schema = globals().get(name.upper()) if name.islower() else None
    if isinstance(schema, pa.DataFrameSchema):
        return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} (no raw table schema {name.upper()})")
