"""``stmt_``: financial statements – growth, margins, returns on capital, progress against
the company's forecast, forecast revisions, earnings surprise, valuation.

A statement counts from its available date (:func:`calendar.statement_available_dates`:
disclosed at or after the cut-off time -> next trading day). Two as-of streams per stock:
the latest statement with actual results and the latest one with a full-year forecast
(forecast-only revisions carry no actuals). Comparisons inside the statements table
(same period a year earlier, the previous forecast for the same fiscal year) only look
at statements available on or before the row's own available date.

Ties: several statements of one company can become known on the same trading day (two
disclosed the same day, one before and one after the cut-off of the previous day, or every
statement disclosed before the calendar's first day). Among them the one disclosed last
wins: latest DisclosedDate, then latest DisclosedTime, then the larger DisclosureNumber
(:data:`TIE_ORDER`); the row order of the table never matters, so features at a date do
not change when later rows are added, changed or removed.

Values are year-to-date as J-Quants reports them; annualised figures scale by 4/q.
Per-share values are carried to date t with the split factors between the available
date and t, so valuation ratios use the raw close of t consistently.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import (
    CODE, DAY, Feature, lag, optional_table, safe_div, select_features,
)
from atft_kedro.features.calendar import asof_backward, parse_disclosed_time, statement_available_dates
from atft_kedro.features.panel import LOG_ADJ, RAW_CLOSE, StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "stmt"
SOURCE = "statements"
_COLUMNS = (
    "DisclosedDate", "DisclosedTime", "Code", "DisclosureNumber", "TypeOfCurrentPeriod",
    "CurrentPeriodEndDate", "CurrentFiscalYearEndDate", "NetSales", "OperatingProfit",
    "OrdinaryProfit", "Profit", "EarningsPerShare", "TotalAssets", "Equity", "BookValuePerShare",
    "CashFlowsFromOperatingActivities", "ForecastNetSales", "ForecastOperatingProfit",
    "ForecastProfit", "ForecastEarningsPerShare",
    "NumberOfIssuedAndOutstandingSharesAtTheEndOfFiscalYearIncludingTreasuryStock",
)
_SHARES = "NumberOfIssuedAndOutstandingSharesAtTheEndOfFiscalYearIncludingTreasuryStock"
_QUARTER = {"1Q": 1, "2Q": 2, "3Q": 3, "FY": 4}
#: Order of statements within a stock, the last one winning among those known the same day:
#: available day, then the latest disclosure (DisclosedDate, DisclosedTime as a clock time),
#: then the larger DisclosureNumber. Never the row order of the table (DisclosureNumber is its key).
TIE_ORDER = ("_avail_d", "DisclosedDate", "_time", "DisclosureNumber")


def _rel(new: pl.Expr, old: pl.Expr) -> pl.Expr:
    """(new - old) / |old|."""
    return safe_div(new - old, old.abs())


def features(params: FeatureParams) -> list[Feature]:
    """The stmt_ features, in manifest order."""
    out: list[Feature] = []

    def add(name: str, description: str, source: str = SOURCE) -> None:
        out.append(Feature(f"stmt_{name}", description, pl.col(f"_st_{name}"), source, 1))

    for x, what in (("sales", "net sales"), ("op", "operating profit"), ("np", "profit"), ("eps", "EPS")):
        add(f"yoy_{x}", f"year-on-year growth of year-to-date {what} (same period a year earlier)")
    add("op_margin", "operating profit over net sales")
    add("np_margin", "profit over net sales")
    add("ordinary_margin", "ordinary profit over net sales")
    add("roe", "annualised profit over equity")
    add("roa", "annualised profit over total assets")
    add("equity_ratio", "equity over total assets")
    add("cfo_to_assets", "annualised operating cash flow over total assets")
    add("progress_sales", "year-to-date net sales over the latest full-year forecast")
    add("progress_op", "year-to-date operating profit over the latest full-year forecast")
    add("progress_np", "year-to-date profit over the latest full-year forecast")
    add("progress_op_excess", "operating-profit progress minus the elapsed share of the year (q/4)")
    add("progress_np_excess", "profit progress minus the elapsed share of the year (q/4)")
    add("surprise_op", "latest full year: actual operating profit vs the last forecast before it")
    add("surprise_np", "latest full year: actual profit vs the last forecast before it")
    add("quarter", "quarter of the latest statement over 4 (0.25 .. 1)")
    add("revision_sales", "latest forecast revision of full-year net sales (vs the previous forecast)")
    add("revision_op", "latest forecast revision of full-year operating profit")
    add("revision_np", "latest forecast revision of full-year profit")
    add("fcst_growth_op", "forecast full-year operating profit vs the previous year's actual")
    add("fcst_growth_np", "forecast full-year profit vs the previous year's actual")
    add("fcst_ep", "forecast EPS over the close (forward earnings yield)", f"{SOURCE}+daily_quotes")
    add("ep", "annualised profit over market capitalisation", f"{SOURCE}+daily_quotes")
    add("bp", "book value per share over the close", f"{SOURCE}+daily_quotes")
    add("sp", "annualised net sales over market capitalisation", f"{SOURCE}+daily_quotes")
    add("log_mcap", "log market capitalisation (close x shares outstanding, yen)", f"{SOURCE}+daily_quotes")
    add("days_since", "trading days since the latest statement with results became available")
    add("valid", f"1 when a statement with results is at most {params.stmt.max_age_days} trading days old")
    return out


def _month_key(date: pl.Expr) -> pl.Expr:
    return date.dt.year().cast(pl.Int32) * 12 + date.dt.month().cast(pl.Int32)


def _prepare_rows(statements: pl.DataFrame, panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    days = panel.trading_days
    avail = statement_available_dates(
        statements.get_column("DisclosedDate"), statements.get_column("DisclosedTime"), days,
        params.availability.statement_cutoff_time)
    rows = statements.select(_COLUMNS).with_columns(avail.alias("_avail")).filter(pl.col("_avail").is_not_null())
    q = pl.col("TypeOfCurrentPeriod").replace_strict(
        list(_QUARTER), list(_QUARTER.values()), default=None, return_dtype=pl.Int32)
    fy_key = _month_key(pl.col("CurrentFiscalYearEndDate"))
    return rows.with_columns(
        days.search_sorted(rows.get_column("_avail")).cast(pl.Int32).alias("_avail_d"),
        parse_disclosed_time(rows.get_column("DisclosedTime")).alias("_time"),
        q.alias("_q"),
        fy_key.alias("_fy_key"),
        _month_key(pl.col("CurrentPeriodEndDate")).alias("_period_key"),
        pl.when(q == 4).then(fy_key + 12).otherwise(fy_key).alias("_fcst_key"),
    ).sort(CODE, *TIE_ORDER)


def _latest_per_day(rows: pl.DataFrame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    """One row per (Code, ``by``, available day): the last by :data:`TIE_ORDER` that day.

    ``rows`` must be sorted by (Code, :data:`TIE_ORDER`) (as :func:`_prepare_rows` leaves them).
    """
    return rows.unique([CODE, *by, "_avail_d"], keep="last", maintain_order=True)


def _actual_rows(rows: pl.DataFrame, forecasts: pl.DataFrame) -> pl.DataFrame:
    """Statements with results, with their year-earlier period and the forecast for their year."""
    actual = _latest_per_day(rows.filter(
        pl.any_horizontal(pl.col(c).is_not_null() for c in ("NetSales", "OperatingProfit", "Profit"))))
    actual = actual.with_row_index("_row").with_columns((pl.col("_period_key") - 12).alias("_prev_key"))
    prev = actual.select(
        CODE, "TypeOfCurrentPeriod", pl.col("_period_key").alias("_prev_key"),
        pl.col("_avail_d").alias("_prev_avail_d"),
        *[pl.col(c).alias(f"_prev_{c}") for c in ("NetSales", "OperatingProfit", "Profit", "EarningsPerShare")],
    )
    by_yoy = [CODE, "TypeOfCurrentPeriod", "_prev_key"]
    actual = asof_backward(actual.lazy().sort(*by_yoy, "_avail_d"), prev.lazy(),
                           left_on="_avail_d", right_on="_prev_avail_d", by=by_yoy).collect()
    fcst = _latest_per_day(forecasts, ("_fcst_key",)).select(
        CODE, pl.col("_fcst_key").alias("_fy_key"), pl.col("_avail_d").alias("_fc_avail_d"),
        *[pl.col(c).alias(f"_fc_{c}") for c in ("ForecastNetSales", "ForecastOperatingProfit", "ForecastProfit")],
    )
    actual = asof_backward(actual.lazy().sort(CODE, "_fy_key", "_avail_d"), fcst.lazy(),
                           left_on="_avail_d", right_on="_fc_avail_d", by=[CODE, "_fy_key"]).collect()
    actual = actual.sort("_row")
    q = pl.col("_q").cast(pl.Float64)
    annual = 4.0 / q
    sales, op, np_ = pl.col("NetSales"), pl.col("OperatingProfit"), pl.col("Profit")
    is_fy = pl.col("_q") == 4
    return actual.select(
        CODE, "_avail_d",
        _rel(sales, pl.col("_prev_NetSales")).alias("_st_yoy_sales"),
        _rel(op, pl.col("_prev_OperatingProfit")).alias("_st_yoy_op"),
        _rel(np_, pl.col("_prev_Profit")).alias("_st_yoy_np"),
        _rel(pl.col("EarningsPerShare"), pl.col("_prev_EarningsPerShare")).alias("_st_yoy_eps"),
        safe_div(op, sales).alias("_st_op_margin"),
        safe_div(np_, sales).alias("_st_np_margin"),
        safe_div(pl.col("OrdinaryProfit"), sales).alias("_st_ordinary_margin"),
        safe_div(np_ * annual, pl.col("Equity")).alias("_st_roe"),
        safe_div(np_ * annual, pl.col("TotalAssets")).alias("_st_roa"),
        safe_div(pl.col("Equity"), pl.col("TotalAssets")).alias("_st_equity_ratio"),
        safe_div(pl.col("CashFlowsFromOperatingActivities") * annual, pl.col("TotalAssets")).alias(
            "_st_cfo_to_assets"),
        safe_div(sales, pl.col("_fc_ForecastNetSales")).alias("_st_progress_sales"),
        safe_div(op, pl.col("_fc_ForecastOperatingProfit")).alias("_st_progress_op"),
        safe_div(np_, pl.col("_fc_ForecastProfit")).alias("_st_progress_np"),
        (safe_div(op, pl.col("_fc_ForecastOperatingProfit")) - q / 4.0).alias("_st_progress_op_excess"),
        (safe_div(np_, pl.col("_fc_ForecastProfit")) - q / 4.0).alias("_st_progress_np_excess"),
        pl.when(is_fy).then(_rel(op, pl.col("_fc_ForecastOperatingProfit"))).forward_fill().over(CODE)
        .alias("_st_surprise_op"),
        pl.when(is_fy).then(_rel(np_, pl.col("_fc_ForecastProfit"))).forward_fill().over(CODE)
        .alias("_st_surprise_np"),
        (q / 4.0).alias("_st_quarter"),
        (np_ * annual).alias("_a_np_annual"),
        (sales * annual).alias("_a_sales_annual"),
        pl.col("BookValuePerShare").alias("_a_bps"),
        pl.col(_SHARES).alias("_a_shares"),
    )


def _forecast_rows(forecasts: pl.DataFrame, actual_fy: pl.DataFrame) -> pl.DataFrame:
    """Forecast statements with the revision against the previous forecast of the same year."""
    fc = _latest_per_day(forecasts).with_row_index("_row")
    by_year = [CODE, "_fcst_key"]
    fc = fc.with_columns(
        *[pl.col(c).shift(1).over(by_year).alias(f"_prev_{c}")
          for c in ("ForecastNetSales", "ForecastOperatingProfit", "ForecastProfit")],
        (pl.col("_fcst_key") - 12).alias("_base_key"),
    )
    base = actual_fy.select(
        CODE, pl.col("_fy_key").alias("_base_key"), pl.col("_avail_d").alias("_base_avail_d"),
        pl.col("OperatingProfit").alias("_base_op"), pl.col("Profit").alias("_base_np"))
    fc = asof_backward(fc.lazy().sort(CODE, "_base_key", "_avail_d"), base.lazy(),
                       left_on="_avail_d", right_on="_base_avail_d", by=[CODE, "_base_key"]).collect().sort("_row")
    return fc.select(
        CODE, pl.col("_avail_d").alias("_fc_avail_d"),
        _rel(pl.col("ForecastNetSales"), pl.col("_prev_ForecastNetSales")).alias("_st_revision_sales"),
        _rel(pl.col("ForecastOperatingProfit"), pl.col("_prev_ForecastOperatingProfit")).alias("_st_revision_op"),
        _rel(pl.col("ForecastProfit"), pl.col("_prev_ForecastProfit")).alias("_st_revision_np"),
        _rel(pl.col("ForecastOperatingProfit"), pl.col("_base_op")).alias("_st_fcst_growth_op"),
        _rel(pl.col("ForecastProfit"), pl.col("_base_np")).alias("_st_fcst_growth_np"),
        pl.col("ForecastEarningsPerShare").alias("_fc_eps"),
    )


def _adjustment_since(available_day: str) -> pl.Expr:
    """Product of split factors from the matched statement's available day to today."""
    new_run = (pl.col("_pos") == 0) | (pl.col(available_day) != lag(pl.col(available_day), 1)).fill_null(True)
    at_start = pl.when(new_run).then(pl.col(LOG_ADJ)).forward_fill().over(CODE)
    return (pl.col(LOG_ADJ) - at_start).exp()


