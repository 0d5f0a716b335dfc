"""ATFT-GAT-FAN: FAN -> variable selection -> temporal block -> GAT fusion -> quantile heads.

A forward pass takes the windows of one or several trading days stacked on the stock axis
(N = days x stocks, each day's graph offset into its own node block) and returns monotone
quantiles for every horizon. Every step is per stock except the GAT, whose edges touching
padded stocks are dropped, so a padded stock never changes another stock's output.

Precision (``training.precision``). With ``fp32`` everything is float32. With ``bf16`` the
forward runs under ``torch.autocast(device_type, dtype=torch.bfloat16)`` and:

=====================  =========================================================
FAN                    float32, autocast off, from float32 features -> float32
variable selection     autocast: its matmuls in bfloat16 (LayerNorm as autocast says)
LSTM                   float32, autocast off (never the float16 of CUDA autocast's RNN)
attention, GRNs        autocast: matmuls in bfloat16
GAT + fusion gate      autocast: matmuls in bfloat16
quantile heads         float32, autocast off -> float32 forecasts
loss, metrics          float32, outside autocast
=====================  =========================================================

``tests/model`` checks these output dtypes under CPU autocast (which supports bfloat16).
"""

from __future__ import annotations

import torch
from torch import nn

from atft_kedro.model.fan import FrequencyAdaptiveNorm, fill_masked_steps
from atft_kedro.model.graph import GatedFusion, GraphBlock, drop_padded_edges
from atft_kedro.model.heads import QuantileHeads
from atft_kedro.model.params import ModelParams
from atft_kedro.model.temporal import TemporalBlock
from atft_kedro.model.vsn import VariableSelection

#: Input channels per feature for the variable selection: raw value, FAN residual.
N_CHANNELS = 2


class ATFTGATFAN(nn.Module):
    """The model.

    Args:
        params: architecture (``params:model``).
        n_features: F, the length of the feature manifest.
        n_horizons: H, the number of target horizons.

    The FAN and GAT branches exist when ``params.fan.enabled`` / ``params.gat.enabled``;
    ``set_components`` switches built branches on or off for a training phase. With FAN off
    its channel is zeros (skipped), so the parameter set never depends on the phase.
    """

    def __init__(self, params: ModelParams, n_features: int, n_horizons: int) -> None:
        super().__init__()
        self.params = params
        self.n_features = n_features
        self.n_horizons = n_horizons
        d = params.hidden_size
        self.fan = FrequencyAdaptiveNorm(params.fan.top_k) if params.fan.enabled else None
        self.vsn = VariableSelection(n_features, N_CHANNELS, d, params.dropout)
        self.temporal = TemporalBlock(d, params.lstm_layers, params.attention_heads, params.dropout)
        if params.gat.enabled:
            self.graph = GraphBlock(d, params.gat.layers, params.gat.heads, params.dropout)
            self.fusion = GatedFusion(d, params.gat.gate_init)
        else:
            self.graph = None
            self.fusion = None
        self.heads = QuantileHeads(d, n_horizons, len(params.quantiles))
        self.use_fan = params.fan.enabled
        self.use_gat = params.gat.enabled
        #: hash of the feature manifest the weights were trained on (set when built from a checkpoint)
        self.manifest_hash: str | None = None
        #: days per forward pass in ``forecast_days`` (set by ``build_model_from_checkpoint``)
        self.forecast_days_per_batch: int | None = None
        #: "fp32" or "bf16": forecasting runs under bf16 autocast when training did
        self.precision = "fp32"

    def set_components(self, fan: bool, gat: bool) -> None:
        """Switch the FAN and GAT branches on/off; asking for a branch that was not built is an error."""
        if fan and self.fan is None:
            raise ValueError("FAN requested but model.fan.enabled is false (the branch was not built)")
        if gat and self.graph is None:
            raise ValueError("GAT requested but model.gat.enabled is false (the branch was not built)")
        self.use_fan = fan
        self.use_gat = gat

    def gat_parameters(self) -> list[nn.Parameter]:
        """Parameters of the GAT layers (not the gate), for gradient monitoring."""
        return [] if self.graph is None else list(self.graph.parameters())

    def gate_value(self) -> float:
        """Mean fusion gate, NaN when the GAT branch is not built."""
        return float("nan") if self.fusion is None else self.fusion.gate_value()

    def forward(
        self,
        x: torch.Tensor,
        stock_mask: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        time_mask: torch.Tensor | None = None,
        return_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Forecast.

        Args:
            x: [N, T, F] input windows (last step = the forecast day).
            stock_mask: [N] bool, False for padded stocks (output for them is meaningless).
            edge_index: [2, E] long node indices into N.
            edge_attr: [E, 3] (rho, same_sector, same_market).
            time_mask: [N, T] bool, False for steps without data; None = all valid.
            return_weights: also return the variable-selection weights.

        Returns:
            quantiles [N, H, Q]; with ``return_weights`` also weights [N, T, F].
        """
        keep = stock_mask.to(torch.float32)[:, None, None]
        if time_mask is not None:
            keep = keep * time_mask.to(torch.float32).unsqueeze(-1)
        x = x.float() * keep  # padded stocks / steps are exactly 0
        fan_x = None  # None = an all-zero channel (FAN off)
        if self.use_fan and self.fan is not None:
            # steps without data enter the FFT as their nearest valid value, not as zeros
            fan_x = self.fan(x if time_mask is None else fill_masked_steps(x, time_mask)) * keep
        embedded, weights = self.vsn((x, fan_x))  # [N, T, d], [N, T, F]
        state = self.temporal(embedded, time_mask)  # [N, d]
        if self.use_gat and self.graph is not None:
            ei, ea = drop_padded_edges(edge_index, edge_attr, stock_mask)
            state = self.fusion(state, self.graph(state, ei, ea))
        state = state * stock_mask.to(state.dtype).unsqueeze(-1)
        quantiles = self.heads(state)
        return (quantiles, weights) if return_weights else quantiles
