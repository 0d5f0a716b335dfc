"""Fixtures of the feature tests: a small canonical market and the base feature params."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fe_helpers.py, sample_tables.py: helpers, not tests

from fe_helpers import N_DAYS, N_SECTORS, N_STOCKS, SEED, Built, build_all  # noqa: E402
from kedro_project import load_conf  # noqa: E402
from sample_tables import make_canonical_tables  # noqa: E402

from atft_kedro.features.params import FeatureParams  # noqa: E402


@pytest.fixture(scope="session")
def base_parameters() -> dict:
    """Resolved parameters of the base environment (as Kedro reads them)."""
    return dict(load_conf("base")["parameters"])


@pytest.fixture(scope="session")
def feature_params(base_parameters: dict) -> FeatureParams:
    return FeatureParams(**base_parameters["feature_engineering"])


@pytest.fixture(scope="session")
def horizons(base_parameters: dict) -> list[int]:
    return list(base_parameters["horizons"])


@pytest.fixture(scope="session")
def tables() -> dict[str, pl.DataFrame]:
    """A small JPX-like market: 30 stocks over 300 trading days, 4 sectors, every table."""
    return make_canonical_tables(N_STOCKS, N_DAYS, SEED, n_sectors=N_SECTORS)


@pytest.fixture(scope="session")
def built(tables: dict[str, pl.DataFrame], feature_params: FeatureParams, horizons: list[int]) -> Built:
    """The pipeline's outputs on ``tables`` with the base params."""
    return build_all(tables, feature_params, horizons)
