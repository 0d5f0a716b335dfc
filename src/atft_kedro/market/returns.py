"""Factor structure of daily returns: loadings, GARCH(1,1) variances and Student-t shocks.

The daily log-return of stock i on day t is

    r[t, i] = m[t, i] - v[t, i] / 2
              + beta_i  * sqrt(h_mkt[t])        * z_mkt[t]
              + gamma_i * sqrt(h_sec[t, s(i)])  * z_sec[t, s(i)]
              + delta_i * sqrt(h_clu[t, c(i)])  * z_clu[t, c(i)]
              +           sqrt(h_idio[t, i])    * z_idio[t, i]
              + jump[t, i]

with ``m`` the expected log-return (drift plus the planted effects, see ``effects.py``),
``v`` the conditional variance of the shocks (so that E[exp(r)] ~ exp(m)), every ``z`` an
independent unit-variance Student-t draw and every ``h`` a GARCH(1,1) variance:
``h' = h_bar (1 - a - b) + a e^2 + b h``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atft_kedro.market.params import ReturnParams
from atft_kedro.market.universe import Universe

#: Trading days per year used to turn annual rates into daily ones.
TRADING_DAYS_PER_YEAR = 245.0


@dataclass(frozen=True)
class Loadings:
    """Per-stock return parameters [N].

    Attributes:
        beta: market loading.
        sector_loading: loading on the stock's sector-33 factor.
        cluster_loading: loading on the stock's latent peer-cluster factor.
        idio_vol: long-run idiosyncratic daily volatility.
        drift: expected daily log-return from the market premium (beta x premium).
    """

    beta: np.ndarray
    sector_loading: np.ndarray
    cluster_loading: np.ndarray
    idio_vol: np.ndarray
    drift: np.ndarray


def draw_loadings(params: ReturnParams, universe: Universe, rng: np.random.Generator) -> Loadings:
    """Draw betas, loadings and idiosyncratic volatilities; small caps are more volatile."""
    n = universe.n
    log_cap = np.log(universe.initial_price * universe.initial_shares)
    size = log_cap - np.median(log_cap)
    idio_vol = params.idio_vol * np.exp(
        params.size_vol_elasticity * size + params.idio_vol_log_sd * rng.standard_normal(n)
    )
    beta = np.clip(1.0 + params.beta_sd * rng.standard_normal(n), 0.1, 2.5)
    sector_loading = np.clip(1.0 + params.loading_sd * rng.standard_normal(n), 0.0, 2.5)
    cluster_loading = np.clip(1.0 + params.loading_sd * rng.standard_normal(n), 0.0, 2.5)
    drift = beta * params.market_premium_per_year / TRADING_DAYS_PER_YEAR
    return Loadings(beta, sector_loading, cluster_loading, idio_vol, drift)


def standardized_t(rng: np.random.Generator, dof: float, size: int) -> np.ndarray:
    """Student-t draws with ``dof`` degrees of freedom scaled to unit variance [size]."""
    return rng.standard_t(dof, size=size) * np.sqrt((dof - 2.0) / dof)


class Garch:
    """GARCH(1,1) variances of a vector of factors, stepped one day at a time.

    Args:
        long_run_vol: [M] long-run daily volatilities; the variances start there.
        alpha: reaction to the last squared shock.
        beta: persistence.
    """

    def __init__(self, long_run_vol: np.ndarray, alpha: float, beta: float) -> None:
        self._long_run_var = np.asarray(long_run_vol, dtype=np.float64) ** 2
        self._alpha = alpha
        self._beta = beta
        self.variance = self._long_run_var.copy()

    def shock(self, z: np.ndarray) -> np.ndarray:
        """Today's shocks ``sqrt(h) z`` [M]; then move ``h`` to tomorrow's variance."""
        e = np.sqrt(self.variance) * z
        self.variance = self._long_run_var * (1.0 - self._alpha - self._beta) + self._alpha * e * e + (
            self._beta * self.variance
        )
        return e
