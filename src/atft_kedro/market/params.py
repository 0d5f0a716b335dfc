"""Typed parameters of the market simulator (the ``simulator:`` block of ``parameters_simulator.yml``).

Every tunable lives in conf; nothing here has a default. Units: daily figures are per
trading day, rates ``*_per_year`` are per calendar year, prices and values are yen.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from atft_kedro.market.calendar import FIRST_SUPPORTED_YEAR, LAST_SUPPORTED_YEAR
from atft_kedro.schemas.strict import StrictModel

INVESTOR_CUSTOMER_GROUPS: tuple[str, ...] = (
    "Ind", "Frgn", "SecCo", "InvTr", "BusCo", "OthCo", "InsCo", "Bank", "TrstBnk", "OthFin",
)


def _check_weights(name: str, values: list[float], expected_len: int | None = None) -> None:
    if expected_len is not None and len(values) != expected_len:
        raise ValueError(f"simulator: {name} has {len(values)} entries, expected {expected_len}")
    if not values or any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"simulator: {name} must be non-negative with a positive sum, got {values}")


class UniverseParams(StrictModel):
    """Who is listed, when, where, and how big."""

    master_snapshot_frequency: Literal["daily", "weekly", "monthly"] = Field(
        description="how often the listed master is snapshotted (first trading day of the period); "
        "a new listing also gets a row on its listing day"
    )
    listing_rate_per_year: float = Field(ge=0, description="new listings per year, as a fraction of n_stocks")
    delisting_rate_per_year: float = Field(ge=0, description="delisting hazard of a listed stock per year")
    min_listing_days: int = Field(ge=1, description="a stock trades at least this many days before delisting")
    market_shares: list[float] = Field(
        description="share of initial stocks in Prime, Standard, Growth (assigned by size, largest first)"
    )
    ipo_growth_share: float = Field(ge=0, le=1, description="share of new listings that go to Growth")
    ipo_size_ratio: float = Field(gt=0, description="median market cap of an IPO relative to market_cap_median")
    margin_code_weights: list[float] = Field(
        description="weights of MarginCode 1 (margin), 2 (loan, shortable), 3 (other, no margin data)"
    )
    peer_cluster_size: int = Field(ge=1, description="mean number of stocks in a latent peer cluster")
    market_cap_median: float = Field(gt=0, description="median initial market capitalisation, yen")
    market_cap_log_sd: float = Field(ge=0, description="log-sd of initial market caps")
    price_median: float = Field(gt=0, description="median initial share price, yen")
    price_log_sd: float = Field(ge=0, description="log-sd of initial share prices")

    @model_validator(mode="after")
    def _weights(self) -> UniverseParams:
        _check_weights("universe.market_shares", self.market_shares, 3)
        _check_weights("universe.margin_code_weights", self.margin_code_weights, 3)
        return self


class GarchParams(StrictModel):
    """GARCH(1,1) dynamics shared by every factor: h' = omega + alpha e^2 + beta h."""

    alpha: float = Field(ge=0, description="reaction of the variance to the last squared shock")
    beta: float = Field(ge=0, description="persistence of the variance")

    @model_validator(mode="after")
    def _stationary(self) -> GarchParams:
        if self.alpha + self.beta >= 1:
            raise ValueError(f"simulator.returns.garch: alpha + beta = {self.alpha + self.beta} must be < 1")
        return self


class ReturnParams(StrictModel):
    """Factor structure of daily log-returns: market, sector-33, peer cluster, idiosyncratic."""

    market_vol: float = Field(gt=0, description="long-run daily volatility of the market factor")
    sector_vol: float = Field(gt=0, description="long-run daily volatility of each sector factor")
    cluster_vol: float = Field(gt=0, description="long-run daily volatility of each peer-cluster factor")
    idio_vol: float = Field(gt=0, description="median long-run idiosyncratic daily volatility")
    idio_vol_log_sd: float = Field(ge=0, description="log-sd of idiosyncratic volatilities across stocks")
    size_vol_elasticity: float = Field(
        description="d log(idio vol) / d log(market cap): negative, small caps are more volatile"
    )
    beta_sd: float = Field(ge=0, description="cross-sectional sd of market betas around 1")
    loading_sd: float = Field(ge=0, description="cross-sectional sd of sector and cluster loadings around 1")
    market_premium_per_year: float = Field(description="expected annual log-return of the market factor")
    tail_dof: float = Field(gt=2, description="degrees of freedom of the Student-t innovations")
    garch: GarchParams


