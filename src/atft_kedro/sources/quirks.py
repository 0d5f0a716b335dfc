"""Known gaps of J-Quants v2 data, closed the same way for the API and the files source.

* ``/markets/margin-interest`` carries no publication date (``PubDate`` null) for records
  before 2026-09-25. JPX publishes the weekly margin balances on the second trading day
  after the record date, so a null ``PubDate`` becomes that day (from the exchange
  calendar, holidays included). A value the source sends is kept.
* ``/fins/earnings-date`` lists announcements whose scheduled date is still undecided
  (empty ``SchDate``). They announce nothing and would break the table's key, so they
  are dropped, and the count is logged.
"""

from __future__ import annotations

import logging
from datetime import date

import polars as pl

from atft_kedro import exchange_calendar
from atft_kedro.schemas import tables
from atft_kedro.sources.raw_cast import RawTableError

logger = logging.getLogger(__name__)

#: JPX publishes the weekly margin balances on the second trading day after the record date.
MARGIN_PUBLICATION_LAG_TRADING_DAYS = 2


def trading_days(calendar: pl.DataFrame, start: date = date.min, end: date = date.max) -> pl.Series:
    """Sorted trading days (``HolDiv`` 1 or 2, :mod:`atft_kedro.exchange_calendar`) of a raw calendar.

    Only days between ``start`` and ``end`` inclusive are returned.
    """
    days = exchange_calendar.trading_days(
        calendar, column=exchange_calendar.RAW_COLUMN, table=tables.TRADING_CALENDAR.raw_name
    )
    return days.filter(days.is_between(start, end))


def fill_margin_publication_dates(margin: pl.DataFrame, days: pl.Series) -> pl.DataFrame:
    """Fill null ``PubDate`` of margin rows with the 2nd trading day after their record ``Date``.

    Args:
        margin: raw ``/markets/margin-interest`` rows.
        days: sorted trading days covering the record dates and the publication lag.

    Returns:
        The same rows, sorted by (Date, Code), with ``PubDate`` never null.

    Raises:
        RawTableError: when a publication day falls past the end of ``days``.
    """
    calendar = pl.DataFrame({"_day": days}).sort("_day").with_columns(
        pl.col("_day").shift(-MARGIN_PUBLICATION_LAG_TRADING_DAYS).alias("_published")
    )
    filled = (
        margin.sort("Date", "Code")
        .join_asof(calendar, left_on="Date", right_on="_day", strategy="backward")
        .with_columns(pl.coalesce("PubDate", "_published").alias("PubDate"))
        .drop("_day", "_published")
    )
    unresolved = filled.filter(pl.col("PubDate").is_null())
    if unresolved.height:
        examples = [d.isoformat() for d in unresolved["Date"].unique().sort().head(3).to_list()]
        raise RawTableError(
            f"table '{tables.MARGIN_INTEREST.raw_name}' (J-Quants {tables.MARGIN_INTEREST.endpoint}): "
            f"{unresolved.height} rows have no PubDate and the trading calendar does not reach "
            f"{MARGIN_PUBLICATION_LAG_TRADING_DAYS} trading days past their record Date (e.g. Date {examples}); "
            f"the calendar must extend past the last record date"
        )
    return filled


def close_known_gaps(
    raw: dict[str, pl.DataFrame], calendar: pl.DataFrame, source: str
) -> dict[str, pl.DataFrame]:
    """Apply the fixes of this module to a full set of raw tables.

    Args:
        raw: every raw table keyed by raw name (not modified).
        calendar: the raw trading calendar used for the margin publication lag (may reach
            past the tables' range).
        source: the source's name, for the log.

    Returns:
        A new dict with the margin and earnings tables fixed, the others as given.
    """
    fixed = dict(raw)
    margin = tables.MARGIN_INTEREST.raw_name
    missing_pub = fixed[margin]["PubDate"].null_count()
    fixed[margin] = fill_margin_publication_dates(fixed[margin], trading_days(calendar))
    if missing_pub:
        logger.info(
            "%s: %s PubDate set to %d trading days after Date on %d rows the source left empty",
            source, tables.MARGIN_INTEREST.endpoint, MARGIN_PUBLICATION_LAG_TRADING_DAYS, missing_pub,
        )
    earnings = tables.EARNINGS_DATES.raw_name
    undecided = fixed[earnings]["SchDate"].null_count()
    if undecided:
        fixed[earnings] = fixed[earnings].filter(pl.col("SchDate").is_not_null())
        logger.info(
            "%s: %s dropped %d rows whose scheduled date is undecided",
            source, tables.EARNINGS_DATES.endpoint, undecided,
        )
    return fixed
