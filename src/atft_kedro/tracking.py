"""Experiment tracking with MLflow, through kedro-mlflow, on a local store.

``MlflowTrackingHook`` is kedro-mlflow's own hook (``MlflowHook``: it reads
``conf/<env>/mlflow.yml``, opens one MLflow run per ``kedro run`` named after the pipeline
and logs the ``params:`` inputs of every node) with these changes:

* parameters reach kedro-mlflow as plain data: the pydantic models that Kedro's parameter
  validation hands to the nodes are dumped to dicts (and lists of dicts to dicts keyed by
  position), so ``flatten: true`` in ``mlflow.yml`` logs ``training.lr``,
  ``training.phases.0.epochs``, ``model.gat.heads``, ... instead of one model ``repr``;
* it logs what a run produced: every numeric column of ``training_history`` per epoch
  (``step=epoch``), the row of the best epoch as ``best.<column>``, every number of
  ``evaluation_metrics`` as ``eval.h<horizon>.<model>.<path>``, and, at the end of the run,
  the report, its plots, the metrics JSON and the model checkpoint as artifacts;
* a relative SQLite tracking URI (``sqlite:///mlruns/mlflow.db``) is anchored at the project
  root, not at the working directory (a notebook session runs in ``notebooks/``);
* MLflow never stops a run: every MLflow call is guarded, a failure is a (bounded) warning
  and tracking is switched off for the rest of the run when the run itself cannot be opened;
* the MLflow run ends with the status of the kedro run: ``FINISHED``, ``FAILED`` when a node
  raises (kedro-mlflow's ``on_pipeline_error``), ``KILLED`` when the process gets SIGTERM or
  SIGINT (Ctrl-C) during the run. For those two signals the hook installs a handler for the
  length of the run (main thread only) that marks the run ``KILLED`` and then does what the
  previous handler did: SIGINT raises ``KeyboardInterrupt``; SIGTERM, whose default is to die
  at once, raises ``SystemExit(143)`` (128 + 15, the shell's code for SIGTERM) so that open
  files and staging files are closed on the way out.

It replaces the plugin's auto-registered hook: ``settings.py`` registers it in ``HOOKS`` and
lists ``kedro_mlflow`` in ``DISABLE_HOOKS_FOR_PLUGINS``. MLflow's usage telemetry is switched
off when this module is imported (nothing leaves the machine).
"""

from __future__ import annotations

import logging
import math
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from mlflow.entities import Metric, RunStatus
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

logger = logging.getLogger(__name__)

#: Where kedro-mlflow looks for its configuration (its own patterns, see ``MlflowHook.after_context_created``).
MLFLOW_CONFIG_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]
_SQLITE_PREFIX = "sqlite:///"
#: Dataset whose rows (one per epoch) are logged as step-wise metrics.
TRAINING_HISTORY = "training_history"
#: Dataset whose numbers are logged as ``eval.*`` metrics.
EVALUATION_METRICS = "evaluation_metrics"
#: The stitched walk-forward record, logged as ``wf.*`` metrics (its ``walk_forward`` block as ``wf.extra.*``).
WALK_FORWARD_METRICS = "walk_forward_metrics"
#: Datasets whose files are logged as artifacts when they were written by the run: name -> artifact folder.
ARTIFACT_DATASETS: dict[str, str] = {
    "evaluation_report": "report",
    "evaluation_plots": "report/plots",
    "evaluation_metrics": "report",
    "model_checkpoint": "model",
    "walk_forward_report": "walk_forward",
    "walk_forward_plots": "walk_forward/plots",
    "walk_forward_metrics": "walk_forward",
}

