"""A model checkpoint (a dict of tensors and plain values) saved with ``torch.save``, atomically."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from kedro.io.core import AbstractDataset, DatasetError

from atft_kedro.datasets.atomic import atomic_write_bytes


class TorchCheckpointDataset(AbstractDataset[dict, dict]):
    """Save/load a checkpoint dict. Loading uses ``weights_only=True``: only tensors and plain
    Python values (dicts, lists, strings, numbers) are accepted, so a checkpoint can never run code.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> dict:
        path = Path(self._filepath)
        if not path.exists():
            raise DatasetError(
                f"no checkpoint at {path}: run `kedro run --pipelines training` first"
            )
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, data: dict) -> None:
        if not isinstance(data, dict):
            raise DatasetError(f"a checkpoint must be a dict, got {type(data).__name__}")
        buffer = io.BytesIO()
        torch.save(data, buffer)
        atomic_write_bytes(Path(self._filepath), buffer.getvalue())

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
