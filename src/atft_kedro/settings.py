"""Project settings: configuration environments and hooks."""

from kedro.framework.project import LOGGING

from atft_kedro.warnings_logging import capture_warnings

# Python warnings into logging, less the third-party ones conf/logging.yml lists under
# `ignored_warnings`; first, because the imports below warn (kedro-mlflow at import).
capture_warnings(LOGGING.data)

from atft_kedro.config import MERGE_STRATEGY, ProjectConfigLoader, ProjectContext  # noqa: E402
from atft_kedro.hooks import DeviceCheckHook, ParameterLoggingHook, RunContextHook
from atft_kedro.runtime import RuntimeHook
from atft_kedro.tracking import MlflowTrackingHook

# MlflowTrackingHook extends kedro-mlflow's own hook (flattened typed parameters, per-epoch
# training metrics, evaluation metrics, report and checkpoint artifacts, failures as warnings),
# so the plugin's auto-registered copy is disabled below to keep one MLflow run per kedro run.
# RunContextHook puts the run's env, MLflow run id and git commit into the catalog (run_context)
# for the reports' headers.
HOOKS = (ParameterLoggingHook(), DeviceCheckHook(), MlflowTrackingHook(), RunContextHook())
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)
HOOKS = (*HOOKS, RuntimeHook())  # training.threads for torch, scikit-learn and LightGBM (atft_kedro.runtime)

# Kedro's OmegaConfigLoader, plus conf/local/credentials.yml under every --env (see config.py).
CONFIG_LOADER_CLASS = ProjectConfigLoader
# Parameters merge key by key (Kedro's `soft` strategy, config.MERGE_STRATEGY): conf/<env>/ files
# carry only what an environment changes.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": MERGE_STRATEGY,
}

# Kedro's context, with every parameter checked (unknown blocks and keys, wrong types; see config.py).
CONTEXT_CLASS = ProjectContext
