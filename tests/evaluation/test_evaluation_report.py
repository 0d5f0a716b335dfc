"""End to end on a tiny market: evaluate, figures, report; parameter validation."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure
from pydantic import ValidationError

from atft_kedro.evaluation.evaluate import evaluate_predictions
from atft_kedro.evaluation.params import EvaluationParams
from atft_kedro.labels import LabelParams
from atft_kedro.evaluation.plots import make_figures
from atft_kedro.evaluation.report import render_report


@pytest.fixture
def evaluated(market_factory, params: EvaluationParams):
    market = market_factory(n_days=70, n_stocks=40, horizons=(1, 5), seed=7)
    rng = np.random.default_rng(0)
    frames = []
    for model in ("oracle", "noise", "inverse", "late"):
        frame = market.targets.select("Date", "Code")
        for h in (1, 5):
            target = market.targets[f"target_ret_{h}d"].to_numpy()
            values = {
                "oracle": target,
                "inverse": -target,
                "noise": rng.normal(size=target.shape[0]),
                "late": rng.normal(size=target.shape[0]),
            }[model]
            frame = frame.with_columns(pl.Series(f"pred_{h}d", values).fill_nan(0.0))
            frame = frame.with_columns(pl.col(f"pred_{h}d").alias(f"pred_{h}d_q10"))  # ignored
        if model == "late":  # starts 10 trading days later: every model is cut to the same dates
            frame = frame.filter(pl.col("Date") >= market.calendar[10])
        frames.append(frame.with_columns(pl.lit(model).alias("model")))
    predictions = pl.concat(frames).filter(pl.col("Date") >= market.calendar[1])
    result = evaluate_predictions(
        predictions, market.targets, market.daily_returns, market.topix, market.calendar, params,
        LabelParams(entry="next_open"),
    )
    return market, result


def test_metrics_per_model_and_horizon(evaluated) -> None:
    market, result = evaluated
    metrics = result.metrics
    assert metrics["horizons"] == [5, 1]
    json.dumps(metrics, allow_nan=False)  # JSON-ready: no NaN, no numpy scalars, dates as text
    h5 = metrics["by_horizon"]["5"]
    assert list(h5["models"]) == ["oracle", "noise", "inverse", "late"]
    assert h5["signal_dates"]["first"] == market.calendar[10].isoformat()
    assert h5["models"]["oracle"]["rank_ic"]["mean"] == pytest.approx(1.0)
    assert h5["models"]["inverse"]["ic"]["mean"] == pytest.approx(-1.0)
    assert abs(h5["models"]["noise"]["rank_ic"]["mean"]) < 0.1
    assert h5["models"]["oracle"]["n_dates_dropped"] == 9 and h5["models"]["late"]["n_dates_dropped"] == 0
    deciles = h5["models"]["oracle"]["buckets"]
    assert len(deciles) == 5 and deciles == sorted(deciles)
    assert h5["models"]["oracle"]["top_k"]["information_ratio"] is not None
    # forecast scale: the oracle (the outcome itself) is calibrated, the inverse has the opposite mean
    oracle, inverse = h5["models"]["oracle"]["calibration"], h5["models"]["inverse"]["calibration"]
    assert oracle["forecast_mean"] == pytest.approx(oracle["realised_mean"])
    assert oracle["forecast_std"] == pytest.approx(oracle["realised_std"])
    assert inverse["forecast_mean"] == pytest.approx(-inverse["realised_mean"])
    # every model is judged on the same held days
    daily = result.portfolio_daily.filter(pl.col("horizon") == 5)
    dates = daily.group_by("model", "portfolio").agg(pl.col("Date").sort())
    assert dates["Date"].n_unique() == 1
    assert set(result.daily_scores["horizon"].unique()) == {1, 5}


def test_figures_and_report(evaluated, params: EvaluationParams, tmp_path) -> None:
    _, result = evaluated
    importance = {"horizon": 5, "features": {f"feat_{i:02d}": float(i) for i in range(40)},
                  "groups": {"px": 0.02, "tech": -0.001, "stmt": float("nan")}}
    figures = make_figures(result, importance, params)
    assert list(figures)[:3] == ["cumulative_long_short_5d", "monthly_rank_ic_5d", "buckets_5d"]
    assert list(figures)[-2:] == ["feature_importance", "group_importance"]
    monthly = figures["monthly_rank_ic_5d"].axes[0]
    assert monthly.patches and all(label.get_text()[:2] == "20" for label in monthly.get_xticklabels())
    assert "(5 equal-count buckets)" in figures["buckets_5d"].axes[0].get_title()
    # largest drop on top; a NaN drop counts as none
    assert [t.get_text() for t in figures["group_importance"].axes[0].get_yticklabels()] == ["tech", "stmt", "px"]
    assert all(isinstance(fig, Figure) for fig in figures.values())
    assert len(figures["cumulative_long_short_5d"].axes) == 2  # the oracle gets a panel of its own
    bars = figures["feature_importance"].axes[0].patches
    assert len(bars) == 30 and max(bar.get_width() for bar in bars) == 39.0
    figures["cumulative_long_short_5d"].savefig(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000

    plot_files = {name: f"plots/{name}.png" for name in figures}
    report = render_report(result.metrics, plot_files)
    assert report.startswith("# Evaluation report\n\nLabel: target_ret_{h}d(t) = P(t+1+h) / P(t+1) - 1")
    assert "P = AdjustmentOpen (next_open).\n\n## 5-day horizon (primary)" in report
    assert report.index("## 5-day horizon") < report.index("## 1-day horizon") < report.index("## Figures")
    header = next(line for line in report.splitlines() if line.startswith("| model |"))
    for column in ("RankIC mean", "RankIC IR", "IC mean", "hit rate", "L/S ann. return", "L/S Sharpe", "L/S MDD",
                   "L/S turnover", "top-k Sharpe"):
        assert column in header
    oracle_row = next(line for line in report.splitlines() if line.startswith("| oracle |"))
    assert oracle_row.split("|")[2].strip() == "1.0000"
    assert "![feature_importance](plots/feature_importance.png)" in report
    assert "two-way" in report
    scale = report[report.index("## Forecast scale at 5 days"):]
    assert next(line for line in scale.splitlines() if line.startswith("| oracle |")).endswith("| 1.00 |")


def test_report_shows_missing_values_as_na(evaluated) -> None:
    _, result = evaluated
    metrics = json.loads(json.dumps(result.metrics))
    metrics["by_horizon"]["5"]["models"]["noise"]["long_short"]["sharpe"] = None
    row = next(line for line in render_report(metrics, {}).splitlines() if line.startswith("| noise |"))
    assert "n/a" in row
    with pytest.raises(ValueError, match="by_horizon"):
        render_report({k: v for k, v in metrics.items() if k != "by_horizon"}, {})


def test_params_are_strict(params: EvaluationParams) -> None:
    raw = params.model_dump()
    with pytest.raises(ValidationError, match="extra"):
        EvaluationParams.model_validate({**raw, "surprise": 1})
    with pytest.raises(ValidationError, match="primary_horizon 20"):
        EvaluationParams.model_validate({**raw, "primary_horizon": 20})
    with pytest.raises(ValidationError, match="entry_lag_days"):  # the label defines the entry, not evaluation
        EvaluationParams.model_validate({**raw, "entry_lag_days": 1})
    missing = dict(raw)
    del missing["cost_bps"]
    with pytest.raises(ValidationError, match="cost_bps"):
        EvaluationParams.model_validate(missing)
