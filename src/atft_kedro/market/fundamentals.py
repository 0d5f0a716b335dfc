"""Quarterly statements with forecasts and revisions (``raw_fin_summary``) and the earnings
calendar (``raw_earnings_dates``).

Each company has a full-year net-profit forecast F. Its events, in order, are:

* a quarterly statement (1Q-3Q, cumulative year to date): profit ``F (q/4) (1 + c z)``;
  with ``statement_revision_probability`` it also revises F to ``F (1 + c z)``;
* a full-year statement: profit ``F (1 + c z)``, and a new forecast for the next year
  ``F (1 + c z) exp(g + sd_g eps)``;
* between two statements, with ``revision_probability``, a forecast revision ``F (1 + c z)``.

``z`` is the standardised surprise (clipped to +-3), ``c`` = ``surprise_scale``. It can be read
back from the table: (NP / (prior FNP x q/4) - 1) / c for statements and (FNP / prior FNP - 1) / c
for revisions. Its price effects: a jump on the effective day (unpredictable) and the earnings
drift after it (``effects.py``). The effective day is the disclosure day, or the next trading
day when DiscTime >= 15:00:00 (the close).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from atft_kedro.market.calendar import Timeline
from atft_kedro.market.dynamics import Jumps
from atft_kedro.market.frames import float_column, gather_dates, gather_strings
from atft_kedro.market.params import StatementParams
from atft_kedro.market.universe import Universe

CLOSE_TIME = "15:00:00"
FISCAL_QUARTER_LABELS = ("FY", "1Q", "2Q", "3Q")
REVISION_DOC = "EarnForecastRevision"
REPORTING_UNIT = 1e3  # yen amounts are reported in thousands of yen


@dataclass(frozen=True)
class StatementEvents:
    """Every disclosure, emitted or latent, flattened [E] (emitted ones are in the tables).

    Attributes:
        stock: stock index.
        disclosed: global trading-day index of the disclosure.
        effective: global index of the first close at which it is known.
        time: index into ``disclosure_times``.
        is_revision: a forecast-revision document (else a quarterly/full-year statement).
        fiscal_quarter: 0 = full year, 1..3 = quarter (revisions: 0).
        period_end, fy_start, fy_end: ``datetime64[D]``.
        surprise: standardised surprise z.
        forecast_prev, forecast_new: full-year profit forecast before and after the event.
        profit: reported (cumulative) profit; NaN for revisions.
        emitted: disclosed while listed and inside the data window.
        has_prior: an earlier emitted event of the company exists (its forecast is public).
        schedule_lead: trading days the date is published ahead (statements).
    """

    stock: np.ndarray
    disclosed: np.ndarray
    effective: np.ndarray
    time: np.ndarray
    is_revision: np.ndarray
    fiscal_quarter: np.ndarray
    period_end: np.ndarray
    fy_start: np.ndarray
    fy_end: np.ndarray
    surprise: np.ndarray
    forecast_prev: np.ndarray
    forecast_new: np.ndarray
    profit: np.ndarray
    emitted: np.ndarray
    has_prior: np.ndarray
    schedule_lead: np.ndarray


@dataclass(frozen=True)
class CompanyRatios:
    """Per-company accounting ratios [N]."""

    net_margin: np.ndarray
    op_to_profit: np.ndarray
    return_on_equity: np.ndarray
    equity_ratio: np.ndarray
    cash_flow_ratio: np.ndarray


def _month_end(months: np.ndarray) -> np.ndarray:
    return (months + 1).astype("datetime64[D]") - np.timedelta64(1, "D")


@dataclass(frozen=True)
class _Slots:
    """Every company's disclosure slots [N, 2Q]: statement q, then an optional revision after it."""

    disclosed: np.ndarray
    present: np.ndarray
    revision: np.ndarray
    fiscal_quarter: np.ndarray
    period_end: np.ndarray
    fy_start: np.ndarray
    fy_end: np.ndarray


