"""A local fake of the J-Quants API v2, for tests of the ``jquants`` source.

:func:`build_fake_market` makes a tiny deterministic market (4 stocks, 30 trading days
from 2024-01-04 to 2024-02-16, Japanese holidays included) as typed raw tables, and
:class:`FakeJQuants` serves it on 127.0.0.1 (random port, a ``ThreadingHTTPServer`` in a
thread) the way the v2 API does: ``GET /v2/<endpoint>?...`` with an ``x-api-key`` header,
answers ``{"data": [...], "pagination_key": "..."}`` in pages of ``page_size`` rows, dates
as ``YYYY-MM-DD`` text, financial figures as text (``""`` when missing). It can be told to
fail: once with 429 then succeed, always with a status, with malformed JSON, or without
the ``data`` key. Only loopback traffic.

Query semantics (a subset of the real API, strict: an unknown parameter is a 400):

* ``/markets/calendar``, ``/indices/bars/daily/topix``: ``from``/``to`` on Date;
* ``/equities/investor-types``: ``from``/``to`` on PubDate;
* ``/equities/master``: ``date`` -> every stock listed on that day with its attributes
  as of that day, stamped ``Date`` = that day (the real API's snapshot semantics);
* ``/equities/bars/daily``: ``date`` or ``from``/``to``, with or without ``code`` (one required);
* ``/markets/margin-interest``: ``date`` (record Date); ``/markets/margin-alert``: ``date`` (PubDate);
* ``/markets/short-ratio``: ``date``; ``/markets/short-sale-report``: ``disc_date``;
* ``/fins/summary``: ``date`` (DiscDate); ``/fins/earnings-date``: ``date`` (PubDate).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import polars as pl

from atft_kedro.schemas import tables
from atft_kedro.sources.jquants import JQuantsSourceParams

API_PREFIX = "/v2"
#: The key the fake accepts in tests (not a secret).
FAKE_API_KEY = "test-key-not-secret"
CALENDAR_START = date(2023, 12, 25)
CALENDAR_END = date(2024, 3, 15)
#: Market holidays of the fixture besides weekends (JPX 2023-12-25 .. 2024-03-15).
HOLIDAYS = (date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 8),
            date(2024, 2, 12), date(2024, 2, 23), date(2023, 12, 31))
FIRST_DAY = date(2024, 1, 4)
LAST_DAY = date(2024, 2, 16)
#: Stocks: Code, listed from, S33 (one with a leading zero), S17, market.
STOCKS = pl.DataFrame(
    {
        "Code": ["13010", "72030", "99840", "86970"],
        "ListedFrom": [date(2000, 1, 4), date(2000, 1, 4), date(2000, 1, 4), date(2024, 2, 1)],
        "S33": ["0050", "3700", "5250", "7200"],
        "S17": ["1", "6", "10", "16"],
        "Mkt": ["0111", "0111", "0111", "0112"],
        "Base": [3000.0, 2500.0, 8000.0, 1500.0],
    }
)
SPLIT_CODE, SPLIT_DAY = "99840", date(2024, 1, 25)
UNTRADED_CODE, UNTRADED_DAY = "13010", date(2024, 1, 17)


def fake_source_params(base_url: str) -> JQuantsSourceParams:
    """Source parameters for the fake: the fixture range (starting on the 2024-01-01 holiday), fast retries."""
    return JQuantsSourceParams(
        base_url=base_url,
        start_date=date(2024, 1, 1),
        end_date=LAST_DAY,
        max_retries=2,
        backoff_seconds=0.001,
        request_timeout_seconds=5.0,
        min_seconds_between_requests=0.0,
        master_snapshot_frequency="monthly",
    )


def _calendar() -> pl.DataFrame:
    days = pl.date_range(CALENDAR_START, CALENDAR_END, "1d", eager=True).alias("Date")
    closed = (pl.col("Date").dt.weekday() >= 6) | pl.col("Date").is_in(HOLIDAYS)
    return pl.DataFrame({"Date": days}).with_columns(
        HolDiv=pl.when(closed).then(pl.lit("0")).otherwise(pl.lit("1"))
    )


def fixture_trading_days() -> pl.Series:
    """The 30 trading days of the fixture range."""
    cal = _calendar()
    return cal.filter((pl.col("HolDiv") == "1") & pl.col("Date").is_between(FIRST_DAY, LAST_DAY))["Date"]


def _trading_days_after(lag: int) -> pl.Expr:
    """Expression mapping column Date to the trading day ``lag`` trading days later (all calendar days)."""
    all_days = _calendar().filter(pl.col("HolDiv") == "1")["Date"]
    mapping = dict(zip(all_days.to_list()[:-lag], all_days.to_list()[lag:], strict=True))
    return pl.col("Date").replace_strict(mapping, default=None, return_dtype=pl.Date)


def _master_history() -> pl.DataFrame:
    """Master rows valid from Date; 99840 changes scale on 2024-01-20, 72030 its margin code on 2024-02-05."""
    base = STOCKS.select(
        pl.col("ListedFrom").alias("Date"),
        "Code",
        pl.format("Company {}", "Code").alias("CoName"),
        pl.format("Company {} Ltd.", "Code").alias("CoNameEn"),
        "S17",
        pl.format("Sector17 {}", "S17").alias("S17Nm"),
        "S33",
        pl.format("Sector33 {}", "S33").alias("S33Nm"),
        pl.lit("TOPIX Small 1").alias("ScaleCat"),
        "Mkt",
        pl.when(pl.col("Mkt") == "0111").then(pl.lit("Prime")).otherwise(pl.lit("Standard")).alias("MktNm"),
        pl.lit("2").alias("Mrgn"),
        pl.lit("Loan").alias("MrgnNm"),
    )
    changes = pl.concat(
        [
            base.filter(pl.col("Code") == "99840").with_columns(
                Date=pl.lit(date(2024, 1, 20)), ScaleCat=pl.lit("TOPIX Large70")
            ),
            base.filter(pl.col("Code") == "72030").with_columns(
                Date=pl.lit(date(2024, 2, 5)), Mrgn=pl.lit("1"), MrgnNm=pl.lit("Margin")
            ),
        ]
    )
    return pl.concat([base, changes]).sort("Code", "Date")


def master_as_of(history: pl.DataFrame, day: date) -> pl.DataFrame:
    """Every stock listed on ``day`` with its attributes as of ``day``, stamped Date = day."""
    return (
        history.filter(pl.col("Date") <= day)
        .sort("Code", "Date")
        .group_by("Code", maintain_order=True)
        .last()
        .with_columns(pl.lit(day).alias("Date"))
        .select(tables.EQUITIES_MASTER.raw_columns)
    )


def _daily_bars(days: pl.Series) -> pl.DataFrame:
    grid = (
        pl.DataFrame({"Date": days})
        .with_row_index("t")
        .join(STOCKS.with_row_index("s"), how="cross")
        .filter(pl.col("Date") >= pl.col("ListedFrom"))
    )
    t = grid["t"].to_numpy().astype(float)
    s = grid["s"].to_numpy().astype(float)
    wave = 1.0 + 0.03 * np.sin(0.7 * t + s) + 0.002 * t
    split = (grid["Code"] == SPLIT_CODE) & (grid["Date"] >= SPLIT_DAY)
    raw_scale = np.where(split.to_numpy(), 0.5, 1.0)
    adj_scale = np.where(((grid["Code"] == SPLIT_CODE) & (grid["Date"] < SPLIT_DAY)).to_numpy(), 0.5, 1.0)
    close = grid["Base"].to_numpy() * wave * raw_scale
    frame = grid.select("Date", "Code").with_columns(
        O=pl.Series(close * 0.995), H=pl.Series(close * 1.01), L=pl.Series(close * 0.985), C=pl.Series(close),
        UL=pl.when((pl.col("Code") == "72030") & (pl.col("Date") == date(2024, 1, 10))).then(pl.lit("1"))
        .otherwise(pl.lit("0")),
        LL=pl.lit("0"),
        Vo=pl.Series(1000.0 * (1.0 + t + s)),
        AdjFactor=pl.when(pl.col("Code").eq(SPLIT_CODE) & pl.col("Date").eq(SPLIT_DAY)).then(0.5).otherwise(1.0),
    )
    frame = frame.with_columns(
        Va=pl.col("Vo") * pl.col("C"),
        AdjO=pl.col("O") * pl.Series(adj_scale), AdjH=pl.col("H") * pl.Series(adj_scale),
        AdjL=pl.col("L") * pl.Series(adj_scale), AdjC=pl.col("C") * pl.Series(adj_scale),
        AdjVo=pl.col("Vo") / pl.Series(adj_scale),
    )
    untraded = (pl.col("Code") == UNTRADED_CODE) & (pl.col("Date") == UNTRADED_DAY)
    prices = ["O", "H", "L", "C", "AdjO", "AdjH", "AdjL", "AdjC"]
    frame = frame.with_columns(
        *(pl.when(untraded).then(None).otherwise(pl.col(p)).alias(p) for p in prices),
        *(pl.when(untraded).then(0.0).otherwise(pl.col(v)).alias(v) for v in ("Vo", "Va", "AdjVo")),
    )
    return frame.select(tables.DAILY_BARS.raw_columns)


def _topix(days: pl.Series) -> pl.DataFrame:
    k = np.arange(days.len(), dtype=float)
    close = 2400.0 + 15.0 * np.sin(k)
    return pl.DataFrame({"Date": days, "O": close - 3.0, "H": close + 8.0, "L": close - 9.0, "C": close})


def _investor_types() -> pl.DataFrame:
    mondays = pl.date_range(date(2023, 12, 25), date(2024, 2, 12), "1w", eager=True)
    weeks = pl.DataFrame({"StDate": mondays}).with_columns(
        EnDate=pl.col("StDate") + timedelta(days=4), PubDate=pl.col("StDate") + timedelta(days=10)
    )
    grid = weeks.join(pl.DataFrame({"Section": ["TSEPrime", "TSEStandard"]}), how="cross").with_row_index("i")
    value_columns = tables.INVESTOR_TYPES.raw_columns[4:]
    i = grid["i"].to_numpy().astype(float)
    values = {c: 1.0e6 * (1.0 + j) + 1.0e4 * i for j, c in enumerate(value_columns)}
    return grid.with_columns(**{c: pl.Series(v) for c, v in values.items()}).select(
        tables.INVESTOR_TYPES.raw_columns
    )


def _margin_interest(days: pl.Series) -> pl.DataFrame:
    """Weekly records on each week's last trading day; PubDate null before February and on 2024-02-16."""
    fridays = (
        pl.DataFrame({"Date": days})
        .group_by(pl.col("Date").dt.truncate("1w").alias("w"))
        .agg(pl.col("Date").max())
        .select("Date")
        .sort("Date")
    )
    grid = fridays.join(STOCKS.select("Code", "ListedFrom"), how="cross").filter(
        pl.col("Date") >= pl.col("ListedFrom")
    ).with_row_index("i")
    known = (pl.col("Date") >= date(2024, 2, 1)) & (pl.col("Date") < LAST_DAY)
    return grid.with_columns(
        PubDate=pl.when(known).then(_trading_days_after(3)).otherwise(None),
        IssType=pl.lit("2"),
        ShrtVol=1000.0 + pl.col("i").cast(pl.Float64),
        LongVol=5000.0 + 2.0 * pl.col("i").cast(pl.Float64),
        ShrtNegVol=100.0 + pl.col("i").cast(pl.Float64),
        LongNegVol=200.0 + pl.col("i").cast(pl.Float64),
        ShrtStdVol=900.0 + pl.col("i").cast(pl.Float64),
        LongStdVol=4800.0 + pl.col("i").cast(pl.Float64),
    ).select(tables.MARGIN_INTEREST.raw_columns)


