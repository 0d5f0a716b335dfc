"""Credentials in conf/local reach every environment, including --env jquants."""

from __future__ import annotations

import shutil
from pathlib import Path

from kedro_project import PROJECT_ROOT

from atft_kedro.config import ProjectConfigLoader


def _conf(tmp_path: Path, local_key: str | None) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    if local_key is not None:
        (conf / "local" / "credentials.yml").write_text(f"jquants:\n  api_key: {local_key}\n")
    return conf


def _credentials(conf: Path, env: str) -> dict:
    return ProjectConfigLoader(conf_source=str(conf), base_env="base", default_run_env="local", env=env)["credentials"]


def test_local_credentials_reach_the_jquants_environment(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "secret-key")
    assert _credentials(conf, "jquants")["jquants"]["api_key"] == "secret-key"
    assert _credentials(conf, "local")["jquants"]["api_key"] == "secret-key"


def test_without_local_credentials_the_placeholder_stays(tmp_path: Path) -> None:
    conf = _conf(tmp_path, None)
    assert _credentials(conf, "jquants")["jquants"]["api_key"] is None


def test_jquants_environment_selects_the_jquants_source(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "k")
    loader = ProjectConfigLoader(conf_source=str(conf), base_env="base", default_run_env="local", env="jquants")
    assert loader["parameters"]["ingestion"]["source"] == "jquants"
