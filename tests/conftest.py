"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro_project import PROJECT_ROOT


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT
