"""Typed parameters of the normalization pipeline (``params:normalization`` in conf).

Every tunable lives in ``conf/base/parameters_normalization.yml`` (and the ``test`` env's
override); none has a default here, and a misspelt key is a validation error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from atft_kedro.schemas.strict import StrictModel


class ChainParams(StrictModel):
    """The default chain train -> validation -> test, as fractions of the usable days.

    Usable days are the exchange's trading days from the first feature date (after the
    warm-up) to the last; the two gaps (purge + embargo each) are taken out first, then
    validation and test get these fractions of what remains and train gets the rest.
    """

    validation_fraction: float = Field(gt=0.0, lt=1.0)
    test_fraction: float = Field(gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _leaves_training_days(self) -> ChainParams:
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                "normalization.chain: validation_fraction + test_fraction = "
                f"{self.validation_fraction + self.test_fraction} leaves no training days (must be < 1)"
            )
        return self


class FoldParams(StrictModel):
    """Walk-forward folds whose test blocks tile one continuous out-of-sample period.

    The period is the last ``count x test_days`` trading days of the features; fold k tests
    on its k-th block of ``test_days`` days, validates on the ``validation_days`` days ending
    purge + embargo days before its test, and trains on the days ending purge + embargo
    days before its validation: the last ``train_days`` of them (``window: rolling``) or every
    day from the end of the warm-up (``window: expanding``, at least ``train_days``).
    ``count`` is structural: the ``walk_forward`` pipeline has one namespace ``fold_{k}`` per
    fold, read from ``conf/base`` when the pipelines are registered (see
    ``atft_kedro.pipelines.walk_forward``).
    """

    count: int = Field(ge=0, description="number of folds; 0 for none")
    window: Literal["rolling", "expanding"]
    train_days: int = Field(ge=1, description="rolling: the train window; expanding: its least length")
    validation_days: int = Field(ge=1)
    test_days: int = Field(ge=1, description="trading days of each fold's test block")


class RobustParams(StrictModel):
    """Per-feature robust scaling: (x - median) / max(1.4826 * MAD, scale_floor), clipped."""

    scale_floor: float = Field(gt=0.0, description="smallest scale; a constant feature gets this")
    clip: float = Field(gt=0.0, le=1000.0, description="normalised values are clipped to +-clip")


class CrossSectionParams(StrictModel):
    """Optional per-day cross-sectional standardisation of whole feature groups."""

    groups: tuple[str, ...] = Field(description="manifest feature groups to standardise per day")
    min_stocks: int = Field(ge=2, description="a day with fewer valid stocks is only robust-scaled")
    std_floor: float = Field(gt=0.0, description="smallest cross-sectional standard deviation")


class NormalizationParams(StrictModel):
    """``params:normalization``: splits, the robust normalizer and the dense model input."""

    warmup_days: int = Field(ge=0, description="first trading days of the features left out of every split")
    purge_days: int = Field(ge=1, description="trading days between segments, >= the longest horizon")
    embargo_days: int = Field(ge=0, description="further trading days between segments")
    chain: ChainParams
    folds: FoldParams
    robust: RobustParams
    cross_section: CrossSectionParams
    dtype: Literal["float32", "float16"] = Field(description="dtype of model_input.features")
    block_mib: int = Field(
        ge=1, description="MiB per block: of feature columns when fitting, of trading days when building"
    )


def as_normalization_params(params: NormalizationParams | dict) -> NormalizationParams:
    """The typed parameters, validating a raw ``params:normalization`` dict if that is what came."""
    return NormalizationParams.model_validate(params)


def check_horizons(horizons: list[int]) -> tuple[int, ...]:
    """``params:horizons`` as a tuple of distinct positive ints, or a ValueError naming the problem."""
    values = tuple(horizons)
    if not values:
        raise ValueError("params:horizons is empty: list at least one forward-return horizon")
    bad = [h for h in values if isinstance(h, bool) or not isinstance(h, int) or h < 1]
    if bad:
        raise ValueError(f"params:horizons must be positive integers (trading days), got {bad}")
    if len(set(values)) != len(values):
        raise ValueError(f"params:horizons lists a horizon twice: {list(values)}")
    return values
