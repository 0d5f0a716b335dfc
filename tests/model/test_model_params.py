"""The typed parameters: misspelt or missing keys fail; cross-field rules hold."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from atft_kedro.model.params import LossParams, ModelParams, TrainingParams

from model_fakes import BASE_LOSS, BASE_MODEL, BASE_TRAINING, _merge, model_params, training_params


@pytest.mark.parametrize(
    ("cls", "base", "bad"),
    [
        (ModelParams, BASE_MODEL, {"hiden_size": 32}),
        (ModelParams, BASE_MODEL, {"fan": {"enable": True}}),
        (ModelParams, BASE_MODEL, {"gat": {"head": 2}}),
        (LossParams, BASE_LOSS, {"rank_wieght": 1.0}),
        (TrainingParams, BASE_TRAINING, {"collapse": {"min_sprad": 0.1}}),
        (TrainingParams, BASE_TRAINING, {"learning_rate": 0.1}),
    ],
)
def test_misspelt_key_is_an_error(cls, base, bad):
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        cls.model_validate(_merge(base, bad))


@pytest.mark.parametrize(
    ("cls", "base", "key"),
    [(ModelParams, BASE_MODEL, "hidden_size"), (LossParams, BASE_LOSS, "ic_weight"),
     (TrainingParams, BASE_TRAINING, "patience"), (TrainingParams, BASE_TRAINING, "max_train_days_per_epoch"),
     (TrainingParams, BASE_TRAINING, "max_skipped_step_share"), (TrainingParams, BASE_TRAINING, "gate_lr_scale"),
     (TrainingParams, BASE_TRAINING, "forecast_days_per_batch"), (TrainingParams, BASE_TRAINING, "compile")],
)
def test_missing_tunable_is_an_error(cls, base, key):
    data = dict(base)
    del data[key]
    with pytest.raises(ValidationError, match=key):
        cls.model_validate(data)


def test_cross_field_rules():
    with pytest.raises(ValidationError, match="include 0.5"):
        model_params(quantiles=[0.1, 0.9])
    with pytest.raises(ValidationError, match="attention_heads"):
        model_params(hidden_size=15)
    with pytest.raises(ValidationError, match="max_epochs"):
        training_params(max_epochs=1)
    with pytest.raises(ValidationError, match="max_skipped_step_share"):
        training_params(max_skipped_step_share=1.5)
    assert training_params(precision="bf16").precision == "bf16"  # CPU autocast supports bf16
    assert model_params(quantiles=[0.25, 0.5, 0.75]).median_index == 1
