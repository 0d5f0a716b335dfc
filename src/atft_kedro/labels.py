"""The one definition of what a forecast is judged against: the tradable forward return.

A forecast for signal date t uses what is known at the close of t. The earliest it can be
traded is the first trading day after t, so every label, metric and portfolio of the
project measures the return from that entry to an exit h trading days later, at the same
price type:

    target_ret_{h}d(t) = P(t + 1 + h) / P(t + 1) - 1

with trading-day offsets counted on the stock's own rows of the exchange calendar and P the
split-adjusted price named by ``labels.entry`` in conf:

* ``next_open`` (default): ``AdjustmentOpen``, entry at the next day's opening auction;
* ``next_close``: ``AdjustmentClose``, entry at the next day's close.

A day without a trade (J-Quants sends null O/H/L/C and volume 0) carries the last traded
price: the previous close for an open, the last close for a close. Portfolios trade at
exactly these prices (:func:`period_returns` feeds them), so IC and P&L measure the same
thing. The simulator's oracle is the expected value of the same window.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from atft_kedro.schemas.strict import StrictModel

#: Trading days from the signal date to the entry (the first trading day after t).
ENTRY_LAG_DAYS = 1

#: The label, as the report and the docs state it.
LABEL_FORMULA = (
    "target_ret_{h}d(t) = P(t+1+h) / P(t+1) - 1: entry on the first trading day after the signal "
    "date t, exit h trading days after entry, at the same split-adjusted price P"
)

PRICE_COLUMNS = {"next_open": "AdjustmentOpen", "next_close": "AdjustmentClose"}
#: The TOPIX column of the same price type (the long-only portfolio's benchmark).
INDEX_PRICE_COLUMNS = {"next_open": "Open", "next_close": "Close"}


class LabelParams(StrictModel):
    """``params:labels``: which price a portfolio formed on the signal of t trades at.

    Attributes:
        entry: ``next_open`` (AdjustmentOpen of t+1 -> AdjustmentOpen of t+1+h) or
            ``next_close`` (AdjustmentClose of t+1 -> AdjustmentClose of t+1+h).
    """

    entry: Literal["next_open", "next_close"]

    @property
    def price_column(self) -> str:
        """The canonical ``daily_quotes`` column the label trades at."""
        return PRICE_COLUMNS[self.entry]

    @property
    def index_price_column(self) -> str:
        """The canonical ``topix`` column of the same price type (the benchmark trades there too)."""
        return INDEX_PRICE_COLUMNS[self.entry]

    def describe(self) -> str:
        """The label formula with P named, for the report header."""
        return f"{LABEL_FORMULA}; P = {self.price_column} ({self.entry})"


def traded_price(labels: LabelParams, by: str) -> pl.Expr:
    """The price a trade of ``labels.entry`` gets on each row, carried over untraded days.

    Works on a frame sorted by ``by`` (the stock) then date, with the canonical columns
    ``AdjustmentOpen`` and ``AdjustmentClose`` (null on a day without a trade).

    * ``next_close``: AdjustmentClose, null filled with the stock's last traded close;
    * ``next_open``: AdjustmentOpen, null filled with the stock's last traded close before
      that day (the price an order at the open of an untraded day is marked at).
    """
    last_close = pl.col("AdjustmentClose").forward_fill()
    if labels.entry == "next_close":
        return last_close.over(by)
    return pl.coalesce(pl.col("AdjustmentOpen"), last_close.shift(1).over(by))


def with_forward_labels(frame: pl.LazyFrame, labels: LabelParams, horizons: list[int], by: str) -> pl.LazyFrame:
    """Add ``target_ret_{h}d`` = P(t+1+h) / P(t+1) - 1 per horizon to a frame sorted by ``by``, date.

    The offsets count the stock's own rows, which are its trading days; null where the exit
    row does not exist yet (the end of the data, a delisting). A temporary ``_label_price``
    column is added and dropped.
    """
    bad = [h for h in horizons if not isinstance(h, int) or h < 1]
    if bad or not horizons:
        raise ValueError(f"params:horizons must be positive integers, got {horizons}")
    price = pl.col("_label_price")
    entry = price.shift(-ENTRY_LAG_DAYS).over(by)
    return (
        frame.with_columns(traded_price(labels, by).alias("_label_price"))
        .with_columns(
            (price.shift(-(ENTRY_LAG_DAYS + h)).over(by) / entry - 1.0).cast(pl.Float64).alias(f"target_ret_{h}d")
            for h in horizons
        )
        .drop("_label_price")
    )


def period_returns(daily_quotes: pl.DataFrame, labels: LabelParams) -> pl.DataFrame:
    """One-period return ``ret_1d`` = P(s) / P(s-1) - 1 of each stock at the label's price, dated s.

    A cohort entered at P(t+1) and held for h days earns the returns dated t+2 .. t+1+h,
    whose product is exactly the label's P(t+1+h) / P(t+1).

    Returns:
        Date, Code, ret_1d (null on a stock's first row).
    """
    missing = {"Date", "Code", "AdjustmentOpen", "AdjustmentClose"} - set(daily_quotes.columns)
    if missing:
        raise ValueError(f"table daily_quotes lacks columns {sorted(missing)} needed for the label's returns")
    price = traded_price(labels, "Code")
    return (
        daily_quotes.lazy()
        .select("Date", "Code", "AdjustmentOpen", "AdjustmentClose")
        .sort("Code", "Date")
        .with_columns(price.alias("_price"))
        .with_columns((pl.col("_price") / pl.col("_price").shift(1).over("Code") - 1.0).alias("ret_1d"))
        .select("Date", "Code", "ret_1d")
        .collect()
    )
