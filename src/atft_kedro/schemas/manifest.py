"""The feature manifest: the only definition of the model's inputs.

Written by the feature pipeline (``feature_manifest``, JSON), read by normalization,
training, evaluation and inference, and stored inside every checkpoint. Its ``hash``
is a content hash of the ordered feature specs: two manifests with the same hash
describe the same input columns in the same order.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, model_validator

from atft_kedro.schemas.strict import StrictModel

#: Column-name prefixes that may never be model inputs.
FORBIDDEN_INPUT_PREFIXES = ("target_", "exp_ret_")


class FeatureSpec(StrictModel):
    """One input column of the model."""

    name: str
    group: str = Field(description="feature group, e.g. 'px', 'tech', 'stmt'")
    dtype: Literal["float32"] = "float32"
    source: str = Field(description="canonical table(s) it is computed from")
    lag_days: int = Field(ge=0, description="trading days after the event before the value is known")
    description: str


class GroupStatus(StrictModel):
    """Whether a feature group is in the run, and why not if it is off."""

    name: str
    enabled: bool
    n_features: int = Field(ge=0)
    reason: str = ""


class FeatureManifest(StrictModel):
    """Ordered feature specs plus their content hash."""

    features: tuple[FeatureSpec, ...]
    groups: tuple[GroupStatus, ...] = ()
    hash: str = ""

    @model_validator(mode="after")
    def _check(self) -> FeatureManifest:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature manifest lists these names twice: {dupes}")
        leaked = [n for n in names if n.startswith(FORBIDDEN_INPUT_PREFIXES)]
        if leaked:
            raise ValueError(f"feature manifest lists targets/oracle columns as inputs: {leaked}")
        expected = content_hash(self.features)
        if self.hash and self.hash != expected:
            raise ValueError(
                f"feature manifest hash {self.hash!r} does not match its content ({expected!r})"
            )
        if not self.hash:
            object.__setattr__(self, "hash", expected)
        return self

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __len__(self) -> int:
        return len(self.features)

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_json_dict(cls, data: dict) -> FeatureManifest:
        return cls.model_validate(data)

    def require_same(self, other: FeatureManifest, what: str) -> None:
        """Raise if ``other`` describes different inputs, naming the differing features.

        Args:
            other: the manifest to compare with (e.g. the one inside a checkpoint).
            what: a phrase naming ``other`` for the message, e.g. "the checkpoint".
        """
        if self.hash == other.hash:
            return
        mine, theirs = self.names, other.names
        only_here = [n for n in mine if n not in set(theirs)]
        only_there = [n for n in theirs if n not in set(mine)]
        moved = [] if (only_here or only_there) else [n for n, m in zip(mine, theirs) if n != m][:10]
        raise ManifestMismatchError(
            f"feature manifest {self.hash[:12]} differs from {what}'s {other.hash[:12]}: "
            f"{len(only_here)} features only in the current features {only_here[:20]}, "
            f"{len(only_there)} only in {what} {only_there[:20]}"
            + (f", same names in another order starting at {moved}" if moved else "")
            + ". Rebuild the features or retrain so both use the same manifest."
        )


class ManifestMismatchError(ValueError):
    """Features and a model/normalizer were built from different feature manifests."""


def content_hash(features: tuple[FeatureSpec, ...] | list[FeatureSpec]) -> str:
    """SHA-256 of the ordered feature specs (name, group, dtype, source, lag)."""
    payload = [
        [f.name, f.group, f.dtype, f.source, f.lag_days] for f in features
    ]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()