#: Bounds, so that tracking stays bounded whatever a run produces.
MAX_METRICS_PER_DATASET = 20_000
MAX_ARTIFACT_BYTES = 2 * 1024**3
MAX_WARNINGS_PER_RUN = 20
_MAX_WARNING_CHARS = 500
#: MLflow's own limits: metrics per ``log_batch`` call and characters per key.
_MLFLOW_BATCH = 1000
_MLFLOW_MAX_KEY_CHARS = 250
_INVALID_KEY_CHARS = re.compile(r"[^\w\-. /]")
#: Signals that end a run as ``KILLED`` (an orchestrator's stop, Ctrl-C).
KILL_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def disable_mlflow_telemetry() -> None:
    """Drop MLflow's usage-telemetry client (MLflow only offers environment variables for this)."""
    try:
        from mlflow.telemetry.client import _set_telemetry_client

        _set_telemetry_client(None)
    except Exception as exc:  # noqa: BLE001 - a missing private API must not stop an import
        logger.warning("Could not switch MLflow telemetry off: %s", str(exc)[:_MAX_WARNING_CHARS])


disable_mlflow_telemetry()


# ---------------------------------------------------------------------------------- pure helpers


def plain(value: Any) -> Any:
    """``value`` as plain JSON-like data that kedro-mlflow flattens into one param per leaf.

    Pydantic models become their ``model_dump(mode="json")``; lists and tuples that hold
    dicts or models become dicts keyed by position (``phases.0.epochs``); lists of scalars
    stay lists (one param, e.g. ``model.quantiles = [0.1, 0.5, 0.9]``).
    """
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        if any(isinstance(item, Mapping | BaseModel | list | tuple) for item in value):
            return {str(position): plain(item) for position, item in enumerate(value)}
        return list(value)
    return value


