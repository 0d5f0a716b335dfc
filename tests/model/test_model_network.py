"""Shapes, masking, gradients and the FAN of the ATFT-GAT-FAN network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from atft_kedro.graph_packing import pack_graph
from atft_kedro.model.data import day_batch, device_tensors
from atft_kedro.model.fan import FrequencyAdaptiveNorm, remove_dominant_frequencies
from atft_kedro.model.losses import combined_loss
from atft_kedro.model.network import ATFTGATFAN

from model_fakes import loss_params, model_params

N, T, F, H = 12, 8, 5, 2


def _model(seed: int = 0, **overrides) -> ATFTGATFAN:
    torch.manual_seed(seed)
    return ATFTGATFAN(model_params(window_days=T, **overrides), n_features=F, n_horizons=H).eval()


def _inputs(seed: int = 1, n: int = N, n_edges: int = 30):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, T, F, generator=g)
    edge_index = torch.randint(0, n, (2, n_edges), generator=g)
    edge_attr = torch.rand(n_edges, 3, generator=g)
    return x, edge_index, edge_attr


def test_output_shape_and_monotone_quantiles():
    model = _model()
    x, ei, ea = _inputs()
    q = model(x, torch.ones(N, dtype=torch.bool), ei, ea)
    assert q.shape == (N, H, 3)
    assert torch.isfinite(q).all()
    assert (q.diff(dim=-1) > 0).all()


def test_padded_stocks_do_not_change_other_stocks():
    model = _model()
    x, ei, ea = _inputs()
    mask = torch.ones(N, dtype=torch.bool)
    mask[[2, 7]] = False
    base = model(x, mask, ei, ea)
    x2 = x.clone()
    x2[[2, 7]] = torch.randn(2, T, F) * 100.0  # garbage in padded rows
    extra = torch.tensor([[2, 7, 2], [0, 1, 5]])  # edges from padded stocks into real ones
    ei2 = torch.cat([ei, extra], 1)
    ea2 = torch.cat([ea, torch.ones(3, 3)])
    other = model(x2, mask, ei2, ea2)
    assert torch.allclose(base[mask], other[mask], atol=1e-6)
    # and the GAT is live: changing a REAL neighbour (0 -> 3) does change stock 3's output
    ei3 = torch.cat([ei, torch.tensor([[0], [3]])], 1)
    ea3 = torch.cat([ea, torch.ones(1, 3)])
    before = model(x, mask, ei3, ea3)
    x3 = x.clone()
    x3[0] += 5.0
    after = model(x3, mask, ei3, ea3)
    assert not torch.allclose(before[3], after[3])


def test_one_stock_day_and_day_without_edges():
    model = _model()
    x, _, _ = _inputs(n=1)
    no_edges = torch.zeros((2, 0), dtype=torch.long)
    q1 = model(x, torch.ones(1, dtype=torch.bool), no_edges, torch.zeros((0, 3)))
    assert q1.shape == (1, H, 3) and torch.isfinite(q1).all()
    x, _, _ = _inputs()
    q = model(x, torch.ones(N, dtype=torch.bool), no_edges, torch.zeros((0, 3)))
    assert q.shape == (N, H, 3) and torch.isfinite(q).all()


def test_time_mask_hides_steps():
    model = _model()
    x, ei, ea = _inputs()
    time_mask = torch.ones(N, T, dtype=torch.bool)
    time_mask[:, :3] = False
    base = model(x, torch.ones(N, dtype=torch.bool), ei, ea, time_mask)
    x2 = x.clone()
    x2[:, :3] = torch.randn(N, 3, F) * 50
    assert torch.allclose(base, model(x2, torch.ones(N, dtype=torch.bool), ei, ea, time_mask), atol=1e-6)


def test_every_parameter_gets_a_finite_nonzero_gradient(dataset):
    torch.manual_seed(3)
    mi = dataset.model_input
    model = ATFTGATFAN(model_params(), mi.n_features, len(mi.horizons)).train()
    tensors = device_tensors(mi, torch.device("cpu"))
    graph = pack_graph(dataset.graph, mi.dates, mi.codes)
    rng = np.random.default_rng(5)
    days = rng.choice(np.arange(40, 70), size=2, replace=False)
    batch = day_batch(tensors, days, model.params.window_days, graph)
    q = model(batch.x, batch.stock_mask, batch.edge_index, batch.edge_attr, batch.time_mask)
    q = q.reshape(len(days), mi.n_stocks, *q.shape[1:])
    params = model.params
    total, _ = combined_loss(
        q, batch.targets, batch.day_mask, torch.tensor(params.quantiles), params.median_index,
        torch.tensor([1.0, 0.5]), loss_params(),
    )
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"
    gat_norm = torch.stack([p.grad.norm() for p in model.gat_parameters()]).norm()
    assert gat_norm > 1e-6
    assert model.fusion.gate_logit.grad.abs().sum() > 0


def test_flags_switch_branches_off():
    model = _model()
    x, ei, ea = _inputs()
    mask = torch.ones(N, dtype=torch.bool)
    with_all = model(x, mask, ei, ea)
    model.set_components(fan=True, gat=False)
    no_gat = model(x, mask, ei, ea)
    model.set_components(fan=False, gat=True)
    no_fan = model(x, mask, ei, ea)
    assert not torch.allclose(with_all, no_gat)
    assert not torch.allclose(with_all, no_fan)
    unbuilt = _model(gat={"enabled": False})
    with pytest.raises(ValueError, match="model.gat.enabled"):
        unbuilt.set_components(fan=True, gat=True)


def test_fan_removes_the_dominant_frequency():
    n_time, k_dom = 32, 4
    t = torch.arange(n_time, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    noise = 0.1 * torch.randn(3, n_time, 2, generator=g)
    x = 3.0 * torch.sin(2 * math.pi * k_dom * t / n_time)[None, :, None] + noise + 1.5  # [3, T, 2]
    residual = remove_dominant_frequencies(x, top_k=1)
    before = torch.fft.rfft(x, dim=1).abs()
    after = torch.fft.rfft(residual, dim=1).abs()
    assert (before[:, k_dom] > 40).all()  # the sinusoid dominates the input spectrum
    assert (after[:, k_dom] < 1e-4).all()  # ... and is gone
    others = [k for k in range(1, n_time // 2 + 1) if k != k_dom]
    assert torch.allclose(after[:, others], before[:, others], atol=1e-4)  # the noise stays
    assert torch.allclose(residual.mean(1), x.mean(1), atol=1e-5)  # the mean (DC) is kept
    out = FrequencyAdaptiveNorm(top_k=1)(x)
    assert out.shape == x.shape
    assert torch.allclose(out.mean(1), torch.zeros(3, 2), atol=1e-5)
    assert torch.allclose(out.std(1, unbiased=False), torch.ones(3, 2), atol=5e-3)


def test_fan_acts_on_the_time_axis():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 16, 3, generator=g)
    broadcast = x.mean(1, keepdim=True).expand_as(x)
    fan = FrequencyAdaptiveNorm(top_k=2)
    varying, flat = fan(x), fan(broadcast)
    assert torch.allclose(flat, torch.zeros_like(flat), atol=1e-3)  # nothing varies in time
    assert varying.abs().mean() > 0.5
    assert not torch.allclose(varying, flat, atol=1e-2)


@pytest.mark.parametrize("n_time", [6, 20, 21])
def test_fan_matches_a_numpy_fft_reference(n_time):
    g = torch.Generator().manual_seed(n_time)
    x = torch.randn(30, n_time, 4, generator=g)
    spectrum = np.fft.rfft(x.numpy(), axis=1)
    power = np.abs(spectrum[:, 1:]) ** 2
    top = np.argsort(-power, axis=1)[:, :2] + 1
    keep = np.ones(spectrum.shape)
    np.put_along_axis(keep, top, 0.0, axis=1)
    residual = np.fft.irfft(spectrum * keep, n=n_time, axis=1)
    np.testing.assert_allclose(remove_dominant_frequencies(x, 2).numpy(), residual, atol=1e-5)
    centred = residual - residual.mean(1, keepdims=True)
    expected = centred / (centred.std(1, keepdims=True) + 1e-4)
    np.testing.assert_allclose(FrequencyAdaptiveNorm(top_k=2)(x).numpy(), expected, atol=1e-3)