def compute(panel: StockPanel, statements: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    """stmt_ features aligned with ``panel.frame`` (float32).

    Without statements (missing or empty table) every stmt_ feature is null and ``stmt_valid`` 0.

    Raises:
        MissingSourceError: ``statements`` has rows but lacks columns.
    """
    statements = optional_table(statements, SOURCE, GROUP, _COLUMNS)
    rows = _prepare_rows(statements, panel, params)
    forecasts = rows.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in (
        "ForecastNetSales", "ForecastOperatingProfit", "ForecastProfit")))
    actual_all = rows.filter(pl.any_horizontal(
        pl.col(c).is_not_null() for c in ("NetSales", "OperatingProfit", "Profit")))
    actual = _actual_rows(rows, forecasts)
    fc = _forecast_rows(forecasts, _latest_per_day(actual_all.filter(pl.col("_q") == 4)))
    max_age = params.stmt.max_age_days
    frame = panel.frame.lazy().select(CODE, DAY, "_pos", RAW_CLOSE, LOG_ADJ)
    frame = asof_backward(frame, actual.lazy(), left_on=DAY, right_on="_avail_d", by=CODE)
    frame = asof_backward(frame, fc.lazy(), left_on=DAY, right_on="_fc_avail_d", by=CODE)
    age = (pl.col(DAY) - pl.col("_avail_d")).cast(pl.Float64)
    fresh = age <= max_age
    fresh_fc = (pl.col(DAY) - pl.col("_fc_avail_d")) <= max_age
    close = pl.col(RAW_CLOSE)
    adj_a, adj_f = _adjustment_since("_avail_d"), _adjustment_since("_fc_avail_d")
    mcap = close * pl.col("_a_shares") / adj_a
    frame = frame.with_columns(
        safe_div(pl.col("_fc_eps") * adj_f, close).alias("_st_fcst_ep"),
        safe_div(pl.col("_a_np_annual"), mcap).alias("_st_ep"),
        safe_div(pl.col("_a_bps") * adj_a, close).alias("_st_bp"),
        safe_div(pl.col("_a_sales_annual"), mcap).alias("_st_sp"),
        pl.when(mcap > 0).then(mcap.log()).alias("_st_log_mcap"),
        age.alias("_st_days_since"),
        fresh.fill_null(False).cast(pl.Float64).alias("_st_valid"),
    )
    names = [f.name for f in features(params)]
    forecast_based = {"stmt_revision_sales", "stmt_revision_op", "stmt_revision_np",
                      "stmt_fcst_growth_op", "stmt_fcst_growth_np", "stmt_fcst_ep"}
    keep_always = {"stmt_days_since", "stmt_valid"}
    frame = frame.with_columns(
        pl.when(fresh_fc if n in forecast_based else fresh).then(pl.col(f"_st_{n[5:]}")).alias(f"_st_{n[5:]}")
        for n in names if n not in keep_always
    )
    return select_features(frame, features(params))
