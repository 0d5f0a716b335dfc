"""``beta_`` / ``alpha_``: exposure to TOPIX and what is left after it.

beta_w = cov(r_i, r_m) / var(r_m) over the stock's last w days (days where both returns
exist); alpha_1d = r_i - beta(t-1) * r_m with the previous day's beta, so today's return
does not estimate its own beta; idiosyncratic volatility = sqrt(var(r_i) - cov^2/var(r_m)).
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import (
    DAY, Feature, broadcast_by_day, cumulative_columns, dense_by_day, lag, min_count,
    require_table, safe_div, select_features, window_count, window_sum,
)
from atft_kedro.features.panel import RET1, StockPanel
from atft_kedro.features.params import FeatureParams

GROUP = "beta_alpha"
SOURCE = "daily_quotes+topix"


def features(params: FeatureParams) -> list[Feature]:
    """The beta_/alpha_ features, in manifest order."""
    b, frac = params.beta_alpha, params.rolling.min_periods_fraction
    out: list[Feature] = []

    def add(name: str, description: str, expr: pl.Expr) -> None:
        out.append(Feature(name, description, expr, SOURCE, 0))

    for w in b.beta_windows:
        add(f"beta_{w}d", f"beta of daily returns to TOPIX over {w} days",
            safe_div(pl.col(f"_cov_{w}"), pl.col(f"_var_m_{w}")))
    for w in b.beta_windows:
        add(f"beta_corr_{w}d", f"correlation of daily returns with TOPIX over {w} days",
            safe_div(pl.col(f"_cov_{w}"), (pl.col(f"_var_m_{w}") * pl.col(f"_var_i_{w}")).sqrt()))
    w = b.downside_beta_window
    add(f"beta_down_{w}d", f"beta to TOPIX on days TOPIX fell, over {w} days", pl.col("_beta_down"))
    add("alpha_1d", f"return minus yesterday's {b.residual_beta_window}-day beta times TOPIX return",
        pl.col("_alpha"))
    for w in b.alpha_windows:
        add(f"alpha_{w}d", f"sum of daily residual returns over {w} days",
            pl.when(window_count("alpha", w) >= min_count(w, frac)).then(window_sum("alpha", w)))
    for w in b.idio_vol_windows:
        cov, var_m, var_i = pl.col(f"_cov_{w}"), pl.col(f"_var_m_{w}"), pl.col(f"_var_i_{w}")
        idio_var = (var_i - safe_div(cov * cov, var_m)).clip(lower_bound=0.0)
        add(f"alpha_idio_vol_{w}d", f"idiosyncratic volatility (residual std vs TOPIX) over {w} days",
            idio_var.sqrt())
        add(f"alpha_idio_share_{w}d", f"idiosyncratic share of variance over {w} days",
            safe_div(idio_var, var_i))
    return out


def _moments(w: int, frac: float) -> list[pl.Expr]:
    """Columns _cov_w, _var_m_w, _var_i_w: population moments over the last w paired days."""
    n = window_count("x", w)
    ok = n >= min_count(w, frac)

    def mean(name: str) -> pl.Expr:
        return window_sum(name, w) / n

    mx, my = mean("x"), mean("y")
    return [
        pl.when(ok).then(mean("xy") - mx * my).alias(f"_cov_{w}"),
        pl.when(ok).then((mean("yy") - my * my).clip(lower_bound=0.0)).alias(f"_var_m_{w}"),
        pl.when(ok).then((mean("xx") - mx * mx).clip(lower_bound=0.0)).alias(f"_var_i_{w}"),
    ]


def _prepare(panel: StockPanel, topix: pl.DataFrame, params: FeatureParams) -> pl.LazyFrame:
    b, frac = params.beta_alpha, params.rolling.min_periods_fraction
    days = panel.trading_days
    rows = topix.select("Date", "Close").filter(pl.col("Date").is_in(days.implode()))
    rows = rows.with_columns(days.search_sorted(rows.get_column("Date")).cast(pl.Int32).alias(DAY))
    market = dense_by_day(rows.drop("Date"), days.len()).select(
        (pl.col("Close").forward_fill() / pl.col("Close").forward_fill().shift(1) - 1.0).alias("_rm"))
    r_m = broadcast_by_day(market, panel.frame.get_column(DAY)).get_column("_rm")
    both = pl.col(RET1).is_not_null() & pl.col("_rm").is_not_null()
    x, y = pl.when(both).then(pl.col(RET1)), pl.when(both).then(pl.col("_rm"))
    down = both & (pl.col("_rm") < 0)
    xd, yd = pl.when(down).then(pl.col(RET1)), pl.when(down).then(pl.col("_rm"))
    frame = panel.frame.lazy().select("Code", DAY, "_pos", RET1).with_columns(r_m)
    frame = frame.with_columns(cumulative_columns({
        "x": x, "y": y, "xy": x * y, "xx": x * x, "yy": y * y,
        "xd": xd, "yd": yd, "xyd": xd * yd, "yyd": yd * yd,
    }))
    w = b.downside_beta_window
    nd = window_count("xd", w)
    mean_d = {k: window_sum(k, w) / nd for k in ("xd", "yd", "xyd", "yyd")}
    beta_down = safe_div(mean_d["xyd"] - mean_d["xd"] * mean_d["yd"], mean_d["yyd"] - mean_d["yd"] ** 2)
    windows = sorted(set(b.beta_windows) | set(b.idio_vol_windows) | {b.residual_beta_window})
    frame = frame.with_columns(*[e for v in windows for e in _moments(v, frac)])
    r = b.residual_beta_window
    resid_beta = safe_div(pl.col(f"_cov_{r}"), pl.col(f"_var_m_{r}"))
    frame = frame.with_columns(
        pl.when(nd >= max(3, min_count(w, frac) // 2)).then(beta_down).alias("_beta_down"),
        (pl.col(RET1) - lag(resid_beta, 1) * pl.col("_rm")).alias("_alpha"),
    )
    return frame.with_columns(cumulative_columns({"alpha": pl.col("_alpha")}))


def compute(panel: StockPanel, topix: pl.DataFrame | None, params: FeatureParams) -> pl.DataFrame:
    """beta_/alpha_ features aligned with ``panel.frame`` (float32).

    Raises:
        MissingSourceError: ``topix`` is missing or empty.
    """
    topix = require_table(topix, "topix", GROUP, ("Date", "Close"))
    return select_features(_prepare(panel, topix, params), features(params))
