"""A Parquet table that is loaded lazily and saved by streaming, whole or absent.

``LazyParquetDataset`` loads a ``pl.LazyFrame`` (``pl.scan_parquet``): a consumer reads only
the columns and row groups its query needs, so a table larger than memory can be used. It
saves a ``pl.DataFrame`` (``write_parquet``) or a ``pl.LazyFrame`` (``sink_parquet``, Polars'
streaming engine: the frame is produced and written batch by batch, never whole in memory).
The file is written to a staging sibling and renamed over the target
(:func:`atft_kedro.datasets.atomic.atomic_target`): a failed or killed save leaves the
previous table whole.

Catalog::

    fe_px_features:
      type: atft_kedro.datasets.lazy_parquet.LazyParquetDataset
      filepath: data/04_feature/groups/px.parquet
      save_args: {compression: lz4, row_group_size: 65536}

``save_args`` go to ``write_parquet`` / ``sink_parquet`` (``compression``, ``row_group_size``,
``statistics``, ...), ``load_args`` to ``scan_parquet``.

``LazySchemaValidator`` checks such a LazyFrame against a pandera polars schema without
collecting it: the columns and dtypes on an empty frame of its schema, and the schema's
``unique`` columns on those columns alone.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
from kedro.io.core import AbstractDataset, DatasetError
from kedro.utils import load_obj

from atft_kedro.datasets.atomic import atomic_target, remove_stale_staging


class LazyParquetDataset(AbstractDataset[pl.DataFrame | pl.LazyFrame, pl.LazyFrame]):
    """Loads ``pl.scan_parquet(filepath)``; saves an eager or lazy frame atomically (lazy: streamed)."""

    def __init__(
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = PurePosixPath(filepath)
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    @property
    def _path(self) -> Path:
        return Path(str(self._filepath))

    def load(self) -> pl.LazyFrame:
        if not self._path.exists():
            remove_stale_staging(self._path)  # puts back a file an interrupted swap left aside
        if not self._path.exists():
            raise DatasetError(f"{self._path} does not exist: run the pipeline that writes it first")
        return pl.scan_parquet(self._path, **self._load_args)

    def save(self, data: pl.DataFrame | pl.LazyFrame) -> None:
        if not isinstance(data, pl.DataFrame | pl.LazyFrame):
            raise DatasetError(
                f"{self._path}: expected a polars DataFrame or LazyFrame to save, got {type(data).__name__}"
            )
        with atomic_target(self._path, "tmp") as staging:
            if isinstance(data, pl.LazyFrame):
                data.sink_parquet(staging, **self._save_args)
            else:
                data.write_parquet(staging, **self._save_args)

    def _exists(self) -> bool:
        return self._path.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "load_args": self._load_args, "save_args": self._save_args}


class LazySchemaValidator:
    """A Kedro dataset validator: a pandera polars schema checked on a LazyFrame without collecting it.

    Pandera validates a LazyFrame at schema depth only (and Kedro warns that it does). This
    validator checks the same schema on an empty DataFrame of the frame's schema (column
    names, dtypes, strictness) and then the schema's ``unique`` columns by collecting those
    columns alone. An eager DataFrame is validated by pandera in full; any other object with a
    ``lazy()`` method (``features.assembly.FeatureTable``) is checked on that LazyFrame.

    Catalog: ``validator: {class: atft_kedro.datasets.lazy_parquet.LazySchemaValidator,
    options: {schema: atft_kedro.schemas.feature.FEATURES}, 'on': [save]}``.
    """

    def __init__(self, schema: str) -> None:
        self._name = schema
        self._schema = load_obj(schema)

    def validate(self, data: Any) -> Any:
        if isinstance(data, pl.DataFrame):
            return self._schema.validate(data)
        lazy = data if isinstance(data, pl.LazyFrame) else getattr(data, "lazy", lambda: None)()
        if not isinstance(lazy, pl.LazyFrame):
            raise TypeError(f"{self._name}: expected a polars DataFrame or LazyFrame (or a table with .lazy()), "
                            f"got {type(data).__name__}")
        self._check_lazy(lazy)
        return data

    def _check_lazy(self, data: pl.LazyFrame) -> None:
        self._schema.validate(pl.DataFrame(schema=data.collect_schema()))
        unique = self._schema.unique
        if unique:
            columns = [unique] if isinstance(unique, str) else list(unique)
            keys = data.select(columns).collect()
            dupes = keys.filter(keys.is_duplicated())
            if dupes.height:
                raise ValueError(
                    f"table {self._schema.name or self._name}: {dupes.height} rows share their {columns} "
                    f"with another row, e.g. {dupes.unique().sort(columns).head(5).to_dicts()}"
                )
