"""The model input as device tensors, the stock graph as one packed edge list, and day batches.

Everything is built once per run and stays on the device; a batch of trading days is cut
by tensor indexing (no DataLoader, no worker processes, no pickling). The windows of B
days are stacked on the stock axis: row ``b * N + i`` is stock ``i`` on the batch's day
``b``, and day b's graph uses node indices ``b * N + code_index``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from atft_kedro.schemas.model_input import ModelInput

logger = logging.getLogger(__name__)

#: Columns of the ``stock_graph`` table and their dtypes.
GRAPH_COLUMNS: dict[str, pl.DataType] = {
    "Date": pl.Date(),
    "SourceCode": pl.String(),
    "TargetCode": pl.String(),
    "rho": pl.Float64(),
    "same_sector": pl.Float64(),
    "same_market": pl.Float64(),
}
#: Edge attribute columns, in the order of ``edge_attr``'s last axis.
EDGE_ATTRIBUTES = ("rho", "same_sector", "same_market")


@dataclass(frozen=True)
class DeviceTensors:
    """The model input on the device.

    Attributes:
        features: [D, N, F] float32 or bfloat16.
        mask: [D, N] bool.
        targets: [D, N, H] float32, NaN where unknown.
    """

    features: torch.Tensor
    mask: torch.Tensor
    targets: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.features.device

    @property
    def n_stocks(self) -> int:
        return self.features.shape[1]


def device_tensors(model_input: ModelInput, device: torch.device, dtype: torch.dtype) -> DeviceTensors:
    """Move a ``ModelInput`` to ``device`` once; features in ``dtype`` (float32 or bfloat16)."""
    return DeviceTensors(
        features=torch.as_tensor(model_input.features).to(device=device, dtype=dtype),
        mask=torch.as_tensor(model_input.mask, dtype=torch.bool).to(device),
        targets=torch.as_tensor(model_input.targets, dtype=torch.float32).to(device),
    )


@dataclass(frozen=True)
class GraphTensors:
    """All graphs of the run as one edge list.

    Attributes:
        edge_index: [2, E] long, (source, target) indices into the model input's codes.
        edge_attr: [E, 3] float32 (rho, same_sector, same_market).
        graph_ptr: [G + 1] long; graph g's edges are ``edge_index[:, ptr[g]:ptr[g + 1]]``.
        day_graph: [D] long; the graph valid on each model day (latest dated <= day), -1 = none.
    """

    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    graph_ptr: torch.Tensor
    day_graph: torch.Tensor

    def to(self, device: torch.device) -> GraphTensors:
        return GraphTensors(*(t.to(device) for t in (self.edge_index, self.edge_attr, self.graph_ptr, self.day_graph)))


def _require_graph_columns(stock_graph: pl.DataFrame) -> None:
    problems = [
        f"{name} (expected {dtype}, got {stock_graph.schema.get(name, 'missing')})"
        for name, dtype in GRAPH_COLUMNS.items()
        if stock_graph.schema.get(name) != dtype
    ]
    if problems:
        raise ValueError(f"table 'stock_graph' has wrong or missing columns: {problems}")
    bad = stock_graph.filter(~pl.all_horizontal(pl.col(list(EDGE_ATTRIBUTES)).is_finite()))
    if bad.height:
        raise ValueError(
            f"table 'stock_graph': {bad.height} rows with non-finite {list(EDGE_ATTRIBUTES)}, e.g. {bad.head(3).rows()}"
        )


def pack_graph(stock_graph: pl.DataFrame, dates: np.ndarray, codes: np.ndarray) -> GraphTensors:
    """Pack the dated stock graphs into one edge list with a pointer per model day.

    Args:
        stock_graph: Date (valid from), SourceCode, TargetCode, rho, same_sector, same_market.
        dates: [D] datetime64[D] model days, ascending.
        codes: [N] stock codes of the model input.

    Returns:
        ``GraphTensors`` on the CPU. Edges whose codes are not in ``codes`` are dropped
        (logged with their count); a day before the first graph date has no edges.
    """
    _require_graph_columns(stock_graph)
    code_index = pl.DataFrame({"code": np.asarray(codes).astype(str), "idx": np.arange(len(codes), dtype=np.int64)})
    graph_dates = stock_graph.get_column("Date").unique().sort()
    edges = (
        stock_graph.lazy()
        .join(code_index.lazy().rename({"code": "SourceCode", "idx": "src"}), on="SourceCode", how="inner")
        .join(code_index.lazy().rename({"code": "TargetCode", "idx": "dst"}), on="TargetCode", how="inner")
        .join(
            graph_dates.to_frame().with_row_index("slot").lazy().with_columns(pl.col("slot").cast(pl.Int64)),
            on="Date",
            how="inner",
        )
        .sort(["slot", "dst", "src"])
        .collect()
    )
    dropped = stock_graph.height - edges.height
    if dropped:
        logger.info(
            "stock_graph: %d of %d edges name codes outside the model input; not used", dropped, stock_graph.height
        )
    slot = edges.get_column("slot").to_numpy()
    ptr = np.searchsorted(slot, np.arange(graph_dates.len() + 1), side="left")
    day_graph = np.searchsorted(graph_dates.to_numpy(), np.asarray(dates, dtype="datetime64[D]"), side="right") - 1
    return GraphTensors(
        edge_index=torch.as_tensor(np.stack([edges["src"].to_numpy(), edges["dst"].to_numpy()]), dtype=torch.long),
        edge_attr=torch.as_tensor(edges.select(EDGE_ATTRIBUTES).to_numpy(), dtype=torch.float32).reshape(-1, 3),
        graph_ptr=torch.as_tensor(ptr, dtype=torch.long),
        day_graph=torch.as_tensor(day_graph, dtype=torch.long),
    )


@dataclass(frozen=True)
class DayBatch:
    """Inputs and targets of B trading days (rows stacked day-major).

    Attributes:
        x: [B*N, T, F] windows (features dtype).
        time_mask: [B*N, T] bool.
        stock_mask: [B*N] bool.
        edge_index: [2, E] long into B*N; edge_attr: [E, 3].
        targets: [B, N, H].
        day_mask: [B, N] bool (= stock_mask per day).
    """

    x: torch.Tensor
    time_mask: torch.Tensor
    stock_mask: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    targets: torch.Tensor
    day_mask: torch.Tensor

    @property
    def n_days(self) -> int:
        return self.targets.shape[0]


def _batch_edges(graph: GraphTensors, days: torch.Tensor, n_stocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges of each day's graph, node indices offset by ``b * n_stocks``: -> [2, E], [E, 3]."""
    slots = graph.day_graph[days]  # [B]
    has = slots >= 0
    start = graph.graph_ptr[slots.clamp_min(0)]
    counts = torch.where(has, graph.graph_ptr[slots.clamp_min(0) + 1] - start, torch.zeros_like(start))
    day_of_edge = torch.repeat_interleave(torch.arange(len(days), device=days.device), counts)
    first = torch.cumsum(counts, 0) - counts
    position = torch.arange(day_of_edge.numel(), device=days.device) - first[day_of_edge]
    edge_ids = start[day_of_edge] + position
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
    days = torch.as_tensor(np.atleast_1d(np.asarray(day_index, dtype=np.int64)), device=device)
    n_days, n_stocks = len(days), tensors.n_stocks
    steps = days.unsqueeze(1) + torch.arange(1 - window, 1, device=device)  # [B, T]
    in_range = steps >= 0
    steps = steps.clamp_min(0)
    stocks = torch.arange(n_stocks, device=device)
    # one gather straight into the [B, N, T, F] layout
    x = tensors.features[steps[:, None, :], stocks[None, :, None]]  # [B, N, T, F]
    if not bool(in_range.all()):  # windows reaching before the first day: zeros there
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
        edge_index, edge_attr = _batch_edges(graph, days, n_stocks)
    return DayBatch(
        x=x,
        time_mask=time_mask,
        stock_mask=day_mask.reshape(-1),
        edge_index=edge_index,
        edge_attr=edge_attr,
        targets=tensors.targets[days],
        day_mask=day_mask,
    )
