"""Schemas of the 02_intermediate layer: canonical tables with the long J-Quants names.

Strict: exactly these columns, in this case and order, with these dtypes; keys unique;
prices > 0. Catalog entries name them in ``validator:``.
"""

from __future__ import annotations

from atft_kedro.schemas import tables

TRADING_CALENDAR = tables.TRADING_CALENDAR.canonical_schema()
LISTED_INFO = tables.EQUITIES_MASTER.canonical_schema()
DAILY_QUOTES = tables.DAILY_BARS.canonical_schema()
TOPIX = tables.TOPIX.canonical_schema()
INVESTOR_TYPES = tables.INVESTOR_TYPES.canonical_schema()
WEEKLY_MARGIN_INTEREST = tables.MARGIN_INTEREST.canonical_schema()
DAILY_MARGIN_INTEREST = tables.MARGIN_ALERT.canonical_schema()
SHORT_SELLING = tables.SHORT_RATIO.canonical_schema()
SHORT_POSITIONS = tables.SHORT_POSITIONS.canonical_schema()
STATEMENTS = tables.FIN_SUMMARY.canonical_schema()
EARNINGS_CALENDAR = tables.EARNINGS_DATES.canonical_schema()
