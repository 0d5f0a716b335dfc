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


def compute(frame: pl.DataFrame, day: pl.Series, features: list[Feature], params: CrossSectionalParams
            ) -> pl.DataFrame:
    """The z-score columns of ``features`` for ``frame`` (float32), same rows.

    Per-day means, stds and counts come from one group-by over the day index (in float64);
    each feature is then standardised in float32 with NumPy (a loop over features, not rows).

    Args:
        frame: the assembled features (any row order) holding the base columns.
        day: [rows] the trading-day index of each row.
        features: the ``_csz`` features to build (from :func:`build`).
        params: clip and minimum number of stocks.
    """
    if not features:
        return pl.DataFrame()
    bases = [f.name[: -len(SUFFIX)] for f in features]
    stats = (
        frame.select(bases).with_columns(day.alias("_day"))
        .group_by("_day")
        .agg(
            *[pl.col(b).cast(pl.Float64).mean().alias(f"_m{i}") for i, b in enumerate(bases)],
            *[pl.col(b).cast(pl.Float64).std().alias(f"_s{i}") for i, b in enumerate(bases)],
            *[pl.col(b).count().alias(f"_n{i}") for i, b in enumerate(bases)],
        )
        .sort("_day")
    )
    position = np.searchsorted(stats.get_column("_day").to_numpy(), day.to_numpy())
    out = []
    for i, (feature, b) in enumerate(zip(features, bases, strict=True)):  # loop over features
        mean = stats.get_column(f"_m{i}").fill_null(np.nan).to_numpy().astype(np.float32)
        std = stats.get_column(f"_s{i}").fill_null(np.nan).to_numpy().astype(np.float32)
        std[stats.get_column(f"_n{i}").to_numpy() < params.min_stocks] = np.nan  # too few stocks: no z
        std[~(std > 0)] = np.nan
        z = frame.get_column(b).cast(pl.Float32).to_numpy(writable=True)  # own copy, NaN where null
        z -= mean[position]
        z /= std[position]
        np.clip(z, -params.clip, params.clip, out=z)
        out.append(pl.Series(feature.name, z, nan_to_null=True))
    return pl.DataFrame(out)
