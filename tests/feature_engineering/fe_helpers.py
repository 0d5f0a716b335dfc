"""Helpers of the feature tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from atft_kedro.features.params import FeatureParams
from atft_kedro.features.registry import DATA_GROUPS
from atft_kedro.labels import LabelParams
from atft_kedro.pipelines.feature_engineering import nodes
from atft_kedro.schemas.manifest import FeatureManifest

N_STOCKS, N_DAYS, SEED, N_SECTORS = 30, 300, 7, 4


@dataclass
class Built:
    """Every output of the feature pipeline for one set of tables."""

    features: pl.DataFrame
    targets: pl.DataFrame
    graph: pl.DataFrame
    manifest: FeatureManifest


def build_all(tables: dict[str, pl.DataFrame | None], params: FeatureParams, horizons: list[int]) -> Built:
    """Run the pipeline's nodes in order (what ``kedro run --pipelines feature_engineering`` does).

    The group nodes are made from the registry when called, so a test may change it first.
    """
    manifest = nodes.build_manifest(params)
    panel = nodes.build_stock_panel(tables["daily_quotes"], tables["listed_info"], tables["trading_calendar"])
    graph = nodes.build_stock_graph(panel, params)
    inputs = tables | {"stock_graph": graph}
    frames = [nodes.group_node(group)(panel, *[inputs[s] for s in group.sources], params)
              for group in DATA_GROUPS.values()]
    features = nodes.assemble_features(nodes.select_feature_keys(panel), manifest, params, *frames).collect()
    return Built(features, nodes.build_targets(panel, horizons, LabelParams(entry="next_open")), graph, manifest)
