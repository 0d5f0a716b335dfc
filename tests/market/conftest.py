"""Shared simulated markets for the market-simulator tests (tiny, simulated once per session)."""

from __future__ import annotations

import polars as pl
import pytest

from atft_kedro.market import SimulatorParams
from atft_kedro.market.simulator import SimulatedMarket, build_tables, simulate_state
from market_helpers import HORIZONS, LABELS, load_simulator_block, with_overrides


@pytest.fixture(scope="session")
def test_params() -> SimulatorParams:
    """The market of ``conf/test`` exactly as configured."""
    return SimulatorParams(**load_simulator_block("test"))


@pytest.fixture(scope="session")
def test_market(test_params: SimulatorParams) -> SimulatedMarket:
    return simulate_state(test_params)


@pytest.fixture(scope="session")
def test_tables(test_market: SimulatedMarket) -> dict[str, pl.DataFrame]:
    return build_tables(test_market, HORIZONS, LABELS)


@pytest.fixture(scope="session")
def eventful_market() -> SimulatedMarket:
    """A tiny market with many corporate events: splits, listings, delistings and limit hits."""
    block = with_overrides(
        load_simulator_block("test"),
        {
            "seed": 7,
            "n_stocks": 40,
            "prices.split_probability_per_year": 0.4,
            "universe.listing_rate_per_year": 0.3,
            "universe.delisting_rate_per_year": 0.3,
            "returns.idio_vol": 0.05,
            "returns.tail_dof": 3.0,
        },
    )
    return simulate_state(SimulatorParams(**block))


@pytest.fixture(scope="session")
def eventful_tables(eventful_market: SimulatedMarket) -> dict[str, pl.DataFrame]:
    return build_tables(eventful_market, HORIZONS, LABELS)
