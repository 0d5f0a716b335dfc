"""The stock panel every feature group starts from: one row per trading Date x listed Code.

A stock is in the panel on date t when ``daily_quotes`` has its row on t (a trading day)
and ``listed_info`` has a snapshot for it dated <= t (as-of, never back-filled). Sector
and market come from that snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from atft_kedro.features.base import CODE, CODE_IDX, DATE, DAY, POS, lag
from atft_kedro.features.calendar import asof_backward, trading_day_index, trading_days

logger = logging.getLogger(__name__)

#: Columns of the panel frame besides the keys and indices.
CLOSE = "_close"  # AdjustmentClose, carried forward over untraded days (own past only)
RAW_CLOSE = "_raw_close"  # Close, carried forward over untraded days
VOLUME = "_volume"  # AdjustmentVolume, 0 on untraded days
RAW_VOLUME = "_raw_volume"  # Volume, 0 on untraded days
TURNOVER = "_turnover"  # TurnoverValue (yen), 0 on untraded days
RET1 = "_ret1"  # simple 1-day return of CLOSE
LOGRET1 = "_logret1"  # log 1-day return of CLOSE
LOG_ADJ = "_log_adj"  # running sum of log AdjustmentFactor (split adjustment to date)
LIMIT_UP = "_limit_up"  # the close hit the daily upper price limit
LIMIT_DOWN = "_limit_down"  # the close hit the daily lower price limit

_QUOTE_COLUMNS = (
    "Date", "Code", "Open", "High", "Low", "Close", "UpperLimit", "LowerLimit", "Volume",
    "TurnoverValue", "AdjustmentFactor", "AdjustmentOpen", "AdjustmentHigh", "AdjustmentLow",
    "AdjustmentClose", "AdjustmentVolume",
)
_INFO_COLUMNS = ("Code", "Date", "Sector17Code", "Sector33Code", "MarketCode")
#: What the panel keeps (the rest of the quotes is not used by any feature).
_PANEL_COLUMNS = (
    DATE, CODE, DAY, POS, CODE_IDX, "Sector33Code", "Sector17Code", "MarketCode", "Close",
    "AdjustmentOpen", "AdjustmentHigh", "AdjustmentLow", "AdjustmentClose",
    CLOSE, RAW_CLOSE, VOLUME, RAW_VOLUME, TURNOVER, LOG_ADJ, RET1, LOGRET1, LIMIT_UP, LIMIT_DOWN,
)


@dataclass(frozen=True)
class StockPanel:
    """Canonical quotes on the exchange calendar, with as-of sector and market.

    Attributes:
        frame: one row per (Code, trading Date), sorted by Code then Date; columns Date,
            Code, ``_d`` (index into ``trading_days``), ``_pos`` (row number within the
            stock), ``_c`` (index into ``codes``), Sector33Code, Sector17Code, MarketCode,
            the quote columns and the derived columns named in this module.
        trading_days: every trading day of the calendar, ascending.
        codes: the codes of daily_quotes, ascending (``_c`` indexes them).
        output_order: row indices of ``frame`` that list it by (Date, Code).
    """

    frame: pl.DataFrame
    trading_days: pl.Series
    codes: pl.Series
    output_order: pl.Series

    @property
    def height(self) -> int:
        return self.frame.height

    def in_output_order(self, columns: pl.DataFrame) -> pl.DataFrame:
        """Reorder a frame aligned with ``frame`` (same rows) into (Date, Code) order.

        Column by column, taking each out of ``columns`` as it goes (``columns`` is left
        empty), so the reordering needs memory for one extra column, not a second frame.
        """
        if columns.width == 0:
            return columns
        if columns.height != self.frame.height:
            raise ValueError(
                f"frame of {columns.height} rows is not aligned with the panel's {self.frame.height}")
        names = columns.columns
        return pl.DataFrame([columns.drop_in_place(n).gather(self.output_order) for n in names])

    def code_index(self, values: pl.Series) -> pl.Series:
        """``_c`` of each code (Int32), null for codes that are not in the panel."""
        return code_index(self.codes, values)

    def output_column(self, name: str) -> pl.Series:
        """One column of ``frame`` in (Date, Code) order."""
        return self.frame.get_column(name).gather(self.output_order)

    def keys(self) -> pl.DataFrame:
        """Date and Code in output order."""
        return self.in_output_order(self.frame.select(DATE, CODE))


def code_index(codes: pl.Series, values: pl.Series) -> pl.Series:
    """Position of each value in the ascending ``codes`` (Int32), null where it is not one of them."""
    position = codes.search_sorted(values, side="left").cast(pl.Int64)
    found = codes.gather(position.clip(upper_bound=max(codes.len() - 1, 0)))
    return pl.select(pl.when((position < codes.len()) & (found == values)).then(position.cast(pl.Int32))
                     ).to_series().rename(CODE_IDX)


def _require(table: pl.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    if table is None or table.height == 0:
        raise ValueError(f"table '{name}' is missing or empty; the feature pipeline cannot start without it")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"table '{name}' lacks columns {missing}")


def build_stock_panel(
    daily_quotes: pl.DataFrame, listed_info: pl.DataFrame, trading_calendar: pl.DataFrame
) -> StockPanel:
    """Build the panel from the canonical quotes, listed master and exchange calendar.

    Raises:
        ValueError: a table is empty or lacks columns, or quotes fall on closed days.
    """
    _require(daily_quotes, "daily_quotes", _QUOTE_COLUMNS)
    _require(listed_info, "listed_info", _INFO_COLUMNS)
    days = trading_days(trading_calendar)

    quotes = daily_quotes.select(_QUOTE_COLUMNS)
    codes = quotes.get_column(CODE).unique().sort()
    quotes = quotes.with_columns(
        codes.search_sorted(quotes.get_column(CODE), side="left").cast(pl.Int32).alias(CODE_IDX),
        trading_day_index(quotes.get_column(DATE), days, "daily_quotes").alias(DAY),
    )
    # sort by integer keys (cheaper than by strings), gathering every column once
    order = quotes.select(pl.arg_sort_by([CODE_IDX, DAY])).to_series()
    quotes = quotes.select(pl.all().gather(order))
    info = listed_info.select(_INFO_COLUMNS[1:]).with_columns(
        pl.col(DATE).alias("_info_date"), code_index(codes, listed_info.get_column(CODE)).alias(CODE_IDX),
    ).drop(DATE).drop_nulls(CODE_IDX).unique([CODE_IDX, "_info_date"], keep="last", maintain_order=True)
    joined = asof_backward(
        quotes.lazy(), info.lazy(), left_on=DATE, right_on="_info_date", by=CODE_IDX).collect()
    unlisted = joined.get_column("_info_date").null_count()
    if unlisted:
        logger.info("panel: %d quote rows precede the stock's first listed_info snapshot and are left out",
                    unlisted)
    joined = joined.filter(pl.col("_info_date").is_not_null()).drop("_info_date")
    if joined.height == 0:
        raise ValueError("no daily_quotes row has a listed_info snapshot dated on or before it")
    frame = joined.with_columns(pl.int_range(pl.len(), dtype=pl.Int32).over(CODE_IDX).alias(POS))
    close = pl.col("AdjustmentClose").forward_fill().over(CODE_IDX)
    frame = (
        frame.lazy()
        .with_columns(
            close.alias(CLOSE),
            pl.col("Close").forward_fill().over(CODE_IDX).alias(RAW_CLOSE),
            pl.col("AdjustmentVolume").fill_null(0.0).alias(VOLUME),
            pl.col("Volume").fill_null(0.0).alias(RAW_VOLUME),
            pl.col("TurnoverValue").fill_null(0.0).alias(TURNOVER),
            pl.col("AdjustmentFactor").log().cum_sum().over(CODE_IDX).alias(LOG_ADJ),
        )
        .with_columns(
            (pl.col(CLOSE) / lag(pl.col(CLOSE), 1) - 1.0).alias(RET1),
            (pl.col(CLOSE).log() - lag(pl.col(CLOSE).log(), 1)).alias(LOGRET1),
            (pl.col("UpperLimit") == "1").fill_null(False).alias(LIMIT_UP),
            (pl.col("LowerLimit") == "1").fill_null(False).alias(LIMIT_DOWN),
        )
        .select(_PANEL_COLUMNS)
        .collect()
    )
    frame = frame.rechunk()  # contiguous columns: rolling windows and gathers do not re-copy them
    order = frame.select(pl.arg_sort_by([DAY, CODE_IDX])).to_series().rename("_order")
    return StockPanel(frame=frame, trading_days=days, codes=codes, output_order=order)
