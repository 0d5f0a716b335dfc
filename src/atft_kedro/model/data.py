"""The model input as device tensors, the stock graph as one packed edge list, and day batches.

Everything is built once per run and stays on the device; a batch of trading days is cut
by tensor indexing (no DataLoader, no worker processes, no pickling). The windows of B
days are stacked on the stock axis: row ``b * N + i`` is stock ``i`` on the batch's day
``b``, and day b's graph uses node indices ``b * N + code_index``.

Cutting a batch does not wait for the device: the day indices come from the host (pinned,
non-blocking copies on CUDA), every size is computed from host copies of the graph pointers
(``repeat_interleave`` gets its ``output_size``), and nothing is read back. This module uses
torch and numpy only; the Polars ``stock_graph`` table is packed into ``GraphTensors`` by
``atft_kedro.graph_packing`` (the node layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from atft_kedro.model.losses import average_ranks
from atft_kedro.schemas.model_input import ModelInput


#: Edge attribute columns of the ``stock_graph`` table, in the order of ``edge_attr``'s last axis.
EDGE_ATTRIBUTES = ("rho", "same_sector", "same_market")


def to_device(array: np.ndarray, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Copy a host array to ``device``: through pinned memory and without blocking the host on CUDA."""
    # np.require copies only a read-only array (Polars' zero-copy views are): torch cannot share those.
    tensor = torch.as_tensor(np.require(array, requirements="W"), dtype=dtype)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@dataclass(frozen=True)
class DeviceTensors:
    """The model input on the device.

    Attributes:
        features: [D, N, F] float32 (FAN needs float32 inputs whatever the training precision).
        mask: [D, N] bool.
        targets: [D, N, H] float32, NaN where unknown.
        target_ranks: [D, N, H] float32, exact average ranks of each day's valid targets
            (computed once here; the loss and the RankIC metric reuse them every step).
    """

    features: torch.Tensor
    mask: torch.Tensor
    targets: torch.Tensor
    target_ranks: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.features.device

    @property
    def n_stocks(self) -> int:
        return self.features.shape[1]


#: Days ranked per call when ranking every target of a run (bounds the sort's memory).
RANK_DAYS_PER_CALL = 256


def device_tensors(model_input: ModelInput, device: torch.device) -> DeviceTensors:
    """Move a ``ModelInput`` to ``device`` once (float32 features) and rank its targets once."""
    mask = to_device(np.asarray(model_input.mask, dtype=bool), device, torch.bool)
    targets = to_device(np.asarray(model_input.targets, dtype=np.float32), device, torch.float32)
    return DeviceTensors(
        features=to_device(np.asarray(model_input.features, dtype=np.float32), device, torch.float32),
        mask=mask,
        targets=targets,
        target_ranks=rank_targets(targets, mask),
    )


