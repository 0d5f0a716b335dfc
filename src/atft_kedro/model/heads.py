"""Per-horizon quantile heads with monotone quantiles.

For horizon h the head maps the stock state [d] to Q raw values ``r``; the quantiles are
``q_0 = r_0`` and ``q_j = q_{j-1} + softplus(r_j)``, so they never cross. The median
(quantile 0.5) is the point forecast. All H heads live in one weight tensor [H, d, Q].
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: Initial gap between neighbouring quantiles, in return units (an initialisation, not a tunable).
INITIAL_QUANTILE_STEP = 0.01
#: Initial weights are this small so the first forecasts are near 0 (returns are ~1e-2).
OUTPUT_INIT_STD = 1e-3


class QuantileHeads(nn.Module):
    """H heads of Q monotone quantiles each: [N, d] -> [N, H, Q]."""

    def __init__(self, hidden_size: int, n_horizons: int, n_quantiles: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_horizons, hidden_size, n_quantiles) * OUTPUT_INIT_STD)
        bias = torch.zeros(n_horizons, n_quantiles)
        bias[:, 1:] = math.log(math.expm1(INITIAL_QUANTILE_STEP))  # softplus^-1(step)
        self.bias = nn.Parameter(bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: [N, d] -> quantiles [N, H, Q] float32, non-decreasing along Q.

        Runs in float32 with autocast off: bf16 would round forecasts of ~1e-2 to steps of
        ~4e-5 and tie many stocks in the ranking.
        """
        with torch.autocast(device_type=h.device.type, enabled=False):
            raw = torch.einsum("nd,hdq->nhq", h.float(), self.weight) + self.bias
            steps = torch.cat([raw[..., :1], F.softplus(raw[..., 1:])], dim=-1)
            return torch.cumsum(steps, dim=-1)
