"""Small helpers that turn simulator arrays into Polars columns of the raw tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl


def gather_strings(values: Sequence[str] | np.ndarray, index: np.ndarray, name: str) -> pl.Series:
    """``values[index]`` as a ``pl.String`` series (fast: a Polars gather, no Python loop)."""
    return pl.Series(name, list(values), dtype=pl.String).gather(pl.Series(index, dtype=pl.UInt32))


def gather_dates(days: np.ndarray, index: np.ndarray, name: str) -> pl.Series:
    """``days[index]`` (``datetime64[D]``) as a ``pl.Date`` series."""
    return pl.Series(name, days.astype("datetime64[D]")).cast(pl.Date).gather(pl.Series(index, dtype=pl.UInt32))


def float_column(values: np.ndarray, name: str) -> pl.Series:
    """A ``pl.Float64`` series in which NaN becomes null (the raw tables' missing value)."""
    return pl.Series(name, np.asarray(values, dtype=np.float64), nan_to_null=True)


def flag_column(flags: np.ndarray, name: str, true: str = "1", false: str = "0") -> pl.Series:
    """A boolean array as the API's string flags (``"1"``/``"0"``)."""
    return pl.Series(name, flags, dtype=pl.Boolean).replace_strict(
        {True: true, False: false}, return_dtype=pl.String
    )
