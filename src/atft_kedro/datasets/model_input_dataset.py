"""``ModelInputDataset``: a ``ModelInput`` as a directory of ``.npy`` files plus ``meta.json``.

Layout of ``<filepath>/``::

    features.npy   [D, N, F] float32 | float16
    mask.npy       [D, N]    bool
    targets.npy    [D, N, H] float32
    dates.npy      [D]       datetime64[D]
    codes.npy      [N]       unicode
    horizons.npy   [H]       int64
    meta.json      format version, feature_names, manifest_hash, and every array's shape and dtype

Saves take a ``ModelInput`` (arrays in memory) or a ``ModelInputBlocks`` (the normalization
node's result, ``atft_kedro.normalization.dense``): its features are computed a block of
days at a time and each block is appended to ``features.npy`` as it comes (header first,
then the blocks in C order), so the whole features array is never in memory.

Loads memory-map every array (``np.load(mmap_mode="r")``, read-only, no copy). Saves are
whole or absent, through the project's one atomic-write helper
(:func:`atft_kedro.datasets.atomic.atomic_target`): the arrays are written and fsync'ed into a
temporary sibling directory ``.<name>.writing-<pid>-<id>``; then the old directory is renamed
to an ``.<name>.old-`` sibling, the new one renamed to ``<name>``, and the old one removed. A
crash while writing leaves the old model input untouched; an error between the two renames
puts the old one back at once; a kill between them leaves it whole as the ``old`` sibling,
which the next ``load`` or save renames back (with a warning). A ``.writing-`` folder left by
a killed save is never loaded and is removed by the next save
(:func:`atft_kedro.datasets.atomic.remove_stale_staging`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from kedro.io.core import AbstractDataset, DatasetError

from atft_kedro.datasets.atomic import atomic_target, remove_stale_staging
from atft_kedro.normalization.dense import ModelInputBlocks
from atft_kedro.schemas.model_input import ModelInput

FORMAT_VERSION = 1
ARRAYS = ("features", "mask", "targets", "dates", "codes", "horizons")
META_FILE = "meta.json"


class ModelInputDataset(AbstractDataset[ModelInput | ModelInputBlocks, ModelInput]):
    """Saves a ``ModelInput`` (or ``ModelInputBlocks``, block by block) atomically as ``.npy`` files; loads it memory-mapped.

    Catalog::

        model_input:
          type: atft_kedro.datasets.ModelInputDataset
          filepath: data/05_model_input/model_input
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    @property
    def _path(self) -> Path:
        return Path(str(self._filepath))

    def load(self) -> ModelInput:
        path = self._path
        if not (path / META_FILE).exists():
            remove_stale_staging(path)  # puts back the previous model input of a save killed between its renames
        if not (path / META_FILE).exists():
            raise DatasetError(f"model input {path} does not exist: run the normalization pipeline first")
        return read_model_input(path)

    def save(self, data: ModelInput | ModelInputBlocks) -> None:
        if not isinstance(data, ModelInput | ModelInputBlocks):
            raise DatasetError(
                f"{self._path}: expected a ModelInput or ModelInputBlocks to save, got {type(data).__name__}")
        write_model_input_atomically(data, self._path)

    def _exists(self) -> bool:
        return (self._path / META_FILE).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


def _shape_and_dtype(data: ModelInput | ModelInputBlocks, name: str) -> tuple[tuple[int, ...], np.dtype]:
    if name == "features" and isinstance(data, ModelInputBlocks):
        return data.features_shape, data.dtype
    array = getattr(data, name)
    return array.shape, array.dtype


def _meta(data: ModelInput | ModelInputBlocks) -> dict[str, Any]:
    arrays = {}
    for name in ARRAYS:
        shape, dtype = _shape_and_dtype(data, name)
        arrays[name] = {"shape": list(shape), "dtype": dtype.str}
    return {
        "format_version": FORMAT_VERSION,
        "manifest_hash": data.manifest_hash,
        "feature_names": list(data.feature_names),
        "arrays": arrays,
    }


def write_feature_blocks(data: ModelInputBlocks, file: Path) -> None:
    """Write the features of ``data`` to the ``.npy`` file ``file``: the header, then each block as it comes.

    Raises:
        DatasetError: the blocks did not cover the array's days in order.
    """
    shape, dtype = data.features_shape, data.dtype
    day_bytes = shape[1] * shape[2] * dtype.itemsize
    with open(file, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
        start = handle.tell()
        expected_day = 0
        for days, cube in data.feature_blocks():  # a loop over blocks of days
            if days.start != expected_day or cube.shape != (days.stop - days.start, *shape[1:]):
                raise DatasetError(f"{file}: block of days {days} with shape {cube.shape} out of order")
            handle.write(np.ascontiguousarray(cube, dtype=dtype).data)
            expected_day = days.stop
        if handle.tell() - start != shape[0] * day_bytes:
            raise DatasetError(
                f"{file}: wrote {handle.tell() - start} bytes of features, expected {shape[0] * day_bytes}")
        handle.flush()
        os.fsync(handle.fileno())


def write_model_input_atomically(data: ModelInput | ModelInputBlocks, path: Path) -> None:
    """Write ``data`` to directory ``path`` so that it is either the old or the new model input, never a mix."""
    with atomic_target(path, "writing") as staging:
        staging.mkdir()
        for name in ARRAYS:
            if name == "features" and isinstance(data, ModelInputBlocks):
                write_feature_blocks(data, staging / "features.npy")
                continue
            array = np.ascontiguousarray(getattr(data, name))
            with open(staging / f"{name}.npy", "wb") as handle:
                np.save(handle, array, allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
        with open(staging / META_FILE, "w") as handle:
            json.dump(_meta(data), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())


def read_model_input(path: Path) -> ModelInput:
    """Memory-map the model input in directory ``path``, checking every array against ``meta.json``."""
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"model input {path}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}; "
            "rebuild it with the normalization pipeline"
        )
    arrays = {}
    for name in ARRAYS:
        file = path / f"{name}.npy"
        expected = meta["arrays"][name]
        size = int(np.prod(expected["shape"]))
        arrays[name] = (
            np.load(file, mmap_mode="r", allow_pickle=False)
            if size > 0
            else np.load(file, allow_pickle=False)
        )
        got = {"shape": list(arrays[name].shape), "dtype": arrays[name].dtype.str}
        if got != expected:
            raise DatasetError(f"model input {file}: {got} but meta.json says {expected}")
    return ModelInput(
        features=arrays["features"],
        mask=arrays["mask"],
        targets=arrays["targets"],
        dates=arrays["dates"],
        codes=arrays["codes"],
        horizons=arrays["horizons"],
        feature_names=tuple(meta["feature_names"]),
        manifest_hash=meta["manifest_hash"],
    )
