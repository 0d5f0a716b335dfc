"""Markdown report of an evaluation: comparison tables first, then figures, then notes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _number(digits: int) -> Callable[[Any], str]:
    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    return fmt


def _percent(digits: int) -> Callable[[Any], str]:
    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{100.0 * value:.{digits}f}%"

    return fmt


#: (header, path into one model's metrics, formatter)
COLUMNS: tuple[tuple[str, tuple[str, ...], Callable[[Any], str]], ...] = (
    ("RankIC mean", ("rank_ic", "mean"), _number(4)),
    ("RankIC IR", ("rank_ic", "ir"), _number(3)),
    ("RankIC IR ann.", ("rank_ic", "ir_annualised"), _number(2)),
    ("RankIC t (NW)", ("rank_ic", "t_stat_newey_west"), _number(2)),
    ("IC mean", ("ic", "mean"), _number(4)),
    ("hit rate (days RankIC>0)", ("rank_ic", "ic_hit_rate"), _percent(1)),
    ("sign hit rate", ("sign_hit_rate",), _percent(1)),
    ("L/S ann. return", ("long_short", "ann_return"), _percent(2)),
    ("L/S Sharpe", ("long_short", "sharpe"), _number(2)),
    ("L/S MDD", ("long_short", "max_drawdown"), _percent(1)),
    ("L/S turnover", ("long_short", "mean_turnover"), _number(3)),
    ("top-k Sharpe", ("top_k", "sharpe"), _number(2)),
    ("top-k IR vs TOPIX", ("top_k", "information_ratio"), _number(2)),
)


def _lookup(model_metrics: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = model_metrics
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def comparison_table(models: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown table lines: one row per model, the columns of ``COLUMNS``."""
    lines = [
        "| model | " + " | ".join(header for header, _, _ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for model, values in models.items():
        cells = [fmt(_lookup(values, path)) for _, path, fmt in COLUMNS]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def render_report(metrics: dict[str, Any], plot_files: dict[str, str]) -> str:
    """The evaluation report as Markdown.

    Args:
        metrics: ``EvaluationResult.metrics`` (keys ``primary_horizon``, ``horizons``
            (primary first), ``parameters``, ``definitions``, ``by_horizon``).
        plot_files: figure name -> path relative to the report, shown in the given order.
    """
    for key in ("primary_horizon", "horizons", "parameters", "definitions", "by_horizon"):
        if key not in metrics:
            raise ValueError(f"evaluation metrics lack key '{key}'")
    params = metrics["parameters"]
    lines = ["# Evaluation report", ""]
    for horizon in metrics["horizons"]:
        block = metrics["by_horizon"][str(horizon)]
        dates = block["signal_dates"]
        primary = " (primary)" if horizon == metrics["primary_horizon"] else ""
        lines += [
            f"## {horizon}-day horizon{primary}",
            "",
            f"Signal dates {dates['first']} .. {dates['last']} ({dates['n']} days, the same for every model).",
            "",
            *comparison_table(block["models"]),
            "",
        ]
    if plot_files:
        lines += ["## Figures", ""]
        for name, path in plot_files.items():
            lines += [f"### {name.replace('_', ' ')}", "", f"![{name}]({path})", ""]
    lines += [
        "## Notes",
        "",
        f"- Long-short: top minus bottom of {params['n_quantiles']} forecast buckets, +1 long / -1 short; "
        f"top-k: the {params['top_k']} highest forecasts, equal weight, long only.",
        f"- Costs: {params['cost_bps']} bps per unit traded; turnover is two-way; "
        f"annualisation with {params['periods_per_year']} trading days per year.",
        f"- Days with fewer than {params['min_stocks_per_day']} stocks having both a forecast and an outcome "
        "are left out of the statistics.",
    ]
    for name, text in metrics["definitions"].items():
        lines.append(f"- **{name}**: {text}.")
    dropped = {
        (horizon, model): values.get("n_dates_dropped", 0)
        for horizon, block in metrics["by_horizon"].items()
        for model, values in block["models"].items()
        if values.get("n_dates_dropped", 0)
    }
    for (horizon, model), n in dropped.items():
        lines.append(f"- {model}, {horizon}-day horizon: {n} signal dates dropped to match the other models.")
    return "\n".join(lines) + "\n"
