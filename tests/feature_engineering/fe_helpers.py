"""Helpers of the feature tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from atft_kedro.features.params import FeatureParams
from atft_kedro.labels import LabelParams
from atft_kedro.pipelines.feature_engineering import nodes

N_STOCKS, N_DAYS, SEED, N_SECTORS = 30, 300, 7, 4


@dataclass
class Built:
    """Every output of the feature pipeline for one set of tables."""

    features: pl.DataFrame
    targets: pl.DataFrame
    graph: pl.DataFrame
    manifest: dict


def build_all(tables: dict[str, pl.DataFrame | None], params: FeatureParams, horizons: list[int]) -> Built:
    """Run the pipeline's nodes in order (what ``kedro run --pipelines feature_engineering`` does)."""
    manifest = nodes.build_manifest(params)
    panel = nodes.build_stock_panel(tables["daily_quotes"], tables["listed_info"], tables["trading_calendar"])
    graph = nodes.build_stock_graph(panel, params)
    frames = [
        nodes.compute_price_features(panel, params),
        nodes.compute_technical_features(panel, params),
        nodes.compute_market_features(panel, tables["topix"], params),
        nodes.compute_beta_alpha_features(panel, tables["topix"], params),
        nodes.compute_sector_features(panel, params),
        nodes.compute_flow_features(panel, tables["investor_types"], params),
        nodes.compute_margin_features(panel, tables["weekly_margin_interest"], params),
        nodes.compute_margin_alert_features(panel, tables["daily_margin_interest"], params),
        nodes.compute_short_selling_features(panel, tables["short_selling"], params),
        nodes.compute_short_position_features(panel, tables["short_positions"], params),
        nodes.compute_statement_features(panel, tables["statements"], params),
        nodes.compute_earnings_event_features(panel, tables["earnings_calendar"], tables["statements"], params),
        nodes.compute_graph_features(panel, graph, params),
    ]
    features = nodes.assemble_features(nodes.select_feature_keys(panel), manifest, params, *frames)
    return Built(features, nodes.build_targets(panel, horizons, LabelParams(entry="next_open")), graph, manifest)
