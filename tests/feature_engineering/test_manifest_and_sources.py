"""The manifest is the one definition of the features; groups switch off loudly, never silently."""

from __future__ import annotations

import logging

import polars as pl
import pytest
from fe_helpers import Built, build_all
from pydantic import ValidationError

from atft_kedro.features.base import MissingSourceError
from atft_kedro.features.manifest import build_feature_manifest
from atft_kedro.features.params import FeatureParams
from atft_kedro.features.registry import DATA_GROUPS, group_order
from atft_kedro.pipelines.feature_engineering import nodes
from atft_kedro.schemas.manifest import FORBIDDEN_INPUT_PREFIXES

PREFIXES = {
    "px": ("px_",), "tech": ("tech_",), "mkt": ("mkt_",), "beta_alpha": ("beta_", "alpha_"), "sector": ("sec_",),
    "flow": ("flow_",), "margin": ("mrg_",), "margin_alert": ("dmi_",), "short": ("ss_sec_", "ss_valid"),
    "short_positions": ("ss_pos_",), "stmt": ("stmt_",), "evt": ("evt_",),
    "grf": ("grf_",), "interactions": ("int_",),
}


def _with(params: FeatureParams, **changes) -> FeatureParams:
    data = params.model_dump()
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return FeatureParams(**data)


def test_manifest_lists_every_group_with_at_least_250_float32_features(built: Built) -> None:
    manifest = built.manifest
    assert len(manifest) >= 250
    assert [g.name for g in manifest.groups] == list(group_order())
    assert all(g.enabled and g.n_features > 0 for g in manifest.groups)
    for spec in manifest.features:
        if spec.group == "cross_sectional":
            assert spec.name.endswith("_csz")
        else:
            assert spec.name.startswith(PREFIXES[spec.group]), spec.name
    assert sum(g.n_features for g in manifest.groups) == len(manifest)


def test_manifest_has_no_target_or_oracle_column(built: Built) -> None:
    names = built.manifest.names
    assert not [n for n in names if n.startswith(FORBIDDEN_INPUT_PREFIXES) or "target" in n or "exp_ret" in n]


def test_features_are_exactly_the_manifest_in_order(built: Built) -> None:
    manifest = built.manifest
    assert built.features.columns == ["Date", "Code", *manifest.names]
    assert built.features.width - 2 == len(manifest)
    assert all(t == pl.Float32 for t in built.features.schema.dtypes()[2:])
    assert built.features.select("Date", "Code").is_duplicated().sum() == 0
    assert built.features.select("Date", "Code").equals(built.features.select("Date", "Code").sort("Date", "Code"))


