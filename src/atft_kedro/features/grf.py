"""``grf_``: the stock's place in the correlation graph and what its peers just did.

On date t the graph in force is the latest one built on or before t (``stock_graph``).
Node features (degree, weighted degree, eigenvector centrality, clustering, mean rho)
describe that graph; peer returns average the neighbours' returns of day t over the
same window lengths (the lead-lag channel: peers moved, the stock may follow).
Stocks that were not eligible for the graph get nulls and ``grf_valid`` = 0.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from atft_kedro.features.base import CODE_IDX, DAY, Feature, lag, require_table, select_features
from atft_kedro.features.graph import GRAPH_COLUMNS, dense_panel, eligible, graph_days, presence
from atft_kedro.features.panel import CLOSE, RET1, StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "grf"
SOURCE = "stock_graph+daily_quotes"
_NODE = ("degree", "weighted_degree", "eigen_centrality", "clustering", "mean_rho")


def features(params: FeatureParams) -> list[Feature]:
    """The grf_ features, in manifest order."""
    g = params.graph
    descriptions = {
        "degree": "number of neighbours in the latest correlation graph",
        "weighted_degree": "sum of |rho| over the neighbours",
        "eigen_centrality": "eigenvector centrality (|rho|-weighted, max 1 per graph)",
        "clustering": "share of neighbour pairs that are neighbours themselves",
        "mean_rho": "mean signed correlation with the neighbours",
    }
    out = [Feature(f"grf_{n}", descriptions[n], pl.col(f"_g_{n}"), SOURCE, 0) for n in _NODE]
    for w in g.peer_return_windows:
        out.append(Feature(f"grf_peer_ret_{w}d", f"mean {w}-day return of the neighbours that day",
                           pl.col(f"_g_peer_ret_{w}d"), SOURCE, 0))
    for w in g.peer_return_windows:
        out.append(Feature(f"grf_peer_rel_ret_{w}d", f"stock's {w}-day return minus its neighbours' mean",
                           pl.col(f"_g_own_ret_{w}d") - pl.col(f"_g_peer_ret_{w}d"), SOURCE, 0))
    out.append(Feature("grf_valid", "1 when the stock took part in the latest graph", pl.col("_g_valid"),
                       SOURCE, 0))
    return out


def _node_features(adjacency: sp.csr_matrix, signed: sp.csr_matrix, iterations: int) -> dict[str, np.ndarray]:
    """Per-node statistics of one symmetric graph (all stocks; 0 for isolated ones)."""
    binary = adjacency.copy()
    binary.data[:] = 1.0
    degree = np.asarray(binary.sum(axis=1)).ravel()
    weighted = np.asarray(adjacency.sum(axis=1)).ravel()
    rho_sum = np.asarray(signed.sum(axis=1)).ravel()
    triangles2 = np.asarray((binary @ binary).multiply(binary).sum(axis=1)).ravel()
    pairs = degree * (degree - 1.0)
    centrality = np.ones(adjacency.shape[0]) * (degree > 0)
    for _ in range(iterations):  # power iteration on a sparse matrix: cheap, deterministic
        centrality = adjacency @ centrality
        top = centrality.max()
        if top <= 0:
            break
        centrality = centrality / top
    return {
        "degree": degree,
        "weighted_degree": weighted,
        "eigen_centrality": centrality,
        "clustering": np.divide(triangles2, pairs, out=np.zeros_like(pairs), where=pairs > 0),
        "mean_rho": np.divide(rho_sum, degree, out=np.full_like(degree, np.nan), where=degree > 0),
    }


def compute(panel: StockPanel, stock_graph: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    """grf_ features in (Date, Code) order, like the pipeline's output (float32).

    Raises:
        MissingSourceError: ``stock_graph`` is missing or lacks its columns.
        ValueError: the graph names codes that are not in the panel.
    """
    g = params.graph
    if stock_graph is not None and stock_graph.height == 0 and stock_graph.width == len(GRAPH_COLUMNS):
        edges = stock_graph  # a graph with no edges is legitimate (every stock isolated)
    else:
        edges = require_table(stock_graph, "stock_graph", GROUP, GRAPH_COLUMNS)
    n = panel.codes.len()
    days = graph_days(panel, g)
    edge_day = panel.trading_days.search_sorted(edges.get_column("Date")).to_numpy().astype(np.int64)
    unknown_days = np.setdiff1d(edge_day, days)
    if unknown_days.size:
        raise ValueError(
            f"stock_graph has graphs on {unknown_days.size} days that are not graph days of "
            "params:feature_engineering.graph for this panel; rebuild stock_graph with the same params")
    src = panel.codes.search_sorted(edges.get_column("SourceCode")).to_numpy().astype(np.int64)
    dst = panel.codes.search_sorted(edges.get_column("TargetCode")).to_numpy().astype(np.int64)
    known = (src < n) & (dst < n)
    known[known] &= (panel.codes.to_numpy()[src[known]] == edges.get_column("SourceCode").to_numpy()[known]) & (
        panel.codes.to_numpy()[dst[known]] == edges.get_column("TargetCode").to_numpy()[known])
    if not known.all():
        raise ValueError(f"stock_graph names {int((~known).sum())} edges with codes that are not in the panel")
    rho = edges.get_column("rho").to_numpy()

    returns, first = dense_panel(panel, panel.frame.get_column(RET1))
    present, _ = presence(panel)
    close = pl.col(CLOSE)
    own = {w: dense_panel(panel, panel.frame.select(close / lag(close, w) - 1.0).to_series())[0]
           for w in g.peer_return_windows}
    n_rows = returns.shape[0]
    node = {k: np.full((days.size, n), np.nan) for k in _NODE}
    valid = np.zeros((days.size, n))
    peer = {w: np.full((n_rows, n), np.nan) for w in g.peer_return_windows}
    order = np.argsort(edge_day, kind="stable")
    bounds = np.searchsorted(edge_day[order], days, side="left")
    ends = np.searchsorted(edge_day[order], days, side="right")
    for i, day in enumerate(days):  # loop over graph days only
        sel = order[bounds[i]:ends[i]]
        signed = sp.csr_matrix((rho[sel], (src[sel], dst[sel])), shape=(n, n))
        adjacency = abs(signed)
        members = eligible(returns, present, int(day) - first, g)
        stats = _node_features(adjacency, signed, g.centrality_iterations)
        for k in _NODE:
            node[k][i] = np.where(members, stats[k], np.nan)
        valid[i] = members
        binary = adjacency.copy()
        binary.data[:] = 1.0
        start = int(day) - first
        stop = int(days[i + 1]) - first if i + 1 < days.size else n_rows
        for w in g.peer_return_windows:
            block = own[w][start:stop].T  # [N, days]
            finite = np.isfinite(block)
            total = binary @ np.where(finite, block, 0.0)
            count = binary @ finite.astype(np.float64)
            mean = np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)
            peer[w][start:stop] = np.where(members[:, None], mean, np.nan).T

    d = panel.output_column(DAY).to_numpy().astype(np.int64)
    c = panel.output_column(CODE_IDX).to_numpy().astype(np.int64)
    graph_of_row = np.searchsorted(days, d, side="right") - 1
    has_graph = graph_of_row >= 0
    gi = np.where(has_graph, graph_of_row, 0)
    columns = {f"_g_{k}": np.where(has_graph, node[k][gi, c], np.nan) for k in _NODE}
    columns["_g_valid"] = np.where(has_graph, valid[gi, c], 0.0)
    for w in g.peer_return_windows:
        columns[f"_g_peer_ret_{w}d"] = peer[w][d - first, c]
        columns[f"_g_own_ret_{w}d"] = own[w][d - first, c]
    frame = pl.DataFrame([pl.Series(k, v.astype(np.float32), nan_to_null=True) for k, v in columns.items()])
    return select_features(frame.lazy(), features(params))
