"""Listings and the point-in-time master; the timing of statements, calendars and weekly tables."""

from __future__ import annotations

import numpy as np
import polars as pl

from atft_kedro.market.simulator import SimulatedMarket
from atft_kedro.schemas import tables


def _next_trading_day(calendar: pl.DataFrame) -> pl.DataFrame:
    """Each trading day with the next one: columns Date, next."""
    days = calendar.filter(pl.col("HolDiv") == "1").select("Date").sort("Date")
    return days.with_columns(pl.col("Date").shift(-1).alias("next"))


def test_stocks_list_and_delist_over_time(eventful_tables: dict[str, pl.DataFrame]) -> None:
    bars = eventful_tables[tables.DAILY_BARS.raw_name]
    span = bars.group_by("Code").agg(pl.col("Date").min().alias("first"), pl.col("Date").max().alias("last"),
                                     pl.len().alias("n"))
    start, end = bars["Date"].min(), bars["Date"].max()
    assert span.filter(pl.col("first") > start).height >= 3  # new listings
    assert span.filter(pl.col("last") < end).height >= 3  # delistings
    trading_days = bars["Date"].unique().sort()
    # a stock trades on every trading day between its first and last bar (no holes)
    expected = span.with_columns(
        pl.struct("first", "last").map_elements(
            lambda s: int(((trading_days >= s["first"]) & (trading_days <= s["last"])).sum()), return_dtype=pl.Int64
        ).alias("expected")
    )
    assert (expected["n"] == expected["expected"]).all()


def test_master_is_point_in_time(eventful_tables: dict[str, pl.DataFrame]) -> None:
    bars = eventful_tables[tables.DAILY_BARS.raw_name]
    master = eventful_tables[tables.EQUITIES_MASTER.raw_name]
    # every master row is a stock that trades that day: never before listing or after delisting
    assert master.join(bars.select("Date", "Code"), on=["Date", "Code"], how="anti").height == 0
    # a stock's first master row is its listing day, so every bar has a master row as of then
    first_bar = bars.group_by("Code").agg(pl.col("Date").min().alias("listed"))
    first_row = master.group_by("Code").agg(pl.col("Date").min().alias("first_row"))
    joined = first_bar.join(first_row, on="Code")
    assert joined.height == first_bar.height
    assert (joined["listed"] == joined["first_row"]).all()
    # on a snapshot day every listed stock has a row
    snapshot_days = master.group_by("Date").len().filter(pl.col("len") > 5)["Date"]
    assert snapshot_days.len() >= 20
    listed_then = bars.filter(pl.col("Date").is_in(snapshot_days.implode())).group_by("Date").len()
    rows_then = master.filter(pl.col("Date").is_in(snapshot_days.implode())).group_by("Date").len()
    assert listed_then.sort("Date").equals(rows_then.sort("Date"))
    # size buckets move with market caps over time: some stock changes bucket
    assert master.group_by("Code").agg(pl.col("ScaleCat").n_unique()).filter(pl.col("ScaleCat") > 1).height > 0


def test_statements_timing_and_earnings_calendar(test_tables: dict[str, pl.DataFrame],
                                                 test_market: SimulatedMarket) -> None:
    statements = test_tables[tables.FIN_SUMMARY.raw_name]
    assert statements["DiscNo"].is_unique().all()
    regular = statements.filter(pl.col("DocType") != "EarnForecastRevision")
    lag = (regular["DiscDate"] - regular["CurPerEn"]).dt.total_days()
    assert lag.min() >= 25 and lag.max() <= 75
    share_after_close = (statements["DiscTime"] >= "15:00:00").mean()
    assert 0.5 <= share_after_close <= 0.95
    assert statements.filter(pl.col("DocType") == "EarnForecastRevision").height > 10
    assert set(regular["CurPerType"].unique()) == {"1Q", "2Q", "3Q", "FY"}
    # forecasts exist on every statement; revisions carry forecasts only
    assert statements["FNP"].null_count() == 0 and statements["FEPS"].null_count() == 0
    revisions = statements.filter(pl.col("DocType") == "EarnForecastRevision")
    assert revisions["NP"].null_count() == revisions.height

    calendar = test_tables[tables.EARNINGS_DATES.raw_name]
    scheduled = calendar.join(regular.select("Code", pl.col("DiscDate").alias("SchDate")), on=["Code", "SchDate"])
    end = test_market.params.end_date
    in_window = calendar.filter(pl.col("SchDate") <= end)
    assert scheduled.height == in_window.height  # every schedule inside the window is a real disclosure
    lead = (calendar["SchDate"] - calendar["PubDate"]).dt.total_days()
    assert lead.min() >= 15 and lead.median() >= 21 and lead.max() <= 60
    assert calendar.filter(pl.col("SchDate") > end).height > 0  # schedules announced for after end_date
    assert calendar["PubDate"].max() <= end


