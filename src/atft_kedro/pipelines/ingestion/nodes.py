"""Nodes of the ingestion pipeline.

``fetch_raw_tables`` is the one node that talks to the outside world: it returns every
raw table at once (in memory), so a failing endpoint stops the run before any table is
written. ``check_and_canonicalise`` then checks every raw table, maps each to its canonical
table and checks those too; only when every table of both layers is valid does it return
them, so Kedro's saves start only after all of them passed: a failure in any table leaves
``01_raw`` and ``02_intermediate`` exactly as they were.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
import polars as pl

from atft_kedro.labels import LabelParams
from atft_kedro.market import simulate_market
from atft_kedro.market.params import SimulatorParams
from atft_kedro.pipelines.ingestion.params import IngestionParams
from atft_kedro.schemas.raw import ORACLE_COLUMN_PREFIX, ORACLE_EXPECTED_RETURNS
from atft_kedro.schemas.tables import TABLES, check_required_tables
from atft_kedro.schemas.validation import TableValidationError, validate_table
from atft_kedro.sources.files import read_file_tables
from atft_kedro.sources.jquants import JQuantsCredentials, fetch_jquants_tables, require_api_key

logger = logging.getLogger(__name__)

ORACLE = "oracle_expected_returns"
RAW_OUTPUTS: tuple[str, ...] = (*(t.raw_name for t in TABLES), ORACLE)
CANONICAL_OUTPUTS: tuple[str, ...] = tuple(t.canonical_name for t in TABLES)


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
    labels: LabelParams,
    jquants_credentials: JQuantsCredentials,
) -> dict[str, pl.DataFrame]:
    """Fetch every raw table (J-Quants API v2 field names) from the configured source.

    Args:
        ingestion: ``params:ingestion``; ``ingestion.source`` picks the source.
        simulator: ``params:simulator``, used when the source is ``synthetic``.
        horizons: ``params:horizons``, the forward-return horizons of the oracle table.
        labels: ``params:labels``, the entry price of the window the oracle expects.
        jquants_credentials: the ``jquants_credentials`` dataset (API key from
            ``conf/local/credentials.yml``), used when the source is ``jquants``.

    Returns:
        One DataFrame per raw catalog name, plus ``oracle_expected_returns`` (empty unless synthetic).
        Nothing is saved yet: :func:`check_and_canonicalise` checks them first.

    Raises:
        ValueError: when the source returned no table for a raw table.
    """
    started = time.perf_counter()
    if ingestion.source == "synthetic":
        tables = simulate_market(simulator, horizons, labels)
    elif ingestion.source == "jquants":
        tables = fetch_jquants_tables(ingestion.jquants, require_api_key(jquants_credentials))
        tables[ORACLE] = empty_oracle(horizons)
    else:
        tables = read_file_tables(ingestion.files)
        tables[ORACLE] = empty_oracle(horizons)

    missing = [name for name in RAW_OUTPUTS if name not in tables]
    if missing:
        raise ValueError(f"source '{ingestion.source}' returned no table for {missing}")
    logger.info(
        "Fetched %d raw tables from source '%s' in %.1f s: %s",
        len(RAW_OUTPUTS),
        ingestion.source,
        time.perf_counter() - started,
        ", ".join(f"{name}={tables[name].height:,}" for name in RAW_OUTPUTS),
    )
    return {name: tables[name] for name in RAW_OUTPUTS}


def check_and_canonicalise(raw_tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Check every raw table, map each to its canonical table, check those; return all or raise.

    Args:
        raw_tables: every raw table of the run and ``oracle_expected_returns``, from
            :func:`fetch_raw_tables`.

    Returns:
        ``{name: table}`` for every raw table (01_raw) and every canonical table (02_intermediate).
        An empty optional table is returned empty with its full schema (columns and dtypes),
        and one warning names it.

    Raises:
        RequiredTableError: a required table (``TableSpec.required``) is absent or has no rows.
        TableValidationError: naming table, column, check and example rows of every table
            that breaks its contract (NaN/inf, a non-positive price, a duplicate key, a wrong
            dtype or column, an unknown holiday division).
    """
    started = time.perf_counter()
    check_required_tables(raw_tables, "ingestion")
    for spec in TABLES:
        if raw_tables[spec.raw_name].height == 0:
            logger.warning(
                "table '%s' (J-Quants %s) is empty: canonical '%s' is written empty (full schema) and the "
                "features built from it will have no data",
                spec.raw_name, spec.endpoint, spec.canonical_name,
            )
    checked: dict[str, pl.DataFrame] = {}
    failures: list[str] = []

    def check(name: str, build: Callable[[], pl.DataFrame]) -> None:
        try:
            checked[name] = build()
        except TableValidationError as exc:
            failures.append(str(exc))

    for spec in TABLES:
        check(spec.raw_name, lambda spec=spec: validate_table(
            raw_tables[spec.raw_name], spec.raw_schema(), f"01_raw, J-Quants {spec.endpoint}", spec.raw_keys
        ))
    check(ORACLE, lambda: validate_table(raw_tables[ORACLE], ORACLE_EXPECTED_RETURNS, "01_raw", ["Date", "Code"]))
    for spec in TABLES:
        if spec.raw_name in checked:
            check(spec.canonical_name, lambda spec=spec: validate_table(
                spec.to_canonical(checked[spec.raw_name]), spec.canonical_schema(), "02_intermediate", spec.keys
            ))
    if failures:
        raise TableValidationError(
            f"{len(failures)} table(s) break their contract; nothing was written to 01_raw or 02_intermediate:\n"
            + "\n".join(failures)
        )
    logger.info("Checked %d raw and %d canonical tables in %.1f s: all valid",
                len(RAW_OUTPUTS), len(CANONICAL_OUTPUTS), time.perf_counter() - started)
    return {name: checked[name] for name in (*RAW_OUTPUTS, *CANONICAL_OUTPUTS)}
