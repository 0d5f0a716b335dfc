"""Typed parameters of the walk-forward pipeline (``params:walk_forward`` in conf)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from atft_kedro.evaluation.walk_forward import BootstrapParams
from atft_kedro.model.params import TrainingParams
from atft_kedro.schemas.strict import StrictModel


class WalkForwardParams(StrictModel):
    """``params:walk_forward``.

    Attributes:
        training: keys of ``params:training`` that every fold changes (for example fewer
            sampled days per epoch, so that N folds fit the time of one chain); the rest of
            ``params:training`` applies as it is. Unknown keys are errors.
        bootstrap: the moving-block bootstrap of mean daily RankIC and of paired differences.
        seeds: ATFT-GAT-FAN models trained per fold, seed s with ``training.seed + s``; the fold
            forecasts with their rank-average. Structural like the fold count: the pipeline has one
            namespace ``fold_{k}.seed_{s}`` per seed, read from ``conf/base`` at registration.
    """

    training: dict[str, Any]
    bootstrap: BootstrapParams
    seeds: int = Field(ge=1)

    @field_validator("training")
    @classmethod
    def _known_training_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(TrainingParams.model_fields))
        if unknown:
            raise ValueError(
                f"walk_forward.training: {unknown} are not keys of params:training "
                f"(known: {sorted(TrainingParams.model_fields)})"
            )
        return value

    def fold_training(self, training: TrainingParams) -> TrainingParams:
        """``params:training`` with this block's changes, validated as a whole."""
        return TrainingParams.model_validate({**training.model_dump(), **self.training})

    def seed_training(self, training: TrainingParams, seed: int) -> TrainingParams:
        """:meth:`fold_training` for seed number ``seed`` (0-based): its random seed is ``training.seed + seed``."""
        fold = self.fold_training(training)
        return TrainingParams.model_validate({**fold.model_dump(), "seed": fold.seed + seed})
