"""A deterministic, seeded simulator of the Tokyo Stock Exchange.

It emits every raw table of ``atft_kedro.schemas.tables`` (J-Quants API v2 names and dtypes)
plus ``oracle_expected_returns``, so the project runs with no account. See
``docs/market_simulator.md`` for the mechanisms and the planted effects.
"""

from atft_kedro.market.calendar import jpx_trading_calendar
from atft_kedro.market.params import SimulatorParams
from atft_kedro.market.simulator import simulate_market

__all__ = ["SimulatorParams", "jpx_trading_calendar", "simulate_market"]
