"""Tests that fail when the model is broken in ways the older tests let through.

One test per breakage found by breaking the code on purpose (issue 12, item 8):
the checkpoint keeping the last epoch instead of the best; a phase restarting from the last
weights instead of the best; the checkpoint's FAN/GAT switches ignored at load; FAN fed the
last step copied over time; attention ignoring the time mask; the trainer not passing the
time mask; the variable selection choosing from the first step; the soft rank skipping its
robust scaling.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from atft_kedro.model.checkpoint import build_model_from_checkpoint, forecast_days
from atft_kedro.model.fan import FrequencyAdaptiveNorm, fill_masked_steps
from atft_kedro.model.losses import soft_ranks
from atft_kedro.model.network import ATFTGATFAN
from atft_kedro.model.temporal import TemporalBlock
from atft_kedro.model.trainer import train_model
from atft_kedro.model.vsn import VariableSelection

from model_fakes import loss_params, model_params, training_params


def _phase(name: str, epochs: int, on: bool, lr_scale: float) -> dict:
    return {"name": name, "epochs": epochs, "lr_scale": lr_scale, "fan": on, "gat": on}


@pytest.fixture(scope="module")
def phased(dataset):
    """base (FAN/GAT off) learns; wreck (on, lr x300) destroys; still (off, lr ~0) only evaluates
    the weights it starts from; wreck_again makes the last epoch bad again."""
    training = training_params(
        patience=5,
        phases=[
            _phase("base", 2, False, 1.0),
            _phase("wreck", 1, True, 300.0),
            _phase("still", 1, False, 1e-9),
            _phase("wreck_again", 1, True, 3e4),  # the cosine schedule is near its end here
        ],
    )
    return train_model(
        dataset.model_input, dataset.splits, dataset.graph, dataset.manifest, model_params(), loss_params(),
        training, normalizer_identity="guards",
    )


def _validation_rank_ic(model: ATFTGATFAN, dataset) -> float:
    """Mean over validation days of scipy's Spearman correlation of the 1-day forecasts."""
    mi = dataset.model_input
    days = mi.day_indices(dataset.splits.validation.start, dataset.splits.validation.end)
    quantiles = forecast_days(model, mi, dataset.graph, days)
    values = []
    for i, d in enumerate(days):
        ok = mi.mask[d] & np.isfinite(mi.targets[d, :, 0])
        if ok.sum() >= 2:
            values.append(spearmanr(quantiles[i, ok, 0, 1], mi.targets[d, ok, 0]).statistic)
    return float(np.mean(values))


def test_checkpoint_keeps_the_best_epoch_not_the_last(dataset, phased):
    checkpoint, history = phased
    best_row = int(np.argmax(history["val_rankic_h1"].to_numpy()))
    best = history["val_rankic_h1"][best_row]
    assert history["val_rankic_h1"][-1] < best - 0.1  # the last epoch is clearly worse
    assert checkpoint["history_summary"]["best_epoch"] == history["epoch"][best_row]
    model = build_model_from_checkpoint(checkpoint, dataset.manifest)
    assert _validation_rank_ic(model, dataset) == pytest.approx(best, abs=1e-4)


def test_next_phase_starts_from_the_best_weights(phased):
    _, history = phased
    rank_ic = dict(zip(history["phase"], history["val_rankic_h1"], strict=False))  # last row per phase
    best_of_base = history.filter(history["phase"] == "base")["val_rankic_h1"].max()
    assert rank_ic["wreck"] < best_of_base - 0.1
    # "still" barely moves its weights: it shows the weights it started from, base's best, not wreck's
    assert rank_ic["still"] == pytest.approx(best_of_base, abs=1e-6)


def test_checkpoint_switches_are_restored_at_load(dataset, phased):
    checkpoint, history = phased
    best_row = int(np.argmax(history["val_rankic_h1"].to_numpy()))
    assert checkpoint["active_components"] == {"fan": False, "gat": False}  # base's (or still's) switches
    model = build_model_from_checkpoint(checkpoint, dataset.manifest)
    assert (model.use_fan, model.use_gat) == (False, False)
    assert _validation_rank_ic(model, dataset) == pytest.approx(history["val_rankic_h1"][best_row], abs=1e-4)
    model.set_components(fan=True, gat=True)  # the built but unused branches do change the forecasts
    assert abs(_validation_rank_ic(model, dataset) - history["val_rankic_h1"][best_row]) > 1e-3


def test_fan_channel_is_fan_of_the_whole_window():
    torch.manual_seed(0)
    n, t, f = 10, 12, 4
    model = ATFTGATFAN(model_params(window_days=t), n_features=f, n_horizons=2).eval()
    captured = {}
    model.vsn.register_forward_pre_hook(lambda module, args: captured.update(channels=args[0]))
    x = torch.randn(n, t, f)
    time_mask = torch.ones(n, t, dtype=torch.bool)
    model(x, torch.ones(n, dtype=torch.bool), torch.zeros((2, 0), dtype=torch.long), torch.zeros((0, 3)), time_mask)
    fan_channel = captured["channels"][1]
    expected = FrequencyAdaptiveNorm(model.params.fan.top_k)(x)
    torch.testing.assert_close(fan_channel, expected)
    # normalised along time: unit std over the window, so it does vary in time
    assert torch.allclose(fan_channel.std(1, unbiased=False), torch.ones(n, f), atol=1e-2)


