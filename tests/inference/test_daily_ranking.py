"""The daily ranking a portfolio manager opens: names, liquidity, scores, ranks, buckets, bands, summary."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from atft_kedro.pipelines.inference.nodes import build_daily_ranking
from atft_kedro.pipelines.inference.params import InferenceParams
from atft_kedro.schemas.model_output import DAILY_RANKING

NEWEST = dt.date(2024, 3, 29)
PARAMS = InferenceParams(buckets=10, adv_window_days=3, summary_rows=5, csv_decimals=4)
N = 40


def _inputs():
    rng = np.random.default_rng(0)
    codes = [f"{1300 + i}0" for i in range(N)]
    pred5, pred1 = rng.normal(0, 0.01, N), rng.normal(0, 0.002, N)
    forecasts = pl.DataFrame({
        "Date": [NEWEST] * N, "Code": codes,
        "rank": pl.Series(np.argsort(np.argsort(-pred5)) + 1, dtype=pl.Int32),
        "primary_horizon": pl.Series([5] * N, dtype=pl.Int32),
        "pred_1d": pred1, "q0.1_1d": pred1 - 0.003, "q0.5_1d": pred1, "q0.9_1d": pred1 + 0.003,
        "pred_5d": pred5, "q0.1_5d": pred5 - np.linspace(0.01, 0.03, N), "q0.5_5d": pred5, "q0.9_5d": pred5 + 0.01,
    })
    info = pl.DataFrame({
        "Date": [dt.date(2024, 1, 4)] * N + [dt.date(2024, 4, 1)] * N,  # the April snapshot is after NEWEST
        "Code": codes * 2,
        "CompanyName": [f"Company {i}" for i in range(N)] + [f"Renamed {i}" for i in range(N)],
        "Sector33CodeName": ["Banks"] * N * 2, "MarketCodeName": ["Prime"] * N * 2,
    })
    days = [dt.date(2024, 3, d) for d in (25, 26, 27, 28, 29)]
    quotes = pl.DataFrame({
        "Date": [d for d in days for _ in codes], "Code": codes * len(days),
        "Close": [100.0 + i for i in range(len(days)) for _ in codes],
        "TurnoverValue": [1e6 * (i + 1) for i in range(len(days)) for _ in codes],
    }).with_columns(  # the first stock does not trade on the newest day: null close, no value traded
        pl.when((pl.col("Code") == codes[0]) & (pl.col("Date") == NEWEST)).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("Close", "TurnoverValue"))
    return forecasts, info, quotes


def test_ranking_columns_types_and_values() -> None:
    forecasts, info, quotes = _inputs()
    ranking, csv, summary = build_daily_ranking(forecasts, info, quotes, PARAMS, [1, 5])
    DAILY_RANKING.validate(ranking)
    assert ranking.columns[:8] == ["Date", "Code", "CompanyName", "Sector33CodeName", "MarketCodeName",
                                   "last_close", "adv_3d_yen", "rank"]
    assert ranking["rank"].to_list() == list(range(1, N + 1))
    assert ranking["score_5d"].is_sorted(descending=True)
    assert ranking["score_5d"].mean() == pytest.approx(0.0, abs=1e-12)
    assert ranking["score_5d"].std() == pytest.approx(1.0)
    assert ranking["CompanyName"].str.starts_with("Company").all()  # the snapshot known on the date
    first = ranking.filter(pl.col("Code") == "13000").row(0, named=True)
    assert first["last_close"] == 103.0  # its last traded close, not the untraded day's null
    assert first["adv_3d_yen"] == pytest.approx((3e6 + 4e6 + 0.0) / 3)
    assert ranking.filter(pl.col("Code") == "13010")["adv_3d_yen"].item() == pytest.approx(4e6)
    counts = ranking.group_by("bucket_5d").len().sort("bucket_5d")
    assert counts["bucket_5d"].to_list() == list(range(1, 11)) and set(counts["len"]) == {4}
    assert ranking.filter(pl.col("rank") == 1)["bucket_5d"].item() == 10
    std5 = forecasts["pred_5d"].std()
    expected = ((forecasts["q0.9_5d"] - forecasts["q0.1_5d"]) / std5).to_list()
    got = forecasts.select("Code").join(ranking, on="Code", how="left")["band_5d"].to_list()
    assert got == pytest.approx(expected)
    # the CSV keeps 4 decimals and whole yen
    assert all(abs(v * 1e4 - round(v * 1e4)) < 1e-6 for v in csv["score_5d"].to_list())
    assert csv["adv_3d_yen"].to_list() == [round(v) for v in ranking["adv_3d_yen"].to_list()]
    lines = summary.splitlines()
    assert lines[0] == "# Daily ranking for 2024-03-29"
    top = lines.index("## Top 5")
    assert lines[top + 4].startswith("| 1 | ") and lines[top + 2].startswith("| rank | Code | CompanyName")
    bottom = lines.index("## Bottom 5")
    assert lines[bottom + 4].startswith(f"| {N} | ")
    assert "not a return forecast" in summary


def test_an_empty_forecast_is_refused() -> None:
    forecasts, info, quotes = _inputs()
    with pytest.raises(ValueError, match="newest_forecasts is empty"):
        build_daily_ranking(forecasts.head(0), info, quotes, PARAMS, [1, 5])
