"""Nodes of the ingestion pipeline.

``fetch_raw_tables`` is the one node that talks to the outside world: it returns every
raw table at once, so a failing endpoint stops the run before any table is written.
``canonicaliser`` builds one pure mapping node per table from its ``TableSpec``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import polars as pl

from atft_kedro.market import simulate_market
from atft_kedro.market.params import SimulatorParams
from atft_kedro.pipelines.ingestion.params import IngestionParams
from atft_kedro.schemas.raw import ORACLE_COLUMN_PREFIX
from atft_kedro.schemas.tables import TABLES, TableSpec
from atft_kedro.sources.files import read_file_tables
from atft_kedro.sources.jquants import JQuantsCredentials, fetch_jquants_tables, require_api_key

logger = logging.getLogger(__name__)

ORACLE = "oracle_expected_returns"
RAW_OUTPUTS: tuple[str, ...] = (*(t.raw_name for t in TABLES), ORACLE)


def empty_oracle(horizons: list[int]) -> pl.DataFrame:
    """The oracle table of a real market: same columns, no rows (nobody knows the true expectation)."""
    return pl.DataFrame(
        schema={"Date": pl.Date, "Code": pl.String}
        | {f"{ORACLE_COLUMN_PREFIX}{h}d": pl.Float64 for h in horizons}
    )


def fetch_raw_tables(
    ingestion: IngestionParams,
    simulator: SimulatorParams,
    horizons: list[int],
    jquants_credentials: JQuantsCredentials,
) -> dict[str, pl.DataFrame]:
    """Fetch every raw table (J-Quants API v2 field names) from the configured source.

    Args:
        ingestion: ``params:ingestion``; ``ingestion.source`` picks the source.
        simulator: ``params:simulator``, used when the source is ``synthetic``.
        horizons: ``params:horizons``, the forward-return horizons of the oracle table.
        jquants_credentials: the ``jquants_credentials`` dataset (API key from
            ``conf/local/credentials.yml``), used when the source is ``jquants``.

    Returns:
        One DataFrame per raw catalog name, plus ``oracle_expected_returns`` (empty unless synthetic).

    Raises:
        ValueError: when the source returned no table or no rows for a raw table.
    """
    started = time.perf_counter()
    if ingestion.source == "synthetic":
        tables = simulate_market(simulator, horizons)
    elif ingestion.source == "jquants":
        tables = fetch_jquants_tables(ingestion.jquants, require_api_key(jquants_credentials))
        tables[ORACLE] = empty_oracle(horizons)
    else:
        tables = read_file_tables(ingestion.files)
        tables[ORACLE] = empty_oracle(horizons)

    missing = [name for name in RAW_OUTPUTS if name not in tables]
    if missing:
        raise ValueError(f"source '{ingestion.source}' returned no table for {missing}")
    empty = [t.raw_name for t in TABLES if tables[t.raw_name].height == 0]
    if empty:
        logger.warning(
            "source '%s' returned empty raw tables %s: feature groups built from them must be "
            "switched off in parameters_feature_engineering.yml or the feature pipeline will stop",
            ingestion.source,
            empty,
        )
    logger.info(
        "Fetched %d raw tables from source '%s' in %.1f s: %s",
        len(RAW_OUTPUTS),
        ingestion.source,
        time.perf_counter() - started,
        ", ".join(f"{name}={tables[name].height:,}" for name in RAW_OUTPUTS),
    )
    return {name: tables[name] for name in RAW_OUTPUTS}


def canonicaliser(spec: TableSpec) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Build the node function that maps ``spec.raw_name`` to ``spec.canonical_name``.

    The mapping keeps every row (a canonical table never silently shrinks): it only
    selects, renames (v2 short names -> long J-Quants names) and casts the columns.
    """

    def to_canonical(raw: pl.DataFrame) -> pl.DataFrame:
        return spec.to_canonical(raw)

    to_canonical.__name__ = f"to_canonical_{spec.canonical_name}"
    to_canonical.__qualname__ = to_canonical.__name__
    to_canonical.__doc__ = (
        f"Map raw table ``{spec.raw_name}`` (J-Quants {spec.endpoint}) to canonical ``{spec.canonical_name}``: "
        f"{spec.description}"
    )
    return to_canonical
