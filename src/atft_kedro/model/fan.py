"""Frequency-adaptive normalisation (FAN) of input windows along the time axis.

For every (stock, feature) series of a window [N, T, F] the discrete Fourier transform over
time finds the ``top_k`` non-DC frequencies with the largest power; those components are
removed, and the residual is standardised by its own mean and (population) std over time.
The transform acts on the TIME axis: a window whose values do not vary in time has no
non-DC component and comes out as zeros (lesson 7 of PREDECESSOR.md: FAN applied to a
vector broadcast over time did nothing).

Implementation: for the short windows used here (T <= ~120) the real DFT is two small
matmuls with a fixed [T, 1 + 2K] cos/sin basis (K = T // 2 non-DC bins), which on a CPU
is several times faster than ``torch.fft`` along a middle axis, and Parseval's identity
gives the residual's variance from the kept bins' power without another pass over the
window. It is exactly the rFFT computation (``tests/model`` checks it against NumPy's FFT).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn

#: Added to the residual's std before dividing (numerical guard, not a tunable).
FAN_STD_EPS = 1e-4


@lru_cache(maxsize=16)
def _dft_basis(n_time: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Real DFT basis of a window of ``n_time`` steps.

    Returns:
        basis [T, 1 + 2K]: columns 1, cos(2 pi k t / T) for k = 1..K, sin(...) for k = 1..K;
        synthesis [1 + 2K]: factor turning a projection back into its component (1/T for DC
        and Nyquist, 2/T otherwise); parseval [K]: weight of bin k's power in sum_t (x - mean)^2
        times T (2, or 1 for Nyquist).
    """
    k_bins = n_time // 2
    t = torch.arange(n_time, dtype=torch.float64, device=device)[:, None]
    k = torch.arange(1, k_bins + 1, dtype=torch.float64, device=device)[None, :]
    angle = 2.0 * math.pi * t * k / n_time
    basis = torch.cat([torch.ones(n_time, 1, dtype=torch.float64, device=device), angle.cos(), angle.sin()], 1)
    parseval = torch.full((k_bins,), 2.0, dtype=torch.float64, device=device)
    if n_time % 2 == 0:
        parseval[-1] = 1.0  # the Nyquist bin has no mirror image
    synthesis = torch.cat([torch.ones(1, dtype=torch.float64, device=device), parseval, parseval]) / n_time
    return basis.float(), synthesis.float(), parseval.float()


def _select_top_bins(power: torch.Tensor, top_k: int) -> torch.Tensor:
    """power [N, K, F] -> [N, K, F] bool, True at the ``top_k`` largest bins per (stock, feature).

    Finds the k-th largest power by repeated max (``amax`` along a middle axis is far faster
    than ``argmax``/``topk`` on a CPU); bins tied exactly with it are all selected (a series
    with equal power in several bins, e.g. a constant, may lose more than ``top_k`` bins).
    """
    remaining = power
    threshold = remaining.amax(dim=1, keepdim=True)
    for _ in range(min(top_k, power.shape[1]) - 1):
        remaining = remaining.masked_fill(remaining >= threshold, -1.0)
        threshold = remaining.amax(dim=1, keepdim=True)
    return power >= threshold


