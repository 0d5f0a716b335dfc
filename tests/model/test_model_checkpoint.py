"""Checkpoint round trip, manifest refusal, prediction and feature importance."""

from __future__ import annotations

import numpy as np
import pytest

from atft_kedro.model.checkpoint import (
    build_model_from_checkpoint,
    feature_importance,
    load_checkpoint,
    predict,
    save_checkpoint,
)
from atft_kedro.model.trainer import train_model
from atft_kedro.schemas.manifest import FeatureManifest, ManifestMismatchError

from model_fakes import loss_params, model_params, training_params


@pytest.fixture(scope="module")
def trained(dataset):
    ck, _ = train_model(
        dataset.model_input, dataset.splits, dataset.graph, dataset.manifest, model_params(), loss_params(),
        training_params(), None, normalizer_identity="norm-1",
    )
    return ck


def test_round_trip_reproduces_predictions_exactly(dataset, trained, tmp_path):
    mi = dataset.model_input
    days = mi.day_indices(dataset.splits.test.start, dataset.splits.test.end)
    model = build_model_from_checkpoint(trained, dataset.manifest)
    before = predict(model, mi, dataset.graph, days)
    path = tmp_path / "model.pt"
    save_checkpoint(trained, path)
    loaded = load_checkpoint(path)
    after = predict(build_model_from_checkpoint(loaded, dataset.manifest), mi, dataset.graph, days)
    assert before.shape == (len(days), mi.n_stocks, 2, 3)
    np.testing.assert_array_equal(before, after)
    assert np.isnan(before[:, ~mi.mask[days[0]]]).all() or mi.mask[days].all()
    assert np.isfinite(before[mi.mask[days]]).all()
    assert loaded["normalizer_identity"] == "norm-1"
    assert loaded["manifest_hash"] == dataset.manifest.hash
    # a day predicted alone equals the same day inside a longer request
    np.testing.assert_allclose(predict(model, mi, dataset.graph, days[3:4])[0], before[3], rtol=0, atol=1e-6)


def test_changed_manifest_is_refused_naming_the_features(dataset, trained):
    data = dataset.manifest.to_json_dict()
    data["features"][1]["name"] = "px_renamed"
    data["hash"] = ""
    changed = FeatureManifest.from_json_dict(data)
    with pytest.raises(ManifestMismatchError, match=r"px_renamed.*px_f1"):
        build_model_from_checkpoint(trained, changed)


def test_feature_importance_is_a_distribution(dataset, trained):
    mi = dataset.model_input
    model = build_model_from_checkpoint(trained, dataset.manifest)
    importance = feature_importance(model, mi, dataset.graph, np.arange(10, 30))
    assert importance.shape == (mi.n_features,)
    assert abs(importance.sum() - 1.0) < 1e-6 and (importance > 0).all()
