"""benchmarks/gpu_check.py measures the gpu environment's model: its defaults are conf/gpu's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from atft_kedro.config import ProjectConfigLoader
from atft_kedro.model.params import LossParams, ModelParams, TrainingParams

ROOT = Path(__file__).resolve().parents[2]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_defaults_are_the_gpu_environment():
    params = ProjectConfigLoader(
        conf_source=str(ROOT / "conf"), base_env="base", default_run_env="gpu", env="gpu"
    )["parameters"]
    check = _gpu_check()
    assert ModelParams.model_validate(check.GPU_MODEL) == ModelParams.model_validate(params["model"])
    assert LossParams.model_validate(check.GPU_LOSS) == LossParams.model_validate(params["loss"])
    assert TrainingParams.model_validate(check.GPU_TRAINING) == TrainingParams.model_validate(params["training"])
