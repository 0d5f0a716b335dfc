"""``flow_``: weekly trading by investor type, for the market section the stock is listed on.

Per section and week: each investor type's net buying over its gross trading
(Balance / Total), its z-score against the section's previous weeks, foreigners minus
individuals, and overall activity. A week's row counts from the ``investor_types_lag_days``-th
trading day after PublishedDate; the stock's section comes from its as-of MarketCode
through ``flow.section_by_market_code``. The table is optional: without it every flow_
feature is null and ``flow_valid`` is 0.
"""

from __future__ import annotations

import logging

import polars as pl

from atft_kedro.features.base import (
    DAY, Feature, min_count, optional_table, safe_div, select_features,
)
from atft_kedro.features.calendar import asof_day_grid, grid_index, published_available_dates
from atft_kedro.features.panel import StockPanel
from atft_kedro.features.params import FeatureParams

logger = logging.getLogger(__name__)

GROUP = "flow"
SOURCE = "investor_types+listed_info"
SECTION = "Section"


#: Short feature-name stems of the J-Quants investor types.
SHORT_NAMES = {
    "Proprietary": "proprietary", "Brokerage": "brokerage", "Total": "total",
    "Individuals": "individuals", "Foreigners": "foreigners", "SecuritiesCos": "securities_cos",
    "InvestmentTrusts": "investment_trusts", "BusinessCos": "business_cos", "OtherCos": "other_cos",
    "InsuranceCos": "insurance_cos", "CityBKsRegionalBKsEtc": "banks", "TrustBanks": "trust_banks",
    "OtherFinancialInstitutions": "other_financials",
}


def _snake(name: str) -> str:
    return SHORT_NAMES[name]


def features(params: FeatureParams) -> list[Feature]:
    """The flow_ features, in manifest order."""
    f = params.flow
    lag_days = params.availability.investor_types_lag_days
    out: list[Feature] = []

    def add(name: str, description: str, expr: pl.Expr | None = None) -> None:
        out.append(Feature(f"flow_{name}", description,
                           pl.col(f"_f_{name}") if expr is None else expr, SOURCE, lag_days))

    for g in f.investor_groups:
        add(f"{_snake(g)}_net", f"{g}: (purchases - sales) / (purchases + sales), latest week of the section")
    for g in f.investor_groups:
        add(f"{_snake(g)}_net_z",
            f"{g}: net ratio z-scored against the section's previous {f.zscore_weeks} weeks")
    add("foreign_minus_individual", "foreigners' net ratio minus individuals' net ratio")
    add("foreign_minus_individual_z",
        f"foreigners minus individuals, z-scored against the previous {f.zscore_weeks} weeks")
    add(f"foreigners_net_{f.cumulative_weeks}w",
        f"foreigners' net buying over gross trading, summed over the last {f.cumulative_weeks} weeks")
    add("activity_z", f"log total trading of the section, z-scored against {f.zscore_weeks} weeks")
    add("age_days", "trading days since the section's latest week became available")
    add("valid", "1 when investor-type flows exist for the stock's section", pl.col("_f_valid"))
    return out


