"""``FeatureManifestDataset``: the feature manifest as a JSON file, handed to nodes as a ``FeatureManifest``.

The file is ``FeatureManifest.to_json_dict()`` written as indented JSON (the format
``AtomicJSONDataset`` writes), saved whole or not at all. A load validates the document
(names unique, no target columns, the hash matches the content), so a node never sees a
hand-edited or truncated manifest, and nodes take ``FeatureManifest`` rather than a dict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError
from pydantic import ValidationError

from atft_kedro.datasets.atomic import AtomicJSONDataset
from atft_kedro.schemas.manifest import FeatureManifest


class FeatureManifestDataset(AbstractDataset[FeatureManifest, FeatureManifest]):
    """Saves a ``FeatureManifest`` atomically as JSON; loads and validates it.

    Catalog::

        feature_manifest:
          type: atft_kedro.datasets.FeatureManifestDataset
          filepath: data/04_feature/feature_manifest.json
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._json = AtomicJSONDataset(filepath=filepath)
        self._filepath = filepath
        self.metadata = metadata

    def load(self) -> FeatureManifest:
        path = Path(self._filepath)
        if not path.exists():
            raise DatasetError(f"{path} does not exist: run kedro run --pipelines feature_engineering first")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise DatasetError(
                f"{self._filepath} is not JSON ({error}); rebuild it: kedro run --pipelines feature_engineering"
            ) from error
        try:
            return FeatureManifest.from_json_dict(data)
        except ValidationError as error:
            raise DatasetError(
                f"{self._filepath} is not a valid feature manifest ({error.error_count()} problem(s), first: "
                f"{error.errors()[0]['msg']}); rebuild it: kedro run --pipelines feature_engineering"
            ) from error

    def save(self, data: FeatureManifest) -> None:
        if not isinstance(data, FeatureManifest):
            raise DatasetError(
                f"{self._filepath}: expected a FeatureManifest to save, got {type(data).__name__}")
        self._json.save(data.to_json_dict())

    def _exists(self) -> bool:
        return self._json.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