def test_weekly_and_daily_publications_follow_the_calendar(test_tables: dict[str, pl.DataFrame]) -> None:
    nxt = _next_trading_day(test_tables[tables.TRADING_CALENDAR.raw_name])
    margin = test_tables[tables.MARGIN_INTEREST.raw_name]
    checked = margin.join(nxt, on="Date")
    assert checked.height == margin.height and (checked["PubDate"] == checked["next"]).all()
    week_last = test_tables[tables.DAILY_BARS.raw_name].select("Date").unique().with_columns(
        pl.col("Date").dt.truncate("1w").alias("week")).group_by("week").agg(pl.col("Date").max())
    assert margin["Date"].unique().is_in(week_last["Date"].implode()).all()
    assert (margin["Date"].dt.weekday() == 5).mean() > 0.9  # Fridays, unless a holiday

    flows = test_tables[tables.INVESTOR_TYPES.raw_name]
    assert (flows["PubDate"] > flows["EnDate"]).all() and (flows["StDate"] <= flows["EnDate"]).all()
    assert (flows["PubDate"].dt.weekday() == 4).mean() > 0.7  # Thursdays of the following week, holidays aside
    assert set(flows["Section"].unique()) <= {"TSEPrime", "TSEStandard", "TSEGrowth"}
    np.testing.assert_allclose(flows["FrgnTot"], flows["FrgnSell"] + flows["FrgnBuy"])
    np.testing.assert_allclose(flows["IndBal"], flows["IndBuy"] - flows["IndSell"])
    np.testing.assert_allclose(flows["TotBuy"], flows["PropBuy"] + flows["BrkBuy"])
    customers = ["Ind", "Frgn", "SecCo", "InvTr", "BusCo", "OthCo", "InsCo", "Bank", "TrstBnk", "OthFin"]
    customer_sales = flows.select(pl.sum_horizontal(f"{g}Sell" for g in customers)).to_series()
    np.testing.assert_allclose(flows["BrkSell"], customer_sales)

    alerts = test_tables[tables.MARGIN_ALERT.raw_name].join(nxt, left_on="AppDate", right_on="Date")
    assert alerts.height > 0 and (alerts["PubDate"] == alerts["next"]).all()

    shorts = test_tables[tables.SHORT_POSITIONS.raw_name]
    lag = shorts.join(nxt.with_row_index("k").select("Date", "k"), left_on="CalcDate", right_on="Date").join(
        nxt.with_row_index("k2").select(pl.col("Date").alias("DiscDate"), "k2"), on="DiscDate")
    assert lag.height == shorts.height
    assert ((lag["k2"] - lag["k"]) >= 1).all() and ((lag["k2"] - lag["k"]) <= 3).all()
    assert (shorts.filter(pl.col("PrevRptDate").is_null())["ShrtPosToSO"] >= 0.005).all()
    assert (shorts.filter(pl.col("PrevRptDate").is_not_null())["PrevRptDate"]
            < shorts.filter(pl.col("PrevRptDate").is_not_null())["CalcDate"]).all()

    short_ratio = test_tables[tables.SHORT_RATIO.raw_name]
    share = (short_ratio["ShrtWithResVa"] + short_ratio["ShrtNoResVa"]) / (
        short_ratio["SellExShortVa"] + short_ratio["ShrtWithResVa"] + short_ratio["ShrtNoResVa"])
    assert 0.3 < share.mean() < 0.55