def test_every_group_carries_information(built: Built) -> None:
    """No group comes out all-null (a silently failed source would)."""
    manifest = built.manifest
    tail = built.features.tail(built.features.height // 3)
    for group in group_order():
        names = [f.name for f in manifest.features if f.group == group]
        non_null = tail.select(pl.sum_horizontal(pl.col(n).is_not_null() for n in names).sum()).item()
        assert non_null > 0, group
    validity = [n for n in manifest.names if n.endswith("_valid")]
    assert {"flow_valid", "mrg_valid", "dmi_valid", "ss_valid", "stmt_valid", "evt_valid", "grf_valid"} <= set(validity)
    for name in validity:
        assert set(built.features.get_column(name).drop_nulls().unique().to_list()) <= {0.0, 1.0}


def test_params_forbid_unknown_keys_and_have_no_defaults(feature_params: FeatureParams) -> None:
    data = feature_params.model_dump()
    with pytest.raises(ValidationError, match="extra"):
        FeatureParams(**{**data, "windw": 3})
    missing = dict(data["graph"])
    missing.pop("top_k")
    with pytest.raises(ValidationError, match="top_k"):
        FeatureParams(**{**data, "graph": missing})
    with pytest.raises(ValidationError, match="macd_fast"):
        _with(feature_params, tech__macd_fast=40)


def test_unknown_name_in_cross_sectional_list_is_an_error(feature_params: FeatureParams) -> None:
    params = _with(feature_params, cross_sectional__features=["px_ret_1d", "px_ret_7000d"])
    with pytest.raises(ValueError, match="px_ret_7000d"):
        build_feature_manifest(params)


def test_group_turned_off_is_listed_off_with_the_reason(tables, feature_params, horizons) -> None:
    params = _with(feature_params, groups__flow=False, groups__grf=False)
    out = build_all({**tables, "investor_types": None}, params, horizons)
    manifest = out.manifest
    status = {g.name: g for g in manifest.groups}
    assert not status["flow"].enabled and status["flow"].n_features == 0
    assert "groups.flow" in status["flow"].reason
    assert not any(n.startswith(("flow_", "grf_")) for n in out.features.columns)
    # the interaction and z-scores built on grf_ features are left out, and the manifest says so
    assert "int_peer_minus_own_1d" in status["interactions"].reason
    assert "grf_peer_ret_1d" in status["cross_sectional"].reason
    assert out.features.columns[2:] == manifest.names


@pytest.mark.parametrize("empty", [True, False])
def test_missing_or_empty_required_table_stops_the_run_naming_table_and_switch(
    tables, feature_params, horizons, empty: bool
) -> None:
    broken = {**tables, "topix": tables["topix"].clear() if empty else None}
    with pytest.raises(MissingSourceError, match="topix") as error:
        build_all(broken, feature_params, horizons)
    assert "params:feature_engineering.groups." in str(error.value)
    assert ("empty" if empty else "missing") in str(error.value)


OPTIONAL = ["investor_types", "weekly_margin_interest", "daily_margin_interest", "short_selling", "short_positions",
            "statements", "earnings_calendar"]


@pytest.mark.parametrize("table", OPTIONAL)
@pytest.mark.parametrize("empty", [True, False])
def test_missing_or_empty_optional_table_costs_only_the_features_read_from_it(
    tables, feature_params, horizons, built: Built, table: str, empty: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        out = build_all({**tables, table: tables[table].clear() if empty else None}, feature_params, horizons)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and f"'{table}'" in r.getMessage()]
    assert len(warnings) == 1 and ("empty" if empty else "missing") in warnings[0]
    manifest = out.manifest
    assert out.features.columns == built.features.columns  # same manifest, same columns
    affected = [f.name for f in manifest.features if table in f.source.split("+")]
    assert affected
    for name in affected:  # no information left: null, or a 0 flag
        column = out.features.get_column(name)
        assert (column.is_null() | (column == 0.0)).all(), name
        before = built.features.get_column(name)
        assert not (before.is_null() | (before == 0.0)).all(), name  # there was information before
    flags = [n for n in affected if n.endswith("_valid")]
    assert flags and all((out.features.get_column(n) == 0.0).all() for n in flags)
    others = [n for n in manifest.names if n not in affected]
    assert out.features.select(others).equals(built.features.select(others))


def test_a_table_without_a_column_its_group_reads_is_an_error(tables, feature_params, horizons) -> None:
    broken = {**tables, "daily_margin_interest": tables["daily_margin_interest"].drop("ShortLongRatio")}
    with pytest.raises(MissingSourceError, match="ShortLongRatio") as error:
        build_all(broken, feature_params, horizons)
    assert "daily_margin_interest" in str(error.value) and "groups.margin_alert" in str(error.value)


def test_group_that_produces_other_columns_than_its_manifest_stops_the_run(built: Built, feature_params) -> None:
    keys = built.features.select("Date", "Code", pl.lit(0, pl.Int32).alias("_d"))
    frames = [pl.DataFrame()] * len(DATA_GROUPS)
    with pytest.raises(nodes.FeatureSetMismatchError, match="px"):
        nodes.assemble_features(keys, built.manifest, feature_params, *frames)


def test_manifest_from_other_params_is_refused(built: Built, feature_params) -> None:
    other = _with(feature_params, px__return_windows=[1, 5, 20, 60, 120])
    keys = built.features.select("Date", "Code", pl.lit(0, pl.Int32).alias("_d"))
    with pytest.raises(ValueError, match="differs"):
        nodes.assemble_features(keys, built.manifest, other, *[pl.DataFrame()] * len(DATA_GROUPS))
