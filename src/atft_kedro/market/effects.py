"""The planted sources of predictable return, and the oracle of expected returns.

Every effect adds to the expected log-return ``m[t+1, i]`` of day t+1 a term computed
only from what is known at the close of day t (``sigma`` = ``returns.idio_vol``):

1. earnings drift:  ``s1 sigma sum_k z_k lambda1^(t - E_k)`` over statements k with
   effective day E_k <= t, z_k the surprise (deviation of profit from the prior forecast
   or forecast revision, in units of ``statements.surprise_scale``); E_k is the disclosure
   day, or the next trading day for disclosures at or after 15:00.
2. sector momentum: ``s2 sigma R_s / sd_t(R)`` with R_s the stock's sector's equal-weighted
   mean return minus the mean over sectors, summed over days t-skip-L+1 .. t-skip, and
   sd_t(R) its standard deviation across the sectors that have listed stocks (a z-score).
3. margin reversal: ``-s3 sigma dc / (crowding_vol sqrt(2 (1 - phi)))`` with dc the change
   of the log long-margin balance (per share) in the latest weekly margin table usable at
   t (published before t: weekly tables count from the trading day after publication).
4. peer lead-lag:   ``s4 sigma e_c / sd_t(e)``, e_c the exponentially smoothed (half-life H)
   return of the stock's latent peer cluster minus that of its sector, sd_t(e) its standard
   deviation across listed stocks (a z-score).
5. volatility-conditional reversal: ``-s5 g X / sqrt(W)``, X the stock's market-adjusted
   return over the last W days, g = 1 when its realised volatility over the last V days
   is above the cross-sectional ``volatility_quantile`` (else 0).

Plus the market drift beta x premium and the carry of a move cut by a daily price limit.

The oracle ``exp_ret_{h}d`` at t is ``exp(E_t[log P(t+1+h) / P(t+1)]) - 1`` over the label's window
(entry on the next day's open or close, see :func:`oracle_log_returns`): a weighted sum of expected
daily log-returns (the return loop subtracts half the conditional variance, so
E[exp(r)] ~ exp(m)). E_t[m(t+k)] projects each effect with what is known at t: earnings drift
and lead-lag decay geometrically; sector momentum and reversal keep the part of their window
that is already realised (unknown future returns count as zero); the margin signal stays until
the next weekly table becomes usable and is then replaced by its expectation under the AR(1)
crowding; the volatility gate and the cross-sectional z-score scales are held at their values
at t. For h = 1 the oracle is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from atft_kedro.market.params import SimulatorParams


@dataclass(frozen=True)
class EffectCoefficients:
    """Constants that turn each signal into a daily expected log-return."""

    earnings: float
    earnings_decay: float
    sector: float
    sector_lookback: int
    sector_skip: int
    margin: float
    margin_persistence: float
    lead_lag: float
    lead_lag_decay: float
    reversal: float
    reversal_window: int
    volatility_window: int
    volatility_quantile: float


def effect_coefficients(params: SimulatorParams) -> EffectCoefficients:
    """The coefficients of the five effects (see the module docstring for the formulas)."""
    e = params.effects
    sigma = params.returns.idio_vol
    lead_lag_decay = 0.5 ** (1.0 / e.peer_lead_lag.halflife_days)
    phi = params.flows.margin_persistence
    return EffectCoefficients(
        earnings=e.earnings_drift.strength * sigma,
        earnings_decay=float(np.exp(-1.0 / e.earnings_drift.decay_days)),
        sector=e.sector_momentum.strength * sigma,
        sector_lookback=e.sector_momentum.lookback_days,
        sector_skip=e.sector_momentum.skip_days,
        margin=e.margin_reversal.strength * sigma
        / (params.flows.margin_crowding_vol * np.sqrt(2.0 * (1.0 - phi))),
        margin_persistence=phi,
        lead_lag=e.peer_lead_lag.strength * sigma,
        lead_lag_decay=lead_lag_decay,
        reversal=e.volatility_reversal.strength / np.sqrt(e.volatility_reversal.return_window_days),
        reversal_window=e.volatility_reversal.return_window_days,
        volatility_window=e.volatility_reversal.volatility_window_days,
        volatility_quantile=e.volatility_reversal.volatility_quantile,
    )


def earnings_drift_alpha(
    effective_day: np.ndarray, stock: np.ndarray, surprise: np.ndarray, n_days: int, n_stocks: int,
    coef: EffectCoefficients,
) -> np.ndarray:
    """Expected log-return from earnings drift on each day s = 0..n_days [n_days + 1, N].

    ``alpha[s] = coef.earnings * sum_{E_k <= s-1} z_k decay^(s-1-E_k)``: the drift starts the
    trading day after the statement's effective day. Statements effective before the sample
    (negative days) enter through their decayed value on day 0.
    """
    impulses = np.zeros((n_days + 1, n_stocks))
    inside = (effective_day >= 0) & (effective_day < n_days)
    np.add.at(impulses, (effective_day[inside] + 1, stock[inside]), surprise[inside])
    before = effective_day < 0
    np.add.at(impulses, (np.zeros(int(before.sum()), dtype=np.int64), stock[before]),
              surprise[before] * coef.earnings_decay ** (-1.0 - effective_day[before]))
    return coef.earnings * lfilter([1.0], [1.0, -coef.earnings_decay], impulses, axis=0)


def margin_alpha(
    usable_day: np.ndarray, change: np.ndarray, n_days: int, coef: EffectCoefficients
) -> np.ndarray:
    """Expected log-return from margin reversal on each day s = 0..n_days [n_days + 1, N].

    Args:
        usable_day: [W] sample day from whose close week w's table is usable (ascending).
        change: [W, N] change of the log long-margin balance per share published for week w
            (0 where there is none).
    """
    latest = np.searchsorted(usable_day, np.arange(n_days + 1) - 1, side="right") - 1
    alpha = -coef.margin * change[np.clip(latest, 0, None)]
    alpha[latest < 0] = 0.0
    return alpha


@dataclass(frozen=True)
class SignalRecord:
    """What the return loop knew at each close, kept to project the effects forward.

    Attributes:
        drift: [N] beta x premium per day.
        earnings: [T+1, N] earnings-drift term of day s (``earnings_drift_alpha``).
        margin: [T+1, N] margin term of day s (``margin_alpha``).
        margin_level: [T, N] latent crowding of the latest weekly table usable at close t.
        margin_usable_day: [W] sample day from whose close each weekly table is usable.
        sector_cumulative: [T+1, S] cumulative demeaned sector returns (row j+1 = through day j).
        sector_scale: [T] cross-sector sd of the sector window sums at close t (inf: no signal).
        sector_of: [N] sector index.
        lead_lag: [T, K] smoothed peer-cluster-minus-sector return at close t.
        lead_lag_scale: [T] cross-stock sd of the smoothed peer returns at close t (inf: no signal).
        cluster_of: [N] peer-cluster index.
        market_adjusted: [T, N] observed return minus the cross-sectional mean (0 if unobserved).
        gate: [T, N] volatility gate at close t.
        carry: [T, N] part of the day's move cut by a price limit, carried to the next day.
    """

    drift: np.ndarray
    earnings: np.ndarray
    margin: np.ndarray
    margin_level: np.ndarray
    margin_usable_day: np.ndarray
    sector_cumulative: np.ndarray
    sector_scale: np.ndarray
    sector_of: np.ndarray
    lead_lag: np.ndarray
    lead_lag_scale: np.ndarray
    cluster_of: np.ndarray
    market_adjusted: np.ndarray
    gate: np.ndarray
    carry: np.ndarray


def sector_window_sum(cumulative: np.ndarray, signal_day: np.ndarray, known_through: np.ndarray,
                      coef: EffectCoefficients) -> np.ndarray:
    """Known part of the sector window sum of the signal at close ``signal_day`` [len(days), S].

    Window: days signal_day-skip-L+1 .. signal_day-skip, truncated at ``known_through``.
    """
    n_rows = cumulative.shape[0]
    top = np.clip(np.minimum(signal_day - coef.sector_skip, known_through) + 1, 0, n_rows - 1)
    bottom = np.clip(signal_day - coef.sector_skip - coef.sector_lookback + 1, 0, n_rows - 1)
    return np.where((top > bottom)[:, None], cumulative[top] - cumulative[bottom], 0.0)


def cumulative_expected_log_returns(record: SignalRecord, coef: EffectCoefficients,
                                    steps: set[int]) -> dict[int, np.ndarray]:
    """``S(k)`` = sum over j = 1..k of the expected log-return of day t+j given the close of t.

    Args:
        steps: the k >= 1 whose partial sums are kept.

    Returns:
        ``{k: [T, N]}`` for every k in ``steps``.
    """
    n_days, _ = record.market_adjusted.shape
    days = np.arange(n_days)
    h_max = max(steps)
    out: dict[int, np.ndarray] = {}

    usable = record.margin_usable_day
    weeks_known = np.searchsorted(usable, days, side="right")
    margin_now = record.margin[1:]
    reversal_now = -coef.reversal * record.gate
    lead_lag_now = coef.lead_lag * record.lead_lag[:, record.cluster_of] / record.lead_lag_scale[:, None]
    sector_now = coef.sector / record.sector_scale[:, None]
    earnings_now = record.earnings[1:]
    ra = record.market_adjusted
    ra_cumulative = np.vstack([np.zeros((1, ra.shape[1])), np.cumsum(ra, axis=0)])

    total = np.zeros_like(ra)
    lag_lead = 1.0
    lag_earnings = 1.0
    for k in range(1, h_max + 1):
        signal_day = days + k - 1
        new_weeks = (np.searchsorted(usable, signal_day, side="right") - weeks_known)[:, None]
        expected_margin = coef.margin * (1.0 - coef.margin_persistence) * (
            coef.margin_persistence ** np.maximum(new_weeks - 1, 0)
        ) * record.margin_level
        term = np.where(new_weeks == 0, margin_now, expected_margin)
        term += sector_now * sector_window_sum(record.sector_cumulative, signal_day, days, coef)[:, record.sector_of]
        term += lag_lead * lead_lag_now + lag_earnings * earnings_now
        # reversal: the known returns ra(t-l), l = 0..W-k, still inside the window at close t+k-1
        kept = coef.reversal_window - k + 1
        if kept > 0:
            term += reversal_now * (ra_cumulative[1:] - ra_cumulative[np.clip(days + 1 - kept, 0, None)])
        if k == 1:
            term += record.carry
        total += term + record.drift[None, :]
        lag_lead *= coef.lead_lag_decay
        lag_earnings *= coef.earnings_decay
        if k in steps:
            out[k] = total.copy()
    return out


def oracle_log_returns(record: SignalRecord, coef: EffectCoefficients, horizons: list[int], *,
                       entry: str, overnight_share: float) -> dict[int, np.ndarray]:
    """Expected log-return of the label's window (``atft_kedro.labels``) given the close of t, per horizon.

    With m_k the expected log-return of day t+k (close to close) and s the overnight share of
    a day's move in the open (``prices.overnight_share``: log open(t) = log close(t-1) + s r(t)
    + noise):

    * ``next_close`` (close(t+1) -> close(t+1+h)): ``S(h+1) - S(1)``;
    * ``next_open`` (open(t+1) -> open(t+1+h)): ``(1-s) m_1 + sum_{k=2..h} m_k + s m_{h+1}``
      = ``(1-s) S(1) + S(h) - S(1) + s (S(h+1) - S(h))``.

    Returns:
        ``{h: [T, N]}``.
    """
    if entry not in ("next_open", "next_close"):
        raise ValueError(f"labels.entry must be next_open or next_close, got {entry!r}")
    steps = {1, *horizons, *(h + 1 for h in horizons)}
    s = cumulative_expected_log_returns(record, coef, steps)
    if entry == "next_close":
        return {h: s[h + 1] - s[1] for h in horizons}
    return {
        h: (1.0 - overnight_share) * s[1] + (s[h] - s[1]) + overnight_share * (s[h + 1] - s[h])
        for h in horizons
    }
