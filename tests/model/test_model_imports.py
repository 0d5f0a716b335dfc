"""The model package travels: it imports, trains a step and forecasts with torch, torch-geometric,
numpy and pydantic only (no Polars, pandas, Kedro or pandera), as on a bare CUDA machine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

BLOCKED = ("polars", "pandas", "kedro", "pandera", "pyarrow", "sklearn", "lightgbm", "matplotlib")

SCRIPT = textwrap.dedent(
    f"""
    import sys

    for name in {BLOCKED!r}:
        sys.modules[name] = None  # "import polars" now fails; find_spec("polars") says "not installed"
    import numpy as np
    import torch
    import atft_kedro.model as model_package
    from atft_kedro.model.data import GraphTensors, day_batch, device_tensors
    from atft_kedro.model.checkpoint import forecast_days
    from atft_kedro.schemas.model_input import ModelInput

    torch.set_num_threads(1)
    params = model_package.ModelParams(
        hidden_size=8, lstm_layers=1, attention_heads=2, dropout=0.0, window_days=4,
        fan={{"enabled": True, "top_k": 1}}, gat={{"enabled": True, "layers": 1, "heads": 2, "gate_init": 0.0}},
        quantiles=(0.1, 0.5, 0.9),
    )
    mi = ModelInput(
        features=np.random.default_rng(0).standard_normal((6, 5, 3)).astype(np.float32),
        mask=np.ones((6, 5), bool), targets=np.zeros((6, 5, 1), np.float32),
        dates=np.arange(6).astype("datetime64[D]"), codes=np.array(list("abcde")), horizons=np.array([1]),
        feature_names=("a", "b", "c"), manifest_hash="h",
    )
    graph = GraphTensors(
        edge_index=torch.tensor([[0, 1], [1, 0]]), edge_attr=torch.ones(2, 3),
        graph_ptr=torch.tensor([0, 2]), day_graph=torch.zeros(6, dtype=torch.long),
    )
    model = model_package.ATFTGATFAN(params, n_features=3, n_horizons=1)
    batch = day_batch(device_tensors(mi, torch.device("cpu")), [3, 5], 4, graph)
    model(batch.x, batch.stock_mask, batch.edge_index, batch.edge_attr, batch.time_mask).sum().backward()
    q = forecast_days(model, mi, graph, np.array([4, 5]), days_per_batch=1)
    assert np.isfinite(q).all()
    loaded = sorted(m for m, mod in sys.modules.items() if m.split(".")[0] in {BLOCKED!r} and mod is not None)
    print("OK", loaded)
    """
)


def test_model_package_runs_without_polars_pandas_or_kedro():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK []")
