"""The feature pipeline: canonical tables -> features, targets, feature_manifest, stock_graph.

Intermediate datasets (the stock panel, the output keys and one frame per group, prefixed
``fe_``) stay in memory; only the four outputs are catalog entries. The panel is released
after the last group node, before the assembly.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from atft_kedro.features.manifest import DATA_GROUPS
from atft_kedro.pipelines.feature_engineering import nodes

PARAMS = "params:feature_engineering"
PANEL = "fe_stock_panel"
KEYS = "fe_feature_keys"

#: group -> (node function, source inputs between the panel and the params)
_GROUP_NODES = {
    "px": (nodes.compute_price_features, []),
    "tech": (nodes.compute_technical_features, []),
    "mkt": (nodes.compute_market_features, ["topix"]),
    "beta_alpha": (nodes.compute_beta_alpha_features, ["topix"]),
    "sector": (nodes.compute_sector_features, []),
    "flow": (nodes.compute_flow_features, ["investor_types"]),
    "margin": (nodes.compute_margin_features, ["weekly_margin_interest"]),
    "margin_alert": (nodes.compute_margin_alert_features, ["daily_margin_interest"]),
    "short": (nodes.compute_short_selling_features, ["short_selling"]),
    "short_positions": (nodes.compute_short_position_features, ["short_positions"]),
    "stmt": (nodes.compute_statement_features, ["statements"]),
    "evt": (nodes.compute_earnings_event_features, ["earnings_calendar", "statements"]),
    "grf": (nodes.compute_graph_features, ["stock_graph"]),
}


def group_dataset(group: str) -> str:
    """Name of the in-memory dataset holding one group's features."""
    return f"fe_{group}_features"


def create_pipeline(**kwargs) -> Pipeline:
    """Manifest, panel, targets, graph, one node per feature group, then assembly."""
    if list(_GROUP_NODES) != list(DATA_GROUPS):
        raise RuntimeError("feature_engineering pipeline: group nodes out of step with features.manifest")
    group_nodes = [
        node(func, inputs=[PANEL, *sources, PARAMS], outputs=group_dataset(group), name=func.__name__)
        for group, (func, sources) in _GROUP_NODES.items()
    ]
    return pipeline([
        node(nodes.build_manifest, inputs=PARAMS, outputs="feature_manifest", name="build_feature_manifest"),
        node(nodes.build_stock_panel, inputs=["daily_quotes", "listed_info", "trading_calendar"],
             outputs=PANEL, name="build_stock_panel"),
        node(nodes.select_feature_keys, inputs=PANEL, outputs=KEYS, name="select_feature_keys"),
        node(nodes.build_targets, inputs=[PANEL, "params:horizons", "params:labels"], outputs="targets",
             name="build_forward_return_targets"),
        node(nodes.build_stock_graph, inputs=[PANEL, PARAMS], outputs="stock_graph",
             name="build_correlation_stock_graph"),
        *group_nodes,
        node(nodes.assemble_features,
             inputs=[KEYS, "feature_manifest", PARAMS, *[group_dataset(g) for g in _GROUP_NODES]],
             outputs="features", name="assemble_features"),
    ])
