"""The JPX calendar: Japanese holidays by rule, exchange closures, and bars only on trading days."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from atft_kedro.market import jpx_trading_calendar
from atft_kedro.market.calendar import japanese_holidays
from atft_kedro.schemas import tables


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2023, 3, 21), "Vernal Equinox Day"),
        (date(2020, 3, 20), "Vernal Equinox Day"),
        (date(2023, 9, 23), "Autumnal Equinox Day"),
        (date(2022, 9, 23), "Autumnal Equinox Day"),
        (date(2015, 9, 22), "Citizens' Holiday"),  # between Respect for the Aged Day and the equinox
        (date(2019, 4, 30), "Citizens' Holiday"),  # golden week of the enthronement
        (date(2019, 5, 1), "Enthronement Day"),
        (date(2019, 5, 2), "Citizens' Holiday"),
        (date(2019, 10, 22), "Enthronement Ceremony Day"),
        (date(2023, 1, 2), "Substitute Holiday"),  # New Year's Day on a Sunday
        (date(2021, 8, 9), "Substitute Holiday"),  # Olympic Mountain Day 8 Aug 2021 was a Sunday
        (date(2020, 7, 24), "Sports Day"),  # moved for the Olympics
        (date(2021, 7, 22), "Marine Day"),
        (date(2018, 12, 24), "Substitute Holiday"),  # last Emperor's Birthday on 23 Dec (a Sunday)
        (date(2020, 2, 24), "Substitute Holiday"),  # first Emperor's Birthday on 23 Feb (a Sunday)
        (date(2016, 8, 11), "Mountain Day"),
        (date(2022, 1, 10), "Coming of Age Day"),
        (date(2022, 10, 10), "Sports Day"),
    ],
)
def test_known_holidays(day: date, name: str) -> None:
    assert japanese_holidays(day.year).get(day) == name


def test_rules_that_do_not_apply() -> None:
    assert date(2019, 12, 23) not in japanese_holidays(2019)  # no Emperor's Birthday in 2019
    assert date(2015, 8, 11) not in japanese_holidays(2015)  # Mountain Day starts in 2016
    assert date(2020, 10, 12) not in japanese_holidays(2020)  # Sports Day moved to July
    assert date(2020, 7, 20) not in japanese_holidays(2020)  # Marine Day moved to 23 July


def test_year_outside_rules_is_an_error() -> None:
    with pytest.raises(ValueError, match="2006"):
        japanese_holidays(2006)


def test_calendar_closes_weekends_holidays_and_year_end() -> None:
    cal = jpx_trading_calendar(date(2019, 12, 27), date(2020, 1, 14))
    tables.TRADING_CALENDAR.raw_schema().validate(cal)
    closed = set(cal.filter(pl.col("HolDiv") == "0")["Date"].to_list())
    for day in (date(2019, 12, 28), date(2019, 12, 31), date(2020, 1, 1), date(2020, 1, 2), date(2020, 1, 3),
                date(2020, 1, 13)):
        assert day in closed, day
    opened = set(cal.filter(pl.col("HolDiv") == "1")["Date"].to_list())
    assert {date(2019, 12, 27), date(2019, 12, 30), date(2020, 1, 6), date(2020, 1, 14)} <= opened
    assert cal.height == 19


def test_golden_week_2019_is_ten_days_closed() -> None:
    cal = jpx_trading_calendar(date(2019, 4, 26), date(2019, 5, 7))
    assert cal["HolDiv"].to_list() == ["1"] + ["0"] * 10 + ["1"]


def test_bars_only_on_trading_days(test_tables: dict[str, pl.DataFrame]) -> None:
    bars = test_tables[tables.DAILY_BARS.raw_name]
    calendar = test_tables[tables.TRADING_CALENDAR.raw_name]
    bar_days = bars["Date"].unique()
    closed = calendar.filter(pl.col("HolDiv") == "0")["Date"]
    assert not bar_days.is_in(closed.implode()).any()
    assert bar_days.sort().to_list() == calendar.filter(pl.col("HolDiv") == "1")["Date"].sort().to_list()
    assert (bars["Date"].dt.weekday() <= 5).all()
