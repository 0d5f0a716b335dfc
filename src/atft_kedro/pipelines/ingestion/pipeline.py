"""The ingestion pipeline: raw tables from the source (01_raw), canonical tables (02_intermediate)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, pipeline

from atft_kedro.pipelines import named_node
from atft_kedro.pipelines.ingestion.nodes import (
    CANONICAL_OUTPUTS,
    RAW_OUTPUTS,
    check_and_canonicalise,
    fetch_raw_tables,
)

#: In-memory hand-over from the fetch to the check: nothing is written before every table passed.
FETCHED = "fetched_raw_tables"


def create_pipeline(**kwargs) -> Pipeline:
    """``fetch_raw_tables`` (in memory) then ``check_and_canonicalise`` (every raw and canonical table, or none)."""
    fetch = named_node(
        fetch_raw_tables,
        # positional, in the order of the signature: Kedro's typed-parameter validation maps them so
        ["params:ingestion", "params:simulator", "params:horizons", "params:labels", "jquants_credentials"],
        FETCHED,
    )
    check = named_node(check_and_canonicalise, FETCHED, {name: name for name in (*RAW_OUTPUTS, *CANONICAL_OUTPUTS)})
    return pipeline([fetch, check])
