"""The registry of feature groups is the one place a group is declared.

A dummy group registered in ``features.registry`` alone (plus its switch in the params)
reaches the manifest, the pipeline's nodes, the built features and docs/features.md.
"""

from __future__ import annotations

import inspect
import pickle
from typing import get_type_hints

import polars as pl
import pytest
from fe_helpers import build_all
from pydantic import ValidationError

from atft_kedro.features import evt, registry
from atft_kedro.features.base import Feature, require_table, select_features
from atft_kedro.features.docs import write_features_doc
from atft_kedro.features.manifest import build_feature_manifest
from atft_kedro.features.panel import CLOSE, StockPanel, build_stock_panel
from atft_kedro.features.params import FeatureParams
from atft_kedro.features.registry import DATA_GROUPS, FeatureGroup, group_order
from atft_kedro.pipelines.feature_engineering import create_pipeline, nodes

DUMMY = "dummy"


def _dummy_features(params: FeatureParams) -> list[Feature]:
    return [
        Feature("dmy_log_close", "log of the adjusted close", pl.col(CLOSE).log(), "daily_quotes", 0),
        Feature("dmy_close_over_topix", "adjusted close over the TOPIX close",
                pl.col(CLOSE) / pl.col("_topix"), "daily_quotes+topix", 0),
    ]


