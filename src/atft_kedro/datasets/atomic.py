"""Datasets whose writes are whole or absent.

A crash while saving must never leave a half-written file in place of the previous
good one. Every atomic write of the project (these datasets, the model input folder of
``model_input_dataset``) goes through :func:`atomic_target`: write to a temporary sibling
first, then ``os.replace`` it over the target, which is atomic on a local filesystem.

Staging siblings are named ``.<target name>.<kind>-<pid>-<random>`` (:func:`staging_path`),
with ``kind`` one of ``tmp`` (a file being written), ``saving`` (a folder being written),
``old`` (the previous folder during a swap) and ``writing`` (a model input being written).
A process killed mid-save (SIGKILL, power loss) leaves its staging sibling behind; it is
never loaded, and the next save of the same target removes it
(:func:`remove_stale_staging`): a sibling is stale when the process that made it is gone.
If a kill fell between the two renames of a folder swap, the target is missing and the
``old`` sibling holds the previous output whole: it is renamed back instead of removed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str
from kedro_datasets.polars import EagerPolarsDataset

logger = logging.getLogger(__name__)

STAGING_KINDS = ("tmp", "saving", "old", "writing")
#: Staging siblings this process is using right now (never removed as stale).
_ACTIVE: set[Path] = set()


def staging_path(target: Path, kind: str) -> Path:
    """A fresh staging sibling of ``target``: ``.<name>.<kind>-<pid>-<random>``."""
    if kind not in STAGING_KINDS:
        raise ValueError(f"staging kind {kind!r} is not one of {STAGING_KINDS}")
    path = target.with_name(f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    _ACTIVE.add(path)
    return path


def release_staging(path: Path) -> None:
    """Forget ``path`` as in use (after it was renamed or removed)."""
    _ACTIVE.discard(path)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove the staging siblings of ``target`` left by writers that are gone.

    A sibling is stale when its process id is not running, or is this process but not in
    use by it (a container restarts processes with the same ids). If ``target`` is missing
    and a stale ``old`` sibling exists (a kill between the two renames of a folder swap), the
    newest such sibling is renamed back to ``target`` (with a warning) instead of being removed.

    Returns:
        The siblings removed or restored.
    """
    parent = target.parent
    if not parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.({'|'.join(STAGING_KINDS)})-(\d+)(?:-[0-9a-f]+)?$")
    stale: list[tuple[str, Path]] = []
    for sibling in parent.iterdir():
        match = pattern.match(sibling.name)
        if match is None or sibling in _ACTIVE:
            continue
        pid = int(match.group(2))
        if pid != os.getpid() and _process_alive(pid):
            continue
        stale.append((match.group(1), sibling))
    if not stale:
        return []
    olds = sorted((p for kind, p in stale if kind == "old"), key=lambda p: p.stat().st_mtime)
    if olds and not target.exists():
        os.replace(olds[-1], target)
        logger.warning("%s was missing after an interrupted save; restored the previous output from %s",
                       target, olds[-1].name)
    removed = [p for _, p in stale if p.exists()]
    for sibling in removed:
        _remove(sibling)
    if removed:
        logger.warning("%s: removed %d staging file(s) left by an interrupted save: %s",
                       target, len(removed), ", ".join(p.name for p in removed))
    return [p for _, p in stale]


def fsync_path(path: Path) -> None:
    """Flush ``path`` (a file or a folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_target(target: Path, kind: str = "tmp") -> Iterator[Path]:
    """The one way this project replaces an output: whole or not at all, file or folder.

    Yields a fresh staging sibling of ``target`` (:func:`staging_path` of ``kind``, not yet
    created); the caller writes a file or a folder there. When the block ends without an error,
    the staging file replaces ``target`` with one ``os.replace``; a staging folder is swapped in
    with two (``target`` to an ``old`` sibling, staging to ``target``), then the old one is
    removed. When the block raises (or a rename fails), the staging sibling is removed, the
    previous ``target`` is left (or put back) in place and the error propagates. Stale siblings
    of dead writers are removed first (:func:`remove_stale_staging`).

    Example::

        with atomic_target(path) as staging:
            staging.write_bytes(payload)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    staging = staging_path(target, kind)
    retired = staging_path(target, "old")
    try:
        yield staging
        if not staging.exists():
            raise FileNotFoundError(f"{target}: nothing was written to the staging path {staging.name}")
        if staging.is_dir():
            fsync_path(staging)
            if target.exists():
                os.replace(target, retired)
            os.replace(staging, target)
            _remove(retired)
        else:
            os.replace(staging, target)
        fsync_path(target.parent)
    except BaseException:
        if staging.exists():
            _remove(staging)
        if retired.exists() and not target.exists():
            os.replace(retired, target)
        raise
    finally:
        release_staging(staging)
        release_staging(retired)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` whole or not at all (:func:`atomic_target`)."""
    with atomic_target(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any file
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())


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


class LocalFileDataset(AbstractDataset[Any, Any]):
    """Base of the project's datasets of one local file: ``filepath`` (and kedro-viz ``metadata``).

    Subclasses define ``load`` and ``save`` (through :func:`atomic_write_bytes`).
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    @property
    def _path(self) -> Path:
        return Path(self._filepath)

    def _exists(self) -> bool:
        return self._path.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class AtomicJSONDataset(LocalFileDataset):
    """A JSON document on local disk, saved atomically."""

    def load(self) -> Any:
        if not self._path.exists():
            raise DatasetError(f"{self._path} does not exist: run the pipeline that writes it first")
        return json.loads(self._path.read_text())

    def save(self, data: Any) -> None:
        atomic_write_bytes(self._path, json.dumps(data, indent=2, default=str).encode())


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
        if not self._filepath.exists():
            remove_stale_staging(self._filepath)  # restores the previous output of an interrupted swap
        return self._inner(self._filepath).load()

    def save(self, data: Any) -> None:
        with atomic_target(self._filepath, "saving") as staging:
            self._inner(staging).save(data)

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "dataset": self._dataset_config.get("type")}
