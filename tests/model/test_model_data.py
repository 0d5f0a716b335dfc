"""Device tensors, packed graphs and day batches."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import torch

from atft_kedro.graph_packing import pack_graph
from atft_kedro.model.data import day_batch, device_tensors

CODES = np.array(["1301", "1332", "1333", "1605"])
DATES = np.array(["2024-01-04", "2024-01-05", "2024-01-09", "2024-01-10", "2024-01-11"], dtype="datetime64[D]")


def _graph() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "Date": [dt.date(2024, 1, 5), dt.date(2024, 1, 5), dt.date(2024, 1, 10), dt.date(2024, 1, 10)],
            "SourceCode": ["1301", "1332", "1333", "9999"],
            "TargetCode": ["1332", "1301", "1605", "1301"],
            "rho": [0.5, 0.5, -0.4, 0.9],
            "same_sector": [1.0, 1.0, 0.0, 0.0],
            "same_market": [1.0, 1.0, 1.0, 0.0],
        }
    )


def test_pack_graph_uses_latest_graph_on_or_before_each_day():
    graph = pack_graph(_graph(), DATES, CODES)
    assert graph.day_graph.tolist() == [-1, 0, 0, 1, 1]
    assert graph.graph_ptr.tolist() == [0, 2, 3]  # the edge with unknown code 9999 is dropped
    assert graph.edge_index[:, 2].tolist() == [2, 3]
    assert graph.edge_attr[2].tolist() == pytest.approx([-0.4, 0.0, 1.0])


def test_pack_graph_names_a_wrong_column():
    with pytest.raises(ValueError, match="stock_graph.*SourceCode"):
        pack_graph(_graph().rename({"SourceCode": "sourcecode"}), DATES, CODES)
    with pytest.raises(ValueError, match="stock_graph.*non-finite"):
        pack_graph(_graph().with_columns(pl.lit(float("nan")).alias("rho")), DATES, CODES)


def test_day_batch_cuts_windows_and_offsets_graphs(dataset):
    mi = dataset.model_input
    tensors = device_tensors(mi, torch.device("cpu"))
    graph = pack_graph(_graph(), DATES, CODES)
    window = 4
    batch = day_batch(tensors, [1, 40], window)
    n = mi.n_stocks
    assert batch.x.shape == (2 * n, window, mi.n_features)
    # day 40, stock 5 = features[37..40, 5]
    np.testing.assert_array_equal(batch.x[n + 5].numpy(), mi.features[37:41, 5])
    # day 1: two steps before the first day are zeros and masked
    assert torch.all(batch.x[:n, :2] == 0) and not batch.time_mask[:n, :2].any()
    np.testing.assert_array_equal(batch.x[3, 2:].numpy(), mi.features[0:2, 3])
    assert batch.targets.shape == (2, n, 2)
    assert torch.equal(batch.day_mask, torch.as_tensor(mi.mask[[1, 40]]))
    # graph offsets: days 3 and 1 of the small 4-code universe
    codes_tensors = device_tensors(
        type(mi)(
            features=np.zeros((5, 4, 2), np.float32), mask=np.ones((5, 4), bool),
            targets=np.zeros((5, 4, 1), np.float32), dates=DATES, codes=CODES, horizons=np.array([1]),
            feature_names=("a", "b"), manifest_hash="h",
        ),
        torch.device("cpu"),
    )
    gb = day_batch(codes_tensors, [3, 1, 0], 2, graph)
    pairs = sorted(map(tuple, gb.edge_index.T.tolist()))
    assert pairs == [(2, 3), (4, 5), (5, 4)]  # day 3: graph 1 (1 edge); day 1: graph 0 (+4); day 0: none
    assert gb.edge_attr.shape == (3, 3)
    assert tensors.features.dtype == torch.float32
