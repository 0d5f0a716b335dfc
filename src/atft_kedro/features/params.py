"""Typed parameters of the feature pipeline (``params:feature_engineering``).

Every tunable lives in ``conf/<env>/parameters_feature_engineering.yml``; nothing here
has a default. Unknown keys are errors (``extra="forbid"``), so a misspelt window in
conf fails at load time instead of being silently ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from atft_kedro.schemas.strict import StrictModel
from atft_kedro.schemas.tables import INVESTOR_TYPES

_INVESTOR_GROUP_NAMES = tuple(
    sorted({c.canonical[: -len(side)] for c in INVESTOR_TYPES.columns
            for side in ("Sales", "Purchases", "Total", "Balance") if c.canonical.endswith(side)})
)


def _windows(values: list[int], what: str) -> list[int]:
    if not values:
        raise ValueError(f"{what} must list at least one window")
    if any(v < 1 for v in values):
        raise ValueError(f"{what} must be positive, got {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} lists a window twice: {values}")
    return values


class AvailabilityParams(StrictModel):
    """When each source becomes known, on the exchange calendar.

    Lags count trading days after the publication date: 1 = the next trading day.
    """

    statement_cutoff_time: dt.time = Field(
        description="statements disclosed at or after this Tokyo time count from the next trading day")
    investor_types_lag_days: int = Field(ge=1)
    weekly_margin_lag_days: int = Field(ge=1)
    daily_margin_lag_days: int = Field(ge=1)
    short_selling_lag_days: int = Field(ge=1)
    short_positions_lag_days: int = Field(ge=1)
    earnings_calendar_lag_days: int = Field(ge=1)


class GroupSwitches(BaseModel):
    """Which feature groups are built: one ``<group>: true|false`` per registered group.

    The groups are the registry's (``features.registry``), so a new group needs only its
    switch in conf; a misspelt, unknown or missing group is an error. A group that is off is
    listed as off in the manifest. Read a switch as ``params.groups.<group>``.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, bool]

    @model_validator(mode="after")
    def _one_switch_per_registered_group(self) -> GroupSwitches:
        from atft_kedro.features.registry import group_order  # the registry imports this module

        known = group_order()
        given = list(self.model_extra or {})
        missing = [g for g in known if g not in given]
        unknown = [g for g in given if g not in known]
        if missing or unknown:
            raise ValueError(
                f"feature_engineering.groups needs one switch per feature group: missing {missing}, "
                f"unknown {unknown}; the registered groups are {list(known)}")
        return self


class RollingParams(StrictModel):
    min_periods_fraction: float = Field(
        gt=0.0, le=1.0, description="a rolling statistic needs this share of its window non-null")


class PriceParams(StrictModel):
    return_windows: list[int]
    log_return_windows: list[int]
    volatility_windows: list[int]
    parkinson_windows: list[int]
    volume_windows: list[int]
    ma_windows: list[int]
    range_windows: list[int]
    skew_windows: list[int]
    extreme_window: int = Field(ge=2)
    up_ratio_window: int = Field(ge=2)
    amihud_window: int = Field(ge=2)

    @field_validator("return_windows", "log_return_windows", "volatility_windows", "parkinson_windows",
                     "volume_windows",
                     "ma_windows", "range_windows", "skew_windows")
    @classmethod
    def _check(cls, v: list[int], info) -> list[int]:
        return _windows(v, f"feature_engineering.px.{info.field_name}")


class TechnicalParams(StrictModel):
    rsi_windows: list[int]
    macd_fast: int = Field(ge=2)
    macd_slow: int = Field(ge=3)
    macd_signal: int = Field(ge=2)
    bollinger_window: int = Field(ge=2)
    bollinger_num_std: float = Field(gt=0)
    atr_window: int = Field(ge=2)
    adx_window: int = Field(ge=2)
    stochastic_k_window: int = Field(ge=2)
    stochastic_d_window: int = Field(ge=1)
    williams_r_window: int = Field(ge=2)
    cci_window: int = Field(ge=2)
    mfi_window: int = Field(ge=2)

    @field_validator("rsi_windows")
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        return _windows(v, "feature_engineering.tech.rsi_windows")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> TechnicalParams:
        if self.macd_fast >= self.macd_slow:
            raise ValueError(
                f"feature_engineering.tech.macd_fast ({self.macd_fast}) must be below macd_slow ({self.macd_slow})")
        return self


class MarketParams(StrictModel):
    return_windows: list[int]
    volatility_windows: list[int]
    ma_windows: list[int]
    drawdown_window: int = Field(ge=2)
    regime_window: int = Field(ge=2)
    breadth_ma_window: int = Field(ge=2)

    @field_validator("return_windows", "volatility_windows", "ma_windows")
    @classmethod
    def _check(cls, v: list[int], info) -> list[int]:
        return _windows(v, f"feature_engineering.mkt.{info.field_name}")


