"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro_project import PROJECT_ROOT


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


class ProjectRun:
    """A copy of the project after one ``kedro run --env test`` (every pipeline), and its output.

    ``data`` is the test environment's data root in the copy (``data/test``, conf/test/globals.yml).
    """

    def __init__(self, path: Path, output: str) -> None:
        self.path = path
        self.output = output
        self.data = path / "data" / "test"


@pytest.fixture(scope="session")
def test_env_run(tmp_path_factory: pytest.TempPathFactory) -> ProjectRun:
    """One end-to-end ``kedro run --env test`` in a copy of the project, shared by the slow tests."""
    from kedro_project import copy_project, kedro_run_test_env

    project = copy_project(tmp_path_factory.mktemp("project"))
    return ProjectRun(project, kedro_run_test_env(project))


@pytest.fixture(scope="session")
def walk_forward_run(test_env_run: ProjectRun) -> ProjectRun:
    """``kedro run --env test --pipelines walk_forward`` after the end-to-end run, in the same copy."""
    from kedro_project import kedro_run_test_env

    return ProjectRun(test_env_run.path, kedro_run_test_env(test_env_run.path, "--pipelines", "walk_forward"))
