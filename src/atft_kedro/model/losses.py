"""Losses and per-day cross-sectional metrics, on day-major tensors.

Layout: ``quantiles`` [B, N, H, Q] (B trading days, N stocks), ``targets`` [B, N, H] with
NaN where unknown, ``valid`` [B, N, H] bool = stock is real and its target finite. Every
per-day statistic uses the valid stocks of that (day, horizon) only; a (day, horizon) with
fewer than 2 valid stocks contributes nothing.

Terms (each per horizon, then summed with the horizon weights):
- pinball: mean over valid (day, stock) and quantiles of max(q e, (q - 1) e), e = y - yhat_q.
- rank: 1 - soft Spearman correlation per day, averaged over days. The point forecasts
  (medians) are robustly z-scored over the day's valid stocks (minus the median, divided by
  1.4826 x the median absolute deviation, which is the std for normal data), and the soft
  rank of stock i is ``sum_j sigmoid((z_i - z_j) / rank_temperature)`` over valid j (so the
  temperature is in units of the cross-sectional robust std; -> hard ranks as it -> 0). That
  sum is computed on a grid, not over the N^2 pairs (``soft_ranks``): time O(N + M log M) and
  memory O(N + M) per (day, horizon), M grid points. The targets get exact average ranks
  (ties like scipy) by sorting, O(N log N); the trainer computes them once per run and passes
  them in (``target_ranks``). Correlation = Pearson of the two rank vectors.
- ic: 1 - Pearson correlation of forecast and target per day, averaged over days.
- sharpe: minus a bounded Sharpe ratio ACROSS THE DAYS OF THE BATCH. Each day's long-short
  weights are the demeaned forecasts scaled to unit gross exposure (sum |w| = 1), the day's
  return is ``r_b = sum_i w_i y_i``; with S = mean_b(r) / std_b(r) (population std) the term
  is ``-mean(r) / sqrt(mean(r)^2 + var(r) + eps) = -S / sqrt(1 + S^2)``: the same order as
  the Sharpe ratio but bounded in [-1, 1], so a batch of near-equal day returns cannot blow
  up the loss. It needs >= 2 days with returns, else it is 0. It is computed from the
  variance (never its square root), so it is finite, with a finite gradient, when every day of
  the batch has the same return (zero variance); the correlations likewise divide by
  ``sqrt(var_x var_y + STD_EPS^2)``.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from atft_kedro.model.params import LossParams

#: Numerical guards (not tunables).
STD_EPS = 1e-8
#: 1.4826 * median absolute deviation = std for normally distributed values.
MAD_TO_STD = 1.4826
SHARPE_EPS = 1e-12
#: Soft-rank grid: points per temperature unit (linear interpolation error ~ (1/8)^2 of a
#: sigmoid's curvature) and the robust z range covered; forecasts beyond +-SOFT_RANK_Z_RANGE
#: robust std from the day's median are clamped (they keep their order by the pinball and IC
#: terms; the rank term sees them at the edge). Numerical settings, not tunables.
SOFT_RANK_POINTS_PER_TEMPERATURE = 8
SOFT_RANK_Z_RANGE = 8.0
#: sigmoid(u) is 0 or 1 to float32 precision for |u| > this many temperatures.
SOFT_RANK_KERNEL_HALF_WIDTH = 20.0


def valid_mask(targets: torch.Tensor, stock_mask: torch.Tensor) -> torch.Tensor:
    """targets [B, N, H], stock_mask [B, N] bool -> valid [B, N, H] bool."""
    return torch.isfinite(targets) & stock_mask.unsqueeze(-1)


def pinball_loss(
    quantiles: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, levels: torch.Tensor
) -> torch.Tensor:
    """Pinball (quantile) loss per horizon.

    Args:
        quantiles: [B, N, H, Q]; targets: [B, N, H]; valid: [B, N, H]; levels: [Q] quantile levels.

    Returns:
        [H] mean loss over valid (day, stock) pairs and quantiles (0 where none is valid).
    """
    y = torch.where(valid, targets, torch.zeros_like(targets)).unsqueeze(-1)
    err = y - quantiles
    loss = torch.maximum(levels * err, (levels - 1.0) * err).mean(-1)  # [B, N, H]
    w = valid.to(loss.dtype)
    return (loss * w).sum((0, 1)) / w.sum((0, 1)).clamp_min(1.0)


def masked_mean_var(x: torch.Tensor, w: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population variance of ``x`` over ``dim`` counting entries with weight ``w`` (0/1)."""
    x = torch.where(w > 0, x, torch.zeros_like(x))
    count = w.sum(dim, keepdim=True).clamp_min(1.0)
    mean = (x * w).sum(dim, keepdim=True) / count
    var = (((x - mean) * w) ** 2).sum(dim, keepdim=True) / count
    return mean, var