def _margin_alert() -> pl.DataFrame:
    pub = [date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 12)]
    return pl.DataFrame(
        {
            "PubDate": pub,
            "Code": ["72030"] * 3,
            "AppDate": [date(2024, 1, 9), date(2024, 1, 10), date(2024, 1, 11)],
            "ShrtOut": [1.0e5, 1.1e5, 1.2e5],
            "ShrtOutChg": [None, 1.0e4, 1.0e4],
            "ShrtOutRatio": [0.1, 0.11, 0.12],
            "LongOut": [5.0e5, 4.8e5, 4.7e5],
            "LongOutChg": [None, -2.0e4, -1.0e4],
            "LongOutRatio": [0.5, 0.48, 0.47],
            "SLRatio": [20.0, 22.9, 25.5],
            "TSEMrgnRegCls": ["001", "001", "002"],
        }
    )


def _short_ratio(days: pl.Series) -> pl.DataFrame:
    grid = pl.DataFrame({"Date": days}).join(STOCKS.select("S33"), how="cross").with_row_index("i")
    i = pl.col("i").cast(pl.Float64)
    return grid.with_columns(
        SellExShortVa=1.0e8 + 1.0e5 * i, ShrtWithResVa=2.0e7 + 1.0e4 * i, ShrtNoResVa=3.0e6 + 1.0e3 * i
    ).select(tables.SHORT_RATIO.raw_columns)


