"""Nodes of the inference pipeline.

``rank_newest_date`` normalises the newest ``window_days`` trading days of ``features``
with the fitted ``normalizer`` and runs the checkpointed model on the newest date: the
model's raw outputs for every stock listed that day (``newest_forecasts``). A checkpoint
trained on other features is refused (the manifest error lists the differing names).
``build_daily_ranking`` turns them into what a portfolio manager opens: names, sector,
segment, price and liquidity, and per horizon a cross-sectional score, rank, bucket and
the model's uncertainty band, plus a Markdown summary of the top and bottom names.

The model's outputs are **ranking scores, not calibrated return forecasts**: it is trained
to order stocks (rank and IC losses next to the quantile loss), so their level and spread
need not match realised returns. The evaluation report compares both
(``calibration`` in ``evaluation_metrics``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl

from atft_kedro.graph_packing import pack_graph
from atft_kedro.model.checkpoint import build_model_from_checkpoint, forecast_days
from atft_kedro.normalization.dense import dense_model_input_blocks
from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.pipelines.inference.params import InferenceParams
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.model_output import quantile_column

logger = logging.getLogger(__name__)


def _newest_days(features: pl.DataFrame | pl.LazyFrame, n_days: int) -> pl.DataFrame:
    """The rows of the newest ``n_days`` dates (works on an eager or a lazy features table)."""
    lazy = features.lazy()
    dates = lazy.select(pl.col("Date").unique()).collect().get_column("Date").sort()
    if dates.len() == 0:
        raise ValueError("the features table is empty: run the feature_engineering pipeline first")
    return lazy.filter(pl.col("Date") >= dates[max(0, dates.len() - n_days)]).collect()


def rank_newest_date(
    model_checkpoint: dict,
    normalizer: NormalizerState,
    features: pl.DataFrame | pl.LazyFrame,
    feature_manifest: FeatureManifest,
    stock_graph: pl.DataFrame,
    normalization: NormalizationParams,
    horizons: list[int],
) -> pl.DataFrame:
    """The model's outputs for every stock listed on the newest date of ``features``.

    Returns:
        ``newest_forecasts``: Date, Code, rank (1 = highest median output of the training's
        primary horizon), ``primary_horizon``, ``pred_{h}d`` (median) and ``q{p}_{h}d`` per
        horizon, in the model's raw units.
    """
    model = build_model_from_checkpoint(model_checkpoint, feature_manifest)
    state = normalizer
    if model_checkpoint.get("normalizer_identity") not in (None, state.identity):
        raise ValueError(
            f"the checkpoint was trained with normalizer {str(model_checkpoint['normalizer_identity'])[:12]} "
            f"but the current normalizer is {state.identity[:12]}: re-run training"
        )
    if [int(h) for h in horizons] != list(model_checkpoint["horizons"]):
        raise ValueError(
            f"params:horizons {list(horizons)} differ from the checkpoint's {model_checkpoint['horizons']}: "
            "re-run training with the current horizons"
        )
    window = model.params.window_days
    recent = _newest_days(features, window)
    empty_targets = recent.select("Date", "Code").with_columns(
        pl.lit(None, dtype=pl.Float64).alias(f"target_ret_{h}d") for h in horizons
    )
    model_input = dense_model_input_blocks(recent, empty_targets, feature_manifest, state, normalization,
                                           tuple(horizons)).materialize()
    newest = np.array([model_input.n_days - 1])
    graph = pack_graph(stock_graph, model_input.dates, model_input.codes)
    quantiles = forecast_days(model, model_input, graph, newest)
    listed = np.flatnonzero(model_input.mask[-1])
    values = quantiles[0, listed]  # [stocks, H, Q]
    primary = int(model_checkpoint["training_params"]["primary_horizon"])
    columns: dict[str, np.ndarray] = {}
    for h_pos, horizon in enumerate(horizons):
        columns[f"pred_{horizon}d"] = values[:, h_pos, model.params.median_index].astype(np.float64)
        for q_pos, q in enumerate(model.params.quantiles):
            columns[quantile_column(q, horizon)] = values[:, h_pos, q_pos].astype(np.float64)
    newest_date = model_input.dates[-1].astype("datetime64[D]").item()
    ranking = (
        pl.DataFrame({"Code": model_input.codes[listed].astype(str), **columns})
        .with_columns(pl.lit(newest_date, dtype=pl.Date).alias("Date"))
        .with_columns(pl.col(f"pred_{primary}d").rank("ordinal", descending=True).cast(pl.Int32).alias("rank"),
                      pl.lit(primary, dtype=pl.Int32).alias("primary_horizon"))
        .sort("rank")
        .select("Date", "Code", "rank", "primary_horizon", pl.exclude("Date", "Code", "rank", "primary_horizon"))
    )
    logger.info("newest forecasts for %s: %d stocks, ranked by their %d-day forecast", newest_date, ranking.height,
                primary)
    return ranking


def _last_known(table: pl.DataFrame, newest: Any, columns: list[str]) -> pl.DataFrame:
    """Each code's latest row dated on or before ``newest`` (as-of, never a later snapshot)."""
    return (table.filter(pl.col("Date") <= newest).sort("Code", "Date")
            .group_by("Code", maintain_order=True).last().select("Code", *columns))


