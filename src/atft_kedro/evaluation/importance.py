"""Permutation importance: how much validation RankIC the model loses when one input is scrambled.

For a feature (or a whole feature group), its values are shuffled across the stocks listed
on each day, on every day the forecast windows read, so the feature keeps its
distribution but no longer belongs to its stock; the drop of the mean daily RankIC at
the primary horizon, over a seeded sample of validation days, is its importance. Unlike
the variable-selection weights (which a trained network can leave near uniform, and which
rank a pure-noise input above a useful one), a feature the forecasts do not depend on
scores about zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import Field
from scipy.stats import rankdata

from atft_kedro.schemas.model_input import ModelInput
from atft_kedro.schemas.strict import StrictModel

#: Forecast function: (model input, day indices) -> point forecasts [len(days), N, H] (NaN where unlisted).
Forecaster = Callable[[ModelInput, np.ndarray], np.ndarray]


class ImportanceParams(StrictModel):
    """``evaluation.importance``: the permutation importance of the report."""

    days: int = Field(ge=2, description="validation days scored (evenly spaced over the validation split)")
    max_features: int = Field(
        ge=1, description="features scored one by one, taken from the groups with the largest drop first "
        "(every group is scored; one pass per feature is the cost)")
    seed: int = Field(description="seeds the shuffles")


def mean_rank_ic(forecasts: np.ndarray, targets: np.ndarray, min_stocks: int) -> float:
    """Mean over days of the Spearman correlation of forecasts [D, N] and targets [D, N].

    A day counts when at least ``min_stocks`` stocks have both values finite and neither
    side is constant; NaN when no day counts.
    """
    values = []
    for pred, real in zip(forecasts, targets, strict=True):  # a few dozen days
        ok = np.isfinite(pred) & np.isfinite(real)
        if ok.sum() < min_stocks:
            continue
        a, b = rankdata(pred[ok]), rankdata(real[ok])
        if a.std() == 0 or b.std() == 0:
            continue
        values.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(values)) if values else float("nan")


def evenly_spaced(days: np.ndarray, count: int) -> np.ndarray:
    """``count`` day indices spread evenly over ``days`` (all of them when there are fewer)."""
    if days.size <= count:
        return days
    return days[np.round(np.linspace(0, days.size - 1, count)).astype(np.int64)]


def _window_part(model_input: ModelInput, days: np.ndarray, window: int) -> tuple[ModelInput, np.ndarray]:
    """The slice of ``model_input`` the windows of ``days`` read, with writable features, and the
    days re-indexed into it."""
    lo, hi = max(0, int(days.min()) - window + 1), int(days.max()) + 1
    part = ModelInput(
        features=np.array(model_input.features[lo:hi], dtype=np.float32),
        mask=np.asarray(model_input.mask[lo:hi]),
        targets=np.asarray(model_input.targets[lo:hi]),
        dates=model_input.dates[lo:hi],
        codes=model_input.codes,
        horizons=model_input.horizons,
        feature_names=model_input.feature_names,
        manifest_hash=model_input.manifest_hash,
    )
    return part, days - lo


def permutation_importance(
    forecast: Forecaster,
    model_input: ModelInput,
    days: np.ndarray,
    window: int,
    groups: Mapping[str, Sequence[str]],
    horizon: int,
    min_stocks: int,
    seed: int,
    max_features: int | None = None,
) -> dict[str, Any]:
    """Drop of the mean daily RankIC at ``horizon`` when each group, then each feature, is shuffled.

    Args:
        forecast: the model's point forecasts for given days of a model input.
        model_input: the dense input; ``days`` index it.
        days: the scored days (e.g. a sample of the validation split).
        window: trading days each forecast reads (the model's ``window_days``).
        groups: group name -> its feature names (the manifest's groups).
        horizon: the horizon scored (one of ``model_input.horizons``).
        min_stocks: fewest stocks for a day to count.
        seed: seeds the shuffles (the same permutations for every feature).
        max_features: score at most this many features one by one: those of the groups with
            the largest drop first, in manifest order within a group (None: every feature).

    Returns:
        ``{"base_rank_ic", "features": {name: drop}, "groups": {name: drop}}``; a positive
        drop means the forecasts need the input. Features not scored are absent.
    """
    h = list(model_input.horizons.tolist()).index(horizon)
    part, local = _window_part(model_input, np.asarray(days, dtype=np.int64), window)
    targets = part.targets[local, :, h]

    def score() -> float:
        return mean_rank_ic(forecast(part, local)[:, :, h], targets, min_stocks)

    base = score()
    rng = np.random.default_rng(seed)
    # one permutation of the listed stocks per day, shared by every feature and group
    shuffles = [(idx, rng.permutation(idx)) for idx in (np.flatnonzero(row) for row in part.mask)]

    def scrambled(columns: list[int]) -> float:
        saved = part.features[:, :, columns].copy()
        for day, (idx, perm) in enumerate(shuffles):  # the days of the windows, not rows
            part.features[day, idx[:, None], columns] = saved[day, perm]
        try:
            return score()
        finally:
            part.features[:, :, columns] = saved

    names = list(model_input.feature_names)
    group_drop = {group: base - scrambled([names.index(n) for n in members]) for group, members in groups.items()}
    ranked_groups = sorted(group_drop, key=lambda g: -group_drop[g] if np.isfinite(group_drop[g]) else np.inf)
    in_groups = [n for g in ranked_groups for n in groups[g]]
    order = in_groups + [n for n in names if n not in set(in_groups)]
    chosen = order if max_features is None else order[:max_features]
    return {
        "base_rank_ic": base,
        "features": {name: base - scrambled([names.index(name)]) for name in chosen},
        "groups": group_drop,
    }