class PriceParams(StrictModel):
    """Prices, corporate actions, volume and the index."""

    split_probability_per_year: float = Field(ge=0, description="chance per year that a stock splits")
    split_ratios: list[float] = Field(
        description="new shares per old share (2 = 1:2 split, 0.1 = 10:1 reverse split); AdjFactor = 1/ratio"
    )
    split_ratio_weights: list[float] = Field(description="weights of split_ratios")
    overnight_share: float = Field(ge=0, le=1, description="share of the day's return realised at the open")
    open_noise: float = Field(ge=0, description="sd of the open's deviation, in units of the stock's vol")
    intraday_range: float = Field(ge=0, description="mean high/low excursion beyond open/close, units of vol")
    turnover_median: float = Field(gt=0, description="median daily turnover value / market cap")
    turnover_log_sd: float = Field(ge=0, description="log-sd of the stocks' base turnover")
    volume_persistence: float = Field(ge=0, lt=1, description="AR(1) coefficient of log volume shocks")
    volume_noise: float = Field(ge=0, description="sd of daily log-volume shocks")
    volume_move_sensitivity: float = Field(
        ge=0, description="increase of log volume per unit |return| / vol (volume follows big moves)"
    )
    topix_base_level: float = Field(gt=0, description="TOPIX level on the day before start_date")

    @model_validator(mode="after")
    def _splits(self) -> PriceParams:
        _check_weights("prices.split_ratio_weights", self.split_ratio_weights, len(self.split_ratios))
        if any(r <= 0 or r == 1 for r in self.split_ratios):
            raise ValueError(f"simulator.prices.split_ratios must be > 0 and != 1, got {self.split_ratios}")
        return self


class AccountsParams(StrictModel):
    """Accounting ratios of the companies (drawn once per company, log-normal around the median)."""

    net_margin_median: float = Field(gt=0, lt=1, description="median net profit / net sales")
    operating_to_net_profit: float = Field(ge=1, description="median operating profit / net profit")
    ordinary_to_operating_profit: float = Field(gt=0, description="ordinary profit / operating profit")
    return_on_equity_median: float = Field(gt=0, description="median net profit forecast / equity")
    equity_ratio_median: float = Field(gt=0, lt=1, description="median equity / total assets")
    cash_flow_to_profit: float = Field(gt=0, description="median operating cash flow / net profit")
    ratio_log_sd: float = Field(ge=0, description="log-sd of every ratio across companies")
    reporting_noise: float = Field(ge=0, description="relative sd of a line item around its ratio, per report")


