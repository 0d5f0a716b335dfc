"""The ``jquants`` source: every raw table from the J-Quants API v2 through ``jquantsapi.ClientV2``.

How each endpoint is queried (the API wants a date or a code on most of them):

============================== ======================= ==========================================
endpoint                       query                   dates asked for
============================== ======================= ==========================================
/markets/calendar              ``from``/``to``         start .. end (+ a look-ahead, see below)
/equities/master               ``date``                first trading day of each snapshot period
/equities/bars/daily           ``date``                every trading day
/indices/bars/daily/topix      ``from``/``to``         start .. end
/equities/investor-types       ``from``/``to``         start .. end
/markets/margin-interest       ``date``                every trading day (record date)
/markets/margin-alert          ``date``                every trading day (publication date)
/markets/short-ratio           ``date``                every trading day
/markets/short-sale-report     ``disc_date``           every calendar day (disclosure date)
/fins/summary                  ``date``                every calendar day (disclosure date)
/fins/earnings-date            ``date``                every calendar day (publication date)
============================== ======================= ==========================================

Point in time:

* The listed master is fetched as a series of snapshots (``master_snapshot_frequency``)
  and reduced to the rows where a stock appears or one of its attributes changes, each
  dated by its snapshot: it is never back-filled from today's list.
* Known gaps of the data (null margin ``PubDate`` before 2026-09-25, undecided earnings
  dates) are closed by :mod:`atft_kedro.sources.quirks`, as for the files source. For the
  margin publication lag the calendar is fetched 14 days past ``end_date``; it is returned
  clipped to ``start_date .. end_date``.

Every table is fetched before any is returned; a failure raises
:class:`JQuantsFetchError` and returns nothing. Logging: one INFO line per endpoint (rows,
requests, retries, seconds), a progress line every ``log_every`` queries, pages at DEBUG.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from typing import Any, Literal, Self

import polars as pl
from jquantsapi import ClientV2
from pydantic import Field, field_validator, model_validator

from atft_kedro.exchange_calendar import TRADING_DIVISIONS
from atft_kedro.schemas import tables
from atft_kedro.schemas.strict import StrictModel
from atft_kedro.schemas.tables import TableSpec
from atft_kedro.sources.jquants_credentials import (
    JQuantsCredentials,
    JQuantsCredentialsDataset,
    require_api_key,
)
from atft_kedro.sources.jquants_http import JQuantsFetchError, JQuantsPager, RequestPolicy
from atft_kedro.sources.quirks import close_known_gaps, trading_days
from atft_kedro.sources.raw_cast import RawTableError, cast_to_spec

__all__ = [
    "JQuantsCredentials",
    "JQuantsCredentialsDataset",
    "JQuantsFetchError",
    "JQuantsSourceParams",
    "fetch_jquants_tables",
    "keep_master_changes",
    "require_api_key",
    "snapshot_days",
]

logger = logging.getLogger(__name__)

#: Calendar days fetched past ``end_date`` so that lags like the one above can be resolved.
CALENDAR_LOOKAHEAD_DAYS = 14


class JQuantsSourceParams(StrictModel):
    """``ingestion.jquants``: where and how to fetch from the J-Quants API v2.

    Attributes:
        base_url: API root, e.g. ``https://api.jquants.com/v2`` (tests: a local fake server).
        start_date: first day fetched (inclusive).
        end_date: last day fetched (inclusive).
        max_retries: retries of one request after a 429, a 5xx or a dropped connection.
        backoff_seconds: base of the exponential backoff (retry k waits base * 2**k) when the
            server sends no ``Retry-After``.
        request_timeout_seconds: timeout of one HTTP request.
        min_seconds_between_requests: floor on the time between request starts (stay under the
            plan's rate limit, e.g. 0.5 for 120 requests a minute).
        master_snapshot_frequency: how often ``/equities/master`` is sampled (first trading day
            of each day / week / month of the range).
    """

    base_url: str
    start_date: date
    end_date: date
    max_retries: int = Field(ge=0)
    backoff_seconds: float = Field(ge=0)
    request_timeout_seconds: float = Field(gt=0)
    min_seconds_between_requests: float = Field(ge=0)
    master_snapshot_frequency: Literal["daily", "weekly", "monthly"]

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"ingestion.jquants.base_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _ordered_dates(self) -> Self:
        if self.end_date < self.start_date:
            raise ValueError(
                f"ingestion.jquants.end_date {self.end_date} is before start_date {self.start_date}"
            )
        return self


class DateAxis(Enum):
    """Which days an endpoint is queried on."""

    RANGE = "one from/to query over the range"
    TRADING_DAYS = "one query per trading day"
    CALENDAR_DAYS = "one query per calendar day"
    MASTER_SNAPSHOTS = "one query per master snapshot day"


@dataclass(frozen=True)
class EndpointPlan:
    """How one table is fetched.

    Attributes:
        spec: the table.
        axis: which days are queried.
        date_param: the query parameter carrying the day (unused for RANGE).

    An empty answer over the whole range is an error for a required table
    (``TableSpec.required``) and an empty table for any other.
        optional_fields: response fields that may be absent (filled afterwards).
    """

    spec: TableSpec
    axis: DateAxis
    date_param: str = "date"
    optional_fields: frozenset[str] = frozenset()


PLANS: dict[str, EndpointPlan] = {
    p.spec.raw_name: p
    for p in (
        EndpointPlan(tables.TRADING_CALENDAR, DateAxis.RANGE),
        EndpointPlan(tables.EQUITIES_MASTER, DateAxis.MASTER_SNAPSHOTS),
        EndpointPlan(tables.DAILY_BARS, DateAxis.TRADING_DAYS),
        EndpointPlan(tables.TOPIX, DateAxis.RANGE),
        EndpointPlan(tables.INVESTOR_TYPES, DateAxis.RANGE),
        EndpointPlan(tables.MARGIN_INTEREST, DateAxis.TRADING_DAYS, optional_fields=frozenset({"PubDate"})),
        EndpointPlan(tables.MARGIN_ALERT, DateAxis.TRADING_DAYS),
        EndpointPlan(tables.SHORT_RATIO, DateAxis.TRADING_DAYS),
        EndpointPlan(tables.SHORT_POSITIONS, DateAxis.CALENDAR_DAYS, date_param="disc_date"),
        EndpointPlan(tables.FIN_SUMMARY, DateAxis.CALENDAR_DAYS),
        EndpointPlan(tables.EARNINGS_DATES, DateAxis.CALENDAR_DAYS),
    )
}
if set(PLANS) != {t.raw_name for t in tables.TABLES}:  # pragma: no cover - guards edits of tables.py
    raise RuntimeError(f"jquants PLANS {sorted(PLANS)} do not cover tables.TABLES")


# --------------------------------------------------------------------------- pure helpers


def snapshot_days(days: pl.Series, frequency: Literal["daily", "weekly", "monthly"]) -> list[date]:
    """The first trading day of each day / ISO week / month among ``days`` (a Date series)."""
    every = {"daily": "1d", "weekly": "1w", "monthly": "1mo"}[frequency]
    frame = pl.DataFrame({"Date": days})
    firsts = frame.group_by(pl.col("Date").dt.truncate(every).alias("period")).agg(pl.col("Date").min())
    return firsts.get_column("Date").sort().to_list()


def keep_master_changes(snapshots: pl.DataFrame) -> pl.DataFrame:
    """Reduce master snapshots to the rows where a stock first appears or an attribute changes.

    Args:
        snapshots: raw ``/equities/master`` rows, one per (snapshot Date, Code).

    Returns:
        The kept rows sorted by (Code, Date); each is valid from its Date until the next row of its Code.
    """
    attributes = [c for c in tables.EQUITIES_MASTER.raw_columns if c not in ("Date", "Code")]
    ordered = snapshots.sort("Code", "Date")
    changed = pl.any_horizontal(
        pl.col(a).ne_missing(pl.col(a).shift(1)).over("Code") for a in attributes
    )
    first = pl.int_range(pl.len()).over("Code") == 0
    return ordered.filter(first | changed)


# --------------------------------------------------------------------------- fetching


def _iso(day: date) -> str:
    return day.isoformat()


Query = tuple[dict[str, str], date | None]


def _queries(plan: EndpointPlan, params: JQuantsSourceParams, days: pl.Series) -> list[Query]:
    """(query, snapshot day to stamp on the rows or None) for each request of ``plan``."""
    if plan.axis is DateAxis.RANGE:
        return [({"from": _iso(params.start_date), "to": _iso(params.end_date)}, None)]
    if plan.axis is DateAxis.TRADING_DAYS:
        return [({plan.date_param: _iso(d)}, None) for d in days.to_list()]
    if plan.axis is DateAxis.CALENDAR_DAYS:
        span = (params.end_date - params.start_date).days
        return [
            ({plan.date_param: _iso(params.start_date + timedelta(days=k))}, None) for k in range(span + 1)
        ]
    return [({plan.date_param: _iso(d)}, d) for d in snapshot_days(days, params.master_snapshot_frequency)]


def _page_frame(plan: EndpointPlan, rows: list[dict[str, Any]], query: dict[str, str]) -> pl.DataFrame:
    """One page of JSON rows -> a table with the spec's raw columns and dtypes."""
    spec = plan.spec
    absent = [c for c in spec.raw_columns if c not in rows[0] and c not in plan.optional_fields]
    if absent:
        raise JQuantsFetchError(
            spec.endpoint,
            200,
            f"query {query}: rows lack fields {absent} that schemas/tables.py requires for "
            f"'{spec.raw_name}' (rows have {sorted(rows[0])}); the API changed or the plan hides them",
        )
    text = pl.from_dicts(rows, schema={c: pl.String for c in spec.raw_columns}, strict=False)
    try:
        return cast_to_spec(text, spec, f"J-Quants {spec.endpoint} query {query}", plan.optional_fields)
    except RawTableError as exc:
        raise JQuantsFetchError(spec.endpoint, 200, str(exc)) from exc


def _fetch_table(
    pager: JQuantsPager,
    plan: EndpointPlan,
    queries: Sequence[Query],
    log_every: int,
) -> pl.DataFrame:
    spec = plan.spec
    started = time.perf_counter()
    sent_before, retries_before = pager.requests_sent, pager.retries
    frames: list[pl.DataFrame] = []
    rows_so_far = 0
    for done, (query, stamp) in enumerate(queries, start=1):
        for rows in pager.pages(spec.endpoint, query):
            logger.debug("J-Quants %s %s: page of %d rows", spec.endpoint, query, len(rows))
            if not rows:
                continue
            frame = _page_frame(plan, rows, query)
            if stamp is not None:
                frame = frame.with_columns(pl.lit(stamp, dtype=pl.Date).alias("Date"))
            frames.append(frame)
            rows_so_far += frame.height
        if done % log_every == 0 and done < len(queries):
            logger.info(
                "J-Quants %s: %d/%d queries, %d rows so far, %.1f s",
                spec.endpoint, done, len(queries), rows_so_far, time.perf_counter() - started,
            )
    table = pl.concat(frames, how="vertical") if frames else spec.empty_raw()
    unique = table.unique(maintain_order=True)
    if unique.height != table.height:
        logger.info("J-Quants %s: dropped %d exact duplicate rows", spec.endpoint, table.height - unique.height)
    if spec.required and unique.height == 0:
        raise JQuantsFetchError(
            spec.endpoint,
            200,
            f"no rows for {queries[0][0]} .. {queries[-1][0]}; check ingestion.jquants.start_date/end_date "
            f"and that the plan of the API key covers them",
        )
    logger.info(
        "J-Quants %s -> %s: %d rows, %d requests, %d retries, %.1f s",
        spec.endpoint, spec.raw_name, unique.height, pager.requests_sent - sent_before,
        pager.retries - retries_before, time.perf_counter() - started,
    )
    return unique


def fetch_jquants_tables(
    params: JQuantsSourceParams, api_key: str, log_every: int = 250
) -> dict[str, pl.DataFrame]:
    """Fetch every raw table of ``tables.TABLES`` from the J-Quants API v2.

    Args:
        params: ``ingestion.jquants`` (base URL, dates, retries, pacing, master sampling).
        api_key: the v2 API key (see :func:`require_api_key`).
        log_every: log a progress line every this many queries of one endpoint.

    Returns:
        ``{raw_name: table}`` in ``tables.TABLES`` order, each with its spec's raw columns and dtypes.

    Raises:
        JQuantsFetchError: on the first endpoint that fails (nothing is returned).
    """
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    client = ClientV2(api_key=api_key)
    client.JQUANTS_API_BASE = params.base_url
    policy = RequestPolicy(
        max_retries=params.max_retries,
        backoff_seconds=params.backoff_seconds,
        request_timeout_seconds=params.request_timeout_seconds,
        min_seconds_between_requests=params.min_seconds_between_requests,
    )
    pager = JQuantsPager(client, policy)
    started = time.perf_counter()
    logger.info(
        "J-Quants: fetching %d tables for %s .. %s from %s",
        len(tables.TABLES), params.start_date, params.end_date, params.base_url,
    )
    try:
        calendar_plan = PLANS[tables.TRADING_CALENDAR.raw_name]
        lookahead_end = params.end_date + timedelta(days=CALENDAR_LOOKAHEAD_DAYS)
        calendar_query = {"from": _iso(params.start_date), "to": _iso(lookahead_end)}
        full_calendar = _fetch_table(pager, calendar_plan, [(calendar_query, None)], log_every)
        days = trading_days(full_calendar, params.start_date, params.end_date)
        if days.len() == 0:
            raise JQuantsFetchError(
                calendar_plan.spec.endpoint,
                200,
                f"no trading day (HolDiv {list(TRADING_DIVISIONS)}) between {params.start_date} and "
                f"{params.end_date}; widen ingestion.jquants.start_date/end_date",
            )
        result: dict[str, pl.DataFrame] = {
            tables.TRADING_CALENDAR.raw_name: full_calendar.filter(
                pl.col("Date").is_between(params.start_date, params.end_date)
            ).sort("Date")
        }
        for spec in tables.TABLES:
            if spec.raw_name in result:
                continue
            plan = PLANS[spec.raw_name]
            result[spec.raw_name] = _fetch_table(pager, plan, _queries(plan, params, days), log_every)
    finally:
        pager.close()

    master = tables.EQUITIES_MASTER.raw_name
    snapshots = result[master].height
    result[master] = keep_master_changes(result[master])
    logger.info("J-Quants master: %d snapshot rows -> %d point-in-time rows (appearances and changes)",
                snapshots, result[master].height)
    try:
        result = close_known_gaps(result, full_calendar, "J-Quants")
    except RawTableError as exc:
        raise JQuantsFetchError(tables.MARGIN_INTEREST.endpoint, 200, str(exc)) from exc
    logger.info(
        "J-Quants: fetched %d tables in %.1f s (%d requests, %d retries)",
        len(result), time.perf_counter() - started, pager.requests_sent, pager.retries,
    )
    return {spec.raw_name: result[spec.raw_name] for spec in tables.TABLES}
