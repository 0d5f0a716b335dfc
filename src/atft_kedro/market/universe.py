"""The listed universe: codes, sectors, peer clusters, markets, listings and delistings,
and the point-in-time listed master (``raw_equities_master``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from atft_kedro.market.calendar import Timeline
from atft_kedro.market.frames import gather_dates, gather_strings
from atft_kedro.market.params import SimulatorParams
from atft_kedro.market.sectors import (
    MARGIN_CODES,
    MARKETS,
    N_SECTORS,
    SECTOR17_NAMES,
    SECTOR33,
    SECTOR33_ENGLISH,
    SECTOR33_WEIGHTS,
)

FIRST_CODE, LAST_CODE = 1300, 9999
#: TOPIX size buckets as upper bounds on the cap-rank fraction among Prime/Standard stocks
#: (Core30 ~ 30, Large70 ~ 70, Mid400 ~ 400 of about 2,000 constituents).
SCALE_BUCKETS: tuple[tuple[float, str], ...] = (
    (0.015, "TOPIX Core30"),
    (0.05, "TOPIX Large70"),
    (0.25, "TOPIX Mid400"),
    (0.55, "TOPIX Small 1"),
    (1.0, "TOPIX Small 2"),
)
NO_SCALE = "-"


@dataclass(frozen=True)
class Universe:
    """Every stock that is ever listed; arrays are indexed by stock [N].

    Attributes:
        codes: 5-digit local codes ("13010"), sorted by sector like the TSE's.
        sector: index into ``SECTOR33``.
        cluster: latent peer-cluster id (clusters nest in sectors).
        cluster_sector: sector index of each cluster [K].
        market: index into ``MARKETS``.
        margin_code: index into ``MARGIN_CODES``.
        list_day: first sample day it trades.
        last_day: last sample day it trades (n_days - 1 when it survives).
        initial_price: latent share price on sample day 0, yen.
        initial_shares: shares outstanding on sample day 0.
        fiscal_year_end_month: month of the fiscal year end.
    """

    codes: np.ndarray
    sector: np.ndarray
    cluster: np.ndarray
    cluster_sector: np.ndarray
    market: np.ndarray
    margin_code: np.ndarray
    list_day: np.ndarray
    last_day: np.ndarray
    initial_price: np.ndarray
    initial_shares: np.ndarray
    fiscal_year_end_month: np.ndarray

    @property
    def n(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_clusters(self) -> int:
        return int(self.cluster_sector.shape[0])

    def listed(self, n_days: int) -> np.ndarray:
        """Boolean [n_days, N]: the stock trades on the day."""
        days = np.arange(n_days)[:, None]
        return (days >= self.list_day[None, :]) & (days <= self.last_day[None, :])


def _draw_clusters(sector: np.ndarray, cluster_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    per_sector = np.bincount(sector, minlength=N_SECTORS)
    n_clusters = np.maximum(1, np.rint(per_sector / cluster_size)).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(n_clusters)[:-1]])
    local = np.floor(rng.random(sector.shape[0]) * n_clusters[sector]).astype(np.int64)
    cluster_sector = np.repeat(np.arange(N_SECTORS), n_clusters)
    return first[sector] + local, cluster_sector


def _assign_markets(log_cap: np.ndarray, is_new: np.ndarray, market_shares: list[float], ipo_growth_share: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Index into MARKETS [N]: initial stocks by size (largest to Prime), new listings mostly Growth."""
    n_initial = int((~is_new).sum())
    bounds = np.cumsum(np.asarray(market_shares) / sum(market_shares)) * n_initial
    by_size = np.empty(n_initial, dtype=np.int64)
    by_size[np.argsort(-log_cap[~is_new])] = np.searchsorted(bounds, np.arange(n_initial), side="right").clip(0, 2)
    market = np.empty(is_new.shape[0], dtype=np.int64)
    market[~is_new] = by_size
    market[is_new] = np.where(rng.random(int(is_new.sum())) < ipo_growth_share, 2, 1)
    return market