class BetaAlphaParams(StrictModel):
    beta_windows: list[int]
    residual_beta_window: int = Field(ge=2, description="beta (lagged one day) used for the daily residual")
    alpha_windows: list[int]
    idio_vol_windows: list[int]
    downside_beta_window: int = Field(ge=2)

    @field_validator("beta_windows", "alpha_windows", "idio_vol_windows")
    @classmethod
    def _check(cls, v: list[int], info) -> list[int]:
        return _windows(v, f"feature_engineering.beta_alpha.{info.field_name}")


class SectorParams(StrictModel):
    return_windows: list[int]
    rank_windows: list[int] = Field(description="windows of the within-sector and across-sector ranks")
    sector17_return_windows: list[int]
    volatility_window: int = Field(ge=2)
    min_members: int = Field(ge=2, description="sector statistics need this many stocks that day")

    @field_validator("return_windows", "rank_windows", "sector17_return_windows")
    @classmethod
    def _check(cls, v: list[int], info) -> list[int]:
        return _windows(v, f"feature_engineering.sector.{info.field_name}")

    @model_validator(mode="after")
    def _ranks_of_known_returns(self) -> SectorParams:
        unknown = sorted(set(self.rank_windows) - set(self.return_windows))
        if unknown:
            raise ValueError(f"feature_engineering.sector.rank_windows {unknown} are not in return_windows")
        return self


class FlowParams(StrictModel):
    investor_groups: list[str]
    zscore_weeks: int = Field(ge=3)
    cumulative_weeks: int = Field(ge=2)
    section_by_market_code: dict[str, str] = Field(
        description="listed_info.MarketCode -> investor_types.Section")

    @field_validator("investor_groups")
    @classmethod
    def _known_groups(cls, v: list[str]) -> list[str]:
        unknown = [g for g in v if g not in _INVESTOR_GROUP_NAMES]
        if unknown or not v:
            raise ValueError(
                f"feature_engineering.flow.investor_groups has unknown investor types {unknown}; "
                f"investor_types has {list(_INVESTOR_GROUP_NAMES)}")
        if len(set(v)) != len(v):
            raise ValueError(f"feature_engineering.flow.investor_groups lists a type twice: {v}")
        return v

    @model_validator(mode="after")
    def _needs_foreigners_and_individuals(self) -> FlowParams:
        missing = {"Foreigners", "Individuals"} - set(self.investor_groups)
        if missing:
            raise ValueError(
                f"feature_engineering.flow.investor_groups must include {sorted(missing)} "
                "(flow_foreign_minus_individual is built from them)")
        return self


class MarginParams(StrictModel):
    adv_window: int = Field(ge=2)
    zscore_weeks: int = Field(ge=3)
    change_weeks: list[int]
    alert_stale_days: int = Field(ge=1, description="a margin alert older than this (trading days) is inactive")

    @field_validator("change_weeks")
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        return _windows(v, "feature_engineering.margin.change_weeks")


class ShortParams(StrictModel):
    change_windows: list[int]
    zscore_window: int = Field(ge=3)
    position_change_window: int = Field(ge=1)

    @field_validator("change_windows")
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        return _windows(v, "feature_engineering.short.change_windows")


class StatementParams(StrictModel):
    max_age_days: int = Field(ge=1, description="statement values older than this (trading days) are not used")


class EventParams(StrictModel):
    window_days: int = Field(ge=0, description="pre/post earnings flags: within this many days")


class GraphParams(StrictModel):
    window: int = Field(ge=5, description="trailing trading days of returns for the correlations")
    min_obs_fraction: float = Field(gt=0.0, le=1.0)
    abs_rho_threshold: float = Field(ge=0.0, lt=1.0)
    top_k: int = Field(ge=1)
    recompute_every_days: int = Field(ge=1)
    centrality_iterations: int = Field(ge=1)
    peer_return_windows: list[int]

    @field_validator("peer_return_windows")
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        return _windows(v, "feature_engineering.graph.peer_return_windows")


class InteractionSpec(StrictModel):
    name: str = Field(pattern=r"^int_[a-z0-9_]+$")
    left: str
    right: str
    op: Literal["product", "ratio", "difference"]
    description: str


class CrossSectionalParams(StrictModel):
    features: list[str]
    clip: float = Field(gt=0)
    min_stocks: int = Field(ge=2)

    @field_validator("features")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"feature_engineering.cross_sectional.features lists a name twice: {v}")
        return v


class AssemblyParams(StrictModel):
    """How the ``features`` table is assembled from the group files (``features.assembly``)."""

    block_mib: int = Field(ge=1, description="MiB of float32 features per block of whole trading days")


class FeatureParams(StrictModel):
    """Everything the feature pipeline may be tuned by."""

    availability: AvailabilityParams
    groups: GroupSwitches
    rolling: RollingParams
    px: PriceParams
    tech: TechnicalParams
    mkt: MarketParams
    beta_alpha: BetaAlphaParams
    sector: SectorParams
    flow: FlowParams
    margin: MarginParams
    short: ShortParams
    stmt: StatementParams
    evt: EventParams
    graph: GraphParams
    interactions: list[InteractionSpec]
    cross_sectional: CrossSectionalParams
    assembly: AssemblyParams
