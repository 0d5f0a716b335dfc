"""Every configuration environment loads and validates against every registered pipeline."""

from __future__ import annotations

import pytest
from kedro.validation.parameter_validator import ParameterValidator
from kedro_project import load_conf

from atft_kedro.hooks import DeviceCheckHook
from atft_kedro.model.trainer import CudaUnavailableError
from atft_kedro.pipeline_registry import register_pipelines

ENVIRONMENTS = ["local", "test", "gpu", "jquants"]


@pytest.fixture(scope="module")
def pipelines() -> dict:
    from kedro.framework.project import configure_project

    configure_project("atft_kedro")
    return register_pipelines()


def test_every_pipeline_is_registered(pipelines: dict) -> None:
    assert set(pipelines) == {"__default__", "ingestion", "feature_engineering", "normalization", "training",
                              "evaluation", "inference", "walk_forward"}
    # the default run is the single chain: every pipeline but the walk-forward, which retrains per fold
    assert pipelines["__default__"].nodes == sum(
        (p for name, p in pipelines.items() if name not in ("__default__", "walk_forward")), pipelines["ingestion"]
    ).nodes
    assert not any(n.name.startswith("fold_") for n in pipelines["__default__"].nodes)
    assert len({n.namespace for n in pipelines["walk_forward"].nodes} - {None}) >= 3


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_parameters_validate(env: str, pipelines: dict) -> None:
    params = load_conf(env)["parameters"]
    validated = ParameterValidator(pipelines).validate_raw_params(dict(params))
    assert validated["training"].device == ("cuda" if env == "gpu" else "cpu")
    assert list(validated["horizons"]) == [1, 5, 10, 20]


def test_environment_specifics() -> None:
    assert load_conf("local")["parameters"]["ingestion"]["source"] == "synthetic"
    assert load_conf("jquants")["parameters"]["ingestion"]["source"] == "jquants"
    assert load_conf("gpu")["parameters"]["simulator"]["n_stocks"] == 4000
    assert load_conf("test")["parameters"]["simulator"]["n_stocks"] < 100
    assert load_conf("gpu")["parameters"]["training"]["precision"] == "bf16"


class _Catalog:
    def __init__(self, training: dict) -> None:
        self._training = training

    def load(self, name: str) -> dict:
        assert name == "params:training"
        return self._training


class _Pipeline:
    def inputs(self) -> set[str]:
        return {"params:training", "model_input"}


def test_gpu_environment_without_cuda_stops_at_the_start() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    training = dict(load_conf("gpu")["parameters"]["training"])
    with pytest.raises(CudaUnavailableError, match="training.device: cuda"):
        DeviceCheckHook().before_pipeline_run({"env": "gpu"}, _Pipeline(), _Catalog(training))
    DeviceCheckHook().before_pipeline_run({"env": "test"}, _Pipeline(), _Catalog({**training, "device": "cpu"}))


@pytest.mark.parametrize("selection", [["training", "evaluation"], ["evaluation", "training"],
                                       ["training"], ["inference", "normalization"], ["walk_forward"]])
def test_any_selection_of_pipelines_validates(selection: list[str], pipelines: dict) -> None:
    """``kedro run --pipelines a,b`` validates the typed parameters of exactly those pipelines."""
    chosen = sum((pipelines[name] for name in selection[1:]), pipelines[selection[0]])
    params = dict(load_conf("local")["parameters"])
    ParameterValidator({"selected": chosen}).validate_raw_params(params)
    ParameterValidator({name: pipelines[name] for name in selection}).validate_raw_params(params)
