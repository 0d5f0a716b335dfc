"""Every pydantic model of the project is a ``StrictModel``: unknown keys are errors, values are frozen."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from pydantic import BaseModel, ValidationError

import atft_kedro
from atft_kedro.baselines.params import BaselineParams
from atft_kedro.schemas.strict import StrictModel

#: Models that are deliberately not strict, and why.
NOT_STRICT = {
    # one free-form ``<group>: bool`` key per registered feature group; its validator names
    # missing and unknown groups itself
    "atft_kedro.features.params.GroupSwitches",
}


def _project_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {}
    for info in pkgutil.walk_packages(atft_kedro.__path__, "atft_kedro."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == info.name
                    and value is not StrictModel):
                models[f"{value.__module__}.{value.__qualname__}"] = value
    return models


def test_every_pydantic_model_of_the_project_is_a_strict_model() -> None:
    models = _project_models()
    assert len(models) > 40, sorted(models)  # the walk did find the parameter blocks
    loose = sorted(name for name, model in models.items() if not issubclass(model, StrictModel))
    assert loose == sorted(NOT_STRICT), f"subclass atft_kedro.schemas.strict.StrictModel instead: {loose}"
    for name, model in models.items():
        if name not in NOT_STRICT:
            assert model.model_config.get("extra") == "forbid" and model.model_config.get("frozen"), name


def test_a_misspelt_nested_key_is_an_error_naming_it() -> None:
    good = {"lightgbm": {"num_leaves": 15}}
    with pytest.raises(ValidationError, match=r"lightgbm\.num_leavs\s+Extra inputs are not permitted"):
        BaselineParams.model_validate({**good, "lightgbm": {"num_leavs": 15}})
