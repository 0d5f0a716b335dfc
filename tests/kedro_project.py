"""Test helpers: the project's own configuration and catalog, pointed at a temporary folder.

Pipeline tests run the real ``create_pipeline()`` on the real ``conf/`` (base + an
environment) with every file dataset moved under ``tmp_path``, typed parameters
validated exactly as ``kedro run`` validates them, and Kedro's ``SequentialRunner``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import polars as pl

from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner
from kedro.validation.parameter_validator import ParameterValidator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: catalog keys that hold a file or folder path (``group_filepath``: the features table's group files)
PATH_KEYS = ("filepath", "path", "group_filepath")


def load_conf(env: str) -> OmegaConfigLoader:
    """The project's config loader for ``base`` + ``env`` (as ``kedro run --env env``: parameters soft-merged)."""
    from atft_kedro.config import ProjectConfigLoader

    return ProjectConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), base_env="base", default_run_env=env, env=env
    )


def data_root(env: str) -> str:
    """The environment's data folder (``globals.data_root``: ``data`` for base/local, ``data/test``, ...)."""
    return str(load_conf(env)["globals"]["data_root"])


def _relocate(entry: Any, root: Path, env_root: str) -> Any:
    """``entry`` with every relative path moved from the environment's data root to ``root/data``."""
    if isinstance(entry, dict):
        out = {}
        for key, value in entry.items():
            if key in PATH_KEYS and isinstance(value, str) and not Path(value).is_absolute():
                relative = Path(value).relative_to(env_root) if Path(value).is_relative_to(env_root) else None
                out[key] = str(root / "data" / relative) if relative is not None else str(root / value)
            else:
                out[key] = _relocate(value, root, env_root)
        return out
    return entry


def project_catalog(env: str, root: Path, params_override: dict[str, Any] | None = None,
                    pipeline: Pipeline | None = None) -> DataCatalog:
    """The project's catalog for ``env`` with every relative path moved under ``root``.

    Paths under the environment's data root (``data/test/04_feature/...``) land at the same
    place below ``root/data`` (``root/data/04_feature/...``) whatever the environment.

    Parameters are added as ``params:<key>`` datasets, validated into their typed models
    by Kedro's own ``ParameterValidator`` (so a misspelt key fails here as in ``kedro run``).
    """
    conf = load_conf(env)
    catalog_conf = {k: v for k, v in conf["catalog"].items() if not k.startswith("_")}
    try:
        credentials = conf["credentials"]
    except Exception:  # noqa: BLE001 - no credentials file at all
        credentials = {}
    catalog = DataCatalog.from_config(_relocate(catalog_conf, root, str(conf["globals"]["data_root"])),
                                      credentials=credentials)
    raw_params = copy.deepcopy(dict(conf["parameters"]))
    for key, value in (params_override or {}).items():
        raw_params[key] = value
    if pipeline is not None:
        raw_params = ParameterValidator({"p": pipeline}).validate_raw_params(raw_params)
    catalog["parameters"] = MemoryDataset(raw_params)
    for key, value in _flatten_params(raw_params).items():
        catalog[f"params:{key}"] = MemoryDataset(value, copy_mode="assign")
    return catalog


def _flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        flat[name] = value
        if isinstance(value, dict):
            flat.update(_flatten_params(value, f"{name}."))
    return flat


def run(pipeline: Pipeline, catalog: DataCatalog) -> None:
    """Run ``pipeline`` on ``catalog`` with Kedro's sequential runner."""
    SequentialRunner().run(pipeline, catalog)




#: Longest a ``kedro run --env test`` may take (about 40-120 s on a busy 2-core machine).
RUN_TIMEOUT_S = 600


def copy_project(destination: Path) -> Path:
    """The files ``kedro run`` and the notebook need, without data, logs, venv or personal conf."""
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints", "mlruns")
    for folder in ("conf", "src", "notebooks"):
        shutil.copytree(PROJECT_ROOT / folder, destination / folder, ignore=ignore)
    shutil.rmtree(destination / "conf" / "local", ignore_errors=True)
    (destination / "conf" / "local").mkdir()
    for name in ("pyproject.toml", ".telemetry"):  # .telemetry: kedro-telemetry stays off in the copy
        shutil.copy2(PROJECT_ROOT / name, destination / name)
    (destination / "data").mkdir()
    (destination / "logs").mkdir()
    return destination


def kedro_run_test_env(project: Path, *args: str) -> str:
    """``kedro run --env test [args]`` in ``project`` (its own ``src``), one OpenMP/BLAS thread per library.

    On a shared 2-core machine, scikit-learn's and torch's default thread pools spin against
    each other and against other processes (the test env's four HistGradientBoosting fits took
    76 s with the default pool and 11 s with one thread). Returns the run's output.
    """
    import os
    import subprocess
    import sys

    kedro = str(Path(sys.executable).with_name("kedro"))
    env = {**os.environ, "PYTHONPATH": str(project / "src"),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run([kedro, "run", "--env", "test", *args], cwd=project, env=env, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"`kedro run --env test {' '.join(args)}` failed ({result.returncode}):\n{output[-4000:]}")
    return output


def read_features(data: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """The ``features`` table of a run whose data folder is ``data``, loaded as the catalog loads it.

    ``data/04_feature/features`` (the assembly's own columns and the index) and the group files
    of ``data/04_feature/groups``; ``columns`` reads only those.
    """
    from atft_kedro.datasets.feature_table import FeatureTableDataset

    table = FeatureTableDataset(filepath=str(data / "04_feature" / "features"),
                                group_filepath=str(data / "04_feature" / "groups" / "{group}.parquet")).load()
    return (table.select(columns) if columns else table).collect()
