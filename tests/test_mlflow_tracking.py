"""MLflow tracking through kedro-mlflow (``atft_kedro.tracking``) on a local SQLite store.

Fast tests check the pure helpers and that an MLflow failure only warns. The slow test copies
the project (conf, src, pyproject.toml, .telemetry; empty data/ and logs/) into a temporary
folder, runs ``kedro run --env test`` there with the copy's own ``src`` first on the path, and
reads the copy's ``mlruns/mlflow.db`` with ``MlflowClient``: one finished run of experiment
``atft-kedro`` with flattened parameters, per-epoch training metrics, evaluation metrics and
the report, plots and checkpoint as artifacts.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import polars as pl
import pytest
from kedro_mlflow.framework.hooks.utils import _flatten_dict
from kedro_project import PROJECT_ROOT
from mlflow.tracking import MlflowClient

from atft_kedro.model.params import TrainingParams
from atft_kedro.tracking import (
    MlflowTrackingHook,
    anchored_tracking_uri,
    disable_mlflow_telemetry,
    evaluation_metric_values,
    history_metrics,
    loggable_params,
)

EXPERIMENT = "atft-kedro"


# ------------------------------------------------------------------------------ fast tests


def _test_training_params() -> TrainingParams:
    from kedro_project import load_conf

    return TrainingParams.model_validate(load_conf("test")["parameters"]["training"])


def test_pydantic_params_flatten_to_one_mlflow_param_per_leaf() -> None:
    params = loggable_params({"params:training": _test_training_params(), "params:horizons": [1, 5],
                              "model_input": object()})
    flat = _flatten_dict(params, recursive=True, sep=".")  # what kedro-mlflow does with flatten: true
    assert flat["params:training.lr"] == 3.0e-3
    assert flat["params:training.collapse.action"] == "warn"
    assert flat["params:training.phases.1.name"] == "fan_gat"
    assert flat["params:horizons"] == [1, 5]
    assert not any(key.startswith("model_input") for key in flat)


def test_history_metrics_are_per_epoch_skip_nan_and_add_the_best_epoch() -> None:
    history = pl.DataFrame({
        "phase": ["a", "b", "b"], "epoch": [1, 2, 3], "loss_total": [3.0, 2.0, 1.0],
        "val_rankic_h5": [0.1, 0.3, 0.2], "gat_grad_norm": [float("nan"), 0.5, 0.4],
        "is_best": [True, True, False],
    })
    metrics = {(key, step): value for key, value, step in history_metrics(history)}
    assert metrics[("loss_total", 3)] == 1.0
    assert metrics[("val_rankic_h5", 2)] == 0.3
    assert ("gat_grad_norm", 1) not in metrics and metrics[("gat_grad_norm", 2)] == 0.5
    assert metrics[("best.epoch", 2)] == 2.0 and metrics[("best.val_rankic_h5", 2)] == 0.3
    assert not any(key.startswith("phase") for key, _ in metrics)


def test_evaluation_metrics_flatten_per_horizon_and_model() -> None:
    metrics = {"primary_horizon": 5, "by_horizon": {"5": {
        "signal_dates": {"first": "2022-01-04", "n": 40},
        "models": {"atft_gat_fan": {"rank_ic": {"mean": 0.05, "ir": float("nan")}, "deciles": [-0.01, 0.02],
                                    "long_short": {"sharpe": 1.5}}},
    }}}
    assert evaluation_metric_values(metrics) == {
        "eval.h5.signal_dates.n": 40.0,
        "eval.h5.atft_gat_fan.rank_ic.mean": 0.05,
        "eval.h5.atft_gat_fan.deciles.1": -0.01,
        "eval.h5.atft_gat_fan.deciles.2": 0.02,
        "eval.h5.atft_gat_fan.long_short.sharpe": 1.5,
    }


def test_walk_forward_metrics_are_logged_as_wf_with_their_extras() -> None:
    metrics = {"by_horizon": {"5": {"models": {"lightgbm": {"rank_ic": {"mean": 0.03}}}}},
               "walk_forward": {"folds": [{"fold": 0, "test_start": "2022-01-04"}], "by_horizon": {"5": {
                   "rank_ic_interval": {"lightgbm": {"ci_low": 0.01, "ci_high": 0.05}},
                   "paired_vs_reference": {"lightgbm": {"t_stat_newey_west": 2.5, "n_days": 200}},
                   "per_fold": [{"fold": 0, "model": "lightgbm", "rank_ic_mean": 0.02}]}}}}
    assert evaluation_metric_values(metrics, "wf") == {
        "wf.h5.lightgbm.rank_ic.mean": 0.03,
        "wf.extra.h5.rank_ic_interval.lightgbm.ci_low": 0.01,
        "wf.extra.h5.rank_ic_interval.lightgbm.ci_high": 0.05,
        "wf.extra.h5.paired_vs_reference.lightgbm.t_stat_newey_west": 2.5,
        "wf.extra.h5.paired_vs_reference.lightgbm.n_days": 200.0,
        "wf.extra.h5.per_fold.1.fold": 0.0,
        "wf.extra.h5.per_fold.1.rank_ic_mean": 0.02,
    }


def test_relative_sqlite_uri_is_anchored_at_the_project_root(tmp_path: Path) -> None:
    assert anchored_tracking_uri("sqlite:///mlruns/mlflow.db", tmp_path) == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert anchored_tracking_uri("sqlite:////abs/mlflow.db", tmp_path) == "sqlite:////abs/mlflow.db"
    assert anchored_tracking_uri("file:///abs/mlruns", tmp_path) == "file:///abs/mlruns"


def test_mlflow_failures_warn_and_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    hook = MlflowTrackingHook()
    with caplog.at_level(logging.WARNING, logger="atft_kedro.tracking"):
        hook.after_context_created(SimpleNamespace())  # no config loader: set-up fails
        hook.before_pipeline_run({"project_path": "."}, None, None)
        hook.after_dataset_saved("evaluation_metrics", {"by_horizon": {}}, None)
        hook.after_pipeline_run({}, None, None)
    assert "could not set up MLflow" in caplog.text

    class FailingClient:
        def log_batch(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("store is gone")

    hook = MlflowTrackingHook()
    hook.run_id, hook._client = "some-run", FailingClient()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="atft_kedro.tracking"):
        hook.after_dataset_saved("evaluation_metrics", {"by_horizon": {"5": {"models": {"m": {"x": 1.0}}}}}, None)
    assert "store is gone" in caplog.text


def test_mlflow_telemetry_client_is_dropped() -> None:
    from mlflow.telemetry.client import _set_telemetry_client

    _set_telemetry_client(SimpleNamespace(info={"session_id": "test"}))  # as if MLflow had started one
    disable_mlflow_telemetry()
    assert mlflow.telemetry.get_telemetry_client() is None


def test_settings_replace_the_plugin_hook_by_the_tracking_hook() -> None:
    from atft_kedro import settings

    assert any(isinstance(hook, MlflowTrackingHook) for hook in settings.HOOKS)
    # Kedro matches DISABLE_HOOKS_FOR_PLUGINS against the distribution's metadata name.
    assert importlib.metadata.distribution("kedro-mlflow").metadata["Name"] in settings.DISABLE_HOOKS_FOR_PLUGINS


# ------------------------------------------------------------------------------ slow tests


@pytest.fixture(scope="module")
def tracked_project(test_env_run) -> Path:
    """The shared copy of the project after ``kedro run --env test`` (tracking on)."""
    assert "MLflow tracking: could not" not in test_env_run.output, test_env_run.output[-4000:]
    return test_env_run.path


@pytest.fixture(scope="module")
def tracked_run(tracked_project: Path) -> tuple[MlflowClient, Any]:
    client = MlflowClient(f"sqlite:///{tracked_project}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, f"no MLflow experiment '{EXPERIMENT}'"
    runs = client.search_runs([experiment.experiment_id])
    # the shared copy's first run is the whole `kedro run --env test`; other slow tests run more in it later
    # (--from-nodes, the walk-forward), each its own MLflow run
    assert runs, "no MLflow run"
    first = min(runs, key=lambda run: run.info.start_time)
    assert first.info.run_name == "__default__", [r.info.run_name for r in runs]
    return client, first


@pytest.mark.slow
def test_the_run_is_finished_named_after_the_pipeline_with_flat_params(tracked_run: tuple[MlflowClient, Any],
                                                                        tracked_project: Path) -> None:
    _, run = tracked_run
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "__default__"
    assert run.info.artifact_uri.startswith((tracked_project / "mlruns" / "artifacts").as_uri())
    params = run.data.params
    assert float(params["training.lr"]) == 3.0e-3
    assert params["model.gat.heads"] == "2"
    assert params["training.phases.0.name"] == "baseline"
    assert "training" not in params  # no pydantic repr: the plugin's own hook is off
    assert run.data.tags["env"] == "test"


@pytest.mark.slow
def test_training_history_is_logged_per_epoch(tracked_run: tuple[MlflowClient, Any], tracked_project: Path) -> None:
    client, run = tracked_run
    history = pl.read_parquet(tracked_project / "data" / "test" / "06_models" / "training_history.parquet")
    assert history.height >= 2
    for column in ("loss_total", "loss_pinball", "val_rankic_h5", "val_ic_h1", "pred_spread", "lr", "gat_gate"):
        logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, column)}
        expected = {e: v for e, v in zip(history["epoch"], history[column], strict=True) if math.isfinite(v)}
        assert logged == pytest.approx(expected), column
    assert "best.val_rankic_h5" in run.data.metrics


@pytest.mark.slow
def test_evaluation_metrics_are_logged(tracked_run: tuple[MlflowClient, Any], tracked_project: Path) -> None:
    _, run = tracked_run
    metrics = json.loads((tracked_project / "data" / "test" / "08_reporting" / "evaluation_metrics.json").read_text())
    for horizon in metrics["horizons"]:
        model = metrics["by_horizon"][str(horizon)]["models"]["atft_gat_fan"]
        assert run.data.metrics[f"eval.h{horizon}.atft_gat_fan.rank_ic.mean"] == pytest.approx(model["rank_ic"]["mean"])
        assert run.data.metrics[f"eval.h{horizon}.atft_gat_fan.long_short.sharpe"] == pytest.approx(
            model["long_short"]["sharpe"])
    assert "eval.h5.ridge.ic.mean" in run.data.metrics


@pytest.mark.slow
def test_report_plots_and_checkpoint_are_artifacts(tracked_run: tuple[MlflowClient, Any],
                                                   tracked_project: Path, tmp_path: Path) -> None:
    client, run = tracked_run
    report = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/report.md", "report/evaluation_metrics.json", "report/plots"} <= report
    plots = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "report/plots")}
    assert plots == {p.name for p in (tracked_project / "data" / "test" / "08_reporting" / "plots").glob("*.png")}
    checkpoint = Path(client.download_artifacts(run.info.run_id, "model/atft_gat_fan.pt", str(tmp_path)))
    assert checkpoint.read_bytes() == (tracked_project / "data" / "test" / "06_models" / "atft_gat_fan.pt").read_bytes()


def test_kedro_mlflow_ui_command_is_available() -> None:
    from click.testing import CliRunner
    from kedro_mlflow.framework.cli.cli import commands

    result = CliRunner().invoke(commands, ["mlflow", "ui", "--help"])
    assert result.exit_code == 0, result.output
    assert "--port" in result.output and "--host" in result.output