def _short_positions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "DiscDate": [date(2024, 1, 15), date(2024, 1, 22), date(2024, 2, 6)],
            "CalcDate": [date(2024, 1, 11), date(2024, 1, 18), date(2024, 2, 2)],
            "Code": ["99840", "99840", "13010"],
            "SSName": ["Fund A", "Fund B", "Fund A"],
            "ShrtPosToSO": [0.0061, 0.0052, 0.0075],
            "ShrtPosShares": [610000.0, 520000.0, 75000.0],
            "ShrtPosUnits": [6100.0, 5200.0, 750.0],
            "PrevRptDate": [None, date(2024, 1, 4), None],
            "PrevRptRatio": [None, 0.0049, None],
        }
    )


def _fin_summary() -> pl.DataFrame:
    """Four statements; one disclosed on a Saturday, one without a sales forecast."""
    disc = [date(2024, 1, 27), date(2024, 2, 2), date(2024, 2, 6), date(2024, 2, 14)]
    frame = pl.DataFrame(
        {
            "DiscDate": disc,
            "DiscTime": ["13:00:00", "15:30:00", "11:00:00", "15:00:00"],
            "Code": ["99840", "13010", "72030", "86970"],
            "DiscNo": ["20240127000001", "20240202000002", "20240206000003", "20240214000004"],
            "DocType": ["3QFinancialStatements_Consolidated_JP"] * 4,
            "CurPerType": ["3Q"] * 4,
            "CurPerSt": [date(2023, 4, 1)] * 4,
            "CurPerEn": [date(2023, 12, 31)] * 4,
            "CurFYSt": [date(2023, 4, 1)] * 4,
            "CurFYEn": [date(2024, 3, 31)] * 4,
        }
    )
    figures = tables.FIN_SUMMARY.raw_columns[10:]
    k = np.arange(4, dtype=float)
    frame = frame.with_columns(**{c: pl.Series(1.0e9 * (1.0 + j) + 1.0e7 * k) for j, c in enumerate(figures)})
    return frame.with_columns(
        pl.when(pl.col("Code") == "72030").then(None).otherwise(pl.col("FSales")).alias("FSales"),
        EqAR=pl.Series([0.45, 0.5, 0.333, 0.61]),
        EPS=pl.Series([123.45, -5.5, 0.0, 88.0]),
    ).select(tables.FIN_SUMMARY.raw_columns)


