"""The whole feature pipeline under Kedro: in-memory catalog, typed params, SequentialRunner."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro.validation.parameter_validator import ParameterValidator

from atft_kedro.features.assembly import FeatureTable
from atft_kedro.features.graph import GRAPH_COLUMNS
from atft_kedro.features.params import FeatureParams
from atft_kedro.pipelines.feature_engineering import create_pipeline
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.tables import TABLES

OUTPUTS = ("features", "targets", "feature_manifest", "stock_graph")


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so the test can read it after the run."""

    def _release(self) -> None:
        return None


@pytest.fixture(scope="module")
def run_outputs(tables, base_parameters) -> dict:
    pipeline = create_pipeline()
    params = ParameterValidator({"fe": pipeline}).validate_raw_params(
        {"feature_engineering": base_parameters["feature_engineering"], "horizons": base_parameters["horizons"],
         "labels": base_parameters["labels"]})
    datasets = {name: MemoryDataset(frame) for name, frame in tables.items()}
    datasets["params:feature_engineering"] = MemoryDataset(params["feature_engineering"], copy_mode="assign")
    datasets["params:horizons"] = MemoryDataset(params["horizons"])
    datasets["params:labels"] = MemoryDataset(params["labels"], copy_mode="assign")
    datasets |= {name: KeptDataset() for name in OUTPUTS}
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(pipeline, catalog)
    outputs = {name: catalog.load(name) for name in OUTPUTS}
    # the group frames side by side plus the derived columns, never one wide copy
    assert isinstance(outputs["features"], FeatureTable)
    return outputs | {"features": outputs["features"].collect(), "params": params}


def test_kedro_validates_the_typed_params(run_outputs: dict) -> None:
    assert isinstance(run_outputs["params"]["feature_engineering"], FeatureParams)


def test_pipeline_reads_canonical_tables_and_params_and_writes_four_datasets() -> None:
    pipeline = create_pipeline()
    canonical = {t.canonical_name for t in TABLES}
    assert pipeline.inputs() == canonical | {"params:feature_engineering", "params:horizons", "params:labels"}
    assert set(OUTPUTS) <= pipeline.all_outputs()
    assert {n for n in pipeline.all_outputs() if not n.startswith("fe_")} == set(OUTPUTS)
    assert "oracle_expected_returns" not in pipeline.inputs()


def test_pipeline_outputs_follow_the_contracts(run_outputs: dict, horizons: list[int]) -> None:
    manifest = run_outputs["feature_manifest"]
    assert isinstance(manifest, FeatureManifest)
    features, targets, graph = run_outputs["features"], run_outputs["targets"], run_outputs["stock_graph"]
    assert features.columns == ["Date", "Code", *manifest.names]
    assert features.schema["Date"] == pl.Date and features.schema["Code"] == pl.String
    assert targets.columns == ["Date", "Code", *[f"target_ret_{h}d" for h in horizons]]
    assert targets.select("Date", "Code").equals(features.select("Date", "Code"))
    assert tuple(graph.columns) == GRAPH_COLUMNS
    assert graph.schema.dtypes() == [pl.Date, pl.String, pl.String, pl.Float64, pl.Float64, pl.Float64]


def test_stock_graph_is_symmetric_top_k_above_threshold(run_outputs: dict, feature_params: FeatureParams) -> None:
    g, params = run_outputs["stock_graph"], feature_params.graph
    assert (g.get_column("rho").abs() >= params.abs_rho_threshold).all()
    reverse = g.select("Date", pl.col("TargetCode").alias("SourceCode"), pl.col("SourceCode").alias("TargetCode"),
                       "rho")
    assert g.select("Date", "SourceCode", "TargetCode", "rho").sort(pl.all()).equals(reverse.sort(pl.all()))
    assert (g.get_column("SourceCode") != g.get_column("TargetCode")).all()
    assert g.group_by("Date", "SourceCode").len().get_column("len").max() <= 2 * params.top_k
    days = g.get_column("Date").unique().sort()
    assert days.len() >= 3


def test_stock_graph_rho_is_the_pearson_correlation_of_trailing_returns(run_outputs, tables,
                                                                      feature_params) -> None:
    g, params = run_outputs["stock_graph"], feature_params.graph
    day = g.get_column("Date").unique().sort()[1]
    edges = g.filter(pl.col("Date") == day)
    quotes = tables["daily_quotes"].sort("Code", "Date").with_columns(
        (pl.col("AdjustmentClose").forward_fill().over("Code").pct_change().over("Code")).alias("r"))
    days = quotes.get_column("Date").unique().sort()
    window = days.filter(days <= day).tail(params.window)
    wide = quotes.filter(pl.col("Date").is_in(window.implode())).pivot(on="Code", index="Date", values="r")
    complete = [c for c in wide.columns[1:] if wide.get_column(c).null_count() == 0]
    sample = edges.filter(pl.col("SourceCode").is_in(complete) & pl.col("TargetCode").is_in(complete)).head(20)
    assert sample.height > 0
    for src, dst, rho in sample.select("SourceCode", "TargetCode", "rho").iter_rows():  # 20 edges
        want = np.corrcoef(wide.get_column(src).to_numpy(), wide.get_column(dst).to_numpy())[0, 1]
        assert rho == pytest.approx(want, abs=1e-5)
    # each stock's strongest partner (above the threshold) is among its edges
    r = wide.select(complete).to_numpy()
    corr = np.corrcoef(r.T)
    np.fill_diagonal(corr, 0.0)
    best = np.abs(corr).argmax(axis=1)
    for i, j in enumerate(best):
        if abs(corr[i, j]) >= params.abs_rho_threshold + 1e-4:
            assert edges.filter((pl.col("SourceCode") == complete[i]) & (pl.col("TargetCode") == complete[j])).height == 1
