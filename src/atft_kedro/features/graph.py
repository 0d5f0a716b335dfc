"""The stock graph: edges between stocks whose recent daily returns move together.

A graph is built every ``graph.recompute_every_days`` trading days, on the days
``first panel day + window - 1 + j * recompute_every_days``, from the daily returns of
AdjustmentClose over the ``window`` trading days ending that day (so it is valid from the
close of that day). A stock takes part if it is in the panel that day and has at least
``ceil(min_obs_fraction * window)`` returns in the window. Correlations are Pearson over
the window with missing days contributing zero to the cross-products (a mild shrinkage
for stocks with gaps), computed in float32. Each stock keeps its ``top_k`` partners by |rho| among those
with |rho| >= ``abs_rho_threshold``; edges are then made symmetric (i->j and j->i).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import torch

from atft_kedro.features.base import CODE_IDX, DAY
from atft_kedro.features.panel import RET1, StockPanel
from atft_kedro.features.params import GraphParams

GRAPH_COLUMNS = ("Date", "SourceCode", "TargetCode", "rho", "same_sector", "same_market")


def graph_days(panel: StockPanel, params: GraphParams) -> np.ndarray:
    """Trading-day indices (``_d``) on which a graph is built, ascending."""
    day = panel.frame.get_column(DAY)
    start = int(day.min()) + params.window - 1
    return np.arange(start, int(day.max()) + 1, params.recompute_every_days, dtype=np.int64)


def dense_panel(panel: StockPanel, values: pl.Series) -> tuple[np.ndarray, int]:
    """Spread a panel column onto a [days, codes] float64 array (NaN where no row).

    Returns:
        (array [D, N] with D = last - first panel day + 1, first panel day index).
    """
    day = panel.frame.get_column(DAY).to_numpy().astype(np.int64)
    code = panel.frame.get_column(CODE_IDX).to_numpy().astype(np.int64)
    first = int(day.min())
    out = np.full((int(day.max()) - first + 1, panel.codes.len()), np.nan)
    out[day - first, code] = values.cast(pl.Float64).fill_null(np.nan).to_numpy()
    return out, first


def presence(panel: StockPanel) -> tuple[np.ndarray, int]:
    """[D, N] bool: the stock has a panel row that day."""
    day = panel.frame.get_column(DAY).to_numpy().astype(np.int64)
    code = panel.frame.get_column(CODE_IDX).to_numpy().astype(np.int64)
    first = int(day.min())
    out = np.zeros((int(day.max()) - first + 1, panel.codes.len()), dtype=bool)
    out[day - first, code] = True
    return out, first


def eligible(returns: np.ndarray, present: np.ndarray, row: int, params: GraphParams) -> np.ndarray:
    """Stocks (bool [N]) that enter the graph built on dense row ``row``."""
    window = returns[row - params.window + 1: row + 1]
    need = math.ceil(params.min_obs_fraction * params.window)
    return present[row] & (np.isfinite(window).sum(axis=0) >= need)


def correlation_edges(window: np.ndarray, params: GraphParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric top-k edges of one window of returns.

    Args:
        window: [T, M] daily returns of the M eligible stocks (NaN where missing).
        params: threshold and k.

    Returns:
        (source [E], target [E], rho [E]) with positions into the M stocks, sorted by
        (source, target); every edge appears in both directions.
    """
    t, m = window.shape
    if m < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    finite = np.isfinite(window)
    count = finite.sum(axis=0)
    x = np.where(finite, window, 0.0)
    mean = x.sum(axis=0) / count
    centred = np.where(finite, window - mean, 0.0)
    std = np.sqrt((centred**2).sum(axis=0) / count)
    z = np.divide(centred, std, out=np.zeros_like(centred), where=std > 0).astype(np.float32)
    corr = (z.T @ z) / np.float32(t)
    np.fill_diagonal(corr, 0.0)
    k = min(params.top_k, m - 1)
    strength, partners = torch.topk(torch.from_numpy(np.abs(corr)), k, dim=1)  # [M, k] each
    rows = np.repeat(np.arange(m), k)
    cols = partners.numpy().ravel().astype(np.int64)
    keep = strength.numpy().ravel() >= max(params.abs_rho_threshold, np.finfo(np.float32).tiny)
    rows, cols = rows[keep], cols[keep]
    pairs = np.unique(np.concatenate([rows * m + cols, cols * m + rows]))
    source, target = pairs // m, pairs % m
    return source, target, corr[source, target].astype(np.float64)


def build_stock_graph(panel: StockPanel, params: GraphParams) -> pl.DataFrame:
    """Edges of every graph: Date (valid from), SourceCode, TargetCode, rho, same_sector, same_market.

    Loops over the graph days only (one matrix product each); no loop over stocks. The
    edges of all days are collected as index arrays and turned into one frame at the end.
    """
    returns, first = dense_panel(panel, panel.frame.get_column(RET1))
    present, _ = presence(panel)
    sector, _ = _dense_labels(panel, "Sector33Code")
    market, _ = _dense_labels(panel, "MarketCode")
    days, sources, targets, rhos, same_sector, same_market = [], [], [], [], [], []
    for day in graph_days(panel, params):
        row = int(day) - first
        members = np.flatnonzero(eligible(returns, present, row, params))
        window = returns[row - params.window + 1: row + 1][:, members]
        src, dst, rho = correlation_edges(window, params)
        s, t = members[src], members[dst]
        days.append(np.full(s.size, day, dtype=np.int64))
        sources.append(s)
        targets.append(t)
        rhos.append(rho)
        same_sector.append((sector[row, s] == sector[row, t]).astype(np.float64))
        same_market.append((market[row, s] == market[row, t]).astype(np.float64))
    if not days:
        raise ValueError(
            f"the panel spans fewer trading days than params:feature_engineering.graph.window "
            f"({params.window}); no stock graph can be built")
    return pl.DataFrame({
        "Date": panel.trading_days.gather(np.concatenate(days)),
        "SourceCode": panel.codes.gather(np.concatenate(sources)),
        "TargetCode": panel.codes.gather(np.concatenate(targets)),
        "rho": np.concatenate(rhos),
        "same_sector": np.concatenate(same_sector),
        "same_market": np.concatenate(same_market),
    })


def _dense_labels(panel: StockPanel, column: str) -> tuple[np.ndarray, int]:
    """[D, N] int codes of a string column (-1 where no row)."""
    labels = panel.frame.get_column(column).rank("dense").cast(pl.Int64)
    day = panel.frame.get_column(DAY).to_numpy().astype(np.int64)
    code = panel.frame.get_column(CODE_IDX).to_numpy().astype(np.int64)
    first = int(day.min())
    out = np.full((int(day.max()) - first + 1, panel.codes.len()), -1, dtype=np.int64)
    out[day - first, code] = labels.fill_null(-1).to_numpy()
    return out, first