def _earnings_dates() -> pl.DataFrame:
    """Four announcements of schedules; the last one's date is still undecided (null)."""
    return pl.DataFrame(
        {
            "PubDate": [date(2024, 1, 5), date(2024, 1, 19), date(2024, 2, 1), date(2024, 2, 9)],
            "SchDate": [date(2024, 1, 27), date(2024, 2, 2), date(2024, 2, 14), None],
            "Code": ["99840", "13010", "86970", "72030"],
            "FQName": ["3Q", "3Q", "3Q", "FY"],
            "FYE": ["3月", "3月", "3月", "3月"],
        }
    )


@dataclass(frozen=True)
class FakeMarket:
    """The typed truth behind the fake API.

    Attributes:
        tables: raw tables keyed by raw name (master as its valid-from history).
        master_history: ``/equities/master`` rows valid from their Date.
    """

    tables: dict[str, pl.DataFrame]
    master_history: pl.DataFrame


def build_fake_market() -> FakeMarket:
    """The deterministic fixture market (dtypes as the TableSpecs)."""
    days = fixture_trading_days()
    history = _master_history()
    built = {
        tables.TRADING_CALENDAR.raw_name: _calendar(),
        tables.EQUITIES_MASTER.raw_name: history,
        tables.DAILY_BARS.raw_name: _daily_bars(days),
        tables.TOPIX.raw_name: _topix(days),
        tables.INVESTOR_TYPES.raw_name: _investor_types(),
        tables.MARGIN_INTEREST.raw_name: _margin_interest(days),
        tables.MARGIN_ALERT.raw_name: _margin_alert(),
        tables.SHORT_RATIO.raw_name: _short_ratio(days),
        tables.SHORT_POSITIONS.raw_name: _short_positions(),
        tables.FIN_SUMMARY.raw_name: _fin_summary(),
        tables.EARNINGS_DATES.raw_name: _earnings_dates(),
    }
    typed = {
        name: frame.select(pl.col(c.raw).cast(c.dtype) for c in tables.TABLES_BY_RAW_NAME[name].columns)
        for name, frame in built.items()
    }
    return FakeMarket(tables=typed, master_history=typed[tables.EQUITIES_MASTER.raw_name])


