"""Fixtures of the ingestion sources: a local fake J-Quants v2 server and its source parameters."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS_DIR = Path(__file__).resolve().parents[1]
if str(_TESTS_DIR) not in sys.path:  # tests/fake_jquants.py is a helper module, not a test
    sys.path.insert(0, str(_TESTS_DIR))

from fake_jquants import FAKE_API_KEY, FakeJQuants, FakeMarket, build_fake_market, fake_source_params  # noqa: E402

from atft_kedro.sources.jquants import JQuantsSourceParams  # noqa: E402


@pytest.fixture(scope="session")
def fake_market() -> FakeMarket:
    """The deterministic fixture market (4 stocks, 30 trading days)."""
    return build_fake_market()


@pytest.fixture()
def fake_jquants(fake_market: FakeMarket) -> Iterator[FakeJQuants]:
    """A fake J-Quants v2 server on 127.0.0.1 (random port), pages of 5 rows; stopped after the test."""
    server = FakeJQuants(market=fake_market, api_key=FAKE_API_KEY, page_size=5)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def jquants_params(fake_jquants: FakeJQuants) -> JQuantsSourceParams:
    """Source parameters pointing at the fake server; the range starts on a holiday (2024-01-01)."""
    return fake_source_params(fake_jquants.base_url)