def masked_moments(x: torch.Tensor, w: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population std of ``x`` over ``dim`` (for metrics: the std's gradient at 0 is infinite)."""
    mean, var = masked_mean_var(x, w, dim)
    return mean, var.sqrt()


def masked_pearson(x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Pearson correlation along dim 1 (stocks) over valid entries.

    Args:
        x, y: [B, N, H]; valid: [B, N, H] bool.

    Returns:
        [B, H] correlations (0 where a side has no variance or < 2 valid stocks).
    """
    w = valid.to(x.dtype)
    y = torch.where(valid, y, torch.zeros_like(y))
    mx, vx = masked_mean_var(x, w, 1)
    my, vy = masked_mean_var(y, w, 1)
    cov = ((x - mx) * (y - my) * w).sum(1) / w.sum(1).clamp_min(1.0)
    return cov / torch.sqrt(vx.squeeze(1) * vy.squeeze(1) + STD_EPS**2)


def average_ranks(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Exact average ranks (1-based, ties share their mean rank) among valid stocks, by sorting.

    Invalid entries are sorted last as +inf; a valid value's rank is the mean of the first and
    last sorted positions holding its value (``searchsorted`` left and right), so ties get
    their average rank as in ``scipy.stats.rankdata``. O(N log N) per (day, horizon).

    Args:
        x: [B, N, H] finite where valid; valid: [B, N, H] bool.

    Returns:
        [B, N, H] ranks in x's dtype (values at invalid entries are meaningless). No gradient.
    """
    xt = torch.where(valid, x, torch.full_like(x, float("inf"))).movedim(1, -1).contiguous()  # [B, H, N]
    ordered, order = torch.sort(xt, dim=-1)
    left = torch.searchsorted(ordered, ordered, side="left")
    right = torch.searchsorted(ordered, ordered, side="right")
    sorted_ranks = (left + right + 1).to(x.dtype) * 0.5  # mean of 1-based positions left+1 .. right
    ranks = torch.empty_like(sorted_ranks).scatter_(-1, order, sorted_ranks)
    return ranks.movedim(-1, 1).detach()


def robust_zscore(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(x - median) / (1.4826 * MAD) over the valid stocks of each (day, horizon).

    The scale equals the std for normal data but is not inflated by a few extreme forecasts,
    so a soft-rank temperature keeps its resolution in the bulk of the cross-section.

    Args:
        x: [B, N, H]; valid: [B, N, H] bool.

    Returns:
        [B, N, H] (values at invalid entries are meaningless but finite).
    """
    masked = torch.where(valid, x, torch.full_like(x, float("nan")))
    median = masked.nanmedian(dim=1, keepdim=True).values
    mad = (masked - median).abs().nanmedian(dim=1, keepdim=True).values
    median = torch.nan_to_num(median)  # (day, horizon) without valid stocks
    scale = torch.nan_to_num(mad) * MAD_TO_STD + STD_EPS
    return (x - median) / scale


def soft_ranks(x: torch.Tensor, valid: torch.Tensor, temperature: float) -> torch.Tensor:
    """Differentiable ranks among valid stocks (see module doc).

    Args:
        x: [B, N, H] forecasts; valid: [B, N, H] bool; temperature: in cross-sectional std units.

    Returns:
        [B, N, H] soft ranks ~ sum over valid j of sigmoid((z_i - z_j) / temperature).

    The sum over j is a convolution of the valid stocks' positions with the sigmoid, computed
    on a grid of M points of spacing ``temperature / SOFT_RANK_POINTS_PER_TEMPERATURE`` over
    z in [-SOFT_RANK_Z_RANGE, SOFT_RANK_Z_RANGE]: each stock's unit mass is split between its two
    neighbouring grid points (linear interpolation), the masses are convolved with the sigmoid
    (a kernel of +-SOFT_RANK_KERNEL_HALF_WIDTH temperatures; every mass further below counts 1,
    via a cumulative sum), and the result is read back at each stock's z by the same linear
    interpolation. Time and memory O(N + M * kernel) per (day, horizon), independent of N^2;
    differentiable in z through the interpolation weights. Agrees with the pairwise sum to
    ~1e-2 ranks (``tests/model`` compares them).
    """
    z = robust_zscore(x, valid).movedim(1, -1)  # [B, H, N]
    # non-finite forecasts (a diverging step, then skipped by the trainer) must not index off the grid
    z = torch.nan_to_num(z, nan=0.0).clamp(-SOFT_RANK_Z_RANGE, SOFT_RANK_Z_RANGE)
    lead, n = z.shape[:-1], z.shape[-1]
    step = temperature / SOFT_RANK_POINTS_PER_TEMPERATURE
    n_grid = int(math.ceil(2.0 * SOFT_RANK_Z_RANGE / step)) + 2
    half = int(math.ceil(SOFT_RANK_KERNEL_HALF_WIDTH * SOFT_RANK_POINTS_PER_TEMPERATURE))
    position = (z.reshape(-1, n) + SOFT_RANK_Z_RANGE) / step  # [S, N] in [0, n_grid - 2]
    low = position.detach().floor().clamp(0, n_grid - 2)
    frac = position - low
    low = low.long()
    weight = valid.movedim(1, -1).reshape(-1, n).to(z.dtype)  # [S, N]
    mass = torch.zeros(position.shape[0], n_grid, dtype=z.dtype, device=z.device)
    mass = mass.scatter_add(1, low, weight * (1.0 - frac)).scatter_add(1, low + 1, weight * frac)
    offsets = torch.arange(-half, half + 1, device=z.device, dtype=z.dtype)
    kernel = torch.sigmoid(offsets / SOFT_RANK_POINTS_PER_TEMPERATURE)  # sigmoid(d / temperature)
    # near part: sum over |d| <= half of mass[g - d] * sigmoid(d); far part: all mass below g - half
    near = F.conv1d(mass.unsqueeze(1), kernel.flip(0).view(1, 1, -1), padding=half).squeeze(1)
    far = F.pad(torch.cumsum(mass, 1), (half + 1, 0))[:, :n_grid]
    smooth = near + far  # [S, M]: soft count of valid stocks below each grid point
    at = smooth.gather(1, low) * (1.0 - frac) + smooth.gather(1, low + 1) * frac
    return at.reshape(*lead, n).movedim(-1, 1)


def soft_rank_correlation(
    pred: torch.Tensor,
    targets: torch.Tensor,
    valid: torch.Tensor,
    temperature: float,
    target_ranks: torch.Tensor | None = None,
) -> torch.Tensor:
    """Differentiable Spearman correlation per day: [B, N, H] x3 -> [B, H].

    ``target_ranks`` [B, N, H]: the targets' exact average ranks among the valid stocks when
    the caller has them (the trainer ranks every day once per run); None = rank them here.
    """
    if target_ranks is None:
        target_ranks = average_ranks(targets, valid)
    return masked_pearson(soft_ranks(pred, valid, temperature), target_ranks, valid)


def rank_ic(
    pred: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, target_ranks: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact Spearman correlation (average ranks, by sorting) per day: [B, N, H] x3 -> [B, H].

    ``target_ranks``: the targets' average ranks if already known (see ``soft_rank_correlation``).
    """
    if target_ranks is None:
        target_ranks = average_ranks(targets, valid)
    return masked_pearson(average_ranks(pred, valid), target_ranks, valid)


def long_short_returns(pred: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Return of each day's unit-gross long-short portfolio: [B, N, H] x3 -> [B, H].

    Weights are the forecasts demeaned over the valid stocks and divided by their L1 norm.
    """
    w = valid.to(pred.dtype)
    mean, _ = masked_moments(pred, w, 1)
    demeaned = (pred - mean) * w
    weights = demeaned / (demeaned.abs().sum(1, keepdim=True) + STD_EPS)
    y = torch.where(valid, targets, torch.zeros_like(targets))
    return (weights * y).sum(1)


def day_has_pairs(valid: torch.Tensor) -> torch.Tensor:
    """[B, N, H] -> [B, H] bool: the (day, horizon) has at least 2 valid stocks."""
    return valid.sum(1) >= 2


def bounded_sharpe(day_returns: torch.Tensor, day_ok: torch.Tensor) -> torch.Tensor:
    """S / sqrt(1 + S^2) across days of the batch, S = mean/std: [B, H] x2 -> [H] (0 if < 2 days)."""
    w = day_ok.to(day_returns.dtype)
    mean, var = masked_mean_var(day_returns, w, 0)
    value = mean.squeeze(0) / torch.sqrt(mean.squeeze(0) ** 2 + var.squeeze(0) + SHARPE_EPS)
    return torch.where(w.sum(0) >= 2, value, torch.zeros_like(value))


def _day_mean(per_day: torch.Tensor, day_ok: torch.Tensor) -> torch.Tensor:
    """[B, H] values, [B, H] bool -> [H] mean over ok days (0 where none)."""
    w = day_ok.to(per_day.dtype)
    return (per_day * w).sum(0) / w.sum(0).clamp_min(1.0)


def combined_loss(
    quantiles: torch.Tensor,
    targets: torch.Tensor,
    stock_mask: torch.Tensor,
    quantile_levels: torch.Tensor,
    median_index: int,
    horizon_weights: torch.Tensor,
    params: LossParams,
    target_ranks: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss.

    Args:
        quantiles: [B, N, H, Q] forecasts.
        targets: [B, N, H] forward returns, NaN where unknown.
        stock_mask: [B, N] bool.
        quantile_levels: [Q] levels of ``quantiles``.
        median_index: position of 0.5 in the levels (the point forecast).
        horizon_weights: [H] weights in the order of the horizons.
        params: term weights and the soft-rank temperature.
        target_ranks: [B, N, H] exact average ranks of ``targets`` among the valid stocks,
            precomputed once per run by the trainer; None = computed here.

    Returns:
        total (scalar) and a dict of unweighted, horizon-weighted terms ``pinball``,
        ``rank`` (1 - soft rank corr), ``ic`` (1 - IC), ``sharpe`` (- bounded Sharpe),
        plus per-horizon ``[H]`` tensors ``rankcorr_by_h``, ``ic_by_h`` (detached).
    """
    quantiles = quantiles.float()
    targets = targets.float()
    valid = valid_mask(targets, stock_mask)
    ok = day_has_pairs(valid)
    pred = quantiles[..., median_index]  # [B, N, H]
    pinball = pinball_loss(quantiles, targets, valid, quantile_levels.to(quantiles.dtype))
    rankcorr = _day_mean(soft_rank_correlation(pred, targets, valid, params.rank_temperature, target_ranks), ok)
    ic = _day_mean(masked_pearson(pred, targets, valid), ok)
    sharpe = bounded_sharpe(long_short_returns(pred, targets, valid), ok)
    hw = horizon_weights.to(quantiles.dtype)
    terms = {
        "pinball": (hw * pinball).sum(),
        "rank": (hw * (1.0 - rankcorr)).sum(),
        "ic": (hw * (1.0 - ic)).sum(),
        "sharpe": (hw * (-sharpe)).sum(),
    }
    total = (
        params.pinball_weight * terms["pinball"]
        + params.rank_weight * terms["rank"]
        + params.ic_weight * terms["ic"]
        + params.sharpe_weight * terms["sharpe"]
    )
    terms["rankcorr_by_h"] = rankcorr.detach()
    terms["ic_by_h"] = ic.detach()
    return total, terms