# ------------------------------------------------------------------------------------ server


@dataclass(frozen=True)
class Route:
    """How the fake answers one endpoint.

    Attributes:
        raw_name: the table served.
        filters: query parameter -> (column, comparison) with comparison one of "==", ">=", "<=".
        required_any: at least one of these parameters must be given (400 otherwise).
    """

    raw_name: str
    filters: dict[str, tuple[str, str]]
    required_any: tuple[str, ...] = ()


_RANGE_ON_DATE = {"from": ("Date", ">="), "to": ("Date", "<=")}
ROUTES: dict[str, Route] = {
    "/markets/calendar": Route(tables.TRADING_CALENDAR.raw_name, _RANGE_ON_DATE),
    "/equities/master": Route(tables.EQUITIES_MASTER.raw_name, {"date": ("Date", "=="), "code": ("Code", "==")}),
    "/equities/bars/daily": Route(
        tables.DAILY_BARS.raw_name,
        {"date": ("Date", "=="), "code": ("Code", "=="), **_RANGE_ON_DATE},
        required_any=("date", "code"),
    ),
    "/indices/bars/daily/topix": Route(tables.TOPIX.raw_name, _RANGE_ON_DATE),
    "/equities/investor-types": Route(
        tables.INVESTOR_TYPES.raw_name, {"from": ("PubDate", ">="), "to": ("PubDate", "<=")}
    ),
    "/markets/margin-interest": Route(
        tables.MARGIN_INTEREST.raw_name, {"date": ("Date", "=="), "code": ("Code", "==")}, ("date", "code")
    ),
    "/markets/margin-alert": Route(
        tables.MARGIN_ALERT.raw_name, {"date": ("PubDate", "=="), "code": ("Code", "==")}, ("date", "code")
    ),
    "/markets/short-ratio": Route(
        tables.SHORT_RATIO.raw_name, {"date": ("Date", "=="), "s33": ("S33", "==")}, ("date", "s33")
    ),
    "/markets/short-sale-report": Route(
        tables.SHORT_POSITIONS.raw_name,
        {"disc_date": ("DiscDate", "=="), "code": ("Code", "==")},
        ("disc_date", "code"),
    ),
    "/fins/summary": Route(
        tables.FIN_SUMMARY.raw_name, {"date": ("DiscDate", "=="), "code": ("Code", "==")}, ("date", "code")
    ),
    "/fins/earnings-date": Route(
        tables.EARNINGS_DATES.raw_name, {"date": ("PubDate", "=="), "code": ("Code", "==")}, ("date", "code")
    ),
}
#: Columns the real API sends as text (financial figures), "" when missing.
TEXT_NUMBER_TABLES = (tables.FIN_SUMMARY.raw_name,)


def to_json_rows(frame: pl.DataFrame, numbers_as_text: bool) -> pl.DataFrame:
    """A typed table as the API sends it: dates as ISO text, optionally numbers as text ("" for null)."""
    return frame.with_columns(
        *(pl.col(c).dt.to_string("%Y-%m-%d") for c, t in frame.schema.items() if t == pl.Date),
        *(
            pl.col(c).cast(pl.String).fill_null("")
            for c, t in frame.schema.items()
            if numbers_as_text and t == pl.Float64
        ),
    )


