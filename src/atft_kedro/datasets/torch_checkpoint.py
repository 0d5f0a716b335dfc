"""A model checkpoint (a dict of tensors and plain values) saved with ``torch.save``, atomically."""

from __future__ import annotations

import io

import torch
from kedro.io.core import DatasetError

from atft_kedro.datasets.atomic import LocalFileDataset, atomic_write_bytes


class TorchCheckpointDataset(LocalFileDataset):
    """Save/load a checkpoint dict. Loading uses ``weights_only=True``: only tensors and plain
    Python values (dicts, lists, strings, numbers) are accepted, so a checkpoint can never run code.
    """

    def load(self) -> dict:
        if not self._path.exists():
            raise DatasetError(
                f"no checkpoint at {self._path}: run `kedro run --pipelines training` first"
            )
        return torch.load(self._path, map_location="cpu", weights_only=True)

    def save(self, data: dict) -> None:
        if not isinstance(data, dict):
            raise DatasetError(f"a checkpoint must be a dict, got {type(data).__name__}")
        buffer = io.BytesIO()
        torch.save(data, buffer)
        atomic_write_bytes(self._path, buffer.getvalue())
