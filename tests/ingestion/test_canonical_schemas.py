"""Canonical and raw tables are guarded by their pandera schemas through the Kedro catalog."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from kedro.io import DataCatalog
from kedro.validation.exceptions import DataValidationError

from atft_kedro.schemas import tables


def _catalog(tmp_path: Path) -> DataCatalog:
    return DataCatalog.from_config(
        {
            "daily_quotes": {
                "type": "atft_kedro.datasets.atomic.AtomicParquetDataset",
                "filepath": str(tmp_path / "daily_quotes.parquet"),
                "validator": "atft_kedro.schemas.intermediate.DAILY_QUOTES",
            },
            "raw_daily_bars": {
                "type": "atft_kedro.datasets.atomic.AtomicParquetDataset",
                "filepath": str(tmp_path / "raw_daily_bars.parquet"),
                "validator": "atft_kedro.schemas.raw.DAILY_BARS",
            },
        }
    )


def _raw_bars(n_days: int = 3, codes: tuple[str, ...] = ("13010", "72030")) -> pl.DataFrame:
    rows = []
    for i in range(n_days):
        for code in codes:
            price = 100.0 + i
            rows.append(
                {"Date": dt.date(2024, 1, 4) + dt.timedelta(days=i), "Code": code, "O": price, "H": price + 1,
                 "L": price - 1, "C": price, "UL": "0", "LL": "0", "Vo": 1000.0, "Va": 1000.0 * price,
                 "AdjFactor": 1.0, "AdjO": price, "AdjH": price + 1, "AdjL": price - 1, "AdjC": price,
                 "AdjVo": 1000.0}
            )
    return pl.DataFrame(rows, schema={c.raw: c.dtype for c in tables.DAILY_BARS.columns})


def test_valid_canonical_table_round_trips(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    canonical = tables.DAILY_BARS.to_canonical(_raw_bars())
    catalog.save("daily_quotes", canonical)
    assert catalog.load("daily_quotes").equals(canonical)


def test_lower_case_code_column_names_table_and_column(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    bad = tables.DAILY_BARS.to_canonical(_raw_bars()).rename({"Code": "code"})
    with pytest.raises(DataValidationError) as err:
        catalog.save("daily_quotes", bad)
    message = str(err.value)
    assert "daily_quotes" in message
    assert "code" in message and "Code" in message
    assert not (tmp_path / "daily_quotes.parquet").exists(), "an invalid table must not be written"


def test_raw_table_with_lower_case_code_fails_too(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    with pytest.raises(DataValidationError, match="raw_daily_bars"):
        catalog.save("raw_daily_bars", _raw_bars().rename({"Code": "code"}))


def test_duplicate_date_code_rows_fail_naming_the_rows(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    canonical = tables.DAILY_BARS.to_canonical(_raw_bars())
    duplicated = pl.concat([canonical, canonical.filter(pl.col("Code") == "72030").head(1)])
    with pytest.raises(DataValidationError) as err:
        catalog.save("daily_quotes", duplicated)
    message = str(err.value)
    assert "uniqueness" in message
    assert '"Date":"2024-01-04"' in message and '"Code":"72030"' in message


@pytest.mark.parametrize("bad_price", [0.0, -5.0])
def test_non_positive_price_fails(tmp_path: Path, bad_price: float) -> None:
    catalog = _catalog(tmp_path)
    canonical = tables.DAILY_BARS.to_canonical(_raw_bars())
    bad = canonical.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(bad_price).otherwise(pl.col("Close")).alias("Close")
    )
    with pytest.raises(DataValidationError) as err:
        catalog.save("daily_quotes", bad)
    assert "Close: greater_than(0)" in str(err.value)
    assert str(bad_price) in str(err.value)


def test_wrong_dtype_fails(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    bad = tables.DAILY_BARS.to_canonical(_raw_bars()).with_columns(pl.col("Date").cast(pl.String))
    with pytest.raises(DataValidationError, match="Date"):
        catalog.save("daily_quotes", bad)


def test_invalid_save_leaves_previous_file_whole(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    good = tables.DAILY_BARS.to_canonical(_raw_bars())
    catalog.save("daily_quotes", good)
    with pytest.raises(DataValidationError):
        catalog.save("daily_quotes", good.rename({"Code": "code"}))
    assert pl.read_parquet(tmp_path / "daily_quotes.parquet").equals(good)


def test_mapping_names_missing_raw_columns() -> None:
    with pytest.raises(KeyError, match=r"raw_daily_bars.*\['AdjC'\]"):
        tables.DAILY_BARS.to_canonical(_raw_bars().drop("AdjC"))


def test_every_table_maps_its_empty_raw_form_to_a_valid_canonical_table() -> None:
    for spec in tables.TABLES:
        spec.raw_schema().validate(spec.empty_raw())
        spec.canonical_schema().validate(spec.to_canonical(spec.empty_raw()))


NUMBER_COLUMNS = [(spec, column) for spec in tables.TABLES for column in spec.columns if column.dtype == pl.Float64]


@pytest.mark.parametrize(("spec", "column"), NUMBER_COLUMNS,
                         ids=[f"{s.raw_name}.{c.raw}" for s, c in NUMBER_COLUMNS])
def test_every_number_column_refuses_nan_and_inf_in_both_layers(spec: tables.TableSpec, column: tables.Column) -> None:
    import pandera.errors

    for schema, name in ((spec.raw_schema(), column.raw), (spec.canonical_schema(), column.canonical)):
        check = schema.columns[name]
        check.validate(pl.DataFrame({name: [1.0]}, schema={name: pl.Float64}))
        for bad in (float("nan"), float("inf"), float("-inf")):
            # pandera reports NaN in a non-nullable column as a null; either way it is refused
            with pytest.raises(pandera.errors.SchemaError, match="finite|null"):
                check.validate(pl.DataFrame({name: [1.0, bad]}, schema={name: pl.Float64}))
        if column.nullable:
            check.validate(pl.DataFrame({name: [1.0, None]}, schema={name: pl.Float64}))


def test_the_oracle_refuses_nan_but_keeps_null() -> None:
    import pandera.errors

    from atft_kedro.schemas.raw import ORACLE_EXPECTED_RETURNS

    frame = pl.DataFrame({"Date": [dt.date(2024, 1, 4)] * 2, "Code": ["13010", "72030"], "exp_ret_5d": [0.01, None]})
    ORACLE_EXPECTED_RETURNS.validate(frame)
    with pytest.raises(pandera.errors.SchemaError, match="finite"):
        ORACLE_EXPECTED_RETURNS.validate(frame.with_columns(pl.lit(float("nan")).alias("exp_ret_5d")))