def _schedule(params: StatementParams, universe: Universe, timeline: Timeline, data_start: np.datetime64,
              rng: np.random.Generator) -> _Slots:
    """Quarter ends from 15 months before ``data_start`` to the sample end, their disclosure days
    (a company habit plus jitter after the period end, more for full years) and revision days."""
    n = universe.n
    first_month = (data_start.astype("datetime64[M]") - 15).astype(np.int64)
    last_month = timeline.sample_days[-1].astype("datetime64[M]").astype(np.int64)
    months = np.arange(first_month, last_month + 1)
    quarter_months = months[(months % 12 + 1) % 3 == 0].astype("datetime64[M]")
    n_q = quarter_months.shape[0]
    month_of_year = quarter_months.astype(np.int64) % 12 + 1

    fq = ((month_of_year[None, :] - universe.fiscal_year_end_month[:, None]) % 12) // 3  # [N, Q], 0 = full year
    period_end = np.broadcast_to(_month_end(quarter_months)[None, :], (n, n_q))
    fy_end_month = quarter_months[None, :] + np.where(fq == 0, 0, 12 - 3 * fq)
    fy_end = _month_end(fy_end_month)
    fy_start = (fy_end_month - 11).astype("datetime64[D]")

    habit = rng.integers(params.quarterly_lag_days_min, params.quarterly_lag_days_max + 1, size=n)
    lag = np.clip(np.rint(habit[:, None] + params.lag_jitter_days * rng.standard_normal((n, n_q))),
                  params.quarterly_lag_days_min, params.quarterly_lag_days_max)
    lag = lag + np.where(fq == 0, params.annual_extra_lag_days, 0)
    last_day = timeline.days.shape[0] - 1
    disclosed = np.minimum(timeline.on_or_after(period_end + lag.astype("timedelta64[D]")), last_day)
    gap = np.hstack([disclosed[:, 1:], disclosed[:, -1:] + 60]) - disclosed
    revision_day = np.minimum(disclosed + 1 + np.floor(rng.random((n, n_q)) * (gap - 1)).astype(np.int64), last_day)
    has_revision = (rng.random((n, n_q)) < params.revision_probability) & (gap >= 2)

    def interleave(statement: np.ndarray, revision: np.ndarray) -> np.ndarray:
        return np.stack([statement, revision], axis=2).reshape(n, 2 * n_q)

    revision = interleave(np.zeros_like(has_revision), np.ones_like(has_revision))
    fy_start_slot = interleave(fy_start, fy_start)
    fy_end_slot = interleave(fy_end, fy_end)
    # a revision after the full-year statement concerns the next fiscal year
    next_year = revision & np.repeat(fq == 0, 2, axis=1)
    fy_start_slot = np.where(next_year, (fy_end_slot.astype("datetime64[M]") + 1).astype("datetime64[D]"),
                             fy_start_slot)
    fy_end_slot = np.where(next_year, _month_end(fy_end_slot.astype("datetime64[M]") + 12), fy_end_slot)
    return _Slots(
        disclosed=interleave(disclosed, revision_day),
        present=interleave(np.ones_like(has_revision), has_revision),
        revision=revision,
        fiscal_quarter=interleave(fq, np.zeros_like(fq)),
        period_end=np.where(revision, fy_end_slot, interleave(period_end, fy_end)),
        fy_start=fy_start_slot,
        fy_end=fy_end_slot,
    )