def build_daily_ranking(
    newest_forecasts: pl.DataFrame,
    listed_info: pl.DataFrame,
    daily_quotes: pl.DataFrame,
    inference: InferenceParams,
    horizons: list[int],
) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    """The newest date's ranking, as a portfolio manager reads it.

    Per stock: Code, CompanyName, Sector33CodeName, MarketCodeName (as of the newest date),
    ``last_close`` (last traded close, yen) and ``adv_{w}d_yen`` (mean traded value over the
    stock's last ``inference.adv_window_days`` trading days, untraded days as 0). Per horizon h:
    ``score_{h}d`` (the median model output standardised across the day's stocks: a
    z-score, not a return), ``rank_{h}d`` (1 = highest), ``bucket_{h}d`` (1 = lowest of
    ``inference.buckets`` equal-count buckets) and ``band_{h}d`` (the model's highest minus
    lowest quantile in the same z units: its relative uncertainty, not a return interval).
    ``rank`` is the rank of the primary horizon (the checkpoint's early-stopping horizon).

    Returns:
        ``daily_ranking`` (Parquet, full precision), ``daily_ranking_csv`` (rounded to
        ``inference.csv_decimals``, traded value to the yen) and ``daily_ranking_summary``
        (Markdown: the top and bottom ``inference.summary_rows`` names of the primary horizon).
    """
    if newest_forecasts.height == 0:
        raise ValueError("newest_forecasts is empty: no stock to rank")
    newest = newest_forecasts["Date"].max()
    primary = int(newest_forecasts["primary_horizon"][0])
    names = _last_known(listed_info, newest, ["CompanyName", "Sector33CodeName", "MarketCodeName"])
    adv = f"adv_{inference.adv_window_days}d_yen"
    liquidity = (
        daily_quotes.filter(pl.col("Date") <= newest).sort("Code", "Date")
        .group_by("Code", maintain_order=True)
        .agg(pl.col("Close").drop_nulls().last().alias("last_close"),
             pl.col("TurnoverValue").fill_null(0.0).tail(inference.adv_window_days).mean().alias(adv))
    )
    per_horizon = []
    for h in horizons:
        low, high = _band_columns(newest_forecasts, h)
        pred = pl.col(f"pred_{h}d")
        std = pred.std()
        per_horizon += [
            ((pred - pred.mean()) / std).alias(f"score_{h}d"),
            pred.rank("ordinal", descending=True).cast(pl.Int32).alias(f"rank_{h}d"),
            ((pred.rank("ordinal") - 1) * inference.buckets // pl.len() + 1).cast(pl.Int32).alias(f"bucket_{h}d"),
            ((pl.col(high) - pl.col(low)) / std).alias(f"band_{h}d"),
        ]
    ranking = (
        newest_forecasts.select("Date", "Code", *per_horizon)
        .join(names, on="Code", how="left")
        .join(liquidity, on="Code", how="left")
        .with_columns(pl.col(f"rank_{primary}d").alias("rank"))
        .sort("rank")
        .select("Date", "Code", "CompanyName", "Sector33CodeName", "MarketCodeName", "last_close", adv, "rank",
                *(c for h in horizons for c in (f"score_{h}d", f"rank_{h}d", f"bucket_{h}d", f"band_{h}d")))
    )
    rounded = ranking.with_columns(pl.col(pl.Float64).exclude(adv).round(inference.csv_decimals),
                                   pl.col(adv).round(0))
    logger.info("daily_ranking for %s: %d stocks, ranked by the %d-day score", newest, ranking.height, primary)
    return ranking, rounded, ranking_summary(ranking, primary, inference)


def _band_columns(newest_forecasts: pl.DataFrame, horizon: int) -> tuple[str, str]:
    """The lowest and highest quantile columns of a horizon, e.g. ``q0.1_5d``, ``q0.9_5d``."""
    levels = sorted(float(c[1:].split("_")[0]) for c in newest_forecasts.columns
                    if c.startswith("q") and c.endswith(f"_{horizon}d"))
    if len(levels) < 2:
        raise ValueError(f"newest_forecasts has fewer than two quantile columns for horizon {horizon}")
    return quantile_column(levels[0], horizon), quantile_column(levels[-1], horizon)


def ranking_summary(ranking: pl.DataFrame, primary: int, inference: InferenceParams) -> str:
    """Markdown: the ``summary_rows`` highest and lowest ranked names of the primary horizon."""
    n = inference.summary_rows
    date = ranking["Date"].max()
    columns = ["rank", "Code", "CompanyName", "Sector33CodeName", "MarketCodeName", "last_close",
               f"adv_{inference.adv_window_days}d_yen", f"score_{primary}d", f"band_{primary}d"]

    def table(frame: pl.DataFrame) -> list[str]:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in frame.select(columns).iter_rows():
            cells = [f"{v:,.0f}" if isinstance(v, float) and abs(v) >= 1000 else
                     (f"{v:.2f}" if isinstance(v, float) else ("" if v is None else str(v))) for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    lines = [f"# Daily ranking for {date}", "",
             f"{ranking.height} stocks ranked by the model's {primary}-day score (a cross-sectional z-score of the "
             "model's output: an ordering, not a return forecast). `band` is the model's uncertainty band "
             "(highest minus lowest quantile) in the same z units.", "",
             f"## Top {min(n, ranking.height)}", "", *table(ranking.head(n)), "",
             f"## Bottom {min(n, ranking.height)}", "", *table(ranking.tail(n).reverse()), ""]
    return "\n".join(lines)
