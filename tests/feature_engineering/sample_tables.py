"""Small, vectorised generator of canonical tables for tests and benchmarks of the features.

A test helper, not library code (``benchmarks/bench_features.py`` puts this folder on its path).

Not the market simulator (``atft_kedro.market``): a plain factor model with a JPX-like
calendar (weekends and fixed Japanese holidays closed), 33 sectors, listings and
delistings, splits, untraded days, quarterly statements disclosed at various times,
weekly tables published after the week, margin alerts, sector short selling, short
position reports and an earnings calendar. Every table follows
``atft_kedro.schemas.tables`` (canonical names, dtypes, keys).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from scipy.signal import lfilter

from atft_kedro import exchange_calendar
from atft_kedro.schemas import tables

SECTOR33 = (
    "0050", "1050", "2050", "3050", "3100", "3150", "3200", "3250", "3300", "3350", "3400",
    "3450", "3500", "3550", "3600", "3650", "3700", "3750", "3800", "4050", "5050", "5100",
    "5150", "5200", "5250", "6050", "6100", "7050", "7100", "7150", "7200", "8050", "9050",
)
MARKETS = ("0111", "0112", "0113")
SECTIONS = {"0111": "TSEPrime", "0112": "TSEStandard", "0113": "TSEGrowth"}
#: (month, day) of fixed-date Japanese holidays the sample calendar closes.
HOLIDAYS = ((1, 1), (1, 2), (1, 3), (2, 11), (2, 23), (3, 20), (4, 29), (5, 3), (5, 4), (5, 5),
            (8, 11), (9, 23), (11, 3), (11, 23), (12, 31))
DISCLOSURE_TIMES = ("11:30:00", "13:00:00", "15:00:00", "15:30:00", "16:00:00")
SELLERS = tuple(f"Seller {c}" for c in "ABCDEFGH")


def sample_calendar(first: dt.date, last: dt.date) -> pl.DataFrame:
    """Every calendar day from ``first`` to ``last`` with HolidayDivision '1'/'0'."""
    dates = pl.date_range(first, last, "1d", eager=True)
    md = pl.DataFrame({"m": [m for m, _ in HOLIDAYS], "d": [d for _, d in HOLIDAYS]})
    frame = pl.DataFrame({"Date": dates}).with_columns(
        pl.col("Date").dt.month().cast(pl.Int64).alias("m"),
        pl.col("Date").dt.day().cast(pl.Int64).alias("d"),
    )
    holiday = frame.join(md.with_columns(pl.lit(True).alias("_h")), on=["m", "d"], how="left",
                         maintain_order="left").get_column("_h").fill_null(False)
    closed = (frame.get_column("Date").dt.weekday() >= 6) | holiday
    return pl.DataFrame({
        "Date": dates,
        "HolidayDivision": pl.Series(np.where(closed.to_numpy(), "0", "1")),
    })


def _t(rng: np.random.Generator, shape, dof: float = 5.0) -> np.ndarray:
    return rng.standard_t(dof, size=shape) / np.sqrt(dof / (dof - 2.0))


def make_canonical_tables(
    n_stocks: int, n_days: int, seed: int, start: dt.date = dt.date(2016, 1, 4), n_sectors: int = 33
) -> dict[str, pl.DataFrame]:
    """Canonical tables of a synthetic market of ``n_stocks`` over ``n_days`` trading days.

    ``n_sectors`` (<= 33) limits how many sector-33 codes the stocks are spread over.

    Returns:
        {canonical table name: DataFrame}, one entry per table in ``tables.TABLES``.
    """
    rng = np.random.default_rng(seed)
    history = dt.timedelta(days=400)  # statements and calendar start a year before quotes
    calendar = sample_calendar(start - history, start + dt.timedelta(days=int(n_days * 1.5) + 60))
    all_days = exchange_calendar.trading_days(calendar)
    days = all_days.filter(all_days >= start).head(n_days)
    if days.len() < n_days:
        raise ValueError("sample calendar too short")
    calendar = calendar.filter(pl.col("Date") <= days[-1] + dt.timedelta(days=45))
    t_n, n = n_days, n_stocks
    codes = np.array([f"{1300 + 7 * i:04d}0" for i in range(n)])

    # ---- listing spans
    first = np.where(rng.random(n) < 0.15, rng.integers(1, max(2, t_n // 3), n), 0)
    last = np.where(rng.random(n) < 0.1, rng.integers(t_n // 2, t_n, n), t_n - 1)
    last = np.maximum(last, np.minimum(first + 60, t_n - 1))
    t_idx = np.arange(t_n)[:, None]
    listed = (t_idx >= first[None, :]) & (t_idx <= last[None, :])  # [T, N]

    # ---- returns: market with volatility clustering, sectors, idiosyncratic
    sector = rng.integers(0, min(n_sectors, len(SECTOR33)), n)
    log_vol = lfilter([1.0], [1.0, -0.97], rng.normal(0.0, 0.08, t_n))
    r_m = 0.009 * np.exp(log_vol) * _t(rng, t_n)
    f_sec = 0.005 * _t(rng, (t_n, len(SECTOR33)))
    beta = rng.uniform(0.5, 1.5, n)
    idio = rng.uniform(0.008, 0.03, n)
    ret = beta[None, :] * r_m[:, None] + f_sec[:, sector] + idio[None, :] * _t(rng, (t_n, n))
    adj_close = rng.uniform(200.0, 5000.0, n)[None, :] * np.exp(np.cumsum(ret, axis=0))

    # ---- splits (2-for-1): factor 0.5 on the split day, raw prices before it twice the adjusted
    factor = np.ones((t_n, n))
    splitters = np.flatnonzero(rng.random(n) < 0.05)
    factor[rng.integers(t_n // 4, t_n - 5, splitters.size), splitters] = 0.5
    later = np.cumprod(factor[::-1], axis=0)[::-1]  # product over u >= t
    future = np.vstack([later[1:], np.ones((1, n))])  # product over u > t
    gap = 0.004 * rng.standard_normal((t_n, n))
    adj_open = np.vstack([adj_close[:1], adj_close[:-1]]) * np.exp(gap)
    adj_high = np.maximum(adj_open, adj_close) * np.exp(np.abs(0.006 * rng.standard_normal((t_n, n))))
    adj_low = np.minimum(adj_open, adj_close) * np.exp(-np.abs(0.006 * rng.standard_normal((t_n, n))))
    close, open_, high, low = (a / future for a in (adj_close, adj_open, adj_high, adj_low))
    adj_volume = np.exp(rng.normal(11.0, 1.0, n))[None, :] * np.exp(0.5 * rng.standard_normal((t_n, n)))
    adj_volume = np.round(adj_volume)
    volume = np.round(adj_volume * future)
    untraded = rng.random((t_n, n)) < 0.01

    ti, si = np.nonzero(listed)
    order = np.lexsort((ti, si))
    ti, si = ti[order], si[order]

    def pick(a: np.ndarray, null_untraded: bool = True) -> pl.Series:
        v = a[ti, si].astype(np.float64)
        if null_untraded:
            v = np.where(untraded[ti, si], np.nan, v)
        return pl.Series(v).fill_nan(None)

    un = untraded[ti, si]
    fac = factor[ti, si]
    quotes = pl.DataFrame({
        "Date": days.gather(ti),
        "Code": pl.Series(codes[si]),
        "Open": pick(open_), "High": pick(high), "Low": pick(low), "Close": pick(close),
        "UpperLimit": pl.Series(np.where(ret[ti, si] > 0.08, "1", "0")),
        "LowerLimit": pl.Series(np.where(ret[ti, si] < -0.08, "1", "0")),
        "Volume": pl.Series(np.where(un, 0.0, volume[ti, si])),
        "TurnoverValue": pl.Series(np.where(un, 0.0, volume[ti, si] * (
            open_ + high + low + close)[ti, si] / 4.0)),
        "AdjustmentFactor": pl.Series(fac),
        "AdjustmentOpen": pick(adj_open), "AdjustmentHigh": pick(adj_high),
        "AdjustmentLow": pick(adj_low), "AdjustmentClose": pick(adj_close),
        "AdjustmentVolume": pl.Series(np.where(un, 0.0, adj_volume[ti, si])),
    })

    topix_level = 1800.0 * np.exp(np.cumsum(r_m))
    topix_open = np.concatenate([[1800.0], topix_level[:-1]]) * np.exp(0.002 * rng.standard_normal(t_n))
    topix = pl.DataFrame({
        "Date": days,
        "Open": topix_open,
        "High": np.maximum(topix_open, topix_level) * (1 + np.abs(0.003 * rng.standard_normal(t_n))),
        "Low": np.minimum(topix_open, topix_level) * (1 - np.abs(0.003 * rng.standard_normal(t_n))),
        "Close": topix_level,
    })

    return _finish(rng, calendar, days, codes, first, last, sector, quotes, topix)


def _finish(rng, calendar, days, codes, first, last, sector, quotes, topix) -> dict[str, pl.DataFrame]:
    statements = _statements(rng, calendar, days, codes)
    out = {
        "trading_calendar": calendar,
        "listed_info": _listed_info(rng, days, codes, first, sector),
        "daily_quotes": quotes,
        "topix": topix,
        "investor_types": _investor_types(rng, days),
        "weekly_margin_interest": _weekly_margin(rng, days, codes, first, last),
        "daily_margin_interest": _daily_margin(rng, days, codes),
        "short_selling": _short_selling(rng, days),
        "short_positions": _short_positions(rng, days, codes),
        "statements": statements,
        "earnings_calendar": _earnings_calendar(rng, statements),
    }
    return {name: _conform(name, frame) for name, frame in out.items()}


def _conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    spec = tables.TABLES_BY_CANONICAL_NAME[name]
    return frame.select(pl.col(c.canonical).cast(c.dtype) for c in spec.columns).sort(list(spec.keys))


def _listed_info(rng, days: pl.Series, codes: np.ndarray, first: np.ndarray, sector: np.ndarray) -> pl.DataFrame:
    """Monthly snapshots of listed stocks plus one on each listing day; a few change sector."""
    months = pl.DataFrame({"Date": days}).with_columns(pl.col("Date").dt.truncate("1mo").alias("m"))
    snap_idx = months.with_row_index("i").group_by("m").agg(pl.col("i").min()).get_column("i").sort().to_numpy()
    t_n, n = days.len(), codes.size
    snap = np.zeros(t_n, bool)
    snap[snap_idx] = True
    take = (snap[:, None] & (np.arange(t_n)[:, None] >= first[None, :])) | (np.arange(t_n)[:, None] == first[None, :])
    ti, si = np.nonzero(take)
    movers = rng.random(n) < 0.05
    moved_sector = (sector + 1) % max(2, int(sector.max()) + 1)
    sec = np.where(movers[si] & (ti >= t_n // 2), moved_sector[si], sector[si])
    market = np.array(MARKETS)[rng.integers(0, len(MARKETS), n)]
    s33 = np.array(SECTOR33)[sec]
    return pl.DataFrame({
        "Date": days.gather(ti), "Code": codes[si],
        "CompanyName": pl.repeat(None, ti.size, dtype=pl.String, eager=True),
        "CompanyNameEnglish": pl.repeat(None, ti.size, dtype=pl.String, eager=True),
        "Sector17Code": pl.Series((sec // 2 + 1).astype(str)),
        "Sector17CodeName": pl.repeat(None, ti.size, dtype=pl.String, eager=True),
        "Sector33Code": s33,
        "Sector33CodeName": pl.repeat(None, ti.size, dtype=pl.String, eager=True),
        "ScaleCategory": pl.repeat(None, ti.size, dtype=pl.String, eager=True),
        "MarketCode": market[si],
        "MarketCodeName": pl.repeat(None, ti.size, dtype=pl.String, eager=True),
        "MarginCode": pl.repeat("2", ti.size, dtype=pl.String, eager=True),
        "MarginCodeName": pl.repeat(None, ti.size, dtype=pl.String, eager=True),
    }).unique(["Date", "Code"], keep="first")


def _statements(rng, calendar: pl.DataFrame, days: pl.Series, codes: np.ndarray) -> pl.DataFrame:
    """Quarterly YTD statements (fiscal year ending March) with forecasts for the fiscal year."""
    n = codes.size
    first_cal = calendar.get_column("Date")[0]
    ends = pl.date_range(dt.date(first_cal.year - 1, 3, 31), days[-1], "1q", eager=True)
    ends = ends.dt.month_end().filter(ends.dt.month().is_in([3, 6, 9, 12]))
    p = ends.len()
    end_np = ends.to_numpy()
    month = ends.dt.month().to_numpy()
    q = np.select([month == 6, month == 9, month == 12, month == 3], [1, 2, 3, 4])
    fy_end_year = np.where(month == 3, ends.dt.year().to_numpy(), ends.dt.year().to_numpy() + 1)
    level = np.exp(rng.normal(23.0, 1.2, n))  # annual sales, yen
    growth = rng.normal(0.03, 0.08, (p, n)).cumsum(axis=0) / 4.0
    q_sales = level[None, :] / 4.0 * np.exp(growth) * np.exp(0.05 * rng.standard_normal((p, n)))
    margin = np.clip(rng.uniform(0.02, 0.15, n)[None, :] + 0.02 * rng.standard_normal((p, n)), -0.1, 0.4)
    q_op = q_sales * margin
    # YTD cumulation within the fiscal year (q restarts at 1 each June)
    fy_id = np.cumsum(q == 1)
    frame = pl.DataFrame({"fy": np.repeat(fy_id, n), "s": np.tile(np.arange(n), p),
                          "sales": q_sales.ravel(), "op": q_op.ravel()})
    ytd = frame.select(pl.col("sales").cum_sum().over(["fy", "s"]), pl.col("op").cum_sum().over(["fy", "s"]))
    sales = ytd.get_column("sales").to_numpy().reshape(p, n)
    op = ytd.get_column("op").to_numpy().reshape(p, n)
    full_year = q_sales * 4.0 * np.exp(0.05 * rng.standard_normal((p, n)))
    full_op = full_year * margin
    next_year = np.where(q[:, None] == 4, 1.03, 1.0)
    shares = np.exp(rng.normal(17.5, 1.0, n))
    lag_days = rng.integers(25, 46, (p, n))
    disclosed = end_np[:, None] + lag_days.astype("timedelta64[D]")
    keep = disclosed <= np.datetime64(days[-1])
    pi, si = np.nonzero(keep)
    q_s = q[pi]
    ta = level[si] * 1.3
    equity = ta * 0.45 * np.exp(0.02 * rng.standard_normal(pi.size))
    np_ = op[pi, si] * 0.65
    fy_end = np.array([np.datetime64(f"{y}-03-31") for y in fy_end_year])[pi]
    fy_start = fy_end - np.timedelta64(364, "D")
    disc = disclosed[pi, si]
    return pl.DataFrame({
        "DisclosedDate": pl.Series(disc).cast(pl.Date),
        "DisclosedTime": np.array(DISCLOSURE_TIMES)[rng.integers(0, len(DISCLOSURE_TIMES), pi.size)],
        "Code": codes[si],
        "DisclosureNumber": np.char.add(np.char.add(codes[si], "-"), (pi * 10 + 1).astype(str)),
        "TypeOfDocument": np.where(q_s == 4, "FYFinancialStatements_Consolidated_JP",
                                   np.char.add(q_s.astype(str), "QFinancialStatements_Consolidated_JP")),
        "TypeOfCurrentPeriod": np.where(q_s == 4, "FY", np.char.add(q_s.astype(str), "Q")),
        "CurrentPeriodStartDate": pl.Series(fy_start).cast(pl.Date),
        "CurrentPeriodEndDate": pl.Series(end_np[pi]).cast(pl.Date),
        "CurrentFiscalYearStartDate": pl.Series(fy_start).cast(pl.Date),
        "CurrentFiscalYearEndDate": pl.Series(fy_end).cast(pl.Date),
        "NetSales": sales[pi, si], "OperatingProfit": op[pi, si],
        "OrdinaryProfit": op[pi, si] * 1.02, "Profit": np_,
        "EarningsPerShare": np_ / shares[si], "TotalAssets": ta, "Equity": equity,
        "EquityToAssetRatio": equity / ta, "BookValuePerShare": equity / shares[si],
        "CashFlowsFromOperatingActivities": pl.Series(np.where(np.isin(q_s, [2, 4]), op[pi, si] * 0.9, np.nan)).fill_nan(None),
        "ForecastNetSales": full_year[pi, si] * next_year[pi, 0],
        "ForecastOperatingProfit": full_op[pi, si] * next_year[pi, 0],
        "ForecastOrdinaryProfit": full_op[pi, si] * 1.02 * next_year[pi, 0],
        "ForecastProfit": full_op[pi, si] * 0.65 * next_year[pi, 0],
        "ForecastEarningsPerShare": full_op[pi, si] * 0.65 * next_year[pi, 0] / shares[si],
        "NumberOfIssuedAndOutstandingSharesAtTheEndOfFiscalYearIncludingTreasuryStock": shares[si],
    })


def _earnings_calendar(rng, statements: pl.DataFrame) -> pl.DataFrame:
    """Each disclosure scheduled in advance; the schedule is published 20-40 days before."""
    ahead = pl.Series("_ahead", rng.integers(20, 41, statements.height))
    return statements.with_columns(ahead).select(
        (pl.col("DisclosedDate") - pl.duration(days=pl.col("_ahead"))).alias("PublishedDate"),
        pl.col("DisclosedDate").alias("ScheduledDate"),
        "Code",
        pl.col("TypeOfCurrentPeriod").alias("FiscalQuarter"),
        pl.lit("3月").alias("FiscalYearEnd"),
    ).unique(["PublishedDate", "Code", "ScheduledDate"])


def _weeks(days: pl.Series) -> pl.DataFrame:
    """Start (Monday), end (Friday) and index of each calendar week with a trading day."""
    return (
        pl.DataFrame({"Date": days})
        .with_columns(pl.col("Date").dt.truncate("1w").alias("StartDate"))
        .group_by("StartDate").agg(pl.col("Date").max().alias("last"))
        .sort("StartDate")
        .with_columns((pl.col("StartDate") + pl.duration(days=4)).alias("EndDate"))
        .with_row_index("w")
    )


def _investor_types(rng, days: pl.Series) -> pl.DataFrame:
    weeks = _weeks(days)
    sections = sorted(SECTIONS.values())
    grid = weeks.join(pl.DataFrame({"Section": sections}), how="cross")
    m = grid.height
    out = grid.select(
        (pl.col("EndDate") + pl.duration(days=6)).alias("PublishedDate"), "StartDate", "EndDate", "Section")
    groups = sorted({c.canonical[: -len("Sales")] for c in tables.INVESTOR_TYPES.columns
                     if c.canonical.endswith("Sales")})
    data = {}
    for g in groups:  # 13 investor types: a loop over columns, not rows
        sales = np.exp(rng.normal(25.0, 0.3, m))
        purchases = sales * np.exp(0.08 * rng.standard_normal(m))
        data[f"{g}Sales"], data[f"{g}Purchases"] = sales, purchases
        data[f"{g}Total"], data[f"{g}Balance"] = sales + purchases, purchases - sales
    return out.with_columns(**{k: pl.Series(v) for k, v in data.items()})


def _weekly_margin(rng, days, codes, first, last) -> pl.DataFrame:
    weeks = _weeks(days)
    day_idx = days.search_sorted(weeks.get_column("last")).to_numpy()
    w_n, n = weeks.height, codes.size
    alive = (day_idx[:, None] >= first[None, :]) & (day_idx[:, None] <= last[None, :])
    long_ = np.exp(rng.normal(12.0, 1.0, n)[None, :] + np.cumsum(0.1 * rng.standard_normal((w_n, n)), axis=0))
    short = long_ * np.exp(rng.normal(-1.5, 0.5, n)[None, :] + np.cumsum(0.1 * rng.standard_normal((w_n, n)), axis=0))
    wi, si = np.nonzero(alive)
    date = weeks.get_column("last").gather(wi)
    return pl.DataFrame({
        "PublishedDate": date + dt.timedelta(days=4), "Date": date, "Code": codes[si],
        "IssueType": np.full(wi.size, "2"),
        "ShortMarginTradeVolume": np.round(short[wi, si]), "LongMarginTradeVolume": np.round(long_[wi, si]),
        "ShortNegotiableMarginTradeVolume": np.round(short[wi, si] * 0.3),
        "LongNegotiableMarginTradeVolume": np.round(long_[wi, si] * 0.3),
        "ShortStandardizedMarginTradeVolume": np.round(short[wi, si] * 0.7),
        "LongStandardizedMarginTradeVolume": np.round(long_[wi, si] * 0.7),
    })


def _daily_margin(rng, days, codes) -> pl.DataFrame:
    t_n, n = days.len(), codes.size
    start = rng.integers(0, max(1, t_n - 40), n)
    on = (rng.random(n) < 0.15)[None, :] & (np.arange(t_n)[:, None] >= start[None, :]) & (
        np.arange(t_n)[:, None] < start[None, :] + 30)
    ti, si = np.nonzero(on)
    long_ = np.exp(rng.normal(13.0, 1.0, ti.size))
    short = long_ * np.exp(rng.normal(-0.5, 0.5, ti.size))
    return pl.DataFrame({
        "PublishedDate": days.gather(ti), "Code": codes[si],
        "ApplicationDate": days.gather(np.maximum(ti - 1, 0)),
        "ShortMarginOutstanding": short, "DailyChangeShortMarginOutstanding": short * 0.02 * rng.standard_normal(ti.size),
        "ShortMarginOutstandingListedShareRatio": short / 1e8,
        "LongMarginOutstanding": long_, "DailyChangeLongMarginOutstanding": long_ * 0.02 * rng.standard_normal(ti.size),
        "LongMarginOutstandingListedShareRatio": long_ / 1e8,
        "ShortLongRatio": 100.0 * short / long_,
        "TSEMarginBorrowingAndLendingRegulationClassification": np.full(ti.size, "001"),
    })


def _short_selling(rng, days) -> pl.DataFrame:
    t_n, s_n = days.len(), len(SECTOR33)
    sell = np.exp(rng.normal(24.0, 0.5, (t_n, s_n)))
    share = np.clip(0.4 + np.cumsum(0.01 * rng.standard_normal((t_n, s_n)), axis=0) * 0.3, 0.1, 0.8)
    short = sell * share / (1 - share)
    restricted = np.clip(rng.uniform(0.7, 0.95, (t_n, s_n)), 0, 1)
    return pl.DataFrame({
        "Date": days.gather(np.repeat(np.arange(t_n), s_n)),
        "Sector33Code": np.tile(np.array(SECTOR33), t_n),
        "SellingExcludingShortSellingTurnoverValue": sell.ravel(),
        "ShortSellingWithRestrictionsTurnoverValue": (short * restricted).ravel(),
        "ShortSellingWithoutRestrictionsTurnoverValue": (short * (1 - restricted)).ravel(),
    })


def _short_positions(rng, days, codes) -> pl.DataFrame:
    m = codes.size * 3
    ti = rng.integers(3, days.len(), m)
    ratio = np.where(rng.random(m) < 0.2, rng.uniform(0.0, 0.5, m), rng.uniform(0.5, 3.0, m))
    return pl.DataFrame({
        "DisclosedDate": days.gather(ti), "CalculatedDate": days.gather(ti - 2),
        "Code": codes[rng.integers(0, codes.size, m)],
        "ShortSellerName": np.array(SELLERS)[rng.integers(0, len(SELLERS), m)],
        "ShortPositionsToSharesOutstandingRatio": ratio,
        "ShortPositionsInSharesNumber": np.round(ratio * 1e6),
        "ShortPositionsInTradingUnitsNumber": np.round(ratio * 1e4),
        "CalculationInPreviousReportingDate": pl.repeat(None, m, dtype=pl.Date, eager=True),
        "ShortPositionsInPreviousReportingRatio": pl.repeat(None, m, dtype=pl.Float64, eager=True),
    }).unique(["DisclosedDate", "CalculatedDate", "Code", "ShortSellerName"], keep="first")
