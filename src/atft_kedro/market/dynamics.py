"""The day-by-day return loop: factor shocks, planted effects, price limits and ticks.

The loop runs over trading days (each step is vectorised over stocks) because three
effects feed on the returns the loop itself produces (sector momentum, peer lead-lag,
volatility-conditional reversal), as does the carry of limit moves. Everything exogenous
(earnings drift, margin reversal, jumps, splits) is computed before the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atft_kedro.market.effects import EffectCoefficients, sector_window_sum
from atft_kedro.market.params import SimulatorParams
from atft_kedro.market.prices import Splits, limit_prices, round_to_tick
from atft_kedro.market.returns import Garch, Loadings, standardized_t
from atft_kedro.market.sectors import N_SECTORS
from atft_kedro.market.universe import Universe


@dataclass(frozen=True)
class Jumps:
    """Announcement-day returns, sparse and day-sorted [J]: sample day, stock, log-return."""

    day: np.ndarray
    stock: np.ndarray
    size: np.ndarray
    variance: np.ndarray


@dataclass(frozen=True)
class Paths:
    """Output of the return loop; arrays are [T, N] unless noted.

    Attributes:
        close: raw closes (latent outside the listing).
        expected: expected log-return m of each day given the previous close (the oracle's
            1-day value is exp(expected[t+1]) - 1).
        observed: the day's return is visible in the bars (listed on the day and the day before).
        sector_cumulative: [T+1, S] cumulative demeaned sector returns.
        sector_scale: [T] cross-sector sd of the momentum window sums (inf: no signal).
        lead_lag: [T, K] smoothed peer-cluster-minus-sector returns.
        lead_lag_scale: [T] cross-stock sd of the smoothed peer returns (inf: no signal).
        market_adjusted: observed return minus the cross-sectional mean (0 if unobserved).
        gate: volatility gate of the reversal effect at each close.
        carry: part of a limit-cut move carried to the next day.
    """

    close: np.ndarray
    expected: np.ndarray
    observed: np.ndarray
    sector_cumulative: np.ndarray
    sector_scale: np.ndarray
    lead_lag: np.ndarray
    lead_lag_scale: np.ndarray
    market_adjusted: np.ndarray
    gate: np.ndarray
    carry: np.ndarray


def _group_mean(
    values: np.ndarray, weights: np.ndarray, group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean of values per group [G] and whether the group has any weight [G]."""
    count = np.bincount(group, weights=weights, minlength=n_groups)
    total = np.bincount(group, weights=values * weights, minlength=n_groups)
    return np.divide(total, count, out=np.zeros(n_groups), where=count > 0), count > 0


def _spread(values: np.ndarray) -> float:
    """Standard deviation of a cross-section; inf (a zero signal) when it has none."""
    spread = float(values.std()) if values.shape[0] >= 2 else 0.0
    return spread if spread > 0 else np.inf


class _SignalState:
    """What the loop-fed effects remember between closes, and their record [T, ...]."""

    def __init__(self, universe: Universe, coef: EffectCoefficients, n_days: int) -> None:
        n, k = universe.n, universe.n_clusters
        self.universe, self.coef = universe, coef
        self.sector_cumulative = np.zeros((n_days + 1, N_SECTORS))
        self.sector_scale = np.full(n_days, np.inf)
        self.lead_lag = np.zeros((n_days, k))
        self.lead_lag_scale = np.full(n_days, np.inf)
        self.market_adjusted = np.zeros((n_days, n))
        self.gate = np.zeros((n_days, n), dtype=bool)
        self._smoothed = np.zeros(k)
        self._reversal = np.zeros((coef.reversal_window, n))
        self._squares = np.zeros((coef.volatility_window, n))
        self._counts = np.zeros((coef.volatility_window, n))

    def observe(self, t: int, realised: np.ndarray, seen: np.ndarray, listed: np.ndarray) -> np.ndarray:
        """Take in the close of day t; return the loop-fed part of tomorrow's expected log-return [N].

        Args:
            t: the day.
            realised: [N] the day's log-returns (latent where not seen).
            seen: [N] the return is visible (listed today and yesterday).
            listed: [N] listed today.
        """
        u, coef = self.universe, self.coef
        weight = seen.astype(np.float64)
        ret = np.where(seen, realised, 0.0)
        # sector momentum: demeaned sector returns, window sums, z-scored across listed sectors
        sector_mean, sector_has = _group_mean(ret, weight, u.sector, N_SECTORS)
        cross_sector = sector_mean[sector_has].mean() if sector_has.any() else 0.0
        demeaned = np.where(sector_has, sector_mean - cross_sector, 0.0)
        self.sector_cumulative[t + 1] = self.sector_cumulative[t] + demeaned
        sector_sum = sector_window_sum(self.sector_cumulative, np.array([t]), np.array([t]), coef)[0]
        self.sector_scale[t] = _spread(sector_sum[np.bincount(u.sector[listed], minlength=N_SECTORS) > 0])
        # peer lead-lag: smoothed cluster-minus-sector return, z-scored across listed stocks
        cluster_mean, cluster_has = _group_mean(ret, weight, u.cluster, u.n_clusters)
        peer = np.where(cluster_has, cluster_mean - sector_mean[u.cluster_sector], 0.0)
        self._smoothed = coef.lead_lag_decay * self._smoothed + (1.0 - coef.lead_lag_decay) * peer
        self.lead_lag[t] = self._smoothed
        self.lead_lag_scale[t] = _spread(self._smoothed[u.cluster[listed]])
        # volatility-conditional reversal: market-adjusted window return, gated by realised volatility
        adjusted = np.where(seen, ret - ret.sum() / max(weight.sum(), 1.0), 0.0)
        self.market_adjusted[t] = adjusted
        self._reversal[t % coef.reversal_window] = adjusted
        self._squares[t % coef.volatility_window] = ret * ret
        self._counts[t % coef.volatility_window] = weight
        full = (self._counts.sum(axis=0) == coef.volatility_window) & listed
        if full.sum() >= 2:
            vol = self._squares.sum(axis=0)
            self.gate[t] = full & (vol >= np.quantile(vol[full], coef.volatility_quantile))
        return (
            coef.sector * sector_sum[u.sector] / self.sector_scale[t]
            + coef.lead_lag * self._smoothed[u.cluster] / self.lead_lag_scale[t]
            - coef.reversal * self.gate[t] * self._reversal.sum(axis=0)
        )


