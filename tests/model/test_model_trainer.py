"""The trainer: it learns, it is repeatable, it uses its conf, it reports collapse loudly."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
import torch

from atft_kedro.model.trainer import CudaUnavailableError, PredictionCollapseError, train_model
from atft_kedro.schemas.manifest import ManifestMismatchError

from model_fakes import Dataset, loss_params, make_dataset, make_manifest, model_params, training_params


def _train(ds: Dataset, model=None, loss=None, training=None, resume_from=None):
    return train_model(
        ds.model_input,
        ds.splits,
        ds.graph,
        ds.manifest,
        model or model_params(),
        loss or loss_params(),
        training or training_params(),
        resume_from,
        normalizer_identity="normalizer-test",
    )


def _phase(name="all", epochs=2, fan=True, gat=True, lr_scale=1.0):
    return {"name": name, "epochs": epochs, "lr_scale": lr_scale, "fan": fan, "gat": gat}


def _shuffled_training_targets(ds: Dataset, seed: int) -> Dataset:
    """Permute the targets across stocks within each training day (kills the signal there)."""
    mi = ds.model_input
    targets = mi.targets.copy()
    rng = np.random.default_rng(seed)
    for d in mi.day_indices(ds.splits.train.start, ds.splits.train.end):
        targets[d] = targets[d, rng.permutation(mi.n_stocks)]
    return dataclasses.replace(ds, model_input=dataclasses.replace(mi, targets=targets))


def test_model_learns_signal_not_noise():
    ds = make_dataset(n_days=160, n_stocks=24, seed=11)
    training = training_params(phases=[_phase(epochs=6)])
    _, history = _train(ds, training=training)
    _, shuffled = _train(_shuffled_training_targets(ds, 0), training=training)
    trained_ic, shuffled_ic = history["val_rankic_h1"].max(), shuffled["val_rankic_h1"].max()
    assert trained_ic > 0.3
    assert trained_ic > shuffled_ic + 0.2, (trained_ic, shuffled_ic)
    assert history["val_rankic_h1"][-1] > history["val_rankic_h1"][0] - 0.05


def test_seeded_runs_are_identical_on_cpu(dataset):
    training = training_params(phases=[_phase(epochs=2)])
    ck1, h1 = _train(dataset, training=training, model=model_params(dropout=0.1))
    ck2, h2 = _train(dataset, training=training, model=model_params(dropout=0.1))
    assert h1.drop("seconds").equals(h2.drop("seconds"))
    assert all(torch.equal(ck1["state_dict"][k], ck2["state_dict"][k]) for k in ck1["state_dict"])
    ck3, h3 = _train(dataset, training=training_params(seed=8, phases=[_phase(epochs=2)]))
    assert not h1.drop("seconds").equals(h3.drop("seconds"))


def test_history_columns_and_checkpoint_contents(dataset):
    ck, history = _train(dataset)
    assert history.height == 2
    for col in (
        "phase", "epoch", "loss_total", "loss_pinball", "loss_rank", "loss_ic", "loss_sharpe", "val_loss_total",
        "train_ic_h1", "train_rankic_h5", "val_ic_h5", "val_rankic_h1", "pred_spread", "lr", "gat_gate",
        "gat_grad_norm", "seconds",
    ):
        assert col in history.columns, col
    assert (history["gat_grad_norm"] > 1e-6).all()
    assert ck["manifest_hash"] == dataset.manifest.hash
    assert ck["normalizer_identity"] == "normalizer-test"
    assert ck["loss_params"]["rank_weight"] == 0.5
    assert ck["history_summary"]["best_val_rankic_primary"] == history["val_rankic_h1"].max()


def test_config_changes_reach_model_loss_and_history(dataset):
    training = training_params(phases=[_phase(epochs=1)])
    ck_a, h_a = _train(dataset, training=training)
    ck_b, h_b = _train(dataset, training=training, loss=loss_params(rank_weight=3.0))
    assert ck_b["loss_params"]["rank_weight"] == 3.0
    assert h_b["loss_total"][0] > h_a["loss_total"][0] + 1.0  # 2.5 x (1 - rankcorr) more
    ck_c, h_c = _train(dataset, training=training, model=model_params(hidden_size=8))
    assert ck_c["model_params"]["hidden_size"] == 8
    assert ck_c["history_summary"]["n_parameters"] < ck_a["history_summary"]["n_parameters"]
    assert ck_c["state_dict"]["vsn.embedding_weight"].shape[-1] == 8
    assert h_c["val_rankic_h1"][0] != h_a["val_rankic_h1"][0]


def test_phases_run_in_order_with_their_switches(dataset):
    training = training_params(
        phases=[_phase("baseline", 1, fan=False, gat=False), _phase("gat", 1, fan=True, gat=True, lr_scale=0.5)]
    )
    ck, history = _train(dataset, training=training)
    assert history["phase"].to_list() == ["baseline", "gat"]
    assert history["gat"].to_list() == [False, True]
    assert np.isnan(history["gat_grad_norm"][0]) and history["gat_grad_norm"][1] > 1e-6
    best = history.filter(pl.col("is_best")).tail(1)
    assert ck["active_components"] == {"fan": best["fan"][0], "gat": best["gat"][0]}


def test_phase_cannot_enable_an_unbuilt_branch(dataset):
    with pytest.raises(ValueError, match="phase 'all' turns GAT on but model.gat.enabled is false"):
        _train(dataset, model=model_params(gat={"enabled": False}))


def test_collapse_is_loud(dataset):
    collapse = {"min_spread": 1e9, "patience_epochs": 2, "action": "error"}
    with pytest.raises(PredictionCollapseError, match="PREDICTION COLLAPSE"):
        _train(dataset, training=training_params(collapse=collapse))
    with pytest.warns(RuntimeWarning, match="PREDICTION COLLAPSE"):
        _train(dataset, training=training_params(collapse={**collapse, "action": "warn"}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_request_without_cuda_is_an_error(dataset):
    with pytest.raises(CudaUnavailableError, match="training.device is 'cuda'"):
        _train(dataset, training=training_params(device="cuda"))


def test_manifest_must_match_model_input(dataset):
    other = dataclasses.replace(dataset, manifest=make_manifest(dataset.model_input.n_features, prefix="tech_f"))
    with pytest.raises(ManifestMismatchError, match="tech_f0"):
        _train(other)


def test_warm_start_continues_from_a_checkpoint(dataset):
    training = training_params(phases=[_phase(epochs=1)])
    ck, history = _train(dataset, training=training)
    _, resumed = _train(dataset, training=training, resume_from=ck)
    assert resumed["val_loss_total"][0] < history["val_loss_total"][0]


def test_epoch_day_sample_sets_the_steps(dataset):
    training = training_params(max_train_days_per_epoch=8, warmup_steps=5, phases=[_phase(epochs=1)])
    _, history = _train(dataset, training=training)
    assert history["lr"][0] == pytest.approx(3e-3 * 2 / 5)  # 8 days / 4 per batch = 2 warm-up steps


def test_phase_stops_early_without_improvement(dataset):
    training = training_params(lr=1e-12, patience=2, phases=[_phase(epochs=6), _phase("next", epochs=1)])
    _, history = _train(dataset, training=training)
    assert history["phase"].to_list() == ["all", "all", "all", "next"]
    assert history["is_best"].to_list() == [True, False, False, False]
