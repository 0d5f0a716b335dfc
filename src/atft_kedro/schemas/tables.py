"""The one definition of every market table: raw (J-Quants API v2 field names) and canonical.

Each :class:`TableSpec` lists its columns once, with the short v2 name the source
delivers, the long J-Quants name the rest of the project uses, the dtype and the
checks. From that single list come

* the pandera schema of the raw table (01_raw), :meth:`TableSpec.raw_schema`;
* the pandera schema of the canonical table (02_intermediate),
  :meth:`TableSpec.canonical_schema`;
* the mapping raw -> canonical, :meth:`TableSpec.to_canonical`.

So a column can never be renamed in one place and forgotten in another.

Every number column must be finite where present: NaN and inf are refused in both layers
(null stays allowed where the column is nullable, e.g. the O/H/L/C J-Quants sends as null
on a day a listed stock does not trade). Prices and adjustment factors must be > 0.

Tables marked ``required`` (calendar, master, daily bars, TOPIX) must have rows: without
them nothing can be computed. Every other table may be empty (a short range can hold no
margin alert, an API plan may not cover an endpoint); the features built from it are then
flagged as unavailable downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from atft_kedro.exchange_calendar import HOLIDAY_DIVISIONS

DATE = pl.Date
STR = pl.String
F64 = pl.Float64

#: Name of the check refusing NaN and inf in number columns (nulls pass).
FINITE_CHECK = "finite"


def _finite_or_null(data: PolarsData) -> pl.LazyFrame:
    """True where the number is finite or null (NaN and +/-inf fail)."""
    value = pl.col(data.key)
    return data.lazyframe.select(value.is_null() | value.is_finite())


def finite_check() -> pa.Check:
    """A pandera check refusing NaN and +/-inf (nulls pass: nullability is the column's own rule)."""
    return pa.Check(_finite_or_null, name=FINITE_CHECK, error="finite (no NaN or inf)")


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Attributes:
        raw: name in the J-Quants API v2 response (``jquants-api-client`` ``ClientV2``).
        canonical: long J-Quants name used from 02_intermediate on.
        dtype: Polars dtype in both layers.
        nullable: whether nulls are allowed (prices of untraded days, unknown forecasts).
        positive: values, when present, must be > 0 (prices, adjustment factors).
        non_negative: values, when present, must be >= 0 (volumes, turnover).
        allowed: when not empty, the only values allowed (codes with a closed set of values).
        description: one line for the data-contract docs.

    Every ``Float64`` column also gets :func:`finite_check`: NaN and inf are never data.
    """

    raw: str
    canonical: str
    dtype: pl.DataType | type[pl.DataType]
    nullable: bool = True
    positive: bool = False
    non_negative: bool = False
    allowed: tuple[str, ...] = ()
    description: str = ""

    def _checks(self) -> list[pa.Check]:
        checks = [finite_check()] if self.dtype == F64 else []
        if self.positive:
            checks.append(pa.Check.gt(0))
        elif self.non_negative:
            checks.append(pa.Check.ge(0))
        if self.allowed:
            checks.append(pa.Check.isin(list(self.allowed)))
        return checks

    def pandera_column(self) -> pa.Column:
        return pa.Column(self.dtype, checks=self._checks(), nullable=self.nullable)


@dataclass(frozen=True)
class TableSpec:
    """A market table in both its raw and its canonical form.

    Attributes:
        raw_name: catalog name of the raw table (01_raw).
        canonical_name: catalog name of the canonical table (02_intermediate).
        endpoint: the J-Quants API v2 path it comes from.
        columns: every column, in canonical order.
        keys: canonical names of the columns that identify a row (unique together).
        description: what one row is.
        required: ingestion stops when the table is missing or empty (calendar, master,
            daily bars, TOPIX); any other table may be empty.
        date_column: the column that dates a row (when it becomes known).
    """

    raw_name: str
    canonical_name: str
    endpoint: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...]
    description: str
    required: bool = False
    date_column: str = field(default="Date")

    @property
    def raw_columns(self) -> list[str]:
        return [c.raw for c in self.columns]

    @property
    def canonical_columns(self) -> list[str]:
        return [c.canonical for c in self.columns]

    @property
    def raw_keys(self) -> list[str]:
        by_canonical = {c.canonical: c.raw for c in self.columns}
        return [by_canonical[k] for k in self.keys]

    def raw_schema(self) -> pa.DataFrameSchema:
        """Schema of the raw table: v2 names; extra columns the API may add are allowed."""
        return pa.DataFrameSchema(
            {c.raw: c.pandera_column() for c in self.columns},
            name=self.raw_name,
            unique=self.raw_keys,
            strict=False,
        )

    def canonical_schema(self) -> pa.DataFrameSchema:
        """Schema of the canonical table: exactly these columns, these names, these dtypes."""
        return pa.DataFrameSchema(
            {c.canonical: c.pandera_column() for c in self.columns},
            name=self.canonical_name,
            unique=list(self.keys),
            strict=True,
            ordered=True,
        )

    def empty_raw(self) -> pl.DataFrame:
        """An empty raw table with the right columns and dtypes."""
        return pl.DataFrame(schema={c.raw: c.dtype for c in self.columns})

    def to_canonical(self, raw: pl.DataFrame) -> pl.DataFrame:
        """Select, rename and cast the raw columns into the canonical table, sorted by keys.

        Raises:
            KeyError: naming the table and the raw columns that are missing.
        """
        missing = [c for c in self.raw_columns if c not in raw.columns]
        if missing:
            raise KeyError(
                f"raw table '{self.raw_name}' (J-Quants {self.endpoint}) lacks columns {missing}; "
                f"it has {sorted(raw.columns)}"
            )
        return raw.select(
            pl.col(c.raw).cast(c.dtype, strict=True).alias(c.canonical) for c in self.columns
        ).sort(list(self.keys))


def _prices(prefix_raw: str = "", prefix_canonical: str = "") -> tuple[Column, ...]:
    names = (("O", "Open"), ("H", "High"), ("L", "Low"), ("C", "Close"))
    return tuple(
        Column(prefix_raw + r, prefix_canonical + c, F64, positive=True, description=f"{c.lower()} price")
        for r, c in names
    )


_INVESTOR_GROUPS = (
    ("Prop", "Proprietary"),
    ("Brk", "Brokerage"),
    ("Tot", "Total"),
    ("Ind", "Individuals"),
    ("Frgn", "Foreigners"),
    ("SecCo", "SecuritiesCos"),
    ("InvTr", "InvestmentTrusts"),
    ("BusCo", "BusinessCos"),
    ("OthCo", "OtherCos"),
    ("InsCo", "InsuranceCos"),
    ("Bank", "CityBKsRegionalBKsEtc"),
    ("TrstBnk", "TrustBanks"),
    ("OthFin", "OtherFinancialInstitutions"),
)
_INVESTOR_SIDES = (("Sell", "Sales"), ("Buy", "Purchases"), ("Tot", "Total"), ("Bal", "Balance"))


EQUITIES_MASTER = TableSpec(
    raw_name="raw_equities_master",
    canonical_name="listed_info",
    endpoint="/equities/master",
    description="Listed-company master as of Date (one snapshot row per Date x Code).",
    keys=("Date", "Code"),
    required=True,
    columns=(
        Column("Date", "Date", DATE, nullable=False, description="date the row is valid from"),
        Column("Code", "Code", STR, nullable=False, description="5-digit local code"),
        Column("CoName", "CompanyName", STR),
        Column("CoNameEn", "CompanyNameEnglish", STR),
        Column("S17", "Sector17Code", STR, nullable=False),
        Column("S17Nm", "Sector17CodeName", STR),
        Column("S33", "Sector33Code", STR, nullable=False),
        Column("S33Nm", "Sector33CodeName", STR),
        Column("ScaleCat", "ScaleCategory", STR),
        Column("Mkt", "MarketCode", STR, nullable=False),
        Column("MktNm", "MarketCodeName", STR),
        Column("Mrgn", "MarginCode", STR),
        Column("MrgnNm", "MarginCodeName", STR),
    ),
)

DAILY_BARS = TableSpec(
    raw_name="raw_daily_bars",
    canonical_name="daily_quotes",
    endpoint="/equities/bars/daily",
    description="Daily OHLCV per stock, raw and split-adjusted (O/H/L/C null on a day without a trade).",
    keys=("Date", "Code"),
    required=True,
    columns=(
        Column("Date", "Date", DATE, nullable=False),
        Column("Code", "Code", STR, nullable=False),
        *_prices(),
        Column("UL", "UpperLimit", STR, description="'1' when the price hit the daily upper limit"),
        Column("LL", "LowerLimit", STR, description="'1' when the price hit the daily lower limit"),
        Column("Vo", "Volume", F64, non_negative=True),
        Column("Va", "TurnoverValue", F64, non_negative=True),
        Column("AdjFactor", "AdjustmentFactor", F64, nullable=False, positive=True,
               description="split factor effective on Date (1.0 when none)"),
        *_prices("Adj", "Adjustment"),
        Column("AdjVo", "AdjustmentVolume", F64, non_negative=True),
    ),
)

TOPIX = TableSpec(
    raw_name="raw_topix",
    canonical_name="topix",
    endpoint="/indices/bars/daily/topix",
    description="TOPIX daily bars.",
    keys=("Date",),
    required=True,
    columns=(Column("Date", "Date", DATE, nullable=False), *_prices()),
)

TRADING_CALENDAR = TableSpec(
    raw_name="raw_trading_calendar",
    canonical_name="trading_calendar",
    endpoint="/markets/calendar",
    description="Every calendar day with its JPX holiday division: '1' business day, '2' half-day session "
    "(both trading days), '0' closed, '3' closed for equities with derivatives holiday trading.",
    keys=("Date",),
    required=True,
    columns=(
        Column("Date", "Date", DATE, nullable=False),
        Column("HolDiv", "HolidayDivision", STR, nullable=False, allowed=tuple(HOLIDAY_DIVISIONS),
               description="trading day for equities when '1' or '2' (atft_kedro.exchange_calendar)"),
    ),
)

INVESTOR_TYPES = TableSpec(
    raw_name="raw_investor_types",
    canonical_name="investor_types",
    endpoint="/equities/investor-types",
    description="Weekly trading by investor type per market section, published after the week.",
    keys=("PublishedDate", "Section", "StartDate"),
    date_column="PublishedDate",
    columns=(
        Column("PubDate", "PublishedDate", DATE, nullable=False),
        Column("StDate", "StartDate", DATE, nullable=False),
        Column("EnDate", "EndDate", DATE, nullable=False),
        Column("Section", "Section", STR, nullable=False),
        *(
            Column(g + s, gc + sc, F64)
            for g, gc in _INVESTOR_GROUPS
            for s, sc in _INVESTOR_SIDES
        ),
    ),
)

MARGIN_INTEREST = TableSpec(
    raw_name="raw_margin_interest",
    canonical_name="weekly_margin_interest",
    endpoint="/markets/margin-interest",
    description="Weekly margin balances per stock as of Date, published on PublishedDate.",
    keys=("Date", "Code"),
    columns=(
        Column("PubDate", "PublishedDate", DATE, nullable=False),
        Column("Date", "Date", DATE, nullable=False),
        Column("Code", "Code", STR, nullable=False),
        Column("IssType", "IssueType", STR),
        Column("ShrtVol", "ShortMarginTradeVolume", F64, non_negative=True),
        Column("LongVol", "LongMarginTradeVolume", F64, non_negative=True),
        Column("ShrtNegVol", "ShortNegotiableMarginTradeVolume", F64, non_negative=True),
        Column("LongNegVol", "LongNegotiableMarginTradeVolume", F64, non_negative=True),
        Column("ShrtStdVol", "ShortStandardizedMarginTradeVolume", F64, non_negative=True),
        Column("LongStdVol", "LongStandardizedMarginTradeVolume", F64, non_negative=True),
    ),
)

MARGIN_ALERT = TableSpec(
    raw_name="raw_margin_alert",
    canonical_name="daily_margin_interest",
    endpoint="/markets/margin-alert",
    description="Daily margin balances of stocks under a margin alert, published on PublishedDate.",
    keys=("PublishedDate", "Code"),
    date_column="PublishedDate",
    columns=(
        Column("PubDate", "PublishedDate", DATE, nullable=False),
        Column("Code", "Code", STR, nullable=False),
        Column("AppDate", "ApplicationDate", DATE, nullable=False),
        Column("ShrtOut", "ShortMarginOutstanding", F64, non_negative=True),
        Column("ShrtOutChg", "DailyChangeShortMarginOutstanding", F64),
        Column("ShrtOutRatio", "ShortMarginOutstandingListedShareRatio", F64),
        Column("LongOut", "LongMarginOutstanding", F64, non_negative=True),
        Column("LongOutChg", "DailyChangeLongMarginOutstanding", F64),
        Column("LongOutRatio", "LongMarginOutstandingListedShareRatio", F64),
        Column("SLRatio", "ShortLongRatio", F64),
        Column("TSEMrgnRegCls", "TSEMarginBorrowingAndLendingRegulationClassification", STR),
    ),
)

SHORT_RATIO = TableSpec(
    raw_name="raw_short_ratio",
    canonical_name="short_selling",
    endpoint="/markets/short-ratio",
    description="Daily short-selling turnover per sector-33.",
    keys=("Date", "Sector33Code"),
    columns=(
        Column("Date", "Date", DATE, nullable=False),
        Column("S33", "Sector33Code", STR, nullable=False),
        Column("SellExShortVa", "SellingExcludingShortSellingTurnoverValue", F64, non_negative=True),
        Column("ShrtWithResVa", "ShortSellingWithRestrictionsTurnoverValue", F64, non_negative=True),
        Column("ShrtNoResVa", "ShortSellingWithoutRestrictionsTurnoverValue", F64, non_negative=True),
    ),
)

SHORT_POSITIONS = TableSpec(
    raw_name="raw_short_positions",
    canonical_name="short_positions",
    endpoint="/markets/short-sale-report",
    description="Reported large short positions (>= 0.5% of shares), disclosed on DisclosedDate.",
    keys=("DisclosedDate", "CalculatedDate", "Code", "ShortSellerName"),
    date_column="DisclosedDate",
    columns=(
        Column("DiscDate", "DisclosedDate", DATE, nullable=False),
        Column("CalcDate", "CalculatedDate", DATE, nullable=False),
        Column("Code", "Code", STR, nullable=False),
        Column("SSName", "ShortSellerName", STR, nullable=False),
        Column("ShrtPosToSO", "ShortPositionsToSharesOutstandingRatio", F64, non_negative=True),
        Column("ShrtPosShares", "ShortPositionsInSharesNumber", F64, non_negative=True),
        Column("ShrtPosUnits", "ShortPositionsInTradingUnitsNumber", F64, non_negative=True),
        Column("PrevRptDate", "CalculationInPreviousReportingDate", DATE),
        Column("PrevRptRatio", "ShortPositionsInPreviousReportingRatio", F64),
    ),
)

FIN_SUMMARY = TableSpec(
    raw_name="raw_fin_summary",
    canonical_name="statements",
    endpoint="/fins/summary",
    description="Quarterly financial summaries with forecasts, disclosed on DisclosedDate at DisclosedTime.",
    keys=("DisclosureNumber",),
    date_column="DisclosedDate",
    columns=(
        Column("DiscDate", "DisclosedDate", DATE, nullable=False),
        Column("DiscTime", "DisclosedTime", STR, nullable=False, description="HH:MM:SS, Tokyo time"),
        Column("Code", "Code", STR, nullable=False),
        Column("DiscNo", "DisclosureNumber", STR, nullable=False),
        Column("DocType", "TypeOfDocument", STR),
        Column("CurPerType", "TypeOfCurrentPeriod", STR, description="1Q, 2Q, 3Q or FY"),
        Column("CurPerSt", "CurrentPeriodStartDate", DATE),
        Column("CurPerEn", "CurrentPeriodEndDate", DATE),
        Column("CurFYSt", "CurrentFiscalYearStartDate", DATE),
        Column("CurFYEn", "CurrentFiscalYearEndDate", DATE),
        Column("Sales", "NetSales", F64),
        Column("OP", "OperatingProfit", F64),
        Column("OdP", "OrdinaryProfit", F64),
        Column("NP", "Profit", F64),
        Column("EPS", "EarningsPerShare", F64),
        Column("TA", "TotalAssets", F64),
        Column("Eq", "Equity", F64),
        Column("EqAR", "EquityToAssetRatio", F64),
        Column("BPS", "BookValuePerShare", F64),
        Column("CFO", "CashFlowsFromOperatingActivities", F64),
        Column("FSales", "ForecastNetSales", F64),
        Column("FOP", "ForecastOperatingProfit", F64),
        Column("FOdP", "ForecastOrdinaryProfit", F64),
        Column("FNP", "ForecastProfit", F64),
        Column("FEPS", "ForecastEarningsPerShare", F64),
        Column("ShOutFY", "NumberOfIssuedAndOutstandingSharesAtTheEndOfFiscalYearIncludingTreasuryStock",
               F64, non_negative=True),
    ),
)

EARNINGS_DATES = TableSpec(
    raw_name="raw_earnings_dates",
    canonical_name="earnings_calendar",
    endpoint="/fins/earnings-date",
    description="Scheduled earnings announcements, known from PublishedDate.",
    keys=("PublishedDate", "Code", "ScheduledDate"),
    date_column="PublishedDate",
    columns=(
        Column("PubDate", "PublishedDate", DATE, nullable=False),
        Column("SchDate", "ScheduledDate", DATE, nullable=False),
        Column("Code", "Code", STR, nullable=False),
        Column("FQName", "FiscalQuarter", STR),
        Column("FYE", "FiscalYearEnd", STR),
    ),
)

#: Every market table, in the order ingestion fetches them.
TABLES: tuple[TableSpec, ...] = (
    TRADING_CALENDAR,
    EQUITIES_MASTER,
    DAILY_BARS,
    TOPIX,
    INVESTOR_TYPES,
    MARGIN_INTEREST,
    MARGIN_ALERT,
    SHORT_RATIO,
    SHORT_POSITIONS,
    FIN_SUMMARY,
    EARNINGS_DATES,
)
TABLES_BY_RAW_NAME: dict[str, TableSpec] = {t.raw_name: t for t in TABLES}
TABLES_BY_CANONICAL_NAME: dict[str, TableSpec] = {t.canonical_name: t for t in TABLES}


class RequiredTableError(ValueError):
    """A required table (calendar, master, daily bars, TOPIX) is missing or has no rows."""


def check_required_tables(raw: dict[str, pl.DataFrame], origin: str) -> None:
    """Refuse a set of raw tables in which a required table is absent or empty.

    Args:
        raw: raw tables keyed by raw name.
        origin: where they come from, for the message (e.g. ``"files /data/jquants"``).

    Raises:
        RequiredTableError: naming every required table that is absent or has no rows.
    """
    empty = [t.raw_name for t in TABLES if t.required and (t.raw_name not in raw or raw[t.raw_name].height == 0)]
    if empty:
        raise RequiredTableError(
            f"{origin}: required table(s) {empty} are missing or empty; the trading calendar, the listed master, "
            "the daily bars and TOPIX must have rows for the requested range (nothing was written)"
        )

