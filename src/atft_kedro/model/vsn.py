"""Variable selection: vectorised per-feature embeddings and softmax selection weights.

Each feature f has its own linear embedding ``xi_f(t) = sum_c x_c[t, f] * W[c, f]`` (``W`` is
ONE tensor [C, F, d], not F modules; C input channels per feature, here the raw value and
its FAN residual). A small selection network maps the window's decision-day inputs (its
last step, all channels) to F logits; their softmax ``v`` [N, F] weighs the embeddings at
every step: ``out(t) = LayerNorm(sum_f v_f xi_f(t))``.

Design choices, both for speed on wide inputs (F ~ 250-400):
- the sum is computed as ``sum_c (x_c * v) @ W[c]``, never materialising [N, T, F, d];
- the selection weights are computed once per window from its last step and shared by its
  T steps (the Temporal Fusion Transformer computes them per step; that costs T times more
  and, measured on the 2-core CPU, about as much as the rest of the model). The returned
  weights are that vector broadcast to [N, T, F]; their mean is the feature importance of
  the forecasts.
A channel passed as ``None`` is all zeros and is skipped (no work, no gradient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class VariableSelection(nn.Module):
    """Per-feature embeddings weighted by softmax selection weights.

    Args:
        n_features: F.
        n_channels: C values per feature and time step.
        hidden_size: d, the embedding size (also the selection network's hidden size).
        dropout: dropout on the selection network's hidden layer.
    """

    def __init__(self, n_features: int, n_channels: int, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.n_features = n_features
        self.n_channels = n_channels
        self.embedding_weight = nn.Parameter(torch.randn(n_channels, n_features, hidden_size) / math.sqrt(n_channels))
        bound = 1.0 / math.sqrt(n_features * n_channels)
        self.selector_weight = nn.Parameter(torch.empty(n_channels, n_features, hidden_size).uniform_(-bound, bound))
        self.selector_bias = nn.Parameter(torch.zeros(hidden_size))
        self.selector_dropout = nn.Dropout(dropout)
        self.selector_out = nn.Linear(hidden_size, n_features)
        self.norm = nn.LayerNorm(hidden_size)

    def forward(self, channels: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Select and embed.

        Args:
            channels: C tensors [N, T, F] (or None for an all-zero channel); the first must be given.

        Returns:
            embedded [N, T, d] and selection weights [N, T, F] (softmax over F, equal over T).
        """
        if len(channels) != self.n_channels or channels[0] is None:
            raise ValueError(f"VariableSelection expects {self.n_channels} channels, the first not None")
        present = [(c, x) for c, x in enumerate(channels) if x is not None]
        hidden = self.selector_bias + sum(x[:, -1, :] @ self.selector_weight[c] for c, x in present)  # [N, d]
        logits = self.selector_out(self.selector_dropout(F.elu(hidden)))  # [N, F]
        weights = torch.softmax(logits, dim=-1).unsqueeze(1)  # [N, 1, F]
        embedded = sum((x * weights) @ self.embedding_weight[c] for c, x in present)  # [N, T, d]
        return self.norm(embedded), weights.expand(-1, channels[0].shape[1], -1)
