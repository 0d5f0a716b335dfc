"""Contracts of the 05_model_input layer: the dense model input and the date splits.

``ModelInput`` is what the normalization pipeline writes and the trainer, evaluation and
inference read. Arrays are laid out day-major so one trading day's cross-section is a
contiguous slice and a window of T days is ``features[d - T + 1 : d + 1]``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from pydantic import model_validator

from atft_kedro.schemas.strict import StrictModel


@dataclass(frozen=True)
class ModelInput:
    """Dense, normalised model input.

    Attributes:
        features: [D, N, F] float32 (or float16 where conf says); normalised, 0 where missing.
        mask: [D, N] bool; True where the stock is listed and has a feature row that day.
        targets: [D, N, H] float32; forward returns ``target_ret_{h}d``, NaN where unknown.
        dates: [D] ``datetime64[D]``, the trading days, ascending.
        codes: [N] unicode strings, the stock codes, ascending.
        horizons: [H] int64, the target horizons in trading days.
        feature_names: the F feature names, in manifest order.
        manifest_hash: hash of the feature manifest the features follow.
    """

    features: np.ndarray
    mask: np.ndarray
    targets: np.ndarray
    dates: np.ndarray
    codes: np.ndarray
    horizons: np.ndarray
    feature_names: tuple[str, ...]
    manifest_hash: str

    def __post_init__(self) -> None:
        d, n, f = self.features.shape
        problems = []
        if self.mask.shape != (d, n):
            problems.append(f"mask {self.mask.shape} != {(d, n)}")
        if self.targets.shape[:2] != (d, n) or self.targets.shape[2] != len(self.horizons):
            problems.append(f"targets {self.targets.shape} != {(d, n, len(self.horizons))}")
        if len(self.dates) != d:
            problems.append(f"dates {len(self.dates)} != {d}")
        if len(self.codes) != n:
            problems.append(f"codes {len(self.codes)} != {n}")
        if len(self.feature_names) != f:
            problems.append(f"feature_names {len(self.feature_names)} != {f}")
        if problems:
            raise ValueError("inconsistent ModelInput: " + "; ".join(problems))

    @property
    def n_days(self) -> int:
        return self.features.shape[0]

    @property
    def n_stocks(self) -> int:
        return self.features.shape[1]

    @property
    def n_features(self) -> int:
        return self.features.shape[2]

    def day_indices(self, start: dt.date, end: dt.date) -> np.ndarray:
        """Indices of the trading days in [start, end] (inclusive)."""
        lo = np.datetime64(start, "D")
        hi = np.datetime64(end, "D")
        return np.flatnonzero((self.dates >= lo) & (self.dates <= hi))


class DateRange(StrictModel):
    """An inclusive range of trading days."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"date range ends {self.end} before it starts {self.start}")
        return self


def _require_chain(train: DateRange, validation: DateRange, test: DateRange, what: str) -> None:
    """train, validation and test in that order, none overlapping the next (a leak otherwise)."""
    if not (train.end < validation.start and validation.end < test.start):
        raise ValueError(
            f"{what}: train {train.start}..{train.end}, validation {validation.start}..{validation.end} and test "
            f"{test.start}..{test.end} must follow each other without overlap")


class Fold(StrictModel):
    """One walk-forward fold: train, then validation, then test, purge + embargo between them."""

    train: DateRange
    validation: DateRange
    test: DateRange

    @model_validator(mode="after")
    def _ordered(self) -> Fold:
        _require_chain(self.train, self.validation, self.test, "walk-forward fold")
        return self


class Splits(StrictModel):
    """Date splits with purge and embargo (in trading days) between segments.

    ``train``/``validation``/``test`` is the default chain; ``folds`` the walk-forward
    folds, whose test blocks tile one continuous out-of-sample period. The gap between a segment's last day and the next segment's
    first day is at least ``purge_days + embargo_days`` trading days, and
    ``purge_days`` >= the longest target horizon.
    """

    purge_days: int
    embargo_days: int
    train: DateRange
    validation: DateRange
    test: DateRange
    folds: tuple[Fold, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> Splits:
        _require_chain(self.train, self.validation, self.test, "splits")
        return self

    def fold_chain(self, k: int) -> Splits:
        """Fold ``k`` as a train -> validation -> test chain (what the per-fold nodes read)."""
        if not 0 <= k < len(self.folds):
            raise ValueError(
                f"splits define {len(self.folds)} walk-forward folds; there is no fold {k}. The walk_forward "
                "pipeline has one namespace per fold of normalization.folds.count in conf/base: set the same "
                "count in every environment"
            )
        fold = self.folds[k]
        return Splits(purge_days=self.purge_days, embargo_days=self.embargo_days, train=fold.train,
                      validation=fold.validation, test=fold.test)