def _dummy_compute(panel: StockPanel, topix: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    topix = require_table(topix, "topix", DUMMY, ("Date", "Close"))
    frame = panel.frame.lazy().join(topix.lazy().select("Date", pl.col("Close").alias("_topix")), on="Date",
                                    how="left", maintain_order="left")
    return select_features(frame, _dummy_features(params))


DUMMY_GROUP = FeatureGroup(DUMMY, "Dummy (`dmy_`)", "a test group: close and close over TOPIX", ("topix",),
                           _dummy_features, _dummy_compute, "panel")


def _with_switches(params: FeatureParams, on: set[str]) -> FeatureParams:
    data = params.model_dump()
    data["groups"] = {g: g in on for g in group_order()}
    return FeatureParams(**data)


@pytest.fixture
def dummy_registered(monkeypatch: pytest.MonkeyPatch) -> FeatureGroup:
    """The registry with the dummy group added after the last data group (undone after the test)."""
    monkeypatch.setitem(DATA_GROUPS, DUMMY, DUMMY_GROUP)
    return DUMMY_GROUP


@pytest.fixture
def dummy_params(dummy_registered: FeatureGroup, feature_params: FeatureParams) -> FeatureParams:
    """Base params plus ``groups.dummy: true`` (every other group on as in conf)."""
    data = feature_params.model_dump()
    data["groups"] = {**data["groups"], DUMMY: True}
    return FeatureParams(**data)


def test_a_registered_group_reaches_the_manifest(dummy_params: FeatureParams) -> None:
    manifest = build_feature_manifest(dummy_params)
    assert [g.name for g in manifest.groups] == [
        "px", "tech", "mkt", "beta_alpha", "sector", "flow", "margin", "margin_alert", "short", "short_positions",
        "stmt", "evt", "grf", DUMMY, "interactions", "cross_sectional"]
    status = {g.name: g for g in manifest.groups}[DUMMY]
    assert status.enabled and status.n_features == 2
    mine = [f for f in manifest.features if f.group == DUMMY]
    assert [(f.name, f.source, f.lag_days) for f in mine] == [
        ("dmy_log_close", "daily_quotes", 0), ("dmy_close_over_topix", "daily_quotes+topix", 0)]
    grf_last = max(i for i, f in enumerate(manifest.features) if f.group == "grf")
    assert manifest.names.index("dmy_log_close") == grf_last + 1  # after the data groups, before interactions


def test_a_registered_group_reaches_the_pipeline(dummy_registered: FeatureGroup) -> None:
    pipeline = create_pipeline()
    by_name = {n.name: n for n in pipeline.nodes}
    node = by_name["compute_dummy_features"]
    assert node.func.__name__ == "compute_dummy_features"
    assert node.inputs == ["fe_stock_panel", "topix", "params:feature_engineering"]
    assert node.outputs == ["fe_dummy_features"]
    assemble = by_name["assemble_features"]
    assert assemble.inputs[:3] == ["fe_feature_keys", "feature_manifest", "params:feature_engineering"]
    assert assemble.inputs[3:] == [g.dataset for g in DATA_GROUPS.values()]
    assert assemble.inputs[-1] == "fe_dummy_features"


def test_a_registered_group_reaches_the_features_in_output_order(
    dummy_registered: FeatureGroup, tables, feature_params: FeatureParams, horizons: list[int]
) -> None:
    """Built through the nodes with only the dummy group on: its columns are the panel's values, by (Date, Code)."""
    params = _with_switches(feature_params, {DUMMY})
    built = build_all(tables, params, horizons)
    assert built.features.columns == ["Date", "Code", "dmy_log_close", "dmy_close_over_topix"]
    panel = build_stock_panel(tables["daily_quotes"], tables["listed_info"], tables["trading_calendar"])
    expected = (
        panel.frame.select("Date", "Code", CLOSE)
        .join(tables["topix"].select("Date", pl.col("Close").alias("_topix")), on="Date", how="left")
        .sort("Date", "Code")
        .select("Date", "Code", pl.col(CLOSE).log().cast(pl.Float32).alias("dmy_log_close"),
                (pl.col(CLOSE) / pl.col("_topix")).cast(pl.Float32).alias("dmy_close_over_topix"))
    )
    assert built.features.get_column("dmy_close_over_topix").n_unique() > 100  # not constant, not null
    assert built.features.equals(expected)


def test_a_registered_group_reaches_the_docs(dummy_params: FeatureParams) -> None:
    text = write_features_doc(build_feature_manifest(dummy_params))
    assert "| dummy | a test group: close and close over TOPIX | stock panel, `topix` | yes | 2 |  |" in text
    assert "\n## Dummy (`dmy_`)\n" in text
    assert "| `dmy_close_over_topix` | daily_quotes+topix | 0 | adjusted close over the TOPIX close |" in text


def test_a_registered_group_needs_its_switch(dummy_registered: FeatureGroup, feature_params: FeatureParams) -> None:
    data = feature_params.model_dump()
    with pytest.raises(ValidationError, match=r"missing \['dummy'\], unknown \[\]"):
        FeatureParams(**data)
    data["groups"] = {**data["groups"], "dumy": True}
    with pytest.raises(ValidationError, match=r"missing \['dummy'\], unknown \['dumy'\]"):
        FeatureParams(**data)


def test_a_misspelt_or_missing_switch_is_an_error(feature_params: FeatureParams) -> None:
    data = feature_params.model_dump()
    groups = dict(data["groups"])
    groups["tehc"] = groups.pop("tech")
    with pytest.raises(ValidationError, match=r"missing \['tech'\], unknown \['tehc'\]"):
        FeatureParams(**{**data, "groups": groups})
    groups.pop("tehc")
    with pytest.raises(ValidationError, match=r"missing \['tech'\], unknown \[\]"):
        FeatureParams(**{**data, "groups": groups})
    with pytest.raises(ValidationError, match="bool"):
        FeatureParams(**{**data, "groups": {**data["groups"], "tech": "sometimes"}})


def test_every_node_is_named_after_its_function() -> None:
    offenders = [(n.name, n.func.__name__) for n in create_pipeline().nodes if n.name != n.func.__name__]
    assert offenders == []


def test_a_group_node_names_its_sources_and_carries_the_param_types() -> None:
    func = nodes.group_node(DATA_GROUPS["evt"])
    assert list(inspect.signature(func).parameters) == ["panel", "earnings_calendar", "statements", "params"]
    hints = get_type_hints(func)
    assert hints["params"] is FeatureParams and hints["panel"] is StockPanel
    assert func.__name__ == "compute_evt_features" and "earnings" in func.__doc__
    with pytest.raises(TypeError, match="missing a required argument: 'params'"):
        func(None, None, None)


def test_a_group_node_pickles_by_name_and_shows_its_compute_code() -> None:
    """One function per group, found as ``nodes.compute_<group>_features`` (pickle, ParallelRunner, kedro-viz)."""
    node = {n.name: n for n in create_pipeline().nodes}["compute_evt_features"]
    assert pickle.loads(pickle.dumps(node.func)) is node.func
    assert nodes.compute_evt_features is node.func
    assert inspect.unwrap(node.func) is evt.compute  # the code kedro-viz shows for the node
    with pytest.raises(AttributeError, match="compute_nope_features"):
        nodes.compute_nope_features  # noqa: B018


def test_registry_entries_match_their_modules_and_the_catalog() -> None:
    pipeline_inputs = create_pipeline().inputs()
    for name, group in DATA_GROUPS.items():
        module = inspect.getmodule(group.compute)
        assert module.GROUP == name == group.name
        assert inspect.getmodule(group.features) is module
        assert set(group.sources) <= pipeline_inputs | {"stock_graph"}, name
    assert group_order()[-2:] == tuple(registry.DERIVED_GROUPS)


@pytest.mark.parametrize(("change", "message"), [
    ({"name": "my-group"}, "not Python identifiers"),
    ({"sources": ("topix", "topix")}, "repeat a name"),
    ({"sources": ("params",)}, "repeat a name or use"),
    ({"row_order": "sorted"}, "row_order must be"),
])
def test_a_malformed_entry_is_refused(change: dict, message: str) -> None:
    fields = {"name": DUMMY, "title": "t", "description": "d", "sources": (), "features": _dummy_features,
              "compute": _dummy_compute, "row_order": "panel"} | change
    with pytest.raises(ValueError, match=message):
        FeatureGroup(**fields)
