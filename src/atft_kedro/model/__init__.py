"""ATFT-GAT-FAN in PyTorch + torch-geometric: model, losses, trainer and checkpoints.

Modules: ``params`` (typed conf), ``fan``, ``vsn``, ``temporal``, ``graph``, ``heads``,
``network`` (the model), ``losses``, ``data`` (device tensors, packed graphs, day batches),
``trainer`` (``train_model``), ``checkpoint`` (make/rebuild, ``forecast_days``).

The package imports only torch, torch-geometric, numpy and pydantic; the Polars stock graph is
packed by ``atft_kedro.graph_packing`` (node layer). See docs/model.md.
"""

from atft_kedro.model.checkpoint import build_model_from_checkpoint, forecast_days
from atft_kedro.model.network import ATFTGATFAN
from atft_kedro.model.params import LossParams, ModelParams, TrainingParams
from atft_kedro.model.trainer import (
    CudaUnavailableError,
    NonFiniteGradientError,
    PredictionCollapseError,
    train_model,
)

__all__ = [
    "ATFTGATFAN",
    "CudaUnavailableError",
    "LossParams",
    "ModelParams",
    "NonFiniteGradientError",
    "PredictionCollapseError",
    "TrainingParams",
    "build_model_from_checkpoint",
    "forecast_days",
    "train_model",
]
