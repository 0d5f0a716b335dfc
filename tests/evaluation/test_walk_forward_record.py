"""The stitched walk-forward record: tiling, per-fold/per-year tables, bootstrap intervals, paired tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from atft_kedro.evaluation.metrics import newey_west_se
from atft_kedro.evaluation.walk_forward import (
    BootstrapParams,
    FoldBlock,
    block_bootstrap_interval,
    check_tiling,
    fold_table,
    paired_test,
    year_table,
)
from atft_kedro.pipelines.walk_forward.nodes import stitch_fold_forecasts
from atft_kedro.schemas.model_input import Splits

DAYS = [dt.date(2021, 12, 27) + dt.timedelta(days=i) for i in range(40)]
TRADING = [d for d in DAYS if d.weekday() < 5]
BOOT = BootstrapParams(block_days=5, samples=2000, confidence=0.95, seed=0)


def _splits(blocks: list[tuple[int, int]]) -> Splits:
    """Splits whose fold k tests on TRADING[a..b] (train/validation before, irrelevant here)."""
    fold = lambda a, b: {"train": {"start": str(TRADING[0]), "end": str(TRADING[1])},  # noqa: E731
                         "validation": {"start": str(TRADING[2]), "end": str(TRADING[3])},
                         "test": {"start": str(TRADING[a]), "end": str(TRADING[b])}}
    return Splits.model_validate(
        {"purge_days": 1, "embargo_days": 0, "train": fold(0, 1)["train"], "validation": fold(0, 1)["validation"],
         "test": {"start": str(TRADING[4]), "end": str(TRADING[-1])}, "folds": [fold(a, b) for a, b in blocks]})


def _calendar() -> pl.DataFrame:
    return pl.DataFrame({"Date": DAYS, "HolidayDivision": ["1" if d.weekday() < 5 else "0" for d in DAYS]})


def _predictions(first: int, last: int, model: str = "m") -> pl.DataFrame:
    days = TRADING[first:last + 1]
    return pl.DataFrame({"Date": days, "Code": ["10010"] * len(days), "model": [model] * len(days),
                         "pred_1d": np.arange(len(days), dtype=np.float64)})


def test_stitched_dates_are_the_union_of_the_fold_blocks_without_overlap() -> None:
    blocks = [(10, 14), (15, 21), (22, 27)]
    stitched = stitch_fold_forecasts(_splits(blocks), _calendar(), *(_predictions(a, b) for a, b in blocks))
    assert stitched["Date"].to_list() == TRADING[10:28]  # every day once, in order, no gap
    assert stitched["fold"].to_list() == [0] * 5 + [1] * 7 + [2] * 6


@pytest.mark.parametrize(("blocks", "message"), [
    ([(10, 14), (14, 21)], "overlap"),
    ([(10, 14), (16, 21)], "leave 1 trading days between them"),
])
def test_blocks_that_do_not_tile_are_refused(blocks, message) -> None:
    with pytest.raises(ValueError, match=message):
        stitch_fold_forecasts(_splits(blocks), _calendar(), *(_predictions(a, b) for a, b in blocks))


def test_a_fold_forecasting_outside_its_block_or_a_missing_fold_is_refused() -> None:
    blocks = [(10, 14), (15, 21)]
    with pytest.raises(ValueError, match=r"fold_1.predictions has 1 rows outside"):
        stitch_fold_forecasts(_splits(blocks), _calendar(), _predictions(10, 14), _predictions(14, 21))
    with pytest.raises(ValueError, match="splits define 2 walk-forward folds but the walk_forward pipeline has 1"):
        stitch_fold_forecasts(_splits(blocks), _calendar(), _predictions(10, 14))


def test_check_tiling_counts_trading_days_across_a_weekend() -> None:
    friday = next(i for i, d in enumerate(TRADING) if d.weekday() == 4)
    check_tiling([FoldBlock(0, TRADING[0], TRADING[friday]), FoldBlock(1, TRADING[friday + 1], TRADING[-1])], TRADING)


def test_block_bootstrap_interval_covers_the_mean_and_widens_with_serial_correlation() -> None:
    rng = np.random.default_rng(1)
    white = rng.normal(0.02, 0.1, size=600)
    lo, hi = block_bootstrap_interval(white, BOOT)
    assert lo < white.mean() < hi
    se = white.std(ddof=1) / np.sqrt(white.size)
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.2)
    # an AR(1) series with the same marginal spread has a wider interval with 20-day blocks
    ar = np.empty(600)
    ar[0] = 0.0
    for t in range(1, 600):
        ar[t] = 0.9 * ar[t - 1] + rng.normal(0.0, 0.1 * np.sqrt(1 - 0.81))
    narrow = block_bootstrap_interval(ar, BOOT.model_copy(update={"block_days": 1}))
    wide = block_bootstrap_interval(ar, BOOT.model_copy(update={"block_days": 20}))
    assert (wide[1] - wide[0]) > 2.0 * (narrow[1] - narrow[0])
    assert block_bootstrap_interval(white, BOOT) == (lo, hi)  # seeded


def test_paired_test_is_the_newey_west_t_of_the_daily_difference() -> None:
    rng = np.random.default_rng(2)
    days = TRADING * 1
    a = rng.normal(0.05, 0.1, size=len(days))
    b = a - 0.03 + rng.normal(0.0, 0.02, size=len(days))
    scores = pl.DataFrame({"model": ["a"] * len(days) + ["b"] * len(days), "Date": days + days,
                           "rank_ic": np.concatenate([a, b])})
    result = paired_test(scores, "a", "b", horizon=5, bootstrap=BOOT)
    diff = a - b
    assert result["mean_difference"] == pytest.approx(diff.mean())
    assert result["t_stat_newey_west"] == pytest.approx(diff.mean() / newey_west_se(diff, 4))
    assert result["t_stat_newey_west"] > 3 and result["p_value"] < 0.01
    assert result["ci_low"] < diff.mean() < result["ci_high"] and result["n_days"] == len(days)
    same = paired_test(scores.with_columns(pl.lit("a").alias("model")).head(len(days)).vstack(
        scores.head(len(days)).with_columns(pl.lit("b").alias("model"))), "a", "b", horizon=5, bootstrap=BOOT)
    assert same["mean_difference"] == 0.0


def test_fold_and_year_tables_split_the_record() -> None:
    days = TRADING[:20]
    scores = pl.DataFrame({"model": ["m"] * 20, "Date": days, "rank_ic": [0.1] * 5 + [0.3] * 15,
                           "ic": [0.0] * 20})
    portfolio = pl.DataFrame({"model": ["m"] * 20, "portfolio": ["long_short"] * 20, "Date": days,
                              "net_return": np.linspace(-0.01, 0.02, 20)})
    table = fold_table(scores, portfolio, [FoldBlock(0, days[0], days[4]), FoldBlock(1, days[5], days[19])], 245)
    assert table["fold"].to_list() == [0, 1] and table["n_days"].to_list() == [5, 15]
    assert table["rank_ic_mean"].to_list() == pytest.approx([0.1, 0.3])
    years = year_table(scores, portfolio, 245)
    assert years["year"].to_list() == [2021, 2022]
    assert years["n_days"].sum() == 20
