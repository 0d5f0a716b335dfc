"""The ``files`` source: raw tables from a folder of J-Quants v2-shaped Parquet or CSV files.

Each raw table comes from one file or from one folder of files, with the J-Quants API v2
field names as columns (extra columns are ignored). A table's file or folder may be named
either way:

* after the raw table: ``<raw_name>``, e.g. ``raw_daily_bars.parquet``,
  ``raw_equities_master.csv`` (what ``kedro run`` writes to ``data/01_raw``);
* after its endpoint: the path without the leading slash, ``/`` and ``-`` replaced by
  ``_``, e.g. ``equities_bars_daily.csv`` for ``/equities/bars/daily``,
  ``markets_margin_interest.parquet`` for ``/markets/margin-interest``.

With ``format: csv`` a file may also be gzip-compressed (``.csv.gz``); with ``format:
parquet`` it ends in ``.parquet``. A folder of that name (e.g. ``equities_bars_daily/``
holding monthly bulk downloads ``2024-01.csv.gz``, ``2024-02.csv.gz``, ...) is read file by
file in name order and concatenated; rows repeated across files are de-duplicated on the
table's keys: an identical repeat is dropped, and when two files disagree on a key the row
of the file that sorts last (the newer download) is kept. Both counts are logged. Two
candidates for one table in the folder (two names, or a file and a folder) is an error.

A required table (calendar, master, daily bars, TOPIX: ``TableSpec.required``) without a
file is an error. Any other table may have no file: it is then read as an empty table with
its full schema (the ingestion pipeline warns once that it is empty).

CSV files are read as text (UTF-8, a byte-order mark is tolerated) and parsed by
:func:`atft_kedro.sources.raw_cast.cast_to_spec`: dates ``YYYY-MM-DD``, numbers as decimals,
codes kept as text (``"13010"``, sector ``"0050"`` keeps its leading zero). Parquet columns
keep their types and are cast the same way. An absent column or an unparsable value raises
an error naming the file, the table and the column.

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

from atft_kedro.schemas import tables
from atft_kedro.schemas.strict import StrictModel
from atft_kedro.schemas.tables import TableSpec
from atft_kedro.sources.quirks import close_known_gaps
from atft_kedro.sources.raw_cast import RawTableError, cast_to_spec

logger = logging.getLogger(__name__)

_BOM = "\ufeff"


class FilesSourceParams(StrictModel):
    """``ingestion.files``: the folder of raw table files.

    Attributes:
        directory: folder holding one file (or one folder of files) per raw table (relative
            paths are relative to the directory ``kedro run`` starts in, the project root).
        format: ``parquet`` (``.parquet`` files) or ``csv`` (``.csv`` or gzip ``.csv.gz`` files).
    """

    directory: Path
    format: Literal["parquet", "csv"]


class MissingTableFileError(FileNotFoundError):
    """No file for a required raw table in the source folder."""


#: File name endings read for each ``format``.
EXTENSIONS: dict[str, tuple[str, ...]] = {"parquet": (".parquet",), "csv": (".csv", ".csv.gz")}


def endpoint_file_stem(spec: TableSpec) -> str:
    """The endpoint-style file stem of a table, e.g. ``equities_bars_daily`` for ``/equities/bars/daily``."""
    return spec.endpoint.strip("/").replace("/", "_").replace("-", "_")


def _data_files(folder: Path, file_format: str) -> list[Path]:
    """The files of ``file_format`` directly in ``folder``, in name order (hidden files ignored)."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.endswith(EXTENSIONS[file_format])
    )


def table_files(directory: Path, spec: TableSpec, file_format: str) -> tuple[Path, list[Path]]:
    """The file, or the folder and its files, holding ``spec`` in ``directory``.

    Returns:
        ``(where, files)``: the file or folder found and the files to read in order; ``files``
        is empty when the table has neither a file nor a non-empty folder.

    Raises:
        RawTableError: when the table has more than one candidate (names or file and folder).
    """
    stems = (spec.raw_name, endpoint_file_stem(spec))
    candidates = [directory / f"{stem}{ext}" for stem in stems for ext in EXTENSIONS[file_format]]
    present: list[tuple[Path, list[Path]]] = [(p, [p]) for p in candidates if p.is_file()]
    for stem in stems:
        folder = directory / stem
        if folder.is_dir():
            files = _data_files(folder, file_format)
            if files:
                present.append((folder, files))
    if len(present) > 1:
        raise RawTableError(
            f"files source: table '{spec.raw_name}' has {len(present)} candidates, "
            f"{' and '.join(str(p) for p, _ in present)}; keep one"
        )
    if not present:
        return directory / f"{stems[0]}{EXTENSIONS[file_format][0]}", []
    return present[0]


