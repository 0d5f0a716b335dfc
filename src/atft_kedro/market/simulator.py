"""Orchestration: draw the market (``simulate_state``) and lay it out as raw tables (``build_tables``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from atft_kedro.labels import LabelParams
from atft_kedro.market.calendar import Timeline, build_timeline, jpx_trading_calendar
from atft_kedro.market.dynamics import Paths, simulate_paths
from atft_kedro.market.effects import (
    EffectCoefficients,
    SignalRecord,
    earnings_drift_alpha,
    effect_coefficients,
    margin_alpha,
    oracle_log_returns,
)
from atft_kedro.market.flows import (
    Margin,
    draw_margin,
    investor_types_table,
    margin_alert_table,
    margin_interest_table,
    margin_level_at_close,
    short_positions_table,
    short_ratio_table,
)
from atft_kedro.market.frames import float_column, gather_dates, gather_strings
from atft_kedro.market.fundamentals import (
    CompanyRatios,
    StatementEvents,
    announcement_jumps,
    draw_statements,
    drift_impulses,
    earnings_calendar_table,
    statements_table,
)
from atft_kedro.market.params import SimulatorParams
from atft_kedro.market.prices import Bars, Splits, build_bars, daily_bars_table, draw_splits, topix_levels, topix_table
from atft_kedro.market.returns import Loadings, draw_loadings
from atft_kedro.market.universe import Universe, draw_universe, master_table
from atft_kedro.schemas import tables

logger = logging.getLogger(__name__)

ORACLE_TABLE = "oracle_expected_returns"
CALENDAR_DAYS_AFTER = 200  # room after end_date for publication and disclosure dates
CALENDAR_DAYS_BEFORE_EXTRA = 40
_STREAMS = ("universe", "loadings", "splits", "statements", "margin", "returns", "bars", "statement_table",
            "investor_types", "short_ratio", "short_positions")


@dataclass(frozen=True)
class SimulatedMarket:
    """The whole simulated market as arrays, before it is laid out as tables."""

    params: SimulatorParams
    timeline: Timeline
    universe: Universe
    loadings: Loadings
    coefficients: EffectCoefficients
    splits: Splits
    events: StatementEvents
    ratios: CompanyRatios
    margin: Margin
    paths: Paths
    bars: Bars
    listed: np.ndarray
    record: SignalRecord
    seeds: dict[str, np.random.SeedSequence]

    def rng(self, stream: str) -> np.random.Generator:
        """A fresh generator of a named stream (same stream, same draws)."""
        return np.random.default_rng(self.seeds[stream])

    @property
    def data_start(self) -> np.datetime64:
        """First date of the statement history (start_date - history_days)."""
        return np.datetime64(self.params.start_date - timedelta(days=self.params.statements.history_days), "D")


def simulate_state(params: SimulatorParams) -> SimulatedMarket:
    """Draw the universe, fundamentals, margin crowding, then run the return loop."""
    seeds = dict(zip(_STREAMS, np.random.SeedSequence(params.seed).spawn(len(_STREAMS)), strict=True))

    def rng(stream: str) -> np.random.Generator:
        return np.random.default_rng(seeds[stream])

    timeline = build_timeline(params.start_date, params.end_date,
                              params.statements.history_days + CALENDAR_DAYS_BEFORE_EXTRA, CALENDAR_DAYS_AFTER)
    n_days = timeline.n_days
    universe = draw_universe(params, timeline, rng("universe"))
    loadings = draw_loadings(params.returns, universe, rng("loadings"))
    coef = effect_coefficients(params)
    splits = draw_splits(params.prices, universe, rng("splits"))
    data_start = np.datetime64(params.start_date - timedelta(days=params.statements.history_days), "D")
    events, ratios = draw_statements(params.statements, universe, timeline, data_start, rng("statements"))
    jumps = announcement_jumps(events, timeline, loadings.idio_vol, params.statements.announcement_jump)
    earnings = earnings_drift_alpha(*drift_impulses(events, timeline), n_days, universe.n, coef)
    margin = draw_margin(params.flows, universe, timeline, rng("margin"))
    margin_term = margin_alpha(margin.usable_day, margin.change, n_days, coef)

    paths = simulate_paths(params, universe, loadings, coef, earnings, margin_term, splits, jumps, rng("returns"))
    stock_vol = np.sqrt(loadings.idio_vol**2 + params.returns.market_vol**2)
    bars = build_bars(paths.close, splits.dense(n_days, universe.n), universe, stock_vol, params.prices, rng("bars"))
    record = SignalRecord(
        drift=loadings.drift, earnings=earnings, margin=margin_term,
        margin_level=margin_level_at_close(margin, n_days), margin_usable_day=margin.usable_day,
        sector_cumulative=paths.sector_cumulative, sector_scale=paths.sector_scale, sector_of=universe.sector,
        lead_lag=paths.lead_lag, lead_lag_scale=paths.lead_lag_scale, cluster_of=universe.cluster,
        market_adjusted=paths.market_adjusted, gate=paths.gate, carry=paths.carry,
    )
    return SimulatedMarket(
        params=params, timeline=timeline, universe=universe, loadings=loadings, coefficients=coef, splits=splits,
        events=events, ratios=ratios, margin=margin, paths=paths, bars=bars, listed=universe.listed(n_days),
        record=record, seeds=seeds,
    )


def oracle_table(market: SimulatedMarket, horizons: list[int], labels: LabelParams) -> pl.DataFrame:
    """``oracle_expected_returns``: exp_ret_{h}d = E[P(t+1+h) / P(t+1) - 1 | close of t] per listed row.

    P is the label's price (``labels.entry``), so the oracle is the ceiling of the same target.
    """
    log_sums = oracle_log_returns(market.record, market.coefficients, horizons, entry=labels.entry,
                                  overnight_share=market.params.prices.overnight_share)
    day, stock = np.nonzero(market.listed)
    return pl.DataFrame(
        [
            gather_dates(market.timeline.sample_days, day, "Date"),
            gather_strings(market.universe.codes, stock, "Code"),
            *(float_column(np.expm1(log_sums[h][day, stock]), f"exp_ret_{h}d") for h in horizons),
        ]
    )


def build_tables(market: SimulatedMarket, horizons: list[int], labels: LabelParams) -> dict[str, pl.DataFrame]:
    """Every raw table (J-Quants v2 names and dtypes) plus the oracle, keyed by catalog name."""
    p, tl, u, bars, listed = market.params, market.timeline, market.universe, market.bars, market.listed
    levels = topix_levels(bars, listed, u, p.prices.topix_base_level)
    out = {
        tables.TRADING_CALENDAR.raw_name: jpx_trading_calendar(p.start_date, p.end_date),
        tables.EQUITIES_MASTER.raw_name: master_table(u, tl, bars.market_cap, p.universe.master_snapshot_frequency),
        tables.DAILY_BARS.raw_name: daily_bars_table(bars, listed, u, tl),
        tables.TOPIX.raw_name: topix_table(levels, tl),
        tables.INVESTOR_TYPES.raw_name: investor_types_table(
            bars.turnover, listed, levels[:, 3], u, tl, p.flows, p.returns.market_vol, market.rng("investor_types")),
        tables.MARGIN_INTEREST.raw_name: margin_interest_table(market.margin, bars.shares, u, tl, p.flows),
        tables.MARGIN_ALERT.raw_name: margin_alert_table(market.margin, bars.shares, u, tl, p.flows),
        tables.SHORT_RATIO.raw_name: short_ratio_table(
            bars.turnover, listed, market.paths.sector_cumulative, u, tl, p.flows, p.returns.sector_vol,
            market.rng("short_ratio")),
        tables.SHORT_POSITIONS.raw_name: short_positions_table(bars.shares, u, tl, p.flows,
                                                               market.rng("short_positions")),
        tables.FIN_SUMMARY.raw_name: statements_table(market.events, market.ratios, bars.shares, u, tl,
                                                      p.statements, market.rng("statement_table")),
        tables.EARNINGS_DATES.raw_name: earnings_calendar_table(market.events, u, tl, market.data_start),
        ORACLE_TABLE: oracle_table(market, horizons, labels),
    }
    for spec in tables.TABLES:  # exactly the contract's columns, in its order
        out[spec.raw_name] = out[spec.raw_name].select(spec.raw_columns)
    return out


def simulate_market(params: SimulatorParams, horizons: list[int], labels: LabelParams) -> dict[str, pl.DataFrame]:
    """Simulate the market of ``params`` and return every raw table plus the oracle.

    Args:
        params: the ``simulator:`` block.
        horizons: forward-return horizons in trading days (``params:horizons``), for the oracle's
            ``exp_ret_{h}d`` columns.
        labels: ``params:labels``, the entry price of the window the oracle expects.

    Returns:
        ``{raw_name: DataFrame}`` for every ``TableSpec`` in ``tables.TABLES`` and
        ``oracle_expected_returns``.

    Raises:
        ValueError: when horizons are empty or not positive.
    """
    if not horizons or any(h < 1 for h in horizons) or len(set(horizons)) != len(horizons):
        raise ValueError(f"simulate_market: horizons must be distinct positive integers, got {horizons}")
    started = time.perf_counter()
    market = simulate_state(params)
    result = build_tables(market, sorted(horizons), labels)
    logger.info(
        "simulated market: %d stocks over %d trading days in %.1f s (%s)",
        market.universe.n, market.timeline.n_days, time.perf_counter() - started,
        ", ".join(f"{name}={df.height}" for name, df in result.items()),
    )
    return result
