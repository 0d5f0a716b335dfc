"""Small synthetic inputs for the normalization tests: calendar, manifest, features, targets, params."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from atft_kedro.labels import LabelParams, with_forward_labels

from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.schemas.manifest import FeatureManifest, FeatureSpec

HORIZONS = [1, 5, 10, 20]

#: A few JPX-like holidays on weekdays (New Year, Golden Week, year end).
HOLIDAYS = {
    dt.date(2021, 1, 1), dt.date(2021, 1, 11), dt.date(2021, 2, 11), dt.date(2021, 3, 22),
    dt.date(2021, 4, 29), dt.date(2021, 5, 3), dt.date(2021, 5, 4), dt.date(2021, 5, 5),
    dt.date(2021, 7, 22), dt.date(2021, 7, 23), dt.date(2021, 9, 20), dt.date(2021, 9, 23),
    dt.date(2021, 11, 3), dt.date(2021, 11, 23), dt.date(2021, 12, 31),
    dt.date(2022, 1, 3), dt.date(2022, 1, 10), dt.date(2022, 3, 21), dt.date(2022, 5, 3),
    dt.date(2022, 5, 4), dt.date(2022, 5, 5), dt.date(2022, 9, 19), dt.date(2022, 9, 23),
    dt.date(2022, 12, 30),
}


def calendar(start: dt.date = dt.date(2021, 1, 1), end: dt.date = dt.date(2022, 12, 31)) -> pl.DataFrame:
    """Canonical trading_calendar: every calendar day, '1' on weekdays that are not holidays."""
    days = pl.date_range(start, end, interval="1d", eager=True)
    trading = [(d.weekday() < 5 and d not in HOLIDAYS) for d in days.to_list()]
    return pl.DataFrame(
        {"Date": days, "HolidayDivision": ["1" if t else "0" for t in trading]}
    )


def trading_days(cal: pl.DataFrame) -> list[dt.date]:
    return cal.filter(pl.col("HolidayDivision") == "1").get_column("Date").to_list()


def manifest() -> FeatureManifest:
    """Six features in three groups: returns, a validity flag, a constant, an all-null column."""
    specs = [
        ("px_ret_1d", "px"),
        ("px_vol_20d", "px"),
        ("px_ret_valid", "px"),
        ("tech_rsi_14", "tech"),
        ("stmt_constant", "stmt"),
        ("stmt_all_null", "stmt"),
    ]
    return FeatureManifest(
        features=tuple(
            FeatureSpec(name=n, group=g, source="daily_quotes", lag_days=0, description=n) for n, g in specs
        )
    )


def params(**overrides) -> NormalizationParams:
    """Parameters sized for ~490 trading days; ``overrides`` replace top-level keys."""
    raw = {
        "warmup_days": 30,
        "purge_days": 21,
        "embargo_days": 5,
        "chain": {"validation_fraction": 0.2, "test_fraction": 0.2},
        "folds": {"count": 3, "window": "rolling", "train_days": 100, "validation_days": 30, "test_days": 40},
        "robust": {"scale_floor": 1e-6, "clip": 5.0},
        "cross_section": {"groups": ["tech"], "min_stocks": 5, "std_floor": 1e-6},
        "dtype": "float32",
        "block_mib": 64,
    }
    raw.update(overrides)
    return NormalizationParams.model_validate(raw)


def prices(days: list[dt.date], n_stocks: int, seed: int = 0) -> pl.DataFrame:
    """A full (Date, Code, AdjustmentClose) grid of random-walk prices."""
    rng = np.random.default_rng(seed)
    codes = [f"{1300 + 7 * i:04d}0" for i in range(n_stocks)]
    log_ret = rng.normal(0.0, 0.02, size=(len(days), n_stocks))
    close = 100.0 * np.exp(np.cumsum(log_ret, axis=0))
    return pl.DataFrame(
        {
            "Date": np.repeat(np.asarray(days, dtype="datetime64[D]"), n_stocks),
            "Code": np.tile(codes, len(days)),
            "AdjustmentClose": close.ravel(),
        }
    ).with_columns(pl.col("Date").cast(pl.Date))


def targets_from_prices(px: pl.DataFrame, horizons: list[int] = HORIZONS) -> pl.DataFrame:
    """The project's label at the close: close(t + 1 + h) / close(t + 1) - 1 (``atft_kedro.labels``)."""
    return (
        with_forward_labels(px.lazy().sort("Code", "Date"), LabelParams(entry="next_close"), horizons, by="Code")
        .drop("AdjustmentClose").sort("Date", "Code").collect()
    )


def features(
    days: list[dt.date], n_stocks: int, seed: int = 1, drop_fraction: float = 0.1
) -> pl.DataFrame:
    """Features following ``manifest()``: some rows absent (unlisted days), some values null.

    ``stmt_constant`` is 3.0 everywhere; ``stmt_all_null`` is null everywhere.
    """
    rng = np.random.default_rng(seed)
    frame = prices(days, n_stocks, seed).drop("AdjustmentClose")
    rows = frame.height
    keep = rng.random(rows) >= drop_fraction
    ret = rng.standard_t(4, rows).astype(np.float32) * 0.02
    vol = np.abs(rng.normal(0.3, 0.1, rows)).astype(np.float32)
    rsi = rng.uniform(0.0, 100.0, rows).astype(np.float32)
    ret_valid = (rng.random(rows) > 0.05).astype(np.float32)
    ret[ret_valid == 0] = np.nan
    rsi[rng.random(rows) < 0.1] = np.nan
    frame = frame.with_columns(
        pl.Series("px_ret_1d", ret, dtype=pl.Float32, nan_to_null=True),
        pl.Series("px_vol_20d", vol * 1000.0, dtype=pl.Float32),
        pl.Series("px_ret_valid", ret_valid, dtype=pl.Float32),
        pl.Series("tech_rsi_14", rsi, dtype=pl.Float32, nan_to_null=True),
        pl.lit(3.0, dtype=pl.Float32).alias("stmt_constant"),
        pl.lit(None, dtype=pl.Float32).alias("stmt_all_null"),
    )
    return frame.filter(pl.Series(keep))
