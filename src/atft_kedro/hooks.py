"""Project hooks.

``ParameterLoggingHook`` logs, at the start of every run, the resolved parameters
that the nodes of the pipeline being run actually receive (``--params`` overrides
included), and the overrides themselves, so a run's log always says which settings
were used (the predecessor silently replaced configured values).
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

logger = logging.getLogger(__name__)

#: Longest parameter dump written to the log, in characters (logs stay bounded).
_MAX_LOGGED_CHARS = 20_000


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


class ParameterLoggingHook:
    """Log the resolved ``params:`` inputs of the pipeline about to run."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        used = sorted(name for name in pipeline.inputs() if name.startswith("params:"))
        resolved = {}
        for name in used:
            try:
                resolved[name.removeprefix("params:")] = _plain(catalog.load(name))
            except Exception as exc:  # noqa: BLE001 - logging must never stop a run
                resolved[name.removeprefix("params:")] = f"<unavailable: {exc}>"
        text = json.dumps(resolved, default=str, sort_keys=True)
        if len(text) > _MAX_LOGGED_CHARS:
            text = text[:_MAX_LOGGED_CHARS] + "...(truncated)"
        logger.info("Resolved parameters used by this run (env=%s): %s", run_params.get("env"), text)
        overrides = run_params.get("runtime_params")
        if overrides:
            text = json.dumps(overrides, default=str, sort_keys=True)[:_MAX_LOGGED_CHARS]
            logger.info("Overrides from --params: %s", text)


class DeviceCheckHook:
    """Stop a run at its start when it would train on CUDA and no CUDA device is usable.

    ``training.device: cuda`` (the ``gpu`` environment) on a machine without CUDA must be a
    clear error, never a silent CPU run, and it should come before the hours of feature work
    that precede training, not after them.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if "params:training" not in pipeline.inputs():
            return
        training = _plain(catalog.load("params:training"))
        if training.get("device") != "cuda":
            return
        import torch

        from atft_kedro.model.trainer import CudaUnavailableError

        if not torch.cuda.is_available():
            raise CudaUnavailableError(
                f"environment '{run_params.get('env')}' sets training.device: cuda but torch "
                f"{torch.__version__} sees no CUDA device on this machine; run on a GPU machine, or "
                "use an environment with training.device: cpu (e.g. drop --env gpu)"
            )


#: Catalog name of the run's identity, filled by ``RunContextHook`` and read by the reports.
RUN_CONTEXT = "run_context"


def git_commit(project_path: str | Path | None) -> str | None:
    """The project's git commit (``+dirty`` when the tree has changes), or None outside a git checkout."""
    if project_path is None:
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_path, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_path,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


class RunContextHook:
    """Put the run's identity into the catalog as ``run_context`` for the reports' headers.

    ``{"env", "session_id", "mlflow_run_id", "git_commit", "pipeline"}``: the environment
    (``--env``), Kedro's session id, the MLflow run this run is tracked in (None when
    tracking is off), the project's git commit and the pipelines run. It runs after every
    other ``before_pipeline_run`` hook (``trylast``), so the MLflow run is already open.
    """

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        try:
            import mlflow

            active = mlflow.active_run()
            mlflow_run_id = active.info.run_id if active is not None else None
        except Exception:  # noqa: BLE001 - the report says "none" rather than stopping the run
            mlflow_run_id = None
        context = {
            "env": run_params.get("env") or "local",
            "session_id": run_params.get("session_id"),
            "mlflow_run_id": mlflow_run_id,
            "git_commit": git_commit(run_params.get("project_path")),
            "pipeline": run_params.get("pipeline_names") or run_params.get("pipeline_name") or "__default__",
        }
        if RUN_CONTEXT in catalog:  # declared in the catalog: fill it (replacing it logs a warning)
            catalog.save(RUN_CONTEXT, context)
        else:
            catalog[RUN_CONTEXT] = MemoryDataset(context, copy_mode="assign")
        logger.info("run context: %s", context)