def _listing_windows(is_new: np.ndarray, timeline: Timeline, params: SimulatorParams,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """First and last sample day of each stock [N]: new listings on a uniform day, an exponential life."""
    u, n_days, n_total = params.universe, timeline.n_days, is_new.shape[0]
    list_day = np.zeros(n_total, dtype=np.int64)
    list_day[is_new] = rng.integers(1, max(2, n_days), size=int(is_new.sum()))
    if u.delisting_rate_per_year > 0:
        life_years = rng.exponential(1.0 / u.delisting_rate_per_year, size=n_total)
    else:
        life_years = np.full(n_total, np.inf)
    life_days = np.minimum(life_years * _trading_days_per_year(timeline), 10.0 * n_days)
    last_day = np.minimum(n_days - 1, list_day + np.maximum(u.min_listing_days, np.ceil(life_days)).astype(np.int64))
    return list_day, last_day


def _code_numbers(sector: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Distinct 4-digit code numbers [N], handed out in sector order like the TSE's ranges."""
    n_total = sector.shape[0]
    numbers = np.sort(rng.choice(LAST_CODE - FIRST_CODE, size=n_total, replace=False) + FIRST_CODE)
    code_number = np.empty(n_total, dtype=np.int64)
    code_number[np.lexsort((rng.random(n_total), sector))] = numbers
    return code_number


def draw_universe(params: SimulatorParams, timeline: Timeline, rng: np.random.Generator) -> Universe:
    """Draw the stocks: the ``n_stocks`` listed at the start and the later listings.

    Args:
        params: the simulator parameters.
        timeline: the trading days (sample length ``timeline.n_days``).
        rng: the universe's random generator.

    Raises:
        ValueError: when the universe needs more codes than the 4-digit range holds.
    """
    u = params.universe
    years = timeline.n_days / _trading_days_per_year(timeline)
    n_total = params.n_stocks + int(rng.poisson(u.listing_rate_per_year * params.n_stocks * years))
    if n_total > LAST_CODE - FIRST_CODE:
        raise ValueError(f"simulator: {n_total} stocks need more codes than {FIRST_CODE}..{LAST_CODE} hold")
    is_new = np.arange(n_total) >= params.n_stocks

    sector = rng.choice(N_SECTORS, size=n_total, p=SECTOR33_WEIGHTS / SECTOR33_WEIGHTS.sum())
    cluster, cluster_sector = _draw_clusters(sector, u.peer_cluster_size, rng)
    log_cap = np.log(u.market_cap_median) + u.market_cap_log_sd * rng.standard_normal(n_total)
    log_cap[is_new] += np.log(u.ipo_size_ratio)
    price = np.exp(np.log(u.price_median) + u.price_log_sd * rng.standard_normal(n_total))
    shares = np.maximum(100_000.0, np.round(np.exp(log_cap) / price / 100.0) * 100.0)
    market = _assign_markets(log_cap, is_new, u.market_shares, u.ipo_growth_share, rng)
    margin_weights = np.asarray(u.margin_code_weights)
    margin_code = rng.choice(3, size=n_total, p=margin_weights / margin_weights.sum())
    list_day, last_day = _listing_windows(is_new, timeline, params, rng)
    s = params.statements
    fye_weights = np.asarray(s.fiscal_year_end_weights)
    fye = np.asarray(s.fiscal_year_end_months)[
        rng.choice(len(s.fiscal_year_end_months), size=n_total, p=fye_weights / fye_weights.sum())
    ]
    code_number = _code_numbers(sector, rng)

    by_code = np.argsort(code_number)  # stock index order = code order, so tables come out sorted
    return Universe(
        codes=np.char.add(code_number.astype("U4"), "0")[by_code],
        sector=sector[by_code],
        cluster=cluster[by_code],
        cluster_sector=cluster_sector,
        market=market[by_code],
        margin_code=margin_code[by_code],
        list_day=list_day[by_code],
        last_day=last_day[by_code],
        initial_price=price[by_code],
        initial_shares=shares[by_code],
        fiscal_year_end_month=fye[by_code],
    )


def _trading_days_per_year(timeline: Timeline) -> float:
    span_days = float((timeline.days[-1] - timeline.days[0]).astype(np.int64)) + 1.0
    return timeline.days.shape[0] / span_days * 365.25


def snapshot_days(timeline: Timeline, frequency: str) -> np.ndarray:
    """Sample days on which the master is snapshotted: every day, or the first of each week/month."""
    days = timeline.sample_days
    if frequency == "daily":
        return np.arange(days.shape[0])
    if frequency == "weekly":
        period = (days.astype("datetime64[D]").astype(np.int64) + 3) // 7  # weeks start on Monday
    elif frequency == "monthly":
        period = days.astype("datetime64[M]").astype(np.int64)
    else:
        raise ValueError(f"simulator.universe.master_snapshot_frequency: unknown '{frequency}'")
    first = np.concatenate([[True], period[1:] != period[:-1]])
    return np.flatnonzero(first)


def scale_category(market_cap: np.ndarray, listed: np.ndarray, market: np.ndarray) -> np.ndarray:
    """Index into ``SCALE_BUCKETS`` (len = no bucket, Growth) from the cap rank among listed
    Prime/Standard stocks on each row. Shapes: market_cap, listed [D, N]; market [N]; returns [D, N]."""
    eligible = listed & (market[None, :] != 2)
    cap = np.where(eligible, market_cap, -np.inf)
    rank = np.argsort(np.argsort(-cap, axis=1), axis=1)
    fraction = (rank + 0.5) / np.maximum(eligible.sum(axis=1, keepdims=True), 1)
    bounds = np.array([b for b, _ in SCALE_BUCKETS])
    bucket = np.searchsorted(bounds, fraction, side="left").clip(0, len(SCALE_BUCKETS) - 1)
    return np.where(eligible, bucket, len(SCALE_BUCKETS))


def master_table(universe: Universe, timeline: Timeline, market_cap: np.ndarray, frequency: str) -> pl.DataFrame:
    """``raw_equities_master``: one row per snapshot day x stock listed that day, as of that day.

    A stock listed between two snapshots also gets a row on its listing day. Nothing is
    back-filled: a stock never appears before it lists or after it delists, and the
    size bucket is the one of that day's market cap.

    Args:
        universe: the stocks.
        timeline: the trading days.
        market_cap: [n_days, N] market cap in yen (NaN when not listed).
        frequency: ``universe.master_snapshot_frequency``.
    """
    n_days = timeline.n_days
    snaps = snapshot_days(timeline, frequency)
    listed = universe.listed(n_days)
    rows_mask = np.zeros((n_days, universe.n), dtype=bool)
    rows_mask[snaps] = listed[snaps]
    rows_mask[universe.list_day, np.arange(universe.n)] = True
    day_idx, stock_idx = np.nonzero(rows_mask)
    row_days, row_of = np.unique(day_idx, return_inverse=True)
    scale_rows = scale_category(np.nan_to_num(market_cap[row_days], nan=0.0), listed[row_days], universe.market)
    scale = scale_rows[row_of, stock_idx]

    sector = universe.sector[stock_idx]
    s17 = np.array([s[2] for s in SECTOR33])
    sector_short = [s[1] for s in SECTOR33]
    frame = pl.DataFrame(
        [
            gather_dates(timeline.sample_days, day_idx, "Date"),
            gather_strings(universe.codes, stock_idx, "Code"),
            gather_strings([s[0] for s in SECTOR33], sector, "S33"),
            gather_strings(sector_short, sector, "S33Nm"),
            gather_strings(s17, sector, "S17"),
            gather_strings([SECTOR17_NAMES[c] for c in s17], sector, "S17Nm"),
            gather_strings([f"{name.upper()}" for name in SECTOR33_ENGLISH], sector, "_sector_en"),
            gather_strings([*(b for _, b in SCALE_BUCKETS), NO_SCALE], scale, "ScaleCat"),
            gather_strings([m[0] for m in MARKETS], universe.market[stock_idx], "Mkt"),
            gather_strings([m[1] for m in MARKETS], universe.market[stock_idx], "MktNm"),
            gather_strings([m[0] for m in MARGIN_CODES], universe.margin_code[stock_idx], "Mrgn"),
            gather_strings([m[1] for m in MARGIN_CODES], universe.margin_code[stock_idx], "MrgnNm"),
        ]
    )
    code4 = pl.col("Code").str.slice(0, 4)
    return frame.with_columns(
        pl.concat_str([pl.lit("シム"), pl.col("S33Nm"), code4]).alias("CoName"),
        pl.concat_str([pl.lit("SIM "), pl.col("_sector_en"), pl.lit(" "), code4, pl.lit(" CO.,LTD.")]).alias(
            "CoNameEn"
        ),
    ).select(
        "Date", "Code", "CoName", "CoNameEn", "S17", "S17Nm", "S33", "S33Nm", "ScaleCat", "Mkt", "MktNm",
        "Mrgn", "MrgnNm",
    ).sort("Date", "Code")
