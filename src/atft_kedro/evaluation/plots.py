"""Figures of the evaluation report, as ``matplotlib.figure.Figure`` (no pyplot state).

Figures are built with the object API (``Figure()``, not pyplot), so no global figure list
grows, no backend is switched and none is needed: ``savefig`` renders PNG with Agg.

Every model keeps its colour across figures (the order of ``models``). Reference models
(``REFERENCE_MODELS``, the oracle of the synthetic market) are drawn on a panel of their
own below the others, because their scale would flatten the real forecasts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from atft_kedro.evaluation.evaluate import EvaluationResult, ordered_horizons
from atft_kedro.evaluation.metrics import require_columns
from atft_kedro.evaluation.params import EvaluationParams

REFERENCE_MODELS = ("oracle",)
_SIZE = (10.0, 5.5)


def _colour(models: Sequence[str], model: str) -> str:
    return f"C{list(models).index(model) % 10}"


def _panels(models: Sequence[str], title: str) -> tuple[Figure, dict[str, Axes]]:
    """One axes for the forecasts, a second one below for reference models when present."""
    references = [m for m in models if m in REFERENCE_MODELS]
    forecasts = [m for m in models if m not in REFERENCE_MODELS]
    if references and forecasts:
        fig = Figure(figsize=(_SIZE[0], _SIZE[1] * 1.5))
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
        axes = {m: top for m in forecasts} | {m: bottom for m in references}
        bottom.set_title("reference: " + ", ".join(references), fontsize="medium")
    else:
        fig = Figure(figsize=_SIZE)
        ax = fig.add_subplot()
        axes = {m: ax for m in models}
        top = ax
    top.set_title(title)
    return fig, axes


def _finish(fig: Figure, axes: dict[str, Axes], ylabel: str, dates: bool) -> Figure:
    for ax in {id(a): a for a in axes.values()}.values():
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
    if dates:
        fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot_cumulative_returns(daily: pl.DataFrame, models: Sequence[str], title: str) -> Figure:
    """Compounded net curve ``prod(1 + net_return) - 1`` of every model.

    Args:
        daily: model, Date, net_return (one portfolio, one horizon).
        models: the models to draw, in legend / colour order.
    """
    require_columns(daily, ["model", "Date", "net_return"], "portfolio daily series")
    curves = daily.sort("model", "Date").with_columns(
        ((1.0 + pl.col("net_return")).cum_prod().over("model") - 1.0).alias("cumulative")
    )
    fig, axes = _panels(models, title)
    for model in models:
        one = curves.filter(pl.col("model") == model)
        axes[model].plot(
            one["Date"].to_numpy(), one["cumulative"].to_numpy(), label=model, color=_colour(models, model)
        )
    return _finish(fig, axes, "cumulative net return", dates=True)


def plot_walk_forward_pnl(daily: pl.DataFrame, models: Sequence[str], fold_starts: Sequence[Any],
                          title: str) -> Figure:
    """:func:`plot_cumulative_returns` with a dashed line where each later fold's test block starts."""
    fig = plot_cumulative_returns(daily, models, title)
    for ax in fig.axes:
        for k, start in enumerate(fold_starts):
            day = np.datetime64(str(start), "D")
            ax.axvline(day, color="grey", linestyle="--", linewidth=0.8)
            ax.annotate(f"fold {k}", (day, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                        textcoords="offset points", fontsize="x-small", color="grey")
    return fig


def plot_fold_rank_ic(per_fold: Sequence[dict[str, Any]], models: Sequence[str], title: str) -> Figure:
    """Grouped bars: mean RankIC of every model in every fold (rows of the walk-forward fold table)."""
    folds = sorted({row["fold"] for row in per_fold})
    value = {(row["fold"], row["model"]): row["rank_ic_mean"] for row in per_fold}
    fig, axes = _panels([m for m in models if m not in REFERENCE_MODELS], title)
    width = 0.8 / max(len(axes), 1)
    for i, model in enumerate(axes):
        heights = [value.get((k, model)) or 0.0 for k in folds]
        axes[model].bar(np.arange(len(folds)) + i * width, heights, width=width, label=model,
                        color=_colour(models, model))
    for ax in {id(a): a for a in axes.values()}.values():
        ax.set_xticks(np.arange(len(folds)) + 0.4 - width / 2, [f"fold {k}" for k in folds])
    return _finish(fig, axes, "mean daily RankIC", dates=False)


def _grouped_bars(axes: dict[str, Axes], models: Sequence[str],
                  bars: Callable[[str], tuple[np.ndarray, np.ndarray]]) -> None:
    """Bars of every model, side by side where models share a panel: ``bars(model)`` gives (x, heights)."""
    groups: dict[int, list[str]] = {}
    for model in models:
        groups.setdefault(id(axes[model]), []).append(model)
    for members in groups.values():
        width = 0.8 / len(members)
        for i, model in enumerate(members):
            x, heights = bars(model)
            axes[model].bar(x + (i - (len(members) - 1) / 2) * width, heights, width=width, label=model,
                            color=_colour(models, model))


def plot_monthly_rank_ic(scores: pl.DataFrame, models: Sequence[str], title: str) -> Figure:
    """Mean daily RankIC per calendar month: grouped bars, one colour per model, one label per month.

    Args:
        scores: model, Date, rank_ic (one horizon).
    """
    require_columns(scores, ["model", "Date", "rank_ic"], "daily scores")
    monthly = (
        scores.group_by("model", pl.col("Date").dt.truncate("1mo").alias("month"))
        .agg(pl.col("rank_ic").mean())
        .sort("model", "month")
    )
    months = monthly["month"].unique().sort().to_list()
    position = {m: i for i, m in enumerate(months)}
    fig, axes = _panels(models, title)

    def month_bars(model: str) -> tuple[np.ndarray, np.ndarray]:
        one = monthly.filter(pl.col("model") == model)
        return np.array([position[m] for m in one["month"].to_list()]), one["rank_ic"].to_numpy()

    _grouped_bars(axes, models, month_bars)
    step = max(1, len(months) // 12)  # at most about 12 month labels
    for ax in {id(a): a for a in axes.values()}.values():
        ax.set_xticks(range(0, len(months), step), [m.strftime("%Y-%m") for m in months[::step]], rotation=45)
    return _finish(fig, axes, "mean RankIC in month", dates=False)


def plot_decile_returns(deciles: pl.DataFrame, models: Sequence[str], title: str) -> Figure:
    """Grouped bars: mean realised return (bps) per forecast bucket, one colour per model.

    Args:
        deciles: model, quantile, mean_return (one horizon).
    """
    require_columns(deciles, ["model", "quantile", "mean_return"], "bucket returns")
    fig, axes = _panels(models, title)

    def bucket_bars(model: str) -> tuple[np.ndarray, np.ndarray]:
        one = deciles.filter(pl.col("model") == model).sort("quantile")
        return one["quantile"].to_numpy(), one["mean_return"].to_numpy() * 1e4

    _grouped_bars(axes, models, bucket_bars)
    buckets = np.sort(deciles["quantile"].unique().to_numpy())
    for ax in {id(a): a for a in axes.values()}.values():
        ax.set_xticks(buckets)
    list(axes.values())[-1].set_xlabel("forecast bucket (1 = lowest)")
    return _finish(fig, axes, "mean realised return (bps)", dates=False)


def plot_feature_importance(importance: dict[str, float], top_n: int, title: str,
                            xlabel: str = "importance") -> Figure:
    """Horizontal bars of the ``top_n`` largest importances (largest on top); NaN counts as 0."""
    if not importance:
        raise ValueError("feature importance is empty: nothing to plot")
    finite = {k: (v if v is not None and np.isfinite(v) else 0.0) for k, v in importance.items()}
    ranked = sorted(finite.items(), key=lambda item: item[1], reverse=True)[:top_n]
    names = [name for name, _ in reversed(ranked)]
    values = [value for _, value in reversed(ranked)]
    fig = Figure(figsize=(8.0, max(3.0, 0.28 * len(ranked) + 1.0)))
    ax = fig.add_subplot()
    ax.barh(names, values, color="C0")
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def make_figures(
    result: EvaluationResult, feature_importance: dict[str, Any] | None, params: EvaluationParams
) -> dict[str, Figure]:
    """All report figures, keyed by file stem, primary horizon first.

    Keys: ``cumulative_long_short_{h}d``, ``monthly_rank_ic_{h}d``, ``buckets_{h}d`` for
    each horizon, then ``feature_importance`` and ``group_importance`` when ``feature_importance``
    (the permutation importance of ``atft_kedro.evaluation.importance``: ``features`` and
    ``groups`` -> drop of validation RankIC) is given.
    """
    figures: dict[str, Figure] = {}
    for h in ordered_horizons(params):
        models = list(result.metrics["by_horizon"][str(h)]["models"])
        daily = result.portfolio_daily.filter((pl.col("horizon") == h) & (pl.col("portfolio") == "long_short"))
        figures[f"cumulative_long_short_{h}d"] = plot_cumulative_returns(
            daily,
            models,
            f"Top-minus-bottom {params.n_quantiles}-quantile long-short, {h}-day horizon, net of costs",
        )
        figures[f"monthly_rank_ic_{h}d"] = plot_monthly_rank_ic(
            result.daily_scores.filter(pl.col("horizon") == h), models, f"Monthly RankIC, {h}-day horizon"
        )
        figures[f"buckets_{h}d"] = plot_decile_returns(
            result.deciles.filter(pl.col("horizon") == h), models,
            f"Mean {h}-day return per forecast bucket ({params.n_quantiles} equal-count buckets)"
        )
    if feature_importance:
        h = feature_importance.get("horizon", params.primary_horizon)
        xlabel = f"drop of mean validation RankIC ({h}-day) when shuffled across stocks"
        figures["feature_importance"] = plot_feature_importance(
            feature_importance["features"], params.plots.top_features,
            f"Top {params.plots.top_features} features by permutation importance", xlabel)
        figures["group_importance"] = plot_feature_importance(
            feature_importance["groups"], len(feature_importance["groups"]),
            "Feature groups by permutation importance", xlabel)
    return figures
