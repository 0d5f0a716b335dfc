"""The ``files`` source: raw tables from a folder of J-Quants v2-shaped Parquet or CSV files."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from fake_jquants import FakeMarket
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from atft_kedro.schemas import tables
from atft_kedro.sources.files import (
    FilesSourceParams,
    MissingTableFileError,
    endpoint_file_stem,
    read_file_tables,
)
from atft_kedro.sources.raw_cast import RawTableError

MASTER = tables.EQUITIES_MASTER
BARS = tables.DAILY_BARS


def _write_all(market: FakeMarket, folder: Path, file_format: str, endpoint_named: tuple[str, ...] = ()) -> None:
    for spec in tables.TABLES:
        stem = endpoint_file_stem(spec) if spec.raw_name in endpoint_named else spec.raw_name
        frame = market.tables[spec.raw_name]
        if file_format == "csv":
            frame.write_csv(folder / f"{stem}.csv")
        else:
            frame.write_parquet(folder / f"{stem}.parquet")


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_round_trip(fake_market: FakeMarket, tmp_path: Path, file_format: str) -> None:
    _write_all(fake_market, tmp_path, file_format, endpoint_named=(BARS.raw_name, tables.MARGIN_INTEREST.raw_name))

    result = read_file_tables(FilesSourceParams(directory=tmp_path, format=file_format))

    assert list(result) == [t.raw_name for t in tables.TABLES]
    gaps = (tables.MARGIN_INTEREST.raw_name, tables.EARNINGS_DATES.raw_name)
    for spec in tables.TABLES:
        spec.raw_schema().validate(result[spec.raw_name])
        spec.canonical_schema().validate(spec.to_canonical(result[spec.raw_name]))
        if spec.raw_name not in gaps:
            assert_frame_equal(result[spec.raw_name], fake_market.tables[spec.raw_name])
    # the known gaps are closed as for the API source
    margin = result[tables.MARGIN_INTEREST.raw_name]
    published = dict(margin.filter(pl.col("Code") == "13010").select("Date", "PubDate").iter_rows())
    assert published[date(2024, 1, 5)] == date(2024, 1, 10)
    assert published[date(2024, 2, 2)] == date(2024, 2, 7)
    assert margin.height == fake_market.tables[tables.MARGIN_INTEREST.raw_name].height
    assert result[tables.EARNINGS_DATES.raw_name].height == 3


def test_csv_codes_stay_text_with_leading_zeros(fake_market: FakeMarket, tmp_path: Path) -> None:
    _write_all(fake_market, tmp_path, "csv")
    (tmp_path / "raw_equities_master.csv").write_text(
        "Date,Code,CoName,CoNameEn,S17,S17Nm,S33,S33Nm,ScaleCat,Mkt,MktNm,Mrgn,MrgnNm,ProdCat\n"
        "2024-01-04,13010,Kyokuyo,KYOKUYO CO.,LTD.,1,Foods,0050,Fishery,TOPIX Small 2,0111,Prime,1,Margin,Stock\n"
        .replace("KYOKUYO CO.,LTD.", '"KYOKUYO CO.,LTD."'),
        encoding="utf-8",
    )

    master = read_file_tables(FilesSourceParams(directory=tmp_path, format="csv"))[MASTER.raw_name]

    row = master.row(0, named=True)
    assert (row["Code"], row["S33"], row["Mkt"], row["S17"]) == ("13010", "0050", "0111", "1")
    assert master.schema["Code"] == pl.String and master.schema["Date"] == pl.Date
    assert "ProdCat" not in master.columns


def test_missing_required_file_names_the_table(fake_market: FakeMarket, tmp_path: Path) -> None:
    _write_all(fake_market, tmp_path, "csv")
    (tmp_path / "raw_daily_bars.csv").unlink()

    with pytest.raises(MissingTableFileError,
                       match=r"required table 'raw_daily_bars'.*raw_daily_bars\.csv, raw_daily_bars\.csv\.gz, "
                             r"equities_bars_daily\.csv"):
        read_file_tables(FilesSourceParams(directory=tmp_path, format="csv"))


def test_missing_optional_file_reads_as_an_empty_table_with_its_schema(
    fake_market: FakeMarket, tmp_path: Path
) -> None:
    _write_all(fake_market, tmp_path, "parquet")
    (tmp_path / "raw_short_ratio.parquet").unlink()
    (tmp_path / "raw_margin_alert.parquet").unlink()

    result = read_file_tables(FilesSourceParams(directory=tmp_path, format="parquet"))

    for spec in (tables.SHORT_RATIO, tables.MARGIN_ALERT):
        assert result[spec.raw_name].height == 0
        assert result[spec.raw_name].schema == spec.empty_raw().schema
    assert result[BARS.raw_name].height == fake_market.tables[BARS.raw_name].height


def test_gzip_csv_files_are_read(fake_market: FakeMarket, tmp_path: Path) -> None:
    _write_all(fake_market, tmp_path, "csv")
    for spec in (BARS, MASTER):
        plain = tmp_path / f"{spec.raw_name}.csv"
        (tmp_path / f"{spec.raw_name}.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()

    result = read_file_tables(FilesSourceParams(directory=tmp_path, format="csv"))

    assert_frame_equal(result[BARS.raw_name], fake_market.tables[BARS.raw_name])
    assert_frame_equal(result[MASTER.raw_name], fake_market.tables[MASTER.raw_name])


def test_folder_of_monthly_files_is_concatenated_and_deduplicated_on_keys(
    fake_market: FakeMarket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_all(fake_market, tmp_path, "csv")
    (tmp_path / "raw_daily_bars.csv").unlink()
    bars = fake_market.tables[BARS.raw_name]
    folder = tmp_path / "equities_bars_daily"
    folder.mkdir()
    january = bars.filter(pl.col("Date").dt.month() == 1)
    # the February download repeats the last January day; one of its rows was revised since
    overlap = january.filter(pl.col("Date") == january["Date"].max())
    revised = overlap.head(1).with_columns(pl.col("AdjC") * 2)
    february = pl.concat([revised, overlap.slice(1), bars.filter(pl.col("Date").dt.month() == 2)])
    january.write_csv(folder / "2024-01.csv")
    (folder / "2024-02.csv.gz").write_bytes(gzip.compress(february.write_csv().encode()))
    (folder / "README.txt").write_text("not a table")

    with caplog.at_level("INFO", logger="atft_kedro.sources.files"):
        result = read_file_tables(FilesSourceParams(directory=tmp_path, format="csv"))[BARS.raw_name]

    expected = bars.update(revised, on=["Date", "Code"]).sort("Date", "Code")
    assert_frame_equal(result.sort("Date", "Code"), expected)
    assert f"dropped {overlap.height - 1} identical repeated rows and 1 rows superseded by a later file" in caplog.text


def test_file_and_folder_for_one_table_are_refused(fake_market: FakeMarket, tmp_path: Path) -> None:
    _write_all(fake_market, tmp_path, "csv")
    (tmp_path / "raw_topix").mkdir()
    fake_market.tables[tables.TOPIX.raw_name].write_csv(tmp_path / "raw_topix" / "2024.csv")

    with pytest.raises(RawTableError, match=r"'raw_topix' has 2 candidates.*raw_topix\.csv and .*raw_topix; keep one"):
        read_file_tables(FilesSourceParams(directory=tmp_path, format="csv"))


def test_missing_column_names_file_table_and_column(fake_market: FakeMarket, tmp_path: Path) -> None:
    _write_all(fake_market, tmp_path, "csv")
    fake_market.tables[BARS.raw_name].drop("AdjC").write_csv(tmp_path / "raw_daily_bars.csv")

    with pytest.raises(RawTableError, match=r"raw_daily_bars\.csv.*'raw_daily_bars'.*\['AdjC'\]"):
        read_file_tables(FilesSourceParams(directory=tmp_path, format="csv"))


def test_unparsable_values_name_the_column_and_rows(fake_market: FakeMarket, tmp_path: Path) -> None:
    _write_all(fake_market, tmp_path, "csv")
    bars = fake_market.tables[BARS.raw_name].with_columns(pl.col("Date").dt.to_string("%Y/%m/%d"))
    bars.write_csv(tmp_path / "raw_daily_bars.csv")

    with pytest.raises(RawTableError, match=r"column 'Date' has \d+ value\(s\).*YYYY-MM-DD.*'2024/01/04'.*rows \[0"):
        read_file_tables(FilesSourceParams(directory=tmp_path, format="csv"))


def test_parquet_integer_codes_are_refused(fake_market: FakeMarket, tmp_path: Path) -> None:
    _write_all(fake_market, tmp_path, "parquet")
    master = fake_market.tables[MASTER.raw_name].with_columns(pl.col("S33").cast(pl.Int64))
    master.write_parquet(tmp_path / "raw_equities_master.parquet")

    with pytest.raises(RawTableError, match=r"'S33' must be text.*leading zeros"):
        read_file_tables(FilesSourceParams(directory=tmp_path, format="parquet"))


def test_two_files_for_one_table_are_refused(fake_market: FakeMarket, tmp_path: Path) -> None:
    _write_all(fake_market, tmp_path, "parquet")
    fake_market.tables[BARS.raw_name].write_parquet(tmp_path / "equities_bars_daily.parquet")

    with pytest.raises(RawTableError, match="has 2 candidates"):
        read_file_tables(FilesSourceParams(directory=tmp_path, format="parquet"))


def test_calendar_file_must_reach_margin_publication_days(fake_market: FakeMarket, tmp_path: Path) -> None:
    _write_all(fake_market, tmp_path, "parquet")
    calendar = fake_market.tables[tables.TRADING_CALENDAR.raw_name]
    calendar.filter(pl.col("Date") <= date(2024, 2, 16)).write_parquet(tmp_path / "raw_trading_calendar.parquet")

    with pytest.raises(RawTableError, match=r"raw_margin_interest.*calendar.*2024-02-16"):
        read_file_tables(FilesSourceParams(directory=tmp_path, format="parquet"))


def test_params_are_strict(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        FilesSourceParams(directory=tmp_path, format="xlsx")
    with pytest.raises(ValidationError):
        FilesSourceParams(directory=tmp_path, format="csv", compression="gzip")
    with pytest.raises(NotADirectoryError, match="ingestion.files.directory"):
        read_file_tables(FilesSourceParams(directory=tmp_path / "absent", format="csv"))