class StatementParams(StrictModel):
    """Quarterly statements, forecasts, revisions and the earnings calendar."""

    history_days: int = Field(ge=0, description="calendar days of statements before start_date (initial stocks)")
    fiscal_year_end_months: list[int] = Field(description="fiscal year-end months (3, 6, 9 or 12)")
    fiscal_year_end_weights: list[float] = Field(description="weights of fiscal_year_end_months")
    quarterly_lag_days_min: int = Field(ge=1, description="min calendar days from quarter end to disclosure")
    quarterly_lag_days_max: int = Field(ge=1, description="max calendar days from quarter end to disclosure")
    annual_extra_lag_days: int = Field(ge=0, description="extra calendar days for full-year results")
    lag_jitter_days: float = Field(ge=0, description="sd of a company's lag around its habit, calendar days")
    disclosure_times: list[str] = Field(description="disclosure times HH:MM:SS; >= 15:00:00 counts next day")
    disclosure_time_weights: list[float] = Field(description="weights of disclosure_times")
    earnings_yield_median: float = Field(gt=0, description="median forecast net profit / market cap")
    earnings_yield_log_sd: float = Field(ge=0, description="log-sd of earnings yields")
    profit_growth_mean: float = Field(description="mean log growth of the next year's profit forecast")
    profit_growth_sd: float = Field(ge=0, description="sd of the log growth of the next year's forecast")
    surprise_scale: float = Field(
        gt=0, lt=1 / 3, description="relative deviation of profit from forecast per 1-sd surprise"
    )
    statement_revision_probability: float = Field(
        ge=0, le=1, description="chance a quarterly statement also revises the full-year forecast"
    )
    revision_probability: float = Field(
        ge=0, le=1, description="chance of a separate forecast-revision document between two statements"
    )
    announcement_jump: float = Field(
        ge=0, description="announcement-day return per 1-sd surprise, in units of the stock's daily vol"
    )
    calendar_lead_days_min: int = Field(ge=1, description="min trading days the schedule is published ahead")
    calendar_lead_days_max: int = Field(ge=1, description="max trading days the schedule is published ahead")
    accounts: AccountsParams

    @model_validator(mode="after")
    def _consistent(self) -> StatementParams:
        _check_weights("statements.fiscal_year_end_weights", self.fiscal_year_end_weights,
                       len(self.fiscal_year_end_months))
        _check_weights("statements.disclosure_time_weights", self.disclosure_time_weights,
                       len(self.disclosure_times))
        if any(m not in (3, 6, 9, 12) for m in self.fiscal_year_end_months):
            raise ValueError(
                f"simulator.statements.fiscal_year_end_months must be quarter ends, got {self.fiscal_year_end_months}"
            )
        for t in self.disclosure_times:
            parts = t.split(":")
            if len(parts) != 3 or not all(p.isdigit() and len(p) == 2 for p in parts):
                raise ValueError(f"simulator.statements.disclosure_times: '{t}' is not HH:MM:SS")
        if self.quarterly_lag_days_max < self.quarterly_lag_days_min:
            raise ValueError("simulator.statements: quarterly_lag_days_max < quarterly_lag_days_min")
        if self.calendar_lead_days_max < self.calendar_lead_days_min:
            raise ValueError("simulator.statements: calendar_lead_days_max < calendar_lead_days_min")
        return self


class FlowParams(StrictModel):
    """Investor-type flows, margin balances, margin alerts, short selling and short positions."""

    investor_types_publication_lag_days: int = Field(
        ge=1, description="trading days after the week's last trading day when investor flows are published"
    )
    investor_turnover_shares: dict[str, float] = Field(
        description="share of a section's turnover by group: Prop and the ten customer groups"
    )
    investor_flow_betas: dict[str, float] = Field(
        description="net buying (share of the group's turnover) per 1-sd weekly market return, by group"
    )
    investor_flow_noise: float = Field(ge=0, description="sd of a group's weekly net buying, share of turnover")
    margin_persistence: float = Field(ge=0, lt=1, description="weekly AR(1) coefficient of margin crowding")
    margin_crowding_vol: float = Field(gt=0, description="stationary sd of log long-margin balance (crowding)")
    margin_long_share_median: float = Field(gt=0, description="median long margin balance / shares")
    margin_short_to_long: float = Field(gt=0, description="median short / long margin balance")
    margin_base_log_sd: float = Field(ge=0, description="log-sd across stocks of the margin balances per share")
    margin_standardized_share: float = Field(ge=0, le=1, description="share of balances on standardized margin")
    margin_alert_share: float = Field(ge=0, le=1, description="share of stocks under a daily margin alert")
    short_ratio_mean: float = Field(ge=0, le=1, description="mean short selling / total selling")
    short_ratio_return_sensitivity: float = Field(description="short ratio change per 1-sd sector return fall")
    short_ratio_noise: float = Field(ge=0, description="stationary sd of the daily short-ratio noise")
    short_ratio_persistence: float = Field(ge=0, lt=1, description="daily AR(1) coefficient of that noise")
    short_restricted_share: float = Field(ge=0, le=1, description="share of short selling under price rules")
    short_sellers: int = Field(ge=1, description="number of distinct reporting short sellers")
    short_pairs_per_stock: float = Field(ge=0, description="(seller, stock) positions per stock")
    short_position_mean: float = Field(gt=0, description="median short position / shares outstanding")
    short_position_persistence: float = Field(ge=0, lt=1, description="daily AR(1) of a log position")
    short_position_vol: float = Field(ge=0, description="stationary log-sd of a position")
    short_report_lag_days_min: int = Field(ge=0, description="min trading days from calculation to disclosure")
    short_report_lag_days_max: int = Field(ge=0, description="max trading days from calculation to disclosure")

    @model_validator(mode="after")
    def _groups(self) -> FlowParams:
        groups = {"Prop", *INVESTOR_CUSTOMER_GROUPS}
        for name, mapping in (("investor_turnover_shares", self.investor_turnover_shares),
                              ("investor_flow_betas", self.investor_flow_betas)):
            if set(mapping) != groups:
                raise ValueError(
                    f"simulator.flows.{name} must have exactly the groups {sorted(groups)}, got {sorted(mapping)}"
                )
        _check_weights("flows.investor_turnover_shares", list(self.investor_turnover_shares.values()))
        if self.short_report_lag_days_max < self.short_report_lag_days_min:
            raise ValueError("simulator.flows: short_report_lag_days_max < short_report_lag_days_min")
        return self


