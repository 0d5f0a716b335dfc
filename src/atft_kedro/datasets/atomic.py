"""Datasets whose writes are whole or absent.

A crash while saving must never leave a half-written file in place of the previous
good one. These datasets write to a temporary sibling first and then ``os.replace``
it over the target, which is atomic on a local filesystem.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str
from kedro_datasets.polars import EagerPolarsDataset


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class AtomicParquetDataset(EagerPolarsDataset):
    """A Polars Parquet table saved atomically (``file_format`` is always ``parquet``).

    Catalog: ``type: atft_kedro.datasets.atomic.AtomicParquetDataset`` with ``filepath``;
    ``load_args``/``save_args`` go to ``pl.read_parquet``/``DataFrame.write_parquet``.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("file_format", "parquet")
        if kwargs["file_format"] != "parquet":
            raise DatasetError("AtomicParquetDataset only writes parquet")
        super().__init__(**kwargs)

    def save(self, data: pl.DataFrame) -> None:
        if not isinstance(data, pl.DataFrame):
            raise DatasetError(
                f"{self._filepath}: expected a polars DataFrame to save, got {type(data).__name__}"
            )
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol not in ("file", ""):
            super().save(data)
            return
        import io

        buf = io.BytesIO()
        data.write_parquet(buf, **self._save_args)
        atomic_write_bytes(Path(save_path), buf.getvalue())
        self._invalidate_cache()


class AtomicJSONDataset(AbstractDataset[Any, Any]):
    """A JSON document on local disk, saved atomically."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> Any:
        path = Path(self._filepath)
        if not path.exists():
            raise DatasetError(f"{path} does not exist: run the pipeline that writes it first")
        return json.loads(path.read_text())

    def save(self, data: Any) -> None:
        atomic_write_bytes(Path(self._filepath), json.dumps(data, indent=2, default=str).encode())

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class AtomicFileDataset(AbstractDataset[Any, Any]):
    """Make any file- or folder-writing Kedro dataset's save whole or absent.

    The wrapped dataset (``dataset:``, a catalog entry without ``filepath``) first saves
    into a hidden temporary sibling of ``filepath``; only a complete save is then renamed
    over the target (a folder, e.g. a ``MatplotlibDataset`` of several figures, is swapped
    in with two renames). A crash mid-save leaves the previous output intact.

    Catalog::

        baseline_models:
          type: atft_kedro.datasets.atomic.AtomicFileDataset
          filepath: data/06_models/baseline_models.pkl
          dataset: {type: pickle.PickleDataset, backend: pickle}
    """

    def __init__(self, dataset: dict[str, Any], filepath: str, metadata: dict[str, Any] | None = None) -> None:
        if "filepath" in dataset:
            raise DatasetError("AtomicFileDataset: give 'filepath' on the wrapper, not inside 'dataset'")
        self._dataset_config = dict(dataset)
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _inner(self, path: Path) -> AbstractDataset:
        return AbstractDataset.from_config(
            f"atomic:{self._filepath.name}", {**self._dataset_config, "filepath": str(path)}
        )

    def load(self) -> Any:
        return self._inner(self._filepath).load()

    def save(self, data: Any) -> None:
        import shutil

        target = self._filepath
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.saving-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True) if staging.is_dir() else staging.unlink(missing_ok=True)
        try:
            self._inner(staging).save(data)
            if staging.is_dir():
                retired = target.with_name(f".{target.name}.old-{os.getpid()}")
                if target.exists():
                    os.replace(target, retired)
                os.replace(staging, target)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True) if staging.is_dir() else staging.unlink(missing_ok=True)
            raise

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "dataset": self._dataset_config.get("type")}
