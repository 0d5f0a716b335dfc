"""Checkpoint round trip (through the catalog's dataset), manifest and format refusal, forecasting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from atft_kedro.datasets.torch_checkpoint import TorchCheckpointDataset
from atft_kedro.model.checkpoint import build_model_from_checkpoint, forecast_days
from atft_kedro.model.trainer import CudaUnavailableError, train_model
from atft_kedro.schemas.manifest import FeatureManifest, ManifestMismatchError

from model_fakes import loss_params, model_params, training_params


@pytest.fixture(scope="module")
def trained(dataset):
    ck, _ = train_model(
        dataset.model_input, dataset.splits, dataset.graph, dataset.manifest, model_params(), loss_params(),
        training_params(), normalizer_identity="norm-1",
    )
    return ck


def test_round_trip_reproduces_predictions_exactly(dataset, trained, tmp_path):
    mi = dataset.model_input
    days = mi.day_indices(dataset.splits.test.start, dataset.splits.test.end)
    model = build_model_from_checkpoint(trained, dataset.manifest)
    before = forecast_days(model, mi, dataset.graph, days)
    checkpoint_dataset = TorchCheckpointDataset(filepath=str(tmp_path / "model.pt"))
    checkpoint_dataset.save(trained)
    loaded = checkpoint_dataset.load()
    after = forecast_days(build_model_from_checkpoint(loaded, dataset.manifest), mi, dataset.graph, days)
    assert before.shape == (len(days), mi.n_stocks, 2, 3)
    np.testing.assert_array_equal(before, after)
    assert np.isfinite(before[mi.mask[days]]).all()
    assert loaded["normalizer_identity"] == "norm-1"
    assert loaded["manifest_hash"] == dataset.manifest.hash
    # a day predicted alone equals the same day inside a longer request
    np.testing.assert_allclose(forecast_days(model, mi, dataset.graph, days[3:4])[0], before[3], rtol=0, atol=1e-6)


def test_unlisted_stocks_get_nan_forecasts_and_do_not_change_the_others(dataset, trained):
    mi = dataset.model_input
    days = mi.day_indices(dataset.splits.test.start, dataset.splits.test.end)
    model = build_model_from_checkpoint(trained, dataset.manifest)
    mask = mi.mask.copy()
    mask[days[2] :, [3, 9]] = False  # two stocks delisted during the test period
    features = np.where(mask[..., None], mi.features, 0.0).astype(np.float32)
    delisted = dataclasses.replace(mi, mask=mask, features=features)
    quantiles = forecast_days(model, delisted, dataset.graph, days)
    assert mask[days].sum() < mask[days].size  # the test days do have unlisted stocks
    np.testing.assert_array_equal(np.isnan(quantiles).all((2, 3)), ~mask[days])
    assert np.isfinite(quantiles[mask[days]]).all()
    # whatever an unlisted stock's row holds, the listed stocks' forecasts do not change
    garbage = np.where(mask[..., None], features, 50.0).astype(np.float32)
    other = forecast_days(model, dataclasses.replace(delisted, features=garbage), dataset.graph, days)
    np.testing.assert_allclose(other[mask[days]], quantiles[mask[days]], rtol=0, atol=1e-6)


def test_changed_manifest_is_refused_naming_the_features(dataset, trained):
    data = dataset.manifest.to_json_dict()
    data["features"][1]["name"] = "px_renamed"
    data["hash"] = ""
    changed = FeatureManifest.from_json_dict(data)
    with pytest.raises(ManifestMismatchError, match=r"px_renamed.*px_f1"):
        build_model_from_checkpoint(trained, changed)


def test_a_checkpoint_of_another_format_is_refused(dataset, trained):
    with pytest.raises(ValueError, match="format_version 0, expected 1"):
        build_model_from_checkpoint({**trained, "format_version": 0}, dataset.manifest)


def test_forecasts_run_in_day_batches_from_the_checkpoint_conf(dataset, trained):
    mi = dataset.model_input
    days = mi.day_indices(dataset.splits.test.start, dataset.splits.test.end)
    ck = {**trained, "training_params": {**trained["training_params"], "forecast_days_per_batch": 3}}
    model = build_model_from_checkpoint(ck, dataset.manifest)
    assert model.forecast_days_per_batch == 3 and next(model.parameters()).device.type == "cpu"
    passes = []
    model.register_forward_hook(lambda module, inputs, output: passes.append(inputs[0].shape[0]))
    batched = forecast_days(model, mi, dataset.graph, days)
    assert passes == [3 * mi.n_stocks] * (len(days) // 3) + ([len(days) % 3 * mi.n_stocks] if len(days) % 3 else [])
    one_pass = forecast_days(model, mi, dataset.graph, days, days_per_batch=len(days))
    np.testing.assert_allclose(batched, one_pass, rtol=0, atol=1e-6)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_trained_model_is_not_moved_to_the_cpu_silently(dataset, trained):
    ck = {**trained, "training_params": {**trained["training_params"], "device": "cuda"}}
    with pytest.raises(CudaUnavailableError, match="training.device is 'cuda'"):
        build_model_from_checkpoint(ck, dataset.manifest)
    model = build_model_from_checkpoint(ck, dataset.manifest, device="cpu")  # an explicit choice
    assert next(model.parameters()).device.type == "cpu"


def test_checkpoint_without_forecast_batch_is_refused_with_advice(dataset, trained):
    params = {k: v for k, v in trained["training_params"].items() if k != "forecast_days_per_batch"}
    with pytest.raises(KeyError, match="re-run the training pipeline"):
        build_model_from_checkpoint({**trained, "training_params": params}, dataset.manifest)
