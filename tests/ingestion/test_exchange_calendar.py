"""One calendar rule everywhere: HolDiv/HolidayDivision '1' and '2' trade, '0' and '3' do not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from atft_kedro import exchange_calendar
from atft_kedro.features.calendar import next_trading_day
from atft_kedro.features.calendar import trading_days as feature_trading_days
from atft_kedro.normalization.splits import trading_days_from_calendar
from atft_kedro.schemas import tables
from atft_kedro.sources import quirks

# Thu 2026-01-01 .. Fri 2026-01-09: '0' new year, '2' a half-day session, '3' a derivatives-only holiday
DIVISIONS = ["0", "0", "0", "2", "0", "3", "1", "1", "1"]
DATES = [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(len(DIVISIONS))]
EXPECTED = [dt.date(2026, 1, 4), dt.date(2026, 1, 7), dt.date(2026, 1, 8), dt.date(2026, 1, 9)]


def _canonical(divisions: list[str] = DIVISIONS) -> pl.DataFrame:
    return pl.DataFrame({"Date": DATES, "HolidayDivision": divisions})


def _raw(divisions: list[str] = DIVISIONS) -> pl.DataFrame:
    return pl.DataFrame({"Date": DATES, "HolDiv": divisions})


def _as_dates(days: pl.Series | np.ndarray) -> list[dt.date]:
    if isinstance(days, np.ndarray):
        return [d.astype(dt.date) for d in days]
    return days.to_list()


CONSUMERS: dict[str, Callable[[list[str]], pl.Series | np.ndarray]] = {
    "exchange_calendar": lambda d: exchange_calendar.trading_days(_canonical(d)),
    "features.calendar": lambda d: feature_trading_days(_canonical(d)),
    "normalization.splits": lambda d: trading_days_from_calendar(_canonical(d)),
    "sources.quirks (raw HolDiv)": lambda d: quirks.trading_days(_raw(d)),
}


@pytest.mark.parametrize("consumer", list(CONSUMERS))
def test_every_consumer_trades_on_divisions_1_and_2_only(consumer: str) -> None:
    assert _as_dates(CONSUMERS[consumer](DIVISIONS)) == EXPECTED


def test_next_trading_day_skips_a_derivatives_only_holiday() -> None:
    days = feature_trading_days(_canonical())
    # the day after the half-day session (Sun 4th here) is Wed 7th: 5th is closed, 6th is a '3'
    assert next_trading_day(pl.Series([dt.date(2026, 1, 4)]), days).to_list() == [dt.date(2026, 1, 7)]


def test_margin_publication_lag_counts_only_trading_days() -> None:
    margin = pl.DataFrame(
        {c.raw: [None] for c in tables.MARGIN_INTEREST.columns},
        schema={c.raw: c.dtype for c in tables.MARGIN_INTEREST.columns},
    ).with_columns(pl.lit(dt.date(2026, 1, 4)).alias("Date"), pl.lit("13010").alias("Code"))
    filled = quirks.fill_margin_publication_dates(margin, quirks.trading_days(_raw()))
    assert filled["PubDate"].to_list() == [dt.date(2026, 1, 8)]  # 2nd trading day after the 4th: 7th, 8th


@pytest.mark.parametrize("consumer", list(CONSUMERS))
def test_an_unknown_division_is_refused_naming_table_column_and_rows(consumer: str) -> None:
    bad_divisions = ["4" if d == "3" else d for d in DIVISIONS]
    with pytest.raises(ValueError, match=r"table '\w*trading_calendar' column '(HolidayDivision|HolDiv)'.*"
                                         r"1 rows are not.*2026, 1, 6"):
        CONSUMERS[consumer](bad_divisions)


def test_schemas_accept_divisions_0_to_3_and_refuse_others() -> None:
    tables.TRADING_CALENDAR.raw_schema().validate(_raw())
    tables.TRADING_CALENDAR.canonical_schema().validate(_canonical())
    with pytest.raises(Exception, match="isin"):
        tables.TRADING_CALENDAR.canonical_schema().validate(
            _canonical().with_columns(pl.col("HolidayDivision").replace("3", "4"))
        )
