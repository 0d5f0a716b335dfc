"""The ``jquants`` source against a local fake J-Quants v2 server (tests/fake_jquants.py)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import polars as pl
import pytest
from fake_jquants import FAKE_API_KEY, FakeJQuants, FakeMarket, fake_source_params, fixture_trading_days
from kedro.io import DataCatalog, DatasetError
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from atft_kedro.schemas import tables
from atft_kedro.sources.jquants import (
    JQuantsCredentialsDataset,
    JQuantsFetchError,
    JQuantsSourceParams,
    fetch_jquants_tables,
    require_api_key,
)
from atft_kedro.sources.jquants_http import JQuantsPager, RequestPolicy, retry_after_seconds

BARS = tables.DAILY_BARS


def _sorted(frame: pl.DataFrame, spec: tables.TableSpec) -> pl.DataFrame:
    return frame.sort(spec.raw_keys)


@dataclass(frozen=True)
class Fetched:
    """One fetch from a fresh fake server, shared by the tests that only read its result."""

    params: JQuantsSourceParams
    tables: dict[str, pl.DataFrame]
    server: FakeJQuants


@pytest.fixture(scope="module")
def fetched(fake_market: FakeMarket) -> Iterator[Fetched]:
    server = FakeJQuants(market=fake_market, api_key=FAKE_API_KEY, page_size=5)
    server.start()
    try:
        params = fake_source_params(server.base_url)
        yield Fetched(params, fetch_jquants_tables(params, FAKE_API_KEY), server)
    finally:
        server.stop()


def test_every_table_passes_raw_and_canonical_schemas(fetched: Fetched) -> None:
    result = fetched.tables

    assert list(result) == [t.raw_name for t in tables.TABLES]
    for spec in tables.TABLES:
        raw = result[spec.raw_name]
        assert raw.height > 0, spec.raw_name
        assert raw.columns == spec.raw_columns, spec.raw_name
        spec.raw_schema().validate(raw)
        spec.canonical_schema().validate(spec.to_canonical(raw))


def test_paging_yields_every_row(fetched: Fetched, fake_market: FakeMarket) -> None:
    result, jquants_params, fake_jquants = fetched.tables, fetched.params, fetched.server

    # a single from/to query answered in pages of 5 rows
    investor = tables.INVESTOR_TYPES
    expected = fake_market.tables[investor.raw_name].filter(
        pl.col("PubDate").is_between(jquants_params.start_date, jquants_params.end_date)
    )
    assert expected.height > 2 * fake_jquants.page_size
    assert_frame_equal(_sorted(result[investor.raw_name], investor), _sorted(expected, investor))
    paged = [q for e, q in fake_jquants.queries if e == investor.endpoint and "pagination_key" in q]
    assert len(paged) == expected.height // fake_jquants.page_size

    # one query per trading day, prices untouched (the untraded day keeps its nulls)
    assert_frame_equal(_sorted(result[BARS.raw_name], BARS), _sorted(fake_market.tables[BARS.raw_name], BARS))
    bar_days = [q["date"] for e, q in fake_jquants.queries if e == BARS.endpoint]
    assert bar_days == [d.isoformat() for d in fixture_trading_days().to_list()]


def test_codes_stay_text_with_leading_zeros(fetched: Fetched) -> None:
    result = fetched.tables

    master = result[tables.EQUITIES_MASTER.raw_name]
    assert master.schema["Code"] == pl.String
    assert "0050" in master["S33"].to_list()
    assert "0050" in result[tables.SHORT_RATIO.raw_name]["S33"].to_list()


@pytest.mark.parametrize(
    ("frequency", "expected"),
    [
        (
            "monthly",  # 99840's change of 2024-01-20 is first seen in February's snapshot; 72030's not at all
            {("13010", date(2024, 1, 4)), ("72030", date(2024, 1, 4)), ("99840", date(2024, 1, 4)),
             ("99840", date(2024, 2, 1)), ("86970", date(2024, 2, 1))},
        ),
        (
            "weekly",  # 86970, listed on Thursday 2024-02-01, is first seen on the next Monday
            {("13010", date(2024, 1, 4)), ("72030", date(2024, 1, 4)), ("99840", date(2024, 1, 4)),
             ("99840", date(2024, 1, 22)), ("86970", date(2024, 2, 5)), ("72030", date(2024, 2, 5))},
        ),
    ],
)
def test_master_is_point_in_time(
    jquants_params: JQuantsSourceParams,
    fake_jquants: FakeJQuants,
    frequency: str,
    expected: set[tuple[str, date]],
) -> None:
    params = jquants_params.model_copy(update={"master_snapshot_frequency": frequency})
    master = fetch_jquants_tables(params, FAKE_API_KEY)[tables.EQUITIES_MASTER.raw_name]

    assert set(master.select("Code", "Date").iter_rows()) == expected
    first_toyota = master.filter(pl.col("Code") == "72030").sort("Date").row(0, named=True)
    assert first_toyota["Mrgn"] == "2", "the January row must not be back-filled from a later snapshot"
    snapshot_queries = [q["date"] for e, q in fake_jquants.queries if e == tables.EQUITIES_MASTER.endpoint]
    assert snapshot_queries[0] == "2024-01-04"  # the range starts on a holiday: first trading day


def test_margin_publication_dates_are_filled_from_the_calendar(fetched: Fetched, fake_market: FakeMarket) -> None:
    margin = fetched.tables[tables.MARGIN_INTEREST.raw_name]
    published = dict(margin.filter(pl.col("Code") == "13010").select("Date", "PubDate").iter_rows())

    assert published[date(2024, 1, 5)] == date(2024, 1, 10)  # Jan 8 is a holiday
    assert published[date(2024, 2, 16)] == date(2024, 2, 20)  # needs the calendar past end_date
    assert published[date(2024, 2, 2)] == date(2024, 2, 7)  # sent by the API: kept as is (3 days)
    assert margin.height == fake_market.tables[tables.MARGIN_INTEREST.raw_name].height


def test_calendar_and_disclosures(fetched: Fetched) -> None:
    result, jquants_params = fetched.tables, fetched.params

    calendar = result[tables.TRADING_CALENDAR.raw_name]
    assert calendar["Date"].min() == jquants_params.start_date
    assert calendar["Date"].max() == jquants_params.end_date
    statements = result[tables.FIN_SUMMARY.raw_name]
    assert date(2024, 1, 27) in statements["DiscDate"].to_list()  # a Saturday: calendar days are queried
    sales_forecast = dict(statements.select("Code", "FSales").iter_rows())
    assert sales_forecast["72030"] is None  # "" in the JSON text
    assert sales_forecast["13010"] == pytest.approx(1.101e10)
    earnings = result[tables.EARNINGS_DATES.raw_name]
    assert earnings.height == 3 and earnings["SchDate"].null_count() == 0  # the undecided one is dropped


def test_one_429_then_success(jquants_params: JQuantsSourceParams, fake_jquants: FakeJQuants,
                              fake_market: FakeMarket) -> None:
    fake_jquants.fail_once(BARS.endpoint, status=429, retry_after="0")

    result = fetch_jquants_tables(jquants_params, FAKE_API_KEY)

    assert fake_jquants.requests[BARS.endpoint] == fixture_trading_days().len() + 1
    assert_frame_equal(_sorted(result[BARS.raw_name], BARS), _sorted(fake_market.tables[BARS.raw_name], BARS))


def test_persistent_500_names_the_endpoint(jquants_params: JQuantsSourceParams, fake_jquants: FakeJQuants) -> None:
    fake_jquants.fail_always(tables.FIN_SUMMARY.endpoint, status=500)

    with pytest.raises(JQuantsFetchError) as caught:
        fetch_jquants_tables(jquants_params, FAKE_API_KEY)

    assert caught.value.endpoint == "/fins/summary"
    assert caught.value.status == 500
    assert "/fins/summary" in str(caught.value) and "500" in str(caught.value)
    assert fake_jquants.requests["/fins/summary"] == jquants_params.max_retries + 1


def test_wrong_key_points_at_credentials(jquants_params: JQuantsSourceParams, fake_jquants: FakeJQuants) -> None:
    with pytest.raises(JQuantsFetchError) as caught:
        fetch_jquants_tables(jquants_params, "not-the-key")

    assert caught.value.status == 401
    assert "conf/local/credentials.yml" in str(caught.value)
    assert "not-the-key" not in str(caught.value)
    assert sum(fake_jquants.requests.values()) == 1  # a 401 is not retried


@pytest.mark.parametrize(
    ("inject", "needle"),
    [("send_malformed_json", "not valid JSON"), ("drop_data_key", "no 'data' list")],
)
def test_bad_answers_raise(jquants_params: JQuantsSourceParams, fake_jquants: FakeJQuants, inject: str,
                           needle: str) -> None:
    getattr(fake_jquants, inject)(tables.SHORT_RATIO.endpoint)

    with pytest.raises(JQuantsFetchError, match=needle) as caught:
        fetch_jquants_tables(jquants_params, FAKE_API_KEY)

    assert caught.value.endpoint == tables.SHORT_RATIO.endpoint


def test_a_missing_field_is_an_error_naming_it(fake_market: FakeMarket, jquants_params: JQuantsSourceParams) -> None:
    stripped = FakeMarket(
        tables={**fake_market.tables, BARS.raw_name: fake_market.tables[BARS.raw_name].drop("AdjC")},
        master_history=fake_market.master_history,
    )
    server = FakeJQuants(market=stripped, api_key=FAKE_API_KEY)
    server.start()
    try:
        params = jquants_params.model_copy(update={"base_url": server.base_url})
        with pytest.raises(JQuantsFetchError, match=r"/equities/bars/daily.*\['AdjC'\]"):
            fetch_jquants_tables(params, FAKE_API_KEY)
    finally:
        server.stop()


def _serve_with_empty(fake_market: FakeMarket, empty: tuple[tables.TableSpec, ...]) -> FakeJQuants:
    emptied = {spec.raw_name: fake_market.tables[spec.raw_name].clear() for spec in empty}
    server = FakeJQuants(market=FakeMarket(tables={**fake_market.tables, **emptied},
                                           master_history=fake_market.master_history), api_key=FAKE_API_KEY)
    server.start()
    return server


def test_an_optional_endpoint_without_rows_gives_an_empty_table(
    fake_market: FakeMarket, jquants_params: JQuantsSourceParams
) -> None:
    server = _serve_with_empty(fake_market, (tables.MARGIN_ALERT, tables.SHORT_POSITIONS))
    try:
        params = jquants_params.model_copy(update={"base_url": server.base_url})
        result = fetch_jquants_tables(params, FAKE_API_KEY)
    finally:
        server.stop()
    for spec in (tables.MARGIN_ALERT, tables.SHORT_POSITIONS):
        assert result[spec.raw_name].height == 0
        assert result[spec.raw_name].schema == spec.empty_raw().schema
    assert result[BARS.raw_name].height > 0


@pytest.mark.parametrize("spec", [tables.DAILY_BARS, tables.TOPIX])
def test_a_required_endpoint_without_rows_is_an_error(
    fake_market: FakeMarket, jquants_params: JQuantsSourceParams, spec: tables.TableSpec
) -> None:
    server = _serve_with_empty(fake_market, (spec,))
    try:
        params = jquants_params.model_copy(update={"base_url": server.base_url})
        with pytest.raises(JQuantsFetchError, match=rf"{spec.endpoint}.*no rows"):
            fetch_jquants_tables(params, FAKE_API_KEY)
    finally:
        server.stop()


def test_logs_one_summary_line_per_endpoint(jquants_params: JQuantsSourceParams,
                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="atft_kedro.sources"):
        fetch_jquants_tables(jquants_params, FAKE_API_KEY, log_every=1000)

    summaries = [r.getMessage() for r in caplog.records if " rows, " in r.getMessage() and "requests" in r.getMessage()]
    assert len(summaries) == len(tables.TABLES)
    assert len(caplog.records) <= len(tables.TABLES) + 5


# ----------------------------------------------------------------------------- retry timing


def test_retry_waits_follow_retry_after_then_backoff(fake_jquants: FakeJQuants) -> None:
    from jquantsapi import ClientV2

    client = ClientV2(api_key=FAKE_API_KEY)
    client.JQUANTS_API_BASE = fake_jquants.base_url
    waits: list[float] = []
    pager = JQuantsPager(client, RequestPolicy(3, 0.25, 5.0, 0.0), sleep=waits.append)

    fake_jquants.fail_once("/indices/bars/daily/topix", status=429, retry_after="7")
    list(pager.pages("/indices/bars/daily/topix", {"from": "2024-01-04", "to": "2024-01-05"}))
    fake_jquants.fail_once("/indices/bars/daily/topix", status=503, retry_after=None)
    list(pager.pages("/indices/bars/daily/topix", {"from": "2024-01-04", "to": "2024-01-05"}))

    assert waits == [7.0, 0.25]
    assert pager.retries == 2


def test_requests_are_paced(fake_jquants: FakeJQuants) -> None:
    from jquantsapi import ClientV2

    client = ClientV2(api_key=FAKE_API_KEY)
    client.JQUANTS_API_BASE = fake_jquants.base_url
    waits: list[float] = []
    pager = JQuantsPager(client, RequestPolicy(0, 0.25, 5.0, 0.5), sleep=waits.append, clock=lambda: 100.0)

    list(pager.pages("/markets/calendar", {"from": "2024-01-01", "to": "2024-01-12"}))  # 12 rows: 3 pages

    assert waits == [0.5, 0.5]


def test_unreachable_server_names_base_url(jquants_params: JQuantsSourceParams) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = jquants_params.model_copy(update={"base_url": f"http://127.0.0.1:{port}/v2", "max_retries": 1})

    with pytest.raises(JQuantsFetchError, match=r"/markets/calendar \(no HTTP answer\).*base_url") as caught:
        fetch_jquants_tables(closed, FAKE_API_KEY)

    assert caught.value.status is None


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2024, 1, 4, 9, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("3", now) == 3.0
    assert retry_after_seconds("Thu, 04 Jan 2024 09:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


# ----------------------------------------------------------------------------- params, credentials


def test_params_reject_unknown_keys_and_reversed_dates(jquants_params: JQuantsSourceParams) -> None:
    fields = jquants_params.model_dump()
    with pytest.raises(ValidationError, match="retries"):
        JQuantsSourceParams(**fields, retries=3)
    with pytest.raises(ValidationError, match="end_date"):
        JQuantsSourceParams(**(fields | {"end_date": date(2023, 1, 1)}))


def test_credentials_come_from_kedro_credentials_and_stay_hidden() -> None:
    catalog = DataCatalog.from_config(
        {"jquants_credentials": {"type": "atft_kedro.sources.jquants.JQuantsCredentialsDataset",
                                 "credentials": "jquants"}},
        credentials={"jquants": {"api_key": "secret-123"}},
    )

    loaded = catalog.load("jquants_credentials")

    assert require_api_key(loaded) == "secret-123"
    assert "secret-123" not in repr(loaded)
    assert "secret-123" not in repr(catalog["jquants_credentials"])
    with pytest.raises(DatasetError, match="read-only"):
        catalog.save("jquants_credentials", loaded)


def test_missing_or_misspelt_key_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"conf/local/credentials.yml"):
        require_api_key(JQuantsCredentialsDataset(credentials={"api_key": None}).load())
    with pytest.raises(ValueError, match=r"conf/local/credentials.yml"):
        require_api_key(JQuantsCredentialsDataset(credentials=None).load())
    with pytest.raises(DatasetError, match="apikey"):
        JQuantsCredentialsDataset(credentials={"apikey": "x"})
