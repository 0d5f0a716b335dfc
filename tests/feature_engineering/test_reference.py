"""Features against plain pandas / NumPy computed from the canonical tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from fe_helpers import Built

from atft_kedro.features.params import FeatureParams


@pytest.fixture(scope="module")
def quotes(tables: dict[str, pl.DataFrame], built: Built) -> pd.DataFrame:
    """Quotes of the panel's rows, per stock in date order, with the stock's carried-forward close."""
    keys = built.features.select("Date", "Code")
    q = keys.join(tables["daily_quotes"], on=["Date", "Code"], how="left").to_pandas()
    q = q.sort_values(["Code", "Date"]).reset_index(drop=True)
    q["close"] = q.groupby("Code")["AdjustmentClose"].ffill()
    q["pos"] = q.groupby("Code").cumcount()
    return q


def _feature(built: Built, q: pd.DataFrame, name: str) -> np.ndarray:
    """The feature aligned with ``q``'s rows, float64, NaN for null."""
    col = built.features.select("Date", "Code", name).to_pandas()
    merged = q[["Date", "Code"]].merge(col, on=["Date", "Code"], how="left")
    return merged[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _same(got: np.ndarray, want: np.ndarray, rtol: float = 2e-5, atol: float = 1e-7) -> None:
    assert np.array_equal(np.isnan(got), np.isnan(want)), (
        f"{int((np.isnan(got) != np.isnan(want)).sum())} rows null in one and not the other")
    assert np.isfinite(want).sum() > 100
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


def test_returns_and_log_returns(built: Built, quotes: pd.DataFrame) -> None:
    by = quotes.groupby("Code")["close"]
    _same(_feature(built, quotes, "px_ret_5d"), (quotes["close"] / by.shift(5) - 1.0).to_numpy())
    log_close = np.log(quotes["close"])
    _same(_feature(built, quotes, "px_logret_20d"),
          (log_close - log_close.groupby(quotes["Code"]).shift(20)).to_numpy())


def test_rolling_volatility(built: Built, quotes: pd.DataFrame, feature_params: FeatureParams) -> None:
    lr = np.log(quotes["close"]).groupby(quotes["Code"]).diff()
    need = int(np.ceil(20 * feature_params.rolling.min_periods_fraction))
    vol = lr.groupby(quotes["Code"]).transform(lambda s: s.rolling(20, min_periods=need).std())
    vol[quotes["pos"] < 19] = np.nan
    _same(_feature(built, quotes, "px_vol_20d"), vol.to_numpy())


def test_rsi_with_wilder_smoothing(built: Built, quotes: pd.DataFrame) -> None:
    delta = quotes.groupby("Code")["close"].diff()

    def wilder(s: pd.Series) -> pd.Series:
        return s.groupby(quotes["Code"]).transform(lambda x: x.ewm(alpha=1 / 14, adjust=False, min_periods=14).mean())

    gain, loss = wilder(delta.clip(lower=0)), wilder((-delta).clip(lower=0))
    _same(_feature(built, quotes, "tech_rsi_14"), (100.0 * gain / (gain + loss)).to_numpy(), rtol=1e-4)


def test_beta_to_topix(built: Built, quotes: pd.DataFrame, tables, feature_params: FeatureParams) -> None:
    topix = tables["topix"].sort("Date").to_pandas()
    topix["r_m"] = topix["Close"].pct_change()
    q = quotes.merge(topix[["Date", "r_m"]], on="Date", how="left")
    q["r_i"] = q.groupby("Code")["close"].pct_change()
    both = q["r_i"].notna() & q["r_m"].notna()
    q.loc[~both, ["r_i", "r_m"]] = np.nan
    need = int(np.ceil(60 * feature_params.rolling.min_periods_fraction))

    def beta(g: pd.DataFrame) -> pd.Series:
        cov = g["r_i"].rolling(60, min_periods=need).cov(g["r_m"])
        return cov / g["r_m"].rolling(60, min_periods=need).var()

    want = q.groupby("Code", group_keys=False)[["r_i", "r_m"]].apply(beta).reindex(q.index)
    want[q["pos"] < 59] = np.nan
    _same(_feature(built, quotes, "beta_60d"), want.to_numpy(), rtol=1e-4, atol=1e-6)


def test_sector_relative_return_uses_the_as_of_sector(built: Built, quotes: pd.DataFrame, tables,
                                                      feature_params: FeatureParams) -> None:
    info = tables["listed_info"].select("Date", "Code", "Sector33Code").sort("Date").to_pandas()
    q = pd.merge_asof(quotes.sort_values("Date"), info, on="Date", by="Code", direction="backward")
    q = q.sort_values(["Code", "Date"]).reset_index(drop=True)
    q["r5"] = q["close"] / q.groupby("Code")["close"].shift(5) - 1.0
    group = q.groupby(["Date", "Sector33Code"])["r5"]
    mean = group.transform("mean").where(group.transform("count") >= feature_params.sector.min_members)
    _same(_feature(built, q, "sec_rel_ret_5d"), (q["r5"] - mean).to_numpy())


def test_cross_sectional_zscore(built: Built, feature_params: FeatureParams) -> None:
    cs = feature_params.cross_sectional
    frame = built.features.select("Date", "Code", "px_ret_5d", "px_ret_5d_csz").to_pandas()
    x = frame["px_ret_5d"].astype(np.float64)
    by = x.groupby(frame["Date"])
    z = ((x - by.transform("mean")) / by.transform("std")).clip(-cs.clip, cs.clip)
    z[by.transform("count") < cs.min_stocks] = np.nan
    got = frame["px_ret_5d_csz"].to_numpy(dtype=np.float64, na_value=np.nan)
    _same(got, z.to_numpy(), rtol=1e-5, atol=1e-6)
    per_day = frame.assign(z=got).groupby("Date")["z"]
    assert np.nanmax(np.abs(per_day.mean().to_numpy())) < 0.2  # centred per day (up to clipping)


def test_targets_are_forward_returns_on_the_stock_own_rows(built: Built, quotes: pd.DataFrame,
                                                           horizons: list[int]) -> None:
    """fe_helpers builds targets at the next open: P(t+1+h) / P(t+1) - 1 on the stock's own rows,
    P the adjusted open, or on a day without a trade the last traded close before it."""
    targets = built.targets
    assert targets.columns == ["Date", "Code", *[f"target_ret_{h}d" for h in horizons]]
    assert targets.select("Date", "Code").equals(built.features.select("Date", "Code"))
    price = quotes["AdjustmentOpen"].fillna(quotes.groupby("Code")["close"].shift(1))
    by = price.groupby(quotes["Code"])
    for h in horizons:
        want = by.shift(-(1 + h)) / by.shift(-1) - 1.0
        got = quotes[["Date", "Code"]].merge(targets.select("Date", "Code", f"target_ret_{h}d").to_pandas(),
                                             on=["Date", "Code"])[f"target_ret_{h}d"].to_numpy(na_value=np.nan)
        np.testing.assert_allclose(got, want.to_numpy(), rtol=1e-12, equal_nan=True)
        assert targets.schema[f"target_ret_{h}d"] == pl.Float64
