"""The dense model input: layout, mask, targets, dtype, refusal of a foreign manifest."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from kedro.io.core import DatasetError

import normalization_fakes as fakes
from atft_kedro.datasets import ModelInputDataset
from atft_kedro.normalization import dense
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.pipelines.normalization.nodes import build_model_input, fit_normalizer, make_splits
from atft_kedro.schemas.manifest import FeatureManifest, FeatureSpec, ManifestMismatchError

N_STOCKS = 9


@pytest.fixture(scope="module")
def built():
    cal = fakes.calendar()
    days = fakes.trading_days(cal)
    feats = fakes.features(days, N_STOCKS, drop_fraction=0.2)
    targets = fakes.targets_from_prices(fakes.prices(days, N_STOCKS))
    params = fakes.params()
    manifest = fakes.manifest()
    splits = make_splits(cal, feats, params, fakes.HORIZONS)
    state = fit_normalizer(feats, manifest, splits, params)
    model_input = build_model_input(feats, targets, manifest, state, params, fakes.HORIZONS).materialize()
    return feats, targets, manifest, params, state, model_input


def test_layout_mask_and_values(built):
    feats, targets, manifest, params, state_dict, mi = built
    state = NormalizerState.from_json_dict(state_dict)
    assert mi.features.dtype == np.float32 and mi.targets.dtype == np.float32 and mi.mask.dtype == bool
    assert list(mi.dates) == sorted(set(mi.dates)) and mi.dates.dtype == np.dtype("datetime64[D]")
    assert list(mi.codes) == sorted(feats.get_column("Code").unique().to_list())
    assert mi.feature_names == tuple(manifest.names) and mi.manifest_hash == manifest.hash
    np.testing.assert_array_equal(mi.horizons, fakes.HORIZONS)
    # mask: exactly the (Date, Code) rows of the features table
    d = np.searchsorted(mi.dates, feats.get_column("Date").to_numpy().astype("datetime64[D]"))
    s = np.searchsorted(mi.codes, feats.get_column("Code").to_numpy())
    expected_mask = np.zeros(mi.mask.shape, dtype=bool)
    expected_mask[d, s] = True
    np.testing.assert_array_equal(mi.mask, expected_mask)
    assert 0.7 < mi.mask.mean() < 0.9
    # a feature outside the cross-sectional groups: robust-scaled value of its own row, 0 where missing
    f = manifest.names.index("px_ret_1d")
    raw = feats.get_column("px_ret_1d").to_numpy()
    expected = np.clip((raw - np.float32(state.center[f])) / np.float32(state.scale[f]), -5.0, 5.0)
    np.testing.assert_allclose(mi.features[d, s, f], np.nan_to_num(expected, nan=0.0), rtol=1e-6, atol=1e-7)
    assert not mi.features[~mi.mask].any()
    # targets: the row's own forward returns, NaN where unknown or where the stock has no feature row
    joined = feats.select("Date", "Code").join(targets, on=["Date", "Code"], how="left")
    for j, h in enumerate(fakes.HORIZONS):
        want = joined.get_column(f"target_ret_{h}d").cast(pl.Float32).to_numpy()
        np.testing.assert_array_equal(mi.targets[d, s, j], want)
    assert np.isnan(mi.targets[~mi.mask]).all()
    assert np.isnan(mi.targets[-1, :, 0]).all() and np.isfinite(mi.targets[0, mi.mask[0], 3]).all()


def test_row_order_and_lazy_input_do_not_matter(built):
    feats, targets, manifest, params, state, mi = built
    shuffled = feats.sample(fraction=1.0, shuffle=True, seed=11)
    tiny_blocks = fakes.params(block_mib=1)
    again = build_model_input(
        shuffled.lazy(), targets.sample(fraction=1.0, shuffle=True, seed=5).lazy(),
        manifest, state, tiny_blocks, fakes.HORIZONS,
    ).materialize()
    np.testing.assert_array_equal(again.features, mi.features)
    np.testing.assert_array_equal(again.mask, mi.mask)
    np.testing.assert_array_equal(again.targets, mi.targets)


def test_float16_features_when_conf_says(built):
    feats, targets, manifest, params, state, mi = built
    half = build_model_input(
        feats, targets, manifest, state, fakes.params(dtype="float16"), fakes.HORIZONS
    ).materialize()
    assert half.features.dtype == np.float16 and half.targets.dtype == np.float32
    np.testing.assert_allclose(half.features.astype(np.float32), mi.features, atol=5e-3)


def test_a_manifest_that_differs_from_the_normalizers_is_refused(built):
    feats, targets, manifest, params, state, _ = built
    renamed = FeatureManifest(
        features=tuple(
            spec.model_copy(update={"name": "tech_rsi_9"}) if spec.name == "tech_rsi_14" else spec
            for spec in manifest.features
        )
    )
    frame = feats.rename({"tech_rsi_14": "tech_rsi_9"})
    with pytest.raises(ManifestMismatchError, match=r"only in the manifest \['tech_rsi_9'\].*only in the normalizer \['tech_rsi_14'\].*Refit the normalizer"):
        build_model_input(frame, targets, renamed, state, params, fakes.HORIZONS)
    relagged = FeatureManifest(
        features=tuple(
            spec.model_copy(update={"lag_days": 1}) if spec.name == "px_ret_1d" else spec
            for spec in manifest.features
        )
    )
    with pytest.raises(ManifestMismatchError, match=r"specs \(group, source, lag\) differ"):
        build_model_input(feats, targets, relagged, state, params, fakes.HORIZONS)


def test_features_that_do_not_follow_the_manifest_are_refused(built):
    feats, targets, manifest, params, state, _ = built
    with pytest.raises(ValueError, match=r"1 missing \['stmt_all_null'\]"):
        build_model_input(feats.drop("stmt_all_null"), targets, manifest, state, params, [1])
    swapped = feats.select("Date", "Code", "px_vol_20d", "px_ret_1d", *manifest.names[2:])
    with pytest.raises(ValueError, match=r"another order"):
        build_model_input(swapped, targets, manifest, state, params, [1])
    as_f64 = feats.with_columns(pl.col("px_vol_20d").cast(pl.Float64))
    with pytest.raises(ValueError, match=r"must be Float32.*px_vol_20d"):
        build_model_input(as_f64, targets, manifest, state, params, [1])


def test_duplicate_rows_and_missing_target_columns_are_refused(built):
    feats, targets, manifest, params, state, _ = built
    with pytest.raises(ValueError, match=r"table features has 1 duplicate \(Date, Code\) rows"):
        build_model_input(pl.concat([feats, feats.head(1)]), targets, manifest, state, params, [1])
    with pytest.raises(ValueError, match=r"table targets lacks columns \['target_ret_3d'\]"):
        build_model_input(feats, targets, manifest, state, params, [1, 3])


def _in_blocks_of(blocks, n_days: int):
    """The same model input, its features computed in blocks of ``n_days`` days."""
    d = blocks.features_shape[0]
    cut = tuple(slice(lo, min(lo + n_days, d)) for lo in range(0, d, n_days))
    return dataclasses.replace(blocks, source=dataclasses.replace(blocks.source, day_blocks=cut))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_model_input_written_block_by_block_equals_the_one_block_build(built, tmp_path, dtype):
    """The node's blocks, written to features.npy one after the other, give the in-memory array bit for bit."""
    feats, targets, manifest, _, state, _ = built
    params = fakes.params(dtype=dtype, block_mib=10**6)
    one_block = build_model_input(feats.lazy(), targets, manifest, state, params, fakes.HORIZONS)
    assert len(one_block.source.day_blocks) == 1
    whole = one_block.materialize()
    blocks = _in_blocks_of(one_block, 7)
    assert len(blocks.source.day_blocks) > 50
    dataset = ModelInputDataset(filepath=str(tmp_path / "model_input"))
    dataset.save(blocks)
    loaded = dataset.load()
    assert isinstance(loaded.features, np.memmap) and loaded.features.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.features, whole.features)
    assert loaded.features.tobytes() == whole.features.tobytes()
    np.testing.assert_array_equal(loaded.mask, whole.mask)
    np.testing.assert_array_equal(loaded.targets, whole.targets)
    assert loaded.feature_names == whole.feature_names and loaded.manifest_hash == whole.manifest_hash
    # and in memory, block by block, the same again; the values are real (varied, mostly non-zero)
    np.testing.assert_array_equal(blocks.materialize().features, whole.features)
    assert np.unique(whole.features[whole.mask]).size > 1000


def test_a_failing_block_leaves_the_previous_model_input_whole(built, tmp_path, monkeypatch):
    feats, targets, manifest, params, state, mi = built
    dataset = ModelInputDataset(filepath=str(tmp_path / "model_input"))
    dataset.save(mi)
    blocks = _in_blocks_of(build_model_input(feats, targets, manifest, state, params, fakes.HORIZONS), 30)
    normalized = []
    original = dense._normalize_days

    def fail_on_the_third_block(*args):
        if len(normalized) == 2:
            raise MemoryError("no room for block 3")
        normalized.append(1)
        original(*args)

    monkeypatch.setattr(dense, "_normalize_days", fail_on_the_third_block)
    with pytest.raises(DatasetError, match="no room for block 3"):
        dataset.save(blocks)
    monkeypatch.undo()
    np.testing.assert_array_equal(dataset.load().features, mi.features)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_input"]
