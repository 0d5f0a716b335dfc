"""Fixtures of the model tests."""

from __future__ import annotations

import pytest
from model_fakes import Dataset, make_dataset


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return make_dataset()
