"""Losses and per-day metrics against reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, rankdata, spearmanr
from torch.utils._python_dispatch import TorchDispatchMode

from atft_kedro.model.losses import (
    average_ranks,
    bounded_sharpe,
    combined_loss,
    long_short_returns,
    masked_pearson,
    pinball_loss,
    rank_ic,
    robust_zscore,
    soft_rank_correlation,
    soft_ranks,
)

from model_fakes import loss_params

LEVELS = torch.tensor([0.1, 0.5, 0.9])


def _days(seed: int, b: int = 6, n: int = 60, h: int = 2, signal: float = 0.5):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((b, n, h))
    pred = np.exp(2.0 * z)  # heavy-tailed: Pearson and Spearman differ clearly
    y = np.sinh(2.0 * (signal * z + rng.standard_normal((b, n, h))))
    valid = rng.random((b, n, h)) > 0.15
    y[~valid] = np.nan
    return torch.tensor(pred, dtype=torch.float64), torch.tensor(y, dtype=torch.float64), torch.tensor(valid)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_rank_correlation_is_close_to_spearman(seed):
    pred, y, valid = _days(seed)
    soft = soft_rank_correlation(pred, y, valid, temperature=0.02)
    exact = rank_ic(pred, y, valid)
    pearson = masked_pearson(pred, y, valid)
    assert (exact - pearson).abs().mean() > 0.1  # the data tell a rank correlation from a Pearson one
    for b in range(pred.shape[0]):
        for h in range(pred.shape[2]):
            v = valid[b, :, h].numpy()
            ref = spearmanr(pred[b, v, h].numpy(), y[b, v, h].numpy()).statistic
            assert abs(float(soft[b, h]) - ref) < 0.05
            assert abs(float(exact[b, h]) - ref) < 1e-7


def test_average_ranks_match_scipy_with_ties():
    x = torch.tensor([[3.0, 1.0, 3.0, 2.0, 1.0, 9.0]]).unsqueeze(-1)
    valid = torch.tensor([[True, True, True, True, True, False]]).unsqueeze(-1)
    ranks = average_ranks(x, valid)[0, :5, 0].numpy()
    np.testing.assert_allclose(ranks, rankdata([3.0, 1.0, 3.0, 2.0, 1.0]))


def test_pearson_matches_scipy():
    pred, y, valid = _days(4)
    ic = masked_pearson(pred, y, valid)
    v = valid[2, :, 1].numpy()
    ref = pearsonr(pred[2, v, 1].numpy(), y[2, v, 1].numpy()).statistic
    assert abs(float(ic[2, 1]) - ref) < 1e-7


def test_pinball_matches_formula_and_ignores_invalid():
    y = torch.tensor([[[0.02], [-0.01], [float("nan")]]])  # [1, 3, 1]
    q = torch.tensor([[[[0.0, 0.01, 0.03]], [[-0.02, 0.0, 0.01]], [[5.0, 6.0, 7.0]]]])  # [1, 3, 1, 3]
    valid = torch.isfinite(y)
    got = pinball_loss(q, y, valid, LEVELS)
    errs = np.array([[0.02, 0.01, -0.01], [0.01, -0.01, -0.02]])
    lv = np.array([0.1, 0.5, 0.9])
    expected = np.maximum(lv * errs, (lv - 1) * errs).mean()
    assert abs(float(got[0]) - expected) < 1e-7


def test_long_short_weights_and_sharpe_sign():
    pred = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])
    y = torch.tensor([[[-0.01], [0.0], [0.01], [0.02]]])
    valid = torch.ones_like(y, dtype=torch.bool)
    r = long_short_returns(pred, y, valid)
    w = np.array([-1.5, -0.5, 0.5, 1.5]) / 4.0
    assert abs(float(r[0, 0]) - float(w @ np.array([-0.01, 0.0, 0.01, 0.02]))) < 1e-7
    rets = torch.tensor([[0.01], [0.02], [0.015]])
    ok = torch.ones_like(rets, dtype=torch.bool)
    s = rets.mean() / rets.std(unbiased=False)
    assert abs(float(bounded_sharpe(rets, ok)[0]) - float(s / torch.sqrt(1 + s**2))) < 1e-5
    assert float(bounded_sharpe(-rets, ok)[0]) < 0
    assert float(bounded_sharpe(rets[:1], ok[:1])[0]) == 0.0  # one day: no Sharpe


def _quantiles_around(point: torch.Tensor) -> torch.Tensor:
    return point.unsqueeze(-1) + torch.tensor([-0.01, 0.0, 0.01])


def test_perfect_forecast_beats_its_negation_on_every_term():
    rng = np.random.default_rng(0)
    y = torch.tensor(0.02 * rng.standard_normal((4, 50, 2)), dtype=torch.float32)
    y[0, :3, 0] = float("nan")
    mask = torch.ones(4, 50, dtype=torch.bool)
    mask[1, -5:] = False
    point = torch.nan_to_num(y)
    params = loss_params()
    hw = torch.tensor([1.0, 0.5])
    good_total, good = combined_loss(_quantiles_around(point), y, mask, LEVELS, 1, hw, params)
    bad_total, bad = combined_loss(_quantiles_around(-point), y, mask, LEVELS, 1, hw, params)
    for term in ("pinball", "rank", "ic", "sharpe"):
        assert float(good[term]) < float(bad[term]), term
    assert float(good_total) < float(bad_total)
    assert float(good["rank"]) < 0.05 and float(good["ic"]) < 1e-4  # near-perfect correlations


def test_loss_weights_change_the_total_only_through_their_term():
    rng = np.random.default_rng(1)
    y = torch.tensor(0.02 * rng.standard_normal((3, 30, 2)), dtype=torch.float32)
    q = _quantiles_around(torch.tensor(0.02 * rng.standard_normal((3, 30, 2)), dtype=torch.float32))
    mask = torch.ones(3, 30, dtype=torch.bool)
    hw = torch.tensor([1.0, 0.5])
    t1, terms1 = combined_loss(q, y, mask, LEVELS, 1, hw, loss_params(rank_weight=0.5))
    t2, terms2 = combined_loss(q, y, mask, LEVELS, 1, hw, loss_params(rank_weight=2.0))
    assert torch.isclose(t2 - t1, 1.5 * terms1["rank"])
    assert all(torch.equal(terms1[k], terms2[k]) for k in ("pinball", "rank", "ic", "sharpe"))
    t3, _ = combined_loss(q, y, mask, LEVELS, 1, torch.tensor([1.0, 0.0]), loss_params())
    t4, _ = combined_loss(q, y, mask, LEVELS, 1, torch.tensor([1.0, 1.0]), loss_params())
    assert not torch.isclose(t3, t4)


def _pairwise_soft_ranks(x: torch.Tensor, valid: torch.Tensor, temperature: float) -> torch.Tensor:
    """The definition: sum over valid j of sigmoid((z_i - z_j) / temperature), O(N^2)."""
    z = robust_zscore(x, valid).movedim(1, -1)
    vj = valid.movedim(1, -1).unsqueeze(-2).to(x.dtype)
    return (torch.sigmoid((z.unsqueeze(-1) - z.unsqueeze(-2)) / temperature) * vj).sum(-1).movedim(-1, 1)


@pytest.mark.parametrize("temperature", [0.02, 0.1, 0.5])
def test_grid_soft_ranks_match_the_pairwise_definition_and_its_gradient(temperature):
    g = torch.Generator().manual_seed(7)
    x = (0.01 * torch.randn(3, 400, 2, generator=g, dtype=torch.float64)).requires_grad_(True)
    valid = torch.rand(3, 400, 2, generator=g) > 0.1
    target_ranks = average_ranks(torch.randn(3, 400, 2, generator=g, dtype=torch.float64), valid)
    grid = soft_ranks(x, valid, temperature)
    pairwise = _pairwise_soft_ranks(x, valid, temperature)
    assert (grid - pairwise)[valid].abs().max() < 0.05  # ranks run to ~360
    (g_grid,) = torch.autograd.grad(masked_pearson(grid, target_ranks, valid).sum(), x)
    (g_pair,) = torch.autograd.grad(masked_pearson(pairwise, target_ranks, valid).sum(), x)
    assert torch.corrcoef(torch.stack([g_grid[valid], g_pair[valid]]))[0, 1] > 0.999


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any torch op produces while active."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_ranks_and_rank_loss_never_build_an_n_by_n_tensor():
    n = 3000
    g = torch.Generator().manual_seed(8)
    pred = (0.01 * torch.randn(2, n, 2, generator=g)).requires_grad_(True)
    y = 0.01 * torch.randn(2, n, 2, generator=g)
    valid = torch.ones(2, n, 2, dtype=torch.bool)
    with _LargestTensor() as probe:
        target_ranks = average_ranks(y, valid)
        rho = soft_rank_correlation(pred, y, valid, 0.05, target_ranks)
        rho.sum().backward()
        rank_ic(pred.detach(), y, valid, target_ranks)
    assert probe.largest < n * n / 10, probe.largest  # a pairwise [N, N] would be 9e6 per (day, horizon)
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_given_target_ranks_are_used_not_recomputed():
    pred, y, valid = _days(5)
    exact = average_ranks(y, valid)
    reversed_ranks = valid.sum(1, keepdim=True) + 1 - exact  # the opposite order
    forward = soft_rank_correlation(pred, y, valid, 0.05, exact)
    backward = soft_rank_correlation(pred, y, valid, 0.05, reversed_ranks)
    torch.testing.assert_close(backward, -forward, atol=1e-6, rtol=0)
    torch.testing.assert_close(rank_ic(pred, y, valid, reversed_ranks), -rank_ic(pred, y, valid))


def test_sharpe_and_correlations_have_finite_gradients_at_zero_variance():
    # horizon 1 has a valid target on one day only: the Sharpe across days sees one return
    y = torch.tensor(0.02 * np.random.default_rng(2).standard_normal((4, 30, 2)), dtype=torch.float32)
    y[1:, :, 1] = float("nan")
    point = torch.zeros(4, 30, 2)
    point[:, :, 0] = 0.01 * torch.arange(30.0)  # horizon 0 varies; horizon 1 is constant: zero variance
    q = _quantiles_around(point).requires_grad_(True)
    mask = torch.ones(4, 30, dtype=torch.bool)
    total, terms = combined_loss(q, y, mask, LEVELS, 1, torch.tensor([1.0, 1.0]), loss_params())
    total.backward()
    assert torch.isfinite(total) and all(torch.isfinite(terms[k]) for k in ("pinball", "rank", "ic", "sharpe"))
    assert torch.isfinite(q.grad).all()
    same = torch.full((3, 1), 0.01, requires_grad=True)  # three days with the same return
    value = bounded_sharpe(same, torch.ones(3, 1, dtype=torch.bool))
    value.sum().backward()
    assert torch.isfinite(same.grad).all() and float(value[0].detach()) == pytest.approx(1.0, abs=1e-3)
