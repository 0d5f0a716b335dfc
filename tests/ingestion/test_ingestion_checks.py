"""The ingestion pipeline on the files source: bad values, required and optional tables, all or nothing.

Each test first runs a good ingestion (the fixture market of ``fake_jquants.py`` as CSV
files), then a second run on altered files. A failing second run must leave every file
the first run wrote byte for byte as it was, and no staging file behind.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pandera.polars as pa
import polars as pl
import pytest
from fake_jquants import FakeMarket
from kedro.validation.exceptions import DataValidationError
from kedro_project import load_conf, project_catalog, run

from atft_kedro.pipelines.ingestion import create_pipeline
from atft_kedro.schemas.tables import RequiredTableError
from atft_kedro.schemas import intermediate, tables
from atft_kedro.schemas.tables import RequiredTableError, TableSpec
from atft_kedro.schemas.validation import TableValidationError

BARS = tables.DAILY_BARS


def _write_files(market: FakeMarket, folder: Path, alter: dict[str, pl.DataFrame] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        path.unlink()
    for spec in tables.TABLES:
        frame = (alter or {}).get(spec.raw_name, market.tables[spec.raw_name])
        if frame is not None:
            frame.write_csv(folder / f"{spec.raw_name}.csv")


def _ingest(root: Path, files: Path) -> None:
    ingestion = dict(load_conf("test")["parameters"]["ingestion"])
    ingestion["source"] = "files"
    ingestion["files"] = {"directory": str(files), "format": "csv"}
    pipeline = create_pipeline()
    run(pipeline, project_catalog("test", root, {"ingestion": ingestion}, pipeline))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _canonical(root: Path, spec: TableSpec) -> pl.DataFrame:
    (path,) = root.rglob(f"02_intermediate/{spec.canonical_name}.parquet")
    return pl.read_parquet(path)


@pytest.fixture()
def ingested(fake_market: FakeMarket, tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """(project root after a good run, the files folder, snapshot of every file the run wrote)."""
    root, files = tmp_path / "project", tmp_path / "files"
    _write_files(fake_market, files)
    _ingest(root, files)
    snapshot = _snapshot(root)
    written = {Path(name).name for name in snapshot}
    assert {f"{t.canonical_name}.parquet" for t in tables.TABLES} <= written
    assert {f"{t.raw_name}.parquet" for t in tables.TABLES} <= written
    return root, files, snapshot


def _with_value(frame: pl.DataFrame, column: str, row: int, value: float | None) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value, dtype=pl.Float64))
        .otherwise(pl.col(column)).alias(column)
    )


BAD_VALUES = {
    # (raw table, column, row, value) -> the message must name table, column and check, and show the row's keys
    "NaN close": (BARS, "C", 7, float("nan"), "finite"),
    "inf turnover": (BARS, "Va", 3, float("inf"), "finite"),
    "-inf adjusted volume": (BARS, "AdjVo", 3, float("-inf"), "finite"),
    "zero close": (BARS, "C", 5, 0.0, "greater_than(0)"),
    "negative adjusted open": (BARS, "AdjO", 5, -3.0, "greater_than(0)"),
    "NaN TOPIX close": (tables.TOPIX, "C", 2, float("nan"), "finite"),
    "NaN EPS in the 10th table": (tables.FIN_SUMMARY, "EPS", 1, float("nan"), "finite"),
    "inf short ratio": (tables.SHORT_RATIO, "SellExShortVa", 0, float("inf"), "finite"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_values_stop_ingestion_naming_table_column_and_rows_and_write_nothing(
    ingested: tuple[Path, Path, dict[str, bytes]], fake_market: FakeMarket, case: str
) -> None:
    root, files, before = ingested
    spec, column, row, value, check = BAD_VALUES[case]
    bad = _with_value(fake_market.tables[spec.raw_name], column, row, value)
    _write_files(fake_market, files, {spec.raw_name: bad})

    with pytest.raises(TableValidationError) as err:
        _ingest(root, files)

    message = str(err.value)
    assert f"table '{spec.raw_name}'" in message and f"column '{column}' {check}" in message
    failing = bad.row(row, named=True)
    example = re.search(rf"row {row} \{{[^}}]*\}}", message)
    assert example, f"row {row} is not shown: {message}"
    for key in spec.raw_keys:
        value = failing[key]
        assert f"'{key}': {(value.isoformat() if hasattr(value, 'isoformat') else value)!r}" in example.group(0)
    assert _snapshot(root) == before, "a failed run must leave 01_raw and 02_intermediate as they were"


def test_untraded_day_with_null_prices_passes(
    ingested: tuple[Path, Path, dict[str, bytes]], fake_market: FakeMarket
) -> None:
    root, files, _ = ingested
    bars = fake_market.tables[BARS.raw_name]
    untraded = bars.with_columns(
        *(pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise(pl.col(c)).alias(c)
          for c in ("O", "H", "L", "C", "AdjO", "AdjH", "AdjL", "AdjC", "Va")),
        *(pl.when(pl.int_range(pl.len()) == 4).then(0.0).otherwise(pl.col(c)).alias(c) for c in ("Vo", "AdjVo")),
    )
    _write_files(fake_market, files, {BARS.raw_name: untraded})

    _ingest(root, files)

    quotes = _canonical(root, BARS)
    day, code = bars.row(4, named=True)["Date"], bars.row(4, named=True)["Code"]
    row = quotes.filter((pl.col("Date") == day) & (pl.col("Code") == code)).row(0, named=True)
    assert row["Close"] is None and row["Volume"] == 0.0


@pytest.mark.parametrize("spec", [t for t in tables.TABLES if t.required], ids=lambda t: t.raw_name)
@pytest.mark.parametrize("how", ["header only", "no file"])
def test_an_empty_or_missing_required_table_stops_ingestion_and_writes_nothing(
    ingested: tuple[Path, Path, dict[str, bytes]], fake_market: FakeMarket, spec: TableSpec, how: str
) -> None:
    root, files, before = ingested
    _write_files(fake_market, files, {spec.raw_name: fake_market.tables[spec.raw_name].clear() if how == "header only"
                                      else None})

    with pytest.raises((RequiredTableError, FileNotFoundError), match=rf"required table.*{spec.raw_name}"):
        _ingest(root, files)

    assert _snapshot(root) == before


def test_empty_or_missing_optional_tables_are_written_empty_with_their_schema_and_one_warning_each(
    ingested: tuple[Path, Path, dict[str, bytes]], fake_market: FakeMarket, caplog: pytest.LogCaptureFixture
) -> None:
    root, files, _ = ingested
    header_only, absent = tables.MARGIN_ALERT, tables.SHORT_POSITIONS
    _write_files(fake_market, files, {header_only.raw_name: fake_market.tables[header_only.raw_name].clear(),
                                      absent.raw_name: None})

    with caplog.at_level(logging.WARNING):
        _ingest(root, files)

    for spec in (header_only, absent):
        table = _canonical(root, spec)
        assert table.height == 0
        assert table.schema == spec.to_canonical(spec.empty_raw()).schema
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and f"'{spec.raw_name}'" in r.message]
        assert len(warnings) == 1, [r.message for r in warnings]
    assert _canonical(root, BARS).height == fake_market.tables[BARS.raw_name].height


def _failing_last_canonical(original: Callable[[TableSpec], pa.DataFrameSchema]):
    last = tables.TABLES[-1].canonical_name

    def canonical_schema(self: TableSpec) -> pa.DataFrameSchema:
        schema = original(self)
        if self.canonical_name != last:
            return schema
        return schema.update_column("Code", checks=[pa.Check.str_startswith("9", name="planted_failure")])

    return canonical_schema


# Kedro's own save-time validators raise DataValidationError: either error is accepted, the files must not change
LATE_FAILURE = (TableValidationError, DataValidationError)


def test_a_failure_in_the_last_canonical_table_leaves_both_layers_as_they_were(
    ingested: tuple[Path, Path, dict[str, bytes]], fake_market: FakeMarket, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, files, before = ingested
    changed = fake_market.tables[BARS.raw_name].with_columns(pl.col("Vo") + 1)
    _write_files(fake_market, files, {BARS.raw_name: changed})
    failing = _failing_last_canonical(TableSpec.canonical_schema)
    monkeypatch.setattr(TableSpec, "canonical_schema", failing)
    monkeypatch.setattr(intermediate, "EARNINGS_CALENDAR", failing(tables.EARNINGS_DATES))  # the catalog's validator

    with pytest.raises(LATE_FAILURE, match=tables.TABLES[-1].canonical_name):
        _ingest(root, files)

    assert _snapshot(root) == before


def test_a_duplicate_key_in_the_last_raw_table_leaves_both_layers_as_they_were(
    ingested: tuple[Path, Path, dict[str, bytes]], fake_market: FakeMarket
) -> None:
    root, files, before = ingested
    spec = tables.TABLES[-1]
    earnings = fake_market.tables[spec.raw_name].filter(pl.col("SchDate").is_not_null())
    duplicated = pl.concat([earnings, earnings.head(1).with_columns(pl.lit("revised").alias("FQName"))])
    _write_files(fake_market, files, {BARS.raw_name: fake_market.tables[BARS.raw_name].with_columns(pl.col("Vo") + 1),
                                      spec.raw_name: duplicated})

    with pytest.raises(LATE_FAILURE, match=spec.raw_name) as err:
        _ingest(root, files)

    assert "keys ['PubDate', 'Code', 'SchDate'] not unique: 2 row(s)" in str(err.value)
    assert _snapshot(root) == before
