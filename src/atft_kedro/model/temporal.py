"""TFT-style temporal block: LSTM encoder, masked multi-head attention, gated residual networks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class GatedResidualNetwork(nn.Module):
    """GRN of the Temporal Fusion Transformer.

    ``out = LayerNorm(skip(x) + GLU(W2 ELU(W1 x)))`` where GLU(z) = sigmoid(Wg z) * (Wv z).
    Works on any leading shape: [..., d_in] -> [..., d_out].
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)
        self.dropout = nn.Dropout(dropout)
        self.gate = GateAddNorm(d_out, dropout=0.0)
        self.skip = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., d_in] -> [..., d_out]."""
        hidden = self.dropout(self.fc2(F.elu(self.fc1(x))))
        return self.gate(hidden, self.skip(x))


class GateAddNorm(nn.Module):
    """``LayerNorm(residual + sigmoid(Wg x) * (Wv x))`` on [..., d] tensors."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.glu = nn.Linear(d, 2 * d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """x, residual: [..., d] -> [..., d]."""
        return self.norm(residual + F.glu(self.glu(self.dropout(x)), dim=-1))


class TemporalBlock(nn.Module):
    """Encode a window [N, T, d] into one state per stock [N, d] at the window's last day.

    LSTM over time (float32, autocast off) -> gate/add/norm with the input -> multi-head attention from the last
    step (the decision day, the only output used) to every valid step of the window ->
    gate/add/norm -> position-wise GRN. Steps with ``time_mask`` False (before the data
    starts, or days the stock was not listed) are zeroed before the LSTM and never
    attended to; the last step is always attendable so no row is all-masked.
    """

    def __init__(self, hidden_size: int, lstm_layers: int, attention_heads: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            hidden_size,
            hidden_size,
            num_layers=lstm_layers,
            batch_first=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.lstm_gate = GateAddNorm(hidden_size, dropout)
        self.attention = nn.MultiheadAttention(hidden_size, attention_heads, dropout=dropout, batch_first=True)
        self.attention_gate = GateAddNorm(hidden_size, dropout)
        self.output_grn = GatedResidualNetwork(hidden_size, hidden_size, hidden_size, dropout)

    def forward(self, x: torch.Tensor, time_mask: torch.Tensor | None) -> torch.Tensor:
        """Encode.

        Args:
            x: [N, T, d] embedded inputs.
            time_mask: [N, T] bool, True where the step holds data; None = all steps valid.

        Returns:
            [N, d] state at the last step.
        """
        if time_mask is not None:
            time_mask = time_mask.clone()
            time_mask[:, -1] = True
            x = x * time_mask.unsqueeze(-1).to(x.dtype)
        # float32 outside autocast: under CUDA autocast the cuDNN LSTM would run in float16
        # whatever autocast's dtype, and its small gradients underflow there (docs/model.md)
        with torch.autocast(device_type=x.device.type, enabled=False):
            encoded, _ = self.lstm(x.float())  # [N, T, d] float32
        encoded = self.lstm_gate(encoded, x)
        query = encoded[:, -1:, :]  # [N, 1, d]
        attended, _ = self.attention(
            query,
            encoded,
            encoded,
            key_padding_mask=None if time_mask is None else ~time_mask,
            need_weights=False,
        )
        state = self.attention_gate(attended, query)  # [N, 1, d]
        return self.output_grn(state).squeeze(1)
