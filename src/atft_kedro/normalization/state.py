"""The fitted normalizer's state (the ``normalizer`` dataset, JSON), with its identity hash.

The state is self-contained: it carries every number the transform uses (centres,
scales, clip, cross-sectional settings), so inference applies exactly the transform that
training saw without reading ``params:normalization``. ``identity`` is the SHA-256 of
everything else in the state; a checkpoint records it, and a state whose content no
longer matches its identity is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Literal

from pydantic import Field, model_validator

from atft_kedro.schemas.model_input import DateRange
from atft_kedro.schemas.strict import StrictModel

#: 1 / Phi^-1(3/4): MAD x this estimates the standard deviation of a normal distribution.
MAD_TO_STD = 1.4826


class CrossSectionState(StrictModel):
    """Which features are standardised per day across stocks, and how."""

    groups: tuple[str, ...]
    standardized: tuple[bool, ...] = Field(description="per feature, in manifest order")
    min_stocks: int = Field(ge=2)
    std_floor: float = Field(gt=0.0)


class NormalizerState(StrictModel):
    """Per-feature robust centre and scale fitted on every training row, plus the transform settings."""

    method: Literal["robust_median_mad"]
    manifest_hash: str = Field(min_length=1)
    feature_names: tuple[str, ...]
    fitted_on: DateRange = Field(description="the train segment whose rows were used")
    n_train_rows: int = Field(ge=1)
    n_valid: tuple[int, ...] = Field(description="finite training values per feature")
    center: tuple[float, ...]
    scale: tuple[float, ...]
    mad_to_std: float
    scale_floor: float = Field(gt=0.0)
    clip: float = Field(gt=0.0)
    cross_section: CrossSectionState
    identity: str = Field(description="SHA-256 of the rest of the state; filled in when empty")

    @model_validator(mode="after")
    def _consistent(self) -> NormalizerState:
        n = len(self.feature_names)
        lengths = {
            "n_valid": len(self.n_valid),
            "center": len(self.center),
            "scale": len(self.scale),
            "cross_section.standardized": len(self.cross_section.standardized),
        }
        wrong = {k: v for k, v in lengths.items() if v != n}
        if wrong:
            raise ValueError(f"normalizer state: {wrong} entries for {n} features")
        bad = [
            name
            for name, c, s in zip(self.feature_names, self.center, self.scale)
            if not (math.isfinite(c) and math.isfinite(s) and s > 0.0)
        ]
        if bad:
            raise ValueError(f"normalizer state: non-finite centre or non-positive scale for {bad[:20]}")
        expected = state_identity(self)
        if self.identity and self.identity != expected:
            raise ValueError(
                f"normalizer state identity {self.identity[:12]} does not match its content "
                f"({expected[:12]}): the state was edited after fitting; refit it"
            )
        if not self.identity:
            object.__setattr__(self, "identity", expected)
        return self

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_json_dict(cls, data: dict) -> NormalizerState:
        return cls.model_validate(data)


def state_identity(state: NormalizerState) -> str:
    """SHA-256 of the state's content (everything but ``identity``), as canonical JSON."""
    payload = state.model_dump(mode="json", exclude={"identity"})
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    ).hexdigest()