def _project(x: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> coefficients [N, 1+2K, F], removed bins [N, K, F] bool, power [N, K, F].

    |X_k|^2 is the sum of the squared cos and sin projections: one square over the
    coefficients and one add, not a square per half.
    """
    k_bins = x.shape[1] // 2
    basis, _, _ = _dft_basis(x.shape[1], x.device)
    coef = torch.matmul(basis.T, x)  # [N, 1 + 2K, F]: sum_t x, sum_t x cos, sum_t x sin
    squares = coef.square()
    power = squares[:, 1 : 1 + k_bins] + squares[:, 1 + k_bins :]  # |X_k|^2
    return coef, _select_top_bins(power, top_k), power


def _subtract_components(x: torch.Tensor, coef: torch.Tensor, removed: torch.Tensor, with_mean: bool) -> torch.Tensor:
    """``x - basis @ (taken coefficients * synthesis)``, in one batched matmul.

    ``coef`` is overwritten (it becomes the taken, synthesis-weighted coefficients): the
    callers do not need it afterwards, and writing in place saves two passes over [N, 1+2K, F].

    Args:
        x: [N, T, F]; coef: [N, 1+2K, F]; removed: [N, K, F] bool.
        with_mean: also take away the DC component (the mean over time).
    """
    n_time, k_bins = x.shape[1], removed.shape[1]
    basis, synthesis, _ = _dft_basis(n_time, x.device)
    taken = coef.mul_(synthesis[None, :, None])
    if not with_mean:
        taken[:, :1] = 0.0
    # cos and sin halves at once: [N, 2, K, F] times removed [N, 1, K, F] (1 = taken)
    taken[:, 1:].unflatten(1, (2, k_bins)).mul_(removed.unsqueeze(1))
    return torch.baddbmm(x, basis.expand(x.shape[0], -1, -1), taken, alpha=-1.0)


def remove_dominant_frequencies(x: torch.Tensor, top_k: int) -> torch.Tensor:
    """Remove the ``top_k`` largest-power non-DC frequencies of every series.

    Args:
        x: [N, T, F] windows (time on dim 1).
        top_k: number of non-DC bins removed per (stock, feature); 1 <= top_k <= T // 2.

    Returns:
        [N, T, F] float32: the series minus its dominant periodic components (the mean is kept).
    """
    x = x.float()
    coef, removed, _ = _project(x, top_k)
    return _subtract_components(x, coef, removed, with_mean=False)


def fill_masked_steps(x: torch.Tensor, time_mask: torch.Tensor) -> torch.Tensor:
    """Give every step without data the value of a step with data, before the transform.

    A masked step takes the value of the nearest earlier valid step of its window; masked
    LEADING steps (before the stock's data starts in the window) take the first valid step's
    value. So a stock listed for only part of the window enters the FFT as a series that is
    flat before its first day, not as a jump from zeros (which would put spurious power in
    every frequency). A window without any valid step is returned unchanged.

    Args:
        x: [N, T, F]; time_mask: [N, T] bool, True where the step holds data.

    Returns:
        [N, T, F], equal to ``x`` at valid steps.
    """
    n_time = x.shape[1]
    t = torch.arange(n_time, device=x.device)
    last_valid = torch.where(time_mask, t, -1).cummax(dim=1).values  # [N, T], -1 before the first valid
    first_valid = torch.where(time_mask, t, n_time - 1).amin(dim=1, keepdim=True)  # [N, 1]
    source = torch.where(last_valid >= 0, last_valid, first_valid)
    # row indexing copies whole [F] rows (faster than an element-wise gather with an expanded index)
    return x[torch.arange(x.shape[0], device=x.device)[:, None], source]


class FrequencyAdaptiveNorm(nn.Module):
    """FAN along the time axis; no learnable parameters.

    Input [N, T, F] -> output [N, T, F]: the residual after removing the ``top_k`` dominant
    non-DC frequencies, minus its mean over time, divided by its std over time + eps. Runs
    in float32 with autocast off.
    """

    def __init__(self, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, T, F] -> [N, T, F] float32."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            n_time = x.shape[1]
            coef, removed, power = _project(x, self.top_k)
            _, _, parseval = _dft_basis(n_time, x.device)
            # Parseval: sum_t (residual - mean)^2 = sum over kept bins of parseval_k |X_k|^2 / T
            kept_power = power.masked_fill_(removed, 0.0)
            variance = torch.matmul(parseval[None, None, :], kept_power) / n_time**2  # [N, 1, F]
            inv_std = 1.0 / (variance.sqrt() + FAN_STD_EPS)
            # (x - mean - removed components) / std: the scale applies once, to the result
            return _subtract_components(x, coef, removed, with_mean=True).mul_(inv_std)