def rank_targets(targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """targets [D, N, H], mask [D, N] -> exact average ranks of each day's valid targets [D, N, H]."""
    valid = torch.isfinite(targets) & mask.unsqueeze(-1)
    if not targets.shape[0]:
        return torch.zeros_like(targets)
    return torch.cat(
        [
            average_ranks(targets[i : i + RANK_DAYS_PER_CALL], valid[i : i + RANK_DAYS_PER_CALL])
            for i in range(0, targets.shape[0], RANK_DAYS_PER_CALL)
        ]
    )


@dataclass(frozen=True)
class GraphTensors:
    """All graphs of the run as one edge list.

    Attributes:
        edge_index: [2, E] long, (source, target) indices into the model input's codes.
        edge_attr: [E, 3] float32 (rho, same_sector, same_market).
        graph_ptr: [G + 1] long; graph g's edges are ``edge_index[:, ptr[g]:ptr[g + 1]]``.
        day_graph: [D] long; the graph valid on each model day (latest dated <= day), -1 = none.

    ``graph_ptr`` and ``day_graph`` are kept on the host as numpy arrays too (``ptr_host``,
    ``day_graph_host``): batch sizes are computed there, so cutting a batch never waits for
    the device.
    """

    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    graph_ptr: torch.Tensor
    day_graph: torch.Tensor

    @property
    def ptr_host(self) -> np.ndarray:
        return self._host("graph_ptr")

    @property
    def day_graph_host(self) -> np.ndarray:
        return self._host("day_graph")

    def _host(self, name: str) -> np.ndarray:
        cache = self.__dict__.setdefault("_host_cache", {})
        if name not in cache:
            cache[name] = getattr(self, name).cpu().numpy()
        return cache[name]

    def to(self, device: torch.device) -> GraphTensors:
        moved = GraphTensors(
            *(t.to(device) for t in (self.edge_index, self.edge_attr, self.graph_ptr, self.day_graph))
        )
        moved.__dict__["_host_cache"] = {"graph_ptr": self.ptr_host, "day_graph": self.day_graph_host}
        return moved


@dataclass(frozen=True)
class DayBatch:
    """Inputs and targets of B trading days (rows stacked day-major).

    Attributes:
        x: [B*N, T, F] windows (features dtype).
        time_mask: [B*N, T] bool.
        stock_mask: [B*N] bool.
        edge_index: [2, E] long into B*N; edge_attr: [E, 3].
        targets: [B, N, H].
        target_ranks: [B, N, H] exact average ranks of the valid targets of each day.
        day_mask: [B, N] bool (= stock_mask per day).
    """

    x: torch.Tensor
    time_mask: torch.Tensor
    stock_mask: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    targets: torch.Tensor
    target_ranks: torch.Tensor
    day_mask: torch.Tensor

    @property
    def n_days(self) -> int:
        return self.targets.shape[0]


def _batch_edges(graph: GraphTensors, days: np.ndarray, n_stocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges of each day's graph, node indices offset by ``b * n_stocks``: -> [2, E], [E, 3].

    Sizes come from the host copies of the pointers: no read-back from the device.
    """
    device = graph.edge_index.device
    slots = graph.day_graph_host[days]  # [B]
    ptr = graph.ptr_host
    start = ptr[np.maximum(slots, 0)]
    counts = np.where(slots >= 0, ptr[np.maximum(slots, 0) + 1] - start, 0)
    first = np.cumsum(counts) - counts
    n_edges = int(counts.sum())
    per_day = to_device(np.stack([counts, start - first]), device, torch.long)  # [2, B]
    day_of_edge = torch.repeat_interleave(
        torch.arange(len(days), device=device), per_day[0], output_size=n_edges
    )
    edge_ids = torch.arange(n_edges, device=device) + per_day[1][day_of_edge]
    return graph.edge_index[:, edge_ids] + day_of_edge * n_stocks, graph.edge_attr[edge_ids]


def day_batch(
    tensors: DeviceTensors,
    day_index: int | Sequence[int] | np.ndarray,
    window: int,
    graph: GraphTensors | None = None,
) -> DayBatch:
    """Cut the windows of one or more days by indexing.

    Args:
        tensors: the model input on the device.
        day_index: a day index or B day indices into the model input.
        window: T, days per window; the window of day d is days d - T + 1 .. d, and days
            before the first day are zeros with ``time_mask`` False.
        graph: packed graphs on the same device; None = no edges.

    Returns:
        ``DayBatch`` with x [B*N, T, F].
    """
    device = tensors.device
    days_host = np.atleast_1d(np.asarray(day_index, dtype=np.int64))
    n_days, n_stocks = len(days_host), tensors.n_stocks
    steps_host = days_host[:, None] + np.arange(1 - window, 1)  # [B, T]
    reaches_before_start = bool((steps_host < 0).any())  # decided on the host: no device sync
    days = to_device(days_host, device, torch.long)
    steps = to_device(np.maximum(steps_host, 0), device, torch.long)
    in_range = to_device(steps_host >= 0, device, torch.bool)
    stocks = torch.arange(n_stocks, device=device)
    # one gather straight into the [B, N, T, F] layout
    x = tensors.features[steps[:, None, :], stocks[None, :, None]]  # [B, N, T, F]
    if reaches_before_start:  # windows reaching before the first day: zeros there
        x = x * in_range[:, None, :, None].to(x.dtype)
    x = x.reshape(n_days * n_stocks, window, -1)
    time_mask = (tensors.mask[steps[:, None, :], stocks[None, :, None]] & in_range[:, None, :]).reshape(
        n_days * n_stocks, window
    )
    day_mask = tensors.mask[days]
    if graph is None:
        edge_index = torch.zeros((2, 0), dtype=torch.long, device=device)
        edge_attr = torch.zeros((0, 3), dtype=torch.float32, device=device)
    else:
        edge_index, edge_attr = _batch_edges(graph, days_host, n_stocks)
    return DayBatch(
        x=x,
        time_mask=time_mask,
        stock_mask=day_mask.reshape(-1),
        edge_index=edge_index,
        edge_attr=edge_attr,
        targets=tensors.targets[days],
        target_ranks=tensors.target_ranks[days],
        day_mask=day_mask,
    )
