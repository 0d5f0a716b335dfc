"""The feature pipeline: canonical tables -> features, targets, feature_manifest, stock_graph.

One node per registered feature group (``features.registry``): ``compute_<group>_features``
reads the panel, the group's source tables and the params and writes ``fe_<group>_features``.
The stock panel and the output keys (``fe_stock_panel``, ``fe_feature_keys``) stay in
memory; each group frame is a Parquet file (the catalog's ``fe_{group}_features`` factory)
that ``assemble_features`` scans lazily, and ``features`` is streamed to Parquet by blocks
of whole trading days (``features.assembly``), so the wide table is never whole in memory.
The panel is released after the last group node, before the assembly. Every node is named
after its function.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, pipeline

from atft_kedro.features.registry import DATA_GROUPS
from atft_kedro.pipelines import named_node
from atft_kedro.pipelines.feature_engineering import nodes

PARAMS = "params:feature_engineering"
PANEL = "fe_stock_panel"
KEYS = "fe_feature_keys"


def group_dataset(group: str) -> str:
    """Name of the dataset holding one group's features (a Parquet file: ``fe_{group}_features``)."""
    return DATA_GROUPS[group].dataset


def create_pipeline(**kwargs) -> Pipeline:
    """Manifest, panel, targets, graph, one node per registered feature group, then assembly."""
    group_nodes = [
        named_node(nodes.group_node(group), inputs=[PANEL, *group.sources, PARAMS], outputs=group.dataset)
        for group in DATA_GROUPS.values()
    ]
    return pipeline([
        named_node(nodes.build_manifest, inputs=PARAMS, outputs="feature_manifest"),
        named_node(nodes.build_stock_panel, inputs=["daily_quotes", "listed_info", "trading_calendar"],
                   outputs=PANEL),
        named_node(nodes.select_feature_keys, inputs=PANEL, outputs=KEYS),
        named_node(nodes.build_targets, inputs=[PANEL, "params:horizons", "params:labels"], outputs="targets"),
        named_node(nodes.build_stock_graph, inputs=[PANEL, PARAMS], outputs="stock_graph"),
        *group_nodes,
        named_node(nodes.assemble_features,
                   inputs=[KEYS, "feature_manifest", PARAMS, *[g.dataset for g in DATA_GROUPS.values()]],
                   outputs="features"),
    ])
