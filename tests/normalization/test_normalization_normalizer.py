"""The robust normalizer: fitted on train only and on every train row, degenerate features."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import normalization_fakes as fakes
from atft_kedro.normalization.robust import fit_robust_state, median_and_mad
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.pipelines.normalization.nodes import build_model_input, fit_normalizer, make_splits
from atft_kedro.schemas.model_input import Splits

N_STOCKS = 10


@pytest.fixture(scope="module")
def setup():
    cal = fakes.calendar()
    days = fakes.trading_days(cal)
    feats = fakes.features(days, N_STOCKS)
    params = fakes.params()
    splits = make_splits(cal, feats, params, fakes.HORIZONS)
    manifest = fakes.manifest()
    return feats, manifest, splits, params, days


def _train_mask(feats: pl.DataFrame, splits: dict) -> pl.Series:
    train = Splits.model_validate(splits).train
    return feats.get_column("Date").is_between(train.start, train.end)


def test_perturbing_every_non_training_value_leaves_the_state_identical(setup):
    feats, manifest, splits, params, _ = setup
    state = fit_normalizer(feats, manifest, splits, params)
    in_train = _train_mask(feats, splits)
    assert 0 < int(in_train.sum()) < feats.height
    rng = np.random.default_rng(7)
    perturbed = feats.with_columns(
        [
            pl.when(in_train)
            .then(pl.col(name))
            .otherwise(pl.Series(rng.normal(50.0, 30.0, feats.height).astype(np.float32)))
            .alias(name)
            for name in manifest.names
        ]
    )
    # validation, test (and the gaps) really changed, also in the all-null and constant columns
    assert not perturbed.filter(~in_train).equals(feats.filter(~in_train))
    assert fit_normalizer(perturbed, manifest, splits, params) == state
    # ... while changing training values does change the state: the check can fail
    shifted = feats.with_columns(
        pl.when(in_train).then(pl.col("px_vol_20d") + 1.0).otherwise(pl.col("px_vol_20d")).alias("px_vol_20d")
    )
    assert fit_normalizer(shifted, manifest, splits, params) != state


def test_statistics_use_every_finite_training_value(setup):
    feats, manifest, splits, params, _ = setup
    state = fit_normalizer(feats, manifest, splits, params)
    train = feats.filter(_train_mask(feats, splits))
    assert state.n_train_rows == train.height
    for i, name in enumerate(manifest.names):
        values = train.get_column(name).drop_nulls().to_numpy()
        assert state.n_valid[i] == values.size
        if values.size == 0:
            assert (state.center[i], state.scale[i]) == (0.0, 1.0)
            continue
        median = np.median(values)
        mad = np.median(np.abs(values - np.float32(median)))
        assert state.center[i] == pytest.approx(float(median), rel=1e-6, abs=1e-12)
        assert state.scale[i] == pytest.approx(max(1.4826 * float(mad), params.robust.scale_floor), rel=1e-5)
    constant = manifest.names.index("stmt_constant")
    assert state.scale[constant] == params.robust.scale_floor
    assert state.fitted_on == Splits.model_validate(splits).train
    assert state.manifest_hash == manifest.hash


def test_nan_and_inf_count_as_missing_in_the_fit(setup):
    feats, manifest, splits, params, _ = setup
    train = Splits.model_validate(splits).train
    base = fit_robust_state(feats, manifest, train, params)
    first_train_row = _train_mask(feats, splits).arg_true()[0]
    vol = feats.get_column("px_vol_20d").to_numpy().copy()
    vol[first_train_row] = np.inf
    dirty = feats.with_columns(pl.Series("px_vol_20d", vol, dtype=pl.Float32))
    state = fit_robust_state(dirty, manifest, train, params)
    i = manifest.names.index("px_vol_20d")
    assert state.n_valid[i] == base.n_valid[i] - 1
    assert np.isfinite(state.center[i]) and np.isfinite(state.scale[i])


def test_degenerate_inputs_give_no_nan_or_inf_in_model_input(setup):
    """A day with fewer stocks than min_stocks, an all-null feature and a constant one."""
    feats, manifest, splits, params, days = setup
    thin_day = days[300]
    codes = sorted(feats.get_column("Code").unique().to_list())
    few = params.cross_section.min_stocks - 2
    thin = feats.filter((pl.col("Date") != thin_day) | pl.col("Code").is_in(codes[:few]))
    state = fit_normalizer(thin, manifest, splits, params)
    targets = fakes.targets_from_prices(fakes.prices(days, N_STOCKS))
    model_input = build_model_input(thin, targets, manifest, state, params, fakes.HORIZONS).materialize()
    assert np.isfinite(model_input.features).all()
    d = int(np.flatnonzero(model_input.dates == np.datetime64(thin_day))[0])
    assert model_input.mask[d].sum() <= few
    # the thin day's cross-standardised feature is only robust-scaled: its raw values map back
    s = NormalizerState.from_json_dict(state)
    f = manifest.names.index("tech_rsi_14")
    day_rows = thin.filter(pl.col("Date") == thin_day).sort("Code")
    raw = day_rows.get_column("tech_rsi_14").to_numpy()
    stock = np.searchsorted(model_input.codes, day_rows.get_column("Code").to_numpy())
    expected = np.clip((raw - np.float32(s.center[f])) / np.float32(s.scale[f]), -5, 5)
    expected = np.where(np.isnan(raw), 0.0, expected)
    np.testing.assert_allclose(model_input.features[d, stock, f], expected, rtol=1e-6, atol=1e-6)
    # the all-null feature is all zero; the constant one is 0 (its own median) wherever present
    assert not model_input.features[:, :, manifest.names.index("stmt_all_null")].any()
    assert not model_input.features[:, :, manifest.names.index("stmt_constant")].any()


def test_cross_sectional_groups_are_standardised_per_day(setup):
    feats, manifest, splits, params, days = setup
    wide = fakes.params(robust={"scale_floor": 1e-6, "clip": 1000.0})
    state = fit_normalizer(feats, manifest, splits, wide)
    targets = fakes.targets_from_prices(fakes.prices(days, N_STOCKS))
    model_input = build_model_input(feats, targets, manifest, state, wide, fakes.HORIZONS).materialize()
    f = manifest.names.index("tech_rsi_14")
    raw = (
        feats.select("Date", "Code", "tech_rsi_14").pivot(on="Code", index="Date", values="tech_rsi_14")
        .sort("Date").select(model_input.codes.tolist()).to_numpy()
    )
    valid = ~np.isnan(raw)
    enough = valid.sum(axis=1) >= wide.cross_section.min_stocks
    values = np.where(valid, model_input.features[:, :, f], np.nan)[enough]
    np.testing.assert_allclose(np.nanmean(values, axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.nanstd(values, axis=1), 1.0, rtol=1e-4)
    # a feature outside the groups is not standardised per day
    g = manifest.names.index("px_vol_20d")
    assert np.abs(model_input.features[:, :, g].mean(axis=1)).max() > 0.1


def test_unknown_cross_section_group_is_refused(setup):
    feats, manifest, splits, params, _ = setup
    bad = fakes.params(cross_section={"groups": ["tehc"], "min_stocks": 5, "std_floor": 1e-6})
    with pytest.raises(ValueError, match=r"cross_section.groups lists \['tehc'\]"):
        fit_normalizer(feats, manifest, splits, bad)


def test_an_edited_state_is_refused(setup):
    feats, manifest, splits, params, _ = setup
    state = fit_normalizer(feats, manifest, splits, params)
    edited = {**state.model_dump(mode="json"), "clip": 3.0}
    with pytest.raises(ValueError, match=r"identity .* does not match its content"):
        NormalizerState.from_json_dict(edited)


def test_median_and_mad_match_numpy_with_missing_values_and_ties():
    rng = np.random.default_rng(0)
    for trial in range(400):
        n = int(rng.integers(1, 80)) if trial < 390 else int(rng.integers(5_000, 50_000))
        x = (rng.standard_normal(n) * rng.uniform(0.1, 10.0)).astype(np.float32)
        if trial % 3 == 0:
            x = np.round(x)  # ties
        x[rng.random(n) < rng.uniform(0.0, 0.5)] = np.nan
        if trial % 4 == 0:
            x[rng.integers(n)] = np.inf
            x[rng.integers(n)] = -np.inf
        finite = x[np.isfinite(x)].astype(np.float64)
        median, mad, count = median_and_mad(x.copy())
        assert count == finite.size
        if finite.size == 0:
            assert (median, mad) == (0.0, 0.0)
            continue
        want = np.median(finite)
        assert median == pytest.approx(want, rel=1e-6, abs=1e-7)
        assert mad == pytest.approx(np.median(np.abs(finite - np.float32(want))), rel=1e-5, abs=1e-6)


def test_the_state_does_not_depend_on_row_order_or_laziness(setup):
    """Date-sorted eager tables are sliced, others filtered: both read the same training rows."""
    feats, manifest, splits, params, _ = setup
    state = fit_normalizer(feats, manifest, splits, params)
    shuffled = feats.sample(fraction=1.0, shuffle=True, seed=2)
    assert not shuffled.get_column("Date").is_sorted()
    assert fit_normalizer(shuffled, manifest, splits, params) == state
    assert fit_normalizer(feats.lazy(), manifest, splits, params) == state
