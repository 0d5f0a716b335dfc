"""Graph attention over the day's stock graph and its gated residual fusion.

Edges follow PyG's convention: ``edge_index[0]`` is the source (SourceCode), ``[1]`` the
target (TargetCode); a target aggregates messages from its sources. Edge attributes are
[rho, same_sector, same_market]. Every GATv2 layer adds self-loops, so a stock without
edges (or a day with no edges at all) still gets a defined output.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.nn import GATv2Conv

#: Edge attributes per edge: correlation, same sector, same market.
EDGE_DIM = 3


class GraphBlock(nn.Module):
    """Stack of ``GATv2Conv`` layers (heads concatenated back to ``hidden_size``) with ELU.

    Args:
        hidden_size: d (divisible by ``heads``).
        layers: number of GATv2 layers.
        heads: attention heads per layer.
        dropout: attention and feature dropout.
    """

    def __init__(self, hidden_size: int, layers: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            GATv2Conv(
                hidden_size,
                hidden_size // heads,
                heads=heads,
                concat=True,
                dropout=dropout,
                edge_dim=EDGE_DIM,
                add_self_loops=True,
                fill_value="mean",
            )
            for _ in range(layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """h: [N, d], edge_index: [2, E] long, edge_attr: [E, 3] -> [N, d]."""
        z = h
        for conv in self.convs:
            z = self.dropout(F.elu(conv(z, edge_index, edge_attr.to(z.dtype))))
        return z


class GatedFusion(nn.Module):
    """``out = h + g * gat(h)`` with a learnable per-channel gate ``g = sigmoid(logit)``.

    The identity path keeps the temporal state intact; the GAT's gradient is the loss
    gradient times ``g`` (never vanishing while g is not saturated at 0).
    """

    def __init__(self, hidden_size: int, gate_init: float) -> None:
        super().__init__()
        self.gate_logit = nn.Parameter(torch.full((hidden_size,), float(gate_init)))

    def gate(self) -> torch.Tensor:
        """[d] gate values in (0, 1)."""
        return torch.sigmoid(self.gate_logit)

    def gate_value(self) -> float:
        """Mean gate value, for the training history."""
        return float(self.gate().mean().detach().cpu())

    def forward(self, h: torch.Tensor, graph_out: torch.Tensor) -> torch.Tensor:
        """h, graph_out: [N, d] -> [N, d]."""
        return h + self.gate().to(h.dtype) * graph_out


def drop_padded_edges(
    edge_index: torch.Tensor, edge_attr: torch.Tensor, stock_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep only edges whose two ends are real stocks.

    Args:
        edge_index: [2, E] long; edge_attr: [E, 3]; stock_mask: [N] bool.

    Returns:
        edge_index [2, E'] and edge_attr [E', 3] with E' <= E.
    """
    keep = stock_mask[edge_index[0]] & stock_mask[edge_index[1]]
    return edge_index[:, keep], edge_attr[keep]
