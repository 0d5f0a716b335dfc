"""The ``files`` source: raw tables from a folder of J-Quants v2-shaped Parquet or CSV files.

One file per raw table, with the J-Quants API v2 field names as columns (extra columns
are ignored). Each table's file may be named either way:

* after the raw table: ``<raw_name>.<format>``, e.g. ``raw_daily_bars.parquet``,
  ``raw_equities_master.csv`` (what ``kedro run`` writes to ``data/01_raw``);
* after its endpoint: the path without the leading slash, ``/`` and ``-`` replaced by
  ``_``, e.g. ``equities_bars_daily.csv`` for ``/equities/bars/daily``,
  ``markets_margin_interest.parquet`` for ``/markets/margin-interest``.

Both names for one table in the folder is an error (which one is meant is unclear).

CSV files are read as text (UTF-8, a byte-order mark is tolerated) and parsed by
:func:`atft_kedro.sources.raw_cast.cast_to_spec`: dates ``YYYY-MM-DD``, numbers as decimals,
codes kept as text (``"13010"``, sector ``"0050"`` keeps its leading zero). Parquet columns
keep their types and are cast the same way. A missing file, an absent column or an
unparsable value raises an error naming the file, the table and the column.

The known gaps of J-Quants data are closed as for the API source
(:mod:`atft_kedro.sources.quirks`): a null margin ``PubDate`` becomes the second trading
day after its record date (so the calendar file must reach that day), and earnings-date
rows with an undecided scheduled date are dropped. Otherwise the files are taken as they
are: a master file must already be point in time (one row per Date x Code, each valid
from its Date); it is not rebuilt here.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict

from atft_kedro.schemas import tables
from atft_kedro.schemas.tables import TableSpec
from atft_kedro.sources.quirks import close_known_gaps
from atft_kedro.sources.raw_cast import RawTableError, cast_to_spec

logger = logging.getLogger(__name__)

_BOM = "\ufeff"


class FilesSourceParams(BaseModel):
    """``ingestion.files``: the folder of raw table files.

    Attributes:
        directory: folder holding one file per raw table (relative paths are relative to
            the directory ``kedro run`` starts in, the project root).
        format: ``parquet`` or ``csv``; the files' extension.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: Path
    format: Literal["parquet", "csv"]


class MissingTableFileError(FileNotFoundError):
    """No file for a raw table in the source folder."""


def endpoint_file_stem(spec: TableSpec) -> str:
    """The endpoint-style file stem of a table, e.g. ``equities_bars_daily`` for ``/equities/bars/daily``."""
    return spec.endpoint.strip("/").replace("/", "_").replace("-", "_")


def table_file(directory: Path, spec: TableSpec, file_format: str) -> Path:
    """The one file of ``spec`` in ``directory`` (raw-name or endpoint-style name).

    Raises:
        MissingTableFileError: when neither name exists (both names are listed).
        RawTableError: when both exist.
    """
    candidates = [
        directory / f"{spec.raw_name}.{file_format}",
        directory / f"{endpoint_file_stem(spec)}.{file_format}",
    ]
    present = [p for p in candidates if p.is_file()]
    if not present:
        raise MissingTableFileError(
            f"files source: no file for table '{spec.raw_name}' (J-Quants {spec.endpoint}) in {directory}; "
            f"expected {candidates[0].name} or {candidates[1].name}"
        )
    if len(present) > 1:
        raise RawTableError(
            f"files source: table '{spec.raw_name}' has two files, {present[0]} and {present[1]}; keep one"
        )
    return present[0]


def read_table_file(path: Path, spec: TableSpec, file_format: Literal["parquet", "csv"]) -> pl.DataFrame:
    """Read one table file and cast it to ``spec``'s raw columns and dtypes.

    Raises:
        RawTableError: naming the file, table and column when the file cannot be read, a
            column is absent or a value cannot be parsed.
    """
    try:
        if file_format == "csv":
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
            frame = frame.rename({c: c.removeprefix(_BOM) for c in frame.columns})
        else:
            frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise RawTableError(f"{path} (table '{spec.raw_name}'): cannot be read as {file_format}: {exc}") from exc
    return cast_to_spec(frame, spec, str(path))


def read_file_tables(params: FilesSourceParams) -> dict[str, pl.DataFrame]:
    """Read every raw table of ``tables.TABLES`` from ``params.directory``.

    Returns:
        ``{raw_name: table}`` in ``tables.TABLES`` order, each with its spec's raw columns and dtypes.

    Raises:
        NotADirectoryError: when the folder does not exist.
        MissingTableFileError: naming the table and the file names looked for.
        RawTableError: naming file, table and column of an absent column or unparsable value,
            or the margin table when the calendar file ends before a publication day.
    """
    directory = params.directory
    if not directory.is_dir():
        raise NotADirectoryError(f"files source: ingestion.files.directory {directory} is not a folder")
    paths = {spec.raw_name: table_file(directory, spec, params.format) for spec in tables.TABLES}
    result: dict[str, pl.DataFrame] = {}
    for spec in tables.TABLES:
        started = time.perf_counter()
        result[spec.raw_name] = read_table_file(paths[spec.raw_name], spec, params.format)
        logger.info(
            "files: %s -> %s: %d rows, %.1f s",
            paths[spec.raw_name].name, spec.raw_name, result[spec.raw_name].height, time.perf_counter() - started,
        )
    return close_known_gaps(result, result[tables.TRADING_CALENDAR.raw_name], f"files {directory}")