@dataclass
class FakeJQuants:
    """The fake API server. Use :meth:`start` / :meth:`stop` (or the ``fake_jquants`` fixture).

    Attributes:
        market: the data served.
        api_key: the only accepted ``x-api-key``.
        page_size: rows per page.
        requests: count of requests per endpoint (retries included).
        queries: (endpoint, query) of every request, in arrival order.
    """

    market: FakeMarket
    api_key: str = "fake-key"
    page_size: int = 5
    requests: Counter[str] = field(default_factory=Counter)
    queries: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _fail_once: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    _fail_always: dict[str, int] = field(default_factory=dict)
    _malformed: set[str] = field(default_factory=set)
    _no_data_key: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -------------------------------------------------------------- failure injection
    def fail_once(self, endpoint: str, status: int = 429, retry_after: str | None = "0") -> None:
        """Answer the next request of ``endpoint`` with ``status`` (and Retry-After), then normally."""
        self._fail_once[endpoint] = (status, retry_after)

    def fail_always(self, endpoint: str, status: int = 500) -> None:
        """Answer every request of ``endpoint`` with ``status``."""
        self._fail_always[endpoint] = status

    def send_malformed_json(self, endpoint: str) -> None:
        """Answer ``endpoint`` with a body that is not JSON."""
        self._malformed.add(endpoint)

    def drop_data_key(self, endpoint: str) -> None:
        """Answer ``endpoint`` with JSON lacking the ``data`` key."""
        self._no_data_key.add(endpoint)

    # -------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{API_PREFIX}"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                status, body, headers = fake.answer(self.path, self.headers.get("x-api-key"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -------------------------------------------------------------- answering
    def answer(self, raw_path: str, api_key: str | None) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers) for one GET."""
        url = urlparse(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        endpoint = url.path.removeprefix(API_PREFIX)
        json_type = {"Content-Type": "application/json"}
        with self._lock:
            self.requests[endpoint] += 1
            self.queries.append((endpoint, query))
            once = self._fail_once.pop(endpoint, None)
        if api_key != self.api_key:
            return 401, _message("The incoming token is invalid or expired."), json_type
        if not url.path.startswith(API_PREFIX) or endpoint not in ROUTES:
            return 404, _message(f"unknown endpoint {url.path}"), json_type
        if endpoint in self._fail_always:
            return self._fail_always[endpoint], _message("injected failure"), json_type
        if once is not None:
            status, retry_after = once
            headers = dict(json_type) | ({"Retry-After": retry_after} if retry_after is not None else {})
            return status, _message("injected failure (once)"), headers
        if endpoint in self._malformed:
            return 200, b'{"data": [{"Date": "2024-01-04", ', json_type
        if endpoint in self._no_data_key:
            return 200, json.dumps({"message": "ok", "info": []}).encode(), json_type
        try:
            rows = self._rows(ROUTES[endpoint], endpoint, query)
        except ValueError as exc:
            return 400, _message(str(exc)), json_type
        offset = 0
        if "pagination_key" in query:
            key = query["pagination_key"]
            if not key.startswith("p") or not key[1:].isdigit():
                return 400, _message(f"bad pagination_key {key!r}"), json_type
            offset = int(key[1:])
        page = rows.slice(offset, self.page_size)
        payload: dict[str, Any] = {"data": page.to_dicts()}
        if offset + self.page_size < rows.height:
            payload["pagination_key"] = f"p{offset + self.page_size}"
        return 200, json.dumps(payload, ensure_ascii=False).encode(), json_type

    def _rows(self, route: Route, endpoint: str, query: dict[str, str]) -> pl.DataFrame:
        params = {k: v for k, v in query.items() if k != "pagination_key"}
        unknown = sorted(set(params) - set(route.filters))
        if unknown:
            raise ValueError(f"{endpoint}: unknown parameters {unknown}")
        if route.required_any and not set(params) & set(route.required_any):
            raise ValueError(f"{endpoint}: one of {list(route.required_any)} is required")
        if route.raw_name == tables.EQUITIES_MASTER.raw_name and "date" in params:
            table = master_as_of(self.market.master_history, date.fromisoformat(params.pop("date")))
            table = table.with_columns(pl.lit("Stock").alias("ProdCat"))  # an extra field the API sends
        else:
            table = self.market.tables[route.raw_name]
        text = to_json_rows(table, numbers_as_text=route.raw_name in TEXT_NUMBER_TABLES)
        comparisons = {"==": pl.Expr.eq, ">=": pl.Expr.ge, "<=": pl.Expr.le}
        for name, value in params.items():
            column, op = route.filters[name]
            text = text.filter(comparisons[op](pl.col(column), pl.lit(value)))
        return text


def _message(text: str) -> bytes:
    return json.dumps({"message": text}).encode()
