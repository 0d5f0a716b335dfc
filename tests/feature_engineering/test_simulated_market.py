"""The feature pipeline on the project's market simulator (test environment), when it is present."""

from __future__ import annotations

import polars as pl
import pytest
from fe_helpers import build_all
from kedro_project import load_conf

from atft_kedro.features.params import FeatureParams
from atft_kedro.labels import LabelParams
from atft_kedro.schemas.tables import TABLES_BY_RAW_NAME

simulator = pytest.importorskip("atft_kedro.market.simulator")
market_params = pytest.importorskip("atft_kedro.market.params")


def test_features_on_the_simulated_test_market() -> None:
    conf = load_conf("test")["parameters"]
    raw = simulator.simulate_market(market_params.SimulatorParams(**conf["simulator"]), list(conf["horizons"]),
                                   LabelParams(**conf["labels"]))
    tables = {TABLES_BY_RAW_NAME[k].canonical_name: TABLES_BY_RAW_NAME[k].to_canonical(v)
              for k, v in raw.items() if k in TABLES_BY_RAW_NAME}
    out = build_all(tables, FeatureParams(**conf["feature_engineering"]), list(conf["horizons"]))
    manifest = out.manifest
    assert out.features.columns[2:] == manifest.names
    assert out.features.height == tables["daily_quotes"].height
    nulls = out.features.null_count().row(0)
    assert [c for c, n in zip(out.features.columns, nulls, strict=True) if n == out.features.height] == []
    validity = out.features.select(pl.col(n).mean() for n in manifest.names if n.endswith("_valid")).row(0)
    assert min(validity) > 0.0
    assert out.graph.height > 0