def _forecasts(params: StatementParams, universe: Universe, slots: _Slots,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Surprises and the forecast path of each company: (z, forecast before, forecast after, profit)."""
    n, n_slots = slots.disclosed.shape
    c = params.surprise_scale
    z = np.clip(rng.standard_normal((n, n_slots)), -3.0, 3.0)
    growth = params.profit_growth_mean + params.profit_growth_sd * rng.standard_normal((n, n_slots))
    revises = rng.random((n, n_slots)) < params.statement_revision_probability
    surprise_log = np.log1p(c * z)
    full_year = slots.fiscal_quarter == 0
    step = np.where(
        slots.revision, np.where(slots.present, surprise_log, 0.0),
        np.where(full_year, surprise_log + growth, np.where(revises, surprise_log, 0.0)),
    )
    cap = universe.initial_price * universe.initial_shares
    earnings_yield = params.earnings_yield_median * np.exp(params.earnings_yield_log_sd * rng.standard_normal(n))
    log_forecast = np.log(cap * earnings_yield)[:, None] + np.cumsum(step, axis=1)
    forecast_prev = np.exp(log_forecast - step)
    progress = np.where(full_year, 1.0, slots.fiscal_quarter / 4.0)
    profit = np.where(slots.revision, np.nan, forecast_prev * progress * (1.0 + c * z))
    return z, forecast_prev, np.exp(log_forecast), profit


def draw_statements(
    params: StatementParams, universe: Universe, timeline: Timeline, data_start: np.datetime64,
    rng: np.random.Generator,
) -> tuple[StatementEvents, CompanyRatios]:
    """Schedule every company's statements and revisions and draw their numbers.

    Args:
        params: statement parameters.
        universe: the stocks (fiscal year ends, listing windows, initial caps).
        timeline: trading days; sample days are ``timeline.sample_days``.
        data_start: first date of the statements table (``start_date - history_days``).
        rng: the statements' random generator.
    """
    n = universe.n
    slots = _schedule(params, universe, timeline, data_start, rng)
    z, forecast_prev, forecast_new, profit = _forecasts(params, universe, slots, rng)

    list_global = np.where(universe.list_day > 0, timeline.offset + universe.list_day, 0)
    last_global = timeline.offset + universe.last_day
    first_global = int(timeline.on_or_after(np.array([data_start]))[0])
    emitted = (
        slots.present
        & (slots.disclosed >= np.maximum(list_global, first_global)[:, None])
        & (slots.disclosed <= np.minimum(last_global, timeline.last_sample_global)[:, None])
    )
    has_prior = emitted & (np.cumsum(emitted, axis=1) - emitted > 0)

    weights = np.asarray(params.disclosure_time_weights)
    time_index = rng.choice(weights.shape[0], size=slots.disclosed.shape, p=weights / weights.sum())
    after_close = np.asarray([t >= CLOSE_TIME for t in params.disclosure_times])[time_index]
    lead = rng.integers(params.calendar_lead_days_min, params.calendar_lead_days_max + 1, size=slots.disclosed.shape)

    keep = slots.present
    stock = np.broadcast_to(np.arange(n)[:, None], slots.disclosed.shape)
    events = StatementEvents(
        stock=stock[keep], disclosed=slots.disclosed[keep],
        effective=(slots.disclosed + after_close)[keep], time=time_index[keep],
        is_revision=slots.revision[keep], fiscal_quarter=slots.fiscal_quarter[keep],
        period_end=slots.period_end[keep], fy_start=slots.fy_start[keep], fy_end=slots.fy_end[keep],
        surprise=z[keep], forecast_prev=forecast_prev[keep], forecast_new=forecast_new[keep],
        profit=profit[keep], emitted=emitted[keep], has_prior=has_prior[keep], schedule_lead=lead[keep],
    )
    a = params.accounts

    def ratio(median: float) -> np.ndarray:
        return median * np.exp(a.ratio_log_sd * rng.standard_normal(n))

    ratios = CompanyRatios(
        net_margin=np.clip(ratio(a.net_margin_median), 0.002, 0.6),
        op_to_profit=np.maximum(ratio(a.operating_to_net_profit), 1.0),
        return_on_equity=np.clip(ratio(a.return_on_equity_median), 0.005, 0.6),
        equity_ratio=np.clip(ratio(a.equity_ratio_median), 0.03, 0.95),
        cash_flow_ratio=ratio(a.cash_flow_to_profit),
    )
    return events, ratios


def announcement_jumps(events: StatementEvents, timeline: Timeline, stock_vol: np.ndarray, jump: float) -> Jumps:
    """Announcement-day returns ``jump x vol_i x z`` on the effective day (the first close that
    knows the news), for emitted events inside the sample; sorted by day."""
    day = events.effective - timeline.offset
    keep = events.emitted & (day >= 0) & (day < timeline.n_days)
    order = np.argsort(day[keep], kind="stable")
    stock = events.stock[keep][order]
    scale = jump * stock_vol[stock]
    return Jumps(day=day[keep][order], stock=stock, size=scale * events.surprise[keep][order], variance=scale**2)


def drift_impulses(events: StatementEvents, timeline: Timeline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(effective sample day, stock, surprise) of the events that start an earnings drift: emitted,
    with a public prior forecast (so the surprise can be read from the table)."""
    keep = events.emitted & events.has_prior
    return events.effective[keep] - timeline.offset, events.stock[keep], events.surprise[keep]


def _shares_at(shares: np.ndarray, universe: Universe, global_day: np.ndarray, stock: np.ndarray,
               timeline: Timeline) -> np.ndarray:
    day = np.clip(global_day - timeline.offset, 0, timeline.n_days - 1)
    return np.where(global_day < timeline.offset, universe.initial_shares[stock], shares[day, stock])


def statements_table(
    events: StatementEvents, ratios: CompanyRatios, shares: np.ndarray, universe: Universe,
    timeline: Timeline, params: StatementParams, rng: np.random.Generator,
) -> pl.DataFrame:
    """``raw_fin_summary``: the emitted statements and revisions, J-Quants v2 columns.

    Money in yen rounded to the thousand; per-share figures use the shares outstanding on the
    disclosure day. Revisions carry only the forecast columns.
    """
    e = np.flatnonzero(events.emitted)
    stock = events.stock[e]
    rev = events.is_revision[e]
    fq = events.fiscal_quarter[e]
    n_sh = _shares_at(shares, universe, events.disclosed[e], stock, timeline)
    noise = 1.0 + params.accounts.reporting_noise * rng.standard_normal((4, e.shape[0]))
    ordinary = params.accounts.ordinary_to_operating_profit

    def money(x: np.ndarray) -> np.ndarray:
        return np.round(x / REPORTING_UNIT) * REPORTING_UNIT

    profit = money(events.profit[e])
    sales = money(profit / ratios.net_margin[stock] * noise[0])
    op = money(profit * ratios.op_to_profit[stock] * noise[1])
    equity = money(events.forecast_prev[e] / ratios.return_on_equity[stock] * noise[2])
    assets = money(equity / ratios.equity_ratio[stock])
    cfo = np.where((fq == 0) | (fq == 2), money(profit * ratios.cash_flow_ratio[stock] * noise[3]), np.nan)
    f_new = events.forecast_new[e]
    nan_if_rev = np.where(rev, np.nan, 1.0)
    doc = np.where(rev, 4, np.where(fq == 0, 0, fq))
    doc_names = ["FYFinancialStatements_Consolidated_JP", "1QFinancialStatements_Consolidated_JP",
                 "2QFinancialStatements_Consolidated_JP", "3QFinancialStatements_Consolidated_JP", REVISION_DOC]
    disclosed_days = timeline.days[events.disclosed[e]]
    frame = pl.DataFrame(
        [
            pl.Series("DiscDate", disclosed_days).cast(pl.Date),
            gather_strings(params.disclosure_times, events.time[e], "DiscTime"),
            gather_strings(universe.codes, stock, "Code"),
            gather_strings(doc_names, doc, "DocType"),
            gather_strings(FISCAL_QUARTER_LABELS, fq, "CurPerType"),
            pl.Series("CurPerSt", events.fy_start[e]).cast(pl.Date),
            pl.Series("CurPerEn", events.period_end[e]).cast(pl.Date),
            pl.Series("CurFYSt", events.fy_start[e]).cast(pl.Date),
            pl.Series("CurFYEn", events.fy_end[e]).cast(pl.Date),
            float_column(sales * nan_if_rev, "Sales"),
            float_column(op * nan_if_rev, "OP"),
            float_column(money(op * ordinary) * nan_if_rev, "OdP"),
            float_column(profit, "NP"),
            float_column(np.round(profit / n_sh, 2), "EPS"),
            float_column(assets * nan_if_rev, "TA"),
            float_column(equity * nan_if_rev, "Eq"),
            float_column(np.round(equity / assets, 3) * nan_if_rev, "EqAR"),
            float_column(np.round(equity / n_sh, 2) * nan_if_rev, "BPS"),
            float_column(cfo * nan_if_rev, "CFO"),
            float_column(money(f_new / ratios.net_margin[stock]), "FSales"),
            float_column(money(f_new * ratios.op_to_profit[stock]), "FOP"),
            float_column(money(f_new * ratios.op_to_profit[stock] * ordinary), "FOdP"),
            float_column(money(f_new), "FNP"),
            float_column(np.round(f_new / n_sh, 2), "FEPS"),
            float_column(n_sh * nan_if_rev, "ShOutFY"),
        ]
    )
    return (
        frame.sort("DiscDate", "DiscTime", "Code", "DocType")
        .with_columns(
            pl.concat_str(
                [pl.col("DiscDate").dt.strftime("%Y%m%d"),
                 (pl.int_range(pl.len()).over("DiscDate") + 1).cast(pl.String).str.zfill(6)]
            ).alias("DiscNo")
        )
        .select("DiscDate", "DiscTime", "Code", "DiscNo", *[c for c in frame.columns if c not in
                                                            ("DiscDate", "DiscTime", "Code")])
    )


def earnings_calendar_table(events: StatementEvents, universe: Universe, timeline: Timeline,
                            data_start: np.datetime64) -> pl.DataFrame:
    """``raw_earnings_dates``: each statement's date, published ``schedule_lead`` trading days ahead.

    A row exists when its publication day lies inside the data window while the company is
    listed; ScheduledDate equals the statement's DisclosedDate (it may lie after end_date).
    """
    survives = universe.last_day >= timeline.n_days - 1
    last_global = np.where(survives, np.iinfo(np.int64).max, timeline.offset + universe.last_day)
    list_global = np.where(universe.list_day > 0, timeline.offset + universe.list_day, 0)
    published = events.disclosed - events.schedule_lead
    stock = events.stock
    first_global = int(timeline.on_or_after(np.array([data_start]))[0])
    keep = np.flatnonzero(
        ~events.is_revision
        & (published >= np.maximum(list_global[stock], first_global))
        & (published <= timeline.last_sample_global)
        & (events.disclosed <= last_global[stock])
        & (events.disclosed < timeline.days.shape[0])
    )
    fy_end = events.fy_end[keep]
    month = fy_end.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (fy_end - fy_end.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    return pl.DataFrame(
        [
            gather_dates(timeline.days, published[keep], "PubDate"),
            gather_dates(timeline.days, events.disclosed[keep], "SchDate"),
            gather_strings(universe.codes, stock[keep], "Code"),
            gather_strings(FISCAL_QUARTER_LABELS, events.fiscal_quarter[keep], "FQName"),
            pl.Series("FYE", np.char.add(np.char.add(month.astype(str), "月"), np.char.add(day.astype(str), "日"))),
        ]
    ).sort("PubDate", "Code", "SchDate")
