"""The whole normalization pipeline on an in-memory catalog, and the conf files it runs with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from pydantic import ValidationError

import normalization_fakes as fakes
from kedro_project import load_conf
from atft_kedro.datasets import ModelInputDataset, NormalizerDataset, SplitsDataset
from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.normalization.splits import feature_trading_days, make_date_splits, trading_days_from_calendar
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.pipelines.normalization import create_pipeline
from atft_kedro.schemas.model_input import Splits

N_STOCKS = 7


def _catalog(params: dict, tmp_path: Path) -> DataCatalog:
    cal = fakes.calendar()
    days = fakes.trading_days(cal)
    return DataCatalog(
        {
            "trading_calendar": MemoryDataset(cal),
            "features": MemoryDataset(fakes.features(days, N_STOCKS)),
            "targets": MemoryDataset(fakes.targets_from_prices(fakes.prices(days, N_STOCKS))),
            "feature_manifest": MemoryDataset(fakes.manifest()),
            "params:normalization": MemoryDataset(params),
            "params:horizons": MemoryDataset(fakes.HORIZONS),
            # persisted, so the runner does not release them once consumed
            "splits": SplitsDataset(filepath=str(tmp_path / "splits.json")),
            "normalizer": NormalizerDataset(filepath=str(tmp_path / "normalizer.json")),
            "model_input": ModelInputDataset(filepath=str(tmp_path / "model_input")),
        }
    )


def test_pipeline_runs_on_an_in_memory_catalog(tmp_path):
    catalog = _catalog(fakes.params().model_dump(mode="json"), tmp_path)
    SequentialRunner().run(create_pipeline(), catalog)
    splits = catalog.load("splits")
    state = catalog.load("normalizer")
    assert isinstance(splits, Splits) and isinstance(state, NormalizerState)
    model_input = catalog.load("model_input")
    assert state.fitted_on == splits.train
    assert state.manifest_hash == model_input.manifest_hash == fakes.manifest().hash
    assert model_input.features.shape == (len(model_input.dates), N_STOCKS, len(fakes.manifest()))
    assert isinstance(model_input.features, np.memmap)
    assert np.isfinite(model_input.features).all()
    assert model_input.day_indices(splits.train.start, splits.train.end).size > 100


def test_pipeline_stops_on_a_misspelt_parameter(tmp_path):
    raw = fakes.params().model_dump(mode="json")
    raw["warmup_day"] = raw.pop("warmup_days")
    with pytest.raises(ValidationError, match="warmup_day"):
        SequentialRunner().run(create_pipeline(), _catalog(raw, tmp_path))


@pytest.mark.parametrize("env", ["local", "test"])
def test_conf_parameters_validate_and_cover_the_longest_horizon(env):
    """The project's conf as ``kedro run --env`` merges it (base + env, globals resolved)."""
    parameters = load_conf(env)["parameters"]
    params = NormalizationParams.model_validate(parameters["normalization"])
    assert params.purge_days >= max(parameters["horizons"])


def test_test_conf_fits_the_tiny_market():
    """conf/test splits the 2021-2022 test market into every segment and fold."""
    params = NormalizationParams.model_validate(load_conf("test")["parameters"]["normalization"])
    cal = fakes.calendar()
    days = trading_days_from_calendar(cal)
    splits = make_date_splits(feature_trading_days(days, days), params, (1, 5, 10, 20))
    assert len(splits.folds) == params.folds.count


def test_kedro_validates_params_normalization_into_the_typed_model():
    """As ``kedro run`` does: the node annotations make Kedro build NormalizationParams."""
    from kedro.validation.parameter_validator import ParameterValidator

    validator = ParameterValidator({"normalization": create_pipeline()})
    raw = {"normalization": fakes.params().model_dump(mode="json"), "horizons": fakes.HORIZONS}
    validated = validator.validate_raw_params(raw)
    assert isinstance(validated["normalization"], NormalizationParams)
    raw["normalization"]["chain"]["test_fractoin"] = 0.1
    with pytest.raises(Exception, match="test_fractoin"):
        validator.validate_raw_params(raw)


def test_pipeline_on_the_project_catalog_and_test_conf(tmp_path):
    """The real catalog entries (JSON, ModelInputDataset) and conf/test, paths under tmp_path."""
    from kedro_project import project_catalog, run

    pipe = create_pipeline()
    catalog = project_catalog("test", tmp_path, pipeline=pipe)
    cal = fakes.calendar()
    days = fakes.trading_days(cal)
    catalog.save("trading_calendar", cal)
    catalog.save("features", fakes.features(days, N_STOCKS))
    catalog.save("targets", fakes.targets_from_prices(fakes.prices(days, N_STOCKS)))
    catalog.save("feature_manifest", fakes.manifest())
    run(pipe, catalog)
    model_input = catalog.load("model_input")
    splits = Splits.model_validate(catalog.load("splits"))
    assert len(splits.folds) == 4
    assert isinstance(model_input.features, np.memmap) and np.isfinite(model_input.features).all()
    assert (tmp_path / "data/05_model_input/model_input/meta.json").exists()
