"""``*_csz``: cross-sectional z-scores per Date of the main features.

z = (x - mean over the day's stocks) / std over the day's stocks (sample std), clipped to
+-``cross_sectional.clip``; null when fewer than ``cross_sectional.min_stocks`` stocks
have the value that day or the std is 0. Uses only the same day's values.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from atft_kedro.features.base import DATE, Feature, safe_div
from atft_kedro.features.params import CrossSectionalParams

GROUP = "cross_sectional"
SUFFIX = "_csz"


def zscore_expr(name: str, params: CrossSectionalParams) -> pl.Expr:
    """Cross-sectional z-score of column ``name`` per Date (the definition; :func:`compute` is the fast path)."""
    x = pl.col(name).cast(pl.Float64)
    z = safe_div(x - x.mean().over(DATE), x.std().over(DATE))
    return pl.when(x.count().over(DATE) >= params.min_stocks).then(
        z.clip(-params.clip, params.clip))


def build(params: CrossSectionalParams, available: dict[str, Feature]) -> list[Feature]:
    """z-score features of the listed names that are in ``available`` (name -> feature)."""
    return [
        Feature(f"{name}{SUFFIX}", f"cross-sectional z-score per date of {name}",
                zscore_expr(name, params), available[name].source, available[name].lag_days)
        for name in params.features if name in available
    ]


def day_statistics(values: np.ndarray, starts: np.ndarray, segment: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per day: mean, sample std and count of the non-NaN values (float64, sequential sums).

    Args:
        values: [rows] float64, NaN where missing, rows grouped by day.
        starts: [days] first row of each day.
        segment: [rows] the day (position in ``starts``) of each row.

    Returns:
        mean [days], std [days] (NaN with fewer than 2 values), count [days] int64. Each day's
        figures depend only on that day's rows, so any cut of the table into whole days gives
        the same numbers.
    """
    valid = ~np.isnan(values)
    count = np.add.reduceat(valid.astype(np.int64), starts)
    total = np.add.reduceat(np.where(valid, values, 0.0), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        deviation = np.where(valid, values - mean[segment], 0.0)
        std = np.sqrt(np.add.reduceat(deviation * deviation, starts) / (count - 1))
    std[count < 2] = np.nan
    return mean, std, count


def compute(frame: pl.DataFrame, day: pl.Series, features: list[Feature], params: CrossSectionalParams
            ) -> pl.DataFrame:
    """The z-score columns of ``features`` for ``frame`` (float32), same rows.

    Per-day means, stds and counts are computed in float64 with NumPy over each day's rows
    (:func:`day_statistics`); each feature is then standardised in float32 (a loop over
    features, not rows). A day's z-scores depend only on that day's rows, so the table may
    be computed a block of whole days at a time (``features.assembly``).

    Args:
        frame: the assembled features (any row order) holding the base columns.
        day: [rows] the trading-day index of each row.
        features: the ``_csz`` features to build (from :func:`build`).
        params: clip and minimum number of stocks.
    """
    if not features:
        return pl.DataFrame()
    bases = [f.name[: -len(SUFFIX)] for f in features]
    days = day.to_numpy()
    order = None if day.is_sorted() else np.argsort(days, kind="stable")
    sorted_days = days if order is None else days[order]
    if sorted_days.size == 0:
        return pl.DataFrame([pl.Series(f.name, [], dtype=pl.Float32) for f in features])
    starts = np.flatnonzero(np.r_[True, sorted_days[1:] != sorted_days[:-1]])
    segment = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, sorted_days.size]))
    if order is not None:  # the day of each row in the frame's own order
        row_segment = np.empty_like(segment)
        row_segment[order] = segment
    else:
        row_segment = segment
    out = []
    for feature, b in zip(features, bases, strict=True):  # loop over features
        values = frame.get_column(b).cast(pl.Float64).to_numpy()
        mean64, std64, count = day_statistics(values if order is None else values[order], starts, segment)
        mean = mean64.astype(np.float32)
        std = std64.astype(np.float32)
        std[count < params.min_stocks] = np.nan  # too few stocks: no z
        std[~(std > 0)] = np.nan
        z = frame.get_column(b).cast(pl.Float32).to_numpy(writable=True)  # own copy, NaN where null
        z -= mean[row_segment]
        z /= std[row_segment]
        np.clip(z, -params.clip, params.clip, out=z)
        out.append(pl.Series(feature.name, z, nan_to_null=True))
    return pl.DataFrame(out)
