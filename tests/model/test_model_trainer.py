"""The trainer: it learns, it is repeatable, it uses its conf, it reports collapse loudly."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
import torch

from atft_kedro.model.losses import average_ranks
from atft_kedro.model.network import ATFTGATFAN
from atft_kedro.model.trainer import (
    CudaUnavailableError,
    NonFiniteGradientError,
    PredictionCollapseError,
    forward_model,
    train_model,
)
from atft_kedro.schemas.manifest import ManifestMismatchError

from model_fakes import Dataset, loss_params, make_dataset, make_manifest, model_params, training_params


def _train(ds: Dataset, model=None, loss=None, training=None):
    return train_model(
        ds.model_input,
        ds.splits,
        ds.graph,
        ds.manifest,
        model or model_params(),
        loss or loss_params(),
        training or training_params(),
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


def test_epoch_day_sample_sets_the_steps(dataset):
    training = training_params(max_train_days_per_epoch=8, warmup_steps=5, phases=[_phase(epochs=1)])
    _, history = _train(dataset, training=training)
    assert history["lr"][0] == pytest.approx(3e-3 * 2 / 5)  # 8 days / 4 per batch = 2 warm-up steps


def test_phase_stops_early_without_improvement(dataset):
    training = training_params(lr=1e-12, patience=2, phases=[_phase(epochs=6), _phase("next", epochs=1)])
    _, history = _train(dataset, training=training)
    assert history["phase"].to_list() == ["all", "all", "all", "next"]
    assert history["is_best"].to_list() == [True, False, False, False]


def _with_overflowing_day(ds: Dataset, day: int) -> Dataset:
    """One training day's features so large that the forward pass overflows (inf/NaN gradients)."""
    features = ds.model_input.features.copy()
    features[day, :, 0] = 3e38
    return dataclasses.replace(ds, model_input=dataclasses.replace(ds.model_input, features=features))


def test_non_finite_steps_are_skipped_counted_and_limited(dataset):
    broken = _with_overflowing_day(dataset, 30)  # in the windows of days 30..35 (window 6)
    training = training_params(max_skipped_step_share=0.5, phases=[_phase(epochs=2)])
    ck, history = _train(broken, training=training)
    skipped = history["skipped_steps"].to_list()
    assert all(0 < s <= 6 for s in skipped), skipped  # 6 affected days of 72: in at most 6 of the 18 steps
    assert (history["steps"] == 18).all()
    assert all(torch.isfinite(v).all() for v in ck["state_dict"].values())  # nothing non-finite was applied
    assert np.isfinite(history["val_rankic_h1"].to_numpy()).all()
    assert np.isfinite(history["loss_total"].to_numpy()).all()
    with pytest.raises(NonFiniteGradientError, match=r"epoch 1 \(phase 'all'\): \d of 18 optimiser steps"):
        _train(broken, training=training_params(max_skipped_step_share=0.05, phases=[_phase(epochs=2)]))
    _, clean = _train(dataset, training=training_params(phases=[_phase(epochs=1)]))
    assert clean["skipped_steps"].to_list() == [0]


def test_bf16_autocast_runs_each_module_in_its_documented_dtype(dataset, monkeypatch):
    dtypes: dict[str, set] = {}
    documented = {
        "fan": torch.float32, "vsn": torch.bfloat16, "temporal.lstm": torch.float32,
        "temporal.attention": torch.bfloat16, "temporal": torch.bfloat16, "heads": torch.float32,
    }
    init = ATFTGATFAN.__init__

    def init_with_hooks(self, *args, **kwargs):
        init(self, *args, **kwargs)
        for name in documented:
            def hook(module, inputs, output, name=name):
                out = output[0] if isinstance(output, tuple) else output
                dtypes.setdefault(name, set()).add(out.dtype)
            self.get_submodule(name).register_forward_hook(hook)

    monkeypatch.setattr(ATFTGATFAN, "__init__", init_with_hooks)
    training = training_params(precision="bf16", phases=[_phase(epochs=2)])
    _, history = _train(dataset, training=training)
    assert {name: tuple(found) for name, found in dtypes.items()} == {
        name: (dtype,) for name, dtype in documented.items()
    }
    for column in ("loss_total", "val_loss_total", "val_rankic_h1"):
        assert np.isfinite(history[column].to_numpy()).all(), column
    assert history["skipped_steps"].sum() == 0


def test_trainer_passes_the_once_ranked_targets_to_the_loss(dataset, monkeypatch):
    import atft_kedro.model.trainer as trainer

    seen = []
    loss = trainer.combined_loss

    def spy(quantiles, targets, stock_mask, *args, target_ranks=None, **kwargs):
        valid = torch.isfinite(targets) & stock_mask.unsqueeze(-1)
        seen.append(target_ranks is not None and torch.equal(target_ranks[valid], average_ranks(targets, valid)[valid]))
        return loss(quantiles, targets, stock_mask, *args, target_ranks=target_ranks, **kwargs)

    monkeypatch.setattr(trainer, "combined_loss", spy)
    _train(dataset, training=training_params(phases=[_phase(epochs=1)]))
    assert seen and all(seen)


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_compiled_model_matches_the_eager_one():
    """A tiny model through ``forward_model`` with ``compile: true``: TorchDynamo traces it
    (backend "eager" here: Inductor's C++ code generation takes minutes on this CPU), and
    forward and gradients match the uncompiled model."""
    torch.manual_seed(0)
    model = ATFTGATFAN(model_params(hidden_size=8, gat={"enabled": False}), n_features=5, n_horizons=2)
    compiled = forward_model(model, training_params(compile=True))
    assert isinstance(compiled, torch._dynamo.eval_frame.OptimizedModule) and compiled._orig_mod is model
    assert forward_model(model, training_params(compile=False)) is model
    compiled = torch.compile(model, backend="eager")  # fast backend, static shapes: tracing only
    g = torch.Generator().manual_seed(1)
    x, mask = torch.randn(12, 6, 5, generator=g), torch.ones(12, dtype=torch.bool)
    no_edges = (torch.zeros((2, 0), dtype=torch.long), torch.zeros((0, 3)))
    expected = model(x, mask, *no_edges)
    expected.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    got = compiled(x, mask, *no_edges)
    got.square().sum().backward()
    torch.testing.assert_close(got, expected)
    for name, grad in grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, msg=name)


def test_compile_switch_reaches_torch_compile(dataset, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: calls.append(kwargs) or model)
    training = training_params(max_train_days_per_epoch=8, phases=[_phase(epochs=1)])
    _train(dataset, training=training)
    assert calls == []
    _train(dataset, training=training.model_copy(update={"compile": True}))
    assert calls == [{"dynamic": True}]


def test_fusion_gate_learns_with_its_own_learning_rate(dataset):
    """At the model's learning rate the gate logit moves ~lr per step and the gate stays at
    0.50 (issue 12: 0.500 -> 0.499 over the default run); ``gate_lr_scale`` lets it move."""
    phases = [_phase(epochs=3)]
    _, slow = _train(dataset, training=training_params(gate_lr_scale=1.0, phases=phases))
    _, fast = _train(dataset, training=training_params(gate_lr_scale=20.0, phases=phases))
    slow_move = max(abs(g - 0.5) for g in slow["gat_gate"])
    fast_move = abs(fast["gat_gate"][-1] - 0.5)
    assert slow_move < 0.005, slow["gat_gate"].to_list()
    assert fast_move > 0.01 and fast_move > 4 * slow_move, fast["gat_gate"].to_list()  # per epoch in the history
    assert len(set(fast["gat_gate"].to_list())) == 3