def _expected_names(spec: TableSpec, file_format: str) -> str:
    stems = (spec.raw_name, endpoint_file_stem(spec))
    names = [f"{stem}{ext}" for stem in stems for ext in EXTENSIONS[file_format]]
    return ", ".join(names) + f" or a folder {stems[0]}/ or {stems[1]}/ of such files"


def read_table_file(path: Path, spec: TableSpec, file_format: Literal["parquet", "csv"]) -> pl.DataFrame:
    """Read one table file (``.csv.gz`` decompressed) and cast it to ``spec``'s raw columns and dtypes.

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


def combine_files(frames: list[pl.DataFrame], spec: TableSpec, where: str) -> pl.DataFrame:
    """Concatenate the tables of several files of one table, de-duplicated on the table's keys.

    Identical rows are kept once; when files disagree on a key, the rows of the last file
    (name order: the newer download) are kept. Rows of one file that share a key are left
    as they are (the table's schema refuses them with their keys).

    Args:
        frames: one table per file, in file-name order, each with the spec's raw columns.
        spec: the table's contract (``raw_keys``).
        where: the folder, for the log.
    """
    if len(frames) == 1:
        return frames[0]
    keys = spec.raw_keys
    stacked = pl.concat(
        [frame.with_columns(pl.lit(k, dtype=pl.UInt32).alias("_file")) for k, frame in enumerate(frames)],
        how="vertical",
    )
    unique = stacked.unique(subset=spec.raw_columns, keep="first", maintain_order=True)
    latest = unique.filter(pl.col("_file") == pl.col("_file").max().over(keys))
    repeated, superseded = stacked.height - unique.height, unique.height - latest.height
    logger.info(
        "files: %s -> %s: %d files, %d rows; dropped %d identical repeated rows and %d rows superseded by a "
        "later file (same keys %s)", where, spec.raw_name, len(frames), stacked.height, repeated, superseded, keys,
    )
    return latest.drop("_file")


def read_file_tables(params: FilesSourceParams) -> dict[str, pl.DataFrame]:
    """Read every raw table of ``tables.TABLES`` from ``params.directory``.

    Returns:
        ``{raw_name: table}`` in ``tables.TABLES`` order, each with its spec's raw columns and dtypes
        (an optional table without a file is empty, with its full schema).

    Raises:
        NotADirectoryError: when the folder does not exist.
        MissingTableFileError: naming a required table and the file names looked for.
        RequiredTableError: naming a required table whose file has no rows.
        RawTableError: naming file, table and column of an absent column or unparsable value,
            the table when it has two candidate files, or the margin table when the calendar
            file ends before a publication day.
    """
    directory = params.directory
    if not directory.is_dir():
        raise NotADirectoryError(f"files source: ingestion.files.directory {directory} is not a folder")
    found = {spec.raw_name: table_files(directory, spec, params.format) for spec in tables.TABLES}
    missing_required = [spec for spec in tables.TABLES if spec.required and not found[spec.raw_name][1]]
    if missing_required:
        raise MissingTableFileError(
            "files source: no file for required "
            + "; ".join(
                f"table '{spec.raw_name}' (J-Quants {spec.endpoint}) in {directory}; expected "
                f"{_expected_names(spec, params.format)}"
                for spec in missing_required
            )
        )
    result: dict[str, pl.DataFrame] = {}
    for spec in tables.TABLES:
        started = time.perf_counter()
        where, files = found[spec.raw_name]
        if not files:
            logger.info("files: no file for optional table '%s' in %s (looked for %s): read as empty",
                        spec.raw_name, directory, _expected_names(spec, params.format))
            result[spec.raw_name] = spec.empty_raw()
            continue
        frames = [read_table_file(path, spec, params.format) for path in files]
        result[spec.raw_name] = combine_files(frames, spec, str(where))
        logger.info(
            "files: %s -> %s: %d rows, %.1f s",
            where.name, spec.raw_name, result[spec.raw_name].height, time.perf_counter() - started,
        )
    tables.check_required_tables(result, f"files source {directory}")
    return close_known_gaps(result, result[tables.TRADING_CALENDAR.raw_name], f"files {directory}")