class EarningsDriftEffect(StrictModel):
    """Post-earnings drift: drift after the statement is public, proportional to the surprise."""

    strength: float = Field(ge=0, description="daily drift per 1-sd surprise on the first day, units of idio_vol")
    decay_days: float = Field(gt=0, description="e-folding time of the drift, trading days")


class SectorMomentumEffect(StrictModel):
    """Sector momentum: sectors that outperformed over the lookback keep outperforming."""

    strength: float = Field(ge=0, description="daily drift per 1-sd sector lookback return, units of idio_vol")
    lookback_days: int = Field(ge=1, description="length of the window of sector returns")
    skip_days: int = Field(ge=0, description="most recent days left out of the window")


class MarginReversalEffect(StrictModel):
    """Margin reversal: a published jump in long margin balances (retail crowding) reverses."""

    strength: float = Field(ge=0, description="daily drift per 1-sd published crowding change, units of idio_vol")


class PeerLeadLagEffect(StrictModel):
    """Peer lead-lag: a stock follows the recent return of its latent peer cluster (vs its sector)."""

    strength: float = Field(ge=0, description="daily drift per 1-sd smoothed peer return, units of idio_vol")
    halflife_days: float = Field(gt=0, description="half-life of the exponential smoothing, trading days")


class VolatilityReversalEffect(StrictModel):
    """Short-term reversal that exists only in high-volatility stocks."""

    strength: float = Field(
        ge=0, description="daily reversal per 1-sd recent market-adjusted return, units of the stock's own vol"
    )
    return_window_days: int = Field(ge=1, description="days of the recent return that reverses")
    volatility_window_days: int = Field(ge=2, description="days of the realised volatility of the gate")
    volatility_quantile: float = Field(
        ge=0, lt=1, description="the effect applies to stocks whose volatility is above this cross-sectional quantile"
    )


class EffectsParams(StrictModel):
    """The planted sources of predictable return; a strength of 0 switches one off."""

    earnings_drift: EarningsDriftEffect
    sector_momentum: SectorMomentumEffect
    margin_reversal: MarginReversalEffect
    peer_lead_lag: PeerLeadLagEffect
    volatility_reversal: VolatilityReversalEffect


class SimulatorParams(StrictModel):
    """``simulator:`` block: the whole synthetic market."""

    seed: int = Field(ge=0, description="seed of every random draw; same seed, same market")
    n_stocks: int = Field(ge=2, description="stocks listed on start_date")
    start_date: date
    end_date: date
    universe: UniverseParams
    returns: ReturnParams
    prices: PriceParams
    statements: StatementParams
    flows: FlowParams
    effects: EffectsParams

    @model_validator(mode="after")
    def _dates(self) -> SimulatorParams:
        if self.end_date <= self.start_date:
            raise ValueError(f"simulator: end_date {self.end_date} must be after start_date {self.start_date}")
        if self.start_date.year - 2 < FIRST_SUPPORTED_YEAR or self.end_date.year + 1 > LAST_SUPPORTED_YEAR:
            raise ValueError(
                f"simulator: start_date/end_date must leave a year of margin inside the calendar's "
                f"{FIRST_SUPPORTED_YEAR}..{LAST_SUPPORTED_YEAR}, got {self.start_date}..{self.end_date}"
            )
        return self
