"""The ``features`` table on disk: the group files plus one file of the assembly's own columns.

The feature groups are already Parquet files (``fe_{group}_features``, written by the group
nodes). ``FeatureTableDataset`` does not copy them into a second wide file: it saves a
folder holding

- ``assembled.parquet``: Date, Code and the columns the assembly itself computes (the
  interactions and cross-sectional z-scores), streamed block by block;
- ``table.json``: the feature order, the block size and, for each group, its file (relative
  to the folder), its columns, row count and size in bytes.

It loads a ``pl.LazyFrame`` of the whole table (``FeatureTable.lazy``: a query reads only
the files holding its columns, and a Date/Code filter only the days it selects). A plain
``pl.DataFrame`` or ``LazyFrame`` saved here (features built elsewhere) is stored whole in
``assembled.parquet`` with no group files.

A group file that was rewritten after the table was saved (another row count, size or
columns) makes the load fail, naming the file and the command that rebuilds the table: the
derived columns would no longer match it. A group frame that is not a plain scan of its file
at ``group_filepath`` (a frame kept in memory by another catalog) is written there first.
The folder is replaced whole (``atomic_target``), so a failed save leaves the previous table.

Catalog::

    features:
      type: atft_kedro.datasets.feature_table.FeatureTableDataset
      filepath: data/04_feature/features
      group_filepath: data/04_feature/groups/{group}.parquet   # as the fe_{group}_features factory
      save_args: {compression: lz4, row_group_size: 65536}
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
from kedro.io.core import AbstractDataset, DatasetError

from atft_kedro.datasets.atomic import atomic_target, remove_stale_staging
from atft_kedro.datasets.lazy_parquet import LazyParquetDataset
from atft_kedro.features.assembly import DERIVED, KEYS, DerivedPart, FeatureTable, FramePart

logger = logging.getLogger(__name__)

FORMAT = "atft-kedro feature table 1"
OWN_FILE = "assembled.parquet"
INDEX_FILE = "table.json"
_REBUILD = "kedro run --pipelines feature_engineering"
_SCAN = re.compile(r"^Parquet SCAN \[(?P<path>.+)\]$")


def scanned_file(frame: pl.LazyFrame) -> Path | None:
    """The file ``frame`` is a plain ``pl.scan_parquet`` of (no other operation), else None."""
    lines = frame.explain(optimized=False).splitlines()
    match = _SCAN.match(lines[0]) if lines else None
    if match is None or any(not (line.startswith("PROJECT */") or line.startswith("ESTIMATED ROWS"))
                            for line in lines[1:]):
        return None
    return Path(match.group("path"))


class FeatureTableDataset(AbstractDataset[FeatureTable, pl.LazyFrame]):
    """Saves a ``FeatureTable`` as its own columns plus references to the group files; loads a LazyFrame."""

    def __init__(
        self,
        filepath: str,
        group_filepath: str,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if "{group}" not in group_filepath:
            raise DatasetError(f"group_filepath must contain '{{group}}', got {group_filepath!r}")
        self._filepath = PurePosixPath(filepath)
        self._group_filepath = group_filepath
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    @property
    def _path(self) -> Path:
        return Path(str(self._filepath))

    def _group_path(self, group: str) -> Path:
        return Path(self._group_filepath.format(group=group))

    def save(self, data: FeatureTable | pl.DataFrame | pl.LazyFrame) -> None:
        """Write the table's own columns and index (a ``FeatureTable``), or a whole frame as its own file.

        A plain DataFrame or LazyFrame (features built elsewhere, tests) is stored whole in
        ``assembled.parquet``, sorted by (Date, Code), with no group files; it is then read in
        one block (a Date filter still reads only the days it selects).
        """
        if isinstance(data, pl.DataFrame | pl.LazyFrame):
            own = data.lazy().sort(*KEYS)
            names = [c for c in own.collect_schema().names() if c not in KEYS]
            columns, groups, block_rows = names, [], None
        elif isinstance(data, FeatureTable):
            groups = [self._group_file(part, data.height) for part in data.parts if isinstance(part, FramePart)]
            columns = [c for part in data.parts if isinstance(part, DerivedPart) for c in part.columns]
            own, names, block_rows = data.lazy().select(*KEYS, *columns), list(data.names), data.block_rows
        else:
            raise DatasetError(f"{self._path}: expected a FeatureTable (assemble_features) or a polars frame, "
                               f"got {type(data).__name__}")
        with atomic_target(self._path, "saving") as staging:
            staging.mkdir()
            own.sink_parquet(staging / OWN_FILE, **self._save_args)
            rows = pl.scan_parquet(staging / OWN_FILE).select(pl.len()).collect().item()
            index = {
                "format": FORMAT,
                "names": names,
                "block_rows": block_rows or max(rows, 1),
                "rows": rows,
                "derived": columns,
                "groups": groups,
            }
            (staging / INDEX_FILE).write_text(json.dumps(index, indent=2))

    def _group_file(self, part: FramePart, height: int) -> dict[str, Any]:
        """The group's file entry; the frame is written there first unless it is a plain scan of that file."""
        path = self._group_path(part.name)
        scanned = scanned_file(part.frame)
        if scanned is None or scanned.resolve() != path.resolve():
            logger.info("features: group '%s' is not the file %s; writing it there", part.name, path)
            LazyParquetDataset(str(path), save_args=self._save_args).save(part.frame)
        entry = self._describe_file(part.name, path)
        if entry["rows"] != height or entry["columns"] != part.columns:
            raise DatasetError(f"features: group file {path} has {entry['rows']} rows and columns "
                               f"{entry['columns'][:5]}..., the table {height} rows and {part.columns[:5]}...; "
                               f"rebuild: {_REBUILD}")
        return entry

    def _describe_file(self, group: str, path: Path) -> dict[str, Any]:
        """What a group file was when the table was saved (checked on load)."""
        return {
            "group": group,
            "file": os.path.relpath(path, self._path),
            "columns": list(pl.read_parquet_schema(path)),
            "rows": pl.scan_parquet(path).select(pl.len()).collect().item(),
            "bytes": path.stat().st_size,
        }

    def load(self) -> pl.LazyFrame:
        return self.load_table().lazy()

    def load_table(self) -> FeatureTable:
        """The saved table as a ``FeatureTable`` (group files and ``assembled.parquet`` scanned)."""
        if not self._path.exists():
            remove_stale_staging(self._path)  # puts back a folder an interrupted swap left aside
        index_path = self._path / INDEX_FILE
        if not index_path.exists():
            raise DatasetError(f"{self._path} holds no feature table: run {_REBUILD} first")
        index = json.loads(index_path.read_text())
        if index.get("format") != FORMAT:
            raise DatasetError(f"{index_path} is not a feature table of this version ({index.get('format')!r}); "
                               f"rebuild it: {_REBUILD}")
        parts = []
        for entry in index["groups"]:
            path = self._path / entry["file"]
            self._check_unchanged(entry, path)
            parts.append(FramePart(entry["group"], pl.scan_parquet(path)))
        own = self._path / OWN_FILE
        keys = pl.read_parquet(own, columns=list(KEYS))
        if index["derived"]:
            parts.append(FramePart(DERIVED, pl.scan_parquet(own).select(index["derived"])))
        return FeatureTable(keys=keys, parts=tuple(parts), names=tuple(index["names"]),
                            block_rows=int(index["block_rows"]))

    def _check_unchanged(self, entry: dict[str, Any], path: Path) -> None:
        """Raise unless the group file is the one the table was saved with."""
        if not path.exists():
            raise DatasetError(f"features ({self._path}): its group file {path} is missing; rebuild: {_REBUILD}")
        found = {"bytes": path.stat().st_size, "columns": list(pl.read_parquet_schema(path))}
        changed = [k for k, v in found.items() if v != entry[k]]
        if changed:
            raise DatasetError(
                f"features ({self._path}): group file {path} changed after the table was assembled "
                f"({', '.join(changed)} differ), so its derived columns may not match it; rebuild: {_REBUILD}")

    def _exists(self) -> bool:
        return (self._path / INDEX_FILE).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "group_filepath": self._group_filepath,
                "save_args": self._save_args}
