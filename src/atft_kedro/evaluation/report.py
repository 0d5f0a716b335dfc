"""Markdown report of an evaluation: comparison tables first, then figures, then notes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _formatter(digits: int, scale: float = 1.0, suffix: str = "") -> Callable[[Any], str]:
    """A cell formatter: ``value * scale`` with ``digits`` decimals and ``suffix``; ``n/a`` for None."""

    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{scale * value:.{digits}f}{suffix}"

    return fmt


def _number(digits: int) -> Callable[[Any], str]:
    return _formatter(digits)


def _percent(digits: int) -> Callable[[Any], str]:
    return _formatter(digits, 100.0, "%")


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


def run_header(header: dict[str, Any]) -> list[str]:
    """Markdown lines: one ``- **field**: value`` per entry of ``header`` (what, where, when, which code)."""
    return [f"- **{name}**: {'n/a' if value is None else value}" for name, value in header.items()] + [""]


def render_report(metrics: dict[str, Any], plot_files: dict[str, str], header: dict[str, Any] | None = None) -> str:
    """The evaluation report as Markdown.

    Args:
        metrics: ``EvaluationResult.metrics`` (keys ``primary_horizon``, ``horizons``
            (primary first), ``parameters``, ``definitions``, ``by_horizon``).
        plot_files: figure name -> path relative to the report, shown in the given order.
        header: the run's details shown first (data source, environment, universe, date
            ranges, label, manifest hash, model size, MLflow run id, git commit), in order.
    """
    for key in ("primary_horizon", "horizons", "parameters", "definitions", "by_horizon"):
        if key not in metrics:
            raise ValueError(f"evaluation metrics lack key '{key}'")
    params = metrics["parameters"]
    lines = ["# Evaluation report", ""]
    if header:
        lines += run_header(header)
    elif "labels" in metrics:
        lines += [f"Label: {metrics['labels']['formula']}.", ""]
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
    primary_models = metrics["by_horizon"][str(metrics["primary_horizon"])]["models"]
    if any(values.get("calibration") for values in primary_models.values()):
        lines += [f"## Forecast scale at {metrics['primary_horizon']} days: returns or scores?", "",
                  "Means over the test days of the cross-sectional mean and spread (std) of each model's forecasts "
                  "and of the realised labels. A calibrated return forecast sits near the realised mean with a "
                  "smaller spread; ATFT-GAT-FAN is trained to rank stocks, so its outputs are scores.", ""]
        rows = []
        for model, values in primary_models.items():
            c = values.get("calibration") or {}
            ratio = (c["forecast_std"] / c["realised_std"]) if c.get("forecast_std") is not None and \
                c.get("realised_std") else None
            rows.append([model, _percent(3)(c.get("forecast_mean")), _percent(3)(c.get("forecast_std")),
                         _percent(3)(c.get("realised_mean")), _percent(3)(c.get("realised_std")), _number(2)(ratio)])
        lines += _table(["model", "forecast mean", "forecast spread", "realised mean", "realised spread",
                         "spread ratio"], rows) + [""]
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


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _reference_first(models: list[str], reference: str) -> list[str]:
    """``reference`` first, the oracle (a ceiling, not a competitor) last, the rest as given."""
    middle = [m for m in models if m not in (reference, "oracle")]
    return [m for m in (reference,) if m in models] + middle + [m for m in ("oracle",) if m in models]


def render_walk_forward_report(metrics: dict[str, Any], plot_files: dict[str, str]) -> str:
    """The walk-forward report as Markdown: the stitched out-of-sample comparison first.

    Args:
        metrics: ``walk_forward_metrics`` (the evaluation metrics of the stitched period plus
            the ``walk_forward`` block of :func:`~atft_kedro.evaluation.walk_forward.walk_forward_summary`).
        plot_files: figure name -> path relative to the report, shown in the given order.
    """
    if "walk_forward" not in metrics:
        raise ValueError("walk-forward metrics lack key 'walk_forward'")
    wf = metrics["walk_forward"]
    h = metrics["primary_horizon"]
    block = metrics["by_horizon"][str(h)]
    extras = wf["by_horizon"][str(h)]
    reference = wf["reference_model"]
    num, pct = _number(4), _percent(2)
    dates = block["signal_dates"]
    lines = [
        "# Walk-forward report",
        "",
        f"Label: {metrics['labels']['formula']}.",
        "",
        f"Out-of-sample signal dates {dates['first']} .. {dates['last']} ({dates['n']} days) stitched from "
        f"{len(wf['folds'])} folds; every model is retrained on each fold's own training dates, early-stopped on "
        "its validation dates, and forecasts only its fold's test block.",
        "",
        f"## Stitched out-of-sample comparison, {h}-day horizon",
        "",
    ]
    rows = []
    models = _reference_first(list(block["models"]), reference)
    for model in models:
        values = block["models"][model]
        interval = extras["rank_ic_interval"].get(model, {})
        paired = extras["paired_vs_reference"].get(model, {})
        rows.append([
            model, num(_lookup(values, ("rank_ic", "mean"))),
            f"[{num(interval.get('ci_low'))}, {num(interval.get('ci_high'))}]",
            _number(3)(_lookup(values, ("rank_ic", "ir"))), _number(2)(_lookup(values, ("rank_ic", "ir_annualised"))),
            _number(2)(_lookup(values, ("rank_ic", "t_stat_newey_west"))),
            _number(2)(_lookup(values, ("long_short", "sharpe"))), pct(_lookup(values, ("long_short", "ann_return"))),
            _number(2)(_lookup(values, ("top_k", "sharpe"))),
            "-" if model == reference else num(paired.get("mean_difference")),
            "-" if model == reference else _number(2)(paired.get("t_stat_newey_west")),
            "-" if model == reference else _number(3)(paired.get("p_value")),
        ])
    confidence = wf["bootstrap"]["confidence"]
    lines += _table(
        ["model", "RankIC mean", f"{confidence:.0%} CI (block bootstrap)", "RankIC IR", "RankIC IR ann.",
         "RankIC t (NW)", "L/S Sharpe (net)", "L/S ann. return", "top-k Sharpe",
         f"{reference} - model: RankIC", "paired t (NW)", "p"],
        rows,
    )
    lines += ["", "## Folds", ""]
    lines += _table(
        ["fold", "train", "validation", "test"],
        [[str(f["fold"]), f"{f['train_start']} .. {f['train_end']}", f"{f['validation_start']} .. "
          f"{f['validation_end']}", f"{f['test_start']} .. {f['test_end']}"] for f in wf["folds"]],
    )
    for title, key, label in (("Per fold", "per_fold", "fold"), ("Per calendar year", "per_year", "year")):
        periods = sorted({row[key[4:]] for row in extras[key]})
        cell = {(row[key[4:]], row["model"]): row for row in extras[key]}
        lines += ["", f"## {title}, {h}-day horizon: mean RankIC / long-short Sharpe (net)", ""]
        lines += _table(
            [label, *models],
            [[str(p), *(f"{num(cell.get((p, m), {}).get('rank_ic_mean'))} / "
                        f"{_number(2)(cell.get((p, m), {}).get('long_short_sharpe'))}" for m in models)]
             for p in periods],
        )
    spread = extras.get("seed_spread") or []
    if spread:
        seeds = max(row["n_seeds"] for row in spread)
        lines += ["", f"## Seeds, {h}-day horizon: mean RankIC of each seed's own forecasts per fold", "",
                  f"{reference} forecasts each fold with the rank-average of {seeds} seed(s) (training.seed + s); "
                  "the spread across seeds is how much of a fold's RankIC is the luck of one initialisation.", ""]
        lines += _table(
            ["fold", *(f"seed {s}" for s in range(seeds)), "min", "max", "std", "rank-average"],
            [[str(row["fold"]), *(num(v) for v in row["rank_ic_by_seed"]),
              *([""] * (seeds - len(row["rank_ic_by_seed"]))),
              num(row["min"]), num(row["max"]), "-" if row["std"] is None else num(row["std"]), num(row["ensemble"])]
             for row in spread],
        )
    if plot_files:
        lines += ["", "## Figures", ""]
        for name, path in plot_files.items():
            lines += [f"### {name.replace('_', ' ')}", "", f"![{name}]({path})", ""]
    lines += ["", "## Every horizon", ""]
    for horizon in metrics["horizons"]:
        lines += [f"### {horizon}-day horizon", "", *comparison_table(metrics["by_horizon"][str(horizon)]["models"]), ""]
    boot = wf["bootstrap"]
    lines += [
        "## Notes",
        "",
        f"- Intervals: moving-block bootstrap of the mean daily RankIC ({boot['samples']} resamples of "
        f"{boot['block_days']}-day blocks, seed {boot['seed']}).",
        f"- Paired test: {reference} minus the model on the daily RankIC of the days both have, Newey-West t with "
        "h - 1 lags (overlapping h-day outcomes); p two-sided from the normal.",
        f"- Costs {metrics['parameters']['cost_bps']} bps per unit traded (two-way turnover); portfolios trade at the "
        "label's entry and exit prices.",
    ]
    for name, text in metrics["definitions"].items():
        lines.append(f"- **{name}**: {text}.")
    return "\n".join(lines) + "\n"
