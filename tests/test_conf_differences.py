"""Configuration carries only differences: an environment's parameter files change base, never repeat it.

Parameters merge key by key (Kedro's ``soft`` strategy, ``atft_kedro.config.MERGE_STRATEGY``), so
``conf/<env>/parameters_*.yml`` need hold only what the environment changes. A value written
there that resolves to what the environment gets without that file is a repetition of base: it
hides which values an environment really changes and goes stale when base changes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from atft_kedro.config import MERGE_STRATEGY, ProjectConfigLoader
from atft_kedro.settings import CONFIG_LOADER_ARGS
from kedro_project import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"
#: Environments with parameter files of their own (conf/local is personal and git-ignored).
ENVIRONMENTS = sorted(p.name for p in CONF.iterdir()
                      if p.is_dir() and p.name not in ("base", "local") and any(p.glob("parameters*.yml")))
#: Values shared by several blocks: written once, in conf/base/globals.yml, and referenced elsewhere.
SHARED = ("horizons", "primary_horizon", "horizon_weights")


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted path, value)`` of every leaf; a list or an empty mapping is one leaf."""
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in _leaves(item, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), value)]


def _at(params: dict[str, Any], path: str) -> Any:
    node: Any = params
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return "<absent>"
        node = node[part]
    return node


def _parameters(conf: Path, env: str) -> dict[str, Any]:
    loader = ProjectConfigLoader(conf_source=str(conf), base_env="base", default_run_env="local", env=env)
    return dict(loader["parameters"])


def repeated_values(conf: Path, env: str, scratch: Path) -> list[str]:
    """``file: key = value`` for each value of ``conf/<env>/parameters*.yml`` that base already gives ``env``.

    Compares, leaf by leaf, the environment's resolved parameters with those it gets when its own
    parameter files are removed (its globals kept, so a path under its data root counts as its own).
    """
    without = scratch / f"conf_without_{env}_parameters"
    shutil.copytree(conf, without)
    for path in (without / env).glob("parameters*.yml"):
        path.unlink()
    full, base_only = _parameters(conf, env), _parameters(without, env)
    repeated = []
    for path in sorted((conf / env).glob("parameters*.yml")):
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        for key, _ in _leaves(raw):
            value = _at(full, key)
            if value == _at(base_only, key):
                repeated.append(f"conf/{env}/{path.name}: {key} = {value!r}")
    return repeated


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_files_hold_only_what_they_change(env: str, tmp_path: Path) -> None:
    repeated = repeated_values(CONF, env, tmp_path)
    assert repeated == [], ("these values repeat what conf/base already gives the environment; "
                            "delete them (parameters merge key by key):\n" + "\n".join(repeated))


def test_a_repeated_base_value_is_found(tmp_path: Path) -> None:
    """The check itself: a base value copied into an environment file is reported, a changed one is not."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf, ignore=shutil.ignore_patterns("local"))
    seed = _parameters(CONF, "base")["simulator"]["seed"]
    extra = conf / "test" / "parameters_zz_extra.yml"
    extra.write_text(f"simulator:\n  seed: {seed}\n  universe: {{listing_rate_per_year: 0.0456}}\n")
    found = repeated_values(conf, "test", tmp_path / "scratch")
    assert found == [f"conf/test/parameters_zz_extra.yml: simulator.seed = {seed!r}"]


def test_shared_values_are_written_once_in_globals() -> None:
    globals_ = OmegaConf.to_container(OmegaConf.load(CONF / "base" / "globals.yml"), resolve=False)
    assert set(SHARED) <= set(globals_)
    literal = []
    for path in sorted(CONF.glob("*/parameters*.yml")):
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        for key, value in _leaves(raw):
            name = key.split(".")[-1]
            if name in SHARED and value != f"${{globals:{name}}}":
                literal.append(f"{path.relative_to(CONF)}: {key} = {value!r}")
    assert literal == [], "write these as ${globals:<name>} (conf/base/globals.yml):\n" + "\n".join(literal)


def test_every_consumer_gets_the_shared_values() -> None:
    for env in ["base", *ENVIRONMENTS]:
        params = _parameters(CONF, env)
        shared = OmegaConf.to_container(OmegaConf.load(CONF / "base" / "globals.yml"))
        assert params["horizons"] == params["evaluation"]["horizons"] == shared["horizons"]
        assert params["training"]["primary_horizon"] == params["evaluation"]["primary_horizon"] \
            == shared["primary_horizon"]
        weights = params["loss"]["horizon_weights"]
        assert weights == shared["horizon_weights"]
        assert sorted(weights) == sorted(params["horizons"]) and all(isinstance(h, int) for h in weights)


def test_kedro_uses_the_soft_merge() -> None:
    assert CONFIG_LOADER_ARGS["merge_strategy"] == MERGE_STRATEGY == {"parameters": "soft"}
    assert ProjectConfigLoader(conf_source=str(CONF), env="test").merge_strategy == MERGE_STRATEGY
    # The test environment changes n_stocks and the dates of simulator and keeps the rest of base.
    test, base = _parameters(CONF, "test"), _parameters(CONF, "base")
    assert test["simulator"]["n_stocks"] != base["simulator"]["n_stocks"]
    assert {k: v for k, v in test["simulator"].items() if k not in ("n_stocks", "start_date", "end_date")} \
        == {k: v for k, v in base["simulator"].items() if k not in ("n_stocks", "start_date", "end_date")}


def test_raw_tables_come_from_one_factory_with_their_schemas() -> None:
    """``raw_{table}`` gives every raw table of ingestion its file under 01_raw and its raw schema."""
    from kedro.io import DataCatalog
    from kedro.utils import load_obj

    import atft_kedro.schemas.raw as raw_schemas
    from atft_kedro.pipelines.ingestion import create_pipeline

    loader = ProjectConfigLoader(conf_source=str(CONF), base_env="base", default_run_env="local", env="test")
    catalog_conf = {k: v for k, v in loader["catalog"].items()
                    if not k.startswith("_")}
    assert [name for name in catalog_conf if name.startswith("raw_")] == ["raw_{table}"]
    resolver = DataCatalog.from_config(catalog_conf, credentials={"jquants": {"api_key": "x"}}).config_resolver
    tables = sorted(name.removeprefix("raw_") for name in create_pipeline().datasets() if name.startswith("raw_"))
    assert len(tables) == 11, tables
    for table in tables:
        entry = resolver.resolve_pattern(f"raw_{table}")
        assert entry["filepath"] == f"data/test/01_raw/raw_{table}.parquet"
        assert load_obj(entry["validator"]) is getattr(raw_schemas, table.upper())
        assert entry["metadata"] == {"kedro-viz": {"layer": "raw"}}
    with pytest.raises(AttributeError, match="no raw table schema NOT_A_TABLE"):
        load_obj("atft_kedro.schemas.raw.not_a_table")