def simulate_paths(
    params: SimulatorParams,
    universe: Universe,
    loadings: Loadings,
    coef: EffectCoefficients,
    earnings: np.ndarray,
    margin: np.ndarray,
    splits: Splits,
    jumps: Jumps,
    rng: np.random.Generator,
) -> Paths:
    """Run the market day by day.

    Each day: split-adjust yesterday's close, draw the factor shocks, add the expected log-return
    (minus half the conditional variance) and any announcement jump, round to the tick and cut
    at the daily limits (the cut part is carried to the next day), then update the effects.

    Args:
        params: simulator parameters (returns block used here).
        universe: the stocks.
        loadings: betas, loadings, idiosyncratic vols, drift.
        coef: effect coefficients.
        earnings: [T+1, N] earnings-drift term of each day.
        margin: [T+1, N] margin-reversal term of each day.
        splits: the split schedule.
        jumps: announcement-day returns.
        rng: the loop's random generator.
    """
    rp = params.returns
    n_days, n, k_clusters = earnings.shape[0] - 1, universe.n, universe.n_clusters
    listed = universe.listed(n_days)
    market = Garch(np.array([rp.market_vol]), rp.garch.alpha, rp.garch.beta)
    sectors = Garch(np.full(N_SECTORS, rp.sector_vol), rp.garch.alpha, rp.garch.beta)
    clusters = Garch(np.full(k_clusters, rp.cluster_vol), rp.garch.alpha, rp.garch.beta)
    idio = Garch(loadings.idio_vol, rp.garch.alpha, rp.garch.beta)
    sector, cluster = universe.sector, universe.cluster
    split_bounds = np.searchsorted(splits.day, np.arange(n_days + 1))
    jump_bounds = np.searchsorted(jumps.day, np.arange(n_days + 1))
    signals = _SignalState(universe, coef, n_days)

    close = np.empty((n_days, n))
    expected = np.empty((n_days, n))
    observed = np.zeros((n_days, n), dtype=bool)
    carry = np.zeros((n_days, n))
    prev_close = universe.initial_price.copy()
    next_expected = loadings.drift + earnings[0] + margin[0]
    for t in range(n_days):
        expected[t] = next_expected
        factor = np.ones(n)  # AdjFactor of the day: 1 / split ratio
        today = slice(split_bounds[t], split_bounds[t + 1])
        factor[splits.stock[today]] = 1.0 / splits.ratio[today]
        base = prev_close * factor

        variance = (loadings.beta**2 * market.variance[0] + loadings.sector_loading**2 * sectors.variance[sector]
                    + loadings.cluster_loading**2 * clusters.variance[cluster] + idio.variance)
        z = standardized_t(rng, rp.tail_dof, 1 + N_SECTORS + k_clusters + n)
        shock = (
            loadings.beta * market.shock(z[:1])[0]
            + loadings.sector_loading * sectors.shock(z[1:1 + N_SECTORS])[sector]
            + loadings.cluster_loading * clusters.shock(z[1 + N_SECTORS:1 + N_SECTORS + k_clusters])[cluster]
            + idio.shock(z[1 + N_SECTORS + k_clusters:])
        )
        jump, jump_var = np.zeros(n), np.zeros(n)
        announced = slice(jump_bounds[t], jump_bounds[t + 1])
        np.add.at(jump, jumps.stock[announced], jumps.size[announced])
        np.add.at(jump_var, jumps.stock[announced], jumps.variance[announced])
        intended = next_expected - 0.5 * (variance + jump_var) + shock + jump

        lower, upper = limit_prices(base)
        target = base * np.exp(intended)
        close[t] = prev_close = np.clip(round_to_tick(target), lower, upper)
        realised = np.log(prev_close / base)
        carry[t] = np.where((target > upper) | (target < lower), intended - realised, 0.0)

        observed[t] = listed[t] & listed[t - 1] if t > 0 else False
        next_expected = (
            loadings.drift + earnings[t + 1] + margin[t + 1] + carry[t]
            + signals.observe(t, realised, observed[t], listed[t])
        )
    return Paths(
        close=close, expected=expected, observed=observed, sector_cumulative=signals.sector_cumulative,
        sector_scale=signals.sector_scale, lead_lag=signals.lead_lag, lead_lag_scale=signals.lead_lag_scale,
        market_adjusted=signals.market_adjusted, gate=signals.gate, carry=carry,
    )