def test_attention_gives_no_weight_to_steps_without_data():
    torch.manual_seed(1)
    n, t, d = 6, 8, 16
    block = TemporalBlock(d, lstm_layers=1, attention_heads=2, dropout=0.0).eval()
    original = block.attention.forward
    captured = {}

    def with_weights(*args, **kwargs):
        kwargs.update(need_weights=True, average_attn_weights=True)
        out, weights = original(*args, **kwargs)
        captured["weights"] = weights
        return out, weights

    block.attention.forward = with_weights
    time_mask = torch.ones(n, t, dtype=torch.bool)
    time_mask[:3, :4] = False  # not listed yet
    time_mask[4, 5] = False  # a day without data inside the window
    block(torch.randn(n, t, d), time_mask)
    weights = captured["weights"][:, 0, :]  # [N, T] from the last step's query
    assert torch.all(weights[~time_mask] == 0)
    assert torch.allclose(weights.sum(-1), torch.ones(n))
    assert torch.all(weights[time_mask] > 0)


def test_trainer_passes_the_time_mask(dataset, monkeypatch):
    seen = []
    forward = ATFTGATFAN.forward

    def spy(self, x, stock_mask, edge_index, edge_attr, time_mask=None, return_weights=False):
        seen.append(None if time_mask is None else bool((~time_mask).any()))
        return forward(self, x, stock_mask, edge_index, edge_attr, time_mask, return_weights)

    monkeypatch.setattr(ATFTGATFAN, "forward", spy)
    # the first days' windows reach before the data and two stocks list late: masked steps exist
    train_model(
        dataset.model_input, dataset.splits, dataset.graph, dataset.manifest, model_params(), loss_params(),
        training_params(phases=[_phase("one", 1, True, 1.0)]), normalizer_identity="spy",
    )
    assert seen and None not in seen
    assert any(seen)


def test_selection_weights_come_from_the_decision_day():
    torch.manual_seed(2)
    vsn = VariableSelection(n_features=5, n_channels=2, hidden_size=8, dropout=0.0).eval()
    x = torch.randn(4, 6, 5)
    _, weights = vsn((x, None))
    earlier = x.clone()
    earlier[:, :-1] = torch.randn(4, 5, 5) * 10.0
    _, same = vsn((earlier, None))
    torch.testing.assert_close(same, weights)  # earlier steps do not choose the features
    last = x.clone()
    last[:, -1] = torch.randn(4, 5) * 10.0
    _, moved = vsn((last, None))
    assert (moved - weights).abs().max() > 1e-3  # the decision day does


def test_soft_ranks_do_not_depend_on_the_forecasts_scale():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 200, 2, generator=g, dtype=torch.float64)
    valid = torch.rand(2, 200, 2, generator=g) > 0.1
    reference = soft_ranks(x, valid, temperature=0.1)
    for scale, shift in ((0.01, 0.0), (100.0, 3.0), (1e-3, -0.02)):  # returns are ~1e-2
        torch.testing.assert_close(soft_ranks(x * scale + shift, valid, 0.1), reference, atol=1e-3, rtol=0)
    # and they still order the stocks: Spearman with the values ~ 1
    rho = spearmanr(reference[0, valid[0, :, 0], 0], x[0, valid[0, :, 0], 0]).statistic
    assert rho > 0.999


def test_fan_does_not_see_masked_leading_steps_as_zeros():
    t = 16
    x = torch.full((2, t, 1), 3.0)
    x[:, :, 0] += torch.linspace(0, 0.01, t)  # nearly flat once listed
    time_mask = torch.ones(2, t, dtype=torch.bool)
    time_mask[0, :6] = False  # stock 0 lists on step 6
    x = x * time_mask.unsqueeze(-1)  # the model input is zero before listing
    filled = fill_masked_steps(x, time_mask)
    assert torch.all(filled[0, :6] == x[0, 6])  # leading steps take the first real value
    torch.testing.assert_close(filled[1], x[1])
    fan = FrequencyAdaptiveNorm(top_k=1)
    model = ATFTGATFAN(model_params(window_days=t), n_features=1, n_horizons=2).eval()
    captured = {}
    model.vsn.register_forward_pre_hook(lambda module, args: captured.update(channels=args[0]))
    model(x, torch.ones(2, dtype=torch.bool), torch.zeros((2, 0), dtype=torch.long), torch.zeros((0, 3)), time_mask)
    channel = captured["channels"][1]
    torch.testing.assert_close(channel[0, 6:], fan(filled)[0, 6:])  # what the model feeds the VSN
    assert torch.all(channel[0, :6] == 0)
    # a jump from zeros would dominate the spectrum: the listed part would look like a step
    zero_filled = fan(x)[0, 6:]
    assert (zero_filled - channel[0, 6:]).abs().max() > 0.5