def _weekly(investor_types: pl.DataFrame, panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """One row per (Section, available date) with the flow values, history over earlier weeks only."""
    f = params.flow
    z_min = max(3, min_count(f.zscore_weeks, params.rolling.min_periods_fraction))
    avail = published_available_dates(
        investor_types.get_column("PublishedDate"), panel.trading_days,
        params.availability.investor_types_lag_days)
    weeks = investor_types.with_columns(avail.alias("_avail")).filter(pl.col("_avail").is_not_null())
    # one row per section and available date: the latest week published by then
    weeks = weeks.sort(SECTION, "_avail", "StartDate", "PublishedDate").unique(
        [SECTION, "_avail"], keep="last", maintain_order=True)

    def net(g: str) -> pl.Expr:
        balance = pl.coalesce(pl.col(f"{g}Balance"), pl.col(f"{g}Purchases") - pl.col(f"{g}Sales"))
        total = pl.coalesce(pl.col(f"{g}Total"), pl.col(f"{g}Purchases") + pl.col(f"{g}Sales"))
        return safe_div(balance, total)

    def zscore(expr: pl.Expr) -> pl.Expr:
        """Against the section's previous weeks (this week excluded)."""
        prev = expr.shift(1)
        mean = prev.rolling_mean(f.zscore_weeks, min_samples=z_min)
        std = prev.rolling_std(f.zscore_weeks, min_samples=z_min)
        return safe_div(expr - mean, std).over(SECTION)

    nets = {g: net(g) for g in f.investor_groups}
    fmi = nets["Foreigners"] - nets["Individuals"]
    activity = pl.coalesce(pl.col("TotalTotal"), pl.col("TotalPurchases") + pl.col("TotalSales")).log()
    k = f.cumulative_weeks
    foreign_balance = pl.coalesce(pl.col("ForeignersBalance"),
                                  pl.col("ForeignersPurchases") - pl.col("ForeignersSales"))
    foreign_total = pl.coalesce(pl.col("ForeignersTotal"),
                                pl.col("ForeignersPurchases") + pl.col("ForeignersSales"))
    return weeks.select(
        SECTION, "_avail",
        *[nets[g].alias(f"_f_{_snake(g)}_net") for g in f.investor_groups],
        *[zscore(nets[g]).alias(f"_f_{_snake(g)}_net_z") for g in f.investor_groups],
        fmi.alias("_f_foreign_minus_individual"),
        zscore(fmi).alias("_f_foreign_minus_individual_z"),
        safe_div(foreign_balance.rolling_sum(k, min_samples=k),
                 foreign_total.rolling_sum(k, min_samples=k)).over(SECTION).alias(f"_f_foreigners_net_{k}w"),
        zscore(activity).alias("_f_activity_z"),
    )


def compute(panel: StockPanel, investor_types: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    """flow_ features in (Date, Code) order, like the pipeline's output (float32).

    Raises:
        MissingSourceError: ``investor_types`` has rows but lacks columns (missing or empty:
            every flow_ feature null, ``flow_valid`` 0).
        ValueError: no stock's MarketCode maps to a section present in investor_types.
    """
    needed = ["PublishedDate", "StartDate", SECTION, "TotalTotal", "TotalSales", "TotalPurchases"]
    for g in params.flow.investor_groups:
        needed += [f"{g}Sales", f"{g}Purchases", f"{g}Total", f"{g}Balance"]
    investor_types = optional_table(investor_types, "investor_types", GROUP, needed)
    mapping = params.flow.section_by_market_code
    sections = set(investor_types.get_column(SECTION).unique().to_list())
    market_codes = panel.frame.get_column("MarketCode").unique().to_list()
    covered = [m for m in market_codes if mapping.get(m) in sections]
    if not covered and investor_types.height:
        raise ValueError(
            "feature group 'flow': no stock's listed_info.MarketCode maps to a section of investor_types "
            f"(market codes {sorted(market_codes)}, sections {sorted(sections)}); fix "
            "params:feature_engineering.flow.section_by_market_code or set "
            "params:feature_engineering.groups.flow: false")
    uncovered = sorted(set(market_codes) - set(covered))
    if uncovered and investor_types.height:
        logger.warning("flow features: market codes %s map to no investor_types section; flow_valid is 0 there",
                       uncovered)
    weekly = _weekly(investor_types, panel, params)
    days = panel.trading_days
    n_days = days.len()
    weekly = weekly.with_columns(days.search_sorted(weekly.get_column("_avail")).cast(pl.Int32).alias("_avail_d"))
    section_list = sorted(sections)
    grid = asof_day_grid(weekly.drop("_avail"), key=SECTION, keys=section_list,
                         available_day="_avail_d", n_days=n_days)
    values = [c for c in grid.columns if c.startswith("_f_")]
    grid = grid.with_columns(pl.col(values).cast(pl.Float32))  # spread to the rows in float32
    position = {s: i for i, s in enumerate(section_list)}
    mapped = {m: position[s] for m, s in mapping.items() if s in position}
    section_index = pl.col("MarketCode").replace_strict(
        list(mapped), list(mapped.values()), default=None, return_dtype=pl.Int64)
    keys = pl.DataFrame([panel.output_column("MarketCode"), panel.output_column(DAY)])
    rows = keys.select(grid_index(section_index, pl.col(DAY), n_days).alias("_row")).get_column("_row")
    joined = grid.select(pl.all().gather(rows)).with_columns(keys.get_column(DAY))
    joined = joined.with_columns(
        (pl.col(DAY) - pl.col("_avail_d")).cast(pl.Float64).alias("_f_age_days"),
        pl.col("_avail_d").is_not_null().cast(pl.Float64).alias("_f_valid"),
    )
    return select_features(joined.lazy(), features(params))
