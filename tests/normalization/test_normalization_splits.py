"""Splits on the exchange calendar: purge + embargo at every boundary, warm-up, folds, errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

import normalization_fakes as fakes
from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.pipelines.normalization.nodes import make_splits
from atft_kedro.schemas.model_input import DateRange, Splits

N_STOCKS = 8


@pytest.fixture(scope="module")
def market():
    cal = fakes.calendar()
    days = fakes.trading_days(cal)
    px = fakes.prices(days, N_STOCKS)
    feats = fakes.features(days, N_STOCKS)
    return cal, days, px, feats


def _boundaries(splits: Splits) -> list[tuple[str, DateRange, DateRange]]:
    """Every (earlier, later) pair whose later segment a model is judged on."""
    pairs = [
        ("train->validation", splits.train, splits.validation),
        ("train->test", splits.train, splits.test),
        ("validation->test", splits.validation, splits.test),
    ]
    for k, fold in enumerate(splits.folds):
        pairs.append((f"fold{k} train->validation", fold.train, fold.validation))
        pairs.append((f"fold{k} train->test", fold.train, fold.test))
        pairs.append((f"fold{k} validation->test", fold.validation, fold.test))
    return pairs


def test_no_target_window_reaches_the_next_segment_at_any_boundary_horizon_or_fold(market):
    cal, days, px, feats = market
    params = fakes.params()
    splits = Splits.model_validate(make_splits(cal, feats, params, fakes.HORIZONS))
    assert len(splits.folds) == params.folds.count
    index = {d: i for i, d in enumerate(days)}
    targets = fakes.targets_from_prices(px)
    for name, earlier, later in _boundaries(splits):
        # exactly purge + embargo exchange trading days lie strictly between the segments
        if name.endswith("train->validation") or name.endswith("validation->test"):
            gap = index[later.start] - index[earlier.end] - 1
            assert gap == params.purge_days + params.embargo_days, name
        for h in fakes.HORIZONS:
            # the last day any target of the earlier segment reads (exit at t + 1 + h trading days)
            reach = days[index[earlier.end] + 1 + h]
            assert reach < later.start, (name, h)
        # the same, proven on the data: changing every price from the later segment's
        # first day on leaves every target of the earlier segment as it was
        shocked = px.with_columns(
            pl.when(pl.col("Date") >= later.start)
            .then(pl.col("AdjustmentClose") * 1.7)
            .otherwise(pl.col("AdjustmentClose"))
            .alias("AdjustmentClose")
        )
        window = pl.col("Date").is_between(earlier.start, earlier.end)
        before = targets.filter(window)
        after = fakes.targets_from_prices(shocked).filter(window)
        assert before.height > 0
        assert before.equals(after), name


def test_the_shock_test_would_catch_a_short_purge(market):
    """The data check above is not vacuous: a 1-day gap lets 20-day targets see validation prices."""
    _, days, px, _ = market
    train_end = days[200]
    val_start = days[202]
    targets = fakes.targets_from_prices(px).filter(pl.col("Date") <= train_end)
    shocked = px.with_columns(
        pl.when(pl.col("Date") >= val_start).then(pl.col("AdjustmentClose") * 1.7)
        .otherwise(pl.col("AdjustmentClose")).alias("AdjustmentClose")
    )
    assert not targets.equals(fakes.targets_from_prices(shocked).filter(pl.col("Date") <= train_end))


def test_segments_follow_warmup_and_cover_the_features_to_their_last_day(market):
    cal, days, _, feats = market
    params = fakes.params()
    splits = Splits.model_validate(make_splits(cal, feats, params, fakes.HORIZONS))
    first_feature = feats.get_column("Date").min()
    assert splits.train.start == days[days.index(first_feature) + params.warmup_days]
    assert splits.test.end == feats.get_column("Date").max()
    trading = set(days)
    for _, earlier, later in _boundaries(splits):
        assert {earlier.start, earlier.end, later.start, later.end} <= trading
    for fold in splits.folds:
        assert fold.train.start >= splits.train.start
        assert days.index(fold.train.end) - days.index(fold.train.start) + 1 == params.folds.train_days  # rolling


def test_fold_test_blocks_tile_one_period_to_the_last_day(market):
    cal, days, _, feats = market
    for window in ("rolling", "expanding"):
        params = fakes.params(folds={"count": 3, "window": window, "train_days": 100, "validation_days": 30,
                                     "test_days": 40})
        splits = Splits.model_validate(make_splits(cal, feats, params, fakes.HORIZONS))
        tested = [d for fold in splits.folds for d in days if fold.test.start <= d <= fold.test.end]
        assert len(tested) == len(set(tested)) == 3 * 40  # no day forecast twice
        assert tested == days[len(days) - 120:]  # no gap, up to the last feature day
        for fold in splits.folds:
            length = days.index(fold.train.end) - days.index(fold.train.start) + 1
            if window == "rolling":
                assert length == 100
            else:
                assert fold.train.start == days[days.index(feats["Date"].min()) + params.warmup_days]
                assert length >= 100
        chain = splits.fold_chain(2)
        assert (chain.train, chain.validation, chain.test) == (splits.folds[2].train, splits.folds[2].validation,
                                                               splits.folds[2].test)
        with pytest.raises(ValueError, match="no fold 3"):
            splits.fold_chain(3)


def test_gaps_count_exchange_trading_days_not_calendar_days(market):
    """Golden Week 2022 (3-5 May) sits inside a gap: the gap spans more calendar days than trading days."""
    cal, days, _, feats = market
    params = fakes.params(warmup_days=0, chain={"validation_fraction": 0.24, "test_fraction": 0.3})
    splits = Splits.model_validate(make_splits(cal, feats, params, fakes.HORIZONS))
    gap = params.purge_days + params.embargo_days
    assert days.index(splits.validation.start) - days.index(splits.train.end) - 1 == gap
    weekdays = np.busday_count(splits.train.end + dt.timedelta(days=1), splits.validation.start)
    holidays_inside = [h for h in fakes.HOLIDAYS if splits.train.end < h < splits.validation.start]
    assert holidays_inside, "choose fractions so that a holiday falls into the gap"
    assert weekdays == gap + len(holidays_inside)


def test_purge_shorter_than_the_longest_horizon_is_refused(market):
    cal, _, _, feats = market
    with pytest.raises(ValueError, match=r"purge_days = 20 is shorter than the longest label window 21"):
        make_splits(cal, feats, fakes.params(purge_days=20), fakes.HORIZONS)


def test_feature_dates_off_the_exchange_calendar_are_refused(market):
    cal, _, _, feats = market
    holiday_row = feats.head(1).with_columns(pl.lit(dt.date(2021, 5, 4)).alias("Date"))
    with pytest.raises(ValueError, match=r"not trading days.*2021-05-04"):
        make_splits(cal, pl.concat([feats, holiday_row]), fakes.params(), fakes.HORIZONS)


def test_folds_that_do_not_fit_before_the_warmup_are_refused(market):
    cal, _, _, feats = market
    folds = {"count": 5, "window": "rolling", "train_days": 200, "validation_days": 30, "test_days": 40}
    with pytest.raises(ValueError, match=r"normalization.folds: fold 0 of 5"):
        make_splits(cal, feats, fakes.params(folds=folds), fakes.HORIZONS)


def test_too_short_a_history_names_the_day_counts(market):
    cal, days, _, feats = market
    short = feats.filter(pl.col("Date") <= days[80])
    with pytest.raises(ValueError, match=r"train/validation/test"):
        make_splits(cal, short, fakes.params(folds={"count": 0, "window": "rolling", "train_days": 1,
                                                    "validation_days": 1, "test_days": 1}), fakes.HORIZONS)


def test_misspelt_parameter_key_is_a_pydantic_error():
    raw = fakes.params().model_dump()
    raw["embargo_day"] = raw.pop("embargo_days")
    with pytest.raises(ValidationError, match=r"embargo_day\b"):
        NormalizationParams.model_validate(raw)
    nested = fakes.params().model_dump()
    nested["robust"]["clipp"] = 3.0
    with pytest.raises(ValidationError, match="clipp"):
        NormalizationParams.model_validate(nested)


def test_every_tunable_is_required():
    raw = fakes.params().model_dump()
    del raw["robust"]["scale_floor"]
    with pytest.raises(ValidationError, match="scale_floor"):
        NormalizationParams.model_validate(raw)
