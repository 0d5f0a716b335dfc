"""Packing the dated ``stock_graph`` table (Polars) into the model's ``GraphTensors``.

This is node-layer code: ``atft_kedro.model`` uses torch, torch-geometric, numpy and pydantic
only (so it runs on a bare CUDA machine), and the training, evaluation and inference nodes
call ``pack_graph`` here before handing the graph to the model package.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import torch

from atft_kedro.model.data import EDGE_ATTRIBUTES, GraphTensors

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
