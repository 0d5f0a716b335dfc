"""Date splits on the exchange calendar: the default chain and the walk-forward folds.

Every length and gap is counted in trading days of the exchange calendar (holidays
included), never in calendar days or in a stock's own rows. Between two consecutive
segments lie exactly ``purge_days + embargo_days`` trading days, so a row on a segment's
last day whose target looks ``h <= purge_days`` trading days ahead never reaches a day of
the next segment.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from atft_kedro import exchange_calendar
from atft_kedro.labels import ENTRY_LAG_DAYS
from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.schemas.model_input import DateRange, Fold, Splits


def trading_days_from_calendar(trading_calendar: pl.DataFrame) -> np.ndarray:
    """The exchange's trading days (HolidayDivision '1' or '2', :mod:`atft_kedro.exchange_calendar`), ascending.

    Args:
        trading_calendar: canonical ``trading_calendar`` (Date, HolidayDivision '0'..'3').

    Returns:
        [n_trading_days] ``datetime64[D]``.
    """
    days = exchange_calendar.trading_days(trading_calendar)
    if days.is_empty():
        raise ValueError(
            "table trading_calendar has no trading day "
            f"(HolidayDivision in {list(exchange_calendar.TRADING_DIVISIONS)})"
        )
    return days.to_numpy().astype("datetime64[D]")


def feature_trading_days(trading_days: np.ndarray, feature_dates: np.ndarray) -> np.ndarray:
    """The trading days from the first to the last feature date, checking every feature date trades.

    Args:
        trading_days: [n] ``datetime64[D]`` ascending, from the exchange calendar.
        feature_dates: [m] ``datetime64[D]``, the distinct dates of the features table.

    Returns:
        [k] ``datetime64[D]``: every trading day in [min(feature_dates), max(feature_dates)].
    """
    if feature_dates.size == 0:
        raise ValueError("table features has no rows: nothing to split")
    off_calendar = np.setdiff1d(feature_dates, trading_days)
    if off_calendar.size:
        raise ValueError(
            f"table features has {off_calendar.size} dates that are not trading days of "
            f"trading_calendar, e.g. {[str(d) for d in off_calendar[:10]]}"
        )
    lo, hi = feature_dates.min(), feature_dates.max()
    return trading_days[(trading_days >= lo) & (trading_days <= hi)]


def _range(days: np.ndarray, first: int, last: int) -> DateRange:
    return DateRange(start=_as_date(days[first]), end=_as_date(days[last]))


def _as_date(day: np.datetime64) -> dt.date:
    return day.astype("datetime64[D]").astype(dt.date)


def check_purge(params: NormalizationParams, horizons: tuple[int, ...]) -> None:
    """Raise unless the purge covers the longest label window: entry day plus the longest horizon.

    The label of day t ends at t + 1 + h (``atft_kedro.labels``), so a training row on a
    segment's last day looks ``1 + h`` trading days ahead.
    """
    reach = max(horizons) + ENTRY_LAG_DAYS
    if params.purge_days < reach:
        raise ValueError(
            f"normalization.purge_days = {params.purge_days} is shorter than the longest label window "
            f"{reach} (entry {ENTRY_LAG_DAYS} + longest horizon {max(horizons)} in params:horizons): a "
            f"training target would look into validation/test. Set purge_days >= {reach}."
        )


def make_date_splits(
    days: np.ndarray, params: NormalizationParams, horizons: tuple[int, ...]
) -> Splits:
    """Cut the trading days into the default chain and the walk-forward folds.

    Args:
        days: [k] ``datetime64[D]``, every trading day the features span, ascending.
        params: the normalization parameters (warm-up, purge, embargo, chain, folds).
        horizons: the target horizons; ``purge_days`` must be >= the longest.

    Returns:
        ``Splits`` whose segments are inclusive ranges of trading days.
    """
    check_purge(params, horizons)
    gap = params.purge_days + params.embargo_days
    first = params.warmup_days
    usable = days.size - first
    available = usable - 2 * gap
    n_val = int(np.floor(params.chain.validation_fraction * max(available, 0)))
    n_test = int(np.floor(params.chain.test_fraction * max(available, 0)))
    n_train = available - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(
            f"normalization: the features span {days.size} trading days; after warmup_days="
            f"{params.warmup_days} and two gaps of purge_days + embargo_days = {gap} there are "
            f"{available}, giving train/validation/test = {n_train}/{n_val}/{n_test} days. "
            "Each needs at least one: lower warmup_days, purge/embargo or the chain fractions, "
            "or build features over a longer period."
        )
    train_end = first + n_train - 1
    val_start = train_end + gap + 1
    val_end = val_start + n_val - 1
    test_start = val_end + gap + 1
    test_end = days.size - 1
    folds = _walk_forward_folds(days, params, first_usable=first)
    return Splits(
        purge_days=params.purge_days,
        embargo_days=params.embargo_days,
        train=_range(days, first, train_end),
        validation=_range(days, val_start, val_end),
        test=_range(days, test_start, test_end),
        folds=folds,
    )


def _walk_forward_folds(days: np.ndarray, params: NormalizationParams, first_usable: int) -> tuple[Fold, ...]:
    """Folds whose test blocks tile the last ``count x test_days`` days, earliest fold first."""
    spec = params.folds
    gap = params.purge_days + params.embargo_days
    oos_start = days.size - spec.count * spec.test_days
    folds = []
    for k in range(spec.count):  # a loop over a handful of folds, not over rows
        test_start = oos_start + k * spec.test_days
        test_end = test_start + spec.test_days - 1
        val_end = test_start - gap - 1
        val_start = val_end - spec.validation_days + 1
        train_end = val_start - gap - 1
        train_start = train_end - spec.train_days + 1
        if train_start < first_usable:
            raise ValueError(
                f"normalization.folds: fold {k} of {spec.count} would start training "
                f"{first_usable - train_start} trading days before the first usable day "
                f"{_as_date(days[first_usable])} (after warmup_days={params.warmup_days}): the features span "
                f"{days.size} trading days and the {spec.count} test blocks of {spec.test_days} take the last "
                f"{spec.count * spec.test_days}; lower folds.count, folds.test_days, folds.train_days or "
                "folds.validation_days."
            )
        if spec.window == "expanding":
            train_start = first_usable
        folds.append(
            Fold(
                train=_range(days, train_start, train_end),
                validation=_range(days, val_start, val_end),
                test=_range(days, test_start, test_end),
            )
        )
    return tuple(folds)