def loggable_params(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``params:*`` and ``parameters`` inputs of a node, made :func:`plain` (other inputs dropped)."""
    return {name: plain(value) for name, value in inputs.items()
            if name.startswith("params:") or name == "parameters"}


def metric_key(name: str) -> str:
    """``name`` as a valid MLflow metric key (invalid characters become ``_``; at most 250 characters)."""
    return _INVALID_KEY_CHARS.sub("_", name)[:_MLFLOW_MAX_KEY_CHARS]


def history_metrics(history: pl.DataFrame) -> list[tuple[str, float, int]]:
    """Per-epoch metrics of ``training_history``: ``(key, value, step=epoch)``.

    Every numeric or boolean column but ``epoch`` is a metric named after its column
    (``loss_total``, ``val_rankic_h5``, ``lr``, ``gat_gate``, ...); non-finite values are
    left out. The last row flagged ``is_best`` is added as ``best.<column>`` at its epoch.
    """
    columns = [name for name, dtype in history.schema.items()
               if name != "epoch" and (dtype.is_numeric() or dtype == pl.Boolean)]
    if "epoch" not in history.columns:
        raise ValueError(f"{TRAINING_HISTORY} has no 'epoch' column (columns: {history.columns})")
    frame = history.select(pl.col("epoch").cast(pl.Int64), *(pl.col(c).cast(pl.Float64) for c in columns))
    rows = [frame]
    if "is_best" in history.columns:
        best = frame.filter(pl.col("is_best") == 1.0).tail(1).drop("is_best")
        rows.append(best.rename({c: f"best.{c}" for c in columns if c != "is_best"}).with_columns(
            pl.col("epoch").cast(pl.Float64).alias("best.epoch")))
    long = pl.concat(
        [part.unpivot(index="epoch", variable_name="key", value_name="value") for part in rows],
        how="vertical_relaxed",
    ).filter(pl.col("value").is_finite())
    return [(key, value, step) for step, key, value in long.select("epoch", "key", "value").iter_rows()]


def _numbers(value: Any, prefix: str) -> Iterator[tuple[str, float]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers(item, f"{prefix}.{key}")
    elif isinstance(value, list | tuple):
        for position, item in enumerate(value, start=1):
            yield from _numbers(item, f"{prefix}.{position}")
    elif isinstance(value, int | float) and math.isfinite(value):
        yield prefix, float(value)


def evaluation_metric_values(metrics: Mapping[str, Any], prefix: str = "eval") -> dict[str, float]:
    """Every finite number under ``evaluation_metrics["by_horizon"]``, flattened.

    Keys are ``eval.h<horizon>.<model>.<path>`` for the models' figures, e.g.
    ``eval.h5.atft_gat_fan.rank_ic.mean``, ``eval.h5.ridge.long_short.sharpe``,
    ``eval.h5.oracle.deciles.1`` (list items are numbered from 1), and
    ``eval.h<horizon>.<key>.<path>`` for the rest (``eval.h5.signal_dates.n``). ``prefix``
    replaces ``eval`` (``wf`` for the walk-forward record, whose ``walk_forward`` block of
    intervals, paired tests and per-fold/per-year rows is added as ``wf.extra.h<horizon>.<path>``).
    """
    if "by_horizon" not in metrics:
        raise ValueError(f"{EVALUATION_METRICS} has no 'by_horizon' block (keys: {sorted(metrics)})")
    values: dict[str, float] = {}
    for horizon, block in metrics["by_horizon"].items():
        for key, item in block.items():
            if key == "models":
                for model, figures in item.items():
                    values.update(_numbers(figures, f"{prefix}.h{horizon}.{model}"))
            else:
                values.update(_numbers(item, f"{prefix}.h{horizon}.{key}"))
    for horizon, block in metrics.get("walk_forward", {}).get("by_horizon", {}).items():
        values.update(_numbers(block, f"{prefix}.extra.h{horizon}"))
    return {metric_key(key): value for key, value in values.items()}


def anchored_tracking_uri(uri: str, project_path: Path | str) -> str:
    """A relative SQLite URI made absolute under ``project_path``; any other URI unchanged.

    ``sqlite:///mlruns/mlflow.db`` -> ``sqlite:////<project>/mlruns/mlflow.db``. (kedro-mlflow
    anchors plain relative folders at the project root itself, but leaves SQLite URIs to
    MLflow, which reads them relative to the working directory.)
    """
    if not uri.startswith(_SQLITE_PREFIX):
        return uri
    database = uri.removeprefix(_SQLITE_PREFIX)
    if not database or database.startswith("/") or database == ":memory:":
        return uri
    return _SQLITE_PREFIX + str(Path(project_path).resolve() / database)


def anchor_mlflow_config(context: Any) -> None:
    """Set the context's ``mlflow`` configuration with its SQLite tracking URI anchored at the project root.

    The loaded configuration is stored back on the context's config loader (an explicitly set
    key bypasses the files), where kedro-mlflow's hook reads it next. Without ``mlflow.yml``
    nothing changes (kedro-mlflow then warns and uses its defaults).
    """
    loader = context.config_loader
    if "mlflow" not in loader.config_patterns:
        loader.config_patterns.update({"mlflow": MLFLOW_CONFIG_PATTERNS})
    try:
        conf = dict(loader["mlflow"])
    except MissingConfigException:
        return
    server = dict(conf.get("server") or {})
    uri = server.get("mlflow_tracking_uri")
    if isinstance(uri, str) and anchored_tracking_uri(uri, context.project_path) != uri:
        server["mlflow_tracking_uri"] = anchored_tracking_uri(uri, context.project_path)
        loader["mlflow"] = {**conf, "server": server}


def dataset_path(catalog: Any, name: str, project_path: Path) -> Path | None:
    """Local file or folder a catalog dataset writes to, or ``None`` when it has none."""
    dataset = catalog.get(name)
    if dataset is None:
        return None
    filepath = getattr(dataset, "_filepath", None)
    if filepath is None:
        filepath = dataset._describe().get("filepath")  # noqa: SLF001 - datasets expose their path only here
    if filepath is None:
        return None
    path = Path(str(filepath))
    return path if path.is_absolute() else project_path / path


def _size_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return path.stat().st_size


# ---------------------------------------------------------------------------------------- hook


class MlflowTrackingHook(MlflowHook):
    """kedro-mlflow's hook with plain parameters, run outputs as metrics/artifacts and no crash on MLflow errors."""

    def __init__(self) -> None:
        super().__init__()
        self._broken = False
        self._warnings = 0
        self._saved: set[str] = set()
        self._project_path = Path.cwd()
        self._client: MlflowClient | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._killed = False

    # -------------------------------------------------------------------------- guards

    def _warn(self, action: str, exc: BaseException) -> None:
        self._warnings += 1
        if self._warnings <= MAX_WARNINGS_PER_RUN:
            logger.warning("MLflow tracking: could not %s (the run goes on): %s: %s",
                           action, type(exc).__name__, str(exc)[:_MAX_WARNING_CHARS])
        if self._warnings == MAX_WARNINGS_PER_RUN:
            logger.warning("MLflow tracking: %d warnings in this run; further ones are not logged",
                           MAX_WARNINGS_PER_RUN)

    def _guard(self, action: str, call: Callable[[], Any]) -> bool:
        """Run ``call``; on any error warn and return ``False`` (tracking must never stop a run)."""
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - see docstring
            self._warn(action, exc)
            return False
        return True

    def _switch_off(self) -> None:
        """Stop tracking for the rest of this run (the run could not be opened)."""
        self._broken = True
        self.run_id = None
        self._is_mlflow_enabled = False

    @property
    def _tracking(self) -> bool:
        return not self._broken and self._is_mlflow_enabled and self.run_id is not None

    # ------------------------------------------------------------ kedro-mlflow's hooks, guarded

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._broken, self._warnings, self.run_id = False, 0, None
        disable_mlflow_telemetry()

        def set_up() -> None:
            anchor_mlflow_config(context)
            super(MlflowTrackingHook, self).after_context_created(context)

        if not self._guard("set up MLflow from mlflow.yml", set_up):
            self._switch_off()

    @hook_impl
    def after_catalog_created(self, catalog: Any, conf_catalog: dict[str, Any], conf_creds: dict[str, Any],
                              parameters: dict[str, Any], save_version: str,
                              load_versions: dict[str, str]) -> None:
        if self._broken:
            return
        self._guard("prepare the catalog's MLflow datasets", lambda: super(MlflowTrackingHook, self)
                    .after_catalog_created(catalog, conf_catalog, conf_creds, parameters, save_version,
                                           load_versions))

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._saved = set()
        self._warnings = 0
        if self._broken:
            return
        if not self._guard("open the MLflow run", lambda: super(MlflowTrackingHook, self)
                           .before_pipeline_run(run_params, pipeline, catalog)):
            self._guard("close the half-opened MLflow run",
                        lambda: mlflow.end_run(RunStatus.to_string(RunStatus.FAILED)) if mlflow.active_run() else None)
            self._switch_off()
            return
        self._project_path = Path(str(run_params.get("project_path") or Path.cwd()))
        self._client = MlflowClient(mlflow.get_tracking_uri())
        self._killed = False
        self._install_signal_handlers()

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool) -> None:
        if self._broken:
            return
        params = loggable_params(inputs)
        self._guard(f"log the parameters of node '{node.name}'", lambda: super(MlflowTrackingHook, self)
                    .before_node_run(node, catalog, params, is_async))

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._restore_signal_handlers()
        if self._killed:
            return
        if self._tracking:
            self._log_artifacts(catalog)
        if self._broken:
            return
        if not self._guard("close the MLflow run", lambda: super(MlflowTrackingHook, self)
                           .after_pipeline_run(run_params, pipeline, catalog)):
            self._guard("end the MLflow run", lambda: mlflow.end_run() if mlflow.active_run() else None)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._restore_signal_handlers()
        if self._broken or self.run_id is None or self._killed:
            return
        if not self._guard("mark the MLflow run failed", lambda: super(MlflowTrackingHook, self)
                           .on_pipeline_error(error, run_params, pipeline, catalog)):
            self._guard("end the MLflow run",
                        lambda: mlflow.end_run(RunStatus.to_string(RunStatus.FAILED)) if mlflow.active_run() else None)

    # ------------------------------------------------------------------------ signals

    def _install_signal_handlers(self) -> None:
        """Mark the run ``KILLED`` on SIGTERM/SIGINT until the run ends (main thread only; ignored stays ignored)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in KILL_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN or signum in self._previous_handlers:
                continue
            self._previous_handlers[signum] = previous
            signal.signal(signum, self._on_kill_signal)

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in list(self._previous_handlers.items()):
            self._guard(f"restore the handler of {signal.Signals(signum).name}",
                        lambda s=signum, p=previous: signal.signal(s, p if p is not None else signal.SIG_DFL))
        self._previous_handlers.clear()

    def _on_kill_signal(self, signum: int, frame: Any) -> None:
        """Mark the MLflow run ``KILLED``, then act as the previous handler would have."""
        previous = self._previous_handlers.get(signum, signal.SIG_DFL)
        self._restore_signal_handlers()
        name = signal.Signals(signum).name
        if self._tracking and not self._killed:
            self._killed = True
            run_id = self.run_id
            killed = RunStatus.to_string(RunStatus.KILLED)

            def mark() -> None:
                while mlflow.active_run():
                    mlflow.end_run(killed)
                if self._client is not None and self._client.get_run(run_id).info.status != killed:
                    self._client.set_terminated(run_id, killed)

            if self._guard(f"mark the MLflow run killed ({name})", mark):
                logger.warning("MLflow tracking: %s received; run '%s' marked KILLED", name, run_id)
        if callable(previous):
            previous(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise SystemExit(128 + signum)

    # ------------------------------------------------------------------- the run's outputs

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        if not self._tracking:
            return
        self._saved.add(dataset_name)
        if dataset_name == TRAINING_HISTORY:
            self._guard(f"log the metrics of '{dataset_name}'",
                        lambda: self._log_metrics(dataset_name, history_metrics(data)))
        elif dataset_name in (EVALUATION_METRICS, WALK_FORWARD_METRICS):
            prefix = "eval" if dataset_name == EVALUATION_METRICS else "wf"
            self._guard(f"log the metrics of '{dataset_name}'", lambda: self._log_metrics(
                dataset_name, [(key, value, 0) for key, value in evaluation_metric_values(data, prefix).items()]))

    def _log_metrics(self, source: str, metrics: list[tuple[str, float, int]]) -> None:
        if len(metrics) > MAX_METRICS_PER_DATASET:
            logger.warning("MLflow tracking: '%s' gives %d metrics; only the first %d are logged",
                           source, len(metrics), MAX_METRICS_PER_DATASET)
            metrics = metrics[:MAX_METRICS_PER_DATASET]
        timestamp = int(time.time() * 1000)
        entities = [Metric(metric_key(key), value, timestamp, step) for key, value, step in metrics]
        for start in range(0, len(entities), _MLFLOW_BATCH):
            self._client.log_batch(self.run_id, metrics=entities[start:start + _MLFLOW_BATCH])
        logger.info("MLflow tracking: logged %d metric values of '%s'", len(entities), source)

    def _log_artifacts(self, catalog: Any) -> None:
        for name, folder in ARTIFACT_DATASETS.items():
            if name in self._saved:
                self._guard(f"log the artifact '{name}'", lambda: self._log_artifact(catalog, name, folder))

    def _log_artifact(self, catalog: Any, name: str, folder: str) -> None:
        path = dataset_path(catalog, name, self._project_path)
        if path is None or not path.exists():
            raise FileNotFoundError(f"dataset '{name}' has no file to log (path: {path})")
        size = _size_bytes(path)
        if size > MAX_ARTIFACT_BYTES:
            raise ValueError(f"dataset '{name}' at {path} is {size:,} bytes, over the {MAX_ARTIFACT_BYTES:,} limit")
        if path.is_dir():
            self._client.log_artifacts(self.run_id, str(path), folder)
        else:
            self._client.log_artifact(self.run_id, str(path), folder)
        logger.info("MLflow tracking: logged '%s' (%s, %s bytes) under '%s'", name, path, f"{size:,}", folder)
