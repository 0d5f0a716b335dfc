"""The ingestion pipeline: raw tables from the source (01_raw), canonical tables (02_intermediate)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from atft_kedro.pipelines.ingestion.nodes import RAW_OUTPUTS, canonicaliser, fetch_raw_tables
from atft_kedro.schemas.tables import TABLES


def create_pipeline(**kwargs) -> Pipeline:
    """``fetch_raw_tables`` then one ``to_canonical_<table>`` node per market table."""
    fetch = node(
        fetch_raw_tables,
        # positional, in the order of the signature: Kedro's typed-parameter validation maps them so
        inputs=["params:ingestion", "params:simulator", "params:horizons", "jquants_credentials"],
        outputs={name: name for name in RAW_OUTPUTS},
        name="fetch_raw_tables",
    )
    to_canonical = [
        node(canonicaliser(spec), inputs=spec.raw_name, outputs=spec.canonical_name,
             name=f"to_canonical_{spec.canonical_name}")
        for spec in TABLES
    ]
    return pipeline([fetch, *to_canonical])
