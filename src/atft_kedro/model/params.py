"""Typed parameters of the ATFT-GAT-FAN model, its loss and its trainer.

``params:model``, ``params:loss`` and ``params:training`` in conf map one-to-one onto
``ModelParams``, ``LossParams`` and ``TrainingParams``. Every model forbids unknown keys
(a misspelt key is a ``pydantic.ValidationError``) and no tunable has a default here:
``conf/`` is the only source of values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from atft_kedro.schemas.strict import StrictModel


class FanParams(StrictModel):
    """Frequency-adaptive normalisation of each input window (``fan.py``)."""

    enabled: bool = Field(description="build the FAN branch; phases may switch it off, never on")
    top_k: int = Field(ge=1, description="dominant non-DC frequencies removed per (stock, feature)")


class GatParams(StrictModel):
    """GATv2 block over the day's stock graph and its gated residual fusion (``graph.py``)."""

    enabled: bool = Field(description="build the GAT branch; phases may switch it off, never on")
    layers: int = Field(ge=1)
    heads: int = Field(ge=1, description="attention heads per GATv2 layer (must divide hidden_size)")
    gate_init: float = Field(description="initial logit of the fusion gate; sigmoid(0) = 0.5")


class ModelParams(StrictModel):
    """Architecture of ``ATFTGATFAN``."""

    hidden_size: int = Field(ge=2)
    lstm_layers: int = Field(ge=1)
    attention_heads: int = Field(ge=1, description="temporal self-attention heads (divide hidden_size)")
    dropout: float = Field(ge=0.0, lt=1.0)
    window_days: int = Field(ge=2, description="trading days T in each input window")
    fan: FanParams
    gat: GatParams
    quantiles: tuple[float, ...] = Field(min_length=1, description="ascending, in (0, 1), includes 0.5")

    @model_validator(mode="after")
    def _consistent(self) -> ModelParams:
        problems = []
        q = list(self.quantiles)
        if any(not 0.0 < v < 1.0 for v in q) or q != sorted(set(q)):
            problems.append(f"model.quantiles {q} must be strictly ascending values in (0, 1)")
        if 0.5 not in q:
            problems.append(f"model.quantiles {q} must include 0.5 (the median is the point forecast)")
        if self.hidden_size % self.attention_heads:
            problems.append(
                f"model.attention_heads {self.attention_heads} does not divide model.hidden_size {self.hidden_size}"
            )
        if self.gat.enabled and self.hidden_size % self.gat.heads:
            problems.append(f"model.gat.heads {self.gat.heads} does not divide model.hidden_size {self.hidden_size}")
        if self.fan.top_k > self.window_days // 2:
            problems.append(
                f"model.fan.top_k {self.fan.top_k} exceeds the {self.window_days // 2} non-DC frequencies "
                f"of a {self.window_days}-day window"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def median_index(self) -> int:
        """Position of the 0.5 quantile (the point forecast) in ``quantiles``."""
        return list(self.quantiles).index(0.5)


class LossParams(StrictModel):
    """Weights of the combined loss (``losses.py``).

    total = sum_h horizon_weights[h] * (pinball_weight * pinball_h + rank_weight * (1 - rankcorr_h)
            + ic_weight * (1 - ic_h) + sharpe_weight * (-sharpe_h))
    """

    pinball_weight: float = Field(ge=0.0)
    rank_weight: float = Field(ge=0.0)
    ic_weight: float = Field(ge=0.0)
    sharpe_weight: float = Field(ge=0.0)
    horizon_weights: dict[int, float] = Field(
        min_length=1, description="weight per target horizon in trading days; keys = the model input's horizons"
    )
    rank_temperature: float = Field(
        gt=0.0,
        description="soft-rank sigmoid temperature, in units of the day's cross-sectional robust std "
        "(1.4826 MAD) of the forecasts",
    )

    @model_validator(mode="after")
    def _weights(self) -> LossParams:
        if any(w < 0 for w in self.horizon_weights.values()) or sum(self.horizon_weights.values()) <= 0:
            raise ValueError(f"loss.horizon_weights {self.horizon_weights} must be >= 0 with a positive sum")
        if self.pinball_weight + self.rank_weight + self.ic_weight + self.sharpe_weight <= 0:
            raise ValueError("loss: every term weight is 0, nothing would be trained")
        return self


class CollapseParams(StrictModel):
    """Monitoring of the cross-sectional prediction spread (lesson 6 of PREDECESSOR.md)."""

    min_spread: float = Field(ge=0.0, description="validation std across stocks (mean over days) below = collapsed")
    patience_epochs: int = Field(ge=1, description="consecutive collapsed epochs before acting")
    action: Literal["warn", "error"]


class PhaseParams(StrictModel):
    """One training phase: epochs with FAN/GAT switched on or off and a learning-rate scale."""

    name: str = Field(min_length=1)
    epochs: int = Field(ge=1)
    lr_scale: float = Field(gt=0.0)
    fan: bool
    gat: bool


class TrainingParams(StrictModel):
    """The trainer (``trainer.py``)."""

    seed: int
    device: Literal["cpu", "cuda"]
    precision: Literal["fp32", "bf16"]
    lr: float = Field(gt=0.0)
    weight_decay: float = Field(ge=0.0)
    warmup_steps: int = Field(ge=0)
    max_epochs: int = Field(ge=1, description="cap on the summed epochs of all phases")
    patience: int = Field(ge=1, description="epochs without a better validation RankIC before a phase ends")
    grad_clip: float = Field(gt=0.0, description="max global L2 norm of the gradients")
    days_per_batch: int = Field(ge=1, description="trading days (one graph each) per optimiser step")
    max_train_days_per_epoch: int | None = Field(
        ge=1,
        description="each epoch trains on a fresh seeded random sample of this many training days; "
        "null = every training day every epoch",
    )
    primary_horizon: int = Field(ge=1, description="horizon whose validation RankIC drives early stopping")
    max_skipped_step_share: float = Field(
        ge=0.0,
        le=1.0,
        description="optimiser steps with non-finite gradients are skipped and counted; an epoch that skips "
        "more than this share of its steps stops the run",
    )
    gate_lr_scale: float = Field(
        gt=0.0, description="learning-rate multiplier of the GAT fusion gate (no weight decay on the gate)"
    )
    forecast_days_per_batch: int = Field(
        ge=1, description="trading days per forward pass when forecasting (evaluation, inference); memory only"
    )
    compile: bool = Field(description="wrap the model in torch.compile for training (first steps compile)")
    threads: int | None = Field(
        ge=1,
        description="CPU threads for torch and, through threadpoolctl, for the BLAS/OpenMP pools of "
        "scikit-learn and LightGBM (atft_kedro.runtime); null = every core this process may use",
    )
    collapse: CollapseParams
    phases: tuple[PhaseParams, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> TrainingParams:
        problems = []
        total = sum(p.epochs for p in self.phases)
        if total > self.max_epochs:
            problems.append(
                f"training.phases ask for {total} epochs in all, more than training.max_epochs {self.max_epochs}"
            )
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            problems.append(f"training.phases names repeat: {names}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
