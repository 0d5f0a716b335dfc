"""The JPX trading calendar, with Japanese national holidays computed by rule.

Rules (Act on National Holidays, as amended; valid for the years 2007-2099 that
:func:`japanese_holidays` accepts):

* fixed days: New Year's Day (1 Jan), National Foundation Day (11 Feb), the Emperor's
  Birthday (23 Dec up to 2018, 23 Feb from 2020, none in 2019), Showa Day (29 Apr),
  Constitution Memorial Day (3 May), Greenery Day (4 May), Children's Day (5 May),
  Mountain Day (11 Aug, from 2016), Culture Day (3 Nov), Labour Thanksgiving Day (23 Nov);
* Happy-Monday days: Coming of Age Day (2nd Monday of January), Marine Day (3rd Monday
  of July), Respect for the Aged Day (3rd Monday of September), Sports Day (2nd Monday of
  October);
* the vernal and autumnal equinoxes from the astronomical approximation
  ``floor(20.8431 + 0.242194 (y - 1980)) - floor((y - 1980) / 4)`` (23.2488 for autumn);
* the Olympic moves of 2020 and 2021 and the 2019 enthronement days (1 May, 22 Oct);
* a substitute holiday: a holiday on a Sunday moves to the next day that is not a holiday;
* a citizens' holiday: a non-holiday weekday between two holidays (e.g. 22 Sep 2015).

The exchange is also closed on weekends and from 31 December to 3 January.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from atft_kedro.exchange_calendar import RAW_COLUMN, is_trading_day_expr

FIRST_SUPPORTED_YEAR = 2007
LAST_SUPPORTED_YEAR = 2099

_SPECIAL_MOVES: dict[int, dict[str, date]] = {
    2020: {"marine": date(2020, 7, 23), "sports": date(2020, 7, 24), "mountain": date(2020, 8, 10)},
    2021: {"marine": date(2021, 7, 22), "sports": date(2021, 7, 23), "mountain": date(2021, 8, 8)},
}


def _nth_monday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (0 - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _equinox_day(year: int, base: float) -> int:
    return int(base + 0.242194 * (year - 1980)) - (year - 1980) // 4


def japanese_holidays(year: int) -> dict[date, str]:
    """Japanese national holidays of one year, substitute and citizens' holidays included.

    Args:
        year: calendar year, 2007..2099.

    Returns:
        ``{date: English name}`` for every holiday of the year.

    Raises:
        ValueError: when the year is outside the range the rules cover.
    """
    if not FIRST_SUPPORTED_YEAR <= year <= LAST_SUPPORTED_YEAR:
        raise ValueError(
            f"japanese_holidays: year {year} is outside {FIRST_SUPPORTED_YEAR}..{LAST_SUPPORTED_YEAR}, "
            "the years whose holiday rules are implemented"
        )
    moves = _SPECIAL_MOVES.get(year, {})
    days: dict[date, str] = {
        date(year, 1, 1): "New Year's Day",
        _nth_monday(year, 1, 2): "Coming of Age Day",
        date(year, 2, 11): "National Foundation Day",
        date(year, 3, _equinox_day(year, 20.8431)): "Vernal Equinox Day",
        date(year, 4, 29): "Showa Day",
        date(year, 5, 3): "Constitution Memorial Day",
        date(year, 5, 4): "Greenery Day",
        date(year, 5, 5): "Children's Day",
        moves.get("marine", _nth_monday(year, 7, 3)): "Marine Day",
        _nth_monday(year, 9, 3): "Respect for the Aged Day",
        date(year, 9, _equinox_day(year, 23.2488)): "Autumnal Equinox Day",
        moves.get("sports", _nth_monday(year, 10, 2)): "Sports Day",
        date(year, 11, 3): "Culture Day",
        date(year, 11, 23): "Labour Thanksgiving Day",
    }
    if year >= 2016:
        days[moves.get("mountain", date(year, 8, 11))] = "Mountain Day"
    if year <= 2018:
        days[date(year, 12, 23)] = "Emperor's Birthday"
    elif year >= 2020:
        days[date(year, 2, 23)] = "Emperor's Birthday"
    if year == 2019:
        days[date(2019, 5, 1)] = "Enthronement Day"
        days[date(2019, 10, 22)] = "Enthronement Ceremony Day"

    national = set(days)
    for day in sorted(national):  # substitute holidays
        if day.weekday() == 6:
            sub = day + timedelta(days=1)
            while sub in days:
                sub += timedelta(days=1)
            days[sub] = "Substitute Holiday"
    for day in sorted(national):  # citizens' holidays: a day sandwiched between two holidays
        middle = day + timedelta(days=1)
        if (
            middle not in days
            and middle.weekday() != 6
            and middle + timedelta(days=1) in national
        ):
            days[middle] = "Citizens' Holiday"
    return dict(sorted(days.items()))


def jpx_trading_calendar(start: date, end: date) -> pl.DataFrame:
    """The raw JPX calendar table: every calendar day from start to end with its holiday division.

    Args:
        start: first calendar day (inclusive).
        end: last calendar day (inclusive).

    Returns:
        ``raw_trading_calendar``: ``Date`` (pl.Date) and ``HolDiv`` ("1" trading day, "0" closed:
        weekends, national holidays and 31 Dec - 3 Jan).

    Raises:
        ValueError: when end is before start or a year lies outside 2007..2099.
    """
    if end < start:
        raise ValueError(f"jpx_trading_calendar: end {end} is before start {start}")
    holidays = [d for year in range(start.year, end.year + 1) for d in japanese_holidays(year)]
    day = pl.col("Date")
    closed = (
        (day.dt.weekday() >= 6)
        | day.is_in(pl.lit(pl.Series(holidays, dtype=pl.Date)).implode())
        | ((day.dt.month() == 12) & (day.dt.day() == 31))
        | ((day.dt.month() == 1) & (day.dt.day() <= 3))
    )
    return pl.DataFrame({"Date": pl.date_range(start, end, interval="1d", eager=True)}).with_columns(
        pl.when(closed).then(pl.lit("0")).otherwise(pl.lit("1")).alias("HolDiv")
    )


def trading_days(start: date, end: date) -> np.ndarray:
    """Trading days between start and end (inclusive), as ``datetime64[D]``, ascending."""
    calendar = jpx_trading_calendar(start, end).filter(is_trading_day_expr(RAW_COLUMN))
    return calendar["Date"].to_numpy().astype("datetime64[D]")


@dataclass(frozen=True)
class Timeline:
    """Trading days of the simulation, with room before and after the sample.

    ``days`` runs from well before ``start_date`` (statement history) to well after
    ``end_date`` (publication dates of the last weeks). Indices into ``days`` are
    *global*; sample day ``t`` (0..n_days-1) is global ``offset + t``. Because ``days``
    holds trading days only, the next trading day of global ``g`` is ``g + 1``.
    """

    days: np.ndarray
    offset: int
    n_days: int

    @property
    def sample_days(self) -> np.ndarray:
        """The sample's trading days, ``datetime64[D]`` [n_days]."""
        return self.days[self.offset : self.offset + self.n_days]

    @property
    def last_sample_global(self) -> int:
        """Global index of the last sample day."""
        return self.offset + self.n_days - 1

    def on_or_after(self, dates: np.ndarray) -> np.ndarray:
        """Global index of the first trading day on or after each date (``datetime64[D]``)."""
        return np.searchsorted(self.days, dates.astype("datetime64[D]"), side="left")


def build_timeline(start: date, end: date, days_before: int, days_after: int) -> Timeline:
    """The trading days from ``start - days_before`` to ``end + days_after``, sample = start..end."""
    days = trading_days(start - timedelta(days=days_before), end + timedelta(days=days_after))
    offset = int(np.searchsorted(days, np.datetime64(start, "D"), side="left"))
    stop = int(np.searchsorted(days, np.datetime64(end, "D"), side="right"))
    if stop <= offset:
        raise ValueError(f"simulator: no trading day between start_date {start} and end_date {end}")
    return Timeline(days=days, offset=offset, n_days=stop - offset)
