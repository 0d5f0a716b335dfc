"""The registry of feature groups: the one place a group is declared.

Each entry says what a group is called, which catalog tables it reads, which features it
writes (the manifest entries) and how it computes them. Everything else is derived from it:

* the manifest's group order and statuses (``features.manifest``),
* the pipeline's group nodes ``compute_<group>_features``, their inputs
  ``[fe_stock_panel, *sources, params:feature_engineering]`` and outputs
  ``fe_<group>_features`` (``pipelines.feature_engineering``),
* the check that ``params:feature_engineering.groups`` has exactly one switch per group
  (``features.params.GroupSwitches``),
* the group table and section titles of ``docs/features.md`` (``features.docs``).

Adding a group: write its module (``GROUP``, ``features(params)`` and ``compute(panel,
*sources, params)``), add its entry to ``DATA_GROUPS`` below and its switch to ``groups:``
in ``conf/base/parameters_feature_engineering.yml``, then regenerate the docs
(``python -m atft_kedro.features.docs``).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import polars as pl

from atft_kedro.features import (
    beta_alpha, cross_sectional, evt, flow, grf, interactions, margin, margin_alert, mkt, px, sector,
    short, short_positions, stmt, tech,
)

if TYPE_CHECKING:
    from atft_kedro.features.base import Feature
    from atft_kedro.features.params import FeatureParams

#: Names a group's source inputs may not take (the node's other arguments).
_RESERVED = ("panel", "params")


@dataclass(frozen=True)
class FeatureGroup:
    """One feature group computed from the stock panel and (optionally) source tables.

    Attributes:
        name: the group's name; its switch is ``params:feature_engineering.groups.<name>``,
            its node ``compute_<name>_features``, its output dataset ``fe_<name>_features``.
        title: the heading of its section in docs/features.md.
        description: one line saying what it computes (the node's docstring, the docs' table).
        sources: catalog datasets ``compute`` takes between the panel and the params, in order.
        features: ``params -> [Feature]``: the group's columns, in output order (the manifest entries).
        compute: ``(panel, *sources, params) -> DataFrame`` with exactly those columns, float32,
            one row per panel row.
        row_order: ``"panel"`` if ``compute`` returns rows in the panel's order (the node puts
            them in (Date, Code) order), ``"output"`` if already in (Date, Code) order.
    """

    name: str
    title: str
    description: str
    sources: tuple[str, ...]
    features: Callable[[FeatureParams], list[Feature]]
    compute: Callable[..., pl.DataFrame]
    row_order: Literal["panel", "output"]

    def __post_init__(self) -> None:
        names = (self.name, *self.sources)
        bad = [n for n in names if not n.isidentifier() or keyword.iskeyword(n)]
        if bad:
            raise ValueError(f"feature group {self.name!r}: {bad} are not Python identifiers")
        if set(self.sources) & set(_RESERVED) or len(set(self.sources)) != len(self.sources):
            raise ValueError(
                f"feature group {self.name!r}: sources {list(self.sources)} repeat a name or use {_RESERVED}")
        if self.row_order not in ("panel", "output"):
            raise ValueError(f"feature group {self.name!r}: row_order must be 'panel' or 'output'")

    @property
    def node_name(self) -> str:
        """Name of the group's node and of its node function."""
        return f"compute_{self.name}_features"

    @property
    def dataset(self) -> str:
        """Name of the dataset holding the group's features (a Parquet file, catalog factory ``fe_{group}_features``)."""
        return f"fe_{self.name}_features"


@dataclass(frozen=True)
class DerivedGroup:
    """A group built in ``assemble_features`` from the other groups' columns (no node of its own)."""

    name: str
    title: str
    description: str


def _from_module(module: ModuleType, title: str, description: str, sources: tuple[str, ...],
                 row_order: Literal["panel", "output"]) -> FeatureGroup:
    """The entry of a group module: its name, features and compute are ``GROUP``, ``features``, ``compute``."""
    return FeatureGroup(module.GROUP, title, description, sources, module.features, module.compute, row_order)


#: Groups computed from the panel and the source tables, in manifest order. Each optional
#: source table (weekly flows, margin balances, margin alerts, sector short selling, short
#: positions, statements, earnings calendar) feeds its own group, so a missing or empty table
#: costs only that group's features (null, validity flag 0).
DATA_GROUPS: dict[str, FeatureGroup] = {g.name: g for g in (
    # module, title, description, source tables, row order
    _from_module(px, "Price and volume (`px_`)",
                 "returns, volatility, volume, liquidity, price location", (), "panel"),
    _from_module(tech, "Technical oscillators (`tech_`)",
                 "RSI, MACD, Bollinger, ATR, ADX, stochastics, Williams %R, CCI, MFI", (), "panel"),
    _from_module(mkt, "Market: TOPIX and breadth (`mkt_`)",
                 "TOPIX returns, volatility, drawdown, trend, regime; breadth of the panel", ("topix",), "output"),
    _from_module(beta_alpha, "Beta and residual returns (`beta_`, `alpha_`)",
                 "rolling beta to TOPIX, residual returns, idiosyncratic volatility", ("topix",), "panel"),
    _from_module(sector, "Sector-relative (`sec_`)",
                 "sector returns, the stock relative to and ranked within its as-of sector", (), "panel"),
    _from_module(flow, "Investor-type flows (`flow_`)",
                 "weekly investor-type flows of the stock's market section", ("investor_types",), "output"),
    _from_module(margin, "Weekly margin balances (`mrg_`)",
                 "weekly margin balances", ("weekly_margin_interest",), "panel"),
    _from_module(margin_alert, "Daily margin alerts (`dmi_`)",
                 "daily margin alerts", ("daily_margin_interest",), "panel"),
    _from_module(short, "Sector short selling (`ss_sec_`, `ss_valid`)",
                 "sector short-selling ratios", ("short_selling",), "panel"),
    _from_module(short_positions, "Reported short positions (`ss_pos_`)",
                 "reported short positions", ("short_positions",), "panel"),
    _from_module(stmt, "Financial statements (`stmt_`)",
                 "growth, margins, ROE, progress, revisions, surprise, valuation", ("statements",), "panel"),
    _from_module(evt, "Earnings calendar (`evt_`)",
                 "days to the next / since the last earnings announcement",
                 ("earnings_calendar", "statements"), "panel"),
    _from_module(grf, "Correlation graph (`grf_`)",
                 "degree, centrality, clustering, neighbours' returns", ("stock_graph",), "output"),
)}

#: Groups built from the data groups' columns, after them in manifest order.
DERIVED_GROUPS: dict[str, DerivedGroup] = {g.name: g for g in (
    DerivedGroup(interactions.GROUP, "Interactions (`int_`)",
                 "products, ratios and differences of two other features, listed in conf"),
    DerivedGroup(cross_sectional.GROUP, "Cross-sectional z-scores (`_csz`)",
                 "per-date z-scores of the listed features"),
)}


def group_order() -> tuple[str, ...]:
    """Every group's name, in manifest order: the data groups, then the derived ones."""
    return (*DATA_GROUPS, *DERIVED_GROUPS)


def group_entry(name: str) -> FeatureGroup | DerivedGroup:
    """The registry entry of ``name``.

    Raises:
        KeyError: no group of that name is registered.
    """
    if name in DATA_GROUPS:
        return DATA_GROUPS[name]
    if name in DERIVED_GROUPS:
        return DERIVED_GROUPS[name]
    raise KeyError(f"no feature group {name!r}; the registry has {list(group_order())}")


def switch_name(group: str) -> str:
    """The parameter that turns ``group`` on or off."""
    return f"params:feature_engineering.groups.{group}"

