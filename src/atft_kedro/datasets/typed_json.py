"""JSON documents handed to nodes as typed objects: the feature manifest, the splits, the normalizer.

Each file is the object's JSON form written as indented JSON (the format ``AtomicJSONDataset``
writes), saved whole or not at all. A load validates the document through the object's own
model, so a node never sees a hand-edited or truncated file and never re-parses a dict; the
errors name the file and the pipeline that rebuilds it.

Catalog::

    splits:
      type: atft_kedro.datasets.SplitsDataset
      filepath: data/05_model_input/splits.json
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from kedro.io.core import DatasetError
from pydantic import BaseModel, ValidationError

from atft_kedro.datasets.atomic import AtomicJSONDataset
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.model_input import Splits


class TypedJSONDataset(AtomicJSONDataset):
    """Base: saves a ``model`` instance atomically as JSON (``AtomicJSONDataset``'s format); loads and validates it.

    Subclasses set ``model`` (a pydantic model), ``document`` (its name in messages) and
    ``pipeline`` (the pipeline that writes it).
    """

    model: ClassVar[type[BaseModel]]
    document: ClassVar[str]
    pipeline: ClassVar[str]

    def load(self) -> Any:
        rebuild = f"kedro run --pipelines {self.pipeline}"
        if not self._path.exists():
            raise DatasetError(f"{self._path} does not exist: run {rebuild} first")
        try:
            data = json.loads(self._path.read_text())
        except json.JSONDecodeError as error:
            raise DatasetError(f"{self._filepath} is not JSON ({error}); rebuild it: {rebuild}") from error
        try:
            return self.model.model_validate(data)
        except ValidationError as error:
            raise DatasetError(
                f"{self._filepath} is not a valid {self.document} ({error.error_count()} problem(s), first: "
                f"{error.errors()[0]['msg']}); rebuild it: {rebuild}"
            ) from error

    def save(self, data: Any) -> None:
        if not isinstance(data, self.model):
            raise DatasetError(
                f"{self._filepath}: expected a {self.model.__name__} to save, got {type(data).__name__}")
        super().save(data.model_dump(mode="json"))


class FeatureManifestDataset(TypedJSONDataset):
    """``feature_manifest``: a ``FeatureManifest`` (names unique, no target columns, hash matching the content)."""

    model = FeatureManifest
    document = "feature manifest"
    pipeline = "feature_engineering"


class SplitsDataset(TypedJSONDataset):
    """``splits`` and ``fold_{k}.splits``: ``Splits`` (train -> validation -> test, purge, embargo, folds)."""

    model = Splits
    document = "splits document"
    pipeline = "normalization"


class NormalizerDataset(TypedJSONDataset):
    """``normalizer`` and ``fold_{k}.normalizer``: a ``NormalizerState`` (checked consistent on load)."""

    model = NormalizerState
    document = "normalizer"
    pipeline = "normalization"
