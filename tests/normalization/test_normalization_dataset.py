"""ModelInputDataset: exact memory-mapped round trip, atomic saves, catalog entry."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DataCatalog

from atft_kedro.datasets import ModelInputDataset
from atft_kedro.datasets import atomic
from atft_kedro.datasets import model_input_dataset as module
from atft_kedro.schemas.model_input import ModelInput


def _model_input(seed: int, dtype: str = "float32") -> ModelInput:
    rng = np.random.default_rng(seed)
    d, n, f = 7, 5, 3
    targets = rng.normal(size=(d, n, 2)).astype(np.float32)
    targets[rng.random(targets.shape) < 0.3] = np.nan
    return ModelInput(
        features=rng.normal(size=(d, n, f)).astype(dtype),
        mask=rng.random((d, n)) < 0.8,
        targets=targets,
        dates=np.arange(np.datetime64("2022-01-04"), np.datetime64("2022-01-11")),
        codes=np.array(["13010", "13050", "72030", "86970", "99840"]),
        horizons=np.array([1, 5], dtype=np.int64),
        feature_names=("px_ret_1d", "px_vol_20d", "tech_rsi_14"),
        manifest_hash=f"hash-{seed}",
    )


def _assert_same(a: ModelInput, b: ModelInput) -> None:
    for name in ("features", "mask", "targets", "dates", "codes", "horizons"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.feature_names == b.feature_names and a.manifest_hash == b.manifest_hash


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_round_trip_is_exact_and_memory_mapped(tmp_path, dtype):
    dataset = ModelInputDataset(filepath=str(tmp_path / "model_input"))
    original = _model_input(1, dtype)
    dataset.save(original)
    loaded = dataset.load()
    _assert_same(loaded, original)
    for name in ("features", "mask", "targets", "dates", "codes", "horizons"):
        array = getattr(loaded, name)
        assert isinstance(array, np.memmap) and not array.flags.writeable, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_input"]


def test_a_crash_while_writing_leaves_the_previous_model_input_intact(tmp_path, monkeypatch):
    dataset = ModelInputDataset(filepath=str(tmp_path / "model_input"))
    old = _model_input(1)
    dataset.save(old)
    real_save = np.save

    def dying_save(file, array, **kwargs):
        if getattr(file, "name", "").endswith("targets.npy"):
            raise OSError("disk full")
        real_save(file, array, **kwargs)

    monkeypatch.setattr(module.np, "save", dying_save)
    with pytest.raises(Exception, match="disk full"):
        dataset.save(_model_input(2))
    monkeypatch.setattr(module.np, "save", real_save)
    _assert_same(dataset.load(), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_input"]
    new = _model_input(3)
    dataset.save(new)
    _assert_same(dataset.load(), new)


def test_a_crash_between_the_renames_puts_the_previous_one_back(tmp_path, monkeypatch):
    target = tmp_path / "model_input"
    dataset = ModelInputDataset(filepath=str(target))
    old = _model_input(1)
    dataset.save(old)
    real_replace = atomic.os.replace

    def dying_replace(src, dst):
        if ".writing-" in str(src):  # the new directory would have replaced the old one here
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", dying_replace)
    with pytest.raises(Exception, match="power cut"):
        dataset.save(_model_input(2))
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert dataset.exists()
    _assert_same(dataset.load(), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_input"]
    new = _model_input(3)
    dataset.save(new)
    _assert_same(dataset.load(), new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_input"]


def test_resaving_a_loaded_model_input_over_itself(tmp_path):
    dataset = ModelInputDataset(filepath=str(tmp_path / "model_input"))
    dataset.save(_model_input(4))
    loaded = dataset.load()
    dataset.save(loaded)
    _assert_same(dataset.load(), _model_input(4))


def test_catalog_entry_and_missing_dataset_error(tmp_path):
    catalog = DataCatalog.from_config(
        {"model_input": {"type": "atft_kedro.datasets.ModelInputDataset",
                         "filepath": str(tmp_path / "05_model_input" / "model_input")}}
    )
    with pytest.raises(Exception, match="run the normalization pipeline first"):
        catalog.load("model_input")
    catalog.save("model_input", _model_input(5))
    _assert_same(catalog.load("model_input"), _model_input(5))


def test_meta_mismatch_is_reported(tmp_path):
    dataset = ModelInputDataset(filepath=str(tmp_path / "model_input"))
    dataset.save(_model_input(6))
    np.save(tmp_path / "model_input" / "mask.npy", np.zeros((2, 2), dtype=bool))
    with pytest.raises(Exception, match=r"mask.npy.*meta.json says"):
        dataset.load()
